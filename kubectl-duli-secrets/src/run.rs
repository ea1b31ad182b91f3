//! Running a parsed command line: each command's work, then its report on the writers it is given — the
//! one place this crate prints (data on `out`, progress and notes on `err`), so a command runs in-process
//! in a test as it does in the binary.

use std::io::Write;

use clap::CommandFactory;
use shared::error::Outcome;
use shared::output::{OutputFormat, to_document};

use crate::audit::{self, AuditReport};
use crate::cli::{Cli, Command};
use crate::init::{self, InitReport};
use crate::recovery;
use crate::remote::{self, Rotated, VerifyResult};
use crate::seal::{self, SealOutcome};

/// Run `cli`: data to `out`, progress and notes to `err`; the outcome says which exit code fits.
///
/// Interactive prompts (`seal --prompt`, `init` confirmations) and `completion` use the terminal and
/// stdout themselves.
pub async fn run(mut cli: Cli, out: &mut impl Write, err: &mut impl Write) -> anyhow::Result<Outcome> {
    cli.resolve().map_err(anyhow::Error::msg)?;
    let target = cli.global.cluster.target();
    let certs = &cli.cert;
    let output = cli.global.common.output;
    let format = cli.doc_format();
    let common = &cli.global.common;
    let Some(command) = cli.command.clone() else {
        unreachable!("resolve() chose a command")
    };
    match command {
        Command::Seal(options) => {
            let outcome = seal::seal(&options, format, certs, &target).await?;
            print_sealed(&outcome, out, err)?;
            Ok(Outcome::Clean)
        }
        Command::Raw(options) => {
            emit(out, &seal::raw(&options, certs, &target).await?)?;
            Ok(Outcome::Clean)
        }
        Command::FetchCert => {
            emit(out, &seal::fetch_cert(certs, &target).await?)?;
            Ok(Outcome::Clean)
        }
        Command::Verify(options) => {
            let results = remote::verify(&options, certs, &target).await?;
            print_verified(&results, output, out)?;
            let failed = results.iter().any(|result| !result.decrypts);
            Ok(if failed { Outcome::Findings } else { Outcome::Clean })
        }
        Command::Rotate(options) => {
            let rotated = remote::rotate(&options, format, certs, &target).await?;
            print_rotated(&rotated, out, err)?;
            Ok(Outcome::Clean)
        }
        Command::Unseal(options) => {
            // The prod guard knows production namespaces from the repository's environments: the one
            // `--repo`/DULI_REPO names (it must be one), else the one around the current directory, if any.
            let repo = match &common.repo {
                Some(_) => Some(common.locate_repo()?),
                None => common.locate_repo().ok(),
            };
            let unsealed = recovery::unseal(&options, format, repo.as_ref(), common.yes)?;
            if let Some(text) = &unsealed.stdout {
                emit(out, text)?;
            }
            if let Some(path) = &unsealed.written {
                writeln!(
                    err,
                    "unsealed {} Secret(s) into {}",
                    unsealed.secrets,
                    path.display()
                )?;
            }
            Ok(Outcome::Clean)
        }
        Command::Init(options) => {
            let repo = common.locate_repo()?;
            let report = init::run(&repo, &options, common.yes, certs, &target).await?;
            print_init(&report, output, out)?;
            Ok(Outcome::Clean)
        }
        Command::Audit(options) => {
            let repo = common.locate_repo()?;
            let report = audit::run(&repo, &options, &target).await?;
            print_audit(&report, output, out, err)?;
            Ok(if report.findings.is_empty() {
                Outcome::Clean
            } else {
                Outcome::Findings
            })
        }
        Command::Completion { shell } => {
            out.flush()?;
            shared::cli::print_completion(shell, &Cli::command());
            Ok(Outcome::Clean)
        }
    }
}

/// Write `text` as it is and flush, so stdout and stderr interleave in the order things happened.
fn emit(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn print_document<T: serde::Serialize>(
    value: &T,
    output: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    Ok(emit(out, &to_document(value, output)?)?)
}

fn print_table(table: &impl std::fmt::Display, out: &mut impl Write) -> std::io::Result<()> {
    emit(out, &format!("{table}\n"))
}

fn print_sealed(outcome: &SealOutcome, out: &mut impl Write, err: &mut impl Write) -> std::io::Result<()> {
    if let Some(text) = &outcome.stdout {
        emit(out, text)?;
    }
    if let Some(path) = &outcome.written {
        writeln!(
            err,
            "sealed {} key(s) into {}",
            outcome.keys.len(),
            path.display()
        )?;
    }
    Ok(())
}

fn print_verified(
    results: &[VerifyResult],
    output: OutputFormat,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !matches!(output, OutputFormat::Table | OutputFormat::Wide) {
        return print_document(&results, output, out);
    }
    let mut table = shared::output::table(["FILE", "SECRET", "DECRYPTS"]);
    for result in results {
        let verdict = if result.decrypts {
            "yes"
        } else {
            "NO: wrong key, scope, name or namespace"
        };
        let file = match result.document {
            Some(document) => format!("{} (document {document})", result.file.display()),
            None => result.file.display().to_string(),
        };
        table.add_row([file, result.secret.clone(), verdict.to_string()]);
    }
    Ok(print_table(&table, out)?)
}

fn print_rotated(rotated: &[Rotated], out: &mut impl Write, err: &mut impl Write) -> std::io::Result<()> {
    for entry in rotated {
        if let Some(path) = &entry.written {
            writeln!(err, "re-encrypted {}", path.display())?;
        } else {
            emit(out, &entry.text)?;
        }
    }
    Ok(())
}

fn print_init(report: &InitReport, output: OutputFormat, out: &mut impl Write) -> anyhow::Result<()> {
    if !matches!(output, OutputFormat::Table | OutputFormat::Wide) {
        return print_document(&report.rows, output, out);
    }
    let mut table = shared::output::table(["FILE", "KEY", "ACTION"]);
    for row in &report.rows {
        table.add_row([row.file.clone(), row.key.clone(), row.action.to_string()]);
    }
    Ok(print_table(&table, out)?)
}

fn print_audit(
    report: &AuditReport,
    output: OutputFormat,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<()> {
    if !matches!(output, OutputFormat::Table | OutputFormat::Wide) {
        print_document(&report.findings, output, out)?;
    } else if report.findings.is_empty() {
        writeln!(
            err,
            "no secret-looking values found ({} object(s) scanned)",
            report.scanned
        )?;
    } else {
        let mut table = shared::output::table(["WHERE", "OBJECT", "FIELD", "FINDING"]);
        for finding in &report.findings {
            table.add_row([
                finding.source.clone(),
                finding.object.clone(),
                finding.field.clone(),
                finding.reason.clone(),
            ]);
        }
        print_table(&table, out)?;
    }
    for note in &report.notes {
        writeln!(err, "note: {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;
    use crate::format::{Scope, open_base64};
    use crate::testkeys;

    /// Run a command line in-process: the outcome, then what went to stdout and to stderr.
    async fn run_args(args: &[&str]) -> (Outcome, String, String) {
        let argv = std::iter::once("kubectl-duli-secrets").chain(args.iter().copied());
        let cli = Cli::try_parse_args(argv).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = run(cli, &mut out, &mut err).await.unwrap();
        (
            outcome,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn text(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[tokio::test]
    async fn commands_print_only_to_the_writers_they_are_given() {
        let dir = tempfile::tempdir().unwrap();
        let key = testkeys::rsa_2048();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, &key.cert_pem).unwrap();
        let manifest = dir.path().join("secret.yml");
        std::fs::write(
            &manifest,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: in-process}\n",
        )
        .unwrap();

        let (outcome, out, err) = run_args(&["fetch-cert", "--cert", text(&cert)]).await;
        assert_eq!(
            (outcome, out.as_str(), err.as_str()),
            (Outcome::Clean, key.cert_pem.as_str(), "")
        );

        let (outcome, out, err) =
            run_args(&["seal", "--cert", text(&cert), "-f", text(&manifest), "-o", "json"]).await;
        assert_eq!((outcome, err.as_str()), (Outcome::Clean, ""));
        let doc: Value = serde_json::from_str(&out).unwrap();
        let sealed = doc["spec"]["encryptedData"]["password"].as_str().unwrap();
        let label = Scope::Strict.label("staging", "db");
        assert_eq!(
            open_base64(&key.private_key(), &label, sealed).unwrap(),
            b"in-process"
        );

        // With --out the document goes to the file and only the progress line is printed, on stderr.
        let file = dir.path().join("sealed.yml");
        let (outcome, out, err) = run_args(&[
            "seal",
            "--cert",
            text(&cert),
            "-f",
            text(&manifest),
            "--out",
            text(&file),
        ])
        .await;
        assert_eq!((outcome, out.as_str()), (Outcome::Clean, ""));
        assert_eq!(err, format!("sealed 1 key(s) into {}\n", file.display()));
        let written: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(written["kind"], "SealedSecret");
    }
}

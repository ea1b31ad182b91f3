//! `kubectl duli secrets`: seal Secrets into SealedSecrets exactly as kubeseal does; init, verify, rotate, audit.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use shared::cli::{ClusterArgs, CommonArgs, CompletionShell};
use shared::error::{Outcome, finish};
use shared::output::OutputFormat;
use shared::secrets::controller::{self, Controller};
use shared::secrets::format::Scope;
use shared::secrets::manifest::DocFormat;
use shared::secrets::source::CertOptions;
use shared::secrets::{audit, init, remote, seal};

/// Seal, verify, rotate and audit the SealedSecrets of a duli environment.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-duli-secrets",
    bin_name = "kubectl duli secrets",
    version,
    about
)]
struct Cli {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    cert: CertArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the sealing certificate comes from, with kubeseal's flag and environment names.
#[derive(Debug, Clone, Args)]
struct CertArgs {
    /// Certificate file or URL (file://, http://, https://) instead of asking the cluster.
    #[arg(long, global = true, env = "SEALED_SECRETS_CERT", value_name = "FILE|URL")]
    cert: Option<String>,
    /// Name of the sealed-secrets controller Service.
    #[arg(long, global = true, env = "SEALED_SECRETS_CONTROLLER_NAME", default_value = controller::DEFAULT_NAME)]
    controller_name: String,
    /// Namespace of the sealed-secrets controller Service.
    #[arg(long, global = true, env = "SEALED_SECRETS_CONTROLLER_NAMESPACE", default_value = controller::DEFAULT_NAMESPACE)]
    controller_namespace: String,
    /// Use the certificate cached for the kubeconfig context; never contact the cluster.
    #[arg(long, global = true)]
    offline: bool,
    /// Deadline for each exchange with the controller through the API server (30s, 500ms, 2m).
    #[arg(long, global = true, default_value = "30s", value_parser = shared::envctl::args::parse_duration)]
    timeout: std::time::Duration,
}

impl CertArgs {
    fn controller(&self) -> Controller {
        Controller {
            name: self.controller_name.clone(),
            namespace: self.controller_namespace.clone(),
            timeout: self.timeout,
        }
    }

    fn options(&self) -> CertOptions {
        CertOptions {
            cert: self.cert.clone(),
            controller: self.controller(),
            offline: self.offline,
            cache: None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seal a Secret (stdin, -f FILE, or --name with --from-literal/--from-file/--from-env-file/--prompt).
    ///
    /// Output is YAML unless -o json or an --out FILE ending in .json; --merge-into keeps the file's format.
    Seal(SealArgs),
    /// Seal one value read from stdin (or --from-file) and print the bare encrypted string.
    Raw(RawArgs),
    /// Print the controller's certificate (and cache it for offline sealing).
    FetchCert,
    /// Ask the controller whether it can decrypt SealedSecret files (exit 1 if one does not).
    Verify {
        /// SealedSecret files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Re-encrypt SealedSecret files with the controller's newest key.
    Rotate {
        /// SealedSecret files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Rewrite the files (atomically) instead of printing the result.
        #[arg(long, short = 'i')]
        in_place: bool,
    },
    /// Generate an environment's credentials from gitops/secrets.yml and seal them into helm/secrets/sealed/ENV/.
    Init(InitArgs),
    /// Scan the rendered environment (and the live ConfigMaps) for secret-looking values (exit 1 on findings).
    Audit(AuditArgs),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

#[derive(Debug, Args)]
struct SealArgs {
    /// Secret manifest to read (YAML or JSON, several documents allowed); default stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Secret name (required when building from values; overrides the manifest's name).
    #[arg(long)]
    name: Option<String>,
    /// Namespace (default: the manifest's, else the kubeconfig context's, else `default`).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Scope (default: the input's scope annotations, else strict).
    #[arg(long, value_enum)]
    scope: Option<Scope>,
    /// Secret type (e.g. kubernetes.io/basic-auth).
    #[arg(long = "type", value_name = "TYPE")]
    secret_type: Option<String>,
    /// KEY=VALUE (visible in your shell history and process list; prefer --from-env-file or --prompt).
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    literals: Vec<String>,
    /// [KEY=]PATH: the file's bytes (KEY defaults to the file name; PATH `-` is stdin).
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    from_files: Vec<String>,
    /// File of KEY=VALUE lines (`-` is stdin).
    #[arg(long = "from-env-file", value_name = "PATH")]
    env_files: Vec<PathBuf>,
    /// Ask for KEY's value on the terminal, hidden.
    #[arg(long = "prompt", value_name = "KEY")]
    prompts: Vec<String>,
    /// Seal a Secret without data.
    #[arg(long)]
    allow_empty_data: bool,
    /// Update or add keys of this SealedSecret file; other keys stay byte-identical.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    merge_into: Option<PathBuf>,
    /// Write to FILE (atomically) instead of stdout.
    #[arg(long, short = 'w', value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RawArgs {
    /// Secret name (required for --scope strict).
    #[arg(long)]
    name: Option<String>,
    /// Namespace (required unless --scope cluster-wide).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Scope.
    #[arg(long, value_enum, default_value_t = Scope::Strict)]
    scope: Scope,
    /// Read the value from PATH instead of stdin.
    #[arg(long, value_name = "PATH")]
    from_file: Option<PathBuf>,
    /// Allow an empty value.
    #[arg(long)]
    allow_empty_data: bool,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// The environment (gitops/environments/ENV.yml).
    env: String,
    /// Regenerate these keys (KEY or SECRET/KEY; repeatable) instead of keeping their sealed values.
    #[arg(long, value_name = "KEY", num_args = 1..)]
    rotate: Vec<String>,
    /// Values for `prompt` keys as KEY=VALUE or SECRET/KEY=VALUE lines (`-` is stdin).
    #[arg(long = "from-env-file", value_name = "PATH")]
    env_files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// The environment (default: all environments).
    env: Option<String>,
    /// Skip the live ConfigMaps scan.
    #[arg(long)]
    no_live: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::error::init_logging(cli.common.verbose);
    finish(run(cli).await)
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn doc_format(output: OutputFormat) -> Option<DocFormat> {
    match output {
        OutputFormat::Table => None,
        OutputFormat::Json => Some(DocFormat::Json),
        OutputFormat::Yaml => Some(DocFormat::Yaml),
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let target = cli.cluster.target();
    let certs = cli.cert.options();
    match cli.command {
        Command::Seal(args) => {
            let options = seal::SealOptions {
                file: args.file,
                name: args.name,
                namespace: args.namespace,
                scope: args.scope,
                secret_type: args.secret_type,
                literals: args.literals,
                from_files: args.from_files,
                env_files: args.env_files,
                prompts: args.prompts,
                allow_empty_data: args.allow_empty_data,
                merge_into: args.merge_into,
                format: doc_format(cli.common.output),
                out: args.out,
            };
            let outcome = seal::seal(&options, &certs, &target).await?;
            if let Some(text) = outcome.stdout {
                print(&text)?;
            }
            if let Some(path) = outcome.written {
                eprintln!("sealed {} key(s) into {}", outcome.keys.len(), path.display());
            }
            Ok(Outcome::Clean)
        }
        Command::Raw(args) => {
            let options = seal::RawOptions {
                name: args.name,
                namespace: args.namespace,
                scope: args.scope,
                from_file: args.from_file,
                allow_empty: args.allow_empty_data,
            };
            print(&seal::raw(&options, &certs, &target).await?)?;
            Ok(Outcome::Clean)
        }
        Command::FetchCert => {
            print(&seal::fetch_cert(&certs, &target).await?)?;
            Ok(Outcome::Clean)
        }
        Command::Verify { files } => {
            let results = remote::verify(&files, &certs.controller, &target).await?;
            let failed = results.iter().any(|result| !result.decrypts);
            if cli.common.output == OutputFormat::Table {
                let mut table = shared::output::table(["FILE", "SECRET", "DECRYPTS"]);
                for result in &results {
                    let verdict = if result.decrypts {
                        "yes"
                    } else {
                        "NO: wrong key, scope, name or namespace"
                    };
                    table.add_row([
                        result.file.display().to_string(),
                        result.secret.clone(),
                        verdict.to_string(),
                    ]);
                }
                println!("{table}");
            } else {
                shared::output::print_document(&results, cli.common.output)?;
            }
            Ok(if failed { Outcome::Findings } else { Outcome::Clean })
        }
        Command::Rotate { files, in_place } => {
            let rotated = remote::rotate(&files, &certs.controller, &target, in_place).await?;
            for entry in rotated {
                if entry.written {
                    eprintln!("re-encrypted {}", entry.file.display());
                } else {
                    print(&entry.text)?;
                }
            }
            Ok(Outcome::Clean)
        }
        Command::Init(args) => {
            let repo = cli.common.locate_repo()?;
            let options = init::InitOptions {
                env: args.env,
                rotate: args.rotate,
                env_files: args.env_files,
                yes: cli.common.yes,
            };
            let report = init::run(&repo, &options, &certs, &target).await?;
            if cli.common.output == OutputFormat::Table {
                let mut table = shared::output::table(["FILE", "KEY", "ACTION"]);
                for row in &report.rows {
                    table.add_row([row.file.clone(), row.key.clone(), row.action.to_string()]);
                }
                println!("{table}");
            } else {
                shared::output::print_document(&report.rows, cli.common.output)?;
            }
            Ok(Outcome::Clean)
        }
        Command::Audit(args) => {
            let repo = cli.common.locate_repo()?;
            let options = audit::AuditOptions {
                env: args.env,
                live: !args.no_live,
            };
            let report = audit::run(&repo, &options, &target).await?;
            if cli.common.output == OutputFormat::Table {
                if report.findings.is_empty() {
                    eprintln!(
                        "no secret-looking values found ({} object(s) scanned)",
                        report.scanned
                    );
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
                    println!("{table}");
                }
            } else {
                shared::output::print_document(&report.findings, cli.common.output)?;
            }
            for note in &report.notes {
                eprintln!("note: {note}");
            }
            Ok(if report.findings.is_empty() {
                Outcome::Clean
            } else {
                Outcome::Findings
            })
        }
        Command::Completion { shell } => {
            shared::cli::print_completion(shell, &Cli::command());
            Ok(Outcome::Clean)
        }
    }
}

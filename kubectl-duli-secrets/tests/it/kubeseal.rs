//! kubeseal's flags and environment variables, offline: each flag is run through the plugin as a kubeseal
//! script would run it, and what comes out is checked against kubeseal's documented behaviour (JSON by
//! default, `.yaml` output files in YAML, `--raw` prints a bare value, `--from-file` needs `--raw`, `-f`
//! without `-w` under `--re-encrypt` rewrites the file) and opened with kubesealpy, an implementation we
//! did not write.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::*;
use serde_json::Value;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: s3cret}\n";

fn cert() -> String {
    keys().cert.display().to_string()
}

/// Run the plugin with `args`, `env` and `stdin`.
fn run(home: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = plugin(home);
    command.current_dir(home).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    run_with_stdin(command, stdin.as_bytes())
}

/// The oracle's view of a SealedSecret file: its one document's data, or the error.
fn opened(path: &Path, extra: &[&str]) -> Result<Value, String> {
    let key = keys().key.display().to_string();
    let mut args = vec!["unseal", key.as_str(), path.to_str().unwrap()];
    args.extend_from_slice(extra);
    oracle(&args).map(|text| serde_json::from_str::<Value>(&text).unwrap()[0]["data"].clone())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn is_json(text: &str) -> bool {
    text.starts_with('{') && serde_json::from_str::<Value>(text).is_ok()
}

#[test]
fn no_subcommand_seals_like_kubeseal_json_by_default_and_format_yaml_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let password = serde_json::json!({"password": b64(b"s3cret")});
    // (arguments, expect JSON)
    let cases: [(&[&str], bool); 6] = [
        (&["--cert", &cert()], true),
        (&["--format", "json", "--cert", &cert()], true),
        (&["--format", "YAML", "--cert", &cert()], false),
        (&["-o", "yaml", "--cert", &cert()], false),
        // The example: the subcommand with kubeseal's flag.
        (&["seal", "--format", "json", "--cert", &cert()], true),
        // The subcommand's own default stays YAML.
        (&["seal", "--cert", &cert()], false),
    ];
    for (index, (args, json)) in cases.iter().enumerate() {
        let output = run(home, args, &[], SECRET);
        assert_code(&output, 0);
        let text = stdout(&output);
        assert_eq!(is_json(&text), *json, "{args:?}:\n{text}");
        let path = write(home, &format!("out-{index}"), &text);
        assert_eq!(opened(&path, &[]).unwrap(), password, "{args:?}");
    }
}

#[test]
fn file_flags_scope_name_and_sealed_secrets_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let input = write(home, "secret.yaml", SECRET);
    let input = input.to_str().unwrap();
    // -f/--secret-file in, -w/--sealed-secret-file out: the extension picks YAML, else JSON (kubeseal).
    for (args, file, json) in [
        (
            vec!["--secret-file", input, "--sealed-secret-file", "a.yaml"],
            "a.yaml",
            false,
        ),
        (vec!["-f", input, "-w", "b.yml"], "b.yml", false),
        (vec!["-f", input, "-w", "c.json"], "c.json", true),
        (vec!["-f", input, "-w", "d.sealed"], "d.sealed", true),
        (
            vec!["seal", "--secret-file", input, "--sealed-secret-file", "e.json"],
            "e.json",
            true,
        ),
    ] {
        let output = run(home, &[&args[..], &["--cert", &cert()]].concat(), &[], "");
        assert_code(&output, 0);
        assert_eq!(stdout(&output), "", "{args:?}");
        let text = std::fs::read_to_string(home.join(file)).unwrap();
        assert_eq!(is_json(&text), json, "{args:?}:\n{text}");
        assert!(opened(&home.join(file), &[]).is_ok(), "{args:?}");
    }

    // Every flag also from SEALED_SECRETS_<FLAG>, as kubeseal's pflagenv reads them.
    let env = [
        ("SEALED_SECRETS_CERT", cert()),
        ("SEALED_SECRETS_SCOPE", "cluster-wide".to_string()),
        ("SEALED_SECRETS_FORMAT", "yaml".to_string()),
        ("SEALED_SECRETS_SECRET_FILE", input.to_string()),
        ("SEALED_SECRETS_SEALED_SECRET_FILE", "env.out".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = run(home, &[], &env, "");
    assert_code(&output, 0);
    let path = home.join("env.out");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !is_json(&text) && text.contains("cluster-wide: \"true\""),
        "{text}"
    );
    // Cluster-wide: opens under any name and namespace.
    assert!(opened(&path, &["--name", "other", "--namespace", "elsewhere"]).is_ok());

    // --scope and --name as flags: namespace-wide survives a rename, not a move.
    let output = run(
        home,
        &[
            "--scope",
            "namespace-wide",
            "--name",
            "renamed",
            "--cert",
            &cert(),
        ],
        &[],
        SECRET,
    );
    assert_code(&output, 0);
    let path = write(home, "nw.json", &stdout(&output));
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["metadata"]["name"], "renamed");
    assert!(opened(&path, &["--name", "any"]).is_ok());
    assert!(opened(&path, &["--namespace", "prod"]).is_err());
}

#[test]
fn raw_reads_dev_stdin_or_one_from_file_and_prints_a_bare_value() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let value_file = write(home, "value.txt", "from-a-file");
    let from_file = format!("--from-file=password={}", value_file.display());
    for (args, stdin, plain) in [
        (
            vec![
                "--raw",
                "--name",
                "db",
                "--namespace",
                "staging",
                "--from-file=/dev/stdin",
            ],
            "piped",
            "piped",
        ),
        (
            vec!["--raw", "--name", "db", "-n", "staging", from_file.as_str()],
            "",
            "from-a-file",
        ),
        (
            vec![
                "--raw",
                "--scope",
                "cluster-wide",
                "--from-file",
                value_file.to_str().unwrap(),
            ],
            "",
            "from-a-file",
        ),
    ] {
        let output = run(home, &[&args[..], &["--cert", &cert()]].concat(), &[], stdin);
        assert_code(&output, 0);
        let value = stdout(&output);
        assert!(
            !value.ends_with('\n') && value.starts_with("Ag"),
            "{args:?}: {value}"
        );
        let path = write(home, "raw.txt", &value);
        let scope = if args.contains(&"cluster-wide") {
            "cluster-wide"
        } else {
            "strict"
        };
        let key = keys().key.display().to_string();
        let opened = oracle(&[
            "unseal-raw",
            &key,
            path.to_str().unwrap(),
            "--scope",
            scope,
            "--name",
            "db",
            "--namespace",
            "staging",
        ])
        .unwrap();
        assert_eq!(opened.trim(), b64(plain.as_bytes()), "{args:?}");
    }

    // kubeseal's refusals, word for word where kubeseal has words.
    for (args, message) in [
        (vec!["--from-file", "x"], "--from-file requires --raw"),
        (
            vec!["--raw", "--name", "db", "-n", "staging", "--from-file", "a,b"],
            "must provide only one --from-file when encrypting a single item with --raw",
        ),
        (
            vec!["--raw", "--name", "db"],
            "must provide the --namespace flag with raw and --scope strict",
        ),
    ] {
        let output = run(home, &[&args[..], &["--cert", &cert()]].concat(), &[], "v");
        assert_code(&output, 2);
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "");
    }
}

#[test]
fn fetch_cert_merge_into_and_allow_empty_data() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let output = run(home, &["--fetch-cert", "--cert", &cert()], &[], "");
    assert_code(&output, 0);
    assert_eq!(stdout(&output), std::fs::read_to_string(&keys().cert).unwrap());

    let output = run(home, &["-w", "db.yaml", "--cert", &cert()], &[], SECRET);
    assert_code(&output, 0);
    let more = SECRET.replace("password: s3cret", "user: app");
    let output = run(home, &["--merge-into", "db.yaml", "--cert", &cert()], &[], &more);
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        opened(&home.join("db.yaml"), &[]).unwrap(),
        serde_json::json!({"password": b64(b"s3cret"), "user": b64(b"app")})
    );

    let empty = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\n";
    let output = run(home, &["--cert", &cert()], &[], empty);
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("--allow-empty-data"),
        "{}",
        stderr(&output)
    );
    let output = run(home, &["--allow-empty-data", "--cert", &cert()], &[], empty);
    assert_code(&output, 0);
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["kind"], "SealedSecret");
}

#[test]
fn mode_flags_before_a_subcommand_are_refused_but_their_variables_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let output = run(home, &["--raw", "seal", "--cert", &cert()], &[], SECRET);
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("--raw before the `seal` subcommand"),
        "{}",
        stderr(&output)
    );

    // A kubeseal variable left in the shell does not change what a subcommand does.
    let output = run(
        home,
        &["seal", "-o", "json", "--cert", &cert()],
        &[("SEALED_SECRETS_NAME", "other"), ("SEALED_SECRETS_RAW", "true")],
        SECRET,
    );
    assert_code(&output, 0);
    let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(doc["metadata"]["name"], "db");
}

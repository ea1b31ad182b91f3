//! Compatibility with an implementation we did not write: kubesealpy (PyPI) decrypts what the plugin
//! seals, for every scope, text, binary and empty values, YAML and JSON output, and raw values; and it
//! refuses to when the secret is renamed, moved or given another scope.
//!
//! Needs python3 with venv/pip access to PyPI (tests/setup-kubesealpy.sh) or `KUBESEALPY_PYTHON`.

use std::path::Path;

use crate::support::*;
use serde_json::Value;

fn binary() -> Vec<u8> {
    (0..=255u8).rev().collect()
}

fn secret_manifest(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{app: db}}\n\
         type: Opaque\ndata:\n  blob: {}\nstringData:\n  text: \"pässwörd ✓ with spaces\"\n  empty: \"\"\n",
        b64(&binary())
    )
}

fn expected() -> Value {
    serde_json::json!({"blob": b64(&binary()), "text": b64("pässwörd ✓ with spaces".as_bytes()), "empty": ""})
}

fn seal_to(dir: &Path, input: &str, args: &[&str], file: &str) -> std::path::PathBuf {
    let mut command = plugin(dir);
    command.arg("seal").arg("--cert").arg(&keys().cert).args(args);
    let output = run_with_stdin(command, input.as_bytes());
    assert_code(&output, 0);
    let path = dir.join(file);
    std::fs::write(&path, &output.stdout).unwrap();
    path
}

fn unseal(path: &Path, extra: &[&str]) -> Result<Value, String> {
    let key = keys().key.to_str().unwrap();
    let mut args = vec!["unseal", key, path.to_str().unwrap()];
    args.extend_from_slice(extra);
    oracle(&args).map(|text| serde_json::from_str(&text).unwrap())
}

#[test]
fn every_scope_with_text_binary_and_empty_values_decrypts_with_kubesealpy() {
    let dir = tempfile::tempdir().unwrap();
    for scope in ["strict", "namespace-wide", "cluster-wide"] {
        for format in ["yaml", "json"] {
            let path = seal_to(
                dir.path(),
                &secret_manifest("db", "staging"),
                &["--scope", scope, "-o", format],
                &format!("{scope}.{format}"),
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = unseal(&path, &[]).unwrap_or_else(|err| panic!("{scope} {format}: {err}"));
            assert_eq!(docs[0]["data"], expected(), "{scope} {format}");
            assert_eq!(docs[0]["name"], "db");
            // RSA-4096 values start `Ag` (u16 512 prefix), as kubeseal's do.
            assert!(text.contains(": Ag") || text.contains(": \"Ag"), "{text}");
        }
    }
}

#[test]
fn wrong_scope_renamed_or_moved_secrets_do_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let strict = seal_to(dir.path(), &secret_manifest("db", "staging"), &[], "strict.yml");
    assert!(unseal(&strict, &[]).is_ok());
    for extra in [
        &["--name", "db2"][..],
        &["--namespace", "prod"],
        &["--scope", "namespace-wide"],
        &["--scope", "cluster-wide"],
    ] {
        let err = unseal(&strict, extra).expect_err("must not decrypt");
        assert!(err.contains("NoMatchingKeyError"), "{extra:?}: {err}");
    }
    let namespace_wide = seal_to(
        dir.path(),
        &secret_manifest("db", "staging"),
        &["--scope", "namespace-wide"],
        "ns.yml",
    );
    assert_eq!(
        unseal(&namespace_wide, &["--name", "renamed"]).unwrap()[0]["data"],
        expected(),
        "namespace-wide survives a rename"
    );
    assert!(unseal(&namespace_wide, &["--namespace", "prod"]).is_err());
    assert!(unseal(&namespace_wide, &["--scope", "strict"]).is_err());
    let cluster_wide = seal_to(
        dir.path(),
        &secret_manifest("db", "staging"),
        &["--scope", "cluster-wide"],
        "cw.yml",
    );
    assert!(
        unseal(&cluster_wide, &["--namespace", "prod", "--name", "x"]).is_ok(),
        "cluster-wide survives a move"
    );
    assert!(unseal(&cluster_wide, &["--scope", "strict"]).is_err());
}

#[test]
fn multi_document_input_and_values_from_flags_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let two = format!(
        "{}---\n{}",
        secret_manifest("a", "staging"),
        secret_manifest("b", "prod")
    );
    let path = seal_to(dir.path(), &two, &[], "two.yml");
    let docs = unseal(&path, &[]).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 2);
    assert_eq!(
        (docs[1]["name"].as_str(), docs[1]["namespace"].as_str()),
        (Some("b"), Some("prod"))
    );

    let blob = dir.path().join("blob.bin");
    std::fs::write(&blob, binary()).unwrap();
    let env_file = dir.path().join("app.env");
    std::fs::write(&env_file, "text=pässwörd ✓ with spaces\n").unwrap();
    let mut command = plugin(dir.path());
    command.args([
        "seal",
        "--name",
        "flags",
        "-n",
        "staging",
        "--from-literal",
        "empty=",
        "--from-file",
    ]);
    command
        .arg(format!("blob={}", blob.display()))
        .arg("--from-env-file")
        .arg(&env_file);
    command
        .arg("--cert")
        .arg(&keys().cert)
        .arg("--out")
        .arg(dir.path().join("flags.json"));
    let output = run_with_stdin(command, b"");
    assert_code(&output, 0);
    let docs = unseal(&dir.path().join("flags.json"), &[]).unwrap();
    assert_eq!(docs[0]["data"], expected());
}

#[test]
fn raw_values_decrypt_for_every_scope() {
    let dir = tempfile::tempdir().unwrap();
    let key = keys().key.to_str().unwrap().to_string();
    for (scope, name, namespace) in [
        ("strict", "db", "staging"),
        ("namespace-wide", "", "staging"),
        ("cluster-wide", "", ""),
    ] {
        for value in [b"s3cret".to_vec(), binary()] {
            let mut command = plugin(dir.path());
            command
                .args(["raw", "--scope", scope])
                .arg("--cert")
                .arg(&keys().cert);
            if !name.is_empty() {
                command.args(["--name", name]);
            }
            if !namespace.is_empty() {
                command.args(["-n", namespace]);
            }
            let output = run_with_stdin(command, &value);
            assert_code(&output, 0);
            let raw = stdout(&output);
            assert!(!raw.ends_with('\n') && raw.starts_with("Ag"), "{raw}");
            let path = dir.path().join("raw.txt");
            std::fs::write(&path, &raw).unwrap();
            let mut args = vec![
                "unseal-raw",
                key.as_str(),
                path.to_str().unwrap(),
                "--scope",
                scope,
            ];
            if !name.is_empty() {
                args.extend(["--name", name]);
            }
            if !namespace.is_empty() {
                args.extend(["--namespace", namespace]);
            }
            assert_eq!(oracle(&args).unwrap().trim(), b64(&value), "{scope}");
            if scope == "strict" {
                let wrong = [
                    "unseal-raw",
                    key.as_str(),
                    path.to_str().unwrap(),
                    "--scope",
                    scope,
                    "--name",
                    "x",
                    "--namespace",
                    namespace,
                ];
                assert!(oracle(&wrong).is_err());
            }
        }
    }
}

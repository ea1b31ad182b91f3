//! Disaster recovery offline: `unseal` (kubeseal's `--recovery-unseal --recovery-private-key`) and
//! `rotate --private-key`, on SealedSecrets sealed by kubesealpy (an implementation we did not write), with
//! keys as PEM (PKCS#8 and the controller's PKCS#1) and as the key Secrets kubectl exports.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::*;
use serde_json::Value;

const PLAIN: &str = "correct horse battery staple";

fn secret(name: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {{app: db}}\n\
         type: kubernetes.io/basic-auth\ndata:\n  blob: {}\nstringData:\n  password: {PLAIN}\n",
        b64(&[0, 1, 2, 255])
    )
}

/// kubesealpy seals `secret` with `cert` into `dir/file`.
fn sealed_by_kubesealpy(dir: &Path, file: &str, secret: &str, cert: &Path, scope: &str) -> PathBuf {
    let input = dir.join(format!("{file}.plain"));
    std::fs::write(&input, secret).unwrap();
    let text = oracle(&[
        "seal",
        cert.to_str().unwrap(),
        input.to_str().unwrap(),
        "--scope",
        scope,
    ])
    .unwrap();
    std::fs::remove_file(&input).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(home: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = plugin(home);
    command.current_dir(home).args(args);
    run_with_stdin(command, stdin.as_bytes())
}

fn key() -> String {
    keys().key.display().to_string()
}

fn other_key() -> PathBuf {
    keys().dir.join("other-key.pem")
}

/// The Secret documents of YAML or JSON output.
fn secrets(text: &str) -> Vec<Value> {
    if text.starts_with('{') {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect()
    } else {
        serde_saphyr::from_multiple(text).unwrap()
    }
}

fn expected_data() -> Value {
    serde_json::json!({"blob": b64(&[0, 1, 2, 255]), "password": b64(PLAIN.as_bytes())})
}

#[test]
fn unseal_opens_what_kubesealpy_sealed_in_every_scope() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    for scope in ["strict", "namespace-wide", "cluster-wide"] {
        let file = sealed_by_kubesealpy(
            home,
            &format!("{scope}.yaml"),
            &secret("db", "staging"),
            &keys().cert,
            scope,
        );
        let output = run(
            home,
            &["unseal", "--private-key", &key(), file.to_str().unwrap()],
            "",
        );
        assert_code(&output, 0);
        let docs = secrets(&stdout(&output));
        assert_eq!(docs.len(), 1, "{scope}");
        let doc = &docs[0];
        assert_eq!(
            (doc["kind"].as_str(), doc["apiVersion"].as_str()),
            (Some("Secret"), Some("v1"))
        );
        assert_eq!(doc["metadata"]["name"], "db");
        assert_eq!(doc["metadata"]["namespace"], "staging");
        assert_eq!(doc["metadata"]["labels"]["app"], "db");
        assert_eq!(doc["type"], "kubernetes.io/basic-auth");
        assert_eq!(doc["data"], expected_data(), "{scope}");

        // kubeseal's spelling: stdin in, JSON out by default.
        let text = std::fs::read_to_string(&file).unwrap();
        let output = run(
            home,
            &["--recovery-unseal", "--recovery-private-key", &key()],
            &text,
        );
        assert_code(&output, 0);
        let doc: Value = serde_json::from_str(&stdout(&output)).expect("kubeseal mode prints JSON");
        assert_eq!(doc["data"], expected_data(), "{scope}");
    }
}

#[test]
fn keys_come_as_pkcs1_pkcs8_or_the_exported_key_secrets_and_many_are_tried() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let file = sealed_by_kubesealpy(home, "db.yaml", &secret("db", "staging"), &keys().cert, "strict");
    let second = sealed_by_kubesealpy(
        home,
        "db2.yaml",
        &secret("db2", "staging"),
        &keys().other_cert,
        "strict",
    );
    // The controller writes tls.key as PKCS#1.
    testkit::certs::openssl(home, &["rsa", "-in", &key(), "-traditional", "-out", "pkcs1.pem"]);
    let pkcs1 = std::fs::read_to_string(home.join("pkcs1.pem")).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    // `kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`: a List of the keys.
    let item = |name: &str, pem: &str| {
        format!(
            "- apiVersion: v1\n  kind: Secret\n  metadata: {{name: {name}, namespace: kube-system}}\n  \
             type: kubernetes.io/tls\n  data:\n    tls.crt: {}\n    tls.key: {}\n",
            b64(b"not used"),
            b64(pem.as_bytes())
        )
    };
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}",
        item(
            "sealed-secrets-keyold",
            &std::fs::read_to_string(other_key()).unwrap()
        ),
        item("sealed-secrets-keynew", &pkcs1)
    );
    std::fs::write(home.join("keys.yaml"), &list).unwrap();
    let both = format!("{},{}", other_key().display(), home.join("pkcs1.pem").display());
    for keys_args in [
        vec!["-k", "keys.yaml"],
        vec!["-k", both.as_str()],
        vec![
            "-k",
            "pkcs1.pem",
            "--recovery-private-key",
            other_key().to_str().unwrap(),
        ],
    ] {
        let output = run(
            home,
            &[
                &["unseal"][..],
                &keys_args,
                &[file.to_str().unwrap(), second.to_str().unwrap()],
            ]
            .concat(),
            "",
        );
        assert_code(&output, 0);
        let docs = secrets(&stdout(&output));
        let names: Vec<&str> = docs
            .iter()
            .map(|doc| doc["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["db", "db2"], "{keys_args:?}");
        assert!(
            docs.iter().all(|doc| doc["data"] == expected_data()),
            "{keys_args:?}"
        );
    }

    // A Secret without tls.key is named, and what to pass instead is said.
    std::fs::write(home.join("wrong.yaml"), list.replace("tls.key", "other")).unwrap();
    let output = run(home, &["unseal", "-k", "wrong.yaml", file.to_str().unwrap()], "");
    assert_code(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("wrong.yaml")
            && err.contains("kube-system/sealed-secrets-keyold")
            && err.contains("tls.key"),
        "{err}"
    );
}

#[test]
fn a_wrong_key_names_the_item_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let file = sealed_by_kubesealpy(home, "db.yaml", &secret("db", "staging"), &keys().cert, "strict");
    let output = run(
        home,
        &[
            "unseal",
            "-k",
            other_key().to_str().unwrap(),
            "-w",
            "out.yaml",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_code(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("db.yaml")
            && err.contains("`staging/db`")
            && err.contains("key `blob`")
            && err.contains("none of the 1 private key(s)")
            && err.contains("scope strict"),
        "{err}"
    );
    assert_eq!(stdout(&output), "");
    assert!(!home.join("out.yaml").exists());

    // Moved to another namespace: the right key no longer opens it.
    let moved = home.join("moved.yaml");
    std::fs::write(
        &moved,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("namespace: staging", "namespace: prod"),
    )
    .unwrap();
    let output = run(home, &["unseal", "-k", &key(), moved.to_str().unwrap()], "");
    assert_code(&output, 2);
    assert!(stderr(&output).contains("`prod/db`"), "{}", stderr(&output));
}

#[test]
fn unseal_writes_the_plaintext_only_to_the_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let file = sealed_by_kubesealpy(home, "db.yaml", &secret("db", "staging"), &keys().cert, "strict");
    let text = std::fs::read_to_string(&file).unwrap();
    let key = key();
    for args in [
        vec![
            "unseal",
            "-vvv",
            "-k",
            &key,
            "-w",
            "out.json",
            file.to_str().unwrap(),
        ],
        vec![
            "-vvv",
            "--recovery-unseal",
            "--recovery-private-key",
            &key,
            "-w",
            "out.json",
        ],
    ] {
        let _ = std::fs::remove_file(home.join("out.json"));
        let output = run(home, &args, &text);
        assert_code(&output, 0);
        assert_eq!(stdout(&output), "", "{args:?}");
        for shown in [stderr(&output), stdout(&output)] {
            assert!(
                !shown.contains(PLAIN) && !shown.contains(&b64(PLAIN.as_bytes())),
                "{args:?}: {shown}"
            );
        }
        let out = home.join("out.json");
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(doc["data"], expected_data());
    }
}

#[test]
fn unsealing_a_production_sealed_secret_needs_yes_without_a_terminal() {
    let repo = repo_with_environments();
    std::fs::create_dir_all(repo.path().join("helm")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let prod = sealed_by_kubesealpy(home, "prod.yaml", &secret("db", "prod"), &keys().cert, "strict");
    let staging = sealed_by_kubesealpy(
        home,
        "staging.yaml",
        &secret("db", "staging"),
        &keys().cert,
        "strict",
    );
    let repo_arg = repo.path().to_str().unwrap();
    let (prod, staging) = (prod.to_str().unwrap(), staging.to_str().unwrap());
    let output = run(home, &["unseal", "--repo", repo_arg, "-k", &key(), prod], "");
    assert_code(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("production environment `prod`") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(stdout(&output), "");

    let output = run(
        home,
        &["unseal", "--repo", repo_arg, "-k", &key(), "--yes", prod],
        "",
    );
    assert_code(&output, 0);
    assert_eq!(secrets(&stdout(&output))[0]["data"], expected_data());
    let output = run(home, &["unseal", "--repo", repo_arg, "-k", &key(), staging], "");
    assert_code(&output, 0);
}

#[test]
fn offline_rotate_re_seals_with_the_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Sealed for the old key; the controller has a new one.
    let old = other_key();
    let file = sealed_by_kubesealpy(
        home,
        "db.yaml",
        &secret("db", "staging"),
        &keys().other_cert,
        "namespace-wide",
    );
    let cert = keys().cert.display().to_string();
    let (old_arg, file_arg) = (old.to_str().unwrap(), file.to_str().unwrap());
    let output = run(
        home,
        &["rotate", "--private-key", old_arg, "--cert", &cert, file_arg],
        "",
    );
    assert_code(&output, 0);
    let rotated = write_text(home, "rotated.yaml", &stdout(&output));
    let opened = |path: &Path, key: &Path| {
        oracle(&["unseal", key.to_str().unwrap(), path.to_str().unwrap()])
            .map(|text| serde_json::from_str::<Value>(&text).unwrap()[0]["data"].clone())
    };
    assert_eq!(opened(&rotated, &keys().key).unwrap(), expected_data());
    assert!(
        opened(&rotated, &old).is_err(),
        "the old key must no longer open it"
    );
    // Only the values changed: the annotations (scope) and template stay.
    let doc: Value = serde_saphyr::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        doc["metadata"]["annotations"]["sealedsecrets.bitnami.com/namespace-wide"],
        "true"
    );
    assert_eq!(doc["spec"]["template"]["type"], "kubernetes.io/basic-auth");

    // kubeseal's spelling: --re-encrypt -f FILE rewrites the file (kubeseal #405), keeping YAML for .yaml.
    let output = run(
        home,
        &[
            "--re-encrypt",
            "--recovery-private-key",
            old_arg,
            "--cert",
            &cert,
            "-f",
            file_arg,
        ],
        "",
    );
    assert_code(&output, 0);
    assert_eq!(stdout(&output), "");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.trim_start().starts_with('{'), "{text}");
    assert_eq!(opened(&file, &keys().key).unwrap(), expected_data());

    // The wrong old key: nothing is written.
    let before = std::fs::read_to_string(&file).unwrap();
    let output = run(
        home,
        &["rotate", "-i", "-k", old_arg, "--cert", &cert, file_arg],
        "",
    );
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("none of the 1 private key(s)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

fn write_text(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

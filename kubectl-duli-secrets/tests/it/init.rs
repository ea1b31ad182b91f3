//! `init ENV` on a scratch repository: generated credentials sealed into helm/secrets/sealed/ENV/, kept on
//! re-runs, rotated only on request, prompt keys from --from-env-file, and nothing written on error.

use std::path::{Path, PathBuf};

use crate::support::*;
use kubectl_duli_secrets::format::{Scope, open_base64};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;

const CATALOG: &str = "# test catalog\nsecrets:\n\
- name: postgres-app\n  namespace: env\n  type: kubernetes.io/basic-auth\n  keys:\n    username: {value: app}\n    password: {generate: password, length: 40}\n\
- name: redis\n  namespace: env\n  keys:\n    password: {generate: password}\n\
- name: smtp-relay\n  namespace: env\n  keys:\n    password: {prompt: SMTP relay password}\n\
- name: grafana-admin\n  namespace: monitoring\n  keys:\n    admin-password: {generate: password}\n\
operator_created:\n- database-app\n";

fn repo() -> tempfile::TempDir {
    let dir = repo_with_environments();
    let root = dir.path();
    std::fs::create_dir_all(root.join("helm")).unwrap();
    std::fs::write(root.join("gitops/secrets.yml"), CATALOG).unwrap();
    dir
}

fn init(repo: &Path, args: &[&str]) -> std::process::Output {
    let mut command = plugin(repo);
    command
        .args(["init", "--repo"])
        .arg(repo)
        .args(["--cert"])
        .arg(&keys().cert)
        .args(args);
    run_with_stdin(command, b"")
}

fn sealed(repo: &Path, env: &str, name: &str) -> PathBuf {
    repo.join(format!("helm/secrets/sealed/{env}/{name}.yml"))
}

fn open(path: &Path) -> Vec<(String, String)> {
    let key = rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&keys().key).unwrap()).unwrap();
    let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let name = doc["metadata"]["name"].as_str().unwrap();
    let namespace = doc["metadata"]["namespace"].as_str().unwrap();
    let label = Scope::Strict.label(namespace, name);
    doc["spec"]["encryptedData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                String::from_utf8(open_base64(&key, &label, v.as_str().unwrap()).unwrap()).unwrap(),
            )
        })
        .collect()
}

fn values_file(repo: &Path, name: &str, text: &str) -> String {
    let path = repo.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn init_generates_keeps_and_rotates() {
    let repo = repo();
    let root = repo.path();
    let values = values_file(root, "values.env", "smtp-relay/password=relay-PLAINTEXT-5Tq\n");
    let output = init(root, &["staging", "--from-env-file", &values]);
    assert_code(&output, 0);
    let pg = sealed(root, "staging", "postgres-app");
    let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&pg).unwrap()).unwrap();
    assert_eq!(doc["metadata"]["namespace"], "staging");
    assert_eq!(doc["spec"]["template"]["type"], "kubernetes.io/basic-auth");
    let pg_values = open(&pg);
    assert_eq!(pg_values[1], ("username".to_string(), "app".to_string()));
    let password = &pg_values[0].1;
    assert_eq!(password.len(), 40);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    let redis_password = open(&sealed(root, "staging", "redis"))[0].1.clone();
    assert_eq!(redis_password.len(), 32);
    assert_ne!(&redis_password, password);
    assert_eq!(
        open(&sealed(root, "staging", "smtp-relay"))[0].1,
        "relay-PLAINTEXT-5Tq"
    );
    // A fixed namespace goes to shared/, for every environment.
    let grafana = sealed(root, "shared", "grafana-admin");
    assert!(
        std::fs::read_to_string(&grafana)
            .unwrap()
            .contains("namespace: monitoring")
    );
    assert!(!sealed(root, "staging", "grafana-admin").exists());
    // Plaintext never printed.
    for secret in [password.as_str(), redis_password.as_str(), "relay-PLAINTEXT-5Tq"] {
        assert!(!stdout(&output).contains(secret) && !stderr(&output).contains(secret));
    }
    assert!(stdout(&output).contains("generated"), "{}", stdout(&output));

    // A re-run keeps every value byte-for-byte, and needs no prompt value.
    let before: Vec<String> = ["postgres-app", "redis", "smtp-relay"]
        .iter()
        .map(|n| std::fs::read_to_string(sealed(root, "staging", n)).unwrap())
        .collect();
    let output = init(root, &["staging"]);
    assert_code(&output, 0);
    let after: Vec<String> = ["postgres-app", "redis", "smtp-relay"]
        .iter()
        .map(|n| std::fs::read_to_string(sealed(root, "staging", n)).unwrap())
        .collect();
    assert_eq!(before, after);

    // --rotate changes only that key's line.
    let output = init(root, &["staging", "--rotate", "postgres-app/password"]);
    assert_code(&output, 0);
    let rotated = std::fs::read_to_string(&pg).unwrap();
    let changed: Vec<&str> = rotated
        .lines()
        .filter(|line| !before[0].lines().any(|old| old == *line))
        .collect();
    assert_eq!(changed.len(), 1, "{rotated}");
    assert!(changed[0].trim_start().starts_with("password: "));
    assert_ne!(&open(&pg)[0].1, password);
    assert_eq!(
        std::fs::read_to_string(sealed(root, "staging", "redis")).unwrap(),
        before[1]
    );
}

#[test]
fn init_errors_write_nothing() {
    let repo = repo();
    let root = repo.path();
    // A prompt key with no value and no terminal.
    let output = init(root, &["staging"]);
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("smtp-relay/password needs a value (SMTP relay password)"),
        "{}",
        stderr(&output)
    );
    assert!(!root.join("helm/secrets").exists());
    // Unknown environment, unknown --rotate key, unknown env-file key.
    let output = init(root, &["qa"]);
    assert_code(&output, 2);
    assert!(stderr(&output).contains("unknown environment `qa`"));
    let values = values_file(root, "values.env", "smtp-relay/password=x\n");
    let output = init(root, &["staging", "--from-env-file", &values, "--rotate", "nope"]);
    assert_code(&output, 2);
    assert!(stderr(&output).contains("--rotate nope"), "{}", stderr(&output));
    let bad = values_file(root, "bad.env", "postgres-app/password=x\n");
    let output = init(root, &["staging", "--from-env-file", &bad]);
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("is not a `prompt` key"),
        "{}",
        stderr(&output)
    );
    assert!(!root.join("helm/secrets").exists());
    // Production rotation needs --yes without a terminal.
    let output = init(root, &["prod", "--from-env-file", &values]);
    assert_code(&output, 0);
    let output = init(root, &["prod", "--rotate", "password"]);
    assert_code(&output, 2);
    assert!(stderr(&output).contains("--yes"), "{}", stderr(&output));
    let output = init(root, &["prod", "--rotate", "redis/password", "--yes"]);
    assert_code(&output, 0);
    // A file for another namespace is a conflict, not an overwrite.
    let file = sealed(root, "prod", "redis");
    let moved = std::fs::read_to_string(&file)
        .unwrap()
        .replace("namespace: prod", "namespace: elsewhere");
    std::fs::write(&file, &moved).unwrap();
    let output = init(root, &["prod"]);
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains("holds SealedSecret elsewhere/redis"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), moved);
}

/// Temporaries a killed run left behind (`.duli-<pid>-<n>.tmp`, the process gone) are removed by the
/// rerun; a temporary of a live process is left alone.
#[test]
fn a_rerun_removes_the_temporaries_of_a_killed_run() {
    let repo = repo();
    let root = repo.path();
    let values = values_file(root, "values.env", "smtp-relay/password=relay-PLAINTEXT-5Tq\n");
    let env_dir = root.join("helm/secrets/sealed/staging");
    let shared_dir = root.join("helm/secrets/sealed/shared");
    std::fs::create_dir_all(&env_dir).unwrap();
    std::fs::create_dir_all(&shared_dir).unwrap();
    // Above any pid_max: no process can have these ids.
    let stale = [
        env_dir.join(".duli-4194999-0.tmp"),
        shared_dir.join(".duli-4194998-3.tmp"),
    ];
    for path in &stale {
        std::fs::write(path, "half a sealed file").unwrap();
    }
    let live = env_dir.join(format!(".duli-{}-0.tmp", std::process::id()));
    std::fs::write(&live, "another run's").unwrap();
    let output = init(root, &["staging", "--from-env-file", &values]);
    assert_code(&output, 0);
    for path in &stale {
        assert!(!path.exists(), "{} left", path.display());
    }
    assert!(live.exists(), "a live run's temporary was removed");
    assert!(sealed(root, "staging", "redis").is_file());
}

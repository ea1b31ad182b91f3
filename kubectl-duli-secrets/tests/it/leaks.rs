//! The secret-leak audit of `kubectl duli secrets` (issue #9): `seal` in every input form (stdin, -f,
//! --from-literal, --from-file, --from-file from stdin, --from-env-file), `--out` in YAML and JSON,
//! `--merge-into`, `raw` (stdin and --from-file), `init` (generated and prompted values) and sealing through
//! the cluster, all at `-vv` and under the scanner shared with the db audit (`leakscan`): the plugin's
//! process tree (argv and environment), every version of every file under HOME (outputs, certificate
//! cache, TMPDIR) and the repository, stdout and stderr — none may hold a plaintext value. Failures with
//! plaintext in their input are audited the same way. Nothing the plugin writes holds plaintext at all, so
//! no file needs mode 0600 (the db audit checks the one that does, psql's password file).
//!
//! The one exception is documented: `--from-literal KEY=VALUE` puts the value in the plugin's own command
//! line, by the user's choice (the flag's help says so and points to --from-env-file and --prompt).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::leakscan::{self, Allowed, Scan, assert_no_leak};
use crate::support::*;
use kubectl_duli_secrets::format::{Scope, open_base64};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;

const VALUES: [&str; 6] = [
    "manifest-PLAINTEXT-1Qa",
    "literal-PLAINTEXT-2Ws",
    "file-PLAINTEXT-3Ed",
    "env-PLAINTEXT-4Rf",
    "stdin-PLAINTEXT-5Tg",
    "raw-PLAINTEXT-6Yh",
];

fn manifest() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: staging}}\nstringData:\n  password: {}\n",
        VALUES[0]
    )
}

/// Run the plugin at -vv with HOME (and TMPDIR, cwd) = `home` under the scanner, which also watches `extra`.
fn audited(
    home: &Path,
    extra: &[PathBuf],
    args: &[&str],
    stdin: &[u8],
    kubeconfig: Option<&Path>,
) -> (Output, leakscan::Observed) {
    let mut command = plugin(home);
    command
        .arg("-vv")
        .args(args)
        .current_dir(home)
        .env("TMPDIR", home.join("tmp"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    std::fs::create_dir_all(home.join("tmp")).unwrap();
    let mut child = command.spawn().unwrap();
    let mut dirs = vec![home.to_path_buf()];
    dirs.extend(extra.iter().cloned());
    let scan = Scan::start(child.id(), &dirs);
    // A run that fails before reading stdin closes the pipe; that is the outcome under audit.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    let output = child.wait_with_output().unwrap();
    let seen = scan.finish();
    (output, seen)
}

fn check(what: &str, output: &Output, seen: &leakscan::Observed, secrets: &[&str], allowed: &Allowed) {
    assert_no_leak(what, &stdout(output), &stderr(output), seen, secrets, allowed);
    assert!(
        seen.programs().contains(&"kubectl-duli-secrets"),
        "{what}: the plugin was seen: {:?}",
        seen.programs()
    );
    let children = seen.child_programs();
    assert!(
        children.is_empty(),
        "{what}: no child processes expected: {children:?}"
    );
}

fn private_key() -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&keys().key).unwrap()).unwrap()
}

/// The plaintext values of a SealedSecret file (strict scope).
fn open_file(path: &Path) -> Vec<String> {
    let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let label = Scope::Strict.label(
        doc["metadata"]["namespace"].as_str().unwrap_or(""),
        doc["metadata"]["name"].as_str().unwrap(),
    );
    doc["spec"]["encryptedData"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| {
            String::from_utf8(open_base64(&private_key(), &label, v.as_str().unwrap()).unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn seal_raw_and_merge_leak_nothing() {
    let inputs = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (i, h) = (inputs.path(), home.path());
    let manifest_file = i.join("secret.yml");
    std::fs::write(&manifest_file, manifest()).unwrap();
    let value_file = i.join("value.txt");
    std::fs::write(&value_file, VALUES[2]).unwrap();
    let env_file = i.join("app.env");
    std::fs::write(&env_file, format!("TOKEN={}\n", VALUES[3])).unwrap();
    let raw_file = i.join("raw.txt");
    std::fs::write(&raw_file, VALUES[5]).unwrap();
    let cert = keys().cert.display().to_string();
    let yaml_out = h.join("out/db.yml");
    let json_out = h.join("out/db.json");
    let s = |p: &Path| p.display().to_string();
    let literal = format!("user={}", VALUES[1]);
    let from_file = format!("key={}", s(&value_file));
    let runs: Vec<(Vec<String>, Vec<u8>, Allowed)> = vec![
        (vec!["seal".into(), "--cert".into(), cert.clone()], manifest().into_bytes(), Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "-f".into(), s(&manifest_file), "--out".into(), s(&yaml_out)], vec![], Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "-o".into(), "json".into(), "--out".into(), s(&json_out)], manifest().into_bytes(), Allowed::default()),
        (
            vec!["seal".into(), "--cert".into(), cert.clone(), "--name".into(), "app".into(), "-n".into(), "staging".into(), "--from-literal".into(), literal.clone()],
            vec![],
            Allowed {
                root_argv: vec![VALUES[1].into()],
                ..Allowed::default()
            },
        ),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "--name".into(), "app".into(), "-n".into(), "staging".into(), "--from-file".into(), from_file.clone()], vec![], Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "--name".into(), "app".into(), "-n".into(), "staging".into(), "--from-file".into(), "piped=-".into()], VALUES[4].as_bytes().to_vec(), Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "--name".into(), "app".into(), "-n".into(), "staging".into(), "--from-env-file".into(), s(&env_file)], vec![], Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "--merge-into".into(), s(&yaml_out), "--from-env-file".into(), s(&env_file)], vec![], Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone(), "--merge-into".into(), s(&json_out), "--from-file".into(), from_file.clone()], vec![], Allowed::default()),
        (vec!["raw".into(), "--cert".into(), cert.clone(), "--name".into(), "db".into(), "-n".into(), "staging".into()], VALUES[5].as_bytes().to_vec(), Allowed::default()),
        (vec!["raw".into(), "--cert".into(), cert.clone(), "--scope".into(), "cluster-wide".into(), "--from-file".into(), s(&raw_file)], vec![], Allowed::default()),
        // Failures with plaintext in the input.
        (vec!["seal".into(), "--cert".into(), cert.clone()], format!("kind: Secret\nmetadata: {{name: a, namespace: b}}\nstringData:\n  a: {}\n   b: [\n", VALUES[0]).into_bytes(), Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone()], format!("{{\"kind\":\"Secret\",\"metadata\":{{\"name\":\"a\",\"namespace\":\"b\"}},\"stringData\":{{\"a\":\"{}\",\"a\":\"x\"}}}}", VALUES[0]).into_bytes(), Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone()], format!("kind: Secret\nmetadata: {{name: a, namespace: b}}\nstringData:\n  'bad key': {}\n", VALUES[0]).into_bytes(), Allowed::default()),
        (vec!["seal".into(), "--cert".into(), cert.clone()], format!("kind: Secret\nmetadata: {{name: a, namespace: 'B B'}}\nstringData: {{a: {}}}\n", VALUES[0]).into_bytes(), Allowed::default()),
        (vec!["seal".into(), "--cert".into(), keys().expired.display().to_string(), "--merge-into".into(), s(&yaml_out), "--from-file".into(), from_file.clone()], vec![], Allowed::default()),
        (vec!["raw".into(), "--cert".into(), keys().ec.display().to_string(), "--name".into(), "db".into(), "-n".into(), "staging".into()], VALUES[5].as_bytes().to_vec(), Allowed::default()),
    ];
    let mut codes = Vec::new();
    for (args, stdin, allowed) in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (output, seen) = audited(h, &[], &args, stdin, None);
        check(&format!("{args:?}"), &output, &seen, &VALUES, allowed);
        codes.push(output.status.code().unwrap_or(-1));
    }
    assert_eq!(
        codes,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2],
        "{codes:?}"
    );
    // The written files hold the values, sealed.
    let yaml_values = open_file(&yaml_out);
    assert!(yaml_values.contains(&VALUES[0].to_string()) && yaml_values.contains(&VALUES[3].to_string()));
    let json_values = open_file(&json_out);
    assert!(json_values.contains(&VALUES[0].to_string()) && json_values.contains(&VALUES[2].to_string()));
}

#[test]
fn init_leaks_nothing() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    std::fs::create_dir_all(root.join("helm")).unwrap();
    std::fs::create_dir_all(root.join("gitops/environments")).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gitops");
    std::fs::copy(
        source.join("environments/staging.yml"),
        root.join("gitops/environments/staging.yml"),
    )
    .unwrap();
    std::fs::write(
        root.join("gitops/secrets.yml"),
        "secrets:\n- name: redis-secret\n  namespace: env\n  keys:\n    password: {generate: password}\n\
         - name: smtp\n  namespace: env\n  keys:\n    user: {value: mailer}\n    password: {prompt: SMTP password}\n",
    )
    .unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let values = inputs.path().join("values.env");
    std::fs::write(&values, "smtp/password=prompted-PLAINTEXT-7Uj\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let cert = keys().cert.display().to_string();
    let mut outputs = Vec::new();
    for extra in [&[][..], &["--rotate", "redis-secret/password"]] {
        let mut args = vec![
            "init",
            "staging",
            "--cert",
            &cert,
            "--repo",
            root.to_str().unwrap(),
        ];
        let values = values.display().to_string();
        args.extend(["--from-env-file", &values]);
        args.extend(extra);
        let (output, seen) = audited(home.path(), &[root.to_path_buf()], &args, b"", None);
        assert_code(&output, 0);
        // The generated passwords are known only now: open the sealed files, then audit for every value.
        let mut secrets = vec!["prompted-PLAINTEXT-7Uj".to_string()];
        for name in ["redis-secret", "smtp"] {
            let file = root.join(format!("helm/secrets/sealed/staging/{name}.yml"));
            secrets.extend(open_file(&file).into_iter().filter(|v| v != "mailer"));
        }
        assert_eq!(secrets.len(), 3, "{secrets:?}");
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        check(
            &format!("{args:?}"),
            &output,
            &seen,
            &secrets,
            &Allowed::default(),
        );
        outputs.push(secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    assert_ne!(outputs[0][1], outputs[1][1], "--rotate made a new password");
}

/// Sealing through the cluster at -vv: the client's debug logs of the certificate fetch hold no value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_through_the_cluster_leaks_nothing() {
    let service = certificate_serving_service().await;
    let api = kube_standin::StandIn::builder()
        .seed_yaml(&service)
        .start()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig_yaml()).unwrap();
    let h = home.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        for args in [&["seal"][..], &["seal", "-o", "json"], &["fetch-cert"]] {
            let (output, seen) = audited(&h, &[], args, manifest().as_bytes(), Some(&kubeconfig));
            assert_code(&output, 0);
            // The offline paths log nothing at -vv; the cluster's client does.
            assert!(
                stderr(&output).contains("DEBUG"),
                "{args:?}: -vv logs: {}",
                stderr(&output)
            );
            check(&format!("{args:?}"), &output, &seen, &VALUES, &Allowed::default());
        }
        let raw = ["raw", "-n", "staging", "--name", "db"];
        let (output, seen) = audited(&h, &[], &raw, VALUES[5].as_bytes(), Some(&kubeconfig));
        assert_code(&output, 0);
        check(
            "raw through the cluster",
            &output,
            &seen,
            &VALUES,
            &Allowed::default(),
        );
    })
    .await
    .unwrap();
    assert!(api.requests().iter().all(|r| r.method == "GET"));
}

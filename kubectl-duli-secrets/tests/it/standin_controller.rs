//! The same cluster-side commands against kube-standin's own sealed-secrets controller — no HTTP server
//! in the test: `fetch-cert`, `seal`, `verify` and `rotate` go through the proxy of
//! `kube-system/sealed-secrets-controller` to the stand-in's controller, which holds two keys (the one
//! that sealed an older file, and the active one that `rotate` re-encrypts with), and a sealed file
//! applied with the real kubectl is unsealed into its Secret.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::*;
use kube_standin::StandIn;
use kubectl_duli_secrets::format::{Scope, open_base64};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: sealed-secrets-controller\n  \
     namespace: kube-system\nspec:\n  selector: {app.kubernetes.io/name: sealed-secrets}\n  ports:\n  \
     - {name: http, port: 8080, targetPort: http}\n";

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: s3cret, user: app}\n";

struct Env {
    api: StandIn,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// A key file as the controller keeps it: the private key, then its certificate.
fn key_file(dir: &Path, name: &str, key: &Path, cert: &Path) -> PathBuf {
    let path = dir.join(name);
    let text = std::fs::read_to_string(key).unwrap() + &std::fs::read_to_string(cert).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

async fn setup() -> Env {
    let keys = keys();
    let home = tempfile::tempdir().unwrap();
    let old = key_file(home.path(), "old.pem", &keys.key, &keys.cert);
    let active = key_file(
        home.path(),
        "active.pem",
        &keys.dir.join("other-key.pem"),
        &keys.other_cert,
    );
    let api = StandIn::builder()
        .crd_dir(kube_standin::shared_crds("sealed-secrets"))
        .seed_yaml(SERVICE)
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
        .sealing_key(old)
        .sealing_key(active)
        .simulate_ready(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let kubeconfig = api.write_kubeconfig(home.path()).unwrap();
    Env {
        api,
        home,
        kubeconfig,
    }
}

async fn run(env: &Env, args: &[&str], stdin: &str) -> Output {
    run_against(env.home.path(), &env.kubeconfig, args, stdin).await
}

fn open_all(doc: &Value, key: &rsa::PrivateKey) -> Option<Vec<(String, Vec<u8>)>> {
    let label = Scope::Strict.label(
        doc["metadata"]["namespace"].as_str()?,
        doc["metadata"]["name"].as_str()?,
    );
    doc.pointer("/spec/encryptedData")?
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), open_base64(key, &label, v.as_str()?).ok()?)))
        .collect()
}

fn private(path: &Path) -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_cert_seal_verify_rotate_against_the_standins_controller() {
    let env = setup().await;
    let keys = keys();
    let dir = env.home.path();

    // The active key's certificate, found under kubeseal's default Service name.
    let output = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 0);
    assert_eq!(
        stdout(&output),
        std::fs::read_to_string(&keys.other_cert).unwrap()
    );

    // An older file, sealed with the previous key: it still verifies (every key decrypts).
    let old_file = dir.join("old.yml");
    let cert = keys.cert.display().to_string();
    let output = run(
        &env,
        &["seal", "--cert", &cert, "--out", old_file.to_str().unwrap()],
        SECRET,
    )
    .await;
    assert_code(&output, 0);
    let output = run(&env, &["verify", old_file.to_str().unwrap()], "").await;
    assert_code(&output, 0);
    let moved = dir.join("moved.yml");
    let text = std::fs::read_to_string(&old_file).unwrap();
    std::fs::write(&moved, text.replace("namespace: staging", "namespace: prod")).unwrap();
    let output = run(&env, &["verify", moved.to_str().unwrap(), "-o", "json"], "").await;
    assert_code(&output, 1);
    let verdicts: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(verdicts[0]["decrypts"], false, "{verdicts}");

    // rotate re-encrypts with the active key, through the controller.
    let output = run(&env, &["rotate", "--in-place", old_file.to_str().unwrap()], "").await;
    assert_code(&output, 0);
    let rotated: Value = serde_saphyr::from_str(&std::fs::read_to_string(&old_file).unwrap()).unwrap();
    let active = private(&keys.dir.join("other-key.pem"));
    assert_eq!(
        open_all(&rotated, &active).expect("re-encrypted with the active key"),
        [
            ("password".to_string(), b"s3cret".to_vec()),
            ("user".to_string(), b"app".to_vec())
        ]
    );
    assert!(
        open_all(&rotated, &private(&keys.key)).is_none(),
        "no longer the old key"
    );
    let posts: Vec<String> = env
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| format!("{} {}", r.path, r.status))
        .collect();
    assert!(
        posts.contains(
            &"/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/rotate 200"
                .to_string()
        ),
        "{posts:#?}"
    );

    // Sealed with the fetched certificate, applied with kubectl: the controller unseals it.
    let output = run(&env, &["seal"], SECRET).await;
    assert_code(&output, 0);
    let sealed = dir.join("sealed.yml");
    std::fs::write(&sealed, stdout(&output)).unwrap();
    let (kubeconfig, home, file) = (env.kubeconfig.clone(), dir.to_path_buf(), sealed.clone());
    tokio::task::spawn_blocking(move || {
        let kubectl = |args: &[&str]| {
            let out = std::process::Command::new(testkit::tools::kubectl135())
                .args(args)
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        kubectl(&["apply", "-f", file.to_str().unwrap()]);
        kubectl(&[
            "wait",
            "--for=condition=Synced",
            "sealedsecret/db",
            "-n",
            "staging",
            "--timeout=60s",
        ]);
    })
    .await
    .unwrap();
    let secret = env
        .api
        .store()
        .get("secrets", "staging", "db")
        .expect("unsealed Secret");
    assert_eq!(secret["data"]["password"], b64(b"s3cret"));
    assert_eq!(secret["data"]["user"], b64(b"app"));
}

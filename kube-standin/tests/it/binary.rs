//! The `kube-standin serve` binary: URL on the first stdout line, kubeconfig written, CRDs and seeds
//! loaded, simulation running, serving until killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::Value;

use crate::common::crds;

/// The first line `kube-standin serve` prints (its URL), read from the child's piped stdout.
fn url_line(child: &mut std::process::Child) -> String {
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut first)
        .unwrap();
    first
}

#[tokio::test]
async fn serve_prints_url_and_serves_until_killed() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        format!(
            "{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: staging}}\nstringData: {{k: v}}\n",
            crate::common::CNPG_CLUSTER
        ),
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["serve", "--port", "0", "--crds"])
        .arg(crds("cloudnative-pg"))
        .arg("--seed")
        .arg(&seed)
        .args(["--simulate-ready", "200ms", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = url_line(&mut child);
    let url = first.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains(&format!("server: {url}")), "{text}");

    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "staging");
    assert_eq!(secrets.get("s").await.unwrap().data.unwrap()["k"].0, b"v");
    // The seeded cluster becomes ready through the simulation.
    let mut phase = String::new();
    for _ in 0..50 {
        let v: Value = serde_json::from_str(
            &client
                .request_text(
                    http::Request::get("/apis/postgresql.cnpg.io/v1/namespaces/staging/clusters/database")
                        .body(Vec::new())
                        .unwrap(),
                )
                .await
                .unwrap(),
        )
        .unwrap();
        phase = v["status"]["phase"].as_str().unwrap_or("").to_string();
        if phase == "Cluster in healthy state" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(phase, "Cluster in healthy state");
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `--bridge`: bad values are clap errors naming the flag and the forms without echoing a password;
/// `rabbitmq=USER@HOST:PORT` takes the password from the environment into `NAME-default-user`.
#[tokio::test]
async fn serve_bridge_flag() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kube-standin"))
            .arg("serve")
            .args(args)
            .env_remove("KUBE_STANDIN_RABBITMQ_PASSWORD")
            .output()
            .unwrap()
    };
    for (args, expect) in [
        (
            &[
                "--simulate-ready",
                "1s",
                "--bridge",
                "rabbitmq=guest:hunter2@localhost",
            ][..],
            "HOST:PORT",
        ),
        (
            &["--simulate-ready", "1s", "--bridge", "mysql=127.0.0.1:3306"][..],
            "postgres=[USER@]HOST:PORT",
        ),
        (
            &[
                "--simulate-ready",
                "1s",
                "--bridge",
                "rabbitmq=guest@127.0.0.1:5672",
            ][..],
            "KUBE_STANDIN_RABBITMQ_PASSWORD",
        ),
        (&["--bridge", "redis=127.0.0.1:6379"][..], "--simulate-ready"),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--bridge") && stderr.contains(expect),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        "apiVersion: rabbitmq.com/v1beta1\nkind: RabbitmqCluster\nmetadata: {name: queue, namespace: staging}\nspec: {replicas: 1}\n",
    )
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["serve", "--crds"])
        .arg(crds("rabbitmq-cluster-operator"))
        .arg("--seed")
        .arg(&seed)
        .args([
            "--simulate-ready",
            "100ms",
            "--bridge",
            "rabbitmq=app@127.0.0.1:5672",
        ])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .env("KUBE_STANDIN_RABBITMQ_PASSWORD", "from-the-env")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Waits for the server: the URL is printed once it listens.
    let url = url_line(&mut child);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(kube::Client::try_from(config).unwrap(), "staging");
    let mut data = None;
    for _ in 0..50 {
        if let Some(s) = secrets.get_opt("queue-default-user").await.unwrap() {
            data = s.data;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let data = data.expect("queue-default-user created");
    assert_eq!(data["username"].0, b"app");
    assert_eq!(data["password"].0, b"from-the-env");
}

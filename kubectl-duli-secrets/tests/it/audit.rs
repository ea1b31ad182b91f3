//! `audit ENV` on a scratch repository: the rendered chart (through `helm template`, as helm duli-render
//! does) and the live ConfigMaps (kube-standin) are scanned; findings name file/object/field, never values.
//!
//! Needs helm: `DULI_HELM4_BIN`, `HELM_BIN` or `helm` on PATH (CI installs it with .ci/install-tools).

use crate::support::*;
use kube_standin::StandIn;
use serde_json::Value;

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: {{ .Release.Namespace }}\n\
data:\n  LOG_LEVEL: info\n  DB_PASSWORD: hunter2-PLAINTEXT-1Qa\n  DATABASE_URL: postgres://app:url-PLAINTEXT-2Ws@db:5432/app\n";

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  selector: {matchLabels: {app: api}}\n  \
template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers:\n      - name: api\n        image: api:1.0\n        \
env:\n        - {name: API_TOKEN, value: tok-PLAINTEXT-3Ed}\n        - name: FROM_SECRET\n          valueFrom: {secretKeyRef: {name: s, key: k}}\n";

fn repo(with_secrets: bool) -> tempfile::TempDir {
    let dir = repo_with_environments();
    let root = dir.path();
    std::fs::create_dir_all(root.join("gitops/applications")).unwrap();
    let chart = root.join("helm/app");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: app\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "{}\n").unwrap();
    let configmap = if with_secrets {
        CONFIGMAP.to_string()
    } else {
        CONFIGMAP.replace("  DB_PASSWORD: hunter2-PLAINTEXT-1Qa\n  DATABASE_URL: postgres://app:url-PLAINTEXT-2Ws@db:5432/app\n", "")
    };
    std::fs::write(chart.join("templates/configmap.yaml"), configmap).unwrap();
    if with_secrets {
        std::fs::write(chart.join("templates/deployment.yaml"), DEPLOYMENT).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_finds_rendered_and_live_secrets_without_printing_them() {
    // A missing helm is a failure, not a skip: this test is the only proof that audit renders for real.
    let helm = testkit::tools::helm4();
    let live = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: legacy, namespace: staging}\ndata:\n  SMTP_PASSWORD: live-PLAINTEXT-4Rf\n";
    let standin = StandIn::builder().seed_yaml(live).start().await.unwrap();
    let repo = repo(true);
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(home.path()).unwrap();
    let mut command = plugin(home.path());
    command
        .env("KUBECONFIG", &kubeconfig)
        .env("HELM_BIN", &helm)
        .args(["audit", "staging", "-o", "json", "--repo"])
        .arg(repo.path());
    let output = tokio::task::spawn_blocking(move || run_with_stdin(command, b""))
        .await
        .unwrap();
    assert_code(&output, 1);
    for secret in [
        "hunter2-PLAINTEXT-1Qa",
        "url-PLAINTEXT-2Ws",
        "tok-PLAINTEXT-3Ed",
        "live-PLAINTEXT-4Rf",
    ] {
        assert!(
            !stdout(&output).contains(secret) && !stderr(&output).contains(secret),
            "{secret} printed"
        );
    }
    let findings: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let summary: Vec<(String, String, String)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["object"].as_str().unwrap().into(),
                f["field"].as_str().unwrap().into(),
                f["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |object: &str, field: &str, rule: &str| {
        assert!(
            summary.contains(&(object.into(), field.into(), rule.into())),
            "{object} {field} {rule} missing from {summary:#?}"
        );
    };
    expect("ConfigMap/staging/app-config", "data.DB_PASSWORD", "secret-key");
    expect(
        "ConfigMap/staging/app-config",
        "data.DATABASE_URL",
        "url-credentials",
    );
    expect(
        "Deployment/api",
        "spec.template.spec.containers[api].env[API_TOKEN]",
        "secret-key",
    );
    expect("ConfigMap/staging/legacy", "data.SMTP_PASSWORD", "secret-key");
    assert_eq!(summary.len(), 4, "{summary:#?}");
    let sources: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert!(sources.contains(&"app/templates/configmap.yaml"), "{sources:?}");
    assert!(sources.contains(&"live (context standin)"), "{sources:?}");

    // A clean environment: exit 0.
    let clean = self::repo(false);
    let mut command = plugin(home.path());
    command
        .env("HELM_BIN", &helm)
        .args(["audit", "staging", "--no-live", "--repo"])
        .arg(clean.path());
    let output = tokio::task::spawn_blocking(move || run_with_stdin(command, b""))
        .await
        .unwrap();
    assert_code(&output, 0);
}

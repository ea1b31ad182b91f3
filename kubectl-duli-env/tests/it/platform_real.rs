//! The platform phase with the REAL upstream charts: `env up staging --only platform --chart-mirror
//! '*=MIRROR'` on a repository copy whose staging is `provider: generic`, the mirror serving
//! `../shared/charts/repo`, real helm 4 straight at a stand-in that starts with no CRDs (they come from the
//! charts, as on a real cluster). It stops after the platform phase: a full `up` also needs SealedSecrets
//! sealed with the controller's certificate (`kubectl duli secrets init`, another crate's binary) and a
//! storage class, and its gitops phase would only prove the stand-in's placeholder Argo CD (issue #15
//! item 2 is not built).

use std::time::Duration;

use testkit::chartrepo::{ChartRepoServer, shared_chart_repo};
use testkit::tools::helm4;

use crate::support::{copy_dir, run_to_end, workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_platform_installs_the_real_upstream_charts_from_a_mirror() {
    let api = kube_standin::StandIn::builder()
        .simulate_ready(Duration::from_millis(100))
        .start()
        .await
        .expect("stand-in starts");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&workspace().join("gitops"), &repo.join("gitops"));
    copy_dir(&workspace().join("helm"), &repo.join("helm"));
    let staging = repo.join("gitops/environments/staging.yml");
    let text = std::fs::read_to_string(&staging).unwrap();
    assert!(text.contains("provider: digitalocean"), "{text}");
    std::fs::write(
        &staging,
        text.replace("provider: digitalocean", "provider: generic"),
    )
    .unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path()).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_kubectl-duli-env"),
        bin.join("kubectl-duli-env"),
    )
    .unwrap();
    std::os::unix::fs::symlink(helm4(), bin.join("helm")).unwrap();
    let mirror = ChartRepoServer::serve(&shared_chart_repo());

    let home = dir.path().join("home");
    let mut up = tokio::process::Command::new("/usr/bin/kubectl");
    up.args([
        "duli",
        "env",
        "up",
        "staging",
        "--only",
        "platform",
        "--timeout",
        "3m",
    ])
    .arg("--chart-mirror")
    .arg(format!("*={}", mirror.url))
    .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
    .env("KUBECONFIG", &kubeconfig)
    .env("DULI_REPO", &repo)
    .env("DULI_STATE_DIR", dir.path().join("state"))
    .env("HOME", &home)
    .env("HELM_CACHE_HOME", home.join(".cache/helm"))
    .env("HELM_CONFIG_HOME", home.join(".config/helm"))
    .env("HELM_DATA_HOME", home.join(".local/share/helm"))
    .env_remove("HELM_BIN")
    .env_remove("DULI_CHART_MIRRORS")
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    let run = run_to_end(up).await.expect(0);
    assert!(
        mirror.requests() >= 4,
        "helm fetched from the mirror:\n{}",
        run.all()
    );

    let store = api.store();
    for (ns, release) in [
        ("cert-manager", "cert-manager"),
        ("kube-system", "sealed-secrets-controller"),
        ("argocd", "argocd"),
    ] {
        let secret = store
            .get("secrets", ns, &format!("sh.helm.release.v1.{release}.v1"))
            .unwrap_or_else(|| panic!("no helm release {ns}/{release}:\n{}", run.all()));
        assert_eq!(secret["metadata"]["labels"]["status"], "deployed", "{release}");
    }
    // The REAL charts, not fixtures: their CRDs, webhooks and controllers are there.
    for crd in [
        "certificates.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "sealedsecrets.bitnami.com",
        "applications.argoproj.io",
        "appprojects.argoproj.io",
    ] {
        assert!(
            store.get("customresourcedefinitions", "", crd).is_some(),
            "CRD {crd}"
        );
    }
    assert!(
        store
            .get("validatingwebhookconfigurations", "", "cert-manager-webhook")
            .is_some()
    );
    for (ns, deployment) in [
        ("cert-manager", "cert-manager-webhook"),
        ("kube-system", "sealed-secrets-controller"),
        ("argocd", "argocd-server"),
        ("argocd", "argocd-repo-server"),
    ] {
        let d = store
            .get("deployments", ns, deployment)
            .unwrap_or_else(|| panic!("Deployment {ns}/{deployment}"));
        let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("");
        assert!(
            !image.is_empty() && !image.contains("fixture"),
            "{deployment}: {image}"
        );
    }
    assert!(
        store
            .get("statefulsets", "argocd", "argocd-application-controller")
            .is_some()
    );
    // The chart's Service (`fullnameOverride: sealed-secrets-controller`) brings up the stand-in's
    // sealed-secrets controller: its certificate answers through the proxy, ready for `secrets init`.
    let cert = api
        .client()
        .request_text(
            http::Request::get(
                "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem",
            )
            .body(Vec::new())
            .unwrap(),
        )
        .await
        .expect("the controller's certificate");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    // No DigitalOcean chart on a generic provider.
    assert!(store.get("storageclasses", "", "do-block-storage").is_none());
}

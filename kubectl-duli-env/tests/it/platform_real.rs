//! The platform phase with the REAL upstream charts: `env up staging --only platform --chart-mirror
//! '*=MIRROR'` on a repository copy whose staging is `provider: generic`, the mirror serving
//! `../shared/charts/repo` (and sealed-secrets taken from an `oci://` repository, as the DigitalOcean
//! charts are, through an OCI mirror: a real registry on 127.0.0.1), real helm 4 straight at a stand-in whose CRDs are deleted first (they come from the
//! charts, as on a real cluster). It stops after the platform phase: the full story (`secrets init`, every
//! phase of `up` against kube-standin's rendering Argo CD, `db`, `down`) is `kubectl-duli/walkthrough.sh`,
//! run by `kubectl-duli/tests/it/walkthrough.rs`, since it needs every slice's binary.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams};
use testkit::chartrepo::{ChartRepoServer, shared_chart_repo};

use crate::support::{World, workspace};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_platform_installs_the_real_upstream_charts_from_a_mirror() {
    let world = World::start(Duration::from_millis(100)).await;
    // An empty cluster: the charts bring their own CRDs (cert-manager's and argo-cd's are templates,
    // which helm refuses to adopt if they already exist).
    Api::<CustomResourceDefinition>::all(world.api.client())
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("CRDs deleted");
    // The repository's own catalog (not the fixture charts), staging on a generic provider;
    // sealed-secrets from an OCI repository.
    let catalog = std::fs::read_to_string(workspace().join("gitops/platform.yml")).unwrap();
    let upstream_oci = "oci://registry.example.com/bitnami-labs";
    let catalog = catalog.replace(
        "repo: https://bitnami-labs.github.io/sealed-secrets",
        &format!("repo: {upstream_oci}"),
    );
    assert!(catalog.contains(upstream_oci));
    std::fs::write(world.repo.join("gitops/platform.yml"), catalog).unwrap();
    let registry = testkit::registry::OciRegistry::start();
    registry.push(
        &testkit::tools::helm4(),
        &shared_chart_repo().join("sealed-secrets-2.18.5.tgz"),
        "mirror",
    );
    let staging = world.repo.join("gitops/environments/staging.yml");
    let text = std::fs::read_to_string(&staging).unwrap();
    assert!(text.contains("provider: digitalocean"), "{text}");
    std::fs::write(
        &staging,
        text.replace("provider: digitalocean", "provider: generic"),
    )
    .unwrap();
    let mirror = ChartRepoServer::serve(&shared_chart_repo());

    let mirror_flag = format!("*={}", mirror.url);
    let oci_mirror_flag = format!("{upstream_oci}={}", registry.url("mirror"));
    let run = world
        .run(&[
            "up",
            "staging",
            "--only",
            "platform",
            "--chart-mirror",
            &mirror_flag,
            "--chart-mirror",
            &oci_mirror_flag,
            "--timeout",
            "3m",
        ])
        .await
        .expect(0);
    assert!(
        mirror.requests() >= 4,
        "helm fetched from the mirror:\n{}",
        run.all()
    );

    let store = world.api.store();
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
    // Templated CRDs belong to their release, as helm labels what it renders.
    let certificates = store
        .get("customresourcedefinitions", "", "certificates.cert-manager.io")
        .unwrap();
    assert_eq!(
        certificates["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "cert-manager"
    );
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
    let cert = world
        .api
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

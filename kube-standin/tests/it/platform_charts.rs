//! The platform phase's real upstream charts (cert-manager, sealed-secrets, argo-cd from
//! `../shared/charts/repo`, served on 127.0.0.1) installed by real helm 4 and helm 3 straight at the
//! stand-in with `--simulate-ready` and no `--crds`: the CRDs come from the charts, hook Jobs complete
//! through the Job controller, `--wait` sees the Deployments and StatefulSets become ready.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use testkit::chartrepo::{ChartRepoServer, shared_chart_repo};

use crate::common::Kubectl;
use crate::real_clients::{Helm, helm_bin};

/// One chart entry of `gitops/platform.yml`.
struct PlatformChart {
    name: String,
    chart: String,
    version: String,
    namespace: String,
    values: Value,
}

/// The three charts every provider installs, with their values, as `gitops/platform.yml` pins them.
fn platform_charts() -> Vec<PlatformChart> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../gitops/platform.yml");
    let text = std::fs::read_to_string(&path).expect("gitops/platform.yml");
    let doc: Value = serde_saphyr::from_str(&text).expect("gitops/platform.yml parses");
    let charts: Vec<PlatformChart> = doc["charts"]
        .as_array()
        .expect("charts list")
        .iter()
        .filter(|c| c.get("providers").is_none())
        .map(|c| PlatformChart {
            name: c["name"].as_str().unwrap().into(),
            chart: c["chart"].as_str().unwrap().into(),
            version: c["version"].as_str().unwrap().into(),
            namespace: c["namespace"].as_str().unwrap().into(),
            values: c["values"].clone(),
        })
        .collect();
    let names: Vec<&str> = charts.iter().map(|c| c.chart.as_str()).collect();
    assert_eq!(names, ["cert-manager", "sealed-secrets", "argo-cd"]);
    charts
}

async fn install_platform(label: &'static str, bin: PathBuf) {
    let repo = ChartRepoServer::serve(&shared_chart_repo());
    let api = crate::common::standin_with_controllers().await;
    let helm = Helm::new(label, bin, &api);
    let scratch = tempfile::tempdir().expect("tempdir");
    let charts = platform_charts();
    for c in &charts {
        let values = scratch.path().join(format!("{}.yaml", c.name));
        std::fs::write(&values, serde_json::to_string(&c.values).unwrap()).unwrap();
        let out = helm
            .ok_within(
                &[
                    "upgrade",
                    "--install",
                    &c.name,
                    &c.chart,
                    "--repo",
                    &repo.url,
                    "--version",
                    &c.version,
                    "-n",
                    &c.namespace,
                    "--create-namespace",
                    "--wait",
                    "--timeout",
                    "2m",
                    "-f",
                    values.to_str().unwrap(),
                ],
                Duration::from_secs(300),
            )
            .await;
        assert!(out.contains("STATUS: deployed"), "helm {label} {}: {out}", c.name);
    }

    let list: Value = serde_json::from_str(&helm.ok(&["list", "-A", "-o", "json"]).await).unwrap();
    let mut deployed: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    deployed.sort();
    assert_eq!(
        deployed,
        [
            ("argocd".to_string(), "deployed".to_string()),
            ("cert-manager".into(), "deployed".into()),
            ("sealed-secrets-controller".into(), "deployed".into()),
        ],
        "helm {label} list -A"
    );

    let k = Kubectl::new("1.35", crate::common::kubectls()[1].1.clone(), &api);
    let crds = k.ok(&["get", "crds", "-o", "name"]).await;
    for crd in [
        "certificates.cert-manager.io",
        "certificaterequests.cert-manager.io",
        "issuers.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "orders.acme.cert-manager.io",
        "challenges.acme.cert-manager.io",
        "sealedsecrets.bitnami.com",
        "applications.argoproj.io",
        "applicationsets.argoproj.io",
        "appprojects.argoproj.io",
    ] {
        assert!(
            crds.contains(&format!("customresourcedefinition.apiextensions.k8s.io/{crd}")),
            "helm {label}: CRD {crd} missing from\n{crds}"
        );
    }
    // The charts' CRDs are served: their kinds list.
    k.ok(&["get", "sealedsecrets", "-A"]).await;
    k.ok(&["get", "applications.argoproj.io", "-n", "argocd"]).await;

    for c in &charts {
        let deployments = api.store().list("deployments", Some(&c.namespace));
        assert!(
            !deployments.is_empty(),
            "helm {label}: no Deployment of {}",
            c.name
        );
        for d in deployments {
            let available = d["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|cond| cond["type"] == "Available" && cond["status"] == "True");
            assert!(
                available,
                "helm {label}: Deployment {}/{} is not Available: {}",
                c.namespace, d["metadata"]["name"], d["status"]
            );
        }
    }
    assert!(
        api.store()
            .get("deployments", "kube-system", "sealed-secrets-controller")
            .is_some(),
        "helm {label}: fullnameOverride names the controller"
    );
    // cert-manager's post-install hook Job (startupapicheck) ran to completion and was deleted as its
    // `hook-succeeded` policy says.
    assert!(
        api.store().list("jobs", Some("cert-manager")).is_empty(),
        "helm {label}: {:?}",
        api.store().list("jobs", Some("cert-manager"))
    );

    for c in charts.iter().rev() {
        helm.ok_within(
            &[
                "uninstall",
                &c.name,
                "-n",
                &c.namespace,
                "--wait",
                "--timeout",
                "2m",
            ],
            Duration::from_secs(300),
        )
        .await;
        assert!(
            api.store().list("deployments", Some(&c.namespace)).is_empty(),
            "helm {label}: uninstall {} leaves Deployments",
            c.name
        );
    }
    let list = helm.ok(&["list", "-A", "-o", "json"]).await;
    assert_eq!(list.trim(), "[]", "helm {label}");
    // argo-cd keeps its CRDs (`crds.keep`), as helm keeps CRDs from `crds/` folders.
    let crds = k.ok(&["get", "crds", "-o", "name"]).await;
    assert!(crds.contains("applications.argoproj.io"), "{crds}");
    assert!(crds.contains("sealedsecrets.bitnami.com"), "{crds}");
}

#[tokio::test]
async fn real_platform_charts_install_with_helm_4_and_3() {
    let runs = [
        ("4.1.4", helm_bin("DULI_HELM4_BIN", "4.1.4")),
        ("3.17.2", helm_bin("DULI_HELM3_BIN", "3.17.2")),
    ]
    .map(|(label, bin)| tokio::spawn(install_platform(label, bin)));
    for run in futures::future::join_all(runs).await {
        if let Err(e) = run {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("a helm scenario did not finish: {e}");
        }
    }
}

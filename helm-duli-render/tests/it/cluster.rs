//! `--crds-from-cluster`: the CRDs come from the API server of the selected kubeconfig context (an
//! in-memory kube-standin serving the real CloudNativePG and RabbitMQ CRDs), and an unreachable or
//! unknown context is an error.

use crate::common;

use crate::common::{FixtureRepo, assert_finding, findings, read_json, run};

#[test]
fn crds_are_read_from_the_current_cluster() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime
        .block_on(
            kube_standin::StandIn::builder()
                .crd_dir(kube_standin::shared_crds("cloudnative-pg"))
                .crd_dir(kube_standin::shared_crds("rabbitmq-cluster-operator"))
                .start(),
        )
        .unwrap();
    let repo = FixtureRepo::new();
    let kubeconfig = api.write_kubeconfig(repo.path("")).unwrap();
    let report = repo.path("report.json");
    let mut cmd = std::process::Command::new(common::binary());
    common::isolate(&mut cmd, &common::helm4());
    // As a helm plugin: helm hands --kube-context and --kubeconfig over as HELM_KUBECONTEXT and KUBECONFIG.
    cmd.env("DULI_RENDER_CACHE", repo.cache())
        .env("KUBECONFIG", &kubeconfig)
        .env("HELM_KUBECONTEXT", "standin")
        .args([
            "staging",
            "--chart",
            "cnpg-typo",
            "--chart",
            "rabbitmq-type",
            "--crds-from-cluster",
            "--repo",
        ])
        .arg(repo.root())
        .arg("--report")
        .arg(&report);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 1, "{stderr}");
    let found = findings(&read_json(&report));
    assert_finding(&found, "schema", "cnpg-typo", "Cluster/database");
    assert_finding(&found, "schema", "rabbitmq-type", "RabbitmqCluster/queue");
    assert!(stderr.contains("spec.instancez"), "{stderr}");

    // An unknown context is an error naming it, with the known ones.
    let (code, _, stderr) = run(cmd.env("HELM_KUBECONTEXT", "nope"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("context `nope` not found") && stderr.contains("standin"),
        "{stderr}"
    );
    drop(api);
}

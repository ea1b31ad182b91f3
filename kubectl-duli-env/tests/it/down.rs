//! `down`: staging goes, prod and the shared operators stay; `--include-platform` is refused while prod
//! exists; prod without a terminal and without `--yes` is refused; `list` tells which is up.

use std::time::Duration;

use super::support::{World, assert_contains};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_staging_leaves_prod_and_the_operators_untouched() {
    let world = World::start(Duration::from_millis(150)).await;
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    world.run(&["up", "prod", "--timeout", "2m"]).await.expect(0);
    let listed = world.run(&["list", "-o", "json"]).await.expect(0).json();
    assert!(
        listed.as_array().unwrap().iter().all(|e| e["state"] == "up"),
        "{listed}"
    );
    let prod_before = world.get("applications", "argocd", "prod-backend").unwrap();
    let operator_before = world.get("applications", "argocd", "postgres-operator").unwrap();

    let refused = world
        .run(&["down", "staging", "--include-platform"])
        .await
        .expect(2);
    assert_contains(&refused.stderr, "refusing --include-platform: prod");
    assert!(
        world.get("namespaces", "", "staging").is_some(),
        "a refusal changes nothing"
    );

    let down = world.run(&["down", "staging", "-o", "json"]).await.expect(0);
    let report = down.json();
    let steps = steps(&report);
    assert_eq!(steps.first(), Some(&"wave 5"), "highest wave first: {steps:?}");
    assert_eq!(steps.last(), Some(&"namespace"), "{steps:?}");
    assert!(world.get("namespaces", "", "staging").is_none());
    assert!(world.get("applications", "argocd", "staging-backend").is_none());
    assert!(world.get("appprojects", "argocd", "staging").is_none());
    // prod and the shared operators are exactly as they were.
    let prod_after = world.get("applications", "argocd", "prod-backend").unwrap();
    assert_eq!(
        prod_after["metadata"]["resourceVersion"],
        prod_before["metadata"]["resourceVersion"]
    );
    let operator_after = world.get("applications", "argocd", "postgres-operator").unwrap();
    assert_eq!(
        operator_after["metadata"]["resourceVersion"],
        operator_before["metadata"]["resourceVersion"]
    );
    assert!(world.get("namespaces", "", "prod").is_some());
    assert!(world.get("sealedsecrets", "prod", "redis-secret").is_some());
    assert!(
        world
            .get("secrets", "argocd", "sh.helm.release.v1.argocd.v1")
            .is_some(),
        "platform charts stay"
    );

    let listed = world.run(&["list", "-o", "json"]).await.expect(0).json();
    let state = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("staging"), "down");
    assert_eq!(state("prod"), "up");
    // Taking down what is already down is fine.
    world.run(&["down", "staging"]).await.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prod_down_without_a_terminal_or_yes_is_refused() {
    let world = World::start(Duration::from_millis(150)).await;
    world
        .run(&["up", "prod", "--only", "platform", "--only", "namespaces"])
        .await
        .expect(0);
    let refused = world.run(&["down", "prod"]).await.expect(2);
    assert_contains(&refused.stderr, "no terminal to ask on; pass --yes");
    assert!(
        world.get("namespaces", "", "prod").is_some(),
        "nothing was deleted"
    );
    world.run(&["down", "prod", "--yes"]).await.expect(0);
    assert!(world.get("namespaces", "", "prod").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_with_the_platform_removes_shared_operators_and_charts_when_nothing_else_uses_them() {
    let world = World::start(Duration::from_millis(150)).await;
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    assert!(world.get("applications", "argocd", "postgres-operator").is_some());
    let report = world
        .run(&["down", "staging", "--include-platform", "-o", "json"])
        .await
        .expect(0)
        .json();
    let steps = steps(&report);
    assert!(steps.contains(&"platform charts"), "{steps:?}");
    assert!(world.get("namespaces", "", "staging").is_none());
    assert!(
        world.get("applications", "argocd", "postgres-operator").is_none(),
        "shared operators removed"
    );
    assert!(
        world
            .get("secrets", "argocd", "sh.helm.release.v1.argocd.v1")
            .is_none(),
        "helm releases uninstalled"
    );
    assert!(
        world
            .get("configmaps", "cert-manager", "cert-manager-fixture")
            .is_none(),
        "chart objects removed"
    );
    assert!(
        world.get("namespaces", "", "cert-manager").is_none(),
        "the system namespaces duli labelled are gone"
    );
    assert!(
        world.get("namespaces", "", "kube-system").is_some(),
        "Kubernetes' own namespaces stay"
    );
}

/// A deletion that takes long says what it waits for: an Application held by a finalizer nobody removes is
/// named with that finalizer while `down` waits, and the run ends at `--timeout` saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_says_what_it_waits_for_while_a_finalizer_holds_an_application() {
    let world = World::start(Duration::from_millis(150)).await;
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    let patch = serde_json::json!({"metadata": {"finalizers": ["example.com/hold"]}});
    let request =
        http::Request::patch("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/staging-backend")
            .header("Content-Type", "application/merge-patch+json")
            .body(serde_json::to_vec(&patch).unwrap())
            .unwrap();
    world.api.client().request_text(request).await.unwrap();

    let down = world
        .run(&["down", "staging", "--timeout", "12s"])
        .await
        .expect(2);
    assert_contains(&down.stderr, "wave 5: deleting ");
    assert_contains(&down.stderr, "staging-backend");
    assert_contains(&down.stderr, "to be deleted (");
    assert_contains(
        &down.stderr,
        "Application argocd/staging-backend (finalizer example.com/hold)",
    );
    assert_contains(&down.stderr, "it still has finalizers example.com/hold");
    assert!(world.get("namespaces", "", "prod").is_none(), "prod was never up");
}

/// The `step` of each entry of a `down -o json` report's `steps`, in order.
fn steps(report: &serde_json::Value) -> Vec<&str> {
    let steps = report["steps"].as_array().expect("a report with steps");
    steps.iter().map(|s| s["step"].as_str().unwrap()).collect()
}

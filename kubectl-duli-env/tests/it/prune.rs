//! Pruning (issue #14 item 8): after an Application template and a SealedSecret leave the repository,
//! `plan` lists them as deletions (exit 1), `up` keeps them and says so, `up --prune` deletes them (the
//! Application's resources through the stand-in's Argo CD cascade); prod without a terminal or `--yes` is
//! refused before anything changes; the other environment's objects, and objects labelled like duli's but
//! applied by another field manager, are never candidates; preflight checks `--prune`'s permissions.

use std::process::Command;
use std::time::Duration;

use super::support::{World, assert_contains};

const FAST: Duration = Duration::from_millis(150);

/// Remove what the repository declared for the tests: the backend Application's template (both
/// environments render it) and staging's sealed `redis-secret`.
fn drop_backend_and_a_secret(world: &World) {
    std::fs::remove_file(world.repo.join("gitops/applications/backend.yml.j2")).unwrap();
    std::fs::remove_file(world.repo.join("helm/secrets/sealed/staging/redis-secret.yml")).unwrap();
}

/// `kubectl apply --server-side --field-manager MANAGER` of a YAML document, through the real kubectl.
fn kubectl_apply(world: &World, manager: &str, yaml: &str) {
    let file = world.dir.path().join(format!("{manager}.yml"));
    std::fs::write(&file, yaml).unwrap();
    let (code, stdout, stderr) = testkit::process::run(
        Command::new(testkit::tools::kubectl())
            .env("KUBECONFIG", &world.kubeconfig)
            .args(["apply", "--server-side", "--field-manager", manager, "-f"])
            .arg(&file),
    );
    assert_eq!(code, 0, "kubectl apply: {stdout}{stderr}");
}

fn deletions(plan: &serde_json::Value) -> Vec<String> {
    let mut found: Vec<String> = plan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["objects"].as_array().unwrap())
        .filter(|e| e["action"] == "delete")
        .map(|e| {
            format!(
                "{} {}",
                e["object"]["kind"].as_str().unwrap(),
                e["object"]["name"].as_str().unwrap()
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_lists_what_the_repository_dropped_and_up_prune_deletes_it() {
    let world = World::start(FAST).await;
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    // What Argo CD deployed for the backend (its tracking label): the cascade must take it along.
    kubectl_apply(
        &world,
        "argocd-application-controller",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: backend-config\n  namespace: staging\n  labels:\n    app.kubernetes.io/instance: staging-backend\ndata:\n  mode: api\n",
    );
    drop_backend_and_a_secret(&world);

    let plan = world.run(&["plan", "staging"]).await.expect(1);
    let out = &plan.stdout;
    assert_contains(
        out,
        "  backend (wave 5):\n    - Application argocd/staging-backend (no longer declared by the repository)",
    );
    assert_contains(
        out,
        "    - SealedSecret staging/redis-secret (no longer declared by the repository)",
    );
    assert_contains(out, "0 to create, 0 to change, 2 to delete");
    assert!(
        !out.contains("prod-"),
        "never the other environment's objects:\n{out}"
    );
    let json = world
        .run(&["plan", "staging", "-o", "json"])
        .await
        .expect(1)
        .json();
    assert_eq!(
        deletions(&json),
        ["Application staging-backend", "SealedSecret redis-secret"]
    );
    // `up --dry-run --prune` is plan.
    let dry = world
        .run(&["up", "staging", "--dry-run", "--prune"])
        .await
        .expect(1);
    assert_contains(&dry.stdout, "- Application argocd/staging-backend");
    assert!(world.get("applications", "argocd", "staging-backend").is_some());

    // Without --prune: kept, and one line says so.
    let kept = world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    assert_contains(
        &kept.stderr,
        "2 objects are no longer declared (Application argocd/staging-backend, SealedSecret staging/redis-secret); `up --prune` deletes them",
    );
    assert!(world.get("applications", "argocd", "staging-backend").is_some());
    assert!(world.get("sealedsecrets", "staging", "redis-secret").is_some());

    let pruned = world
        .run(&[
            "up",
            "staging",
            "--prune",
            "--yes",
            "--timeout",
            "2m",
            "-o",
            "json",
        ])
        .await
        .expect(0);
    assert_contains(&pruned.stderr, "✓ prune");
    assert_eq!(
        pruned.json()["pruned"].as_array().unwrap().len(),
        2,
        "{}",
        pruned.stdout
    );
    assert!(world.get("applications", "argocd", "staging-backend").is_none());
    assert!(world.get("sealedsecrets", "staging", "redis-secret").is_none());
    assert!(
        world.get("configmaps", "staging", "backend-config").is_none(),
        "Argo CD's cascade deleted the Application's resources"
    );
    // Everything else stays, namespaces included.
    assert!(world.get("sealedsecrets", "staging", "backend-secrets").is_some());
    assert!(
        world
            .get("applications", "argocd", "staging-redis-instance")
            .is_some()
    );
    assert!(world.get("namespaces", "", "staging").is_some());
    let clean = world.run(&["plan", "staging"]).await.expect(0);
    assert_contains(&clean.stdout, "0 to delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_keeps_the_other_environment_and_foreign_objects_and_prod_asks_first() {
    let world = World::start(FAST).await;
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    world.run(&["up", "prod", "--timeout", "2m"]).await.expect(0);
    // Labelled exactly like duli's, but applied by someone else: not ours to delete.
    kubectl_apply(
        &world,
        "platform-team",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: staging-dashboard\n  namespace: argocd\n  labels:\n    app.kubernetes.io/managed-by: duli\n    duli.one/scope: environment\n    duli.one/component: dashboard\n    environment: staging\nspec:\n  project: staging\n  source:\n    repoURL: https://example.invalid/dashboard.git\n    path: chart\n    targetRevision: main\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: staging\n",
    );
    drop_backend_and_a_secret(&world);
    // A shared Application no environment declares any more goes too.
    std::fs::remove_file(world.repo.join("gitops/applications/loki.yml.j2")).unwrap();

    let staging = world
        .run(&["plan", "staging", "-o", "json"])
        .await
        .expect(1)
        .json();
    assert_eq!(
        deletions(&staging),
        [
            "Application loki",
            "Application staging-backend",
            "SealedSecret redis-secret"
        ]
    );
    let prod = world.run(&["plan", "prod"]).await.expect(1);
    assert_contains(&prod.stdout, "- Application argocd/prod-backend");
    assert_contains(
        &prod.stdout,
        "- Application argocd/loki (shared, and no environment of the repository declares it any more)",
    );
    assert!(
        !prod.stdout.contains("staging-") && !prod.stdout.contains("- SealedSecret"),
        "{}",
        prod.stdout
    );

    // prod, no terminal, no --yes: refused before anything is applied or deleted.
    let before = world.get("applications", "argocd", "prod-backend").unwrap();
    let refused = world
        .run(&["up", "prod", "--prune", "--timeout", "2m"])
        .await
        .expect(2);
    assert_contains(&refused.stderr, "no terminal to ask on; pass --yes");
    assert_contains(&refused.stderr, "Application argocd/prod-backend");
    let after = world.get("applications", "argocd", "prod-backend").unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert!(world.get("applications", "argocd", "loki").is_some());

    world
        .run(&["up", "staging", "--prune", "--yes", "--timeout", "2m"])
        .await
        .expect(0);
    assert!(world.get("applications", "argocd", "staging-backend").is_none());
    assert!(world.get("applications", "argocd", "loki").is_none());
    assert!(
        world.get("applications", "argocd", "prod-backend").is_some(),
        "the other environment's Application stays"
    );
    assert!(world.get("sealedsecrets", "prod", "redis-secret").is_some());
    assert!(
        world.get("applications", "argocd", "staging-dashboard").is_some(),
        "another field manager's object stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_needs_delete_permission_and_plain_up_does_not() {
    let world = World::start_with(
        kube_standin::StandIn::builder()
            .simulate_ready(FAST)
            .deny("delete", "sealedsecrets"),
    )
    .await;
    let refused = world.run(&["up", "staging", "--prune"]).await.expect(2);
    assert_contains(&refused.stderr, "preflight found");
    assert_contains(
        &refused.stderr,
        "delete sealedsecrets.bitnami.com in namespace staging",
    );
    assert!(
        world.get("namespaces", "", "staging").is_none(),
        "nothing applied"
    );
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
}

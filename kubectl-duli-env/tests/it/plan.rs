//! `plan`: nothing to do right after `up`; after a values change, the diff per component and the platform
//! chart that would be upgraded, with exit code 1.

use std::time::Duration;

use super::support::{World, assert_contains};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_shows_nothing_after_up_and_a_diff_after_a_values_change() {
    let world = World::start(Duration::from_millis(200)).await;
    let empty = world.run(&["plan", "staging"]).await.expect(1);
    assert!(
        empty.stdout.contains("+ argocd 0.1.0"),
        "charts to install on an empty cluster:\n{}",
        empty.stdout
    );
    assert_contains(&empty.stdout, "+ Namespace staging");
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);

    let clean = world.run(&["plan", "staging"]).await.expect(0);
    assert_contains(&clean.stdout, "0 to create, 0 to change");
    assert_contains(&clean.stdout, "charts: 0 to install, 0 to upgrade");
    assert!(
        world.run(&["up", "staging", "--dry-run"]).await.code == 0,
        "up --dry-run is plan"
    );

    // Bump the environment's git revision and a platform chart's values.
    let env_file = world.repo.join("gitops/environments/staging.yml");
    let text = std::fs::read_to_string(&env_file).unwrap();
    std::fs::write(
        &env_file,
        text.replace("target_revision: main", "target_revision: release-2"),
    )
    .unwrap();
    let catalog = world.repo.join("gitops/platform.yml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    std::fs::write(
        &catalog,
        text.replace("message: argo cd fixture", "message: argo cd fixture, tuned"),
    )
    .unwrap();

    let changed = world.run(&["plan", "staging"]).await.expect(1);
    let out = &changed.stdout;
    assert!(
        out.contains("~ argocd 0.1.0 (namespace argocd): values changed"),
        "{out}"
    );
    assert!(
        out.contains("  backend (wave 5):\n    ~ Application argocd/staging-backend"),
        "{out}"
    );
    assert!(out.contains("-    targetRevision: main"), "{out}");
    assert!(out.contains("+    targetRevision: release-2"), "{out}");
    let json = world
        .run(&["plan", "staging", "-o", "json"])
        .await
        .expect(1)
        .json();
    assert_eq!(json["changes"], true);
    // A dry run changes nothing.
    let app = world.get("applications", "argocd", "staging-backend").unwrap();
    assert_eq!(app["spec"]["source"]["targetRevision"], "main");
}

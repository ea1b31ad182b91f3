//! `status`: one table per component; a component made unready shows as such, with its message.

use std::time::Duration;

use super::support::{World, assert_contains};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_reflects_a_component_made_unready() {
    let world = World::start(Duration::from_millis(200)).await;
    world.run(&["up", "staging", "--timeout", "2m"]).await.expect(0);
    let ready = world.run(&["status", "staging"]).await.expect(0);
    assert_contains(&ready.stdout, "staging (namespace staging): ready");
    assert_contains(&ready.stdout, "Application/staging-backend");
    assert_contains(&ready.stdout, "Synced/Healthy");

    world.hold_unready(
        "applications",
        "argocd",
        "staging-backend",
        "Deployment backend: 0/1 replicas available",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let report = loop {
        let run = world.run(&["status", "staging", "-o", "json"]).await;
        if run.code == 1 || std::time::Instant::now() > deadline {
            break run.expect(1).json();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report["ready"], false);
    let backend = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "backend")
        .unwrap();
    assert_eq!(backend["ready"], false);
    assert_eq!(backend["rows"][0]["state"], "OutOfSync/Progressing");
    assert!(
        backend["rows"][0]["message"]
            .as_str()
            .unwrap()
            .contains("0/1 replicas available"),
        "{backend}"
    );
    let others_ready = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["component"] != "backend")
        .all(|c| c["ready"] == true);
    assert!(others_ready, "{report}");
    let table = world.run(&["status", "staging"]).await.expect(1);
    assert_contains(&table.stdout, "backend (wave 5): not ready");
    assert_contains(&table.stdout, "0/1 replicas available");
}

//! Issue #14 item 7, works from anywhere: `up` publishes the environment descriptor (a ConfigMap in the
//! environment's namespace), and `status`/`list` read it from the cluster when run from a directory with
//! no repository and no `DULI_REPO`; the descriptor holds no Secret value.

use std::time::Duration;

use base64::Engine;
use testkit::leakscan::{Allowed, Observed, assert_no_leak};

use super::support::{Run, World, assert_contains, run_to_end};

const DO_TOKEN: &str = "dop_v1_descriptor-PLAINTEXT-77aa";

/// `kubectl duli env ARGS` from an empty directory, without `DULI_REPO`.
async fn from_nowhere(world: &World, empty: &std::path::Path, args: &[&str]) -> Run {
    let mut command = world.command(args);
    command.env_remove("DULI_REPO").current_dir(empty);
    run_to_end(command).await
}

/// Every value of every Secret in the cluster, decoded (what must never be in the descriptor).
fn secret_values(world: &World) -> Vec<String> {
    let mut values = vec![DO_TOKEN.to_string()];
    for secret in world.api.store().list("secrets", None) {
        for (_, value) in secret["data"].as_object().into_iter().flatten() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.as_str().unwrap_or_default())
                .unwrap_or_default();
            // Short values (`app`, a port) are words the descriptor may hold for other reasons.
            if decoded.len() >= 8 {
                values.push(String::from_utf8_lossy(&decoded).into_owned());
            }
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_up_status_and_list_work_from_an_empty_directory() {
    let world = World::start(Duration::from_millis(100)).await;
    let empty = tempfile::tempdir().unwrap();

    // Before any `up`: neither a repository nor a descriptor, and the error says what was tried.
    let none = from_nowhere(&world, empty.path(), &["status", "staging"])
        .await
        .expect(2);
    assert_contains(&none.stderr, "no duli repository found");
    assert_contains(&none.stderr, "no environment descriptor `staging` in the cluster");
    assert_contains(&none.stderr, "namespace staging: none");
    assert_contains(&none.stderr, "kubectl duli env up");

    let mut up = world.command(&["up", "staging", "--timeout", "2m"]);
    up.env("DIGITALOCEAN_ACCESS_TOKEN", DO_TOKEN);
    run_to_end(up).await.expect(0);
    let map = world
        .get("configmaps", "staging", "duli-environment")
        .expect("up published the descriptor");
    let labels = &map["metadata"]["labels"];
    assert_eq!(labels["duli.one/descriptor"], "environment");
    assert_eq!(labels["environment"], "staging");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "duli");
    let fields = serde_json::to_string(&map["metadata"]["managedFields"]).unwrap();
    assert_contains(&fields, "\"manager\":\"duli\"");
    let text = serde_json::to_string_pretty(&map).unwrap();
    let secrets = secret_values(&world);
    assert!(secrets.len() > 1, "the cluster holds Secrets to check against");
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_leak(
        "the descriptor ConfigMap",
        &text,
        "",
        &Observed::default(),
        &secrets,
        &Allowed::default(),
    );

    // A second plan sees the descriptor as it is.
    let plan = world.run(&["plan", "staging", "-o", "json"]).await.expect(0);
    assert_contains(&plan.stdout, "\"component\": \"descriptor\"");

    let status = from_nowhere(&world, empty.path(), &["status", "staging", "-v"])
        .await
        .expect(0);
    assert_contains(&status.stdout, "staging (namespace staging): ready");
    assert_contains(&status.stdout, "Application/staging-backend");
    assert_contains(
        &status.stderr,
        "environment staging from configmap staging/duli-environment in context",
    );

    let list = from_nowhere(&world, empty.path(), &["list", "-o", "json"])
        .await
        .expect(0);
    let rows = list.json();
    assert_eq!(rows[0]["name"], "staging", "{rows}");
    assert_eq!(rows[0]["state"], "up", "{rows}");
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "only staging was published: {rows}"
    );

    // Commands that need the repository keep saying so.
    let up = from_nowhere(&world, empty.path(), &["plan", "staging"])
        .await
        .expect(2);
    assert_contains(&up.stderr, "no duli repository found");
}

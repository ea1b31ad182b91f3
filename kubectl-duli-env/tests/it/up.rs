//! `up`: from an empty cluster to ready, idempotence, resuming after a kill, surviving faults, a 403 that
//! names what is missing, and the report of a component that does not become ready.

use std::time::Duration;

use kube_standin::Fault;
use serde_json::json;

use super::support::{World, assert_contains};
use testkit::process::signal_group;

const FAST: Duration = Duration::from_millis(200);

/// `up staging` limited to the platform phase (helm only).
const PLATFORM_ONLY: &[&str] = &["up", "staging", "--only", "platform"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_from_empty_to_ready_then_a_second_up_changes_nothing() {
    let world = World::start(FAST).await;
    let first = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    let summary = first.json();
    assert_eq!(summary["ready"], true, "{}", first.stderr);
    let phases: Vec<&str> = summary["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["preflight", "platform", "namespaces", "secrets", "gitops", "wait"]
    );
    let platform = &summary["phases"][1];
    assert!(
        platform["created"].as_u64().unwrap() >= 4,
        "charts installed by real helm: {platform}"
    );
    assert_eq!(
        summary["endpoints"]["postgres"]["external"],
        "db-staging.duli.one:5432"
    );
    assert!(
        first.stderr.contains("log: "),
        "the log file is named at the end:\n{}",
        first.stderr
    );
    // What up did is really there: helm releases, labelled namespace, SealedSecrets, ready Applications.
    assert!(
        world
            .get("secrets", "argocd", "sh.helm.release.v1.argocd.v1")
            .is_some(),
        "helm stored the release"
    );
    assert!(
        world
            .get("configmaps", "cert-manager", "cert-manager-fixture")
            .is_some()
    );
    assert!(
        world.get("storageclasses", "", "do-block-storage").is_some(),
        "the provider chart made the storage class"
    );
    let namespace = world.get("namespaces", "", "staging").unwrap();
    assert_eq!(namespace["metadata"]["labels"]["tier"], "non-production");
    assert!(world.get("sealedsecrets", "staging", "redis-secret").is_some());
    let app = world.get("applications", "argocd", "staging-backend").unwrap();
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    let managers: Vec<&str> = app["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"duli"),
        "applied with field manager duli: {managers:?}"
    );

    let second = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    let summary = second.json();
    assert_eq!(summary["totals"]["created"], 0, "{summary}");
    assert_eq!(summary["totals"]["changed"], 0, "{summary}");
    assert!(summary["totals"]["unchanged"].as_u64().unwrap() > 20, "{summary}");
    assert_contains(&second.stderr, "platform: argocd 0.1.0 up to date");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_killed_in_the_platform_phase_then_rerun_converges() {
    // Slow readiness keeps helm waiting on the fixture Deployment, with its release pending-install.
    let world = World::start(Duration::from_secs(3)).await;
    let (mut child, pid) = world.spawn_up_in_own_group();
    world.wait_for_pending_install().await;
    // Like Ctrl-C on a terminal: the whole process group (kubectl → plugin → helm) goes.
    signal_group("KILL", pid);
    let _ = child.wait().await;
    let release = world
        .get("secrets", "argocd", "sh.helm.release.v1.argocd.v1")
        .unwrap();
    assert_eq!(
        release["metadata"]["labels"]["status"], "pending-install",
        "the kill left the release pending"
    );

    let rerun = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    assert_eq!(rerun.json()["ready"], true);
    assert_contains(&rerun.stderr, "recovering argocd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_killed_between_waves_then_rerun_converges() {
    let world = World::start(Duration::from_millis(700)).await;
    let (mut child, pid) = world.spawn_up_in_own_group();
    // Kill once the data instances' wave is applied, before the applications' wave.
    let reached = tokio::time::timeout(Duration::from_secs(90), async {
        while world
            .get("applications", "argocd", "staging-postgres-instance")
            .is_none()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "up never reached the data instances' wave");
    signal_group("KILL", pid);
    let _ = child.wait().await;
    assert!(
        world.get("applications", "argocd", "staging-backend").is_none(),
        "killed before the last wave"
    );

    let rerun = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    let summary = rerun.json();
    assert_eq!(summary["ready"], true);
    let gitops = summary["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "gitops")
        .unwrap()
        .clone();
    assert!(
        gitops["created"].as_u64().unwrap() > 0,
        "the rest was created: {gitops}"
    );
    assert!(
        gitops["unchanged"].as_u64().unwrap() > 0,
        "what existed was left alone: {gitops}"
    );
    assert!(world.get("applications", "argocd", "staging-backend").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_429_500_and_dropped_watches_are_survived() {
    let world = World::start(FAST).await;
    // Server errors on applying Applications, throttling on reading SealedSecrets and discovery, and
    // Application watches cut before their first event.
    world.api.add_fault(
        Fault::error(500)
            .on_method("PATCH")
            .on_path("/namespaces/argocd/applications/")
            .times(3),
    );
    world.api.add_fault(
        Fault::error(503)
            .on_method("PATCH")
            .on_path("/namespaces/staging/sealedsecrets/")
            .times(1),
    );
    world.api.add_fault(
        Fault::too_many_requests(1)
            .on_method("GET")
            .on_path("/namespaces/staging/sealedsecrets/")
            .times(2),
    );
    world.api.add_fault(
        Fault::error(500)
            .on_method("GET")
            .on_path("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications")
            .times(2),
    );
    world.api.add_fault(
        Fault::drop_watch_after(0)
            .on_path("/namespaces/argocd/applications")
            .times(6),
    );
    world.api.add_fault(
        Fault::expire_watch()
            .on_path("/namespaces/argocd/applications")
            .times(2),
    );
    let run = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m", "-vv"])
        .await
        .expect(0);
    assert_eq!(run.json()["ready"], true, "{}", run.stderr);
    let hits = world.api.requests();
    assert!(hits.iter().any(|r| r.status == 500), "the 500s were served");
    assert!(hits.iter().any(|r| r.status == 429), "the 429s were served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_component_fails_with_its_message_and_how_to_look_closer() {
    let world = World::start(FAST).await;
    world
        .run(&["up", "staging", "--only", "platform", "--only", "namespaces"])
        .await
        .expect(0);
    // The data instance the postgres component deploys, kept unready by the stand-in.
    world
        .api
        .store()
        .insert(json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "database", "namespace": "staging", "labels": {"app.kubernetes.io/instance": "postgres-instance"}},
            "spec": {"instances": 3, "storage": {"size": "1Gi"}}
        }))
        .unwrap();
    world.hold_unready(
        "clusters",
        "staging",
        "database",
        "waiting for PVC database-1 to be bound",
    );
    let run = world.run(&["up", "staging", "--timeout", "12s"]).await.expect(1);
    assert_contains(&run.stderr, "component `postgres-instance`");
    assert_contains(&run.stderr, "waiting for PVC database-1 to be bound");
    assert_contains(&run.stderr, "look closer: kubectl duli env status staging");
    assert!(
        run.stdout.contains("not ready"),
        "the summary still prints:\n{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_application_stuck_out_of_sync_shows_argo_cds_message() {
    let world = World::start(FAST).await;
    world.hold_unready(
        "applications",
        "argocd",
        "staging-backend",
        "ComparisonError: values-staging.yml: no such file",
    );
    let run = world.run(&["up", "staging", "--timeout", "12s"]).await.expect(1);
    assert_contains(&run.stderr, "Application argocd/staging-backend, wave 5");
    assert_contains(&run.stderr, "sync OutOfSync");
    assert_contains(&run.stderr, "ComparisonError: values-staging.yml: no such file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forbidden_names_verb_resource_and_namespace() {
    let world = World::start_with(
        kube_standin::StandIn::builder()
            .simulate_ready(FAST)
            .deny("patch", "applications"),
    )
    .await;
    let preflight = world.run(&["up", "staging"]).await.expect(2);
    assert_contains(&preflight.stderr, "preflight found");
    assert_contains(
        &preflight.stderr,
        "patch applications.argoproj.io in namespace argocd",
    );
    assert_contains(
        &preflight.stderr,
        "kubectl auth can-i patch applications.argoproj.io -n argocd",
    );
    // Without preflight the API server's 403 is reported the same way.
    world
        .run(&["up", "staging", "--only", "platform", "--only", "namespaces"])
        .await
        .expect(0);
    let applied = world.run(&["up", "staging", "--only", "gitops"]).await.expect(2);
    assert_contains(
        &applied.stderr,
        "forbidden: you may not patch applications.argoproj.io",
    );
    assert_contains(&applied.stderr, "in namespace argocd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_sealed_secrets_point_at_secrets_init() {
    let world = World::start(FAST).await;
    std::fs::remove_dir_all(world.repo.join("helm/secrets/sealed/staging")).unwrap();
    let run = world.run(&["up", "staging"]).await.expect(2);
    assert_contains(&run.stderr, "kubectl duli secrets init staging");
    assert!(
        world.get("namespaces", "", "staging").is_none(),
        "preflight changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_installs_the_platform_charts_from_a_chart_mirror() {
    let world = World::start(FAST).await;
    // The fixture charts as a chart repository on 127.0.0.1, standing in for every upstream repository
    // (https and oci) of the catalog.
    let mirror_dir = world.dir.path().join("mirror");
    let charts = world.repo.join("gitops/charts");
    for chart in ["cert-manager", "sealed-secrets", "argo-cd", "csi-digitalocean"] {
        let status = std::process::Command::new(testkit::tools::helm4())
            .arg("package")
            .arg(charts.join(chart))
            .arg("--destination")
            .arg(&mirror_dir)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "helm package {chart}");
    }
    let status = std::process::Command::new(testkit::tools::helm4())
        .arg("repo")
        .arg("index")
        .arg(&mirror_dir)
        .status()
        .unwrap();
    assert!(status.success(), "helm repo index");
    let server = testkit::chartrepo::ChartRepoServer::serve(&mirror_dir);
    let catalog = world.repo.join("gitops/platform.yml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let text = text
        .replacen("repo: charts", "repo: https://charts.upstream.invalid", 3)
        .replace(
            "repo: charts",
            "repo: oci://registry.upstream.invalid/digitalocean",
        );
    std::fs::write(&catalog, text).unwrap();

    let mirror = format!("*={}", server.url);
    let run = world
        .run(&[PLATFORM_ONLY, &["--chart-mirror", &mirror, "--timeout", "2m"]].concat())
        .await
        .expect(0);
    assert!(
        server.requests() >= 4,
        "helm fetched from the mirror:\n{}",
        run.stderr
    );
    assert!(
        world
            .get("secrets", "argocd", "sh.helm.release.v1.argocd.v1")
            .is_some(),
        "helm installed argocd from the mirror"
    );
    assert!(
        world.get("storageclasses", "", "do-block-storage").is_some(),
        "the oci:// chart came from the mirror too"
    );
    // An invalid mirror is named before anything runs.
    let bad = world
        .run(&[PLATFORM_ONLY, &["--chart-mirror", "nonsense"]].concat())
        .await
        .expect(2);
    assert_contains(&bad.stderr, "invalid chart mirror in --chart-mirror");
}

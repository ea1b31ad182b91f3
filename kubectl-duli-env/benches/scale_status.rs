//! Benchmark (not a test): does `kubectl duli env status` scale with the objects in the namespaces?
//! Issue #9 "Concurrency and scale": with 2 environments × 50 extra objects per namespace the time per object
//! stays within 2× the small case's.
//!
//! Two worlds (kube-standin with the operator simulation, real helm 4, the e2e `World`), both brought up
//! with `up staging` and `up prod` and then seeded with what the environments' Applications deploy (see
//! [`up_objects`]: the simulation marks Applications synced without creating their resources). The
//! "scaled" one then gets `DULI_BENCH_EXTRA` (default 50) extra objects
//! in each of staging and prod, of the kinds `env status` lists: Deployments and StatefulSets (half of them
//! carrying a component's `app.kubernetes.io/instance` label, so they are judged and shown as rows), Pods,
//! CloudNativePG Clusters and RabbitmqClusters (unowned). One sample = `status staging` + `status prod`,
//! through kubectl's plugin dispatch; samples alternate small / scaled (`DULI_BENCH_RUNS`, default 7) so load
//! drift hits both alike, and the table shows medians. "Per object" = wall time / objects in the two
//! namespaces (the stand-in's store).
//!
//! Run: `cargo bench -p kubectl-duli-env --bench scale_status` (or `bash kubectl-duli-env/benches/scale.sh`).
//! Exit code 1 when `CHECK=1` and the target (scaled per object ≤ 2.0× small per object) is missed.

#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use kubectl_duli_env::desired::Desired;
use serde_json::{Value, json};
use shared::environment::Environment;
use shared::repo::Repo;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
        .unwrap_or(default)
}

/// Objects in `namespaces`, all kinds.
fn objects_in(world: &support::World, namespaces: &[&str]) -> usize {
    world
        .api
        .store()
        .lock()
        .all_objects()
        .iter()
        .filter(|(key, _)| namespaces.contains(&key.namespace.as_str()))
        .count()
}

fn ready_workload(kind: &str, namespace: &str, name: &str, instance: Option<&str>) -> Value {
    let mut labels = json!({"app": name, "app.kubernetes.io/part-of": "bench"});
    if let Some(instance) = instance {
        labels["app.kubernetes.io/instance"] = json!(instance);
    }
    let mut obj = json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "generation": 1},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "example:1.0", "ports": [{"containerPort": 8080}]}]}
            }
        },
        "status": {
            "observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
            "availableReplicas": 1, "currentReplicas": 1
        }
    });
    if kind == "StatefulSet" {
        obj["spec"]["serviceName"] = json!(name);
    } else {
        obj["status"]["conditions"] = json!([
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ]);
    }
    obj
}

/// The component owning a seeded object of `kind` named `name` (`None`: not a component's own object).
fn seed_owner(kind: &str, name: &str) -> Option<&'static str> {
    match (kind, name) {
        ("Cluster" | "Service" | "Secret", n) if n.starts_with("database") => Some("postgres-instance"),
        ("RedisReplication" | "RedisSentinel" | "StatefulSet" | "Service" | "Secret", n)
            if n.starts_with("redis") =>
        {
            Some("redis-instance")
        }
        ("RabbitmqCluster" | "StatefulSet" | "Service" | "Secret", n) if n.starts_with("queue") => {
            Some("rabbitmq")
        }
        _ => None,
    }
}

/// What an environment that is up holds besides its Applications (the stand-in's Argo CD simulation syncs
/// Applications without creating their resources): the data services as the operators create them
/// (kubectl-duli-db/benches/seed.yaml: CNPG Cluster, RedisReplication + RedisSentinel, RabbitmqCluster, their
/// StatefulSets, Pods, Services, Secrets), labelled with their component's release, and a ready Deployment
/// per application component (backend, ai-service, scheduler).
fn up_objects(desired: &Desired, namespace: &str) -> Vec<Value> {
    let release = |component: &str| {
        desired
            .env_components()
            .find(|c| c.name == component)
            .map(|c| c.release.clone())
    };
    let seed = support::workspace().join("kubectl-duli-db/benches/seed.yaml");
    let text = std::fs::read_to_string(&seed).unwrap();
    let mut objects: Vec<Value> = kube_standin::store::parse_yaml_docs(&text, "seed.yaml")
        .unwrap()
        .into_iter()
        .filter(|o| o["kind"] != "Namespace" && o["metadata"]["namespace"] == namespace)
        .collect();
    for obj in &mut objects {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
        if let Some(instance) = seed_owner(&kind, &name).and_then(release) {
            if !obj["metadata"]["labels"].is_object() {
                obj["metadata"]["labels"] = json!({});
            }
            obj["metadata"]["labels"]["app.kubernetes.io/instance"] = json!(instance);
        }
    }
    for app in ["backend", "ai-service", "scheduler"] {
        if let Some(instance) = release(app) {
            objects.push(ready_workload("Deployment", namespace, app, Some(&instance)));
        }
    }
    objects
}

/// `extra` objects for `namespace`: 30% Deployments, 20% StatefulSets (half of both owned by `instance`),
/// 30% Pods, 10% CNPG Clusters and the rest RabbitmqClusters (unowned, so they do not change the verdict);
/// all with a status, so the operator simulation adds no side objects.
fn extra_objects(namespace: &str, extra: usize, instance: &str) -> Vec<Value> {
    let deployments = extra * 3 / 10;
    let statefulsets = extra * 2 / 10;
    let pods = extra * 3 / 10;
    let clusters = extra / 10;
    let rabbits = extra - deployments - statefulsets - pods - clusters;
    let mut objects = Vec::new();
    for i in 0..deployments {
        let owner = (i % 2 == 0).then_some(instance);
        objects.push(ready_workload(
            "Deployment",
            namespace,
            &format!("extra-deploy-{i}"),
            owner,
        ));
    }
    for i in 0..statefulsets {
        let owner = (i % 2 == 0).then_some(instance);
        objects.push(ready_workload(
            "StatefulSet",
            namespace,
            &format!("extra-sts-{i}"),
            owner,
        ));
    }
    for i in 0..pods {
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": format!("extra-pod-{i}"), "namespace": namespace,
                         "labels": {"app": format!("extra-deploy-{i}"), "app.kubernetes.io/part-of": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "example:1.0"}]},
            "status": {"phase": "Running", "podIP": format!("10.244.9.{i}"), "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}
        }));
    }
    for i in 0..clusters {
        objects.push(json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": format!("extra-db-{i}"), "namespace": namespace},
            "spec": {"instances": 1, "storage": {"size": "1Gi"}},
            "status": {"phase": "Cluster in healthy state", "instances": 1, "readyInstances": 1,
                       "currentPrimary": format!("extra-db-{i}-1"),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady",
                                       "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }));
    }
    for i in 0..rabbits {
        objects.push(json!({
            "apiVersion": "rabbitmq.com/v1beta1",
            "kind": "RabbitmqCluster",
            "metadata": {"name": format!("extra-mq-{i}"), "namespace": namespace},
            "spec": {"replicas": 1},
            // A seeded status: the simulation leaves the object (and creates no side objects).
            "status": {"conditions": [
                {"type": "AllReplicasReady", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "ClusterAvailable", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "ReconcileSuccess", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }));
    }
    objects
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() - 1) / 2]
}

/// `status staging` then `status prod`; the summed wall time, both exit codes, and the API requests made.
async fn sample(world: &support::World) -> (Duration, [i32; 2], usize, usize) {
    world.api.clear_requests();
    let staging = world.run(&["status", "staging", "-o", "json"]).await;
    let prod = world.run(&["status", "prod", "-o", "json"]).await;
    for run in [&staging, &prod] {
        assert!(
            run.code == 0 || run.code == 1,
            "status exited {}:\n{}\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
    }
    (
        staging.elapsed + prod.elapsed,
        [staging.code, prod.code],
        world.api.requests().len(),
        rows(&staging) + rows(&prod),
    )
}

/// The rows (Applications and the objects judged) of one `status -o json`.
fn rows(run: &support::Run) -> usize {
    run.json()["components"].as_array().map_or(0, |c| {
        c.iter().map(|c| c["rows"].as_array().map_or(0, Vec::len)).sum()
    })
}

fn main() {
    let runs = env_number("DULI_BENCH_RUNS", 7);
    let extra = env_number("DULI_BENCH_EXTRA", 50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let envs = ["staging", "prod"];
    let (small_objects, scaled_objects, small, scaled, codes, requests, rows) = runtime.block_on(async {
        let mut worlds = Vec::new();
        for _ in 0..2 {
            let world = support::World::start(Duration::from_millis(100)).await;
            for env in envs {
                let up = world
                    .run(&["up", env, "-o", "json", "--timeout", "5m"])
                    .await
                    .expect(0);
                assert_eq!(up.json()["ready"], true, "{env} is up");
            }
            worlds.push(world);
        }
        let small = &worlds[0];
        let scaled = &worlds[1];
        let repo = Repo::at(&scaled.repo).unwrap();
        for env in envs {
            let environment = Environment::load(&repo, env).unwrap();
            let desired = Desired::load(&repo, &environment, None).unwrap();
            for world in [small, scaled] {
                for obj in up_objects(&desired, &environment.namespace) {
                    world.api.store().insert(obj).expect("seeded object is valid");
                }
            }
            let owner = desired
                .env_components()
                .find(|c| c.name == "backend")
                .map(|c| c.release.clone())
                .expect("the backend component");
            for obj in extra_objects(&environment.namespace, extra, &owner) {
                scaled.api.store().insert(obj).expect("extra object is valid");
            }
        }
        // Warm-up, and the same verdict in both worlds (the extra objects are ready or not owned).
        let (_, small_codes, small_requests, small_rows) = sample(small).await;
        let (_, scaled_codes, scaled_requests, scaled_rows) = sample(scaled).await;
        assert_eq!(
            small_codes, scaled_codes,
            "the extra objects changed status's verdict"
        );
        let (mut t_small, mut t_scaled) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            t_small.push(sample(small).await.0);
            t_scaled.push(sample(scaled).await.0);
        }
        (
            objects_in(small, &envs),
            objects_in(scaled, &envs),
            median(&mut t_small),
            median(&mut t_scaled),
            small_codes,
            [small_requests, scaled_requests],
            [small_rows, scaled_rows],
        )
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "kubectl duli env status staging + prod (exit codes {codes:?}): scaled = + {extra} objects in each namespace"
    );
    println!(
        "median of {runs} interleaved runs; {} cores; load average: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" ")
    );
    println!(
        "{:<7} {:>10} {:>8} {:>9} {:>14} {:>8}",
        "case", "wall ms", "objects", "requests", "us per object", "ratio"
    );
    let per = |t: Duration, n: usize| t.as_secs_f64() * 1e6 / n as f64;
    let (small_per, scaled_per) = (per(small, small_objects), per(scaled, scaled_objects));
    let ratio = scaled_per / small_per;
    println!(
        "{:<7} {:>10.1} {:>8} {:>9} {:>14.1} {:>8}",
        "small",
        small.as_secs_f64() * 1e3,
        small_objects,
        requests[0],
        small_per,
        ""
    );
    println!(
        "{:<7} {:>10.1} {:>8} {:>9} {:>14.1} {:>7.2}x",
        "scaled",
        scaled.as_secs_f64() * 1e3,
        scaled_objects,
        requests[1],
        scaled_per,
        ratio
    );
    let met = ratio <= 2.0;
    println!(
        "target (scaled per object <= 2.0x small per object): {}",
        if met { "met" } else { "MISSED" }
    );
    println!(
        "objects = in the staging and prod namespaces (the Applications in argocd are read too); \
         rows shown (Applications + judged objects): small {}, scaled {}",
        rows[0], rows[1]
    );
    let check = std::env::var("CHECK").is_ok_and(|v| v == "1");
    std::process::exit(i32::from(check && !met));
}

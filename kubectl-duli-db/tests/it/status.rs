//! `kubectl duli db status`: healthy, each service down, a CR not ready, a silent service, several envs.

use std::time::{Duration, Instant};

use testkit::servers::closed_port;
use testkit::services::servers;

use crate::support::{Cluster, healthy_seed, service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_healthy_with_streaming_replica_redis_replica_and_sentinel() {
    let cluster = Cluster::healthy_staging().await;
    let run = cluster
        .run_expecting(0, &["status", "staging", "-o", "json"])
        .await;
    let doc = run.json();
    assert_eq!(doc["environments"][0]["healthy"], true, "{doc:#}");

    let pg = service(&doc, "staging", "postgres");
    assert_eq!(pg["ready"], true);
    assert_eq!(pg["instances"], serde_json::json!({"desired": 2, "ready": 2}));
    assert_eq!(pg["primary"], "database-1");
    assert_eq!(pg["message"], "Cluster in healthy state");
    assert_eq!(
        pg["endpoints"]["internal"],
        "database-rw.staging.svc.cluster.local:5432"
    );
    assert_eq!(pg["endpoints"]["external"], "db-staging.duli.one:5432");
    let detail = pg["live"]["detail"].as_str().unwrap();
    assert_eq!(pg["live"]["ok"], true, "{detail}");
    assert!(detail.starts_with("PostgreSQL "), "{detail}");
    assert!(detail.contains("primary (not in recovery)"), "{detail}");
    assert!(detail.contains("replica database-2 streaming lag "), "{detail}");
    assert!(pg["live"]["latency_ms"].as_u64().is_some());

    let redis = service(&doc, "staging", "redis");
    let detail = redis["live"]["detail"].as_str().unwrap();
    assert_eq!(redis["ready"], true, "{}", redis["message"]);
    assert_eq!(redis["live"]["ok"], true, "{detail}");
    assert_eq!(redis["primary"], "redis-0");
    assert!(
        detail.contains("PONG, role master, 1/1 replicas connected"),
        "{detail}"
    );
    let sentinel = format!(
        "sentinel: master of `mymaster` is 127.0.0.1:{}",
        servers().redis_master
    );
    assert!(detail.contains(&sentinel), "{detail}");
    assert_eq!(redis["sentinel"]["name"], "redis-sentinel");
    assert_eq!(redis["sentinel"]["ready"], true);

    let rabbit = service(&doc, "staging", "rabbitmq");
    assert_eq!(rabbit["ready"], true);
    assert_eq!(rabbit["primary"], serde_json::Value::Null);
    assert_eq!(
        rabbit["live"]["detail"],
        "AMQP login as guest, channel open, no alarms"
    );

    let table = cluster.run(&["status", "staging"]).await;
    assert_eq!(table.code, 0, "{}", table.all());
    assert!(
        table
            .stdout
            .contains("Environment staging (namespace staging): all healthy"),
        "{}",
        table.all()
    );
    for text in ["database-1", "redis-0", "Cluster in healthy state", "ok "] {
        assert!(table.stdout.contains(text), "missing {text}: {}", table.all());
    }
    // Not a terminal: kubectl's plain columns, no box drawing, no colour; endpoints only with -o wide.
    assert!(
        table.stdout.contains("SERVICE    READY   INSTANCES   PRIMARY"),
        "{}",
        table.all()
    );
    assert!(
        !table.stdout.contains('│') && !table.stdout.contains('\u{1b}'),
        "{}",
        table.all()
    );
    assert!(
        !table.stdout.contains("mq-staging.duli.one:5672"),
        "{}",
        table.all()
    );
    let wide = cluster.run(&["status", "staging", "-o", "wide"]).await;
    assert_eq!(wide.code, 0, "{}", wide.all());
    for text in [
        "INTERNAL",
        "mq-staging.duli.one:5672",
        "database-rw.staging.svc.cluster.local:5432",
        "AMQP login as guest, channel open, no alarms",
    ] {
        assert!(wide.stdout.contains(text), "missing {text}: {}", wide.all());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_environments_without_live_checks() {
    let yaml = format!(
        "{}{}",
        healthy_seed("staging").yaml(),
        healthy_seed("prod").yaml()
    );
    let cluster = Cluster::start(&yaml).await;
    let run = cluster
        .run_expecting(0, &["status", "--all", "--no-live", "-o", "yaml"])
        .await;
    let doc: serde_json::Value = serde_saphyr::from_str(&run.stdout).unwrap();
    let names: Vec<_> = doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod", "staging"]);
    for env in ["prod", "staging"] {
        for name in ["postgres", "redis", "rabbitmq"] {
            let entry = service(&doc, env, name);
            assert_eq!(entry["ready"], true, "{env}/{name}: {}", entry["message"]);
            assert_eq!(entry["live"], serde_json::Value::Null);
        }
    }
    assert_eq!(
        service(&doc, "prod", "postgres")["endpoints"]["external"],
        "db.duli.one:5433"
    );
}

/// Point one service's forward at a closed port: that service is down with the reason, the others are up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_down_in_turn() {
    let dead = format!("127.0.0.1:{}", closed_port());
    for down in ["postgres", "redis", "rabbitmq"] {
        let mut seed = healthy_seed("staging");
        match down {
            "postgres" => seed.pg_primary = dead.clone(),
            "redis" => seed.redis_master = dead.clone(),
            _ => seed.amqp = dead.clone(),
        }
        let cluster = Cluster::start(&seed.yaml()).await;
        let started = Instant::now();
        let run = cluster
            .run(&["status", "staging", "-o", "json", "--timeout", "5s"])
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{down}: took {:?}",
            started.elapsed()
        );
        assert_eq!(run.code, 1, "{down}: {}", run.all());
        let doc = run.json();
        for name in ["postgres", "redis", "rabbitmq"] {
            let live = &service(&doc, "staging", name)["live"];
            let detail = live["detail"].as_str().unwrap();
            if name == down {
                assert_eq!(live["ok"], false, "{name}: {detail}");
                assert!(detail.contains("port-forward to pod/"), "{name}: {detail}");
                assert!(detail.to_lowercase().contains("refused"), "{name}: {detail}");
            } else {
                assert_eq!(live["ok"], true, "{name} while {down} is down: {detail}");
            }
        }
        let entry = service(&doc, "staging", down);
        assert_eq!(entry["ready"], true);
        assert_eq!(entry["healthy"], false);

        let table = cluster.run(&["status", "staging", "--timeout", "5s"]).await;
        assert_eq!(table.code, 1);
        assert!(
            table.stdout.contains(&format!("UNHEALTHY: {down}")),
            "{}",
            table.all()
        );
        assert!(table.stdout.contains("DOWN"), "{}", table.all());
    }
}

/// A service that accepts connections and never answers is reported within --timeout, not waited on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_service_is_down_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut seed = healthy_seed("staging");
    seed.pg_primary = silent;
    let cluster = Cluster::start(&seed.yaml()).await;
    let started = Instant::now();
    let run = cluster
        .run(&["status", "staging", "-o", "json", "--timeout", "2s"])
        .await;
    let elapsed = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
    let doc = run.json();
    let live = &service(&doc, "staging", "postgres")["live"];
    assert_eq!(live["ok"], false);
    assert!(live["detail"].as_str().unwrap().contains("(timeout)"), "{live}");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_not_ready_shows_its_message() {
    let seed = healthy_seed("staging");
    let yaml = seed
        .yaml()
        .replace(
            "phase: Cluster in healthy state",
            "phase: Creating a new replica\n  phaseReason: Creating replica database-2-join",
        )
        .replace("readyInstances: 2", "readyInstances: 1")
        .replace(
            "{type: Ready, status: \"True\", reason: ClusterIsReady, message: Cluster is Ready,",
            "{type: Ready, status: \"False\", reason: ClusterIsNotReady, message: Cluster Is Not Ready,",
        )
        .replace(
            "{type: AllReplicasReady, status: \"True\", reason: AllPodsAreReady,",
            "{type: AllReplicasReady, status: \"False\", reason: NotAllPodsReady, message: 0/1 Pods ready,",
        )
        .replace("masterNode: redis-0", "masterNode: \"\"");
    let cluster = Cluster::start(&yaml).await;
    let run = cluster
        .run_expecting(1, &["status", "staging", "--no-live", "-o", "json"])
        .await;
    let doc = run.json();
    let pg = service(&doc, "staging", "postgres");
    assert_eq!(pg["ready"], false);
    assert_eq!(
        pg["message"],
        "Creating a new replica: Creating replica database-2-join"
    );
    assert_eq!(pg["instances"], serde_json::json!({"desired": 2, "ready": 1}));
    let rabbit = service(&doc, "staging", "rabbitmq");
    assert_eq!(
        rabbit["message"],
        "AllReplicasReady=False (NotAllPodsReady): 0/1 Pods ready"
    );
    let redis = service(&doc, "staging", "redis");
    assert_eq!(
        redis["message"],
        "status.masterNode is empty: no master elected yet"
    );
    let table = cluster.run(&["status", "staging", "--no-live"]).await;
    assert!(
        table.stdout.contains("UNHEALTHY: postgres, redis, rabbitmq"),
        "{}",
        table.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_instances_and_unknown_environment() {
    let cluster = Cluster::start("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n").await;
    let run = cluster
        .run_expecting(1, &["status", "staging", "-o", "json"])
        .await;
    let doc = run.json();
    let pg = service(&doc, "staging", "postgres");
    assert!(
        pg["message"]
            .as_str()
            .unwrap()
            .starts_with("Cluster `database` not found in namespace staging"),
        "{pg}"
    );
    assert_eq!(pg["live"]["detail"], "not checked: no Cluster to check");
    let unknown = cluster.run(&["status", "qa"]).await;
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown environment `qa`"),
        "{}",
        unknown.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_an_error() {
    let cluster = Cluster::start("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n").await;
    cluster
        .api
        .add_fault(kube_standin::Fault::error(500).on_path("/apis/postgresql.cnpg.io"));
    let run = cluster
        .run_expecting(2, &["status", "staging", "--timeout", "3s"])
        .await;
    assert!(
        run.stderr
            .contains("error: cannot get clusters.postgresql.cnpg.io database in namespace staging"),
        "{}",
        run.all()
    );
}

/// The next line of a watch, as JSON (20 s at most).
async fn next_json(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> serde_json::Value {
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a line within 20 s")
        .unwrap()
        .expect("the watch is still running");
    serde_json::from_str(&line).unwrap()
}

/// `status --watch` off a terminal: one JSON line for the first round, then one per change (a service
/// that goes away), nothing for rounds that say the same; Ctrl-C ends it with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_a_json_line_per_change_and_ends_on_ctrl_c() {
    use tokio::io::AsyncBufReadExt;
    let cluster = Cluster::healthy_staging().await;
    let mut child = cluster
        .command(&["status", "staging", "--watch", "--interval", "200ms", "--no-live"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_json(&mut lines).await;
    assert_eq!(first["environments"][0]["healthy"], true, "{first}");

    // Several rounds that say the same print nothing; then the RedisReplication goes away.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let request = http::Request::delete(
        "/apis/redis.redis.opstreelabs.in/v1beta2/namespaces/staging/redisreplications/redis",
    )
    .body(Vec::new())
    .unwrap();
    cluster.api.client().request_text(request).await.unwrap();
    let second = next_json(&mut lines).await;
    assert_eq!(second["environments"][0]["healthy"], false, "{second}");
    let redis = service(&second, "staging", "redis");
    assert_eq!(redis["ready"], false, "{redis}");

    testkit::process::signal("INT", child.id().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("Ctrl-C ends the watch")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    // Nothing more was printed between the change and Ctrl-C (the rounds said the same).
    assert!(lines.next_line().await.unwrap().is_none());
    // Ctrl-C is how a watch ends: no "interrupted … stopped before it finished" line.
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(!stderr.contains("interrupted"), "{stderr}");
}

/// `status --watch` on a terminal: the screen is redrawn in place each round under a `watch`-like header;
/// Ctrl-C (here `timeout -s INT`) ends it with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_on_a_terminal_redraws_in_place() {
    let cluster = Cluster::healthy_staging().await;
    let args = ["status", "staging", "--watch", "--interval", "300ms", "--no-live"];
    let run = crate::support::on_a_terminal(&cluster, "timeout -s INT 3", &args, &[]).await;
    // timeout's own code when it had to stop the command.
    assert_eq!(run.code, 124, "{}", run.all());
    let screens = run.stdout.matches("\x1b[H\x1b[2J").count();
    assert!(screens >= 2, "{screens} screens: {}", run.stdout);
    assert!(
        run.stdout.contains("Every 300ms: kubectl duli db status staging"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("postgres"), "{}", run.stdout);
}

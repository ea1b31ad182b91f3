//! The fault matrix of `kubectl duli db status` (issue #9) against kube-standin's fault injection: 1 s of
//! latency per request, 429 with Retry-After, bursts of 500 and 503, dropped watches, and the API server
//! killed mid-run and restarted. Each run either finishes correctly (the same verdict as without the
//! fault) or stops with a clear message within its `--timeout` — the wall-time bounds below are
//! "no hang" bounds, not speed targets.

use std::time::{Duration, Instant};

use kube_standin::Fault;
use testkit::corpus::{store_state, writes};
use testkit::process::{Run, output};
use testkit::relay::Relay;

use crate::support::{Cluster, service};

/// `status ARGS` through the relay (when given), with its wall time.
async fn status(cluster: &Cluster, relay: Option<&Relay>, args: &[&str]) -> (Run, Duration) {
    let mut full = vec!["status", "staging"];
    full.extend_from_slice(args);
    let mut command = cluster.command(&full);
    if let Some(relay) = relay {
        let kubeconfig = cluster.dir.path().join("relay.kubeconfig");
        std::fs::write(&kubeconfig, kube_standin::kubeconfig_yaml(&relay.url())).unwrap();
        command.env("KUBECONFIG", kubeconfig);
    }
    let started = Instant::now();
    let run = output(command).await;
    (run, started.elapsed())
}

/// Every service ready and live (the verdict without faults).
fn assert_healthy(run: &Run, what: &str) {
    assert_eq!(run.code, 0, "{what}: {}", run.all());
    let doc = run.json();
    for name in ["postgres", "redis", "rabbitmq"] {
        let entry = service(&doc, "staging", name);
        assert_eq!(entry["healthy"], true, "{what}: {name}: {entry}");
    }
}

/// A no-hang check: bounds are the run's `--timeout` plus 3 s (process start and the runner's margin on a
/// loaded machine). They catch a run that ignores its deadline, not slowness.
#[track_caller]
fn assert_within(elapsed: Duration, bound: Duration, run: &Run) {
    assert!(
        elapsed < bound,
        "took {elapsed:?} (bound {bound:?}): {}",
        run.all()
    );
}

/// 1 s per request: the run still finishes with the right verdict (reads are concurrent, each live check
/// makes two or three requests); 3 s per request with `--timeout 2s` stops at the deadline and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_of_one_second_per_request() {
    let cluster = Cluster::healthy_staging().await;
    let before = store_state(&cluster.api);
    cluster.api.add_fault(Fault::latency(Duration::from_secs(1)));
    let (run, elapsed) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "1 s latency");
    // Reads (one round, concurrent) + live checks (concurrent): within two deadlines.
    assert_within(elapsed, Duration::from_secs(14), &run);
    assert!(
        elapsed >= Duration::from_secs(1),
        "the fault did not fire: {elapsed:?}"
    );

    cluster.api.clear_faults();
    cluster.api.add_fault(Fault::latency(Duration::from_secs(3)));
    let (run, elapsed) = status(&cluster, None, &["--timeout", "2s"]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("is unreachable (")
            && (run.stderr.contains("no answer within the 2s deadline")
                || run.stderr.contains(": timed out)")),
        "{}",
        run.all()
    );
    assert_within(elapsed, Duration::from_secs(5), &run);
    assert_eq!(writes(&cluster.api), Vec::<String>::new());
    assert_eq!(store_state(&cluster.api), before);
}

/// 429 with Retry-After: a few are waited out (kube's client honours Retry-After) and the verdict is
/// right; a server that never stops throttling is given up on at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_with_retry_after() {
    let cluster = Cluster::healthy_staging().await;
    cluster
        .api
        .add_fault(Fault::too_many_requests(1).on_method("GET").times(3));
    let (run, elapsed) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "three 429s");
    assert_within(elapsed, Duration::from_secs(14), &run);
    let throttled = cluster.api.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 3, "the fault fired three times");

    cluster
        .api
        .add_fault(Fault::too_many_requests(1).on_path("/apis/"));
    let (run, elapsed) = status(&cluster, None, &["--no-live", "--timeout", "3s"]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    // Given up by the deadline: on the last 429, or on an attempt the deadline cut short.
    assert!(
        run.stderr.contains("kept throttling the requests (429")
            || run.stderr.contains("no answer within the 3s deadline"),
        "{}",
        run.all()
    );
    assert_within(elapsed, Duration::from_secs(6), &run);
}

/// A burst of 500s is retried through (the API layer retries 5xx); 500s that do not stop fail the run by
/// the deadline with the server's reason; once they are over the next run is right. 503s too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_server_errors() {
    let cluster = Cluster::healthy_staging().await;
    cluster.api.add_fault(Fault::error(500).on_method("GET").times(3));
    let (run, _) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "a burst of three 500s");
    cluster.api.clear_faults();
    cluster.api.add_fault(Fault::error(500).on_method("GET"));
    let (run, elapsed) = status(&cluster, None, &["--timeout", "5s"]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("in namespace staging: the API server failed (500 InternalError")
            && run.stderr.contains("try again"),
        "{}",
        run.all()
    );
    assert_within(elapsed, Duration::from_secs(8), &run);
    cluster.api.clear_faults();
    let (run, _) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "after the 500 burst");

    // 500s while the live checks read their Secrets: those services are down, with the reason.
    cluster.api.add_fault(Fault::error(500).on_path("/secrets/"));
    let (run, elapsed) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let doc = run.json();
    for name in ["postgres", "redis", "rabbitmq"] {
        let live = &service(&doc, "staging", name)["live"];
        assert_eq!(live["ok"], false, "{name}: {live}");
        assert!(
            live["detail"].as_str().unwrap().contains("500 InternalError"),
            "{name}: {live}"
        );
    }
    assert_within(elapsed, Duration::from_secs(14), &run);
    cluster.api.clear_faults();

    cluster.api.add_fault(Fault::error(503).on_method("GET").times(4));
    let (run, elapsed) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "four 503s");
    assert_within(elapsed, Duration::from_secs(14), &run);
    assert_eq!(
        cluster.api.requests().iter().filter(|r| r.status == 503).count(),
        4
    );
}

/// `status` does not watch: dropped and expired watches cannot touch it (the request log proves it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_do_not_apply() {
    let cluster = Cluster::healthy_staging().await;
    cluster.api.add_fault(Fault::drop_watch_after(0));
    cluster.api.add_fault(Fault::expire_watch());
    let (run, _) = status(&cluster, None, &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "watch faults");
    assert!(
        cluster.api.requests().iter().all(|r| !r.query.contains("watch")),
        "status made a watch request"
    );
}

/// The API server dies mid-run: while the reads are in flight the run stops with a clear message; while
/// the port-forwards of the live checks are being opened every service is reported down with the reason;
/// after a restart on the same address the next run is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_killed_mid_run_and_restarted() {
    let cluster = Cluster::healthy_staging().await;
    let relay = Relay::start(cluster.api.addr()).await;

    // Killed during the reads.
    cluster
        .api
        .add_fault(Fault::latency(Duration::from_secs(2)).on_path("/namespaces/staging/"));
    let killer = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        relay.kill();
    };
    let ((run, elapsed), ()) = tokio::join!(status(&cluster, Some(&relay), &["--timeout", "5s"]), killer);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("is unreachable (") && run.stderr.contains(&relay.url()),
        "{}",
        run.all()
    );
    assert_within(elapsed, Duration::from_secs(8), &run);
    // While it is down: refused connections are retried (a restarting server comes back) until the next
    // pause would pass the deadline, so the run ends somewhere before the 5 s, never after.
    let (run, elapsed) = status(&cluster, Some(&relay), &["--timeout", "5s"]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("Connection refused"), "{}", run.all());
    assert_within(elapsed, Duration::from_secs(8), &run);

    // Killed while the live checks open their port-forwards.
    relay.restart().await;
    cluster.api.clear_faults();
    cluster
        .api
        .add_fault(Fault::latency(Duration::from_secs(2)).on_path("/portforward"));
    cluster.api.clear_requests();
    let killer = async {
        // The live checks read their Secrets right before opening the (slowed) port-forwards.
        while !cluster
            .api
            .requests()
            .iter()
            .any(|r| r.path.contains("/secrets/"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        relay.kill();
    };
    let ((run, elapsed), ()) = tokio::join!(
        status(&cluster, Some(&relay), &["-o", "json", "--timeout", "4s"]),
        killer
    );
    assert_eq!(run.code, 1, "{}", run.all());
    let doc = run.json();
    for name in ["postgres", "redis", "rabbitmq"] {
        let entry = service(&doc, "staging", name);
        assert_eq!(entry["ready"], true, "{name}: read before the kill: {entry}");
        assert_eq!(entry["live"]["ok"], false, "{name}: {entry}");
        assert!(!entry["live"]["detail"].as_str().unwrap().is_empty());
    }
    assert_within(elapsed, Duration::from_secs(10), &run);

    // Restarted: right again.
    relay.restart().await;
    cluster.api.clear_faults();
    let (run, _) = status(&cluster, Some(&relay), &["-o", "json", "--timeout", "6s"]).await;
    assert_healthy(&run, "after the restart");
    assert_eq!(writes(&cluster.api), Vec::<String>::new());
}

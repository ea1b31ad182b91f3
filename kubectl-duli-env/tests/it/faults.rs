//! The fault matrix of `kubectl duli env status` and `kubectl duli env up` (issue #9) against kube-standin's
//! fault injection: 1 s of latency per request, 429 with Retry-After, bursts of 500, dropped and expired
//! watches, and the API server killed mid-run and restarted on the same address.
//!
//! Everything goes through something that can die: the kubeconfig the plugin and the helm it runs use points
//! at a TCP relay in front of the stand-in; [`Server::kill`] cuts it, like the API server process dying, and
//! [`Server::restart`] brings it back on its port.
//!
//! Each run either finishes correctly (the same verdict as without the fault) or stops with a clear
//! one-line message; a failed `up` says which phase and object failed and a rerun with the faults cleared
//! converges. The wall-time bounds are "no hang" bounds, never speed targets.

use testkit::relay;

use std::path::PathBuf;
use std::time::Duration;

use kube_standin::Fault;
use relay::Relay;
use serde_json::Value;

use super::support::{Run, World, assert_contains, run_to_end};

const FAST: Duration = Duration::from_millis(200);

/// The API server as the plugin and helm see it: a relay that dies and comes back.
struct Server {
    world: World,
    api: Relay,
    kubeconfig: PathBuf,
}

impl Server {
    async fn start(ready_after: Duration) -> Server {
        let world = World::start(ready_after).await;
        let api = Relay::start(world.api.addr()).await;
        let kubeconfig = world.dir.path().join("relay.kubeconfig");
        std::fs::write(&kubeconfig, kube_standin::kubeconfig_yaml(&api.url())).unwrap();
        Server {
            world,
            api,
            kubeconfig,
        }
    }

    /// A world where `staging` is up (without the platform phase: no helm, a few seconds), and its verdict.
    async fn up_without_platform() -> (Server, Value) {
        let server = Server::start(FAST).await;
        server
            .run(&without_platform(&["up", "staging", "--timeout", "2m"]))
            .await
            .expect(0);
        let baseline = server
            .run(&["status", "staging", "-o", "json"])
            .await
            .expect(0)
            .json();
        assert_eq!(baseline["ready"], true, "{baseline}");
        (server, baseline)
    }

    fn kill(&self) {
        self.api.kill();
    }

    async fn restart(&self) {
        self.api.restart().await;
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = self.world.command(args);
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    /// Run to completion; more than 3 minutes is a hang and fails the test.
    async fn run(&self, args: &[&str]) -> Run {
        run_to_end(self.command(args)).await
    }

    /// `status staging --timeout TIMEOUT` that must give up: exit 2 within `bound` (no hang), stopping with
    /// one error line, which is returned.
    async fn status_gives_up(&self, timeout: &str, bound: Duration) -> String {
        let run = self
            .run(&["status", "staging", "--timeout", timeout])
            .await
            .expect(2);
        let error = one_line_error(&run);
        assert_within(&run, bound);
        error
    }

    fn add_fault(&self, fault: Fault) {
        self.world.api.add_fault(fault);
    }

    fn served(&self, status: u16) -> usize {
        self.world
            .api
            .requests()
            .iter()
            .filter(|r| r.status == status)
            .count()
    }
}

/// Each component's readiness, by name: what "the same verdict" compares.
fn verdict(report: &Value) -> Vec<(String, bool)> {
    report["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["component"].as_str().unwrap().to_string(), c["ready"] == true))
        .collect()
}

#[track_caller]
fn assert_within(run: &Run, bound: Duration) {
    assert!(
        run.elapsed < bound,
        "took {:?} (no-hang bound {bound:?})\n--- stdout\n{}\n--- stderr\n{}",
        run.elapsed,
        run.stdout,
        run.stderr
    );
}

/// The error the run stopped with: the last `error:` line of stderr, which must be the only one and say
/// everything on that one line (no Go-style error stack on the lines below).
#[track_caller]
fn one_line_error(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.starts_with("log: ") && !l.trim().is_empty())
        .collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", run.stderr);
    assert_eq!(
        lines.last(),
        errors.first().copied(),
        "the error is the last line, nothing after it:\n{}",
        run.stderr
    );
    errors[0].to_string()
}

// ---------------------------------------------------------------------------------------------------
// status: read-only, about 60 requests (discovery, the Applications, one list per kind and namespace).

const STATUS: [&str; 4] = ["status", "staging", "-o", "json"];

/// Same verdict as without the fault.
#[track_caller]
fn assert_same_verdict(run: &Run, baseline: &Value, what: &str) {
    assert_eq!(run.code, 0, "{what}: {}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(verdict(&report), verdict(baseline), "{what}");
    assert!(
        !run.stderr.contains("ERROR"),
        "{what}: nothing on stderr about the faults that were survived:\n{}",
        run.stderr
    );
}

/// 1 s per request: every request, so the run is slow (well over 1 s) but right. 3 s per request against
/// `--timeout 2s` stops at the deadline, in one sentence (the start-up probe or the reads, whichever was
/// waiting: both say "no answer within the 2s deadline").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_latency_of_one_second_per_request() {
    let (server, baseline) = Server::up_without_platform().await;
    server.add_fault(Fault::latency(Duration::from_secs(1)));
    let mut args = STATUS.to_vec();
    args.extend(["--timeout", "2m"]);
    let run = server.run(&args).await;
    assert_same_verdict(&run, &baseline, "1 s latency");
    assert!(
        run.elapsed >= Duration::from_secs(3),
        "the fault fired: {:?}",
        run.elapsed
    );
    assert_within(&run, Duration::from_secs(120));

    server.world.api.clear_faults();
    for path in ["/", "/apis/"] {
        server.world.api.clear_faults();
        server.add_fault(Fault::latency(Duration::from_secs(3)).on_path(path));
        let error = server.status_gives_up("2s", Duration::from_secs(10)).await;
        assert!(
            error.contains("is unreachable") && error.contains("no answer within the 2s deadline"),
            "{path}: {error}"
        );
    }
}

/// 429 with `Retry-After: 1`: a few are waited out and the verdict is right; a server that throttles one
/// resource for ever is given up on at `--timeout` (it used to be retried for minutes: status had no
/// timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_429_with_retry_after() {
    let (server, baseline) = Server::up_without_platform().await;
    server.add_fault(Fault::too_many_requests(1).on_method("GET").times(3));
    let run = server.run(&STATUS).await;
    assert_same_verdict(&run, &baseline, "three 429s");
    assert_eq!(server.served(429), 3, "the fault fired three times");
    assert!(run.elapsed >= Duration::from_secs(1), "Retry-After was honoured");

    server.add_fault(Fault::too_many_requests(1).on_path("/applications"));
    let error = server.status_gives_up("5s", Duration::from_secs(15)).await;
    // kube's client waits out the 429s inside one attempt, so the give-up names the deadline.
    assert!(
        error.contains("no answer within the 5s deadline") && error.contains("applications"),
        "{error}"
    );
}

/// Bursts of 500: retried through, same verdict, and nothing printed about them. A resource that keeps
/// failing ends the run with one line naming the call and the server's reason (kube's own per-request
/// ERROR lines stay in the log file).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_500_bursts() {
    let (server, baseline) = Server::up_without_platform().await;
    server.add_fault(Fault::error(500).on_method("GET").times(4));
    server.add_fault(Fault::error(500).on_path("/namespaces/staging/").times(3));
    let run = server.run(&STATUS).await;
    assert_same_verdict(&run, &baseline, "a burst of seven 500s");
    assert_eq!(server.served(500), 7, "the faults fired");

    server.add_fault(Fault::error(500).on_path("/applications"));
    let error = server.status_gives_up("2m", Duration::from_secs(90)).await;
    assert!(
        error.contains("cannot list applications.argoproj.io in namespace argocd")
            && error.contains("500 InternalError"),
        "{error}"
    );
}

/// `status` does not watch: dropped and expired watches cannot touch it (the request log proves it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_dropped_watches_do_not_apply() {
    let (server, baseline) = Server::up_without_platform().await;
    server.add_fault(Fault::drop_watch_after(0));
    server.add_fault(Fault::expire_watch());
    server.world.api.clear_requests();
    let run = server.run(&STATUS).await;
    assert_same_verdict(&run, &baseline, "watch faults");
    let requests = server.world.api.requests();
    assert!(requests.len() > 20, "{}", requests.len());
    assert!(
        requests.iter().all(|r| !r.query.contains("watch")),
        "status made a watch request"
    );
}

/// The API server dies while status reads (each namespaced list slowed to keep it reading): back within
/// a few seconds, the retries carry the run to the same verdict; gone for good, the run stops at
/// `--timeout` in one sentence; once it is back, right again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_api_server_killed_mid_run_and_restarted() {
    let (server, baseline) = Server::up_without_platform().await;
    server.add_fault(Fault::latency(Duration::from_millis(300)).on_path("/namespaces/"));

    // Killed after the Applications were read, back 2 s later.
    server.world.api.clear_requests();
    let outage = async {
        wait_for_request(&server, "/applications").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.restart().await;
    };
    let mut args = STATUS.to_vec();
    args.extend(["--timeout", "1m"]);
    let (run, ()) = tokio::join!(server.run(&args), outage);
    assert_same_verdict(&run, &baseline, "killed and back after 2 s");

    // Killed for good.
    server.world.api.clear_requests();
    let outage = async {
        wait_for_request(&server, "/applications").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.kill();
    };
    let (run, ()) = tokio::join!(server.run(&["status", "staging", "--timeout", "5s"]), outage);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let error = one_line_error(&run);
    assert!(
        error.contains("is unreachable") && error.contains("Connection refused"),
        "{error}"
    );
    assert_within(&run, Duration::from_secs(10));

    server.restart().await;
    server.world.api.clear_faults();
    let run = server.run(&STATUS).await;
    assert_same_verdict(&run, &baseline, "after the restart");
}

/// Until the stand-in has served a request whose path contains `fragment`.
async fn wait_for_request(server: &Server, fragment: &str) {
    let seen = tokio::time::timeout(Duration::from_secs(60), async {
        while !server
            .world
            .api
            .requests()
            .iter()
            .any(|r| r.path.contains(fragment))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "no request for {fragment} within a minute");
}

// ---------------------------------------------------------------------------------------------------
// up

/// `up staging` with a JSON summary and a 2-minute deadline, the base of most runs below.
const UP_JSON: [&str; 6] = ["up", "staging", "-o", "json", "--timeout", "2m"];

/// ARGS with `--only PHASE` for each of `phases`.
fn only<'a>(args: &[&'a str], phases: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    for phase in phases {
        all.extend(["--only", phase]);
    }
    all
}

/// `up` ARGS for the phases that need no helm: namespaces, secrets, gitops, wait.
fn without_platform<'a>(args: &[&'a str]) -> Vec<&'a str> {
    only(args, &["namespaces", "secrets", "gitops", "wait"])
}

/// The phases a summary reports, in order.
fn phases(summary: &Value) -> Vec<String> {
    summary["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect()
}

/// 1 s on every write (server-side apply: the plugin's namespaces, SealedSecrets, AppProjects and
/// Applications, and helm's objects in the platform phase): a whole `up` with 1 s on *every* request
/// would take minutes (hundreds of discovery, list and watch requests from the plugin and helm), so the
/// latency is limited to the writes, which are the requests that leave the cluster half-changed when
/// something goes wrong. `status` above takes 1 s on every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_latency_of_one_second_per_write() {
    let server = Server::start(FAST).await;
    server.add_fault(Fault::latency(Duration::from_secs(1)).on_method("PATCH"));
    let run = server
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    let summary = run.json();
    assert_eq!(summary["ready"], true, "{}", run.stderr);
    assert_eq!(
        phases(&summary),
        ["preflight", "platform", "namespaces", "secrets", "gitops", "wait"]
    );
    let patches = server
        .world
        .api
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert!(patches > 20, "the fault fired on {patches} writes");
    assert!(run.elapsed >= Duration::from_secs(7), "{:?}", run.elapsed);
    assert_within(&run, Duration::from_secs(170));
}

/// Watches cut after every single event, for the whole run, plus expired (410) watches: the wait phase
/// re-watches (and relists after a 410) and still sees every component become ready. The platform phase is
/// left out: it does not watch (helm does, and is not under test here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_watches_dropped_after_every_event() {
    let server = Server::start(FAST).await;
    server.add_fault(Fault::drop_watch_after(1));
    server.add_fault(Fault::expire_watch().times(5));
    let run = server.run(&without_platform(&UP_JSON)).await.expect(0);
    assert_eq!(run.json()["ready"], true, "{}", run.stderr);
    let watches = server
        .world
        .api
        .requests()
        .iter()
        .filter(|r| r.query.contains("watch=true") || r.query.contains("watch=1"))
        .count();
    // The first five watches were expired (410): more than five means the wait re-listed and watched
    // again. (How many more depends on how fast the Applications turn ready, so no more is asserted.)
    assert!(
        watches > 5,
        "the wait watched again after the expired watches: {watches}"
    );
}

/// 429 with Retry-After on helm's and the plugin's reads is waited out; a burst of 500s on helm's release
/// record (helm does not retry a 500) fails the platform phase: exit 2, one line naming the helm command,
/// and nothing after the platform phase applied (the environment's namespace does not exist) — the
/// progress lines say which phases finished. A rerun with the faults gone converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_throttled_then_failed_by_500s_in_the_platform_phase_then_rerun_converges() {
    let server = Server::start(FAST).await;
    server.add_fault(Fault::too_many_requests(1).on_method("GET").times(4));
    server.add_fault(
        Fault::error(500)
            .on_method("POST")
            .on_path("/namespaces/cert-manager/secrets")
            .times(50),
    );
    let run = server.run(&["up", "staging", "--timeout", "1m"]).await.expect(2);
    let error = one_line_error(&run);
    assert!(error.contains("`helm upgrade --install cert-manager"), "{error}");
    assert!(
        error.contains("500") || error.contains("an error on the server"),
        "{error}"
    );
    assert_contains(&run.stderr, "✓ preflight");
    assert!(!run.stderr.contains("✓ platform"), "{}", run.stderr);
    assert!(
        server.world.get("namespaces", "", "staging").is_none(),
        "nothing after the failed phase was applied"
    );
    assert!(server.served(429) >= 4, "the 429s were served");
    assert!(server.served(500) >= 1, "the 500s were served");
    assert_within(&run, Duration::from_secs(120));

    server.world.api.clear_faults();
    let rerun = server
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    assert_eq!(rerun.json()["ready"], true, "{}", rerun.stderr);
}

/// The API server (and with it helm's way in) dies while helm waits for a platform chart and does not come
/// back: `up` stops with one line within `--timeout`, naming the helm command and helm's reason. It comes back: a rerun
/// converges (the release helm left pending is recovered). It dies again in the middle of the gitops and
/// wait phases and comes back 3 s later: the retries and re-watches carry that run to ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_api_server_killed_mid_run_and_restarted() {
    // Slow readiness keeps helm waiting on the fixture Deployment, with its release pending-install.
    let server = Server::start(Duration::from_secs(3)).await;
    let outage = async {
        server.world.wait_for_pending_install().await;
        server.kill();
    };
    let (run, ()) = tokio::join!(server.run(&["up", "staging", "--timeout", "20s"]), outage);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let error = one_line_error(&run);
    // The charts install concurrently: whichever helm failed first is the one named, with helm's reason
    // (a refused or reset connection, or — when helm was waiting — its wait's "context deadline exceeded").
    assert!(error.contains("`helm upgrade --install "), "{error}");
    assert!(error.contains("failed: "), "{error}");
    // helm's reason alone may be a timeout: the plugin asks the server once more and says it is gone.
    assert!(
        error.contains("the API server is not answering now") && error.contains("run the same command again"),
        "{error}"
    );
    assert_contains(&run.stderr, "✓ preflight");
    assert!(server.world.get("namespaces", "", "staging").is_none());
    assert_within(&run, Duration::from_secs(60));

    server.restart().await;
    let rerun = server
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    assert_eq!(rerun.json()["ready"], true, "{}", rerun.stderr);
    assert_contains(&rerun.stderr, "recovering argocd");

    // Dies during the waves of an `up` that has Applications to change, back 3 s later.
    server.world.api.clear_requests();
    server.add_fault(Fault::latency(Duration::from_millis(300)).on_path("/applications"));
    let outage = async {
        wait_for_request(&server, "/namespaces/argocd/applications/").await;
        server.kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        server.restart().await;
    };
    let args = only(&UP_JSON, &["gitops", "wait"]);
    let (run, ()) = tokio::join!(server.run(&args), outage);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["ready"], true, "{}", run.stderr);
    assert_within(&run, Duration::from_secs(120));
}

/// The API server dies 2.5 s into `up --timeout 10s` (gitops and wait, components slow to become ready) and
/// does not come back (issue #17: it used to end after ~40 s with exit 1, "✓ wait", and no word about the
/// cluster): the run ends within the timeout (+ the runner's margin and grace), exit 2, one line saying
/// the API server is unreachable, no ✓ for the phase it was in, and no library ERROR lines on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_api_server_lost_for_good_is_reported_as_unreachable() {
    let server = Server::start(Duration::from_secs(30)).await;
    let outage = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        server.kill();
    };
    let args = without_platform(&["up", "staging", "--timeout", "10s"]);
    let (run, ()) = tokio::join!(server.run(&args), outage);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let error = one_line_error(&run);
    assert!(error.contains("is unreachable"), "{error}");
    assert!(!run.stderr.contains("✓ wait"), "{}", run.stderr);
    assert!(!run.stderr.contains("✓ gitops"), "{}", run.stderr);
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    assert_within(&run, Duration::from_secs(15));

    // Back: a rerun converges.
    server.restart().await;
    let rerun = server
        .run(&only(&UP_JSON, &["namespaces", "secrets", "gitops"]))
        .await
        .expect(0);
    assert_eq!(phases(&rerun.json()), ["namespaces", "secrets", "gitops"]);
}

/// The API server restarts during the wait phase (down 3 s): stderr gets one progress line saying what it
/// waits for, never a library's ERROR line (issue #17); the retries go to the log file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_api_server_restart_prints_one_progress_line_and_no_library_errors() {
    let server = Server::start(Duration::from_secs(6)).await;
    let outage = async {
        // A wait has begun: an Application is being watched.
        while !server
            .world
            .api
            .requests()
            .iter()
            .any(|r| r.query.contains("watch"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill();
        tokio::time::sleep(Duration::from_secs(3)).await;
        server.restart().await;
    };
    let args = without_platform(&UP_JSON);
    let (run, ()) = tokio::join!(server.run(&args), outage);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("ERROR"), "{}", run.stderr);
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
    let lines = run
        .stderr
        .lines()
        .filter(|l| l.contains("the API server is not answering"))
        .count();
    assert_eq!(lines, 1, "{}", run.stderr);
}

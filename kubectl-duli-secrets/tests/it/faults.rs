//! The fault matrix of `kubectl duli secrets seal` and `fetch-cert` (issue #9): the certificate comes
//! through the API server's service proxy (kube-standin) from a small controller, while kube-standin
//! injects 1 s of latency per request, 429 with Retry-After, bursts of 500 and 503, dropped watches, or
//! the API server dies mid-run (a TCP relay in front of it is killed) and comes back. Each run either
//! finishes correctly (a certificate that opens with the controller's key; the cache used, with a warning,
//! when the cluster fails and one exists) or stops with a clear message within its `--timeout` (default
//! 30 s) — wall-time bounds are "no hang" bounds.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::relay::Relay;
use crate::support::*;
use kube_standin::{Fault, StandIn};
use kubectl_duli_secrets::format::{Scope, open_base64};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: fault-PLAINTEXT-5Ty}\n";
const PROXY: &str = "/services/http:sealed-secrets-controller:http/proxy/";

struct Env {
    api: StandIn,
    relay: Relay,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn setup() -> Env {
    let service = certificate_serving_service().await;
    let api = StandIn::builder().seed_yaml(&service).start().await.unwrap();
    let relay = Relay::start(api.addr()).await;
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube_standin::kubeconfig_yaml(&relay.url())).unwrap();
    Env {
        api,
        relay,
        home,
        kubeconfig,
    }
}

async fn run(env: &Env, args: &[&str], stdin: &str) -> (Output, Duration) {
    let mut command = plugin(env.home.path());
    command.env("KUBECONFIG", &env.kubeconfig).args(args);
    let stdin = stdin.as_bytes().to_vec();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || run_with_stdin(command, &stdin))
        .await
        .unwrap();
    (output, started.elapsed())
}

fn cache(env: &Env) -> PathBuf {
    env.home.path().join("cache/duli/sealed-secrets/standin.pem")
}

/// The sealed document opens with the controller's private key.
#[track_caller]
fn assert_sealed(output: &Output) {
    assert_code(output, 0);
    let key = rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&keys().key).unwrap()).unwrap();
    let doc: Value = serde_saphyr::from_str(&stdout(output)).unwrap();
    let value = doc["spec"]["encryptedData"]["password"].as_str().unwrap();
    let plain = open_base64(&key, &Scope::Strict.label("staging", "db"), value).unwrap();
    assert_eq!(plain, b"fault-PLAINTEXT-5Ty");
}

/// The run stopped (exit 2) with a message holding every one of `needles`.
#[track_caller]
fn assert_stops_with(output: &Output, needles: &[&str]) {
    assert_code(output, 2);
    let err = stderr(output);
    assert!(needles.iter().all(|needle| err.contains(needle)), "{err}");
}

/// Sealed with the cached certificate, and the run said so.
#[track_caller]
fn assert_sealed_from_cache(output: &Output) {
    assert_sealed(output);
    assert!(
        stderr(output).contains("using the certificate cached for context `standin`"),
        "{}",
        stderr(output)
    );
}

#[track_caller]
fn assert_within(elapsed: Duration, bound: Duration, output: &Output) {
    assert!(
        elapsed < bound,
        "took {elapsed:?} (bound {bound:?}): {}",
        stderr(output)
    );
}

fn proxied(api: &StandIn, status: u16) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.path.contains(PROXY) && r.status == status)
        .count()
}

/// 1 s per request: fetch-cert and seal finish correctly (two requests each: the Service, the proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_of_one_second_per_request() {
    let env = setup().await;
    env.api.add_fault(Fault::latency(Duration::from_secs(1)));
    let (output, elapsed) = run(&env, &["seal"], SECRET).await;
    assert_sealed(&output);
    assert!(
        elapsed >= Duration::from_secs(2),
        "the fault did not fire: {elapsed:?}"
    );
    assert_within(elapsed, Duration::from_secs(10), &output);
    let (output, elapsed) = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 0);
    assert_eq!(stdout(&output), std::fs::read_to_string(&keys().cert).unwrap());
    assert_within(elapsed, Duration::from_secs(10), &output);
}

/// 429 with Retry-After is waited out; a controller proxy that never stops throttling is given up on at
/// `--timeout` with a message naming the throttling (before the deadline existed, kube's retries with
/// growing pauses kept fetch-cert waiting for many minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_with_retry_after() {
    let env = setup().await;
    env.api
        .add_fault(Fault::too_many_requests(1).on_path(PROXY).times(2));
    let (output, elapsed) = run(&env, &["seal"], SECRET).await;
    assert_sealed(&output);
    assert_eq!(proxied(&env.api, 429), 2);
    assert_within(elapsed, Duration::from_secs(10), &output);

    std::fs::remove_file(cache(&env)).unwrap();
    env.api.add_fault(Fault::too_many_requests(1).on_path(PROXY));
    let (output, elapsed) = run(&env, &["fetch-cert", "--timeout", "3s"], "").await;
    // The API layer ends the exchange by --timeout and names the server and the call.
    assert_stops_with(
        &output,
        &[
            "cannot fetch certificate: the API server at",
            "/proxy/v1/cert.pem",
            "no cached certificate for context `standin` either",
        ],
    );
    assert_within(elapsed, Duration::from_secs(6), &output);
    assert!(!cache(&env).exists());
}

/// 500s that do not stop: without a cached certificate the run stops with the server's reason; with one,
/// the cache is used with a warning. A short burst of 500s or 503s is retried through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_server_errors() {
    let env = setup().await;
    env.api.add_fault(Fault::error(500).on_path(PROXY).times(1));
    let (output, _) = run(&env, &["seal"], SECRET).await;
    assert_sealed(&output);
    std::fs::remove_file(cache(&env)).unwrap();
    env.api.add_fault(Fault::error(500).on_path(PROXY));
    let (output, elapsed) = run(&env, &["seal"], SECRET).await;
    assert_stops_with(
        &output,
        &[
            "cannot fetch certificate: cannot GET",
            "the API server failed (500",
            "no cached certificate for context `standin` either — pass --cert FILE|URL",
        ],
    );
    assert!(stdout(&output).is_empty());
    assert_within(elapsed, Duration::from_secs(10), &output);
    assert!(!cache(&env).exists());

    env.api.clear_faults();
    let (output, _) = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 0);
    assert!(cache(&env).exists());
    env.api.add_fault(Fault::error(500).on_path(PROXY).times(20));
    let (output, elapsed) = run(&env, &["seal"], SECRET).await;
    assert_sealed_from_cache(&output);
    assert_within(elapsed, Duration::from_secs(10), &output);

    env.api.clear_faults();
    env.api.add_fault(Fault::error(503).on_path(PROXY).times(3));
    let (output, elapsed) = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 0);
    assert!(!stderr(&output).contains("cached"), "{}", stderr(&output));
    assert_eq!(proxied(&env.api, 503), 3);
    assert_within(elapsed, Duration::from_secs(10), &output);
}

/// seal and fetch-cert do not watch: watch faults cannot touch them (the request log proves it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_do_not_apply() {
    let env = setup().await;
    env.api.add_fault(Fault::drop_watch_after(0));
    env.api.add_fault(Fault::expire_watch());
    let (output, _) = run(&env, &["seal"], SECRET).await;
    assert_sealed(&output);
    assert!(env.api.requests().iter().all(|r| !r.query.contains("watch")));
}

/// The API server dies while the certificate is being fetched: without a cache the run stops with a
/// clear message; with one, the cache is used; after a restart on the same address fetching works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_killed_mid_run_and_restarted() {
    let env = setup().await;
    env.api
        .add_fault(Fault::latency(Duration::from_secs(2)).on_path(PROXY));
    let relay = &env.relay;
    let kill_after = |delay: u64| async move {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        relay.kill();
    };
    let ((output, elapsed), ()) = tokio::join!(run(&env, &["seal"], SECRET), kill_after(700));
    assert_stops_with(
        &output,
        &[
            "cannot fetch certificate: the API server at",
            "is unreachable",
            "no cached certificate for context `standin` either",
        ],
    );
    assert_within(elapsed, Duration::from_secs(10), &output);
    assert!(!cache(&env).exists());

    env.relay.restart().await;
    let (output, _) = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 0);
    assert!(cache(&env).exists());

    // Killed again mid-fetch, now with a cached certificate: seal goes on with it.
    let ((output, elapsed), ()) = tokio::join!(run(&env, &["seal"], SECRET), kill_after(700));
    assert_sealed_from_cache(&output);
    assert_within(elapsed, Duration::from_secs(10), &output);
    // Down: refused at once, the cache again.
    let (output, elapsed) = run(&env, &["seal"], SECRET).await;
    assert_sealed(&output);
    assert_within(elapsed, Duration::from_secs(5), &output);

    env.relay.restart().await;
    env.api.clear_faults();
    let (output, _) = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 0);
    assert!(!stderr(&output).contains("cached"), "{}", stderr(&output));
    assert!(env.api.requests().iter().all(|r| r.method == "GET"));
}

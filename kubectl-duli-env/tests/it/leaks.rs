//! The secret-leak audit of `kubectl duli env` (issue #9). `up`, `plan` and `status` run at `-vv` with the
//! DigitalOcean API token in `DIGITALOCEAN_ACCESS_TOKEN` (the source `up` uses when no sealed token is in
//! `helm/secrets/sealed/shared/`) and a kubeconfig whose user holds a bearer token, under the scanner shared
//! with the db and secrets audits (`leakscan`): the plugin's process tree (argv and environment of kubectl,
//! the plugin and every helm it runs), every version of every file under HOME, TMPDIR and the state
//! directory (the log file of `up`), stdout and stderr. Neither token may appear anywhere but in the
//! plugin's own environment (where the user put it) and, for the DigitalOcean token, in the one place it
//! belongs: the Secret `kube-system/digitalocean-csi-secret` in the cluster. helm, a child that does not
//! need the token (the CSI chart reads the Secret), must not inherit it; chart values reach helm on stdin,
//! never as a file or an argument. The log files are 0600.
//!
//! Then the same with the sealed token present (`prod`): the SealedSecret is applied, and the token in the
//! environment goes nowhere at all.

use testkit::leakscan;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use leakscan::{Allowed, Observed, Scan, assert_no_leak};

use super::support::{Run, World};

const DO_TOKEN: &str = "dop_v1_leakaudit-PLAINTEXT-5d1c0ffee";
const KUBE_TOKEN: &str = "kube-bearer-PLAINTEXT-8Hn";
const TOKEN_VAR: &str = "DIGITALOCEAN_ACCESS_TOKEN";

/// Run `kubectl duli env ARGS -vv` with the token in the environment, under the scanner.
async fn audited(world: &World, kubeconfig: &PathBuf, args: &[&str]) -> (Run, Observed) {
    let home = world.dir.path().join("home");
    let state = world.dir.path().join("state");
    let tmp = world.dir.path().join("audit-tmp");
    for dir in [&home, &state, &tmp] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut full = args.to_vec();
    full.push("-vv");
    let mut command = world.command(&full);
    command
        .env("TMPDIR", &tmp)
        .env("KUBECONFIG", kubeconfig)
        .env(TOKEN_VAR, DO_TOKEN)
        .current_dir(&tmp);
    let started = Instant::now();
    let child = command.spawn().unwrap();
    let scan = Scan::start(child.id().unwrap(), &[home, state, tmp]);
    let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("finishes within 3 minutes")
        .unwrap();
    let seen = scan.finish();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    (run, seen)
}

/// The plugin (before and after kubectl execs it) is the intended client of both tokens.
fn allowed() -> Allowed {
    let entry = format!("{TOKEN_VAR}={DO_TOKEN}");
    Allowed {
        client_env: vec![
            ("kubectl".into(), entry.clone()),
            ("kubectl-duli-env".into(), entry),
        ],
        ..Allowed::default()
    }
}

/// Check one audited run: no leak, helm was seen (for runs that use it), log files are private.
fn check(what: &str, run: &Run, seen: &Observed, helm_expected: bool) {
    assert_no_leak(
        what,
        &run.stdout,
        &run.stderr,
        seen,
        &[DO_TOKEN, KUBE_TOKEN],
        &allowed(),
    );
    let programs = seen.programs();
    eprintln!(
        "[{what}] exit {}, {} polls, processes {programs:?}",
        run.code, seen.polls
    );
    assert!(
        programs.contains(&"kubectl-duli-env"),
        "{what}: the plugin was seen: {programs:?}"
    );
    if helm_expected {
        assert!(programs.contains(&"helm"), "{what}: helm was seen: {programs:?}");
    }
    for (path, versions) in &seen.files {
        if path.extension().is_some_and(|e| e == "log") {
            for version in versions {
                assert_eq!(
                    version.mode & 0o777,
                    0o600,
                    "{what}: log file {path:?} is not private"
                );
            }
        }
    }
}

/// A kubeconfig for the world's stand-in whose user holds a bearer token.
fn kubeconfig_with_token(world: &World) -> PathBuf {
    let text = std::fs::read_to_string(&world.kubeconfig).unwrap();
    assert!(text.contains("user: {}"), "{text}");
    let text = text.replace("user: {}", &format!("user: {{token: {KUBE_TOKEN}}}"));
    let path = world.dir.path().join("token.kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_plan_and_status_leak_no_token() {
    let world = World::start(Duration::from_millis(200)).await;
    let kubeconfig = kubeconfig_with_token(&world);
    // No sealed token in the repository: `up` takes it from the environment variable.
    let sealed_token = world
        .repo
        .join("helm/secrets/sealed/shared/digitalocean-csi-secret.yml");
    let sealed_text = std::fs::read_to_string(&sealed_token).unwrap();
    std::fs::remove_file(&sealed_token).unwrap();

    let (up, seen) = audited(&world, &kubeconfig, &["up", "staging", "--timeout", "2m"]).await;
    assert_eq!(up.code, 0, "{}\n{}", up.stdout, up.stderr);
    check("up staging (token from the environment)", &up, &seen, true);
    let logs: Vec<&PathBuf> = seen
        .files
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(!logs.is_empty(), "up wrote its log file");
    let log = std::fs::read_to_string(logs[0]).unwrap();
    assert!(log.contains("running helm"), "the log has -vv detail:\n{log}");
    // Where the token belongs: the provider Secret, and nowhere else in the cluster.
    let secret = world
        .get("secrets", "kube-system", "digitalocean-csi-secret")
        .expect("up created the token Secret");
    let data = secret["data"]["access-token"].as_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
    assert_eq!(decoded, DO_TOKEN.as_bytes());
    for (key, object) in world.api.store().lock().all_objects() {
        let text = object.to_string();
        if key.plural == "secrets" && key.name == "digitalocean-csi-secret" {
            continue;
        }
        assert!(
            !text.contains(DO_TOKEN) && !text.contains(data),
            "{}/{}/{} holds the token",
            key.plural,
            key.namespace,
            key.name
        );
    }

    let (again, seen) = audited(&world, &kubeconfig, &["up", "staging", "--timeout", "2m"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    check("second up staging", &again, &seen, true);
    let (plan, seen) = audited(&world, &kubeconfig, &["plan", "staging"]).await;
    assert!(plan.code == 0 || plan.code == 1, "{}", plan.stderr);
    check("plan staging", &plan, &seen, true);
    let (status, seen) = audited(&world, &kubeconfig, &["status", "staging", "-o", "json"]).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    check("status staging", &status, &seen, false);

    // The sealed token present: it is what `up` applies; the token in the environment goes nowhere.
    std::fs::write(&sealed_token, sealed_text).unwrap();
    world
        .api
        .store()
        .delete("secrets", "kube-system", "digitalocean-csi-secret")
        .unwrap();
    let (prod, seen) = audited(&world, &kubeconfig, &["up", "prod", "--timeout", "2m"]).await;
    assert_eq!(prod.code, 0, "{}\n{}", prod.stdout, prod.stderr);
    check("up prod (sealed token present)", &prod, &seen, true);
    assert!(
        world
            .get("sealedsecrets", "kube-system", "digitalocean-csi-secret")
            .is_some(),
        "the sealed token was applied"
    );
    let live = world.get("secrets", "kube-system", "digitalocean-csi-secret");
    assert!(
        live.is_none_or(|s| !s.to_string().contains(data)),
        "the environment's token was not used"
    );
    // Every log file written in the audit is private.
    let logs = world.dir.path().join("state/logs");
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", entry.path());
    }
}

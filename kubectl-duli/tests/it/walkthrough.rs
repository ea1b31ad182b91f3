//! The whole platform end to end (issue #15's story): `walkthrough.sh`, the README's walkthrough, run as
//! a user runs it — `kube-standin serve` with its Argo CD syncing a repository copy, the real upstream
//! charts from a local mirror, pods bridged to real PostgreSQL (primary + standbys), Redis (master,
//! replicas, Sentinel) and RabbitMQ; `secrets init`, `env up` (every phase, twice), `db status`,
//! `db connect`, a repository broken on purpose and fixed, `env down`. The script checks each step's
//! outcome and exits non-zero at the first that differs.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{binary, path_with};

/// Longer is a hang: the run takes about a minute and a half on two cores.
const DEADLINE: Duration = Duration::from_secs(600);

/// `kube-standin`, built next to the binary under test (the workspace build makes it).
fn kube_standin() -> PathBuf {
    let path = binary().with_file_name("kube-standin");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p kube-standin` (the workspace test run builds it)",
        path.display()
    );
    path
}

#[test]
fn the_whole_platform_walkthrough_runs_as_the_readme_tells_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, target) in [
        ("kubectl-duli", binary()),
        ("kube-standin", kube_standin()),
        ("helm", testkit::tools::helm4()),
    ] {
        std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
    }
    let script = testkit::paths::workspace().join("kubectl-duli/walkthrough.sh");
    let work = dir.path().join("work");
    let log = dir.path().join("walkthrough.log");
    let out = std::fs::File::create(&log).unwrap();
    // A process group of its own: on a hang the whole tree (kube-standin, servers) is stopped.
    let mut child = Command::new("bash")
        .arg(&script)
        .arg(&work)
        .env("PATH", path_with(&bin))
        .env("HOME", dir.path().join("home"))
        .env_remove("KUBECONFIG")
        .env_remove("DULI_REPO")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            testkit::process::signal_group("KILL", child.id() as i32);
            let _ = child.wait();
            panic!(
                "the walkthrough did not finish within {DEADLINE:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the walkthrough failed ({status}):\n{text}");
    // The script checks each step; these lines say the story was told to the end.
    for needle in [
        "staging (staging): up",
        "Environment staging (namespace staging): all healthy",
        "app path does not exist",
        "failed to parse values-staging.yml",
        "walkthrough: ok",
    ] {
        assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
    }
    // Everything it started kept its files in its work directory (a Redis replica once left dump.rdb here).
    let stray = testkit::paths::workspace().join("kubectl-duli/dump.rdb");
    assert!(!stray.exists(), "the walkthrough wrote {}", stray.display());
    // The figures for the issue note.
    println!("{}", text.lines().last().unwrap_or(""));
}

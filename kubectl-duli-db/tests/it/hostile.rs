//! Issue #17's hostile cases for `kubectl duli db` (the ones no corpus had): a SIGTERM while psql runs, an
//! exec credential plugin that hangs, a closed stdout. Each failed on the code before the shared runner
//! (the Secret-value leak is in `leaks`, under the scanner; malformed status fields and escape sequences
//! are unit tests of `status`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::process::{Run, output_within, signal};

use crate::corpus::sandbox;
use crate::support::Cluster;
use testkit::paths::workspace;

const PGPASS_PREFIX: &str = "duli-pgpass-";

fn pgpass_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(PGPASS_PREFIX))
        .collect()
}

/// SIGTERM while psql runs a query: psql is stopped, the 0600 password file is removed, exit 143 with a
/// line saying what was interrupted and what to re-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_connect_removes_the_password_file() {
    let cluster = Cluster::healthy_staging().await;
    let work = sandbox(&cluster);
    let tmp = work.join("tmp");
    let mut command = cluster.command(&["connect", "staging", "postgres", "--", "-c", "select pg_sleep(6)"]);
    command
        .current_dir(&work)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    while pgpass_files(&tmp).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no password file appeared in {}",
            tmp.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // psql is running its query now (the file is written right before it starts).
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal("TERM", pid);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the plugin ends soon after SIGTERM")
        .unwrap();
    let run = Run::from_output(&output, started.elapsed());
    assert_eq!(run.code, 143, "{}", run.all());
    assert!(
        run.stderr
            .contains("interrupted (SIGTERM): `kubectl duli db connect` stopped before it finished")
            && run.stderr.contains("run the same command again"),
        "{}",
        run.all()
    );
    assert_eq!(pgpass_files(&tmp), Vec::<String>::new(), "{}", run.all());
    assert!(
        run.elapsed < Duration::from_secs(6),
        "pg_sleep(6) was not waited for: {:?}",
        run.elapsed
    );
}

/// A kubeconfig whose exec credential plugin never returns: `--timeout` still ends the command (the
/// runner's watchdog, a little after the deadline), with one sentence and exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_exec_credential_plugin_is_bounded_by_the_timeout() {
    let cluster = Cluster::healthy_staging().await;
    let dir = cluster.dir.path();
    let plugin = dir.join("hanging-credential-plugin");
    std::fs::write(&plugin, "#!/bin/sh\nexec sleep 30 >/dev/null 2>&1\n").unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kubeconfig = dir.join("exec-kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{}'}}}}]\nusers: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1beta1, command: '{}', interactiveMode: Never}}}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u, namespace: staging}}}}]\ncurrent-context: c\n",
            cluster.api.url(),
            plugin.display()
        ),
    )
    .unwrap();
    let mut command = cluster.command(&["status", "staging", "--timeout", "5s"]);
    command.env("KUBECONFIG", &kubeconfig);
    let run = output_within(command, Duration::from_secs(30)).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("`kubectl duli db status` did not finish within")
            && run.stderr.contains("(--timeout)"),
        "{}",
        run.all()
    );
    assert_eq!(run.stderr.lines().count(), 1, "one sentence: {}", run.all());
    // 5 s + the runner's slack and grace, and some room for a loaded machine.
    assert!(
        run.elapsed >= Duration::from_secs(5) && run.elapsed < Duration::from_secs(11),
        "took {:?}",
        run.elapsed
    );
}

/// `status` through `bash -c '… REDIRECTION'` (a redirection only a shell can do; pipefail: the plugin's code).
async fn status_through_shell(cluster: &Cluster, redirection: &str) -> Run {
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(format!(
            "set -o pipefail; \"$0\" duli db status staging --no-live {redirection}"
        ))
        .arg(testkit::tools::kubectl())
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", cluster.plugin_dir.display()),
        )
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HOME", cluster.dir.path())
        .env("DULI_REPO", workspace())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    output_within(command, Duration::from_secs(30)).await
}

/// A closed stdout (`>&-`) is an error naming stdout, not a success with the output lost; a reader that
/// goes away (broken pipe) stays quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_an_error_and_a_broken_pipe_is_quiet() {
    let cluster = Cluster::healthy_staging().await;
    let run = status_through_shell(&cluster, ">&-").await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("cannot write to stdout"), "{}", run.all());

    let run = status_through_shell(&cluster, "| true").await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.stderr, "", "{}", run.all());
}

//! Passwords never appear in any process's command line, nor in the plugin's output or logs (`-vv`).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Cluster, Run, healthy_seed, output, servers};

/// Every process's command line and, for `name`, (pid, environment).
fn scan_processes(name: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut cmdlines = Vec::new();
    let mut matching = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline
            .split_whitespace()
            .next()
            .is_some_and(|argv0| argv0.ends_with(name))
        {
            let environ = std::fs::read(entry.path().join("environ"))
                .map(|e| String::from_utf8_lossy(&e).replace('\0', "\n"))
                .unwrap_or_default();
            matching.push((pid, environ));
        }
        cmdlines.push(cmdline);
    }
    (cmdlines, matching)
}

/// Run the plugin in the background; while `client` runs, scan /proc; return the run and the client's environment.
async fn run_and_scan(cluster: &Cluster, args: &[&str], client: &str, secrets: &[&str]) -> (Run, String) {
    let mut command = cluster.command(args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let started = Instant::now();
    let mut client_env = None;
    let mut scans = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let (cmdlines, matching) = scan_processes(client);
        for cmdline in &cmdlines {
            for secret in secrets {
                assert!(
                    !cmdline.contains(secret),
                    "a password is in a command line: {cmdline}"
                );
            }
        }
        if let Some((_, environ)) = matching.into_iter().next() {
            client_env.get_or_insert(environ);
        }
        scans += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().await.unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let client_env = client_env
        .unwrap_or_else(|| panic!("{client} was never seen running ({scans} scans): {}", run.all()));
    (run, client_env)
}

fn assert_clean(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a password leaked: {}",
            run.all()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_stay_out_of_command_lines_output_and_logs() {
    let s = servers();
    let secrets = [
        s.pg_app_password.as_str(),
        s.pg_superuser_password.as_str(),
        s.redis_password.as_str(),
    ];
    let cluster = Cluster::start(&healthy_seed("staging").yaml()).await;

    let (run, environ) = run_and_scan(
        &cluster,
        &[
            "-vv",
            "connect",
            "staging",
            "--",
            "-Atc",
            "select pg_sleep(2), 'slept'",
        ],
        "psql",
        &secrets,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("slept"), "{}", run.all());
    assert!(run.stderr.contains("DEBUG"), "-vv logs: {}", run.all());
    assert_clean(&run, &secrets);
    // psql gets a 0600 password file, not even an environment variable; the file is gone afterwards.
    assert!(
        !environ.contains(&s.pg_app_password),
        "psql's environment holds the password"
    );
    let passfile = environ
        .lines()
        .find_map(|l| l.strip_prefix("PGPASSFILE="))
        .expect("PGPASSFILE set")
        .to_string();
    assert!(
        !std::path::Path::new(&passfile).exists(),
        "{passfile} was not removed"
    );

    let (run, environ) = run_and_scan(
        &cluster,
        &[
            "-vv",
            "connect",
            "staging",
            "redis",
            "--",
            "BLPOP",
            "duli-never-filled",
            "2",
        ],
        "redis-cli",
        &secrets,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_clean(&run, &secrets);
    assert!(
        environ.contains(&format!("REDISCLI_AUTH={}", s.redis_password)),
        "redis-cli authenticates from its environment"
    );

    for args in [
        &["-vv", "status", "staging"][..],
        &["-vv", "status", "staging", "-o", "json"],
        &["-vv", "creds", "staging"],
        &[
            "-vv",
            "connect",
            "staging",
            "--port-forward-only",
            "--timeout",
            "1s",
            "--external",
        ],
    ] {
        let run = output(cluster.command(args)).await;
        assert_clean(&run, &secrets);
    }
}

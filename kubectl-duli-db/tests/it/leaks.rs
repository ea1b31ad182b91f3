//! The secret-leak audit of `kubectl duli db` (issue #9): every command that handles a credential runs at
//! `-vv` under the scanner (`leakscan`), which watches the plugin's process tree (argv and environment)
//! and its HOME, TMPDIR and working directory while it runs; then stdout, stderr, every process and every
//! file version seen are checked for the plaintext passwords. Allowed, and nothing else: `creds --show`
//! and `--show-credentials` print passwords on stdout; redis-cli gets `REDISCLI_AUTH`; psql reads a
//! `duli-pgpass-*` file that must be 0600 and gone when the run ends.
//!
//! Supersedes `secrecy.rs` (same idea, fewer commands, argv only).

use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::leakscan::{Allowed, Scan, assert_no_leak};
use testkit::process::Run;
use testkit::services::servers;
use tokio::io::AsyncReadExt;

use crate::corpus::sandbox;
use crate::support::{Cluster, healthy_seed};

/// The RabbitMQ password of the seeds here: the broker's real one is `guest`, indistinguishable from the
/// user name, so the audit uses a unique (wrong) one — the same code paths handle it, login fails.
const RABBITMQ_PASSWORD: &str = "rmq-PLAINTEXT-6Vb";

/// How a run ends.
enum Until {
    /// It exits by itself.
    Exit,
    /// It prints "Press Ctrl-C" and waits: send SIGINT then.
    CtrlC,
}

/// Run `kubectl duli db -vv ARGS` under the scanner; returns the run and the private files psql used.
/// The intended client (psql, redis-cli), when there is one, must have been seen by the scanner.
async fn audit(
    cluster: &Cluster,
    args: &[&str],
    until: Until,
    secrets: &[&str],
    allowed: &Allowed,
) -> (Run, usize) {
    let work = sandbox(cluster);
    let mut full = vec!["-vv"];
    full.extend_from_slice(args);
    let mut command = cluster.command(&full);
    command
        .current_dir(&work)
        .env("TMPDIR", work.join("tmp"))
        .env("HOME", &work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let scan = Scan::start(child.id().unwrap(), std::slice::from_ref(&work));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut out = String::new();
    let mut buffer = [0u8; 4096];
    let mut interrupted = false;
    let finished = async {
        loop {
            let n = stdout.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&buffer[..n]));
            if matches!(until, Until::CtrlC) && !interrupted && out.contains("Press Ctrl-C") {
                interrupted = true;
                tokio::time::sleep(Duration::from_millis(100)).await;
                testkit::process::signal("INT", child.id().unwrap());
            }
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(60), finished)
        .await
        .expect("the plugin ends");
    let seen = scan.finish();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: out,
        stderr: err_reader.await.unwrap(),
        elapsed: started.elapsed(),
    };
    let what = args.join(" ");
    assert!(run.stderr.contains("DEBUG"), "{what}: -vv logs: {}", run.all());
    let private = assert_no_leak(&what, &run.stdout, &run.stderr, &seen, secrets, allowed);
    assert!(seen.polls > 2, "{what}: scanned {} times", seen.polls);
    let programs = seen.programs();
    assert!(
        programs.contains(&"kubectl-duli-db"),
        "{what}: the plugin was seen: {programs:?}"
    );
    for client in ["psql", "redis-cli"] {
        if args.contains(&"--") && args.contains(&"staging") && (client == "psql") != args.contains(&"redis")
        {
            assert!(
                programs.contains(&client),
                "{what}: {client} was seen: {programs:?}"
            );
        }
    }
    if let Some((program, entry)) = allowed.client_env.first() {
        let got = seen
            .processes
            .values()
            .flatten()
            .any(|p| &p.program == program && p.environ.contains(entry));
        assert!(got, "{what}: {program} got its credential in its environment");
    }
    (run, private.len())
}

fn seed() -> String {
    let mut seed = healthy_seed("staging");
    seed.rabbitmq_password = RABBITMQ_PASSWORD.into();
    seed.yaml()
}

fn secrets() -> Vec<&'static str> {
    let s = servers();
    vec![
        s.pg_app_password.as_str(),
        s.pg_superuser_password.as_str(),
        s.redis_password.as_str(),
        RABBITMQ_PASSWORD,
    ]
}

fn psql_allowed() -> Allowed {
    Allowed {
        private_file_prefix: Some("duli-pgpass-".into()),
        ..Allowed::default()
    }
}

/// `connect`: psql and redis-cli (with and without --show-credentials), --external, port-forward-only and
/// rabbitmq (with and without --show-credentials).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_leaks_nothing() {
    let cluster = Cluster::start(&seed()).await;
    let secrets = secrets();
    let s = servers();

    for show in [false, true] {
        let mut args = vec!["connect", "staging"];
        if show {
            args.push("--show-credentials");
        }
        args.extend(["--", "-Atc", "select pg_sleep(0.6), current_user"]);
        let (run, private) = audit(&cluster, &args, Until::Exit, &secrets, &psql_allowed()).await;
        assert_eq!(run.code, 0, "{}", run.all());
        assert_eq!(run.stdout, "|app\n");
        assert_eq!(private, 1, "psql's password file was seen (0600, then removed)");

        let mut args = vec!["connect", "staging", "redis"];
        if show {
            args.push("--show-credentials");
        }
        args.extend(["--", "BLPOP", "duli-leak-audit-never-filled", "1"]);
        let allowed = Allowed {
            client_env: vec![("redis-cli".into(), format!("REDISCLI_AUTH={}", s.redis_password))],
            ..Allowed::default()
        };
        let (run, _) = audit(&cluster, &args, Until::Exit, &secrets, &allowed).await;
        assert_eq!(run.code, 0, "{}", run.all());
    }

    // The external endpoint does not resolve here: psql fails, after the password file was made.
    let (run, _) = audit(
        &cluster,
        &["connect", "staging", "--external", "--", "-c", "select 1"],
        Until::Exit,
        &secrets,
        &psql_allowed(),
    )
    .await;
    assert_eq!(run.code, 2, "psql's own exit code: {}", run.all());

    for (args, shown) in [
        (vec!["connect", "staging", "--port-forward-only"], None),
        (
            vec!["connect", "staging", "--port-forward-only", "--show-credentials"],
            Some(s.pg_app_password.clone()),
        ),
        (
            vec![
                "connect",
                "staging",
                "redis",
                "--port-forward-only",
                "--show-credentials",
            ],
            Some(s.redis_password.clone()),
        ),
        (vec!["connect", "staging", "rabbitmq"], None),
        (
            vec!["connect", "staging", "rabbitmq", "--show-credentials"],
            Some(RABBITMQ_PASSWORD.to_string()),
        ),
    ] {
        let allowed = Allowed {
            stdout: shown.iter().cloned().collect(),
            ..Allowed::default()
        };
        let (run, _) = audit(&cluster, &args, Until::CtrlC, &secrets, &allowed).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.all());
        if let Some(shown) = shown {
            assert!(
                run.stdout.contains(&shown),
                "{args:?} shows the password: {}",
                run.all()
            );
        }
    }
}

/// `creds` in every format, with and without --show; `status` with its live checks, healthy and with every
/// password wrong (the failure paths format errors from the clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creds_and_status_leak_nothing() {
    let cluster = Cluster::start(&seed()).await;
    let secrets = secrets();
    let s = servers();
    for format in ["table", "json", "yaml", "env"] {
        let (run, _) = audit(
            &cluster,
            &["creds", "staging", "-o", format],
            Until::Exit,
            &secrets,
            &Allowed::default(),
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.all());
        let shown = vec![
            s.pg_app_password.clone(),
            s.redis_password.clone(),
            RABBITMQ_PASSWORD.to_string(),
        ];
        let allowed = Allowed {
            stdout: shown.clone(),
            ..Allowed::default()
        };
        let (run, _) = audit(
            &cluster,
            &["creds", "staging", "--show", "-o", format],
            Until::Exit,
            &secrets,
            &allowed,
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.all());
        for password in &shown {
            assert!(
                run.stdout.contains(password.as_str()),
                "--show -o {format}: {}",
                run.all()
            );
        }
    }
    for args in [&["status", "staging"][..], &["status", "staging", "-o", "json"]] {
        let (run, _) = audit(&cluster, args, Until::Exit, &secrets, &Allowed::default()).await;
        // RabbitMQ's login fails (its password here is a wrong one): exit 1, the rest healthy.
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(
            run.stdout.contains("ACCESS_REFUSED") || run.stdout.contains("AMQP login as guest failed"),
            "{}",
            run.all()
        );
    }

    // Every password wrong: PostgreSQL, Redis, Sentinel and RabbitMQ all fail their logins.
    let mut wrong = healthy_seed("staging");
    wrong.pg_app_password = "pg-app-WRONG-PLAINTEXT-1Aa".into();
    wrong.pg_superuser_password = "pg-super-WRONG-PLAINTEXT-2Bb".into();
    wrong.redis_password = "redis-WRONG-PLAINTEXT-3Cc".into();
    wrong.rabbitmq_password = "rmq-WRONG-PLAINTEXT-4Dd".into();
    let cluster = Cluster::start(&wrong.yaml()).await;
    let wrong_secrets = [
        wrong.pg_app_password.as_str(),
        wrong.pg_superuser_password.as_str(),
        wrong.redis_password.as_str(),
        wrong.rabbitmq_password.as_str(),
    ];
    let (run, _) = audit(
        &cluster,
        &["status", "staging", "-o", "json"],
        Until::Exit,
        &wrong_secrets,
        &Allowed::default(),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.all());
    let (run, private) = audit(
        &cluster,
        &["connect", "staging", "--", "-c", "select 1"],
        Until::Exit,
        &wrong_secrets,
        &psql_allowed(),
    )
    .await;
    assert_eq!(run.code, 2, "psql refuses the login: {}", run.all());
    assert_eq!(private, 1);
}

/// Issue #17: a Secret with one value that is not base64 beside a real `password`. The client's
/// deserializer used to fail on the whole object and a WARN line held the Secret's JSON (the password's
/// base64) at default verbosity. Now the values are decoded one by one and the error names the read and
/// the key; nothing of the Secret reaches stderr, at -vv or without -v.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_value_that_is_not_base64_is_named_not_logged() {
    use base64::Engine as _;
    let s = servers();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&s.pg_app_password);
    let mut seed = healthy_seed("staging");
    seed.rabbitmq_password = RABBITMQ_PASSWORD.into();
    seed.skip_secrets.push("database-app");
    let secret = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: database-app, namespace: staging}}\ntype: kubernetes.io/basic-auth\ndata:\n  username: YXBw\n  dbname: YXBw\n  password: {encoded}\n  junk: '%%%-not-base64-%%%'\n"
    );
    let cluster = Cluster::start(&format!("{}{secret}", seed.yaml())).await;
    let mut secrets = secrets();
    secrets.push(&encoded);
    let expected =
        r#"error: get secrets database-app in namespace staging: value of key "junk" is not base64"#;
    let (run, _) = audit(
        &cluster,
        &["creds", "staging", "postgres"],
        Until::Exit,
        &secrets,
        &Allowed::default(),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains(expected), "{}", run.all());
    assert!(!run.stderr.contains("%%%"), "{}", run.all());

    let run = cluster.run_expecting(2, &["creds", "staging", "postgres"]).await;
    assert_eq!(
        run.stderr.trim_end(),
        expected,
        "one line, nothing else: {}",
        run.all()
    );
}

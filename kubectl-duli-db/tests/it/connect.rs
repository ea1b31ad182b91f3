//! `kubectl duli db connect`: real psql and redis-cli through the port-forward, the client's exit code,
//! wrong password, missing Secret, missing client, prod guard, --port-forward-only, rabbitmq.

use std::time::Duration;

use testkit::process::output;
use testkit::services::servers;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Cluster, healthy_seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_runs_a_real_query_on_the_primary_and_on_a_replica() {
    let cluster = Cluster::healthy_staging().await;
    let run = cluster
        .connect_staging(
            0,
            &[
                "--",
                "-Atc",
                "select current_user, current_database(), pg_is_in_recovery()",
            ],
        )
        .await;
    assert_eq!(run.stdout, "app|app|f\n", "{}", run.all());
    let run = cluster
        .connect_staging(
            0,
            &[
                "postgres",
                "--read-only",
                "--",
                "-Atc",
                "select pg_is_in_recovery()",
            ],
        )
        .await;
    assert_eq!(run.stdout, "t\n", "{}", run.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_exit_code_is_the_plugins() {
    let cluster = Cluster::healthy_staging().await;
    let run = cluster
        .connect_staging(1, &["--", "-v", "ON_ERROR_STOP=1", "-c", "select 1/0"])
        .await;
    assert!(run.stderr.contains("division by zero"), "{}", run.all());
    let run = cluster
        .run_expecting(0, &["connect", "staging", "redis", "--", "PING"])
        .await;
    assert_eq!(run.stdout.trim(), "PONG", "{}", run.all());
    let run = cluster
        .run(&["connect", "staging", "redis", "--", "INFO", "replication"])
        .await;
    assert!(
        run.stdout.contains("role:master") && run.stdout.contains("connected_slaves:1"),
        "{}",
        run.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_by_the_server() {
    let mut seed = healthy_seed("staging");
    seed.pg_app_password = "not-the-password".into();
    seed.pg_superuser_password = "not-the-password-either".into();
    seed.redis_password = "wrong-redis-password".into();
    let cluster = Cluster::start(&seed.yaml()).await;
    let run = cluster.run(&["connect", "staging", "--", "-c", "select 1"]).await;
    assert_eq!(run.code, 2, "psql exits 2 when it cannot connect: {}", run.all());
    assert!(
        run.stderr
            .contains("password authentication failed for user \"app\""),
        "{}",
        run.all()
    );
    let run = cluster.run(&["connect", "staging", "redis", "--", "PING"]).await;
    assert!(
        run.stdout.contains("WRONGPASS") || run.stderr.contains("WRONGPASS"),
        "{}",
        run.all()
    );
    let status = cluster.run(&["status", "staging", "-o", "json"]).await;
    assert_eq!(status.code, 1, "{}", status.all());
    let doc = status.json();
    let pg = crate::support::service(&doc, "staging", "postgres");
    assert!(
        pg["live"]["detail"]
            .as_str()
            .unwrap()
            .contains("password authentication failed for user \"postgres\""),
        "{pg}"
    );
    let redis = crate::support::service(&doc, "staging", "redis");
    assert!(
        redis["live"]["detail"]
            .as_str()
            .unwrap()
            .contains("Password authentication failed"),
        "{redis}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_says_which_and_where() {
    let mut seed = healthy_seed("staging");
    seed.skip_secrets = vec!["database-app", "redis-secret"];
    let cluster = Cluster::start(&seed.yaml()).await;
    let run = cluster
        .run_expecting(2, &["connect", "staging", "--", "-c", "select 1"])
        .await;
    assert!(
        run.stderr
            .contains("Secret `database-app` not found in namespace `staging`: CloudNativePG creates it"),
        "{}",
        run.all()
    );
    let run = cluster
        .run_expecting(2, &["connect", "staging", "redis", "--", "PING"])
        .await;
    assert!(
        run.stderr
            .contains("Secret `redis-secret` not found in namespace `staging`"),
        "{}",
        run.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_client_says_how_to_install_it() {
    let cluster = Cluster::healthy_staging().await;
    // Only the plugin's own directory on PATH: kubectl is run by absolute path, psql is nowhere.
    let run =
        output(cluster.command_with_path(&["connect", "staging", "--", "-c", "select 1"], "/nonexistent"))
            .await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("`psql` not found on PATH"), "{}", run.all());
    assert!(
        run.stderr.contains("apt-get install postgresql-client"),
        "{}",
        run.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_needs_yes_without_a_terminal() {
    let cluster = Cluster::start(&healthy_seed("prod").yaml()).await;
    let run = cluster
        .run_expecting(2, &["connect", "prod", "--", "-Atc", "select 1"])
        .await;
    assert!(
        run.stderr.contains("refusing to connect to PostgreSQL in production environment `prod` without confirmation: no terminal to ask on; pass --yes"),
        "{}",
        run.all()
    );
    assert_eq!(run.stdout, "");
    let run = cluster
        .run_expecting(0, &["connect", "prod", "--yes", "--", "-Atc", "select 1"])
        .await;
    assert_eq!(run.stdout, "1\n");
}

/// Start `connect` in the background, read its stdout until "Press Ctrl-C", return the lines.
async fn start_forward(cluster: &Cluster, args: &[&str]) -> (tokio::process::Child, Vec<String>) {
    let mut command = cluster.command(args);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.starts_with("Press Ctrl-C");
            seen.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the endpoint is printed");
    (child, seen)
}

async fn interrupt(mut child: tokio::process::Child) -> i32 {
    testkit::process::signal("INT", child.id().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits on Ctrl-C")
        .unwrap();
    status.code().unwrap_or(-1)
}

fn local_port(line: &str) -> String {
    // "Forwarding 127.0.0.1:PORT -> pod/…"
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_only_serves_gui_tools_until_ctrl_c() {
    let cluster = Cluster::healthy_staging().await;
    let (child, lines) = start_forward(&cluster, &["connect", "staging", "--port-forward-only"]).await;
    assert!(lines[0].starts_with("Forwarding 127.0.0.1:"), "{lines:?}");
    assert!(
        lines[0].ends_with("-> pod/database-1:5432 (Service database-rw, namespace staging)"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(
            "user app, database app, password in Secret database-app (--show-credentials prints it)"
        ),
        "{lines:?}"
    );
    let password = &servers().pg_app_password;
    assert!(!lines.iter().any(|l| l.contains(password.as_str())));
    let port = local_port(&lines[0]);
    // Two connections through the same forward (a GUI opens several).
    for _ in 0..2 {
        let psql = tokio::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "app",
                "-d",
                "app",
                "-Atc",
                "select 42",
            ])
            .env("PGPASSWORD", password)
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&psql.stdout),
            "42\n",
            "{}",
            String::from_utf8_lossy(&psql.stderr)
        );
    }
    assert_eq!(interrupt(child).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_forwards_amqp_and_management_and_hides_credentials() {
    let cluster = Cluster::healthy_staging().await;
    let (child, lines) = start_forward(&cluster, &["connect", "staging", "rabbitmq"]).await;
    let text = lines.join("\n");
    assert!(
        text.contains("-> pod/queue-server-0:5672 (Service queue, namespace staging)"),
        "{text}"
    );
    assert!(text.contains("AMQP: amqp://127.0.0.1:"), "{text}");
    assert!(text.contains("Management UI: http://127.0.0.1:"), "{text}");
    assert!(
        text.contains(
            "Credentials: user guest, password in Secret queue-default-user (--show-credentials prints it)"
        ),
        "{text}"
    );
    // The AMQP forward reaches the real broker.
    let port = local_port(&lines[0]);
    let amqp = tokio::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).await;
    assert!(amqp.is_ok());
    assert_eq!(interrupt(child).await, 0);

    let (child, lines) = start_forward(
        &cluster,
        &["connect", "staging", "rabbitmq", "--show-credentials"],
    )
    .await;
    assert!(
        lines
            .join("\n")
            .contains("Credentials: user guest, password guest"),
        "{lines:?}"
    );
    assert_eq!(interrupt(child).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_option_combinations_are_usage_errors() {
    let cluster = Cluster::start("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n").await;
    let run = cluster.run(&["connect", "staging", "redis", "--read-only"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--read-only applies to postgres only"),
        "{}",
        run.all()
    );
    let run = cluster.run(&["connect", "staging", "rabbitmq", "--", "x"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("rabbitmq has no command-line client"),
        "{}",
        run.all()
    );
}

/// Ctrl-C while the client runs belongs to the client: the plugin stays, and exits with the client's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_does_not_stop_the_plugin_while_the_client_runs() {
    let cluster = Cluster::healthy_staging().await;
    let mut command = cluster.command(&[
        "connect",
        "staging",
        "--",
        "-Atc",
        "select pg_sleep(2), 'finished'",
    ]);
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    testkit::process::signal("INT", pid);
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "|finished\n");
}

//! kubectl's client flags (issue #14): `--token`, `--as`, `--as-group`, `--as-uid` reach the API server as
//! kubectl sends them, `--server` wins over the kubeconfig (and works without one), `--request-timeout`
//! takes the one duration grammar; `--color` and `-o wide` as kubectl's.

use testkit::process::output;
use testkit::servers::closed_port;

use crate::support::Cluster;

const TOKEN: &str = "tok-FLAG-7c1e5d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_impersonation_flags_are_sent_and_the_token_is_never_printed() {
    let cluster = Cluster::healthy_staging().await;
    let run = cluster
        .run_expecting(
            0,
            &[
                "status",
                "staging",
                "--no-live",
                "-o",
                "json",
                "-vv",
                "--token",
                TOKEN,
                "--as",
                "alice",
                "--as-group",
                "devs",
                "--as-group",
                "ops",
                "--as-uid",
                "uid-42",
            ],
        )
        .await;
    let requests = cluster.api.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        let identity = &request.identity;
        assert_eq!(identity.bearer_token.as_deref(), Some(TOKEN), "{request:?}");
        assert_eq!(identity.impersonate_user.as_deref(), Some("alice"), "{request:?}");
        assert_eq!(identity.impersonate_groups, ["devs", "ops"], "{request:?}");
        assert_eq!(identity.impersonate_uid.as_deref(), Some("uid-42"), "{request:?}");
    }
    assert!(!run.all().contains(TOKEN), "the token was printed: {}", run.all());

    // Without the flags, the kubeconfig's (credential-less) user is used: no token, no impersonation.
    cluster.api.clear_requests();
    cluster
        .run_expecting(0, &["status", "staging", "--no-live", "-o", "json"])
        .await;
    for request in cluster.api.requests() {
        assert_eq!(request.identity, Default::default(), "{request:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_flag_overrides_the_kubeconfig_and_needs_none() {
    let cluster = Cluster::healthy_staging().await;
    // The kubeconfig points at a closed port: only --server reaches the stand-in.
    let dead = format!("http://127.0.0.1:{}", closed_port());
    std::fs::write(&cluster.kubeconfig, testkit::corpus::kubeconfig_for(&dead)).unwrap();
    let refused = cluster
        .run(&["status", "staging", "--no-live", "--timeout", "3s"])
        .await;
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(cluster.api.requests().is_empty());

    let url = cluster.api.url();
    let run = cluster
        .run_expecting(
            0,
            &["status", "staging", "--no-live", "-o", "json", "--server", &url],
        )
        .await;
    assert_eq!(run.json()["environments"][0]["healthy"], true, "{}", run.all());
    assert!(!cluster.api.requests().is_empty());

    // No kubeconfig at all (KUBECONFIG names a missing file, no ~/.kube/config): --server is enough.
    cluster.api.clear_requests();
    let mut command = cluster.command(&["status", "staging", "--no-live", "-o", "json", "--server", &url]);
    command.env("KUBECONFIG", cluster.dir.path().join("missing"));
    let run = output(command).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!cluster.api.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_takes_the_one_duration_grammar() {
    let cluster = Cluster::healthy_staging().await;
    cluster
        .run_expecting(
            0,
            &["status", "staging", "--no-live", "--request-timeout", "1h30m"],
        )
        .await;
    cluster
        .run_expecting(0, &["status", "staging", "--no-live", "--request-timeout", "0"])
        .await;
    let bad = cluster
        .run(&["status", "staging", "--no-live", "--request-timeout", "soon"])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.all());
    assert!(
        bad.stderr.contains("--request-timeout") && bad.stderr.contains("`soon` is not a duration"),
        "{}",
        bad.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn color_always_puts_ansi_codes_in_tables_and_logs_auto_leaves_them_out() {
    let cluster = Cluster::healthy_staging().await;
    let plain = cluster
        .run_expecting(0, &["status", "staging", "--no-live", "-vv"])
        .await;
    assert!(!plain.stderr.is_empty(), "-vv logs something: {}", plain.all());
    assert!(!plain.all().contains('\u{1b}'), "{}", plain.all());
    let coloured = cluster
        .run_expecting(0, &["status", "staging", "--no-live", "-vv", "--color", "always"])
        .await;
    // A bold header on stdout, coloured levels on stderr.
    assert!(
        coloured.stdout.contains("\u{1b}[1mSERVICE"),
        "{:?}",
        coloured.stdout
    );
    assert!(coloured.stderr.contains('\u{1b}'), "{:?}", coloured.stderr);
    // CLICOLOR_FORCE forces colour under auto; NO_COLOR wins over it; --color never wins over both.
    let mut forced = cluster.command(&["status", "staging", "--no-live"]);
    forced.env("CLICOLOR_FORCE", "1").env_remove("NO_COLOR");
    let forced = output(forced).await;
    assert!(forced.stdout.contains('\u{1b}'), "{}", forced.all());
    let mut no_color = cluster.command(&["status", "staging", "--no-live"]);
    no_color.env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
    let no_color = output(no_color).await;
    assert!(!no_color.stdout.contains('\u{1b}'), "{}", no_color.all());
    let mut never = cluster.command(&["status", "staging", "--no-live", "--color", "never"]);
    never.env("CLICOLOR_FORCE", "1");
    let never = output(never).await;
    assert!(!never.stdout.contains('\u{1b}'), "{}", never.all());
}

/// Run `kubectl duli db ARGS` as [`Cluster::command`] would, but with a pseudo-terminal for its stdin,
/// stdout and stderr (util-linux `script`), as a user at a terminal runs it.
async fn run_on_a_terminal(cluster: &Cluster, args: &[&str], extra_env: &[(&str, &str)]) -> String {
    let run = crate::support::on_a_terminal(cluster, "", args, extra_env).await;
    assert_eq!(run.code, 0, "{}", run.all());
    run.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_tables_are_drawn_and_coloured_unless_no_color() {
    let cluster = Cluster::healthy_staging().await;
    let text = run_on_a_terminal(&cluster, &["status", "staging", "--no-live"], &[]).await;
    assert!(text.contains('│') && text.contains("postgres"), "{text}");
    assert!(
        text.contains("Cluster in healthy state"),
        "not wrapped at 200 columns: {text}"
    );
    assert!(
        text.contains("\u{1b}[1m"),
        "a bold header on a terminal: {text:?}"
    );
    let text = run_on_a_terminal(
        &cluster,
        &["status", "staging", "--no-live"],
        &[("NO_COLOR", "1")],
    )
    .await;
    assert!(text.contains('│'), "{text}");
    assert!(!text.contains('\u{1b}'), "NO_COLOR: {text:?}");
    let text = run_on_a_terminal(
        &cluster,
        &["status", "staging", "--no-live", "--color", "never"],
        &[],
    )
    .await;
    assert!(!text.contains('\u{1b}'), "--color never: {text:?}");
}

//! The library's `run`, called in-process with a `Vec<u8>` for stdout: it prints byte for byte what the
//! binary prints through kubectl, and refuses bad combinations without printing.

use kubectl_duli_db::cli::Cli;
use shared::error::Outcome;

use crate::support::Cluster;
use testkit::paths::workspace;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creds_in_process_prints_what_the_binary_prints() {
    let cluster = Cluster::healthy_staging().await;
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let repo = workspace().display().to_string();
    for format in ["table", "json", "yaml", "env"] {
        let args = ["creds", "staging", "-o", format];
        let argv = ["kubectl-duli-db", "--kubeconfig", &kubeconfig, "--repo", &repo]
            .into_iter()
            .chain(args);
        let cli = Cli::try_parse_args(argv).unwrap();
        let mut out = Vec::new();
        let outcome = kubectl_duli_db::run(cli, &mut out).await.unwrap();
        assert!(matches!(outcome, Outcome::Clean), "{format}: {outcome:?}");
        let binary = cluster.run(&args).await.expect(0);
        let printed = String::from_utf8(out).unwrap();
        assert!(printed.contains("database-app"), "{format}: {printed}");
        assert_eq!(printed, binary.stdout, "-o {format}");
    }
}

#[tokio::test]
async fn env_output_outside_creds_is_refused_before_anything_is_printed() {
    let cli = Cli::try_parse_args(["kubectl-duli-db", "status", "staging", "-o", "env"]).unwrap();
    assert!(cli.env_output);
    let mut out = Vec::new();
    let err = kubectl_duli_db::run(cli, &mut out).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("-o env is only for `kubectl duli db creds`"),
        "{err}"
    );
    assert!(out.is_empty());
}

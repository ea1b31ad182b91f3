//! Issue #14 item 7, works from anywhere: with no repository around the current directory and no
//! `DULI_REPO`, `db` reads the environment from the descriptor `env up` publishes (seeded here with the
//! very function `up` applies, `shared::descriptor::to_config_map`); `--repo` still wins; without a
//! descriptor the error names both tries.

use shared::environment::Environment;
use shared::repo::Repo;

use crate::support::{Cluster, healthy_seed, service};
use testkit::process::{Run, output};

/// The descriptor of the workspace's `name`, as YAML for the stand-in's seed; `edit` changes it first.
fn descriptor(name: &str, edit: impl FnOnce(&mut Environment)) -> String {
    let mut env = Environment::load(&Repo::at(testkit::paths::workspace()).unwrap(), name).unwrap();
    edit(&mut env);
    let map = shared::descriptor::to_config_map(&env, Some("abc123")).unwrap();
    format!("---\n{}", serde_saphyr::to_string(&map).unwrap())
}

/// `kubectl duli db ARGS` from an empty directory, without `DULI_REPO`.
async fn from_nowhere(cluster: &Cluster, args: &[&str]) -> Run {
    let empty = cluster.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = cluster.command(args);
    command.env_remove("DULI_REPO").current_dir(&empty);
    output(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_from_an_empty_directory_reads_the_descriptor() {
    let moved = |env: &mut Environment| env.endpoints.postgres.external = "db-moved.duli.one:6543".into();
    let yaml = format!(
        "{}{}",
        healthy_seed("staging").yaml(),
        descriptor("staging", moved)
    );
    let cluster = Cluster::start(&yaml).await;
    let run = from_nowhere(&cluster, &["status", "staging", "--no-live", "-o", "json", "-v"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr
            .contains("environment staging from configmap staging/duli-environment in context"),
        "{}",
        run.all()
    );
    let doc = run.json();
    assert_eq!(
        service(&doc, "staging", "postgres")["endpoints"]["external"],
        "db-moved.duli.one:6543",
        "the descriptor's endpoint, not the repository's"
    );

    // --repo wins over the cluster, from anywhere.
    let workspace = testkit::paths::workspace();
    let repo = workspace.to_str().unwrap();
    let run = from_nowhere(
        &cluster,
        &[
            "status",
            "staging",
            "--no-live",
            "-o",
            "json",
            "--repo",
            repo,
            "-v",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("environments from the repository"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("configmap"), "{}", run.all());
    assert_eq!(
        service(&run.json(), "staging", "postgres")["endpoints"]["external"],
        "db-staging.duli.one:5432"
    );

    // A 403 in the environment's namespace only rules it out: the cluster-wide list finds it.
    cluster.api.deny_in("list", "configmaps", "staging");
    let run = from_nowhere(&cluster, &["status", "staging", "--no-live", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_repository_or_descriptor_the_error_names_both_tries() {
    let cluster = Cluster::start(&healthy_seed("staging").yaml()).await;
    let run = from_nowhere(&cluster, &["connect", "staging", "postgres"]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    for text in [
        "no duli repository found in",
        "no environment descriptor `staging` in the cluster (context",
        "namespace staging: none",
        "all namespaces: none",
        "run `kubectl duli env up ENV` from the repository once, or pass --repo DIR",
    ] {
        assert!(run.stderr.contains(text), "missing {text}: {}", run.all());
    }
    // A forbidden place is said, not an error by itself.
    cluster.api.deny("list", "configmaps");
    let run = from_nowhere(&cluster, &["creds", "staging", "postgres"]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("all namespaces: forbidden"), "{}", run.all());
    // The same exit code as the repository error of the commands that need one.
    let plain = cluster
        .run(&["status", "staging", "--no-live", "--repo", "/nonexistent"])
        .await;
    assert_eq!(plain.code, 2, "{}", plain.all());
}

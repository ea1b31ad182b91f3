//! `kubectl duli db creds`: table, JSON, `-o env`, the password only with --show, the prod guard.

use testkit::services::servers;

use crate::support::{Cluster, healthy_seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_json_and_export_lines() {
    let cluster = Cluster::healthy_staging().await;
    let s = servers();
    let table = cluster.run(&["creds", "staging"]).await;
    assert_eq!(table.code, 0, "{}", table.all());
    for text in [
        "database-rw.staging.svc.cluster.local",
        "database-app",
        "redis-secret",
        "queue-default-user",
        "(hidden: --show)",
        "guest",
    ] {
        assert!(table.stdout.contains(text), "missing {text}: {}", table.all());
    }
    assert!(
        !table.stdout.contains(&s.pg_app_password) && !table.stdout.contains(&s.redis_password),
        "{}",
        table.all()
    );

    let json = cluster.run(&["creds", "staging", "postgres", "-o", "json"]).await;
    assert_eq!(json.code, 0, "{}", json.all());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["services"][0],
        serde_json::json!({
            "service": "postgres", "secret": "database-app", "host": "database-rw.staging.svc.cluster.local", "port": 5432,
            "external": "db-staging.duli.one:5432", "user": "app", "database": "app", "password": null
        })
    );

    let env = cluster
        .run(&["creds", "staging", "postgres", "--show", "-o", "env"])
        .await;
    assert_eq!(env.code, 0, "{}", env.all());
    assert_eq!(
        env.stdout,
        format!(
            "# postgres: Secret database-app in namespace staging\nexport PGHOST='database-rw.staging.svc.cluster.local'\nexport PGPORT='5432'\nexport PGUSER='app'\nexport PGDATABASE='app'\nexport PGPASSWORD='{}'\n",
            s.pg_app_password
        )
    );
    let env = cluster
        .run(&["-o", "env", "creds", "staging", "redis", "--show"])
        .await;
    assert!(
        env.stdout
            .contains(&format!("export REDISCLI_AUTH='{}'", s.redis_password)),
        "{}",
        env.all()
    );
    let hidden = cluster.run(&["creds", "staging", "rabbitmq", "-o", "env"]).await;
    assert!(
        hidden.stdout.contains("export RABBITMQ_USERNAME='guest'")
            && !hidden.stdout.contains("RABBITMQ_PASSWORD"),
        "{}",
        hidden.all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn showing_prod_passwords_needs_yes_and_env_output_is_for_creds_only() {
    let cluster = Cluster::start(&healthy_seed("prod").yaml()).await;
    let run = cluster.run_expecting(2, &["creds", "prod", "--show"]).await;
    assert!(
        run.stderr
            .contains("refusing to show the data service passwords in production environment `prod`"),
        "{}",
        run.all()
    );
    assert!(cluster.run(&["creds", "prod"]).await.code == 0);
    assert_eq!(cluster.run(&["creds", "prod", "--show", "--yes"]).await.code, 0);
    let run = cluster.run(&["status", "prod", "-o", "env"]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("-o env is only for `kubectl duli db creds`"),
        "{}",
        run.all()
    );
}

//! db's test world: a kube-standin per test seeded as the operators would have it (CRDs, Services, Secrets,
//! pods forwarding to the real data servers of [`testkit::services`]), a private kubectl home, and the
//! plugin run through the real kubectl's plugin dispatch.

use std::path::PathBuf;
use std::process::Stdio;

use kube_standin::StandIn;
use testkit::process::{Run, output};
use testkit::servers::closed_port;
use testkit::services::servers;

use crate::fixture::Seed;

/// A healthy seed for `namespace`, every forward at a live server.
pub fn healthy_seed(namespace: &str) -> Seed {
    let s = servers();
    let local = |port: u16| format!("127.0.0.1:{port}");
    Seed {
        namespace: namespace.to_string(),
        pg_primary: local(s.pg_primary),
        pg_standby: local(s.pg_standby),
        pg_app_password: s.pg_app_password.clone(),
        pg_superuser_password: s.pg_superuser_password.clone(),
        redis_master: local(s.redis_master),
        redis_replica: local(s.redis_replica),
        redis_password: s.redis_password.clone(),
        sentinel: local(s.sentinel),
        amqp: local(s.amqp),
        management: local(closed_port()),
        rabbitmq_user: "guest".into(),
        rabbitmq_password: "guest".into(),
        skip_secrets: vec![],
    }
}

/// A stand-in API server plus a private kubectl home, with the plugin on PATH.
pub struct Cluster {
    pub api: StandIn,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub plugin_dir: PathBuf,
}

impl Cluster {
    /// Start a stand-in seeded with `yaml` (several namespaces may be concatenated).
    pub async fn start(yaml: &str) -> Cluster {
        let api = StandIn::builder()
            .crd_dir(testkit::paths::crds_folder("cloudnative-pg"))
            .crd_dir(testkit::paths::crds_folder("redis-operator"))
            .crd_dir(testkit::paths::crds_folder("rabbitmq-cluster-operator"))
            .seed_yaml(yaml)
            .start()
            .await
            .expect("kube-standin starts");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = api.write_kubeconfig(dir.path()).unwrap();
        let plugin_dir = dir.path().join("bin");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_kubectl-duli-db"),
            plugin_dir.join("kubectl-duli-db"),
        )
        .unwrap();
        Cluster {
            api,
            dir,
            kubeconfig,
            plugin_dir,
        }
    }

    /// A stand-in seeded with a healthy `staging`, where most tests start.
    pub async fn healthy_staging() -> Cluster {
        Cluster::start(&healthy_seed("staging").yaml()).await
    }

    /// `kubectl duli db ARGS` with PATH = the plugin's dir + `path_tail`.
    pub fn command_with_path(&self, args: &[&str], path_tail: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(testkit::tools::kubectl());
        command
            .arg("duli")
            .arg("db")
            .args(args)
            .env("PATH", format!("{}:{path_tail}", self.plugin_dir.display()))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .env("DULI_REPO", testkit::paths::workspace())
            .env_remove("RUST_LOG")
            .env_remove("PGPASSWORD")
            .env_remove("REDISCLI_AUTH")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// `kubectl duli db ARGS` with the system PATH (psql and redis-cli found).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_with_path(args, "/usr/local/bin:/usr/bin:/bin")
    }

    /// Run `kubectl duli db ARGS` to completion (60 s at most).
    pub async fn run(&self, args: &[&str]) -> Run {
        output(self.command(args)).await
    }

    /// [`Self::run`], checking the exit code is `code`.
    pub async fn run_expecting(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, code, "{args:?}: {}", run.all());
        run
    }

    /// `connect staging ARGS`, expecting exit `code`.
    pub async fn connect_staging(&self, code: i32, args: &[&str]) -> Run {
        self.run_expecting(code, &[&["connect", "staging"], args].concat())
            .await
    }
}

/// The entry for `service` in environment `env` of a status document.
pub fn service<'a>(doc: &'a serde_json::Value, env: &str, service: &str) -> &'a serde_json::Value {
    doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == env)
        .and_then(|e| {
            e["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["service"] == service)
        })
        .unwrap_or_else(|| panic!("no {service} in {env}: {doc}"))
}

/// Run `kubectl duli db ARGS` as [`Cluster::command`] would, but with a pseudo-terminal for its stdin,
/// stdout and stderr (util-linux `script`), as a user at a terminal runs it; `prefix` goes before the
/// command line (e.g. `timeout -s INT 2`).
pub async fn on_a_terminal(
    cluster: &Cluster,
    prefix: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> testkit::process::Run {
    let inner = cluster.command(args);
    let inner = inner.as_std();
    // A fresh pseudo-terminal reports 0 columns; a user's has a size.
    let mut line = format!(
        "stty cols 200 rows 50; {prefix} {}",
        shell_quote(&inner.get_program().to_string_lossy())
    );
    for arg in inner.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    let mut command = tokio::process::Command::new(testkit::tools::on_path("script", "util-linux"));
    command.args(["-qec", &line, "/dev/null"]).env("TERM", "xterm");
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    output(command).await
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

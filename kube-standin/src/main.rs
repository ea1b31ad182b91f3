//! `kube-standin serve`: run the in-memory API server for manual use and scripts.
//!
//! Prints the URL on the first line of stdout, then serves until killed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kube_standin::StandIn;
use kube_standin::simulate::{BRIDGE_FORMS, Bridge};

/// Parses `--bridge` values; its errors name the flag and the expected forms but never repeat the
/// value, which may hold a password.
#[derive(Clone)]
struct BridgeParser;

impl clap::builder::TypedValueParser for BridgeParser {
    type Value = Bridge;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Bridge, clap::Error> {
        let fail = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--bridge <SERVICE=ADDRESS>': {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail(format!("not UTF-8; expected one of: {BRIDGE_FORMS}")))?;
        Bridge::parse(text).map_err(fail)
    }
}

/// An in-memory Kubernetes API server for end-to-end tests.
#[derive(Parser)]
#[command(name = "kube-standin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve on 127.0.0.1 until killed.
    Serve {
        /// Port to bind; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// A directory (searched recursively) or file of CustomResourceDefinitions; repeatable.
        #[arg(long = "crds")]
        crds: Vec<PathBuf>,
        /// A YAML file of objects to seed; repeatable.
        #[arg(long = "seed")]
        seeds: Vec<PathBuf>,
        /// Make objects ready after this delay, as their operators would, and run the Deployment,
        /// StatefulSet, Job and Argo CD controllers (e.g. 500ms, 2s).
        #[arg(long, value_parser = kube_standin::util::parse_duration)]
        simulate_ready: Option<Duration>,
        /// The Kubernetes OpenAPI v2 document (swagger.json) to serve `/openapi/v2` and `/openapi/v3` from;
        /// default: shared/reference/k8s-openapi-v2-1.36.json beside the repository, if present.
        #[arg(long)]
        openapi: Option<PathBuf>,
        /// Write a kubeconfig for the server to this file.
        #[arg(long)]
        kubeconfig_out: Option<PathBuf>,
        /// The Kubernetes .proto files for protobuf request bodies (default: shared/reference/k8s-protos
        /// beside the repository).
        #[arg(long)]
        protos: Option<PathBuf>,
        /// Refuse VERB on RESOURCE (plural, plural/sub, plural.group or *), optionally only in namespace
        /// NS, with 403 and in access reviews; repeatable (e.g. get:secrets, create:deployments:staging).
        #[arg(long = "deny", value_name = "VERB:RESOURCE[:NS]", value_parser = kube_standin::authz::Denial::parse)]
        denials: Vec<kube_standin::authz::Denial>,
        /// The sealed-secrets controller's key (PEM RSA private key, optionally followed by its certificate);
        /// repeatable, the last is active. Without it `--simulate-ready` makes a 2048-bit key on first use.
        #[arg(long = "sealing-key", value_name = "FILE")]
        sealing_keys: Vec<PathBuf>,
        /// Serve a git repository to the Argo CD controller: Applications whose repoURL is REPO_URL are
        /// rendered from DIR with real helm and applied, as Argo CD does; repeatable. Needs
        /// --simulate-ready.
        #[arg(long = "argocd", value_name = "REPO_URL=DIR", value_parser = kube_standin::controllers::argocd_repo::ServedRepo::parse, requires = "simulate_ready")]
        argocd_repos: Vec<kube_standin::controllers::argocd_repo::ServedRepo>,
        /// Fetch charts of upstream repository FROM (an http(s)/oci URL, or * for every one) from TO when
        /// the Argo CD repo-server builds chart dependencies; repeatable.
        #[arg(long = "chart-mirror", value_name = "FROM=TO", value_parser = kube_standin::controllers::argocd_repo::ChartMirror::parse)]
        chart_mirrors: Vec<kube_standin::controllers::argocd_repo::ChartMirror>,
        /// The helm binary the Argo CD repo-server runs.
        #[arg(long, value_name = "PATH", default_value = "helm")]
        helm: PathBuf,
        /// Point the pods the operator simulation creates at a real local server, so port-forwards reach
        /// it; repeatable, needs --simulate-ready. `postgres=[USER@]HOST:PORT[,STANDBY:PORT...]`: CloudNativePG instance
        /// pods, port 5432; the simulated operator also runs initdb there as USER (default postgres, a
        /// superuser the server trusts): the owner role with the password of NAME-app (or
        /// bootstrap.initdb.secret), its database, and spec.managed.roles. `redis=HOST:PORT[,HOST:PORT...]`:
        /// redis-operator data pods (pod i gets address i mod n), port 6379, whose status.podIP becomes HOST (the password stays the
        /// one in the user's Secret). `redis-sentinel=HOST:PORT`: Sentinel pods (RedisSentinel X-sentinel-*,
        /// embedded NAME-s-*), port 26379. `rabbitmq=USER@HOST:PORT`: RabbitMQ server pods, port 5672, with
        /// `NAME-default-user` holding USER and the password from $KUBE_STANDIN_RABBITMQ_PASSWORD
        /// (`rabbitmq=USER:PASSWORD@HOST:PORT` also works but puts the password in argv, visible to
        /// other users of the machine). `rabbitmq-management=HOST:PORT`: port 15672 of those pods.
        #[arg(
            long = "bridge",
            value_name = "SERVICE=ADDRESS",
            value_parser = BridgeParser,
            requires = "simulate_ready"
        )]
        bridges: Vec<Bridge>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve {
        port,
        crds,
        seeds,
        simulate_ready,
        openapi,
        kubeconfig_out,
        protos,
        denials,
        sealing_keys,
        argocd_repos,
        chart_mirrors,
        helm,
        bridges,
    } = Cli::parse().command;
    let mut builder = StandIn::builder().port(port);
    for c in crds {
        builder = if c.is_dir() {
            builder.crd_dir(c)
        } else {
            builder.crd_file(c)
        };
    }
    for s in seeds {
        builder = builder.seed_file(s);
    }
    if let Some(path) = openapi {
        builder = builder.openapi_file(path);
    }
    if let Some(dir) = protos {
        builder = builder.protos_dir(dir);
    }
    for key in sealing_keys {
        builder = builder.sealing_key(key);
    }
    for denial in denials {
        builder = builder.denial(denial);
    }
    for repo in argocd_repos {
        builder = builder.argocd_repo(repo);
    }
    for mirror in chart_mirrors {
        builder = builder.chart_mirror(mirror);
    }
    builder = builder.helm_binary(helm);
    for bridge in bridges {
        builder = builder.bridge(bridge);
    }
    if let Some(delay) = simulate_ready {
        builder = builder.simulate_ready(delay);
    }
    let api = builder.start().await.context("starting kube-standin")?;
    if let Some(path) = kubeconfig_out {
        std::fs::write(&path, api.kubeconfig_yaml())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{}", api.url());
    eprintln!(
        "kube-standin serving {} (faults: POST {}/_standin/faults)",
        api.url(),
        api.url()
    );
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

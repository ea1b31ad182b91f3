//! The command line of `kubectl duli db`: clap types only; `main.rs` turns them into library options.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shared::cli::{ClusterArgs, CommonArgs, CompletionShell};
use shared::db::Service;

fn timeout(text: &str) -> Result<Duration, String> {
    shared::db::parse_duration(text)
}

/// Status, connect and credentials for the data services of a duli environment.
///
/// Exit codes: 0 healthy / done, 1 a service is unhealthy (status), 2 error; `connect` exits with the
/// client's code.
#[derive(Debug, Parser)]
#[command(name = "kubectl-duli-db", bin_name = "kubectl duli db", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Readiness and live health of PostgreSQL, Redis (+ Sentinel) and RabbitMQ, one table per environment.
    Status(StatusArgs),
    /// Open psql / redis-cli (or forward RabbitMQ's AMQP and management ports) through a port-forward.
    Connect(ConnectArgs),
    /// Host, port, user, database and the Secret they come from; the password only with --show.
    Creds(CredsArgs),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The environment (default: all of them).
    #[arg(conflicts_with = "all")]
    pub env: Option<String>,
    /// All environments.
    #[arg(long)]
    pub all: bool,
    /// Skip the live protocol checks (API reads only).
    #[arg(long)]
    pub no_live: bool,
    /// Deadline for the API reads and for each live check (10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = timeout)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The environment.
    pub env: String,
    /// The service.
    #[arg(value_enum, default_value_t = Service::Postgres)]
    pub service: Service,
    /// PostgreSQL: connect to the replicas (database-ro) instead of the primary.
    #[arg(long)]
    pub read_only: bool,
    /// Local port of the forward (default: a free port).
    #[arg(long, value_name = "PORT")]
    pub local_port: Option<u16>,
    /// Only keep the port-forward open and print the endpoint, until Ctrl-C (for GUI tools).
    #[arg(long)]
    pub port_forward_only: bool,
    /// Use the environment's external endpoint instead of a port-forward.
    #[arg(long)]
    pub external: bool,
    /// Print the user and password (port-forward-only, rabbitmq).
    #[arg(long)]
    pub show_credentials: bool,
    /// Deadline for the API reads before the client starts.
    #[arg(long, default_value = "10s", value_parser = timeout)]
    pub timeout: Duration,
    /// Arguments for psql / redis-cli, after `--`.
    #[arg(last = true, value_name = "CLIENT_ARGS")]
    pub client_args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct CredsArgs {
    /// The environment.
    pub env: String,
    /// One service (default: all three).
    #[arg(value_enum)]
    pub service: Option<Service>,
    /// Include the passwords (asks first in production unless --yes).
    #[arg(long)]
    pub show: bool,
    /// Deadline for the API reads.
    #[arg(long, default_value = "10s", value_parser = timeout)]
    pub timeout: Duration,
}

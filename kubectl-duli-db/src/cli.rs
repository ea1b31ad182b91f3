//! The command line of `kubectl duli db`. The subcommands' flags are derived directly on the options the
//! commands take ([`StatusOptions`], [`ConnectOptions`], [`CredsOptions`]): a flag is added in one place.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use shared::cli::{CompletionShell, GlobalArgs};
use shared::duration::parse_duration;
use shared::output::OutputFormat;

use crate::catalog::Service;

/// How much later than `--timeout` the runner ends a command (see [`Cli::name_and_deadline`]).
pub const DEADLINE_SLACK: Duration = Duration::from_millis(500);

/// Status, connect and credentials for the data services of a duli environment.
///
/// Exit codes: 0 healthy / done, 1 a service is unhealthy (status), 2 error; `connect` exits with the
/// client's code.
#[derive(Debug, Parser)]
#[command(name = "kubectl-duli-db", bin_name = "kubectl duli db", version, about)]
pub struct Cli {
    /// `--kubeconfig`, `--context`, `-o`, `-v`, `--yes`, `--repo`.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
    /// `-o env` was given (creds only): `export` lines instead of the shared `-o` formats.
    #[arg(skip)]
    pub env_output: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Readiness and live health of PostgreSQL, Redis (+ Sentinel) and RabbitMQ, one table per environment.
    Status(StatusOptions),
    /// Open psql / redis-cli (or forward RabbitMQ's AMQP and management ports) through a port-forward.
    Connect(ConnectOptions),
    /// Host, port, user, database and the Secret they come from; the password only with --show.
    Creds(CredsOptions),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

/// What `status` was asked to do.
#[derive(Debug, Clone, Args)]
pub struct StatusOptions {
    /// The environment (default: all of them).
    #[arg(conflicts_with = "all")]
    pub env: Option<String>,
    /// All environments.
    #[arg(long)]
    pub all: bool,
    /// Skip the live protocol checks (API reads only).
    #[arg(long)]
    pub no_live: bool,
    /// Deadline of the whole command: the API reads, then the live checks in what is left (10s, 500ms, 1m);
    /// with `--watch`, of each round.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Keep watching until Ctrl-C: redrawn in place on a terminal, else one JSON line per change.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// With `--watch`, the pause between rounds (5s, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_duration, requires = "watch")]
    pub interval: Duration,
}

/// What `connect` was asked to do (checked by [`ConnectOptions::validate`]).
#[derive(Debug, Clone, Args)]
pub struct ConnectOptions {
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
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Arguments for psql / redis-cli, after `--`.
    #[arg(last = true, value_name = "CLIENT_ARGS")]
    pub client_args: Vec<OsString>,
}

/// What `creds` was asked to do.
#[derive(Debug, Clone, Args)]
pub struct CredsOptions {
    /// The environment.
    pub env: String,
    /// One service (default: all three).
    #[arg(value_enum)]
    pub service: Option<Service>,
    /// Include the passwords (asks first in production unless --yes).
    #[arg(long)]
    pub show: bool,
    /// Deadline for the API reads.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl Cli {
    /// The clap command, with `-o env` (creds only) accepted on top of the shared `-o` values.
    pub fn command_with_env_output() -> clap::Command {
        Cli::command().mut_arg("output", |arg| {
            arg.value_parser(
                PossibleValuesParser::new(["table", "wide", "json", "yaml", "env"]).map(|value| match value
                    .as_str()
                {
                    "wide" => OutputFormat::Wide,
                    "json" => OutputFormat::Json,
                    "yaml" => OutputFormat::Yaml,
                    _ => OutputFormat::Table,
                }),
            )
            .help(
                "Output format (wide: status with endpoints and live detail; env: `export` lines, for creds)",
            )
        })
    }

    /// What the runner names in messages (`kubectl duli db status`) and the deadline of the whole command:
    /// `--timeout` for status and creds; none for connect, whose client session is as long as the user
    /// wants (its API reads are bounded by `--timeout` inside).
    ///
    /// The runner's deadline is [`DEADLINE_SLACK`] later than `--timeout`, which bounds the API layer: a
    /// server that does not answer is then reported by the call and server that failed, and the runner's
    /// own message is left for what the API layer cannot end (a hanging credential plugin).
    pub fn name_and_deadline(&self) -> (String, Option<Duration>) {
        let (name, timeout) = match &self.command {
            // A watch runs until Ctrl-C; each of its rounds is bounded by --timeout.
            Command::Status(options) if options.watch => ("status", None),
            Command::Status(options) => ("status", Some(options.timeout)),
            Command::Connect(_) => ("connect", None),
            Command::Creds(options) => ("creds", Some(options.timeout)),
            Command::Completion { .. } => ("completion", None),
        };
        (
            format!("kubectl duli db {name}"),
            timeout.map(|timeout| timeout.saturating_add(DEADLINE_SLACK)),
        )
    }

    /// Parse `args` (the program name first); `--help`, `--version` and usage errors are clap errors.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command_with_env_output().try_get_matches_from(args)?;
        let raw_env = |m: &clap::ArgMatches| {
            m.get_raw("output")
                .is_some_and(|mut values| values.next_back().is_some_and(|value| value == OsStr::new("env")))
        };
        let env_output = raw_env(&matches) || matches.subcommand().is_some_and(|(_, sub)| raw_env(sub));
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.env_output = env_output;
        Ok(cli)
    }
}

/// The binary's entry point, given its whole command line (`args[0]` included): completions for
/// `kubectl_complete-duli-db` (`PLUGIN __complete WORDS…`), else parse, run through
/// [`shared::runner::Runner`] (one deadline, signals, cleanups) and return the exit code.
pub fn entry(args: Vec<OsString>) -> std::process::ExitCode {
    if let Some(code) = shared::completion::intercept(&args, Cli::command_with_env_output) {
        return code;
    }
    let cli = Cli::try_parse_args(args).unwrap_or_else(|err| err.exit());
    let (name, deadline) = cli.name_and_deadline();
    shared::runner::Runner::new(name)
        .verbose(cli.global.common.verbose)
        .color(cli.global.common.color)
        .deadline(deadline, "--timeout")
        .run(async move { crate::run(cli, &mut shared::fsio::Stdout::new()).await })
}

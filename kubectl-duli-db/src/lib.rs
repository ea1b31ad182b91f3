//! `kubectl duli db`: status, connect and credentials for an environment's PostgreSQL, Redis and RabbitMQ.
//!
//! Where to start: [`run`] dispatches a parsed command line ([`cli::Cli`]) to the three commands and
//! writes what they print to the writer it is given, so a command runs in-process in a test as it does in
//! the binary. A new flag goes on the options struct in [`cli`] that the command takes.
//!
//! Layout, one concern per module:
//! - [`cli`]: the command line; the subcommands' flags are the commands' options.
//! - [`catalog`]: the three data services as the operators create them — custom resources, Services,
//!   Secrets, pods, ports. The only place those names live.
//! - `fetch`: the concurrent API reads (all services of all environments in one round of requests).
//! - [`status`]: the status model (`-o json|yaml` schema), its evaluation from fetched objects (pure) and
//!   the tables.
//! - `live`: protocol checks (PostgreSQL, Redis + Sentinel, AMQP) against any `host:port`, in practice
//!   the local end of a port-forward.
//! - [`portforward`]: a local listener on 127.0.0.1 bridged to a pod port through the API server.
//! - `secrets`: reading credentials out of the operators' Secrets; passwords are [`Password`]s that never
//!   print.
//! - [`connect`]: `psql` / `redis-cli` / the RabbitMQ management UI through a port-forward.
//! - [`creds`]: host, port, user, database and (on request) password, as a table, document or `export` lines.
//!
//! Depends on `shared` only (environments, cluster access, output, the prod guard, readiness rules).

pub mod catalog;
pub mod cli;
pub mod connect;
pub mod creds;
pub(crate) mod fetch;
pub(crate) mod live;
pub mod portforward;
pub(crate) mod secrets;
pub mod status;

use std::io::Write;

pub use catalog::Service;
pub use secrets::Password;
use shared::api::{ApiClient, ApiError, Call};
use shared::descriptor::EnvironmentSource;
use shared::environment::Environment;
use shared::error::Outcome;
use shared::output::OutputFormat;

use crate::cli::{Cli, Command};
use crate::creds::CredsFormat;

/// Run a parsed command line: everything the command prints goes to `out` (a client that `connect`
/// starts writes to the terminal itself); errors are returned for the caller to report. The result maps to
/// the exit code with [`shared::error::finish`]; the binary runs it under [`shared::runner::Runner`] with
/// [`Cli::name_and_deadline`].
pub async fn run(cli: Cli, out: &mut (impl Write + Send)) -> anyhow::Result<Outcome> {
    if cli.env_output && !matches!(cli.command, Command::Creds(_)) {
        anyhow::bail!("-o env is only for `kubectl duli db creds`; use -o table, json or yaml");
    }
    match cli.command {
        Command::Completion { shell } => {
            shared::cli::print_completion(shell, &<Cli as clap::CommandFactory>::command());
            Ok(Outcome::Clean)
        }
        Command::Status(options) => {
            let source = EnvironmentSource::locate(&cli.global.common)?;
            // Bad input is reported before the cluster is asked, when there is a repository.
            let local = source.local(options.env.as_deref()).transpose()?;
            let cluster = cli.global.cluster.target().connect(Some(options.timeout)).await?;
            let environments = match local {
                Some(environments) => environments,
                None => {
                    let api = ApiClient::new(&cluster, options.timeout);
                    source
                        .from_cluster(&api, &cluster, options.env.as_deref())
                        .await?
                }
            };
            if options.watch {
                let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
                let format = cli.global.common.output;
                return status::watch(&cluster, &environments, &options, format, terminal, out).await;
            }
            let api = ApiClient::new(&cluster, options.timeout);
            status::run(&api, &environments, &options, cli.global.common.output, out).await
        }
        Command::Connect(options) => {
            let source = EnvironmentSource::locate(&cli.global.common)?;
            let local = source.local(Some(&options.env)).transpose()?;
            options.validate()?;
            // No read timeout on this client: it carries the port-forward for an interactive session. The
            // API reads before the client starts are bounded by --timeout all the same.
            let cluster = cli.global.cluster.target().connect(None).await?;
            let api = ApiClient::new(&cluster, options.timeout);
            let env = one(&source, local, &api, &cluster, &options.env).await?;
            Ok(connect::run(&api, &env, &options, cli.global.common.yes, out).await?)
        }
        Command::Creds(options) => {
            let source = EnvironmentSource::locate(&cli.global.common)?;
            let local = source.local(Some(&options.env)).transpose()?;
            let cluster = cli.global.cluster.target().connect(Some(options.timeout)).await?;
            let api = ApiClient::new(&cluster, options.timeout);
            let env = one(&source, local, &api, &cluster, &options.env).await?;
            let report = creds::run(&api, &env, &options, cli.global.common.yes).await?;
            let format = match (cli.env_output, cli.global.common.output) {
                (true, _) => CredsFormat::Env,
                (false, OutputFormat::Table | OutputFormat::Wide) => CredsFormat::Table,
                (false, other) => CredsFormat::Document(other),
            };
            out.write_all(creds::render(&report, format)?.as_bytes())?;
            out.flush()?;
            Ok(Outcome::Clean)
        }
    }
}

/// The environment `name`: from the repository when [`EnvironmentSource::local`] found it there, else
/// from its descriptor in the cluster.
async fn one(
    source: &EnvironmentSource,
    local: Option<Vec<Environment>>,
    api: &ApiClient,
    cluster: &shared::cluster::Cluster,
    name: &str,
) -> Result<Environment, shared::descriptor::DescriptorError> {
    match local.and_then(|mut found| found.pop()) {
        Some(env) => Ok(env),
        None => source.load_one(api, cluster, name).await,
    }
}

/// Errors of the `db` commands. Messages name the resource and say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// An API call failed (the message names the call; never a response body).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A Secret's value could not be decoded (the message names the Secret and key, never the value).
    #[error("{call}: value of key \"{key}\" is not {problem}")]
    SecretValue {
        /// The read that returned it: `get secrets database-app in namespace staging`.
        call: Box<Call>,
        /// The key.
        key: String,
        /// What it is not: `base64`, `a string`.
        problem: &'static str,
    },
    /// An operator's status field has the wrong type or an impossible value.
    #[error(
        "{resource} in namespace `{namespace}` has a malformed status: field `{field}` {problem}; check the operator that manages it"
    )]
    MalformedStatus {
        /// The resource: `Cluster database`.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The field path: `status.instances`.
        field: String,
        /// What is wrong: `is -5, not a count`.
        problem: String,
    },
    /// A resource the command needs does not exist.
    #[error("{what} not found in namespace `{namespace}`: {hint}")]
    NotFound {
        /// The resource.
        what: String,
        /// The namespace.
        namespace: String,
        /// What to check or do.
        hint: String,
    },
    /// A Secret lacks a key.
    #[error("Secret `{secret}` in namespace `{namespace}` has no key `{key}`{hint}")]
    MissingKey {
        /// The Secret.
        secret: String,
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
        /// Extra advice (starts with "; " when present).
        hint: String,
    },
    /// No pod backs a Service.
    #[error(
        "no ready pod behind Service `{service}` in namespace `{namespace}` (selector {selector}); check `kubectl get pods -n {namespace} -l {selector}`"
    )]
    NoPod {
        /// The Service.
        service: String,
        /// The namespace.
        namespace: String,
        /// Its selector as `k=v,…`.
        selector: String,
    },
    /// The port-forward could not start.
    #[error(transparent)]
    PortForward(#[from] portforward::PortForwardError),
    /// A client program is missing.
    #[error(transparent)]
    Tool(#[from] shared::tools::ToolNotFound),
    /// The prod guard refused.
    #[error(transparent)]
    Confirm(#[from] shared::confirm::ConfirmError),
    /// Running a client program failed.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A bad option combination or value.
    #[error("{0}")]
    Usage(String),
    /// Local I/O (temporary files, terminal).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl DbError {
    /// True when the API server could not be reached or did not answer in time (as opposed to answering
    /// with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DbError::Api(err) if err.is_unreachable())
    }
}

/// `text` with control characters (ESC, CR, BEL, C1 controls…) shown as escapes (`\x1b`), so a name or
/// message from the cluster cannot drive the terminal it is printed on. Tables only: `-o json|yaml` escape
/// them already.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match u32::from(c) {
            code if c.is_control() && code < 0x100 => format!("\\x{code:02x}"),
            _ if c.is_control() => c.escape_unicode().to_string(),
            _ => c.to_string(),
        })
        .collect()
}

/// [`printable`] for every cell of a table row.
pub(crate) fn printable_row(cells: Vec<String>) -> Vec<String> {
    cells.iter().map(|cell| printable(cell)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent_to_the_terminal() {
        assert_eq!(printable("database"), "database");
        assert_eq!(printable("evil\u{1b}[31mred\u{7}"), "evil\\x1b[31mred\\x07");
        assert_eq!(printable("a\rb\u{9b}c"), "a\\x0db\\x9bc");
        assert!(!printable("x\u{1b}]0;title\u{7}").chars().any(char::is_control));
    }
}

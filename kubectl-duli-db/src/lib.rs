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
use std::time::Duration;

pub use catalog::Service;
pub use secrets::Password;
use shared::cluster::Cluster;
use shared::environment::Environment;
use shared::error::Outcome;
use shared::output::OutputFormat;

use crate::cli::{Cli, Command};
use crate::creds::CredsFormat;

/// Run a parsed command line: everything the command prints goes to `out` (a client that `connect`
/// starts writes to the terminal itself); errors are returned for the caller to report. The result maps to
/// the exit code with [`shared::error::finish`].
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
            let repo = cli.common.locate_repo()?;
            let environments = match &options.env {
                Some(name) => vec![Environment::load(&repo, name)?],
                None => Environment::load_all(&repo)?,
            };
            let cluster = cli.cluster.target().connect(Some(options.timeout)).await?;
            status::run(&cluster.client, &environments, &options, cli.common.output, out)
                .await
                .map_err(|err| name_the_server(err, &cluster))
        }
        Command::Connect(options) => {
            let env = Environment::load(&cli.common.locate_repo()?, &options.env)?;
            options.validate()?;
            // No read timeout on this client: it carries the port-forward for an interactive session.
            let cluster = cli.cluster.target().connect(None).await?;
            connect::run(&cluster.client, &env, &options, cli.common.yes, out)
                .await
                .map_err(|err| name_the_server(err.into(), &cluster))
        }
        Command::Creds(options) => {
            let env = Environment::load(&cli.common.locate_repo()?, &options.env)?;
            let cluster = cli.cluster.target().connect(Some(options.timeout)).await?;
            let report = creds::run(&cluster.client, &env, &options, cli.common.yes)
                .await
                .map_err(|err| name_the_server(err.into(), &cluster))?;
            let format = match (cli.env_output, cli.common.output) {
                (true, _) => CredsFormat::Env,
                (false, OutputFormat::Table) => CredsFormat::Table,
                (false, other) => CredsFormat::Document(other),
            };
            out.write_all(creds::render(&report, format)?.as_bytes())?;
            out.flush()?;
            Ok(Outcome::Clean)
        }
    }
}

/// When the API server itself could not be reached or did not answer, say which one (the kubeconfig's
/// server address and context are the input to check).
fn name_the_server(err: anyhow::Error, cluster: &Cluster) -> anyhow::Error {
    let unreachable = err.chain().any(|cause| {
        cause
            .downcast_ref::<DbError>()
            .is_some_and(DbError::is_unreachable)
    });
    if !unreachable {
        return err;
    }
    anyhow::anyhow!(
        "{} [API server {}, context `{}`]",
        shared::error::message(&err),
        cluster.server.trim_end_matches('/'),
        cluster.context
    )
}

/// Errors of the `db` commands. Messages name the resource and say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// An API request failed for another reason than "not found".
    #[error(
        "cannot read {what} in namespace `{namespace}`: {}",
        shared::cluster::describe_api_error(error)
    )]
    Api {
        /// The resource, e.g. `clusters.postgresql.cnpg.io/database`.
        what: String,
        /// The namespace.
        namespace: String,
        /// The client error (described in the message, not chained: its own text repeats itself).
        error: kube::Error,
    },
    /// The API server did not answer in time.
    #[error(
        "the API server did not answer within {0:?}: it is unreachable, overloaded or throttling requests (raise --timeout or check the cluster)"
    )]
    ApiTimeout(Duration),
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
    /// True for a request the client itself gave up on because the server did not answer in time.
    fn is_transport_timeout(&self) -> bool {
        match self {
            DbError::Api { error, .. } if !matches!(error, kube::Error::Api(_)) => {
                shared::cluster::innermost_cause(error)
                    .to_ascii_lowercase()
                    .contains("timed out")
            }
            _ => false,
        }
    }

    /// True when the API server could not be reached or did not answer in time (as opposed to answering
    /// with an error).
    pub fn is_unreachable(&self) -> bool {
        match self {
            DbError::ApiTimeout(_) => true,
            DbError::Api { error, .. } => !matches!(error, kube::Error::Api(_)),
            _ => false,
        }
    }
}

/// Run an API-bound future under a deadline; a missed one is [`DbError::ApiTimeout`]. The client's own
/// per-request timeout is the same length and may fire first: that is the same event and gets the same
/// message, not a second wording chosen by a race between two timers.
pub async fn within<T>(
    timeout: Duration,
    future: impl std::future::Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    match tokio::time::timeout(timeout, future).await {
        Err(_) => Err(DbError::ApiTimeout(timeout)),
        Ok(Err(err)) if err.is_transport_timeout() => Err(DbError::ApiTimeout(timeout)),
        Ok(result) => result,
    }
}

/// Parse a duration like kubectl's `--timeout`: `10s`, `500ms`, `2m`, `1h`, or plain seconds (`10`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{text}` has unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("`{text}` must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
    }

    fn api_error(error: kube::Error) -> DbError {
        DbError::Api {
            what: "statefulsets".into(),
            namespace: "staging".into(),
            error,
        }
    }

    #[tokio::test]
    async fn the_clients_own_timeout_reads_like_the_deadline() {
        let deadline = Duration::from_secs(2);
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let err = within(deadline, async {
            Err::<(), _>(api_error(kube::Error::Service(Box::new(timed_out))))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, DbError::ApiTimeout(d) if d == deadline), "{err}");
        assert!(err.to_string().contains("within 2s") && err.to_string().contains("raise --timeout"));

        // Any other failure keeps its own message.
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err = within(deadline, async {
            Err::<(), _>(api_error(kube::Error::Service(Box::new(refused))))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, DbError::Api { .. }), "{err}");
    }
}

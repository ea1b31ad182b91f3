//! The command line: the flags of every subcommand, and the one place that runs a parsed command.
//!
//! The option structs the subcommands take (`UpOptions`, `PlanOptions`, `StatusOptions`,
//! `DownOptions`) derive clap's `Args` themselves, next to the shared [`ClusterArgs`]/[`CommonArgs`], so
//! `kubectl duli env` takes kubectl's flags like every duli plugin.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::down::DownOptions;
use crate::plan::PlanOptions;
use crate::status::StatusOptions;
use crate::up::UpOptions;
use crate::{Context, EnvError, down, list, log, plan, status, up};
use shared::cli::{ClusterArgs, CommonArgs, CompletionShell};
use shared::error::Outcome;
use shared::output::OutputFormat;

/// Bootstrap and converge a duli environment (staging, prod).
#[derive(Debug, Parser)]
#[command(name = "kubectl-duli-env", bin_name = "kubectl duli env", version, about)]
pub struct Cli {
    /// `--kubeconfig`, `--context`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `-o`, `-v`, `--yes`, `--repo`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Converge ENV: preflight → platform → namespaces → secrets → gitops → wait → summary.
    ///
    /// Idempotent (a second run creates and changes nothing) and resumable (re-run after an interruption).
    /// Exit codes: 0 ready, 1 a component did not become ready (its message is printed), 2 error.
    Up(UpOptions),
    /// Show what `up ENV` would change: server-side dry run and diff per component, platform charts.
    ///
    /// Exit codes: 0 nothing would change, 1 something would change, 2 error.
    Plan(PlanOptions),
    /// One table per component of ENV: Application sync/health, its objects' readiness, messages, ages.
    ///
    /// Exit codes: 0 all ready, 1 something is not ready, 2 error.
    Status(StatusOptions),
    /// Remove ENV's Applications and instances (reverse wave order), then its namespace.
    ///
    /// Never touches the other environment; the shared operators stay unless --include-platform. prod asks
    /// for its name to be typed, or --yes.
    Down(DownOptions),
    /// The environments with namespace, tier, and whether each is up.
    List,
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

/// Run a parsed command line: a completion script, or an env command on its own runtime.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Command::Completion { shell } = cli.command {
        shared::cli::print_completion(shell, &Cli::command());
        return Ok(Outcome::Clean);
    }
    tokio::runtime::Runtime::new()?.block_on(dispatch(cli))
}

impl Command {
    /// The environment the command is about (`None` for `list` and `completion`).
    fn env(&self) -> Option<&str> {
        match self {
            Command::Up(opts) => Some(&opts.env),
            Command::Plan(opts) => Some(&opts.env),
            Command::Status(opts) => Some(&opts.env),
            Command::Down(opts) => Some(&opts.env),
            Command::List | Command::Completion { .. } => None,
        }
    }

    /// `--timeout`, for the commands that take one.
    fn timeout(&self) -> Option<Duration> {
        match self {
            Command::Up(opts) => Some(opts.timeout),
            Command::Status(opts) => Some(opts.timeout),
            Command::Down(opts) => Some(opts.timeout),
            _ => None,
        }
    }

    /// The command's name and environment, for the log file; `None` for commands that change nothing.
    fn logged(&self) -> Option<(&'static str, &str)> {
        match self {
            Command::Up(opts) if !opts.dry_run => Some(("up", &opts.env)),
            Command::Down(opts) => Some(("down", &opts.env)),
            _ => None,
        }
    }
}

/// Set up logging, run the command, print the log file's path last.
async fn dispatch(command: Cli) -> anyhow::Result<Outcome> {
    let mut log_file = command
        .command
        .logged()
        .and_then(|(name, env)| log::log_path(name, Some(env)));
    if let Err(err) = log::init(command.common.verbose, log_file.as_deref()) {
        eprintln!(
            "warning: no log file ({}): {err}",
            log_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        log_file = None;
        let _ = log::init(command.common.verbose, None);
    }
    if let Some(path) = &log_file {
        tracing::debug!("kubectl duli env {:?}", command.command);
        tracing::debug!("log file {}", path.display());
    }
    let result = tokio::select! {
        result = execute(&command, log_file.clone()) => result,
        () = interrupted() => {
            // Dropping `execute` kills a running helm (kill_on_drop); what was applied stays applied, and
            // every phase converges from there.
            let message = match command.command.logged() {
                Some((name, env)) => format!(
                    "interrupted: `kubectl duli env {name} {env}` stopped before it finished; what it changed so \
                     far stays, run the same command again to converge"
                ),
                None => "interrupted".to_string(),
            };
            tracing::error!(target: "duli::logfile", "{message}");
            eprintln!("error: {message}");
            Ok(Outcome::Child(EXIT_INTERRUPTED))
        }
    };
    if let Err(err) = &result {
        tracing::error!(target: "duli::logfile", "{err:#}");
    }
    if let Some(path) = &log_file {
        eprintln!("log: {}", path.display());
    }
    result
}

/// Exit code after Ctrl-C (SIGINT): 128 + 2, as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Resolves on the first Ctrl-C (SIGINT); never, when the handler cannot be installed.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How long the first request may take before the API server counts as unreachable (at most `--timeout`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

async fn context(command: &Cli) -> Result<Context, EnvError> {
    let repo = command.common.locate_repo()?;
    // Bad input is reported before the cluster is asked anything.
    if let Some(env) = command.command.env() {
        crate::load_env(&repo, env)?;
    }
    let target = command.cluster.target();
    let cluster = target.connect(None).await?;
    let limit = command
        .command
        .timeout()
        .map_or(PROBE_TIMEOUT, |t| t.min(PROBE_TIMEOUT));
    probe(&cluster, limit).await?;
    Ok(Context {
        repo,
        target,
        cluster,
    })
}

/// Ask the API server for its version, retrying refused connections and server errors until `limit`: a
/// server that is down or never answers fails here, in one sentence, instead of hanging a later call.
async fn probe(cluster: &shared::cluster::Cluster, limit: Duration) -> Result<(), EnvError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut delay = Duration::from_millis(100);
    let mut last: Option<kube::Error> = None;
    let unreachable = |what: String| EnvError::Unreachable {
        server: cluster.server.clone(),
        context: cluster.context.clone(),
        what,
    };
    loop {
        match tokio::time::timeout_at(deadline, cluster.client.apiserver_version()).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(err)) if crate::api::is_transient(&err) => {
                tracing::debug!("probing {}: {err}", cluster.server);
                last = Some(err);
                if tokio::time::Instant::now() + delay >= deadline {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Ok(Err(err)) => return Err(unreachable(shared::cluster::describe_api_error(&err))),
            Err(_) => break,
        }
    }
    Err(unreachable(match last {
        Some(err) => shared::cluster::describe_api_error(&err),
        None => format!(
            "the API server did not answer within {}; check the cluster is up and reachable (kubectl cluster-info)",
            humantime(limit)
        ),
    }))
}

fn humantime(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

async fn execute(command: &Cli, log_file: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let output = command.common.output;
    let ctx = context(command).await?;
    match &command.command {
        Command::Up(opts) if opts.dry_run => {
            let plan_opts = PlanOptions {
                env: opts.env.clone(),
                platform_file: opts.platform_file.clone(),
            };
            print_plan(&ctx, &plan_opts, output).await
        }
        Command::Up(opts) => Ok(up::up(&ctx, opts, output, log_file).await?),
        Command::Plan(opts) => print_plan(&ctx, opts, output).await,
        Command::Status(opts) => status::status(&ctx, opts).await?.print(output),
        Command::Down(opts) => {
            down::down(&ctx, opts, command.common.yes).await?.print(output)?;
            Ok(Outcome::Clean)
        }
        Command::List => {
            list::print(&list::list(&ctx).await?, output)?;
            Ok(Outcome::Clean)
        }
        Command::Completion { .. } => unreachable!("`run` prints completions without a cluster"),
    }
}

async fn print_plan(ctx: &Context, opts: &PlanOptions, output: OutputFormat) -> anyhow::Result<Outcome> {
    let report = plan::plan(ctx, opts).await?;
    report.print(output)?;
    Ok(if report.changes {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

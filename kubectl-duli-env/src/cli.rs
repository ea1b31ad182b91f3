//! The command line: the flags of every subcommand, and the one place that runs a parsed command.
//!
//! The option structs the subcommands take (`UpOptions`, `PlanOptions`, `StatusOptions`,
//! `DownOptions`) derive clap's `Args` themselves, next to the shared [`GlobalArgs`], so
//! `kubectl duli env` takes kubectl's flags like every duli plugin.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::down::DownOptions;
use crate::plan::PlanOptions;
use crate::status::StatusOptions;
use crate::up::UpOptions;
use crate::{Context, EnvError, down, list, log, plan, status, up};
use shared::api::{ApiClient, Call};
use shared::cli::{CompletionShell, GlobalArgs};
use shared::cluster::{Cluster, ClusterTarget};
use shared::error::Outcome;
use shared::fsio::Stdout;
use shared::output::OutputFormat;
use shared::runner::{self, Runner};

/// Bootstrap and converge a duli environment (staging, prod).
#[derive(Debug, Parser)]
#[command(name = "kubectl-duli-env", bin_name = "kubectl duli env", version, about)]
pub struct Cli {
    /// `--kubeconfig`, `--context`, `-o`, `-v`, `--yes`, `--repo`.
    #[command(flatten)]
    pub global: GlobalArgs,
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
    /// Show what `up ENV` would change: server-side dry run and diff per component, platform charts, and
    /// what the repository no longer declares (`up --prune` deletes it; `plan` never deletes).
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

/// The binary's entry point, given its whole command line (`args[0]` included): completions for
/// `kubectl_complete-duli-env` (`PLUGIN __complete WORDS…`, kubectl's plugin completion), else parse and
/// [`main`].
pub fn entry(args: Vec<std::ffi::OsString>) -> ExitCode {
    if let Some(code) = shared::completion::intercept(&args, Cli::command) {
        return code;
    }
    main(Cli::parse_from(args))
}

/// Run a parsed command line to its exit code: a completion script, or an env command through
/// [`shared::runner::Runner`] (one deadline, SIGINT/SIGTERM/SIGHUP, cleanups), its output on stdout.
pub fn main(cli: Cli) -> ExitCode {
    if let Command::Completion { shell } = cli.command {
        shared::cli::print_completion(shell, &Cli::command());
        return ExitCode::SUCCESS;
    }
    let title = match cli.command.env() {
        Some(env) => format!("kubectl duli env {} {env}", cli.command.name()),
        None => format!("kubectl duli env {}", cli.command.name()),
    };
    // The command's own deadline (`--timeout`) comes first and says what it waited for; the runner's, a
    // little later, is the backstop for what cannot be cancelled cooperatively (an exec credential plugin).
    Runner::new(title)
        .color(cli.global.common.color)
        .logging_by_command()
        .deadline(cli.command.timeout(), "--timeout")
        .margin(DEADLINE_MARGIN)
        .run(async move { run(&cli, &mut Stdout::new()).await })
}

/// How long after `--timeout` the runner ends a command that did not end itself.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

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

    /// The subcommand's name.
    fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Plan(_) => "plan",
            Command::Status(_) => "status",
            Command::Down(_) => "down",
            Command::List => "list",
            Command::Completion { .. } => "completion",
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

/// Set up logging, run the command with its output to `out`, print the log file's path last (also when the
/// command is stopped by a signal or its deadline).
pub async fn run(command: &Cli, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut log_file = command
        .command
        .logged()
        .and_then(|(name, env)| log::log_path(name, Some(env)));
    if let Err(err) = log::init(command.global.common.verbose, log_file.as_deref()) {
        eprintln!(
            "warning: no log file ({}): {err}",
            log_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        log_file = None;
        let _ = log::init(command.global.common.verbose, None);
    }
    if let Some(path) = &log_file {
        tracing::debug!("kubectl duli env {:?}", command.command);
        tracing::debug!("log file {}", path.display());
    }
    if command.command.logged().is_some() {
        // Dropping the command kills a running helm (kill_on_drop, and its process group on exit); what was
        // applied stays applied, and every phase converges from there.
        runner::set_rerun_hint(Some(
            "what it changed so far stays, run the same command again to converge".into(),
        ));
    }
    // Held outside this future, so that a signal or the deadline (which drop it) still names the log.
    if let Some(path) = log_file.clone() {
        *lock(&LOG_LINE) = Some(runner::on_exit(move || {
            tracing::error!(target: "duli::logfile", "stopped before it finished");
            eprintln!("log: {}", path.display());
        }));
    }
    let result = execute(command, log_file.clone(), out).await;
    if let Err(err) = &result {
        tracing::error!(target: "duli::logfile", "{err:#}");
    }
    if let Some(guard) = lock(&LOG_LINE).take() {
        drop(guard);
        if let Some(path) = &log_file {
            eprintln!("log: {}", path.display());
        }
    }
    result
}

/// The cleanup that names the log file when the command is stopped before it returns.
static LOG_LINE: Mutex<Option<runner::Cleanup>> = Mutex::new(None);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long the first request may take before the API server counts as unreachable (at most `--timeout`).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A command without `--timeout` (plan, list) has no deadline of its own; its calls still end, each
/// bounded by the API layer's per-request timeout and retries.
const NO_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 86_400);

async fn context(command: &Cli) -> Result<Context, EnvError> {
    let repo = command.global.common.locate_repo()?;
    // Bad input is reported before the cluster is asked anything.
    if let Some(env) = command.command.env() {
        crate::load_env(&repo, env)?;
    }
    let (target, cluster, api) = connect(command).await?;
    Ok(Context {
        repo,
        target,
        cluster,
        api,
    })
}

/// Connect to the selected cluster and check that it answers.
async fn connect(command: &Cli) -> Result<(ClusterTarget, Cluster, ApiClient), EnvError> {
    let target = command.global.cluster.target();
    let cluster = target.connect(None).await?;
    let timeout = command.command.timeout();
    // A server that is down or never answers fails here, in one sentence, instead of hanging a later call.
    let probe_limit = timeout.map_or(PROBE_TIMEOUT, |t| t.min(PROBE_TIMEOUT));
    let probe = ApiClient::new(&cluster, probe_limit);
    probe
        .call(&Call::raw(&http::Method::GET, "/version"), || {
            cluster.client.apiserver_version()
        })
        .await?;
    let api = ApiClient::new(&cluster, timeout.unwrap_or(NO_TIMEOUT));
    Ok((target, cluster, api))
}

async fn execute(command: &Cli, log_file: Option<PathBuf>, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let output = command.global.common.output;
    // `status` and `list` also work without a repository, from the descriptors `up` published.
    if matches!(command.command, Command::Status(_) | Command::List)
        && let Some(source) = crate::descriptor::source_without_repo(&command.global.common)?
    {
        let (_, cluster, api) = connect(command).await?;
        return match &command.command {
            Command::Status(opts) => crate::descriptor::status(&source, &api, &cluster, opts)
                .await?
                .print(output, out),
            _ => {
                list::print(
                    &crate::descriptor::list(&source, &api, &cluster).await?,
                    output,
                    out,
                )?;
                Ok(Outcome::Clean)
            }
        };
    }
    let ctx = context(command).await?;
    // Commands that change the environment take its lock (held until they return or the process ends).
    let _lock = match command.command.logged() {
        Some((name, env)) => crate::lock::acquire(name, env, &ctx.cluster.context).map_err(EnvError::from)?,
        None => None,
    };
    match &command.command {
        // With --prune too: plan lists the deletions.
        Command::Up(opts) if opts.dry_run => {
            let plan_opts = PlanOptions {
                env: opts.env.clone(),
                platform_file: opts.platform_file.clone(),
                chart_mirrors: opts.chart_mirrors.clone(),
            };
            print_plan(&ctx, &plan_opts, output, out).await
        }
        Command::Up(opts) => Ok(up::up(&ctx, opts, command.global.common.yes, output, log_file, out).await?),
        Command::Plan(opts) => print_plan(&ctx, opts, output, out).await,
        Command::Status(opts) => status::status(&ctx, opts).await?.print(output, out),
        Command::Down(opts) => {
            down::down(&ctx, opts, command.global.common.yes)
                .await?
                .print(output, out)?;
            Ok(Outcome::Clean)
        }
        Command::List => {
            list::print(&list::list(&ctx).await?, output, out)?;
            Ok(Outcome::Clean)
        }
        Command::Completion { .. } => unreachable!("`run` prints completions without a cluster"),
    }
}

async fn print_plan(
    ctx: &Context,
    opts: &PlanOptions,
    output: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let report = plan::plan(ctx, opts).await?;
    report.print(output, out)?;
    Ok(if report.changes {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

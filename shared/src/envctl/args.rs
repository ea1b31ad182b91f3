//! The subcommands' flags, and the one place that turns them into option structs and runs a command.
//!
//! The binary flattens [`EnvSubcommand`] next to its own `completion` subcommand and the shared
//! [`ClusterArgs`]/[`CommonArgs`], so `kubectl duli env` takes kubectl's flags like every duli plugin.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::down::DownOptions;
use super::plan::PlanOptions;
use super::status::StatusOptions;
use super::up::UpOptions;
use super::{Context, EnvError, Phase, down, list, log, plan, status, up};
use crate::cli::{ClusterArgs, CommonArgs};
use crate::error::Outcome;

/// The env subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum EnvSubcommand {
    /// Converge ENV: preflight → platform → namespaces → secrets → gitops → wait → summary.
    ///
    /// Idempotent (a second run creates and changes nothing) and resumable (re-run after an interruption).
    /// Exit codes: 0 ready, 1 a component did not become ready (its message is printed), 2 error.
    Up(UpArgs),
    /// Show what `up ENV` would change: server-side dry run and diff per component, platform charts.
    ///
    /// Exit codes: 0 nothing would change, 1 something would change, 2 error.
    Plan(PlanArgs),
    /// One table per component of ENV: Application sync/health, its objects' readiness, messages, ages.
    ///
    /// Exit codes: 0 all ready, 1 something is not ready, 2 error.
    Status(StatusArgs),
    /// Remove ENV's Applications and instances (reverse wave order), then its namespace.
    ///
    /// Never touches the other environment; the shared operators stay unless --include-platform. prod asks
    /// for its name to be typed, or --yes.
    Down(DownArgs),
    /// The environments with namespace, tier, and whether each is up.
    List,
}

/// `up` flags.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// The environment (staging, prod).
    pub env: String,
    /// Run only this phase (repeatable); the summary always prints.
    #[arg(long, value_enum, value_name = "PHASE")]
    pub only: Vec<Phase>,
    /// Change nothing: print what would change (same as `plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for components (and each platform chart) to become ready, e.g. 15m, 90s, 1h.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Take over fields another field manager owns instead of reporting the conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// A platform catalog to use instead of gitops/platform.yml.
    #[arg(long, value_name = "FILE")]
    pub platform_file: Option<PathBuf>,
}

/// `plan` flags.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// The environment.
    pub env: String,
    /// A platform catalog to use instead of gitops/platform.yml.
    #[arg(long, value_name = "FILE")]
    pub platform_file: Option<PathBuf>,
}

/// `status` flags.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The environment.
    pub env: String,
    /// How long the whole command may take (a slow, throttling or unreachable API server), e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `down` flags.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// The environment.
    pub env: String,
    /// Also remove the shared operators and platform charts (refused while another environment exists).
    #[arg(long)]
    pub include_platform: bool,
    /// How long to wait for deletions.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A platform catalog to use instead of gitops/platform.yml.
    #[arg(long, value_name = "FILE")]
    pub platform_file: Option<PathBuf>,
}

/// A parsed `kubectl duli env` invocation.
#[derive(Debug, Clone)]
pub struct EnvCommand {
    /// `--kubeconfig`, `--context`.
    pub cluster: ClusterArgs,
    /// `-o`, `-v`, `--yes`, `--repo`.
    pub common: CommonArgs,
    /// The subcommand.
    pub subcommand: EnvSubcommand,
}

/// Parse a kubectl-style duration: `90s`, `15m`, `1h`, `1h30m`, `500ms`, or bare seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let zero = || format!("`{text}`: the timeout must be greater than zero");
    if let Ok(seconds) = text.parse::<u64>() {
        return if seconds == 0 {
            Err(zero())
        } else {
            Ok(Duration::from_secs(seconds))
        };
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            "ms"
        } else {
            match c {
                'h' => "h",
                'm' => "m",
                's' => "s",
                _ => return Err(format!("`{text}` is not a duration like 90s, 15m or 1h30m")),
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration like 90s, 15m or 1h30m"))?;
        number.clear();
        any = true;
        total += Duration::from_secs_f64(match unit {
            "h" => value * 3600.0,
            "m" => value * 60.0,
            "s" => value,
            _ => value / 1000.0,
        });
    }
    if !number.is_empty() || !any {
        return Err(format!("`{text}` is not a duration like 90s, 15m or 1h30m"));
    }
    if total.is_zero() {
        return Err(zero());
    }
    Ok(total)
}

impl EnvSubcommand {
    /// The environment the command is about (`None` for `list`).
    fn env(&self) -> Option<&str> {
        match self {
            EnvSubcommand::Up(args) => Some(&args.env),
            EnvSubcommand::Plan(args) => Some(&args.env),
            EnvSubcommand::Status(args) => Some(&args.env),
            EnvSubcommand::Down(args) => Some(&args.env),
            EnvSubcommand::List => None,
        }
    }

    /// `--timeout`, for the commands that take one.
    fn timeout(&self) -> Option<Duration> {
        match self {
            EnvSubcommand::Up(args) => Some(args.timeout),
            EnvSubcommand::Status(args) => Some(args.timeout),
            EnvSubcommand::Down(args) => Some(args.timeout),
            _ => None,
        }
    }

    /// The command's name and environment, for the log file; `None` for commands that change nothing.
    fn logged(&self) -> Option<(&'static str, &str)> {
        match self {
            EnvSubcommand::Up(args) if !args.dry_run => Some(("up", &args.env)),
            EnvSubcommand::Down(args) => Some(("down", &args.env)),
            _ => None,
        }
    }
}

/// Set up logging, run the command, print the log file's path last.
pub async fn dispatch(command: EnvCommand) -> anyhow::Result<Outcome> {
    let mut log_file = command
        .subcommand
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
        tracing::debug!("kubectl duli env {:?}", command.subcommand);
        tracing::debug!("log file {}", path.display());
    }
    let result = tokio::select! {
        result = execute(&command, log_file.clone()) => result,
        () = interrupted() => {
            // Dropping `execute` kills a running helm (kill_on_drop); what was applied stays applied, and
            // every phase converges from there.
            let message = match command.subcommand.logged() {
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

async fn context(command: &EnvCommand) -> Result<Context, EnvError> {
    let repo = command.common.locate_repo()?;
    // Bad input is reported before the cluster is asked anything.
    if let Some(env) = command.subcommand.env() {
        super::load_env(&repo, env)?;
    }
    let target = command.cluster.target();
    let cluster = target.connect(None).await?;
    let limit = command
        .subcommand
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
async fn probe(cluster: &crate::cluster::Cluster, limit: Duration) -> Result<(), EnvError> {
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
            Ok(Err(err)) if super::api::is_transient(&err) => {
                tracing::debug!("probing {}: {err}", cluster.server);
                last = Some(err);
                if tokio::time::Instant::now() + delay >= deadline {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Ok(Err(err)) => return Err(unreachable(crate::cluster::describe_api_error(&err))),
            Err(_) => break,
        }
    }
    Err(unreachable(match last {
        Some(err) => crate::cluster::describe_api_error(&err),
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

async fn execute(command: &EnvCommand, log_file: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let output = command.common.output;
    let ctx = context(command).await?;
    match &command.subcommand {
        EnvSubcommand::Up(args) if args.dry_run => {
            let opts = PlanOptions {
                env: args.env.clone(),
                platform_file: args.platform_file.clone(),
                output,
            };
            print_plan(&ctx, &opts).await
        }
        EnvSubcommand::Up(args) => {
            let opts = UpOptions {
                env: args.env.clone(),
                only: args.only.clone(),
                timeout: args.timeout,
                force_conflicts: args.force_conflicts,
                platform_file: args.platform_file.clone(),
                output,
                log_file,
            };
            Ok(up::up(&ctx, &opts).await?)
        }
        EnvSubcommand::Plan(args) => {
            let opts = PlanOptions {
                env: args.env.clone(),
                platform_file: args.platform_file.clone(),
                output,
            };
            print_plan(&ctx, &opts).await
        }
        EnvSubcommand::Status(args) => {
            let opts = StatusOptions {
                env: args.env.clone(),
                platform_file: None,
                output,
                timeout: args.timeout,
            };
            status::status(&ctx, &opts).await?.print(output)
        }
        EnvSubcommand::Down(args) => {
            let opts = DownOptions {
                env: args.env.clone(),
                include_platform: args.include_platform,
                yes: command.common.yes,
                timeout: args.timeout,
                platform_file: args.platform_file.clone(),
                output,
            };
            down::down(&ctx, &opts).await?.print(output)?;
            Ok(Outcome::Clean)
        }
        EnvSubcommand::List => {
            list::print(&list::list(&ctx).await?, output)?;
            Ok(Outcome::Clean)
        }
    }
}

async fn print_plan(ctx: &Context, opts: &PlanOptions) -> anyhow::Result<Outcome> {
    let report = plan::plan(ctx, opts).await?;
    report.print(opts.output)?;
    Ok(if report.changes {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("15").is_ok());
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("must be greater than zero")
        );
        assert!(parse_duration("0").unwrap_err().contains("greater than zero"));
    }
}

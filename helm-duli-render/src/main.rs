//! `helm duli-render ENV`: render every chart and ArgoCD Application of an environment and validate them.
//!
//! Thin: parse the command line, call [`shared::render::render`], print. Data (the manifest stream or the
//! diff) goes to stdout; findings and the summary go to stderr. Exit 0 clean, 1 findings or a diff,
//! 2 error.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use shared::cli::CompletionShell;
use shared::error::{Outcome, finish, init_logging};
use shared::render::{RenderOptions, helm::HelmEnv, policy};

/// Render and validate every chart and ArgoCD Application of a duli environment.
///
/// Renders `helm/*` with `values-<ENV>.yml` and `gitops/applications/*.yml.j2` with the environment file,
/// validates custom resources against their CRDs and built-in objects against Kubernetes 1.33, and checks
/// the platform policies. Exit codes: 0 clean, 1 findings or a diff, 2 error.
#[derive(Debug, Parser)]
#[command(
    name = "helm-duli-render",
    bin_name = "helm duli-render",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    /// The environment to render (a file in gitops/environments/, e.g. staging or prod); several render
    /// in one run, sharing helm slots and CRDs.
    #[arg(value_name = "ENV", required_unless_present_any = ["print_helm_env", "list_rules"])]
    envs: Vec<String>,
    /// Render only this chart (repeatable); `applications` selects the ArgoCD Application templates.
    #[arg(long = "chart", value_name = "NAME")]
    charts: Vec<String>,
    /// Extra values file for every chart, applied after values-<ENV>.yml (repeatable).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    values: Vec<PathBuf>,
    /// Set a value for every chart, applied last (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Write DIR/<ENV>/<chart>/<kind>-<name>.yml and DIR/<ENV>/applications/<component>.yml instead of
    /// printing one stream.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Compare with an earlier --out DIR and print a unified diff per changed object (exit 1 on changes).
    #[arg(long, value_name = "DIR")]
    diff: Option<PathBuf>,
    /// Write a JSON report (charts, objects, durations, cache hits, findings, totals).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// CRD directory or file to validate custom resources against (repeatable; default: $DULI_CRDS, a
    /// path list).
    #[arg(long = "crds", value_name = "DIR")]
    crds: Vec<PathBuf>,
    /// Also read the CRDs installed in the current cluster (--kube-context, --kubeconfig).
    #[arg(long)]
    crds_from_cluster: bool,
    /// Skip validation against CRDs and Kubernetes types.
    #[arg(long)]
    no_validate: bool,
    /// Skip a rule (repeatable); --list-rules shows them.
    #[arg(long = "policy-skip", value_name = "RULE")]
    policy_skip: Vec<String>,
    /// Print the rules and exit.
    #[arg(long)]
    list_rules: bool,
    /// Fail on charts whose upstream dependencies are not vendored, instead of reporting them as external.
    #[arg(long)]
    strict_deps: bool,
    /// Render everything, ignoring and not updating the cache.
    #[arg(long)]
    no_cache: bool,
    /// The cache directory (default: the user's cache dir, duli/render).
    #[arg(long, value_name = "DIR", env = "DULI_RENDER_CACHE")]
    cache_dir: Option<PathBuf>,
    /// Charts rendered at once (default: number of cores).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// The repository holding helm/ and gitops/ (default: found by walking up from the current directory).
    #[arg(long, value_name = "DIR", env = "DULI_REPO")]
    repo: Option<PathBuf>,
    /// The kubeconfig context for --crds-from-cluster (as a helm plugin: helm's --kube-context).
    #[arg(long = "kube-context", value_name = "NAME")]
    kube_context: Option<String>,
    /// The kubeconfig file for --crds-from-cluster (as a helm plugin: helm's --kubeconfig).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug); helm's --debug counts as -vv.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print what helm handed over (HELM_NAMESPACE, HELM_KUBECONTEXT, …) as JSON and exit.
    #[arg(long, hide = true)]
    print_helm_env: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a shell completion script.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let helm_env = HelmEnv::from_env();
    init_logging(if helm_env.debug {
        cli.verbose.max(2)
    } else {
        cli.verbose
    });
    finish(run(cli, helm_env))
}

fn run(cli: Cli, helm_env: HelmEnv) -> anyhow::Result<Outcome> {
    if let Some(Command::Completion { shell }) = cli.command {
        shared::cli::print_completion(shell, &Cli::command());
        return Ok(Outcome::Clean);
    }
    if cli.print_helm_env {
        println!("{}", serde_json::to_string_pretty(&helm_env)?);
        return Ok(Outcome::Clean);
    }
    if cli.list_rules {
        for rule in policy::RULES {
            println!("{:<17} {:<8} {}", rule.id, rule.severity, rule.summary);
        }
        return Ok(Outcome::Clean);
    }
    let cwd = std::env::current_dir()?;
    let repo = shared::repo::Repo::locate(cli.repo.as_deref(), &cwd)?;
    let mut envs = cli.envs;
    envs.dedup();
    let mut options = RenderOptions::new(envs[0].clone());
    options.charts = cli.charts;
    options.values = cli.values;
    options.set = cli.set;
    options.out = cli.out;
    options.diff = cli.diff;
    options.report = cli.report;
    options.validate = !cli.no_validate;
    options.crds = if cli.crds.is_empty() {
        shared::render::crds_from_env()
    } else {
        cli.crds
    };
    options.crds_from_cluster = cli.crds_from_cluster;
    options.cluster = shared::cluster::ClusterTarget {
        kubeconfig: cli
            .kubeconfig
            .or_else(|| helm_env.kubeconfig.as_ref().map(PathBuf::from)),
        context: cli.kube_context.or_else(|| helm_env.kube_context.clone()),
    };
    options.policy_skip = cli.policy_skip;
    options.strict_deps = cli.strict_deps;
    options.use_cache = !cli.no_cache;
    options.cache_dir = cli.cache_dir;
    if let Some(jobs) = cli.jobs {
        options.jobs = jobs.max(1);
    }
    options.helm_env = helm_env;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let rendered = runtime.block_on(shared::render::render_many(&repo, &options, &envs));
    // Do not wait for background work (a CRD parse) an error made moot.
    runtime.shutdown_background();
    let rendered = rendered?;

    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for one in &rendered {
        match (&one.diff, &options.out) {
            (Some(diff), _) => stdout.write_all(diff.text.as_bytes())?,
            (None, None) => stdout.write_all(one.stream().as_bytes())?,
            (None, Some(_)) => {}
        }
    }
    stdout.flush()?;
    for one in &rendered {
        eprint!("{}", one.findings_text());
        eprintln!("{}", one.summary());
    }
    Ok(if rendered.iter().all(|one| one.outcome() == Outcome::Clean) {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

//! `helm duli-render ENV`: render every chart of `helm/` and every `gitops/applications/*.yml.j2` of one
//! environment, validate the result, check it against the platform's policies, and write it where a
//! pipeline wants it.
//!
//! Where to start: [`cli::Cli`] is the command line and [`RenderOptions`] the options the pipeline takes
//! (clap parses straight into them); [`run`] executes a parsed command line and writes its output to the
//! writers it is given, so the plugin can run in-process; [`render`] and [`render_many`] are the library
//! entry points other plugins use (`kubectl duli secrets audit`), and [`gitops::render_all`] renders the
//! Application templates alone (`kubectl duli env`).
//!
//! The pipeline ([`render`]):
//! 1. load the environment ([`shared::environment`]) and discover the charts ([`charts`]); charts whose
//!    upstream dependencies are not vendored are reported as external;
//! 2. layer the values ([`values`]) and run `helm template` for every chart concurrently ([`helm`]),
//!    skipping charts whose inputs did not change (`cache`);
//! 3. render the ArgoCD Application templates with the environment's keys as variables ([`gitops`]);
//! 4. split everything into objects ([`manifests`]) and validate them: custom resources against their
//!    CRD ([`crds`], [`schema`]; `--crds`, the cluster, and the CRDs the charts of the render ship),
//!    built-in objects against k8s-openapi (`core`) (`validate`);
//! 5. run the policy rules ([`policy`]), and check our values against the upstream charts vendored in
//!    `charts/` ([`upstream_values`]);
//! 6. print one multi-document stream, or write one file per object ([`output`]), compare with an
//!    earlier render ([`diff`]) and write a JSON report ([`report`]).
//!
//! Several environments can render in one run ([`render_many`]): they share the helm job slots and the
//! parsed CRDs, and nothing is written unless every one of them renders.
//!
//! Errors (bad input, helm failing) are [`RenderError`]s and leave no output behind; findings and diffs
//! are results ([`Rendered::outcome`]).

pub mod charts;
pub mod cli;
pub mod confine;
pub mod crds;
pub mod deps;
pub mod diff;
pub mod formats;
pub mod gitops;
pub mod helm;
pub mod manifests;
pub mod output;
pub mod platform;
pub mod policy;
pub mod report;
pub mod schema;
pub mod upstream_values;
pub mod values;

mod cache;
mod core;
mod findings;
mod pipeline;
mod validate;

use std::io::Write;
use std::path::PathBuf;

use clap::ArgAction;

pub use findings::{Finding, Severity};
pub use pipeline::{APPLICATIONS, Shared, crds_from_env, render, render_many, render_with};
pub use validate::validate_object;

use shared::cluster::ClusterTarget;
use shared::error::Outcome;

/// What to render and how. Parsed straight from the command line (the flags of [`cli::Cli`]);
/// [`RenderOptions::new`] gives the same defaults to callers in code.
///
/// The clap help text of each flag is its `help` attribute; the doc comments say what the field means.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderOptions {
    /// The environment (`gitops/environments/<env>.yml`); the command line names several, see
    /// [`render_many`].
    #[arg(skip)]
    pub env: String,
    /// Render only these charts (`--chart`, repeatable; `applications` selects the Application templates).
    #[arg(
        long = "chart",
        value_name = "NAME",
        help = "Render only this chart (repeatable); `applications` selects the ArgoCD Application templates"
    )]
    pub charts: Vec<String>,
    /// Extra values files, applied after `values-<env>.yml` (`--values`).
    #[arg(
        short = 'f',
        long = "values",
        value_name = "FILE",
        help = "Extra values file for every chart, applied after values-<ENV>.yml (repeatable)"
    )]
    pub values: Vec<PathBuf>,
    /// `--set KEY=VALUE` items, applied last.
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        help = "Set a value for every chart, applied last (repeatable)"
    )]
    pub set: Vec<String>,
    /// Write one file per object under this directory (`--out`).
    #[arg(
        long,
        value_name = "DIR",
        help = "Write DIR/<ENV>/<chart>/<kind>-<name>.yml and DIR/<ENV>/applications/<component>.yml instead of printing one stream"
    )]
    pub out: Option<PathBuf>,
    /// Compare with an earlier `--out` directory (`--diff`).
    #[arg(
        long,
        value_name = "DIR",
        help = "Compare with an earlier --out DIR and print a unified diff per changed object (exit 1 on changes)"
    )]
    pub diff: Option<PathBuf>,
    /// Write a JSON report here (`--report`).
    #[arg(
        long,
        value_name = "FILE",
        help = "Write a JSON report (charts, objects, durations, cache hits, findings, totals)"
    )]
    pub report: Option<PathBuf>,
    /// CRD directories or files (`--crds`; default: `DULI_CRDS`, a path list, see [`crds_from_env`]).
    #[arg(
        long = "crds",
        value_name = "DIR",
        default_values_os_t = crds_from_env(),
        hide_default_value = true,
        help = "CRD directory or file to validate custom resources against (repeatable; default: $DULI_CRDS, a path list)"
    )]
    pub crds: Vec<PathBuf>,
    /// Also read the CRDs installed in the cluster ([`RenderOptions::cluster_target`]).
    #[arg(
        long,
        help = "Also read the CRDs installed in the current cluster (--kube-context, --kubeconfig)"
    )]
    pub crds_from_cluster: bool,
    /// Validate objects (on by default; `--no-validate` turns it off).
    #[arg(
        long = "no-validate",
        action = ArgAction::SetFalse,
        help = "Skip validation against CRDs and Kubernetes types"
    )]
    pub validate: bool,
    /// Rule ids to skip (`--policy-skip`).
    #[arg(
        long = "policy-skip",
        value_name = "RULE",
        help = "Skip a rule (repeatable); --list-rules shows them"
    )]
    pub policy_skip: Vec<String>,
    /// Fail on charts with unvendored dependencies instead of reporting them as external.
    #[arg(
        long,
        help = "Fail on charts whose upstream dependencies are not vendored, instead of reporting them as external"
    )]
    pub strict_deps: bool,
    /// Use the render cache (on by default; `--no-cache` turns it off).
    #[arg(
        long = "no-cache",
        action = ArgAction::SetFalse,
        help = "Render everything, ignoring and not updating the cache"
    )]
    pub use_cache: bool,
    /// The cache directory (default: the user's cache dir).
    #[arg(
        long,
        value_name = "DIR",
        env = "DULI_RENDER_CACHE",
        help = "The cache directory (default: the user's cache dir, duli/render)"
    )]
    pub cache_dir: Option<PathBuf>,
    /// How many charts render at once (at least one).
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        default_value_t = default_jobs(),
        hide_default_value = true,
        value_parser = parse_jobs,
        help = "Charts rendered at once (default: number of cores)"
    )]
    pub jobs: usize,
    /// The kubeconfig context for `--crds-from-cluster`; unset, helm's (`HELM_KUBECONTEXT`).
    #[arg(
        long = "kube-context",
        value_name = "NAME",
        help = "The kubeconfig context for --crds-from-cluster (as a helm plugin: helm's --kube-context)"
    )]
    pub kube_context: Option<String>,
    /// The kubeconfig file for `--crds-from-cluster`; unset, helm's (`KUBECONFIG`).
    #[arg(
        long,
        value_name = "FILE",
        help = "The kubeconfig file for --crds-from-cluster (as a helm plugin: helm's --kubeconfig)"
    )]
    pub kubeconfig: Option<PathBuf>,
    /// Chart repository mirrors `FROM=TO` (`--chart-mirror`, repeatable; FROM may be `*`); above
    /// `DULI_CHART_MIRRORS` and the environment file's `chart_mirrors` (see [`deps::ChartMirrors`]).
    #[arg(
        long = "chart-mirror",
        value_name = "FROM=TO",
        help = "Fetch upstream charts of repository FROM (a URL, or * for every one) from mirror TO (repeatable; also $DULI_CHART_MIRRORS, comma-separated, and chart_mirrors in the environment file)"
    )]
    pub chart_mirrors: Vec<String>,
    /// Never fetch upstream charts: only the chart cache counts (`--offline`).
    #[arg(
        long,
        env = "DULI_RENDER_OFFLINE",
        value_parser = clap::builder::BoolishValueParser::new(),
        help = "Never fetch upstream charts; charts missing from the chart cache are reported as external"
    )]
    pub offline: bool,
    /// Resolve the upstream dependencies of wrapper charts (the command line: always). Library callers
    /// ([`RenderOptions::new`]) leave it off and get the wrappers reported as external.
    #[arg(skip = true)]
    pub upstream: bool,
    /// Bound on fetching one upstream chart.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        value_parser = shared::duration::parse_duration,
        help = "Give up fetching one upstream chart after DURATION"
    )]
    pub fetch_timeout: std::time::Duration,
    /// Also render the platform charts of `gitops/platform.yml` (on by default; `--no-platform`).
    #[arg(
        long = "no-platform",
        action = ArgAction::SetFalse,
        help = "Do not render the platform charts of gitops/platform.yml"
    )]
    pub platform: bool,
    /// The Kubernetes version charts see as `.Capabilities.KubeVersion` (`--kube-version`).
    #[arg(
        long,
        value_name = "VERSION",
        value_parser = parse_kube_version,
        help = "Kubernetes version for .Capabilities.KubeVersion, as helm takes it (e.g. v1.33.0; default: helm's)"
    )]
    pub kube_version: Option<String>,
    /// API versions charts see in `.Capabilities.APIVersions` (`--api-versions`).
    #[arg(
        long = "api-versions",
        short = 'a',
        value_name = "GROUP/VERSION[/KIND]",
        help = "API version for .Capabilities.APIVersions (repeatable), e.g. monitoring.coreos.com/v1"
    )]
    pub api_versions: Vec<String>,
    /// Show Secret values in `--diff` (redacted by default).
    #[arg(
        long,
        requires = "diff",
        help = "Show Secret values in the --diff output (by default each shows as its length, marked where it changed)"
    )]
    pub show_secrets: bool,
    /// What helm handed over in the environment.
    #[arg(skip = helm::HelmEnv::from_env())]
    pub helm_env: helm::HelmEnv,
}

/// `1.33`, `v1.33.0`: what helm's `--kube-version` takes (it fails on anything else, late and per chart).
fn parse_kube_version(value: &str) -> Result<String, String> {
    let digits = value.strip_prefix('v').unwrap_or(value);
    let parts: Vec<&str> = digits.split('.').collect();
    if (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not a Kubernetes version: write MAJOR.MINOR[.PATCH], e.g. v1.33.0"
        ))
    }
}

impl RenderOptions {
    /// helm's flags for [`RenderOptions::kube_version`] and [`RenderOptions::api_versions`].
    pub fn capability_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(version) = &self.kube_version {
            args.extend(["--kube-version".to_string(), version.clone()]);
        }
        for api in &self.api_versions {
            args.extend(["--api-versions".to_string(), api.clone()]);
        }
        args
    }

    /// Defaults for rendering `env`: validate, cache on, one job per core, helm settings from the
    /// process environment.
    pub fn new(env: impl Into<String>) -> Self {
        RenderOptions {
            env: env.into(),
            charts: Vec::new(),
            values: Vec::new(),
            set: Vec::new(),
            out: None,
            diff: None,
            show_secrets: false,
            kube_version: None,
            api_versions: Vec::new(),
            report: None,
            validate: true,
            crds: Vec::new(),
            crds_from_cluster: false,
            policy_skip: Vec::new(),
            strict_deps: false,
            chart_mirrors: Vec::new(),
            // Library callers (`kubectl duli secrets audit`) render what the repository and the chart
            // cache hold, without the network, and leave the platform charts out.
            offline: true,
            upstream: false,
            fetch_timeout: deps::DEFAULT_FETCH_TIMEOUT,
            platform: false,
            use_cache: true,
            cache_dir: None,
            jobs: default_jobs(),
            kube_context: None,
            kubeconfig: None,
            helm_env: helm::HelmEnv::from_env(),
        }
    }

    /// The cluster for `--crds-from-cluster`: `--kubeconfig`/`--kube-context`, else what helm handed over.
    pub fn cluster_target(&self) -> ClusterTarget {
        ClusterTarget {
            kubeconfig: self
                .kubeconfig
                .clone()
                .or_else(|| self.helm_env.kubeconfig.as_ref().map(PathBuf::from)),
            context: self
                .kube_context
                .clone()
                .or_else(|| self.helm_env.kube_context.clone()),
            ..ClusterTarget::default()
        }
    }
}

/// `-j N`: a count, where 0 means one.
fn parse_jobs(value: &str) -> Result<usize, std::num::ParseIntError> {
    value.parse::<usize>().map(|jobs| jobs.max(1))
}

/// Run a parsed command line: render, or `--list-rules`, `--print-helm-env`, `completion`. Data (the
/// manifest stream or the diff, the rules) goes to `out`; findings and the summary go to `err`. Errors are
/// returned for [`shared::error::finish`] to print (exit 2); `completion` writes to the process's stdout.
/// Run it on a multi-threaded tokio runtime (the binary uses [`shared::runner::Runner`]).
pub async fn run(cli: cli::Cli, mut out: impl Write, mut err: impl Write) -> anyhow::Result<Outcome> {
    if let Some(cli::Command::Completion { shell }) = cli.command {
        shared::cli::print_completion(shell, &<cli::Cli as clap::CommandFactory>::command());
        return Ok(Outcome::Clean);
    }
    if let Some(cli::Command::Deps(args)) = &cli.command {
        return update_deps(args, &mut err).await;
    }
    if cli.print_helm_env {
        writeln!(out, "{}", serde_json::to_string_pretty(&cli.render.helm_env)?)?;
        return Ok(Outcome::Clean);
    }
    if cli.list_rules {
        for rule in policy::RULES {
            writeln!(out, "{:<17} {:<8} {}", rule.id, rule.severity, rule.summary)?;
        }
        return Ok(Outcome::Clean);
    }
    let cwd = std::env::current_dir()?;
    let repo = shared::repo::Repo::locate(cli.repo.as_deref(), &cwd)?;
    let mut envs = cli.envs;
    envs.dedup();
    let options = cli.render;

    let rendered = render_many(&repo, &options, &envs).await?;

    if cli.output == formats::OutputFormat::Text {
        for one in &rendered {
            match (&one.diff, &options.out) {
                (Some(diff), _) => out.write_all(diff.text.as_bytes())?,
                (None, None) => out.write_all(one.stream().as_bytes())?,
                (None, Some(_)) => {}
            }
        }
    } else {
        let reports: Vec<&report::Report> = rendered.iter().map(|one| &one.report).collect();
        out.write_all(formats::document(cli.output, &reports).as_bytes())?;
    }
    out.flush()?;
    for one in &rendered {
        if cli.output == formats::OutputFormat::Text {
            write!(err, "{}", one.findings_text())?;
        }
        writeln!(err, "{}", one.summary())?;
    }
    Ok(if rendered.iter().all(|one| one.outcome() == Outcome::Clean) {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

/// `helm duli-render deps [CHART…]`: write Chart.lock of the named (or every) wrapper chart.
async fn update_deps(args: &cli::DepsArgs, err: &mut impl Write) -> anyhow::Result<Outcome> {
    let cwd = std::env::current_dir()?;
    let repo = shared::repo::Repo::locate(args.repo.as_deref(), &cwd)?;
    let all = charts::discover(&repo.charts_dir())?;
    for name in &args.charts {
        if !all.iter().any(|c| &c.name == name) {
            let known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
            return Err(RenderError::UnknownChart {
                name: name.clone(),
                dir: repo.charts_dir(),
                known: known.join(", "),
            }
            .into());
        }
    }
    let mirrors = deps::ChartMirrors::from_flags_env_and_file(
        &args.chart_mirrors,
        &Default::default(),
        std::path::Path::new("(no environment file)"),
    )?;
    let fetcher = deps::Fetcher::new(
        helm::Helm::locate()?,
        mirrors,
        deps::ChartStore::for_cache_dir(args.cache_dir.as_deref()),
        false,
        args.fetch_timeout,
        Default::default(),
    );
    for chart in &all {
        let wanted = if args.charts.is_empty() {
            chart.is_external()
        } else {
            args.charts.contains(&chart.name)
        };
        if !wanted {
            continue;
        }
        let lock = deps::update_lock(chart, &fetcher)
            .await
            .map_err(RenderError::from)?;
        let upstream: Vec<String> = lock
            .dependencies
            .iter()
            .map(|d| format!("{} {}", d.name, d.version))
            .collect();
        writeln!(
            err,
            "{}: wrote {} ({})",
            chart.name,
            chart.dir.join(deps::LOCK_FILE).display(),
            upstream.join(", ")
        )?;
    }
    Ok(Outcome::Clean)
}

/// One job per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Errors that stop a render (exit 2). Each names the chart, file and line where it can.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Unknown or invalid environment.
    #[error(transparent)]
    Environment(#[from] shared::environment::EnvironmentError),
    /// A chart's metadata is broken.
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
    /// `--chart` names no chart.
    #[error("unknown chart `{name}`: charts in {dir} are {known}")]
    UnknownChart {
        /// What was asked for.
        name: String,
        /// The charts directory.
        dir: PathBuf,
        /// The known charts, comma-separated.
        known: String,
    },
    /// `--strict-deps` and a chart with unvendored dependencies.
    #[error(
        "chart `{chart}` depends on {upstream}, which is not vendored in {chart}/charts/ and cannot be resolved: {reason}; give a --chart-mirror, or drop --strict-deps"
    )]
    ExternalDependency {
        /// The chart.
        chart: String,
        /// `name version` of the missing dependencies.
        upstream: String,
        /// Why it was not resolved.
        reason: String,
    },
    /// A chart mirror entry is invalid.
    #[error(transparent)]
    Mirror(#[from] deps::MirrorError),
    /// An upstream dependency cannot be resolved (stale Chart.lock, broken mirror, digest mismatch).
    #[error(transparent)]
    Deps(Box<deps::DepsError>),
    /// `gitops/platform.yml` is unreadable or invalid.
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    /// `--policy-skip` names no rule.
    #[error("unknown rule `{rule}` in --policy-skip: rules are {known}")]
    UnknownRule {
        /// What was asked for.
        rule: String,
        /// The known rule ids.
        known: String,
    },
    /// A values file or `--set` item is broken.
    #[error(transparent)]
    Values(#[from] values::ValuesError),
    /// helm is not installed.
    #[error(transparent)]
    HelmNotFound(#[from] shared::tools::ToolNotFound),
    /// `helm template` failed.
    #[error(transparent)]
    Helm(#[from] helm::HelmError),
    /// A chart rendered YAML that does not parse.
    #[error("chart `{chart}`: {source}")]
    Manifest {
        /// The chart.
        chart: String,
        /// The parse error.
        #[source]
        source: manifests::ManifestError,
    },
    /// An Application template failed.
    #[error(transparent)]
    Gitops(#[from] gitops::GitopsError),
    /// A chart file or Application template is a symlink out of the repository, or a loop.
    #[error(transparent)]
    Symlink(#[from] confine::SymlinkError),
    /// CRDs could not be loaded.
    #[error(transparent)]
    Crds(#[from] crds::CrdError),
    /// `--out` cannot be written.
    #[error(transparent)]
    Output(#[from] output::OutputError),
    /// `--diff` has nothing to compare with.
    #[error("cannot read the earlier render {path} for --diff: {source}")]
    Diff {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--report` cannot be written.
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

impl From<deps::DepsError> for RenderError {
    fn from(err: deps::DepsError) -> Self {
        RenderError::Deps(Box::new(err))
    }
}

/// The result of a render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The report (also what `--report` writes).
    pub report: report::Report,
    /// The objects, grouped by chart (then `applications`), in output order.
    pub groups: Vec<(String, std::sync::Arc<Vec<manifests::Object>>)>,
    /// The files of this render, relative to `DIR/<env>`.
    pub tree: output::Tree,
    /// What `--out` writes to `DIR/<env>`: [`Self::tree`] plus, with `--chart`, the other charts' earlier
    /// files.
    pub full_tree: output::Tree,
    /// The comparison with `--diff DIR`.
    pub diff: Option<diff::TreeDiff>,
    /// Where `--out` wrote the environment's tree.
    pub written: Option<PathBuf>,
}

impl Rendered {
    /// All objects as one multi-document YAML stream.
    pub fn stream(&self) -> String {
        output::stream(&self.groups)
    }

    /// The findings, one block per finding, for stderr.
    pub fn findings_text(&self) -> String {
        self.report
            .findings
            .iter()
            .map(|finding| format!("{finding}\n"))
            .collect()
    }

    /// Exit status: findings or a non-empty diff → [`Outcome::Findings`].
    pub fn outcome(&self) -> Outcome {
        let changed = self.diff.as_ref().is_some_and(|d| !d.is_empty());
        if self.report.findings.is_empty() && !changed {
            Outcome::Clean
        } else {
            Outcome::Findings
        }
    }

    /// A one-line summary for stderr.
    pub fn summary(&self) -> String {
        let t = &self.report.totals;
        let mut line = format!(
            "{}: {} objects from {} charts ({} rendered, {} cached, {} external) and {} applications; {} findings ({} errors, {} warnings)",
            self.report.env,
            t.objects,
            t.charts,
            t.rendered,
            t.cached,
            t.external,
            self.report.applications.len(),
            t.findings,
            t.errors,
            t.warnings
        );
        if t.platform > 0 {
            line.push_str(&format!(
                "; platform: {} charts ({} external)",
                t.platform, t.platform_external
            ));
        }
        if let Some(diff) = &self.diff {
            line.push_str(&format!(
                "; diff: {} changed, {} added, {} removed",
                diff.changed.len(),
                diff.added.len(),
                diff.removed.len()
            ));
            if !diff.nondeterministic.is_empty() {
                line.push_str(&format!(
                    " ({} non-deterministic fields ignored)",
                    diff.nondeterministic.len()
                ));
            }
        }
        if let Some(path) = &self.written {
            line.push_str(&format!("; written to {}", path.display()));
        }
        line
    }
}

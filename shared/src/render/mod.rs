//! `helm duli-render ENV`: render every chart of `helm/` and every `gitops/applications/*.yml.j2` of one
//! environment, validate the result, check it against the platform's policies, and write it where a
//! pipeline wants it.
//!
//! The pipeline ([`render`]):
//! 1. load the environment ([`crate::environment`]) and discover the charts ([`charts`]); charts whose
//!    upstream dependencies are not vendored are reported as external;
//! 2. layer the values ([`values`]) and run `helm template` for every chart concurrently ([`helm`]),
//!    skipping charts whose inputs did not change ([`cache`]);
//! 3. render the ArgoCD Application templates with the environment's keys as variables ([`gitops`]);
//! 4. split everything into objects ([`manifests`]) and validate them: custom resources against their
//!    CRD ([`crds`], [`schema`]), built-in objects against k8s-openapi ([`core`]) ([`validate`]);
//! 5. run the policy rules ([`policy`]);
//! 6. print one multi-document stream, or write one file per object ([`output`]), compare with an
//!    earlier render ([`diff`]) and write a JSON report ([`report`]).
//!
//! Several environments can render in one run ([`render_many`]): they share the helm job slots and the
//! parsed CRDs, and nothing is written unless every one of them renders.
//!
//! Errors (bad input, helm failing) are [`RenderError`]s and leave no output behind; findings and diffs
//! are results ([`Rendered::outcome`]).

pub mod cache;
pub mod charts;
pub mod core;
pub mod crds;
pub mod diff;
pub mod findings;
pub mod gitops;
pub mod helm;
pub mod manifests;
pub mod output;
pub mod policy;
pub mod report;
pub mod schema;
pub mod validate;
pub mod values;

mod pipeline;

use std::path::PathBuf;

pub use findings::{Finding, Severity};
pub use pipeline::{APPLICATIONS, Shared, crds_from_env, render, render_many, render_with};
pub use validate::validate_object;

use crate::error::Outcome;

/// What to render and how: the validated form of the command line.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// The environment (`gitops/environments/<env>.yml`).
    pub env: String,
    /// Render only these charts (`--chart`, repeatable; `applications` selects the Application templates).
    pub charts: Vec<String>,
    /// Extra values files, applied after `values-<env>.yml` (`--values`).
    pub values: Vec<PathBuf>,
    /// `--set KEY=VALUE` items, applied last.
    pub set: Vec<String>,
    /// Write one file per object under this directory (`--out`).
    pub out: Option<PathBuf>,
    /// Compare with an earlier `--out` directory (`--diff`).
    pub diff: Option<PathBuf>,
    /// Write a JSON report here (`--report`).
    pub report: Option<PathBuf>,
    /// Validate objects (on by default).
    pub validate: bool,
    /// CRD directories or files (`--crds`, `DULI_CRDS`).
    pub crds: Vec<PathBuf>,
    /// Also read the CRDs installed in the current cluster.
    pub crds_from_cluster: bool,
    /// The cluster for `--crds-from-cluster`.
    pub cluster: crate::cluster::ClusterTarget,
    /// Rule ids to skip (`--policy-skip`).
    pub policy_skip: Vec<String>,
    /// Fail on charts with unvendored dependencies instead of reporting them as external.
    pub strict_deps: bool,
    /// Use the render cache.
    pub use_cache: bool,
    /// The cache directory (default: the user's cache dir).
    pub cache_dir: Option<PathBuf>,
    /// How many charts render at once.
    pub jobs: usize,
    /// What helm handed over in the environment.
    pub helm_env: helm::HelmEnv,
}

impl RenderOptions {
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
            report: None,
            validate: true,
            crds: Vec::new(),
            crds_from_cluster: false,
            cluster: Default::default(),
            policy_skip: Vec::new(),
            strict_deps: false,
            use_cache: true,
            cache_dir: None,
            jobs: default_jobs(),
            helm_env: helm::HelmEnv::from_env(),
        }
    }
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
    Environment(#[from] crate::environment::EnvironmentError),
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
        "chart `{chart}` depends on {upstream}, which is not vendored in {chart}/charts/; run `helm dependency build` or drop --strict-deps"
    )]
    ExternalDependency {
        /// The chart.
        chart: String,
        /// `name version` of the missing dependencies.
        upstream: String,
    },
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
    HelmNotFound(#[from] crate::tools::ToolNotFound),
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

/// The result of a render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The report (also what `--report` writes).
    pub report: report::Report,
    /// The objects, grouped by chart (then `applications`), in output order.
    pub groups: Vec<(String, Vec<manifests::Object>)>,
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
        if let Some(diff) = &self.diff {
            line.push_str(&format!(
                "; diff: {} changed, {} added, {} removed",
                diff.changed.len(),
                diff.added.len(),
                diff.removed.len()
            ));
        }
        if let Some(path) = &self.written {
            line.push_str(&format!("; written to {}", path.display()));
        }
        line
    }
}

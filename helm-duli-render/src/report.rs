//! `--report FILE`: the run as JSON, for pipelines: per chart its objects, duration and whether it came
//! from the cache (or is external); every finding; totals; and what helm handed over.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::charts::Dependency;
use super::deps::UpstreamChart;
use super::findings::{Finding, Severity};
use super::helm::HelmEnv;

/// How a chart got its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartStatus {
    /// Rendered by `helm template` in this run.
    Rendered,
    /// Taken from the cache: nothing it depends on changed.
    Cached,
    /// Wraps upstream charts that are not vendored: not rendered.
    External,
}

/// One chart in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ChartReport {
    /// The chart (directory name under `helm/`).
    pub name: String,
    /// How it got its objects.
    pub status: ChartStatus,
    /// True when it came from the cache.
    pub cached: bool,
    /// Time spent on it, in milliseconds.
    pub duration_ms: u64,
    /// Its objects, as `Kind/namespace/name`.
    pub objects: Vec<String>,
    /// For external charts: the upstream charts and versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<Dependency>,
    /// For external charts: why the upstream charts were not resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For rendered wrapper charts: the upstream packages they were rendered with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<UpstreamChart>,
    /// True for a platform chart (`gitops/platform.yml`), false for a chart of `helm/`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub platform: bool,
}

/// One ArgoCD Application template in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationReport {
    /// The component (file name without `.yml.j2`).
    pub component: String,
    /// The template.
    pub file: String,
    /// Its objects.
    pub objects: Vec<String>,
}

/// A CRD custom resources of this render are validated against, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CrdReport {
    /// `group/version` of the custom resources.
    pub api_version: String,
    /// Their kind.
    pub kind: String,
    /// Where the schema used came from: `chart cloudnative-pg 0.26.1 (…)`, a `--crds` file, the cluster.
    pub source: String,
    /// A chart-shipped CRD of the same kind that was not used because `--crds` (or the cluster) has
    /// one: the explicit schema wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instead_of: Option<String>,
    /// How many objects of this render are of this kind.
    pub objects: usize,
}

/// Counts over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Charts of `helm/` considered.
    pub charts: usize,
    /// Charts rendered by helm in this run.
    pub rendered: usize,
    /// Charts taken from the cache.
    pub cached: usize,
    /// External charts of `helm/` (not rendered).
    pub external: usize,
    /// Platform charts (`gitops/platform.yml`) considered.
    pub platform: usize,
    /// Platform charts not rendered (not in the chart cache and not fetched).
    pub platform_external: usize,
    /// Objects, charts and applications together.
    pub objects: usize,
    /// Findings of any severity.
    pub findings: usize,
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The environment.
    pub env: String,
    /// The namespace it renders into.
    pub namespace: String,
    /// The helm binary used.
    pub helm_bin: Option<String>,
    /// What helm handed over in the environment (namespace, kube context, …).
    pub helm_env: HelmEnv,
    /// The rule ids skipped with `--policy-skip`.
    pub skipped_rules: Vec<String>,
    /// Objects exempt from rules by their `duli.one/policy-skip` annotation, with the reason given.
    pub exemptions: Vec<super::policy::Exemption>,
    /// Whether validation ran.
    pub validated: bool,
    /// Charts, by name.
    pub charts: Vec<ChartReport>,
    /// Application templates, by component.
    pub applications: Vec<ApplicationReport>,
    /// The CRDs the charts of this render ship (templates and `crds/` directories) and every other CRD
    /// an object was validated against, with where each came from (when validation ran).
    pub crds: Vec<CrdReport>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// With `--diff`: fields that differ from the earlier render only because a chart generates them
    /// at random (not counted as changes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nondeterministic_fields: Vec<super::diff::NondeterministicField>,
    /// Counts.
    pub totals: Totals,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: u64,
}

impl Report {
    /// Fill in the totals from the rest.
    pub fn count(&mut self) {
        let status = |s: ChartStatus, platform: bool| {
            self.charts
                .iter()
                .filter(|c| c.status == s && c.platform == platform)
                .count()
        };
        self.totals = Totals {
            charts: self.charts.iter().filter(|c| !c.platform).count(),
            rendered: status(ChartStatus::Rendered, false),
            cached: status(ChartStatus::Cached, false),
            external: status(ChartStatus::External, false),
            platform: self.charts.iter().filter(|c| c.platform).count(),
            platform_external: status(ChartStatus::External, true),
            objects: self.charts.iter().map(|c| c.objects.len()).sum::<usize>()
                + self.applications.iter().map(|a| a.objects.len()).sum::<usize>(),
            findings: self.findings.len(),
            errors: self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count(),
            warnings: self
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Warning)
                .count(),
        };
    }
}

/// Errors writing the report.
#[derive(Debug, thiserror::Error)]
#[error("cannot write --report {path}: {source}")]
pub struct ReportError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Write the report as pretty JSON, through a temporary file and a rename.
///
/// One environment gets its report as is; several get `{"environments": [...]}`.
pub fn write(path: &Path, reports: &[&Report]) -> Result<(), ReportError> {
    let error = |source| ReportError {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let text = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(&serde_json::json!({ "environments": many })),
    };
    let mut text = text.map_err(|e| error(e.into()))?;
    text.push('\n');
    let file = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    std::fs::write(file.path(), text).map_err(error)?;
    file.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

//! "A key in our values that the upstream chart does not have": helm silently ignores a misspelled key
//! (`loki.singleBinary.replicass: 3` renders one replica), so every key path of our values is checked
//! against the upstream chart it configures.
//!
//! An upstream chart ([`UpstreamChartDir`]: an unpacked chart directory or a `.tgz` package, with the
//! subcharts it carries in `charts/`) says which keys it has in two ways:
//! - its `values.schema.json`, where it ships one: `properties`, `patternProperties` and
//!   `additionalProperties` (`false`: closed; `true` or a schema: open), with `$ref`s within the file and
//!   the branches of `allOf`/`anyOf`/`oneOf` followed. An object with `properties` but no
//!   `additionalProperties` is treated as closed: such schemas (cloudnative-pg's) are generated from the
//!   defaults, and the point of the check is the key nobody declared. A key the schema omits but the
//!   default `values.yaml` has is known too.
//! - else its default `values.yaml` tree: a key absent from a non-empty map of the defaults is unknown.
//!
//! Anything goes in `global:`, under lists, under maps that are empty (`{}`) or null in the defaults,
//! under maps whose default keys contain dots or slashes (configuration files and ConfigMap data such as
//! argo-cd's `configs.cm`, not values paths), and under keys that are free-form by convention
//! ([`is_free_form`]: labels, annotations, `resources`, `nodeSelector`, `tolerations`, `extraArgs`, …,
//! which are Kubernetes types the rendered objects are validated against anyway).
//!
//! A subchart's section (`grafana:` in kube-prometheus-stack, under the dependency's alias if it has one)
//! is checked against the subchart's own values and schema plus what the parent's defaults put there.
//! Dependency `condition` paths are known keys.
//!
//! Findings are warnings (rule `values-unknown`) naming the values file, the dotted path and the nearest
//! existing key ([`strsim`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::findings::{Finding, Severity};

/// The rule id of unknown-key findings (for `--policy-skip`).
pub const RULE: &str = "values-unknown";

/// The largest chart file read (a `values.yaml` or CRD of an upstream chart).
const FILE_LIMIT: u64 = 8 * 1024 * 1024;
/// The largest chart package read.
const PACKAGE_LIMIT: u64 = 64 * 1024 * 1024;

/// Errors reading an upstream chart.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The chart or package cannot be read.
    #[error("cannot read upstream chart {path}: {message}")]
    Read {
        /// The directory or package.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A file of the chart does not parse.
    #[error("upstream chart {path}: {file} does not parse: {message}")]
    Parse {
        /// The directory or package.
        path: PathBuf,
        /// The file inside the chart.
        file: String,
        /// The parser's message.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
struct ChartFile {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    dependencies: Vec<DependencyFile>,
}

#[derive(Debug, Deserialize)]
struct DependencyFile {
    name: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    condition: Option<String>,
}

/// An upstream chart as far as values checking and CRDs need it: its metadata, default values, schema,
/// `crds/` files and the subcharts it carries.
#[derive(Debug, Clone)]
pub struct UpstreamChartDir {
    /// Where it was read from (directory or package).
    pub path: PathBuf,
    /// `name` in `Chart.yaml`.
    pub name: String,
    /// `version` in `Chart.yaml`.
    pub version: String,
    /// `values.yaml` (null when absent), with dependency `condition` paths added.
    pub defaults: Value,
    /// `values.schema.json`, if it ships one.
    pub schema: Option<Value>,
    /// The files under `crds/` (path inside the chart, text), sorted.
    pub crd_files: Vec<(String, String)>,
    /// Subcharts by the key their values live under (alias, else name).
    pub subcharts: BTreeMap<String, UpstreamChartDir>,
    /// Values paths (`loki.limits_config`) the chart passes through whole (`toYaml`): free-form below.
    pub passthrough: BTreeSet<String>,
    /// The `condition` of each subchart (by key), e.g. `minio.enabled`.
    pub conditions: BTreeMap<String, String>,
}

/// A chart's files, by path relative to the chart's root.
type Files = BTreeMap<String, Vec<u8>>;

impl UpstreamChartDir {
    /// `name version`, e.g. `loki 6.29.0`.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Read a chart: a directory (an unpacked chart) or a `.tgz` package; `charts/` may hold both.
    pub fn open(path: &Path) -> Result<Self, UpstreamError> {
        let read_error = |message: String| UpstreamError::Read {
            path: path.to_path_buf(),
            message,
        };
        let files = if path.is_dir() {
            let mut files = Files::new();
            read_dir(path, path, &mut files).map_err(|err| read_error(err.to_string()))?;
            files
        } else {
            let bytes = shared::fsio::read_bounded(path, PACKAGE_LIMIT, "chart package")
                .map_err(|err| read_error(err.to_string()))?;
            read_package(&bytes).map_err(read_error)?
        };
        Self::from_files(path, files)
    }

    fn from_files(path: &Path, files: Files) -> Result<Self, UpstreamError> {
        let parse_error = |file: &str, message: String| UpstreamError::Parse {
            path: path.to_path_buf(),
            file: file.to_string(),
            message,
        };
        let text = |file: &str| -> Option<Result<&str, UpstreamError>> {
            files
                .get(file)
                .map(|bytes| std::str::from_utf8(bytes).map_err(|err| parse_error(file, err.to_string())))
        };
        let chart: ChartFile = match text("Chart.yaml") {
            Some(text) => serde_saphyr::from_str(text?)
                .map_err(|err| parse_error("Chart.yaml", shared::yaml_error::describe(&err)))?,
            None => {
                return Err(UpstreamError::Read {
                    path: path.to_path_buf(),
                    message: "no Chart.yaml: not a chart".into(),
                });
            }
        };
        let values_text = text("values.yaml").transpose()?.unwrap_or_default();
        let mut defaults: Value = if values_text.is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(values_text)
                .map_err(|err| parse_error("values.yaml", shared::yaml_error::describe(&err)))?
        };
        add_commented_keys(&mut defaults, values_text);
        let mut passthrough = BTreeSet::new();
        for (name, bytes) in &files {
            if name == "values.yaml" || name.starts_with("templates/") {
                passthrough.extend(passed_through(&String::from_utf8_lossy(bytes)));
            }
        }
        let schema = match text("values.schema.json") {
            Some(text) => Some(
                serde_json::from_str(text?)
                    .map_err(|err| parse_error("values.schema.json", err.to_string()))?,
            ),
            None => None,
        };
        let crd_files = files
            .iter()
            .filter(|(name, _)| {
                name.starts_with("crds/")
                    && matches!(
                        Path::new(name).extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .map(|(name, bytes)| (name.clone(), String::from_utf8_lossy(bytes).into_owned()))
            .collect();

        // Subcharts: `charts/<dir>/…` and `charts/<name>.tgz`.
        let mut nested: BTreeMap<String, Files> = BTreeMap::new();
        let mut packages: Vec<(&String, &Vec<u8>)> = Vec::new();
        for (name, bytes) in &files {
            let Some(rest) = name.strip_prefix("charts/") else {
                continue;
            };
            match rest.split_once('/') {
                Some((dir, inner)) => {
                    nested
                        .entry(dir.to_string())
                        .or_default()
                        .insert(inner.to_string(), bytes.clone());
                }
                None if rest.ends_with(".tgz") => packages.push((name, bytes)),
                None => {}
            }
        }
        let mut loaded = Vec::new();
        for (dir, files) in nested {
            if files.contains_key("Chart.yaml") {
                loaded.push(Self::from_files(&path.join("charts").join(dir), files)?);
            }
        }
        for (name, bytes) in packages {
            let files = read_package(bytes).map_err(|message| parse_error(name, message))?;
            loaded.push(Self::from_files(&path.join(name), files)?);
        }
        let mut subcharts = BTreeMap::new();
        let mut conditions = BTreeMap::new();
        for dependency in &chart.dependencies {
            if let Some(condition) = &dependency.condition {
                for condition in condition.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                    insert_path(&mut defaults, condition);
                }
            }
            if let Some(sub) = loaded.iter().find(|c| c.name == dependency.name) {
                let key = dependency
                    .alias
                    .clone()
                    .unwrap_or_else(|| dependency.name.clone());
                if let Some(condition) = &dependency.condition {
                    conditions.insert(key.clone(), condition.clone());
                }
                subcharts.insert(key, sub.clone());
            }
        }
        // Subcharts in charts/ that Chart.yaml does not list still render under their name.
        for sub in loaded {
            if !chart.dependencies.iter().any(|d| d.name == sub.name) {
                subcharts.entry(sub.name.clone()).or_insert(sub);
            }
        }
        Ok(UpstreamChartDir {
            path: path.to_path_buf(),
            name: chart.name,
            version: chart.version,
            defaults,
            schema,
            crd_files,
            subcharts,
            passthrough,
            conditions,
        })
    }

    /// The CRD files helm would install with this chart: its `crds/` and those of the subcharts that
    /// are enabled, as `(where, text)` with `where` like `chart kube-prometheus-stack 77.14.0 → crds
    /// 0.0.0, crds/crd-alertmanagers.yaml`. `values` are the values given to this chart, highest
    /// priority first; its defaults come last. A subchart's `condition` (the first of its paths that
    /// is set to a boolean) decides, as in helm; unset, the subchart is enabled.
    pub fn enabled_crd_files(&self, values: &[&Value]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .crd_files
            .iter()
            .map(|(file, text)| (format!("chart {}, {file}", self.label()), text.clone()))
            .collect();
        let mut layers: Vec<&Value> = values.to_vec();
        layers.push(&self.defaults);
        for (key, sub) in &self.subcharts {
            let enabled = self.conditions.get(key).is_none_or(|condition| {
                condition
                    .split(',')
                    .map(str::trim)
                    .find_map(|path| {
                        layers.iter().find_map(|layer| {
                            path.split('.')
                                .try_fold(*layer, |node, k| node.get(k))
                                .and_then(Value::as_bool)
                        })
                    })
                    .unwrap_or(true)
            });
            if !enabled {
                continue;
            }
            let sub_values: Vec<&Value> = layers.iter().filter_map(|layer| layer.get(key)).collect();
            for (at, text) in sub.enabled_crd_files(&sub_values) {
                out.push((
                    format!("chart {} → {}", self.label(), at.trim_start_matches("chart ")),
                    text,
                ));
            }
        }
        out
    }
}

/// Keys documented as commented-out lines in `values.yaml` (`  # storageClassName: default` under
/// `persistence:`), a common way charts describe optional values: added (as null, anything goes below)
/// to maps of the defaults that are not empty, so a free-form `{}` stays free-form.
fn add_commented_keys(defaults: &mut Value, text: &str) {
    // (indent, key, commented) of the keys above the current line.
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    let mut additions = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let (commented, body, indent) = match trimmed.strip_prefix('#') {
            Some(rest) => {
                let rest_trimmed = rest.trim_start();
                // `# key:` documents `key` at the column of `#`; `#   key:` one level deeper.
                let spaces = rest.len() - rest_trimmed.len();
                (
                    true,
                    rest_trimmed,
                    (line.len() - trimmed.len() + spaces).saturating_sub(1),
                )
            }
            None => (false, trimmed, line.len() - trimmed.len()),
        };
        let Some(key) = yaml_key(body) else { continue };
        while stack.last().is_some_and(|(level, _, _)| *level >= indent) {
            stack.pop();
        }
        if commented && stack.iter().all(|(_, _, c)| !c) {
            let parent: Vec<&str> = stack.iter().map(|(_, k, _)| k.as_str()).collect();
            let at = parent.iter().try_fold(&*defaults, |node, k| node.get(*k));
            if at.is_some_and(|node| {
                node.as_object()
                    .is_some_and(|m| !m.is_empty() && !m.contains_key(key))
            }) {
                additions.push((
                    parent.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                    key.to_string(),
                ));
            }
        }
        stack.push((indent, key.to_string(), commented));
    }
    for (parent, key) in additions {
        let node = parent
            .iter()
            .try_fold(&mut *defaults, |node, k| node.get_mut(k.as_str()));
        if let Some(Value::Object(map)) = node {
            map.entry(key).or_insert(Value::Null);
        }
    }
}

/// `key` of a line `key: …` or `key:` (a plain identifier-like key), else `None`.
fn yaml_key(body: &str) -> Option<&str> {
    let (key, rest) = body.split_once(':')?;
    let plain = !key.is_empty()
        && key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (plain && (rest.is_empty() || rest.starts_with(' '))).then_some(key)
}

/// Values paths a template (or a template string in `values.yaml`) renders whole with `toYaml`:
/// `toYaml .Values.a.b`, `.Values.a.b | toYaml`, and `with .Values.a.b` followed by `toYaml .`.
fn passed_through(text: &str) -> Vec<String> {
    static PATTERNS: std::sync::OnceLock<[regex::Regex; 3]> = std::sync::OnceLock::new();
    let [direct, piped, with] = PATTERNS.get_or_init(|| {
        [
            regex::Regex::new(r"toYaml\s+\(?\s*\$?\.Values\.([A-Za-z0-9_.]+)").expect("valid pattern"),
            regex::Regex::new(r"\$?\.Values\.([A-Za-z0-9_.]+)\s*\|\s*toYaml").expect("valid pattern"),
            regex::Regex::new(r"with\s+\$?\.Values\.([A-Za-z0-9_.]+)\s*-?\}\}").expect("valid pattern"),
        ]
    });
    let mut paths: Vec<String> = direct
        .captures_iter(text)
        .chain(piped.captures_iter(text))
        .map(|c| c[1].trim_end_matches('.').to_string())
        .collect();
    for capture in with.captures_iter(text) {
        let end = capture.get(0).map_or(0, |m| m.end());
        let body = &text[end..];
        let body = &body[..body.find("end").unwrap_or(body.len()).min(400)];
        if body.contains("toYaml .") || body.contains(". | toYaml") {
            paths.push(capture[1].trim_end_matches('.').to_string());
        }
    }
    paths
}

/// Add `a.b.c` to the defaults tree (as `true`) unless it is there.
fn insert_path(defaults: &mut Value, path: &str) {
    let mut node = defaults;
    for segment in path.split('.') {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map.entry(segment.to_string()).or_insert(Value::Null);
    }
    if node.is_null() {
        *node = Value::Bool(true);
    }
}

fn read_dir(root: &Path, dir: &Path, files: &mut Files) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let relative = relative.to_string_lossy().replace('\\', "/");
        if path.is_dir() {
            read_dir(root, &path, files)?;
        } else if wanted(&relative) {
            let bytes = shared::fsio::read_bounded(&path, FILE_LIMIT, "chart file")
                .map_err(|err| std::io::Error::other(err.to_string()))?;
            files.insert(relative, bytes);
        }
    }
    Ok(())
}

/// The files this module reads: metadata, values, schema, CRDs, subcharts.
fn wanted(relative: &str) -> bool {
    let inside = relative.rsplit_once("charts/").map_or(relative, |(_, rest)| {
        rest.split_once('/').map_or(rest, |(_, inner)| inner)
    });
    matches!(inside, "Chart.yaml" | "values.yaml" | "values.schema.json")
        || inside.starts_with("crds/")
        || inside.starts_with("templates/")
        || (relative.starts_with("charts/") && relative.ends_with(".tgz"))
}

/// The files of a `.tgz` chart package, relative to its top directory (`loki/Chart.yaml` →
/// `Chart.yaml`).
fn read_package(bytes: &[u8]) -> Result<Files, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = Files::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|err| err.to_string())? {
        let mut entry = entry.map_err(|err| err.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|err| err.to_string())?
            .to_string_lossy()
            .into_owned();
        let Some((_, relative)) = path.split_once('/') else {
            continue;
        };
        if !wanted(relative) {
            continue;
        }
        let size = entry.header().size().map_err(|err| err.to_string())?;
        total += size;
        if size > FILE_LIMIT || total > PACKAGE_LIMIT {
            return Err(format!("{path} is too large ({size} bytes)"));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(|err| err.to_string())?;
        files.insert(relative.to_string(), bytes);
    }
    Ok(files)
}

/// A key in our values that the upstream chart does not have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnknownKey {
    /// The values file (or `gitops/platform.yml`) it is in.
    pub file: String,
    /// The dotted path, from the top of that file (`loki.singleBinary.replicass`).
    pub path: String,
    /// The nearest key the chart has at that place (`replicas`), if any is close.
    pub nearest: Option<String>,
    /// The upstream chart (`loki 6.29.0`, or `kube-prometheus-stack 77.14.0 → grafana 10.0.0`).
    pub chart: String,
}

impl UnknownKey {
    /// As a finding of `chart` (the wrapper chart, or the platform entry).
    pub fn finding(&self, chart: &str) -> Finding {
        Finding {
            rule: RULE.into(),
            severity: Severity::Warning,
            chart: chart.to_string(),
            object: format!("values {}", self.path),
            file: self.file.clone(),
            message: format!(
                "`{}` is not a value of the upstream chart {}: helm ignores it",
                self.path, self.chart
            ),
            fix: match &self.nearest {
                Some(nearest) => format!("did you mean `{nearest}`?"),
                None => format!(
                    "remove it or check the spelling against `helm show values` of {}",
                    self.chart
                ),
            },
        }
    }
}

/// The keys of `ours` (one chart's values, the top of the chart's values) that `upstream` does not have.
/// `file` names where they are; `prefix` is the path of `ours` inside that file (`loki` for the `loki:`
/// section of a wrapper's values, `charts[2].values` for a `gitops/platform.yml` entry).
pub fn unknown_keys(ours: &Value, upstream: &UpstreamChartDir, file: &str, prefix: &str) -> Vec<UnknownKey> {
    let checker = Checker {
        file,
        out: std::cell::RefCell::new(Vec::new()),
    };
    checker.chart(ours, upstream, &[], prefix, &upstream.label());
    let mut found = checker.out.into_inner();
    found.sort();
    found.dedup();
    found
}

/// A wrapper chart's values files checked against its upstream dependencies: for each file, each
/// dependency section (`loki:`, or the alias) is checked against the chart in `upstreams` (keyed by the
/// dependency's name or alias). Keys of the wrapper's own templates (outside those sections) are not
/// checked. `files` are `(name shown, path)`.
pub fn check_wrapper(
    files: &[(String, PathBuf)],
    upstreams: &BTreeMap<String, UpstreamChartDir>,
) -> Result<Vec<UnknownKey>, UpstreamError> {
    let mut found = Vec::new();
    for (shown, path) in files {
        let text = shared::fsio::read_to_string_bounded(path, shared::fsio::CONFIG_FILE_LIMIT, "values file")
            .map_err(|err| UpstreamError::Read {
                path: path.clone(),
                message: err.to_string(),
            })?;
        let values: Value = serde_saphyr::from_str(&text).map_err(|err| UpstreamError::Parse {
            path: path.clone(),
            file: shown.clone(),
            message: shared::yaml_error::describe(&err),
        })?;
        for (key, upstream) in upstreams {
            if let Some(section) = values.get(key) {
                found.extend(unknown_keys(section, upstream, shown, &display_key(key)));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Where an upstream chart `name` at `version` is: a `.tgz` package or an unpacked directory; `None`
/// when it is not available (offline without a cache), and the chart is not checked.
pub trait Locate {
    /// The package or directory of `name` `version`, if available.
    fn locate(&self, name: &str, version: &str) -> Option<PathBuf>;
}

impl<F: Fn(&str, &str) -> Option<PathBuf>> Locate for F {
    fn locate(&self, name: &str, version: &str) -> Option<PathBuf> {
        self(name, version)
    }
}

/// Charts in a directory as `helm dependency build` and static chart repositories lay them out:
/// `<dir>/<name>-<version>.tgz`, or an unpacked `<dir>/<name>/` of that version.
#[derive(Debug, Clone)]
pub struct ChartsIn(pub PathBuf);

impl Locate for ChartsIn {
    fn locate(&self, name: &str, version: &str) -> Option<PathBuf> {
        let package = self.0.join(format!("{name}-{version}.tgz"));
        if package.is_file() {
            return Some(package);
        }
        let dir = self.0.join(name);
        let chart: ChartFile = std::fs::read_to_string(dir.join("Chart.yaml"))
            .ok()
            .and_then(|text| serde_saphyr::from_str(&text).ok())?;
        (chart.version == version).then_some(dir)
    }
}

#[derive(Debug, Deserialize)]
struct WrapperChartFile {
    #[serde(default)]
    dependencies: Vec<WrapperDependency>,
}

#[derive(Debug, Deserialize)]
struct WrapperDependency {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    alias: Option<String>,
}

/// A chart of `helm/` checked against the upstream charts it depends on: `values.yaml` and the
/// `values-<env>.yml` of `envs` (files shown as `<chart dir>/<file>`). Dependencies `locate` cannot
/// find are skipped and returned by name, so a caller can say what was not checked.
pub fn check_chart_dir(
    chart_dir: &Path,
    envs: &[&str],
    locate: &dyn Locate,
) -> Result<(Vec<UnknownKey>, Vec<String>), UpstreamError> {
    let (upstreams, missing) = upstreams_of(chart_dir, locate)?;
    let name = chart_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = vec![(format!("{name}/values.yaml"), chart_dir.join("values.yaml"))];
    for env in envs {
        if let Some(path) = shared::repo::Repo::env_values_file(chart_dir, env) {
            let shown = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((format!("{name}/{shown}"), path));
        }
    }
    files.retain(|(_, path)| path.is_file());
    Ok((check_wrapper(&files, &upstreams)?, missing))
}

/// The upstream charts a chart of `helm/` depends on, by the key their values live under (alias, else
/// name), and the `name version` of those `locate` cannot find.
pub fn upstreams_of(
    chart_dir: &Path,
    locate: &dyn Locate,
) -> Result<(BTreeMap<String, UpstreamChartDir>, Vec<String>), UpstreamError> {
    let chart_file = chart_dir.join("Chart.yaml");
    let text =
        shared::fsio::read_to_string_bounded(&chart_file, shared::fsio::CONFIG_FILE_LIMIT, "Chart.yaml")
            .map_err(|err| UpstreamError::Read {
                path: chart_file.clone(),
                message: err.to_string(),
            })?;
    let chart: WrapperChartFile = serde_saphyr::from_str(&text).map_err(|err| UpstreamError::Parse {
        path: chart_dir.to_path_buf(),
        file: "Chart.yaml".into(),
        message: shared::yaml_error::describe(&err),
    })?;
    let mut upstreams = BTreeMap::new();
    let mut missing = Vec::new();
    for dependency in chart.dependencies {
        match locate.locate(&dependency.name, &dependency.version) {
            Some(path) => {
                let key = dependency.alias.unwrap_or(dependency.name);
                upstreams.insert(key, UpstreamChartDir::open(&path)?);
            }
            None => missing.push(format!("{} {}", dependency.name, dependency.version)),
        }
    }
    Ok((upstreams, missing))
}

/// An unknown key of a `gitops/platform.yml` entry: `(platform/<name>, key)`.
pub type EntryKey = (String, UnknownKey);

#[derive(Debug, Deserialize)]
struct PlatformFile {
    #[serde(default)]
    charts: Vec<PlatformEntry>,
}

#[derive(Debug, Deserialize)]
struct PlatformEntry {
    name: String,
    chart: String,
    version: String,
    #[serde(default)]
    values: Value,
}

/// The inline `values` of every `gitops/platform.yml` entry checked against its chart (paths shown as
/// `charts[2].values.…`, findings' chart as `platform/<name>`). Returns `(entry name, unknown keys)` for
/// the entries checked and the `chart version` of those `locate` cannot find.
pub fn check_platform(
    platform_file: &Path,
    locate: &dyn Locate,
) -> Result<(Vec<EntryKey>, Vec<String>), UpstreamError> {
    let text = shared::fsio::read_to_string_bounded(
        platform_file,
        shared::fsio::CONFIG_FILE_LIMIT,
        "platform catalog",
    )
    .map_err(|err| UpstreamError::Read {
        path: platform_file.to_path_buf(),
        message: err.to_string(),
    })?;
    let platform: PlatformFile = serde_saphyr::from_str(&text).map_err(|err| UpstreamError::Parse {
        path: platform_file.to_path_buf(),
        file: shared::paths::PLATFORM_CATALOG_FILE.into(),
        message: shared::yaml_error::describe(&err),
    })?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (index, entry) in platform.charts.iter().enumerate() {
        let Some(path) = locate.locate(&entry.chart, &entry.version) else {
            missing.push(format!("{} {}", entry.chart, entry.version));
            continue;
        };
        let upstream = UpstreamChartDir::open(&path)?;
        let prefix = format!("charts[{index}].values");
        for key in unknown_keys(
            &entry.values,
            &upstream,
            shared::paths::PLATFORM_CATALOG_FILE,
            &prefix,
        ) {
            found.push((format!("platform/{}", entry.name), key));
        }
    }
    Ok((found, missing))
}

struct Checker<'a> {
    file: &'a str,
    out: std::cell::RefCell<Vec<UnknownKey>>,
}

/// Where a key is: its path as shown, its path inside the chart's values, the chart.
struct At<'c> {
    path: String,
    rel: String,
    chart: &'c UpstreamChartDir,
    label: &'c str,
}

impl<'c> At<'c> {
    fn child(&self, key: &str) -> At<'c> {
        At {
            path: join(&self.path, key),
            rel: if self.rel.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.rel)
            },
            chart: self.chart,
            label: self.label,
        }
    }
}

impl Checker<'_> {
    /// Check the values of a whole chart; `extra` are defaults a parent put in this chart's section.
    fn chart(&self, ours: &Value, chart: &UpstreamChartDir, extra: &[&Value], path: &str, label: &str) {
        // `path` is where `ours` is shown; keys below are relative to `chart`'s values.
        let Value::Object(ours) = ours else { return };
        for (key, value) in ours {
            let child_path = join(path, key);
            if key == "global" {
                continue;
            }
            if let Some(sub) = chart.subcharts.get(key) {
                let mut extra: Vec<&Value> = extra.iter().filter_map(|d| d.get(key)).collect();
                extra.extend(chart.defaults.get(key));
                let label = format!("{label} → {}", sub.label());
                self.chart(value, sub, &extra, &child_path, &label);
                continue;
            }
            let mut defaults: Vec<&Value> = vec![&chart.defaults];
            defaults.extend(extra.iter().copied());
            let schema = chart.schema.as_ref().map(|s| Schema { root: s, node: s });
            let at = At {
                path: child_path,
                rel: key.clone(),
                chart,
                label,
            };
            self.key(key, value, &defaults, schema, &at);
        }
    }

    /// Check one key of a map whose defaults (several layers) and schema are given.
    fn key(&self, key: &str, value: &Value, defaults: &[&Value], schema: Option<Schema<'_>>, at: &At<'_>) {
        let child_defaults: Vec<&Value> = defaults.iter().filter_map(|d| d.get(key)).collect();
        let (known_by_schema, child_schema, open_schema) = match schema {
            Some(schema) => match schema.child(key) {
                SchemaChild::Known(child) => (true, child, false),
                SchemaChild::Open => (true, None, true),
                SchemaChild::Unknown => (false, None, false),
            },
            None => (false, None, false),
        };
        // Free-form places: anything below goes.
        let free_by_defaults = defaults.iter().all(|d| is_free_map(d));
        let free = match schema {
            Some(schema) => schema.is_free() && free_by_defaults,
            None => free_by_defaults,
        };
        if free || open_schema {
            return;
        }
        if !known_by_schema && child_defaults.is_empty() {
            let mut candidates: Vec<&str> = defaults
                .iter()
                .filter_map(|d| d.as_object())
                .flat_map(|m| m.keys().map(String::as_str))
                .collect();
            if let Some(schema) = schema {
                candidates.extend(schema.property_names());
            }
            self.out.borrow_mut().push(UnknownKey {
                file: self.file.to_string(),
                path: at.path.clone(),
                nearest: nearest(key, &candidates).map(|n| replace_last(&at.path, n)),
                chart: at.label.to_string(),
            });
            return;
        }
        let Value::Object(children) = value else { return };
        if is_free_form(key) || at.chart.passthrough.contains(&at.rel) {
            return;
        }
        // Below a key whose default is not a map (a string template, a list, null) nothing is known.
        let child_maps: Vec<&Value> = child_defaults.into_iter().filter(|d| d.is_object()).collect();
        if child_maps.is_empty() && child_schema.is_none() {
            return;
        }
        for (child, child_value) in children {
            self.key(child, child_value, &child_maps, child_schema, &at.child(child));
        }
    }
}

/// A map in the defaults below which anything goes: not a map, empty, or holding keys with dots or
/// slashes (configuration file contents, ConfigMap data, annotations), not value paths.
fn is_free_map(defaults: &Value) -> bool {
    match defaults {
        Value::Object(map) => map.is_empty() || map.keys().any(|k| k.contains(['.', '/'])),
        _ => true,
    }
}

/// Keys whose contents are free-form by convention: Kubernetes types (validated in the rendered
/// objects), labels and annotations, arguments and environment.
pub fn is_free_form(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const SUFFIXES: &[&str] = &[
        "annotations",
        "labels",
        "selector",
        "resources",
        "tolerations",
        "affinity",
        "securitycontext",
        "probe",
        "args",
        "env",
        "strategy",
        "topologyspreadconstraints",
        "extraconfig",
        "structuredconfig",
    ];
    SUFFIXES.iter().any(|suffix| key.ends_with(suffix))
}

/// The known key closest to `key`, if close enough to be a plausible typo: at most a third of its
/// characters edited (at least one), transpositions counting once.
fn nearest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&key.to_lowercase(), &c.to_lowercase()),
                *c,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, c)| c)
}

/// `a.b.typo` with its last segment replaced.
fn replace_last(path: &str, last: &str) -> String {
    let parent = path.rsplit_once('.').map_or("", |(parent, _)| parent);
    // A last segment quoted because it holds dots: split at the opening quote instead.
    let parent = match path.strip_suffix('"') {
        Some(open) => open[..open.rfind('"').unwrap_or(0)].trim_end_matches('.'),
        None => parent,
    };
    join(parent, last)
}

/// A key as shown in a dotted path: quoted when it holds a dot.
fn display_key(key: &str) -> String {
    if key.contains('.') {
        format!("\"{key}\"")
    } else {
        key.to_string()
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        display_key(key)
    } else {
        format!("{path}.{}", display_key(key))
    }
}

/// A place in a `values.schema.json`.
#[derive(Clone, Copy)]
struct Schema<'a> {
    root: &'a Value,
    node: &'a Value,
}

enum SchemaChild<'a> {
    /// Declared, with its schema (none when it says nothing useful).
    Known(Option<Schema<'a>>),
    /// Allowed, and nothing known about what is below.
    Open,
    /// Not declared.
    Unknown,
}

impl<'a> Schema<'a> {
    /// This node and the branches of `$ref`, `allOf`, `anyOf`, `oneOf` (bounded against cycles).
    fn parts(self) -> Vec<&'a Value> {
        let mut parts = Vec::new();
        let mut stack = vec![(self.node, 0)];
        while let Some((node, depth)) = stack.pop() {
            if depth > 16 || !node.is_object() {
                continue;
            }
            parts.push(node);
            if let Some(target) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| self.root.pointer(pointer))
            {
                stack.push((target, depth + 1));
            }
            for combinator in ["allOf", "anyOf", "oneOf"] {
                for branch in node
                    .get(combinator)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    stack.push((branch, depth + 1));
                }
            }
        }
        parts
    }

    fn at(self, node: &'a Value) -> Schema<'a> {
        Schema {
            root: self.root,
            node,
        }
    }

    fn property_names(self) -> Vec<&'a str> {
        self.parts()
            .into_iter()
            .filter_map(|p| p.get("properties").and_then(Value::as_object))
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }

    /// Says nothing about its keys: no properties, no pattern properties, no rule for other keys.
    fn is_free(self) -> bool {
        let parts = self.parts();
        !parts.iter().any(|p| {
            p.get("properties")
                .is_some_and(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                || p.get("patternProperties").is_some()
                || matches!(
                    p.get("additionalProperties"),
                    Some(Value::Bool(false) | Value::Object(_))
                )
        })
    }

    fn child(self, key: &str) -> SchemaChild<'a> {
        let parts = self.parts();
        if let Some(child) = parts
            .iter()
            .find_map(|p| p.get("properties").and_then(|m| m.get(key)))
        {
            return SchemaChild::Known(Some(self.at(child)));
        }
        for part in &parts {
            for (pattern, child) in part
                .get("patternProperties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                // An unparsable pattern cannot rule the key out.
                if regex::Regex::new(pattern)
                    .map(|re| re.is_match(key))
                    .unwrap_or(true)
                {
                    return SchemaChild::Known(Some(self.at(child)));
                }
            }
        }
        if self.is_free() {
            return SchemaChild::Open;
        }
        for part in &parts {
            match part.get("additionalProperties") {
                Some(Value::Bool(true)) => return SchemaChild::Open,
                Some(child @ Value::Object(_)) => return SchemaChild::Known(Some(self.at(child))),
                _ => {}
            }
        }
        SchemaChild::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart(defaults: Value, schema: Option<Value>) -> UpstreamChartDir {
        UpstreamChartDir {
            path: "x".into(),
            name: "up".into(),
            version: "1.0.0".into(),
            defaults,
            schema,
            crd_files: Vec::new(),
            subcharts: BTreeMap::new(),
            passthrough: BTreeSet::new(),
            conditions: BTreeMap::new(),
        }
    }

    fn paths(found: &[UnknownKey]) -> Vec<(&str, Option<&str>)> {
        found
            .iter()
            .map(|k| (k.path.as_str(), k.nearest.as_deref()))
            .collect()
    }

    #[test]
    fn defaults_tree_finds_typos_and_lets_free_form_places_be() {
        let up = chart(
            json!({
                "singleBinary": {"replicas": 0, "persistence": {"size": "10Gi"}, "extraArgs": [], "podAnnotations": {}},
                "resources": {"limits": {"cpu": 1}},
                "config": {"a.b": 1},
                "template": "text",
                "list": [1],
            }),
            None,
        );
        let ours = json!({
            "global": {"anything": 1},
            "singleBinary": {"replicass": 1, "persistence": {"size": "1Gi", "storageClass": "x"}, "extraArgs": ["-v"], "podAnnotations": {"a": "b"}},
            "resources": {"requests": {"cpu": 1}},
            "config": {"c.d": 2},
            "template": {"x": 1},
            "list": [{"y": 1}],
            "nodeSelectr": {},
        });
        let found = unknown_keys(&ours, &up, "values.yaml", "loki");
        assert_eq!(
            paths(&found),
            [
                ("loki.nodeSelectr", None),
                ("loki.singleBinary.persistence.storageClass", None),
                ("loki.singleBinary.replicass", Some("loki.singleBinary.replicas")),
            ]
        );
        assert_eq!(found[2].file, "values.yaml");
        assert_eq!(found[2].chart, "up 1.0.0");
    }

    #[test]
    fn schema_rules_additional_and_pattern_properties_and_refs() {
        let schema = json!({
            "$defs": {
                "crds": {"type": "object", "additionalProperties": false, "properties": {"enabled": {"type": "boolean"}}},
            },
            "type": "object",
            "properties": {
                "crds": {"$ref": "#/$defs/crds"},
                "open": {"type": "object", "additionalProperties": true, "properties": {"a": {}}},
                "typed": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {}}, "additionalProperties": false}},
                "pattern": {"type": "object", "patternProperties": {"^p-": {"type": "string"}}, "additionalProperties": false},
                "free": {"type": "object"},
            },
        });
        let up = chart(json!({"inDefaultsOnly": 1}), Some(schema));
        let ours = json!({
            "crds": {"enabled": true, "enabeld": true},
            "open": {"b": 1},
            "typed": {"k": {"x": 1, "y": 2}},
            "pattern": {"p-1": "a", "q-1": "b"},
            "free": {"whatever": {"deep": 1}},
            "inDefaultsOnly": 2,
            "nope": 1,
        });
        let found = unknown_keys(&ours, &up, "platform.yml", "");
        assert_eq!(
            paths(&found),
            [
                ("crds.enabeld", Some("crds.enabled")),
                ("nope", None),
                ("pattern.q-1", None),
                ("typed.k.y", Some("typed.k.x")),
            ]
        );
    }

    #[test]
    fn subcharts_are_checked_against_their_own_values_and_conditions_are_known() {
        let mut parent = chart(
            json!({"grafana": {"enabled": true, "sidecar": {}}, "other": 1}),
            None,
        );
        parent.subcharts.insert(
            "grafana".into(),
            chart(
                json!({"admin": {"existingSecret": ""}, "persistence": {"enabled": false}}),
                None,
            ),
        );
        let ours = json!({"grafana": {"enabled": true, "sidecar": {"x": 1}, "admin": {"existingSecrett": "s"}, "persistence": {"enabled": true}}});
        let found = unknown_keys(&ours, &parent, "values.yaml", "kps");
        assert_eq!(
            paths(&found),
            [(
                "kps.grafana.admin.existingSecrett",
                Some("kps.grafana.admin.existingSecret")
            )]
        );
        assert_eq!(found[0].chart, "up 1.0.0 → up 1.0.0");
        let mut defaults = json!({"a": 1});
        insert_path(&mut defaults, "monitoring.selfMonitoring.enabled");
        assert_eq!(defaults["monitoring"]["selfMonitoring"]["enabled"], json!(true));
    }

    #[test]
    fn commented_keys_are_known_and_empty_maps_stay_free() {
        let text = "persistence:\n  enabled: false\n  # storageClassName: default\n  # nested:\n  #   deep: 1\npodAnnotations: {}\n  # example: x\n";
        let mut defaults: Value = serde_saphyr::from_str(text).unwrap();
        add_commented_keys(&mut defaults, text);
        assert_eq!(
            defaults,
            json!({"persistence": {"enabled": false, "storageClassName": null, "nested": null}, "podAnnotations": {}})
        );
    }

    #[test]
    fn maps_rendered_whole_with_to_yaml_are_free_form() {
        let found = passed_through(
            "{{- toYaml .Values.a.b | nindent 4 }}\n{{ $.Values.c | toYaml }}\n{{- with .Values.loki.limits_config }}\nlimits_config:\n  {{- tpl (. | toYaml) $ | nindent 4 }}\n{{- end }}\n{{- with .Values.x }}\n{{ .y }}\n{{- end }}",
        );
        assert_eq!(found, ["a.b", "c", "loki.limits_config"]);
    }

    #[test]
    fn dotted_keys_are_quoted() {
        let up = chart(
            json!({"configs": {"params": {"server.insecure": false}}, "x": {"y": 1}}),
            None,
        );
        let found = unknown_keys(&json!({"x": {"a.b": 1}}), &up, "f", "");
        assert_eq!(paths(&found), [("x.\"a.b\"", None)]);
    }
}

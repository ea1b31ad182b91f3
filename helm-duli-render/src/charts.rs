//! Discovering the charts under `helm/` and sorting out their dependencies.
//!
//! A chart is a directory of `helm/` with a `Chart.yaml`. A chart whose `dependencies` are not vendored in
//! its `charts/` directory (as `charts/NAME/` or `charts/NAME-VERSION.tgz`) wraps an upstream chart that a
//! pipeline without network access cannot render: it is reported as external, naming the upstream chart and
//! version, instead of being rendered.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::fsio::{CONFIG_FILE_LIMIT, read_to_string_bounded};
use shared::paths::{CHART_FILE, CHART_VENDOR_DIR};

/// Errors reading charts.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// `helm/` could not be listed.
    #[error("cannot list charts in {dir}: {source}")]
    List {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `Chart.yaml` is unreadable or invalid.
    #[error("chart `{chart}`: invalid {path}: {message}")]
    Metadata {
        /// The chart directory name.
        chart: String,
        /// The `Chart.yaml`.
        path: PathBuf,
        /// What is wrong (with line and column when it is a YAML error).
        message: String,
    },
}

/// One entry of `dependencies` in `Chart.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The upstream chart name.
    pub name: String,
    /// Version or range.
    #[serde(default)]
    pub version: String,
    /// Chart repository URL (`https://…`, `oci://…`, `file://…`).
    #[serde(default)]
    pub repository: String,
    /// Alias the parent uses for its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChartFile {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

/// A chart directory under `helm/`.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The directory name; also the release name it is rendered with.
    pub name: String,
    /// The chart directory.
    pub dir: PathBuf,
    /// `name` in `Chart.yaml`.
    pub chart_name: String,
    /// `version` in `Chart.yaml`.
    pub version: String,
    /// Dependencies that are not vendored into `charts/`.
    pub missing_dependencies: Vec<Dependency>,
}

impl Chart {
    /// True when the chart wraps upstream charts that are not vendored.
    pub fn is_external(&self) -> bool {
        !self.missing_dependencies.is_empty()
    }

    /// Read one chart directory.
    pub fn load(dir: &Path) -> Result<Self, ChartError> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let path = dir.join(CHART_FILE);
        let metadata_error = |message: String| ChartError::Metadata {
            chart: name.clone(),
            path: path.clone(),
            message,
        };
        let text = read_to_string_bounded(&path, CONFIG_FILE_LIMIT, "Chart.yaml")
            .map_err(|err| metadata_error(err.to_string()))?;
        let file: ChartFile = serde_saphyr::from_str(&text)
            .map_err(|err| metadata_error(shared::yaml_error::describe(&err)))?;
        let missing_dependencies = file
            .dependencies
            .into_iter()
            .filter(|dependency| !is_vendored(dir, dependency))
            .collect();
        Ok(Chart {
            name: name.clone(),
            dir: dir.to_path_buf(),
            chart_name: file.name,
            version: file.version.unwrap_or_default(),
            missing_dependencies,
        })
    }
}

/// Every chart under `charts_dir`, sorted by directory name.
pub fn discover(charts_dir: &Path) -> Result<Vec<Chart>, ChartError> {
    let entries = std::fs::read_dir(charts_dir).map_err(|source| ChartError::List {
        dir: charts_dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join(CHART_FILE).is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|dir| Chart::load(dir)).collect()
}

/// Whether `charts/` holds the dependency, unpacked or as a `.tgz`.
fn is_vendored(dir: &Path, dependency: &Dependency) -> bool {
    let vendor = dir.join(CHART_VENDOR_DIR);
    if vendor.join(&dependency.name).join(CHART_FILE).is_file() {
        return true;
    }
    let prefix = format!("{}-", dependency.name);
    std::fs::read_dir(&vendor)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            file.starts_with(&prefix) && file.ends_with(".tgz")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn unvendored_dependencies_make_a_chart_external() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "local/Chart.yaml",
            "apiVersion: v2\nname: local\nversion: 0.1.0\n",
        );
        write(
            tmp.path(),
            "wrap/Chart.yaml",
            "apiVersion: v2\nname: wrap\nversion: 0.1.0\ndependencies:\n- name: loki\n  version: 6.0.0\n  repository: https://grafana.github.io/helm-charts\n",
        );
        write(
            tmp.path(),
            "vendored/Chart.yaml",
            "apiVersion: v2\nname: vendored\nversion: 0.1.0\ndependencies:\n- name: sub\n  version: 1.0.0\n  repository: file://../sub\n",
        );
        write(
            tmp.path(),
            "vendored/charts/sub/Chart.yaml",
            "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
        );
        let charts = discover(tmp.path()).unwrap();
        let names: Vec<_> = charts
            .iter()
            .map(|c| (c.name.as_str(), c.is_external()))
            .collect();
        assert_eq!(names, [("local", false), ("vendored", false), ("wrap", true)]);
        assert_eq!(charts[2].missing_dependencies[0].name, "loki");
        assert_eq!(charts[2].missing_dependencies[0].version, "6.0.0");
    }

    #[test]
    fn broken_chart_yaml_names_chart_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "bad/Chart.yaml", "apiVersion: v2\nname: [bad\n");
        let err = discover(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("chart `bad`"), "{err}");
        assert!(err.contains("line"), "{err}");
    }
}

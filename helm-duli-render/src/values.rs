//! Values layering: the chart's `values.yaml`, then `values-<env>.yml`, then `--values FILE`, then `--set`.
//!
//! helm applies the chart's own `values.yaml` itself; this module picks the environment file, checks every
//! values file is valid YAML before helm sees it (so an error names the chart, file and line instead of
//! helm's "error converting YAML to JSON"), and checks `--set` items have the `key=value` shape.

use std::path::{Path, PathBuf};

use super::charts::Chart;

/// Errors in values input.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// A values file could not be read.
    #[error("chart `{chart}`: {source}")]
    Read {
        /// The chart being rendered.
        chart: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: shared::fsio::FsError,
    },
    /// A values file is not valid YAML.
    #[error("chart `{chart}`: values file {path} is not valid YAML: {message}")]
    Yaml {
        /// The chart being rendered.
        chart: String,
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A values file is YAML but not a mapping.
    #[error("chart `{chart}`: values file {path} must be a mapping of keys to values")]
    NotAMapping {
        /// The chart being rendered.
        chart: String,
        /// The file.
        path: PathBuf,
    },
    /// A `--set` item without `=`.
    #[error("--set `{item}` is not KEY=VALUE")]
    Set {
        /// The item.
        item: String,
    },
}

/// The values of one chart render, in the order helm applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    /// Files passed as `-f`, in order: `values-<env>.yml` (if the chart has one), then `--values`.
    pub files: Vec<PathBuf>,
    /// `--set` items, in order.
    pub set: Vec<String>,
    /// Capabilities helm renders for: `--kube-version V` and `--api-versions X`, as helm's flags.
    pub capabilities: Vec<String>,
}

/// Check `--set` items.
pub fn check_set(set: &[String]) -> Result<(), ValuesError> {
    match set
        .iter()
        .find(|item| item.split_once('=').is_none_or(|(key, _)| key.is_empty()))
    {
        Some(item) => Err(ValuesError::Set { item: item.clone() }),
        None => Ok(()),
    }
}

/// Build and check the layers of `chart` for environment `env`.
pub fn layers(
    chart: &Chart,
    env: &str,
    extra_files: &[PathBuf],
    set: &[String],
) -> Result<Layers, ValuesError> {
    let default = chart.dir.join(shared::paths::CHART_VALUES_FILE);
    if default.is_file() {
        check_file(&chart.name, &default)?;
    }
    let mut files = Vec::new();
    files.extend(shared::repo::Repo::env_values_file(&chart.dir, env));
    files.extend(extra_files.iter().cloned());
    for file in &files {
        check_file(&chart.name, file)?;
    }
    check_set(set)?;
    Ok(Layers {
        files,
        set: set.to_vec(),
        capabilities: Vec::new(),
    })
}

/// Parse a values file: it must be YAML (duplicate keys rejected) and a mapping (or empty).
pub fn check_file(chart: &str, path: &Path) -> Result<(), ValuesError> {
    let text = shared::fsio::read_to_string_bounded(path, shared::fsio::CONFIG_FILE_LIMIT, "values file")
        .map_err(|source| ValuesError::Read {
            chart: chart.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
    let value: serde_json::Value = serde_saphyr::from_str(&text).map_err(|err| ValuesError::Yaml {
        chart: chart.to_string(),
        path: path.to_path_buf(),
        message: shared::yaml_error::describe(&err),
    })?;
    if !(value.is_object() || value.is_null()) {
        return Err(ValuesError::NotAMapping {
            chart: chart.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_error_names_chart_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("values-staging.yml");
        std::fs::write(&path, "image:\n  tag: v1\n  tag: v2\nreplicas: [1\n").unwrap();
        let err = check_file("backend", &path).unwrap_err().to_string();
        assert!(err.contains("chart `backend`"), "{err}");
        assert!(err.contains("values-staging.yml"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn set_needs_key_and_equals() {
        assert!(check_set(&["a.b=1".into(), "c=".into()]).is_ok());
        assert!(check_set(&["novalue".into()]).is_err());
        assert!(check_set(&["=1".into()]).is_err());
    }
}

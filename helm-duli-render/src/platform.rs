//! `gitops/platform.yml` as the renderer reads it: the upstream charts `kubectl duli env up` installs in
//! its platform phase, each pinned, with inline values and a namespace, optionally limited to providers.
//! They render with `--platform` (the default for `helm duli-render ENV`), fetched like wrapper
//! dependencies ([`super::deps`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// `gitops/platform.yml` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform catalog {path}: {message}")]
pub struct PlatformError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (field, line).
    pub message: String,
}

/// One entry of the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformEntry {
    /// The release name (also the output group).
    pub name: String,
    /// Chart repository URL, `oci://` registry, or a local chart directory (relative to the catalog).
    pub repo: String,
    /// The chart's name in the repository.
    pub chart: String,
    /// The pinned version.
    pub version: String,
    /// The release namespace.
    pub namespace: String,
    /// Providers the entry is limited to (empty: every provider).
    #[serde(default)]
    pub providers: Vec<String>,
    /// Values handed to helm as a values file.
    #[serde(default)]
    pub values: Value,
}

impl PlatformEntry {
    /// True when the entry applies to an environment of `provider`.
    pub fn applies_to(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }

    /// The local chart directory, when `repo` is not a URL.
    pub fn local_dir(&self, catalog_dir: &Path) -> Option<PathBuf> {
        if self.repo.contains("://") {
            return None;
        }
        let repo = catalog_dir.join(&self.repo);
        let nested = repo.join(&self.chart);
        Some(if nested.join(shared::paths::CHART_FILE).is_file() {
            nested
        } else {
            repo
        })
    }
}

#[derive(Debug, Deserialize)]
struct Catalog {
    #[serde(default)]
    charts: Vec<PlatformEntry>,
}

/// The entries of `path` that apply to `provider`; none when the file does not exist.
pub fn load(path: &Path, provider: &str) -> Result<Vec<PlatformEntry>, PlatformError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let invalid = |message: String| PlatformError {
        path: path.to_path_buf(),
        message,
    };
    let text =
        shared::fsio::read_to_string_bounded(path, shared::fsio::CONFIG_FILE_LIMIT, "platform catalog")
            .map_err(|err| invalid(err.to_string()))?;
    let catalog: Catalog =
        serde_saphyr::from_str(&text).map_err(|err| invalid(shared::yaml_error::describe(&err)))?;
    for (index, entry) in catalog.charts.iter().enumerate() {
        for (field, value) in [
            ("name", &entry.name),
            ("repo", &entry.repo),
            ("chart", &entry.chart),
            ("version", &entry.version),
            ("namespace", &entry.namespace),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("charts[{index}].{field} is empty")));
            }
        }
        if !(entry.values.is_null() || entry.values.is_object()) {
            return Err(invalid(format!("charts[{index}].values is not a mapping")));
        }
    }
    Ok(catalog
        .charts
        .into_iter()
        .filter(|entry| entry.applies_to(provider))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_skips_the_digitalocean_entries_of_this_repo() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gitops/platform.yml");
        let names = |provider| -> Vec<String> {
            load(&path, provider)
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        assert_eq!(
            names("generic"),
            ["cert-manager", "sealed-secrets-controller", "argocd"]
        );
        assert_eq!(names("digitalocean").len(), 5);
    }

    #[test]
    fn an_empty_field_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("platform.yml");
        std::fs::write(
            &path,
            "charts:\n- {name: a, repo: '', chart: a, version: 1.0.0, namespace: x}\n",
        )
        .unwrap();
        let err = load(&path, "generic").unwrap_err().to_string();
        assert!(err.contains("charts[0].repo is empty"), "{err}");
    }
}

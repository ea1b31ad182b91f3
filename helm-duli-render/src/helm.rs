//! Running `helm template`, as a helm plugin or standalone.
//!
//! As a plugin, helm strips its global flags and hands them over in the environment (`HELM_BIN`,
//! `HELM_NAMESPACE`, `HELM_KUBECONTEXT`, `KUBECONFIG`, `HELM_DEBUG`, `HELM_PLUGIN_DIR`, …); [`HelmEnv`]
//! captures what was seen. The child `helm template` inherits that environment, so `HELM_*` settings
//! (registry config, cache homes, debug) apply to it as they would to helm itself. Standalone, `helm` is
//! found on PATH.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;

use super::values::Layers;

/// What helm handed to the plugin through the environment (empty values count as unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HelmEnv {
    /// `HELM_BIN`: the helm that runs us.
    pub bin: Option<String>,
    /// `HELM_NAMESPACE` (`-n`).
    pub namespace: Option<String>,
    /// `HELM_KUBECONTEXT` (`--kube-context`).
    pub kube_context: Option<String>,
    /// `KUBECONFIG` (`--kubeconfig`).
    pub kubeconfig: Option<String>,
    /// `HELM_DEBUG` (`--debug`).
    pub debug: bool,
    /// `HELM_PLUGIN_DIR`: set when running as a helm plugin.
    pub plugin_dir: Option<String>,
}

impl HelmEnv {
    /// Read the variables from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the variables through `lookup` (for tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        HelmEnv {
            bin: get("HELM_BIN"),
            namespace: get("HELM_NAMESPACE"),
            kube_context: get("HELM_KUBECONTEXT"),
            kubeconfig: get("KUBECONFIG"),
            debug: get("HELM_DEBUG").is_some_and(|value| matches!(value.as_str(), "true" | "1")),
            plugin_dir: get("HELM_PLUGIN_DIR"),
        }
    }

    /// True when helm started us as a plugin.
    pub fn is_plugin(&self) -> bool {
        self.plugin_dir.is_some()
    }
}

/// Errors from `helm template`.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// helm could not be started.
    #[error("cannot run {bin}: {source}")]
    Spawn {
        /// The helm binary.
        bin: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// helm failed, typically a template error.
    #[error("chart `{chart}`: helm template failed{}: {message}", location.as_ref().map(|l| format!(" in {l}")).unwrap_or_default())]
    Failed {
        /// The chart.
        chart: String,
        /// `file line N` when helm's message names one.
        location: Option<String>,
        /// helm's message.
        message: String,
    },
}

/// A located helm binary.
#[derive(Debug, Clone)]
pub struct Helm {
    /// The binary.
    pub bin: PathBuf,
}

impl Helm {
    /// Locate helm: `HELM_BIN`, else `helm` on PATH.
    pub fn locate() -> Result<Self, shared::tools::ToolNotFound> {
        shared::tools::helm().map(|bin| Helm { bin })
    }

    /// A cheap identity of the binary for the render cache: its path, size and modification time.
    ///
    /// Asking helm for its version costs a helm start (~60 ms); a different helm binary (or an upgraded
    /// one) has a different path, size or mtime.
    pub fn identity(&self) -> String {
        let resolved = std::fs::canonicalize(&self.bin).unwrap_or_else(|_| self.bin.clone());
        let metadata = std::fs::metadata(&resolved);
        let (len, modified) = match metadata {
            Ok(metadata) => (
                metadata.len(),
                metadata
                    .modified()
                    .ok()
                    .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|duration| duration.as_nanos())
                    .unwrap_or_default(),
            ),
            Err(_) => (0, 0),
        };
        format!("{}:{len}:{modified}", resolved.display())
    }

    /// A helm process to run once and read: no stdin, output captured, killed when dropped, and without
    /// Go's garbage collector (unless `GOGC` says otherwise) — a short-lived Go process spends a good part
    /// of its life in it.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.bin);
        if std::env::var_os("GOGC").is_none() {
            command.env("GOGC", "off");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// `helm template RELEASE DIR --namespace NS -f … --set …`; returns stdout.
    pub async fn template(
        &self,
        chart: &str,
        dir: &Path,
        namespace: &str,
        layers: &Layers,
    ) -> Result<String, HelmError> {
        let mut command = self.command();
        command
            .arg("template")
            .arg(chart)
            .arg(dir)
            .arg("--namespace")
            .arg(namespace);
        for file in &layers.files {
            command.arg("--values").arg(file);
        }
        for item in &layers.set {
            command.arg("--set").arg(item);
        }
        command.args(&layers.capabilities);
        let output = command.output().await.map_err(|source| HelmError::Spawn {
            bin: self.bin.clone(),
            source,
        })?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
            let message = message.strip_prefix("Error: ").unwrap_or(&message).to_string();
            return Err(HelmError::Failed {
                chart: chart.to_string(),
                location: error_location(&message),
                message,
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Pull `file line N` out of helm's error message: helm 3 writes
/// `template: app/templates/x.yaml:12:3: executing …`, helm 4 `app/templates/x.yaml:12:3\n  executing …`,
/// YAML errors `YAML parse error on app/templates/x.yaml: … line 4: …`.
pub fn error_location(message: &str) -> Option<String> {
    for word in message.split_whitespace() {
        let word = word.trim_matches(|c| c == '"' || c == '\'' || c == ',');
        for ext in [".yaml:", ".yml:", ".tpl:", ".txt:", ".json:"] {
            if let Some(at) = word.find(ext) {
                let file = &word[..at + ext.len() - 1];
                let line: String = word[at + ext.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if !line.is_empty() {
                    return Some(format!("{file} line {line}"));
                }
            }
        }
    }
    let rest = message.split("parse error on ").nth(1)?;
    let file = rest.split(':').next()?.trim();
    let line = rest
        .split("line ")
        .nth(1)
        .and_then(|l| l.split(':').next())
        .map(str::trim);
    Some(match line {
        Some(line) => format!("{file} line {line}"),
        None => file.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_helm_env_with_empty_as_unset() {
        let env = HelmEnv::from_lookup(|name| match name {
            "HELM_NAMESPACE" => Some("foo".into()),
            "HELM_KUBECONTEXT" => Some("bar".into()),
            "HELM_DEBUG" => Some("true".into()),
            "KUBECONFIG" => Some(String::new()),
            _ => None,
        });
        assert_eq!(env.namespace.as_deref(), Some("foo"));
        assert_eq!(env.kube_context.as_deref(), Some("bar"));
        assert_eq!(env.kubeconfig, None);
        assert!(env.debug);
        assert!(!env.is_plugin());
    }

    #[test]
    fn finds_file_and_line_in_helm_errors() {
        let message = "template: bad/templates/deployment.yaml:7:20: executing \"bad/templates/deployment.yaml\" \
                       at <.Values.missing.key>: nil pointer evaluating interface {}.key";
        assert_eq!(
            error_location(message).as_deref(),
            Some("bad/templates/deployment.yaml line 7")
        );
        let helm4 = "bad/templates/deployment.yaml:7:20\n  executing \"bad/templates/deployment.yaml\" at <.Values.x>:";
        assert_eq!(
            error_location(helm4).as_deref(),
            Some("bad/templates/deployment.yaml line 7")
        );
        let message = "YAML parse error on bad/templates/cm.yaml: error converting YAML to JSON: yaml: line 4: \
                       did not find expected key";
        assert_eq!(
            error_location(message).as_deref(),
            Some("bad/templates/cm.yaml line 4")
        );
        assert_eq!(error_location("something else"), None);
    }
}

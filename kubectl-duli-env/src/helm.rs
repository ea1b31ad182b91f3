//! Running helm for the platform phase and `down --include-platform`: the user's cluster selection passed
//! on (`--kube-context`, `--kubeconfig`), stderr kept for the log file and for errors, values fed on stdin
//! so that a killed run leaves no temporary file behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::provider::provider_secret;
use shared::cluster::ClusterTarget;

/// Why helm could not do what it was asked (the platform phase reports these as its own errors).
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// helm is not installed.
    #[error(transparent)]
    Missing(#[from] shared::tools::ToolNotFound),
    /// A client flag helm has no equivalent for.
    #[error("{0}")]
    Flags(String),
    /// A helm command failed.
    #[error("`{command}` failed: {message}")]
    Failed {
        /// The command line.
        command: String,
        /// helm's error output.
        message: String,
    },
}

/// A release as `helm list -o json` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// `chartname-version`.
    pub chart: String,
    /// deployed, failed, pending-install, …
    pub status: String,
}

/// Runs helm against the user's cluster selection.
#[derive(Debug, Clone)]
pub struct Helm {
    bin: PathBuf,
    target: ClusterTarget,
    context: String,
    /// When every helm command must have ended (helm's own `--timeout` bounds only its wait, not the
    /// work before it nor its exit).
    deadline: Option<tokio::time::Instant>,
    /// kubectl's client flags as helm's environment variables (`HELM_KUBETOKEN`: never in argv).
    flag_env: FlagEnv,
}

/// helm's environment for the client flags; its `Debug` names the variables, never their values.
#[derive(Clone, Default)]
struct FlagEnv(Vec<(&'static str, String)>);

impl std::fmt::Debug for FlagEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Helm {
    /// Locate helm (`HELM_BIN`, else PATH) for the cluster `target` resolved to `context`.
    pub fn locate(target: &ClusterTarget, context: &str) -> Result<Self, HelmError> {
        let flag_env = FlagEnv(target.overrides.helm_env().map_err(HelmError::Flags)?);
        Ok(Helm {
            bin: shared::tools::helm()?,
            target: target.clone(),
            context: context.to_string(),
            deadline: None,
            flag_env,
        })
    }

    /// The same helm, stopped at `deadline` if a command is still running then: the caller keeps the time
    /// after it to say why, before the command's own deadline speaks instead.
    pub fn until(mut self, deadline: tokio::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The helm binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Run helm with `args` (plus the cluster flags); stdout on success.
    pub async fn run(&self, args: &[String]) -> Result<String, HelmError> {
        self.run_with_input(args, None).await
    }

    /// [`Helm::run`], writing `input` to helm's stdin.
    pub async fn run_with_input(&self, args: &[String], input: Option<Vec<u8>>) -> Result<String, HelmError> {
        let mut all: Vec<String> = args.to_vec();
        // `--server` without a kubeconfig has no context to name: helm takes the server from its environment.
        if self.context != shared::cluster::FLAGS_ONLY {
            all.extend(["--kube-context".to_string(), self.context.clone()]);
        }
        if let Some(kubeconfig) = &self.target.kubeconfig {
            all.extend(["--kubeconfig".to_string(), kubeconfig.display().to_string()]);
        }
        let command = format!("helm {}", args.join(" "));
        tracing::debug!("running {command}");
        let mut child = self.command(&all, input.is_some());
        let failed = |err: std::io::Error| HelmError::Failed {
            command: command.clone(),
            message: format!("cannot run {}: {err}", self.bin.display()),
        };
        let mut process = child.spawn().map_err(failed)?;
        // helm runs in its own process group: if the runner's watchdog has to end the process, helm and
        // whatever it started go too (on a normal stop, dropping `process` kills helm).
        let _group = process.id().map(shared::runner::kill_process_group_on_exit);
        if let (Some(input), Some(mut stdin)) = (input, process.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            stdin.write_all(&input).await.map_err(failed)?;
            // Closing stdin is helm's end of the values document.
            drop(stdin);
        }
        let output = match self.deadline {
            // Dropping the unfinished wait kills helm (`kill_on_drop`).
            Some(deadline) => match tokio::time::timeout_at(deadline, process.wait_with_output()).await {
                Ok(output) => output.map_err(failed)?,
                Err(_) => {
                    return Err(HelmError::Failed {
                        command,
                        message: "it was still running when the time --timeout leaves it ran out, and was \
                                  stopped"
                            .into(),
                    });
                }
            },
            None => process.wait_with_output().await.map_err(failed)?,
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if !stderr.is_empty() {
            tracing::debug!("{command}: stderr: {stderr}");
        }
        if !output.status.success() {
            let message = one_line(&stderr);
            return Err(HelmError::Failed { command, message });
        }
        tracing::trace!("{command}: stdout: {stdout}");
        Ok(stdout)
    }

    /// The helm process for `args`: stdin piped when there is input, output captured, in its own process
    /// group, killed when dropped, and
    /// without the provider API tokens in its environment — the plugin hands those to the cluster itself (as
    /// the provider Secret); helm has no use for them.
    fn command(&self, args: &[String], input: bool) -> tokio::process::Command {
        let mut child = tokio::process::Command::new(&self.bin);
        child
            .args(args)
            .stdin(if input { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for var in token_vars() {
            child.env_remove(var);
        }
        for (name, value) in &self.flag_env.0 {
            child.env(name, value);
        }
        child
    }

    /// Every release in every namespace, whatever its status.
    pub async fn releases(&self) -> Result<Vec<Release>, HelmError> {
        let args: Vec<String> = [
            "list",
            "-A",
            "--deployed",
            "--failed",
            "--pending",
            "-o",
            "json",
            "--max",
            "0",
        ]
        .map(String::from)
        .to_vec();
        let text = self.run(&args).await?;
        serde_json::from_str(text.trim()).map_err(|err| HelmError::Failed {
            command: "helm list -A -o json".into(),
            message: format!(
                "unexpected output ({err}): {}",
                text.chars().take(200).collect::<String>()
            ),
        })
    }

    /// The user-supplied values of a release (`{}` when none).
    pub async fn values(&self, name: &str, namespace: &str) -> Result<Value, HelmError> {
        let args: Vec<String> = ["get", "values", name, "-n", namespace, "-o", "json"]
            .map(String::from)
            .to_vec();
        let text = self.run(&args).await?;
        let value: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
        Ok(if value.is_null() { json!({}) } else { value })
    }
}

/// helm's error output as one line: from its `Error:` line on (warnings before it dropped), the Go error
/// chain's continuation lines joined with spaces.
fn one_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let start = lines.iter().position(|l| l.starts_with("Error: ")).unwrap_or(0);
    let text = lines[start..].join(" ");
    text.strip_prefix("Error: ").unwrap_or(&text).to_string()
}

/// The environment variables that may hold a provider's API token (see [`provider_secret`]).
fn token_vars() -> impl Iterator<Item = &'static str> {
    ["digitalocean"]
        .into_iter()
        .filter_map(provider_secret)
        .map(|secret| secret.env_var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_errors_become_one_line() {
        let stderr = "WARNING: kubeconfig is group-readable\nError: UPGRADE FAILED: template: a/templates/b.yaml:4:18\n  executing \"a/templates/b.yaml\" at <.Values.x.y>:\n    nil pointer evaluating interface {}.y\n";
        assert_eq!(
            one_line(stderr),
            "UPGRADE FAILED: template: a/templates/b.yaml:4:18 executing \"a/templates/b.yaml\" at <.Values.x.y>: nil pointer evaluating interface {}.y"
        );
        assert_eq!(one_line("plain failure"), "plain failure");
    }

    /// helm's own `--timeout` does not bound its whole run: the plugin stops it at the deadline it was given.
    #[tokio::test]
    async fn a_command_still_running_at_the_deadline_is_stopped_with_a_reason() {
        let helm = Helm {
            bin: PathBuf::from("/bin/sh"),
            target: ClusterTarget::default(),
            context: "c".into(),
            deadline: None,
            flag_env: FlagEnv::default(),
        }
        .until(tokio::time::Instant::now() + std::time::Duration::from_millis(300));
        let started = std::time::Instant::now();
        // `sh -c 'sleep 30' --kube-context c`: the appended cluster flags become the script's $0 and $1.
        let err = helm.run(&["-c".into(), "sleep 30".into()]).await.unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "not stopped"
        );
        let message = err.to_string();
        assert!(message.starts_with("`helm -c sleep 30` failed: "), "{message}");
        assert!(message.contains("--timeout"), "{message}");
    }

    #[test]
    fn helm_does_not_inherit_provider_tokens() {
        let helm = Helm {
            bin: PathBuf::from("/bin/true"),
            target: ClusterTarget::default(),
            context: "c".into(),
            deadline: None,
            flag_env: FlagEnv::default(),
        };
        let command = helm.command(&["version".into()], false);
        let removed: Vec<_> = command
            .as_std()
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert!(
            removed.contains(&"DIGITALOCEAN_ACCESS_TOKEN".to_string()),
            "{removed:?}"
        );
    }
}

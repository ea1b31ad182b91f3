//! Cluster access with kubectl's semantics: `--kubeconfig` (else `KUBECONFIG`, else `~/.kube/config`),
//! `--context` (else the current context), and the context's namespace.
//!
//! Errors name the kubeconfig file and, for an unknown context, list the contexts it has.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Which cluster to talk to, as the user selected it.
#[derive(Debug, Clone, Default)]
pub struct ClusterTarget {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
}

/// Errors building a client.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or parsed.
    #[error("cannot load kubeconfig {source_desc}: {message}; check the file or pass --kubeconfig")]
    Kubeconfig {
        /// Which file(s).
        source_desc: String,
        /// The loader's message.
        message: String,
    },
    /// The context does not exist.
    #[error("context `{context}` not found in kubeconfig {source_desc}; known contexts: {known}")]
    UnknownContext {
        /// Requested context.
        context: String,
        /// Which file(s).
        source_desc: String,
        /// Comma-separated known contexts.
        known: String,
    },
    /// The kubeconfig has no usable context.
    #[error("kubeconfig {source_desc} has no current-context; pass --context NAME")]
    NoContext {
        /// Which file(s).
        source_desc: String,
    },
    /// Building the client failed.
    #[error("cannot configure a client for context `{context}`: {message}")]
    Client {
        /// The context.
        context: String,
        /// Why.
        message: String,
    },
}

/// A ready client plus what it was built from.
#[derive(Clone)]
pub struct Cluster {
    /// The API client.
    pub client: kube::Client,
    /// The context name used.
    pub context: String,
    /// The context's default namespace.
    pub default_namespace: String,
    /// The API server URL.
    pub server: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .finish()
    }
}

impl ClusterTarget {
    fn source_desc(&self) -> String {
        match &self.kubeconfig {
            Some(path) => path.display().to_string(),
            None => std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".to_string()),
        }
    }

    fn read_kubeconfig(&self) -> Result<Kubeconfig, ClusterError> {
        let loaded = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        };
        let kubeconfig = loaded.map_err(|err| ClusterError::Kubeconfig {
            source_desc: self.source_desc(),
            message: first_line(&format!("{err:#}")),
        })?;
        if kubeconfig.contexts.is_empty() {
            return Err(ClusterError::Kubeconfig {
                source_desc: self.source_desc(),
                message: "it defines no contexts".to_string(),
            });
        }
        Ok(kubeconfig)
    }

    /// The context name this target resolves to (the flag, else the kubeconfig's current-context).
    pub fn context_name(&self) -> Result<String, ClusterError> {
        let kubeconfig = self.read_kubeconfig()?;
        self.resolve_context(&kubeconfig)
    }

    fn resolve_context(&self, kubeconfig: &Kubeconfig) -> Result<String, ClusterError> {
        let context = match (&self.context, &kubeconfig.current_context) {
            (Some(context), _) => context.clone(),
            (None, Some(current)) if !current.is_empty() => current.clone(),
            _ => {
                return Err(ClusterError::NoContext {
                    source_desc: self.source_desc(),
                });
            }
        };
        if !kubeconfig.contexts.iter().any(|named| named.name == context) {
            let known: Vec<_> = kubeconfig
                .contexts
                .iter()
                .map(|named| named.name.as_str())
                .collect();
            return Err(ClusterError::UnknownContext {
                context,
                source_desc: self.source_desc(),
                known: known.join(", "),
            });
        }
        Ok(context)
    }

    /// Build a client for the selected context. `timeout` bounds connecting and each request's read.
    pub async fn connect(&self, timeout: Option<Duration>) -> Result<Cluster, ClusterError> {
        let kubeconfig = self.read_kubeconfig()?;
        let context = self.resolve_context(&kubeconfig)?;
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|err| ClusterError::Client {
                context: context.clone(),
                message: first_line(&format!("{err:#}")),
            })?;
        if let Some(timeout) = timeout {
            config.connect_timeout = Some(timeout);
            config.read_timeout = Some(timeout);
        }
        let server = config.cluster_url.to_string();
        let default_namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config).map_err(|err| ClusterError::Client {
            context: context.clone(),
            message: first_line(&format!("{err:#}")),
        })?;
        Ok(Cluster {
            client,
            context,
            default_namespace,
            server,
        })
    }
}

/// The first line of a loader message: the YAML parser appends a snippet of the file, which may hold a
/// token or a password, so only the line with the position and the problem is kept.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default().trim_end();
    // YAML parsers start their message with `error:`, which reads as a second error inside ours.
    let line = line.strip_prefix("error: ").unwrap_or(line);
    line.replace(": error: ", ": ")
}

/// The innermost cause of an error, which says what happened (`Connection refused (os error 111)`,
/// `timed out`), first line only.
pub fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    first_line(&cause.to_string())
}

/// One sentence for a failed API request, ending in what to do: 401, 403, 429 and 5xx answers and
/// transport failures (refused, timed out, unresolvable host, TLS) get advice; other API answers keep the
/// server's message and code. Never includes the request's body or headers.
pub fn describe_api_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.as_str()
            } else {
                status.message.as_str()
            };
            match status.code {
                401 => format!(
                    "the API server rejected the credentials (401 Unauthorized: {message}); log in again or refresh the kubeconfig user's token or certificate"
                ),
                403 => format!(
                    "forbidden (403: {message}); ask a cluster admin for the permission (check with `kubectl auth can-i`)"
                ),
                429 => format!(
                    "the API server kept throttling the requests (429 TooManyRequests: {message}); try again later"
                ),
                code @ 500..=599 => format!(
                    "the API server failed ({code} {}: {message}); try again, and check the cluster's health if it persists",
                    status.reason
                ),
                code => format!("{message} ({code} {})", status.reason),
            }
        }
        other => {
            let cause = innermost_cause(other);
            let timed_out = cause.to_ascii_lowercase().contains("timed out");
            if timed_out {
                format!("the API server did not answer ({cause}); check the cluster is up and reachable")
            } else {
                format!(
                    "cannot reach the API server ({cause}); check that the cluster is up and that the kubeconfig's server address is right (kubectl cluster-info)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_messages_keep_one_line_and_no_inner_error_prefix() {
        assert_eq!(
            first_line(
                "failed to parse kubeconfig YAML: error: line 8 column 17: unclosed quote\n  token: x"
            ),
            "failed to parse kubeconfig YAML: line 8 column 17: unclosed quote"
        );
        assert_eq!(first_line("error: line 1: bad"), "line 1: bad");
    }

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: 'http://127.0.0.1:1'}
users:
- name: u
  user: {}
contexts:
- name: one
  context: {cluster: a, user: u, namespace: staging}
- name: two
  context: {cluster: a, user: u}
current-context: one
";

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn uses_current_context_and_its_namespace() {
        let (_dir, path) = write(KUBECONFIG);
        let cluster = ClusterTarget {
            kubeconfig: Some(path),
            context: None,
        }
        .connect(None)
        .await
        .unwrap();
        assert_eq!(cluster.context, "one");
        assert_eq!(cluster.default_namespace, "staging");
    }

    #[tokio::test]
    async fn unknown_context_lists_known_ones() {
        let (_dir, path) = write(KUBECONFIG);
        let target = ClusterTarget {
            kubeconfig: Some(path.clone()),
            context: Some("three".into()),
        };
        let err = target.connect(None).await.unwrap_err().to_string();
        assert!(err.contains("context `three` not found"), "{err}");
        assert!(err.contains("one, two"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    /// The error of connecting with the kubeconfig at `path`, which must fail.
    async fn kubeconfig_error(path: &std::path::Path) -> String {
        ClusterTarget {
            kubeconfig: Some(path.to_path_buf()),
            context: None,
        }
        .connect(None)
        .await
        .unwrap_err()
        .to_string()
    }

    #[tokio::test]
    async fn a_malformed_kubeconfig_is_reported_without_its_contents() {
        let (_dir, path) = write(&KUBECONFIG.replace("user: {}", "user: {token: \"tok-PLAINTEXT-1}"));
        let err = kubeconfig_error(&path).await;
        assert!(
            err.contains(&path.display().to_string()) && err.contains("line "),
            "{err}"
        );
        assert!(!err.contains("tok-PLAINTEXT-1"), "{err}");
    }

    #[test]
    fn api_errors_read_as_one_sentence_with_advice() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("no", reason).with_code(code),
            ))
        };
        assert!(describe_api_error(&status(401, "Unauthorized")).contains("log in again"));
        assert!(describe_api_error(&status(403, "Forbidden")).contains("kubectl auth can-i"));
        assert!(describe_api_error(&status(500, "InternalError")).contains("try again"));
        assert_eq!(describe_api_error(&status(409, "Conflict")), "no (409 Conflict)");
    }

    #[tokio::test]
    async fn malformed_and_empty_kubeconfig_name_the_file() {
        for text in ["clusters: [oops", ""] {
            let (_dir, path) = write(text);
            let err = kubeconfig_error(&path).await;
            assert!(err.contains("cannot load kubeconfig"), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }
}

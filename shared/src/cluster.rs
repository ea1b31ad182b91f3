//! Cluster access with kubectl's semantics: `--kubeconfig` (else `KUBECONFIG`, else `~/.kube/config`),
//! `--context` (else the current context), the context's namespace, and kubectl's client flags
//! ([`ClientOverrides`]: `--server`, `--token`, `--as`, …) laid over what the kubeconfig says.
//!
//! Errors name the kubeconfig file and, for an unknown context, list the contexts it has.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::{
    AuthInfo, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// Which cluster to talk to, as the user selected it.
#[derive(Debug, Clone, Default)]
pub struct ClusterTarget {
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// kubectl's other client flags, which win over the kubeconfig.
    pub overrides: ClientOverrides,
}

/// A bearer token (`--token`): its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token itself, for the one place that sends it (the kubeconfig handed to kube, helm's environment).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Token(text.to_string()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// kubectl's client flags beyond `--kubeconfig`/`--context` (`kubectl options`), applied over the kubeconfig.
#[derive(Debug, Clone, Default)]
pub struct ClientOverrides {
    /// `--cluster`: the kubeconfig cluster to use instead of the context's.
    pub cluster: Option<String>,
    /// `--user`: the kubeconfig user to use instead of the context's.
    pub user: Option<String>,
    /// `--server`: the API server's address.
    pub server: Option<String>,
    /// `--token`: a bearer token (replaces the user's other credentials).
    pub token: Option<Token>,
    /// `--as`: the user to impersonate (`Impersonate-User`).
    pub as_user: Option<String>,
    /// `--as-group`: groups to impersonate (`Impersonate-Group`).
    pub as_groups: Vec<String>,
    /// `--as-uid`: the UID to impersonate (`Impersonate-Uid`).
    pub as_uid: Option<String>,
    /// `--certificate-authority`: the CA file to verify the server with.
    pub certificate_authority: Option<PathBuf>,
    /// `--client-certificate`: the client certificate file.
    pub client_certificate: Option<PathBuf>,
    /// `--client-key`: the client key file.
    pub client_key: Option<PathBuf>,
    /// `--insecure-skip-tls-verify`.
    pub insecure_skip_tls_verify: bool,
    /// `--request-timeout` (`None`: none of its own).
    pub request_timeout: Option<Duration>,
}

/// The context name used when `--server` is given and there is no kubeconfig at all (no kubeconfig
/// context to hand to helm either).
pub const FLAGS_ONLY: &str = "(flags)";

impl ClientOverrides {
    /// Lay the flags over `kubeconfig` for `context`: the context's cluster and user entries are replaced
    /// by copies carrying the flags, so that kube's own loader reads them (files, impersonation, TLS).
    fn apply(&self, kubeconfig: &mut Kubeconfig, context: &str) -> KubeConfigOptions {
        let named = kubeconfig
            .contexts
            .iter()
            .find(|named| named.name == context)
            .and_then(|named| named.context.clone())
            .unwrap_or_default();
        let cluster_name = self.cluster.clone().unwrap_or(named.cluster);
        let user_name = self.user.clone().or(named.user);
        let mut options = KubeConfigOptions {
            context: Some(context.to_string()),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let cluster_changes =
            self.server.is_some() || self.certificate_authority.is_some() || self.insecure_skip_tls_verify;
        if cluster_changes {
            let mut cluster = kubeconfig
                .clusters
                .iter()
                .find(|named| named.name == cluster_name)
                .and_then(|named| named.cluster.clone())
                .unwrap_or_default();
            if let Some(server) = &self.server {
                cluster.server = Some(server.clone());
            }
            if let Some(ca) = &self.certificate_authority {
                cluster.certificate_authority = Some(ca.display().to_string());
                cluster.certificate_authority_data = None;
            }
            if self.insecure_skip_tls_verify {
                cluster.insecure_skip_tls_verify = Some(true);
                // kube, like kubectl, refuses a CA together with skipping verification.
                cluster.certificate_authority = None;
                cluster.certificate_authority_data = None;
            }
            let name = format!("{cluster_name}{FLAGS_ONLY}");
            kubeconfig.clusters.push(NamedCluster {
                name: name.clone(),
                cluster: Some(cluster),
                other: Default::default(),
            });
            options.cluster = Some(name);
        }
        let user_changes = self.token.is_some()
            || self.as_user.is_some()
            || !self.as_groups.is_empty()
            || self.as_uid.is_some()
            || self.client_certificate.is_some()
            || self.client_key.is_some();
        if user_changes {
            let mut user = user_name
                .as_ref()
                .and_then(|name| kubeconfig.auth_infos.iter().find(|named| &named.name == name))
                .and_then(|named| named.auth_info.clone())
                .unwrap_or_default();
            if let Some(token) = &self.token {
                // The flag's token is the credential, as in kubectl: no other one is sent with it.
                user = AuthInfo {
                    token: Some(token.expose().to_string().into()),
                    client_certificate: user.client_certificate,
                    client_certificate_data: user.client_certificate_data,
                    client_key: user.client_key,
                    client_key_data: user.client_key_data,
                    impersonate: user.impersonate,
                    impersonate_uid: user.impersonate_uid,
                    impersonate_groups: user.impersonate_groups,
                    ..AuthInfo::default()
                };
            }
            if let Some(cert) = &self.client_certificate {
                user.client_certificate = Some(cert.display().to_string());
                user.client_certificate_data = None;
            }
            if let Some(key) = &self.client_key {
                user.client_key = Some(key.display().to_string());
                user.client_key_data = None;
            }
            if let Some(as_user) = &self.as_user {
                user.impersonate = Some(as_user.clone());
            }
            if !self.as_groups.is_empty() {
                user.impersonate_groups = Some(self.as_groups.clone());
            }
            if let Some(uid) = &self.as_uid {
                user.impersonate_uid = Some(uid.clone());
            }
            let name = format!("{}{FLAGS_ONLY}", user_name.unwrap_or_default());
            kubeconfig.auth_infos.push(NamedAuthInfo {
                name: name.clone(),
                auth_info: Some(user),
                other: Default::default(),
            });
            options.user = Some(name);
        }
        options
    }

    /// A kubeconfig holding only what the flags say, for `--server` without any kubeconfig (as kubectl).
    fn flags_only_kubeconfig() -> Kubeconfig {
        Kubeconfig {
            clusters: vec![NamedCluster {
                name: FLAGS_ONLY.to_string(),
                cluster: Some(Default::default()),
                other: Default::default(),
            }],
            auth_infos: vec![NamedAuthInfo {
                name: FLAGS_ONLY.to_string(),
                auth_info: Some(AuthInfo::default()),
                other: Default::default(),
            }],
            contexts: vec![NamedContext {
                name: FLAGS_ONLY.to_string(),
                context: Some(Context {
                    cluster: FLAGS_ONLY.to_string(),
                    user: Some(FLAGS_ONLY.to_string()),
                    namespace: Some("default".to_string()),
                    ..Default::default()
                }),
                other: Default::default(),
            }],
            current_context: Some(FLAGS_ONLY.to_string()),
            ..Default::default()
        }
    }

    /// What helm must be told to reach the same cluster as the same user, as environment variables
    /// (`HELM_KUBETOKEN` and friends): a token never goes into helm's arguments. The flags helm has no
    /// equivalent for (`--user`, `--cluster`, client certificates, `--as-uid`) are named in the error.
    pub fn helm_env(&self) -> Result<Vec<(&'static str, String)>, String> {
        let mut unsupported = Vec::new();
        if self.user.is_some() {
            unsupported.push("--user");
        }
        if self.cluster.is_some() {
            unsupported.push("--cluster");
        }
        if self.client_certificate.is_some() || self.client_key.is_some() {
            unsupported.push("--client-certificate/--client-key");
        }
        if self.as_uid.is_some() {
            unsupported.push("--as-uid");
        }
        if !unsupported.is_empty() {
            return Err(format!(
                "helm cannot take {} as a flag: put it in a kubeconfig context and pass --context instead",
                unsupported.join(", ")
            ));
        }
        let mut env = Vec::new();
        if let Some(server) = &self.server {
            env.push(("HELM_KUBEAPISERVER", server.clone()));
        }
        if let Some(token) = &self.token {
            env.push(("HELM_KUBETOKEN", token.expose().to_string()));
        }
        if let Some(as_user) = &self.as_user {
            env.push(("HELM_KUBEASUSER", as_user.clone()));
        }
        if !self.as_groups.is_empty() {
            env.push(("HELM_KUBEASGROUPS", self.as_groups.join(",")));
        }
        if let Some(ca) = &self.certificate_authority {
            env.push(("HELM_KUBECAFILE", ca.display().to_string()));
        }
        if self.insecure_skip_tls_verify {
            env.push(("HELM_KUBEINSECURE_SKIP_TLS_VERIFY", "true".to_string()));
        }
        Ok(env)
    }
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
            // `--server` needs no kubeconfig (as kubectl); a kubeconfig that exists is still read.
            None if self.overrides.server.is_some() && !default_kubeconfig_exists() => {
                Ok(ClientOverrides::flags_only_kubeconfig())
            }
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
        let mut kubeconfig = self.read_kubeconfig()?;
        let context = self.resolve_context(&kubeconfig)?;
        let options = self.overrides.apply(&mut kubeconfig, &context);
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|err| ClusterError::Client {
                context: context.clone(),
                message: first_line(&format!("{err:#}")),
            })?;
        // `--request-timeout` bounds each request as in kubectl; else the command's timeout does.
        if let Some(timeout) = self.overrides.request_timeout.or(timeout) {
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

/// True when `KUBECONFIG` names a file that exists or `~/.kube/config` exists.
fn default_kubeconfig_exists() -> bool {
    match std::env::var_os("KUBECONFIG") {
        Some(paths) if !paths.is_empty() => std::env::split_paths(&paths).any(|path| path.is_file()),
        _ => dirs_home().is_some_and(|home| home.join(".kube/config").is_file()),
    }
}

fn dirs_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
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
            ..Default::default()
        }
        .connect(None)
        .await
        .unwrap();
        assert_eq!(cluster.context, "one");
        assert_eq!(cluster.default_namespace, "staging");
    }

    #[tokio::test]
    async fn flags_override_the_kubeconfig_like_kubectl() {
        let (dir, path) = write(KUBECONFIG);
        let ca = dir.path().join("ca.pem");
        let target = ClusterTarget {
            kubeconfig: Some(path.clone()),
            context: Some("two".into()),
            overrides: ClientOverrides {
                server: Some("https://127.0.0.1:6443".into()),
                certificate_authority: Some(ca.clone()),
                token: Some("tok-SECRET-9".parse().unwrap()),
                as_user: Some("alice".into()),
                as_groups: vec!["devs".into(), "ops".into()],
                as_uid: Some("u-1".into()),
                request_timeout: Some(Duration::from_secs(7)),
                ..Default::default()
            },
        };
        let mut kubeconfig = target.read_kubeconfig().unwrap();
        let options = target.overrides.apply(&mut kubeconfig, "two");
        assert_eq!(options.context.as_deref(), Some("two"));
        let cluster = chosen_cluster(&kubeconfig, &options);
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority, Some(ca.display().to_string()));
        let user = kubeconfig
            .auth_infos
            .iter()
            .find(|u| Some(&u.name) == options.user.as_ref())
            .and_then(|u| u.auth_info.clone())
            .unwrap();
        assert_eq!(user.impersonate.as_deref(), Some("alice"));
        assert_eq!(user.impersonate_groups, Some(vec!["devs".into(), "ops".into()]));
        assert_eq!(user.impersonate_uid.as_deref(), Some("u-1"));
        assert!(user.token.is_some());
        // The token is never shown: not in Debug of the flags, the target, or helm's variable names.
        assert!(!format!("{target:?}").contains("tok-SECRET-9"));
        // The original entries are left as they were (another context may use them).
        assert!(kubeconfig.clusters.iter().any(|c| c.name == "a"
            && c.cluster.as_ref().and_then(|c| c.server.as_deref()) == Some("http://127.0.0.1:1")));
        assert!(target.overrides.helm_env().unwrap_err().contains("--as-uid"));
        let helm_flags = ClientOverrides {
            as_uid: None,
            ..target.overrides.clone()
        };
        let env = helm_flags.helm_env().unwrap();
        let names: Vec<&str> = env.iter().map(|(name, _)| *name).collect();
        assert!(names.contains(&"HELM_KUBETOKEN") && names.contains(&"HELM_KUBEAPISERVER"));
    }

    /// The cluster entry the overridden options select.
    fn chosen_cluster(
        kubeconfig: &kube::config::Kubeconfig,
        options: &kube::config::KubeConfigOptions,
    ) -> kube::config::Cluster {
        kubeconfig
            .clusters
            .iter()
            .find(|c| Some(&c.name) == options.cluster.as_ref())
            .and_then(|c| c.cluster.clone())
            .unwrap()
    }

    #[tokio::test]
    async fn insecure_skip_drops_the_ca_and_helm_refuses_flags_it_lacks() {
        let (_dir, path) = write(KUBECONFIG);
        let overrides = ClientOverrides {
            insecure_skip_tls_verify: true,
            user: Some("u".into()),
            ..Default::default()
        };
        let target = ClusterTarget {
            kubeconfig: Some(path),
            context: None,
            overrides: overrides.clone(),
        };
        let mut kubeconfig = target.read_kubeconfig().unwrap();
        let options = overrides.apply(&mut kubeconfig, "one");
        assert_eq!(options.user.as_deref(), Some("u"));
        let cluster = chosen_cluster(&kubeconfig, &options);
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        assert_eq!(cluster.certificate_authority_data, None);
        let err = overrides.helm_env().unwrap_err();
        assert!(err.contains("--user") && err.contains("--context"), "{err}");
        // The connection itself is built with the flags.
        target.connect(None).await.unwrap();
    }

    #[tokio::test]
    async fn unknown_context_lists_known_ones() {
        let (_dir, path) = write(KUBECONFIG);
        let target = ClusterTarget {
            kubeconfig: Some(path.clone()),
            context: Some("three".into()),
            ..Default::default()
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
            ..Default::default()
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

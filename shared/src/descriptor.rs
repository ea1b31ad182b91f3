//! The environment descriptor: an environment published into the cluster, so the plugins work from any
//! directory with only a kubeconfig (`kubectl duli db connect prod` from `~`).
//!
//! `env up` applies one ConfigMap per environment, [`DESCRIPTOR_NAME`] in the environment's own namespace:
//! app developers can read their namespace (they run `db` against it), while a cluster-wide or `duli`
//! system namespace would need rights they often lack. It holds the environment as validated YAML (not the
//! file's text: comments are free text no check can vouch for), the duli version and the repository's
//! revision when git knows it; publishing refuses a field that could hold a credential.
//!
//! [`EnvironmentSource`] answers "where do environments come from": `--repo`/`DULI_REPO`, else the
//! repository found walking up from the current directory, else the descriptors in the cluster of the
//! current kubeconfig context. With `-v` it logs which one was used.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, ObjectMeta};

use crate::api::{ApiClient, ApiError, Call};
use crate::cli::CommonArgs;
use crate::cluster::Cluster;
use crate::environment::{Environment, EnvironmentError};
use crate::repo::{Repo, RepoError};

/// The ConfigMap's name, in the environment's namespace.
pub const DESCRIPTOR_NAME: &str = "duli-environment";
/// The label that marks descriptors (value [`DESCRIPTOR_KIND`]).
pub const DESCRIPTOR_LABEL: &str = "duli.one/descriptor";
/// The value of [`DESCRIPTOR_LABEL`].
pub const DESCRIPTOR_KIND: &str = "environment";
/// The label naming the environment (as on its namespace and Applications).
pub const ENVIRONMENT_LABEL: &str = "environment";
/// The data key holding the environment as YAML.
pub const DATA_KEY: &str = "environment.yml";
/// The annotation with the duli version that published it.
pub const VERSION_ANNOTATION: &str = "duli.one/version";
/// The annotation with the repository revision it was published from (absent when unknown).
pub const REVISION_ANNOTATION: &str = "duli.one/revision";

/// Errors publishing or finding descriptors.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// `--repo` names something that is not a repository.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The environment (file or descriptor) is unknown or invalid.
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// A field that could hold a credential: never published.
    #[error(
        "environment file {path}: field `{field}` looks like it holds a credential ({why}); the descriptor \
         `env up` publishes into the cluster must hold none: move the credential out of the file (a \
         SealedSecret, a credential helper)"
    )]
    Secret {
        /// The environment file.
        path: PathBuf,
        /// The dotted field.
        field: String,
        /// What gave it away.
        why: &'static str,
    },
    /// Neither a repository nor a descriptor.
    #[error(
        "{not_found}; and no environment descriptor {wanted} in the cluster (context {context}; tried {tried}): \
         run `kubectl duli env up ENV` from the repository once, or pass --repo DIR"
    )]
    Missing {
        /// The repository error, as the repository-only commands say it.
        not_found: RepoError,
        /// `` `staging` `` or `for any environment`.
        wanted: String,
        /// The kubeconfig context asked.
        context: String,
        /// What was tried, in order, with what each answered.
        tried: String,
    },
    /// A descriptor in the cluster is not what `env up` writes.
    #[error(
        "configmap {namespace}/{name} in context {context} is not a valid duli environment descriptor: {problem}; run `kubectl duli env up ENV` from the repository to publish it again"
    )]
    Invalid {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The context.
        context: String,
        /// What is wrong.
        problem: String,
    },
    /// An API call failed (not a 403, which only rules one place out).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl DescriptorError {
    /// True for the error that asks for a repository or a descriptor (exit 2, like the repository error).
    pub fn is_missing(&self) -> bool {
        matches!(self, DescriptorError::Missing { .. })
    }
}

/// The labels of `name`'s descriptor.
pub fn labels(name: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/managed-by", "duli"),
        ("app.kubernetes.io/part-of", "duli"),
        (DESCRIPTOR_LABEL, DESCRIPTOR_KIND),
        (ENVIRONMENT_LABEL, name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The descriptor ConfigMap of `env`; `revision` is the repository's commit when known. Refuses a field
/// that could hold a credential (see [`check_no_secret`]).
pub fn to_config_map(env: &Environment, revision: Option<&str>) -> Result<ConfigMap, DescriptorError> {
    check_no_secret(env)?;
    let yaml = serde_saphyr::to_string(env).map_err(|err| EnvironmentError::Parse {
        path: env.source.clone(),
        message: format!("cannot write it as YAML: {err}"),
    })?;
    let mut annotations = BTreeMap::from([(
        VERSION_ANNOTATION.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )]);
    if let Some(revision) = revision {
        annotations.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    }
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(DESCRIPTOR_NAME.to_string()),
            namespace: Some(env.namespace.clone()),
            labels: Some(labels(&env.name)),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(DATA_KEY.to_string(), yaml)])),
        ..ConfigMap::default()
    })
}

/// The environment a descriptor holds, validated as a file would be; `context` is for messages.
pub fn from_config_map(map: &ConfigMap, context: &str) -> Result<Environment, DescriptorError> {
    let namespace = map.metadata.namespace.clone().unwrap_or_default();
    let name = map.metadata.name.clone().unwrap_or_default();
    let invalid = |problem: String| DescriptorError::Invalid {
        namespace: namespace.clone(),
        name: name.clone(),
        context: context.to_string(),
        problem,
    };
    let labelled = map
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(ENVIRONMENT_LABEL))
        .ok_or_else(|| invalid(format!("it has no label `{ENVIRONMENT_LABEL}`")))?;
    let text = map
        .data
        .as_ref()
        .and_then(|data| data.get(DATA_KEY))
        .ok_or_else(|| invalid(format!("it has no data key `{DATA_KEY}`")))?;
    // Named like a file `<env>.yml`, so the file-name rule checks the label against the content.
    let source = PathBuf::from(format!(
        "configmap {namespace}/{name} (context {context})/{labelled}.yml"
    ));
    let env = Environment::from_yaml(text, &source).map_err(|err| invalid(err.to_string()))?;
    if env.namespace != namespace {
        return Err(invalid(format!(
            "it describes namespace `{}` but lives in `{namespace}`",
            env.namespace
        )));
    }
    Ok(env)
}

/// Refuse what could be a credential: user information in a URL (`https://user:token@host`), a query
/// string in a URL, and `@` in a `host:port` endpoint. Everything else in an environment file is a name,
/// a size or an address.
pub fn check_no_secret(env: &Environment) -> Result<(), DescriptorError> {
    let secret = |field: String, why| DescriptorError::Secret {
        path: env.source.clone(),
        field,
        why,
    };
    let mut urls = vec![("gitops.repo_url".to_string(), env.gitops.repo_url.clone())];
    for (field, item) in env.chart_mirrors.items() {
        urls.push((field, item));
    }
    for (field, url) in urls {
        // A chart mirror item is `FROM=TO`: both sides are URLs.
        for url in url.split('=') {
            let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
            let authority = authority.split('/').next().unwrap_or_default();
            if authority.contains('@') {
                return Err(secret(field, "user information in a URL"));
            }
            if url.contains('?') {
                return Err(secret(field, "a query string in a URL"));
            }
        }
    }
    let services = [
        ("postgres", &env.endpoints.postgres),
        ("redis", &env.endpoints.redis),
        ("rabbitmq", &env.endpoints.rabbitmq),
    ];
    for (service, endpoints) in services {
        for (kind, address) in [
            ("internal", Some(&endpoints.internal)),
            ("read_only", endpoints.read_only.as_ref()),
            ("management", endpoints.management.as_ref()),
            ("external", Some(&endpoints.external)),
        ] {
            if address.is_some_and(|a| a.contains('@')) {
                return Err(secret(
                    format!("endpoints.{service}.{kind}"),
                    "user information in an address",
                ));
            }
        }
    }
    Ok(())
}

/// The repository's commit (`git rev-parse HEAD`), when git is installed and the repository is a git
/// work tree; `None` otherwise (the descriptor then says nothing about it). git gets only `PATH` and `HOME`
/// of the plugin's environment: the user's provider tokens and kubeconfig credentials are none of its
/// business (the leak audit checks every child's environment).
pub fn revision(repo: &Repo) -> Option<String> {
    let mut git = std::process::Command::new("git");
    git.env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(var) {
            git.env(var, value);
        }
    }
    let output = git
        .arg("-C")
        .arg(repo.root())
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_string())
}

/// Where environments come from: a repository (`--repo`, `DULI_REPO`, or found walking up), else the
/// descriptors in the cluster.
#[derive(Debug)]
pub struct EnvironmentSource {
    repo: Option<Repo>,
    /// Where walking up started, when it found nothing.
    start: PathBuf,
}

impl EnvironmentSource {
    /// `--repo`/`DULI_REPO` (an error when it is not a repository), else walking up from the current
    /// directory; when that finds nothing, the environments will come from the cluster.
    pub fn locate(common: &CommonArgs) -> Result<Self, RepoError> {
        match common.locate_repo() {
            Ok(repo) => {
                tracing::info!("environments from the repository {}", repo.root().display());
                Ok(EnvironmentSource {
                    repo: Some(repo),
                    start: PathBuf::new(),
                })
            }
            Err(RepoError::NotFound { start }) => Ok(EnvironmentSource { repo: None, start }),
            Err(err) => Err(err),
        }
    }

    /// The repository, when there is one.
    pub fn repo(&self) -> Option<&Repo> {
        self.repo.as_ref()
    }

    /// The environment `name` (or all, for `None`) from the repository without asking the cluster; `None`
    /// when there is no repository and [`EnvironmentSource::from_cluster`] must answer.
    pub fn local(&self, name: Option<&str>) -> Option<Result<Vec<Environment>, EnvironmentError>> {
        let repo = self.repo.as_ref()?;
        Some(match name {
            Some(name) => Environment::load(repo, name).map(|env| vec![env]),
            None => Environment::load_all(repo),
        })
    }

    /// The environment `name` (or all) from the repository, else from the cluster's descriptors.
    pub async fn load(
        &self,
        api: &ApiClient,
        cluster: &Cluster,
        name: Option<&str>,
    ) -> Result<Vec<Environment>, DescriptorError> {
        match self.local(name) {
            Some(result) => Ok(result?),
            None => self.from_cluster(api, cluster, name).await,
        }
    }

    /// One environment: [`EnvironmentSource::load`] for `name`.
    pub async fn load_one(
        &self,
        api: &ApiClient,
        cluster: &Cluster,
        name: &str,
    ) -> Result<Environment, DescriptorError> {
        let mut found = self.load(api, cluster, Some(name)).await?;
        Ok(found.remove(0))
    }

    /// The descriptors in the cluster: for one environment, its label in the namespace named like it,
    /// then the context's namespace, then every namespace; for all, every namespace, then the context's.
    /// A 403 rules a place out and is said in the error when nothing is found.
    pub async fn from_cluster(
        &self,
        api: &ApiClient,
        cluster: &Cluster,
        name: Option<&str>,
    ) -> Result<Vec<Environment>, DescriptorError> {
        let selector = match name {
            Some(name) => format!("{DESCRIPTOR_LABEL}={DESCRIPTOR_KIND},{ENVIRONMENT_LABEL}={name}"),
            None => format!("{DESCRIPTOR_LABEL}={DESCRIPTOR_KIND}"),
        };
        let context_ns = Some(cluster.default_namespace.clone()).filter(|ns| !ns.is_empty());
        let mut places: Vec<Option<String>> = Vec::new();
        match name {
            Some(name) => {
                places.push(Some(name.to_string()));
                places.push(context_ns);
                places.push(None);
            }
            None => {
                places.push(None);
                places.push(context_ns);
            }
        }
        places.dedup();
        let mut tried = Vec::new();
        for place in places {
            let where_ = match &place {
                Some(ns) => format!("namespace {ns}"),
                None => "all namespaces".to_string(),
            };
            let maps = match list(api, place.as_deref(), &selector).await {
                Ok(maps) => maps,
                Err(err) if err.code() == Some(403) => {
                    tried.push(format!("{where_}: forbidden"));
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            if maps.is_empty() {
                tried.push(format!("{where_}: none"));
                continue;
            }
            let mut environments = Vec::new();
            for map in &maps {
                let env = from_config_map(map, &cluster.context)?;
                tracing::info!(
                    "environment {} from configmap {}/{} in context {}",
                    env.name,
                    map.metadata.namespace.as_deref().unwrap_or_default(),
                    map.metadata.name.as_deref().unwrap_or_default(),
                    cluster.context
                );
                environments.push(env);
            }
            environments.sort_by(|a, b| a.name.cmp(&b.name));
            environments.dedup_by(|a, b| a.name == b.name);
            return Ok(environments);
        }
        Err(DescriptorError::Missing {
            not_found: RepoError::NotFound {
                start: self.start.clone(),
            },
            wanted: name.map_or("for any environment".to_string(), |name| format!("`{name}`")),
            context: cluster.context.clone(),
            tried: format!("configmaps labelled {selector} in {}", tried.join(", ")),
        })
    }
}

async fn list(api: &ApiClient, namespace: Option<&str>, selector: &str) -> Result<Vec<ConfigMap>, ApiError> {
    let maps: kube::Api<ConfigMap> = match namespace {
        Some(ns) => kube::Api::namespaced(api.client().clone(), ns),
        None => kube::Api::all(api.client().clone()),
    };
    let params = ListParams::default().labels(selector);
    let call = Call::list("configmaps", namespace);
    Ok(api.call(&call, || maps.list(&params)).await?.items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn staging() -> Environment {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        Environment::load(&Repo::at(root).unwrap(), "staging").unwrap()
    }

    #[test]
    fn the_config_map_round_trips_the_environment() {
        let env = staging();
        let map = to_config_map(&env, Some("0123abcd")).unwrap();
        assert_eq!(map.metadata.name.as_deref(), Some(DESCRIPTOR_NAME));
        assert_eq!(map.metadata.namespace.as_deref(), Some("staging"));
        let labels = map.metadata.labels.clone().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "duli");
        assert_eq!(labels["app.kubernetes.io/part-of"], "duli");
        assert_eq!(labels[DESCRIPTOR_LABEL], "environment");
        assert_eq!(labels[ENVIRONMENT_LABEL], "staging");
        let annotations = map.metadata.annotations.clone().unwrap();
        assert_eq!(annotations[REVISION_ANNOTATION], "0123abcd");
        assert_eq!(annotations[VERSION_ANNOTATION], env!("CARGO_PKG_VERSION"));
        // Through JSON, as it travels to the API server and back.
        let map: ConfigMap = serde_json::from_value(serde_json::to_value(&map).unwrap()).unwrap();
        let back = from_config_map(&map, "ctx").unwrap();
        let strip = |e: &Environment| {
            let mut e = e.clone();
            e.source = PathBuf::new();
            serde_json::to_value(e).unwrap()
        };
        assert_eq!(strip(&back), strip(&env));
        assert!(
            back.source
                .display()
                .to_string()
                .contains("configmap staging/duli-environment")
        );
    }

    #[test]
    fn a_descriptor_that_lies_about_its_environment_is_refused() {
        let mut map = to_config_map(&staging(), None).unwrap();
        map.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(ENVIRONMENT_LABEL.into(), "prod".into());
        let err = from_config_map(&map, "ctx").unwrap_err().to_string();
        assert!(
            err.contains("configmap staging/duli-environment in context ctx"),
            "{err}"
        );
        assert!(err.contains("field `name`"), "{err}");
        map.metadata.namespace = Some("other".into());
        map.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(ENVIRONMENT_LABEL.into(), "staging".into());
        let err = from_config_map(&map, "ctx").unwrap_err().to_string();
        assert!(err.contains("lives in `other`"), "{err}");
    }

    #[test]
    fn a_field_that_could_hold_a_credential_is_never_published() {
        let mut env = staging();
        env.gitops.repo_url = "https://deploy:ghp_token@github.com/duli-one/x.git".into();
        let err = to_config_map(&env, None).unwrap_err().to_string();
        assert!(
            err.contains("gitops.repo_url") && err.contains("staging.yml"),
            "{err}"
        );
        assert!(!err.contains("ghp_token"), "{err}");
        let mut env = staging();
        env.chart_mirrors = crate::environment::ChartMirrorEntries::List(vec![
            "*=https://mirror.example/charts?token=abc".into(),
        ]);
        let err = to_config_map(&env, None).unwrap_err().to_string();
        assert!(
            err.contains("chart_mirrors[0]") && err.contains("query string"),
            "{err}"
        );
        let mut env = staging();
        env.endpoints.redis.external = "user:pw@redis.example:6379".into();
        let err = to_config_map(&env, None).unwrap_err().to_string();
        assert!(err.contains("endpoints.redis.external"), "{err}");
    }
}

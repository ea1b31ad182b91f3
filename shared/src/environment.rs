//! The environments, as data: `gitops/environments/<name>.yml`.
//!
//! Every plugin asks this module for an environment by name; the file is parsed strictly (unknown keys and
//! wrong types are errors naming the file, line and field) and then checked for the facts the rest of the
//! code relies on (namespace is a DNS label, endpoints are `host:port`, the file name matches `name`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::repo::Repo;

/// Where environment files live, relative to the repository root.
pub use crate::paths::ENVIRONMENTS_DIR;

/// The largest environment file read (a symlink to `/dev/zero` must not exhaust memory).
pub const MAX_ENVIRONMENT_FILE: u64 = crate::fsio::CONFIG_FILE_LIMIT;

/// Errors from loading environments.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    /// The requested environment has no file.
    #[error("unknown environment `{name}`: known environments are {known} (files in {dir})")]
    Unknown {
        /// What the user asked for.
        name: String,
        /// Comma-separated known names.
        known: String,
        /// The directory searched.
        dir: PathBuf,
    },
    /// The file could not be read, is not a regular file, or is larger than [`MAX_ENVIRONMENT_FILE`].
    #[error(transparent)]
    Read(#[from] crate::fsio::FsError),
    /// The file is not valid YAML for an environment.
    #[error("invalid environment file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parsed, but a field breaks a rule.
    #[error("invalid environment file {path}: field `{field}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field.
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// Whether images must carry a pinned version tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageTagPolicy {
    /// `latest` is allowed (staging follows development builds).
    Latest,
    /// Every image needs an explicit version tag; `latest` is a policy violation.
    Pinned,
}

/// The tier of an environment: production gets the prod guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Staging and other throw-away environments.
    NonProduction,
    /// Production: destructive and interactive actions ask for confirmation.
    Production,
}

impl Tier {
    /// The label value written on namespaces.
    pub fn as_label(self) -> &'static str {
        match self {
            Tier::NonProduction => "non-production",
            Tier::Production => "production",
        }
    }
}

/// Where ArgoCD finds this environment's sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitOps {
    /// Git repository ArgoCD pulls charts from.
    pub repo_url: String,
    /// Branch, tag or commit.
    pub target_revision: String,
    /// Namespace of Argo CD itself.
    pub argocd_namespace: String,
    /// The AppProject of this environment.
    pub project: String,
}

/// Internal and external addresses of one data service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEndpoints {
    /// In-cluster address applications use (`host:port`).
    pub internal: String,
    /// In-cluster read-only address, where the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<String>,
    /// In-cluster management address, where the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<String>,
    /// Address for developers outside the cluster (through the ingress LoadBalancer).
    pub external: String,
}

/// The three data services' endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// CloudNativePG cluster `database`.
    pub postgres: ServiceEndpoints,
    /// redis-operator replication `redis`.
    pub redis: ServiceEndpoints,
    /// RabbitmqCluster `queue`.
    pub rabbitmq: ServiceEndpoints,
}

/// Desired size of one component; which fields apply depends on the component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Pod replicas (applications, redis data nodes, rabbitmq nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// PostgreSQL instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Redis Sentinel nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinels: Option<u32>,
    /// Memory limit of the main container, as a Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Persistent volume size, as a Kubernetes quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// The valid values of `provider`.
pub const PROVIDERS: &[&str] = &["digitalocean", "generic"];

/// The `chart_mirrors` key: a map `FROM: TO` or a list of `FROM=TO` items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChartMirrorEntries {
    /// `{FROM: TO}`.
    Map(BTreeMap<String, String>),
    /// `["FROM=TO"]`.
    List(Vec<String>),
}

impl Default for ChartMirrorEntries {
    fn default() -> Self {
        ChartMirrorEntries::List(Vec::new())
    }
}

impl ChartMirrorEntries {
    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        match self {
            ChartMirrorEntries::Map(map) => map.is_empty(),
            ChartMirrorEntries::List(list) => list.is_empty(),
        }
    }

    /// Each entry as (field path for messages, `FROM=TO` text).
    pub fn items(&self) -> Vec<(String, String)> {
        match self {
            ChartMirrorEntries::Map(map) => map
                .iter()
                .map(|(from, to)| (format!("chart_mirrors.{from}"), format!("{from}={to}")))
                .collect(),
            ChartMirrorEntries::List(list) => list
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("chart_mirrors[{i}]"), item.clone()))
                .collect(),
        }
    }
}

/// Parse one chart mirror `FROM=TO`: FROM is `*` (every upstream) or an `http(s)://`/`oci://` chart
/// repository URL, TO an `http(s)://` or `oci://` URL. Trailing slashes are dropped. The error says what
/// is wrong with the entry, for the caller to prefix with where it came from.
pub fn parse_chart_mirror(entry: &str) -> Result<(String, String), String> {
    let (from, to) = entry.split_once('=').ok_or_else(|| {
        format!("`{entry}` is not FROM=TO (e.g. '*=http://127.0.0.1:8879' or 'https://charts.jetstack.io=oci://mirror.example/jetstack')")
    })?;
    let (from, to) = (from.trim().trim_end_matches('/'), to.trim().trim_end_matches('/'));
    let is_url = |url: &str| {
        ["http://", "https://", "oci://"].iter().any(|scheme| {
            url.strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
        })
    };
    if from != "*" && !is_url(from) {
        return Err(format!(
            "`{entry}`: FROM `{from}` is neither `*` nor an http(s):// or oci:// chart repository URL"
        ));
    }
    if !is_url(to) {
        return Err(format!(
            "`{entry}`: TO `{to}` is not an http(s):// or oci:// chart repository URL"
        ));
    }
    Ok((from.to_string(), to.to_string()))
}

/// One environment, as loaded from its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The environment's name (`staging`, `prod`); equals the file stem.
    pub name: String,
    /// The Kubernetes namespace of its instances and applications.
    pub namespace: String,
    /// Production or not.
    pub tier: Tier,
    /// Owning team, written as the `team` label.
    pub team: String,
    /// Cloud provider: `digitalocean` adds the CSI driver and CCM to the platform phase, `generic` (a
    /// cluster without cloud-provider charts) skips them; one of [`PROVIDERS`].
    pub provider: String,
    /// Storage class every persistent volume uses.
    pub storage_class: String,
    /// Image tag policy.
    pub image_tag_policy: ImageTagPolicy,
    /// Log level of the applications.
    pub log_level: String,
    /// ArgoCD settings.
    pub gitops: GitOps,
    /// Data service endpoints.
    pub endpoints: Endpoints,
    /// Desired sizes per component.
    pub sizes: BTreeMap<String, Size>,
    /// Chart repository mirrors (`FROM: TO` map, or a list of `FROM=TO`), below `--chart-mirror` and
    /// `DULI_CHART_MIRRORS` in precedence; see [`parse_chart_mirror`].
    #[serde(default, skip_serializing_if = "ChartMirrorEntries::is_empty")]
    pub chart_mirrors: ChartMirrorEntries,
    /// The file it came from (not part of the file).
    #[serde(skip)]
    pub source: PathBuf,
}

impl Environment {
    /// True for production environments (the prod guard applies).
    pub fn is_production(&self) -> bool {
        self.tier == Tier::Production
    }

    /// Parse and validate an environment from YAML text; `path` is used in messages.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, EnvironmentError> {
        let mut env: Environment = serde_saphyr::from_str(text).map_err(|err| EnvironmentError::Parse {
            path: path.to_path_buf(),
            message: crate::yaml_error::describe(&err),
        })?;
        env.source = path.to_path_buf();
        env.validate()?;
        Ok(env)
    }

    /// Load one environment file.
    pub fn load_file(path: &Path) -> Result<Self, EnvironmentError> {
        let text = crate::fsio::read_to_string_bounded(path, MAX_ENVIRONMENT_FILE, "environment file")?;
        Self::from_yaml(&text, path)
    }

    /// Load the environment `name` of a repository; an unknown name lists the known ones.
    pub fn load(repo: &Repo, name: &str) -> Result<Self, EnvironmentError> {
        let dir = repo.root().join(ENVIRONMENTS_DIR);
        let known = known_names(&dir);
        if !known.iter().any(|known| known == name) {
            return Err(EnvironmentError::Unknown {
                name: name.to_string(),
                known: if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                },
                dir,
            });
        }
        Self::load_file(&dir.join(format!("{name}.yml")))
    }

    /// Load every environment of a repository, sorted by name.
    pub fn load_all(repo: &Repo) -> Result<Vec<Self>, EnvironmentError> {
        let dir = repo.root().join(ENVIRONMENTS_DIR);
        known_names(&dir)
            .iter()
            .map(|name| Self::load_file(&dir.join(format!("{name}.yml"))))
            .collect()
    }

    fn invalid(&self, field: &str, problem: impl Into<String>) -> EnvironmentError {
        EnvironmentError::Invalid {
            path: self.source.clone(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    fn validate(&self) -> Result<(), EnvironmentError> {
        let stem = self
            .source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if !stem.is_empty() && stem != self.name {
            return Err(self.invalid(
                "name",
                format!(
                    "is `{}` but the file is named `{stem}.yml`; make them equal",
                    self.name
                ),
            ));
        }
        for (field, value) in [
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("storage_class", &self.storage_class),
        ] {
            if !is_dns_label(value) {
                return Err(self.invalid(
                    field,
                    format!("`{value}` is not a DNS label (lowercase letters, digits and '-', at most 63)"),
                ));
            }
        }
        if !PROVIDERS.contains(&self.provider.as_str()) {
            return Err(self.invalid(
                "provider",
                format!("`{}` is not one of {}", self.provider, PROVIDERS.join(", ")),
            ));
        }
        for (field, item) in self.chart_mirrors.items() {
            parse_chart_mirror(&item).map_err(|problem| self.invalid(&field, problem))?;
        }
        if !matches!(self.log_level.as_str(), "debug" | "info" | "warn" | "error") {
            return Err(self.invalid(
                "log_level",
                format!("`{}` is not one of debug, info, warn, error", self.log_level),
            ));
        }
        let services = [
            ("postgres", &self.endpoints.postgres),
            ("redis", &self.endpoints.redis),
            ("rabbitmq", &self.endpoints.rabbitmq),
        ];
        for (service, endpoints) in services {
            let addresses = [
                ("internal", Some(&endpoints.internal)),
                ("read_only", endpoints.read_only.as_ref()),
                ("management", endpoints.management.as_ref()),
                ("external", Some(&endpoints.external)),
            ];
            for (kind, address) in addresses {
                if let Some(address) = address {
                    parse_host_port(address)
                        .map_err(|problem| self.invalid(&format!("endpoints.{service}.{kind}"), problem))?;
                }
            }
            let internal_host = parse_host_port(&endpoints.internal)
                .map(|(host, _)| host)
                .unwrap_or_default();
            if !internal_host.ends_with(&format!(".{}.svc.cluster.local", self.namespace)) {
                return Err(self.invalid(
                    &format!("endpoints.{service}.internal"),
                    format!(
                        "`{}` is not in namespace `{}` (expected NAME.{}.svc.cluster.local:PORT)",
                        endpoints.internal, self.namespace, self.namespace
                    ),
                ));
            }
        }
        for (component, size) in &self.sizes {
            for (field, quantity) in [("memory", &size.memory), ("storage", &size.storage)] {
                if let Some(quantity) = quantity
                    && !is_quantity(quantity)
                {
                    return Err(self.invalid(
                        &format!("sizes.{component}.{field}"),
                        format!("`{quantity}` is not a Kubernetes quantity like 512Mi or 10Gi"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Split `host:port`, checking the port is a number in range.
pub fn parse_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("`{address}` is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!("`{address}` has no host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{address}` has port `{port}`, which is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(format!("`{address}` has port 0"));
    }
    Ok((host.to_string(), port))
}

/// Names of the environment files in `dir` (file stems of `*.yml`), sorted.
fn known_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension()? == "yml").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

/// RFC 1123 DNS label, as Kubernetes requires for namespace names.
pub fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A Kubernetes quantity with a binary or decimal suffix (`512Mi`, `10Gi`, `1G`, `100`).
fn is_quantity(value: &str) -> bool {
    let digits_end = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && matches!(
            suffix,
            "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "k" | "M" | "G" | "T" | "P" | "m"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    #[test]
    fn a_special_or_huge_environment_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.yml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = Environment::load_file(&link).unwrap_err().to_string();
        assert!(
            err.contains("environment file") && err.contains("character device"),
            "{err}"
        );
        let big = dir.path().join("big.yml");
        std::fs::write(&big, vec![b'#'; MAX_ENVIRONMENT_FILE as usize + 1]).unwrap();
        let err = Environment::load_file(&big).unwrap_err().to_string();
        assert!(err.contains("big.yml is larger than 1 MiB"), "{err}");
    }

    #[test]
    fn loads_both_environments_of_this_repo_with_the_description_endpoints() {
        let repo = Repo::at(repo_root()).unwrap();
        let all = Environment::load_all(&repo).unwrap();
        let names: Vec<_> = all.iter().map(|env| env.name.as_str()).collect();
        assert_eq!(names, ["prod", "staging"]);
        let staging = Environment::load(&repo, "staging").unwrap();
        assert_eq!(
            staging.endpoints.postgres.internal,
            "database-rw.staging.svc.cluster.local:5432"
        );
        assert_eq!(staging.endpoints.postgres.external, "db-staging.duli.one:5432");
        assert_eq!(staging.endpoints.redis.external, "redis-staging.duli.one:6379");
        assert_eq!(staging.endpoints.rabbitmq.external, "mq-staging.duli.one:5672");
        assert!(!staging.is_production());
        let prod = Environment::load(&repo, "prod").unwrap();
        assert_eq!(prod.endpoints.postgres.external, "db.duli.one:5433");
        assert_eq!(prod.endpoints.redis.external, "redis.duli.one:6380");
        assert_eq!(prod.endpoints.rabbitmq.external, "mq.duli.one:5673");
        assert_eq!(
            prod.endpoints.rabbitmq.internal,
            "queue.prod.svc.cluster.local:5672"
        );
        assert_eq!(prod.image_tag_policy, ImageTagPolicy::Pinned);
        assert!(prod.is_production());
    }

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let repo = Repo::at(repo_root()).unwrap();
        let err = Environment::load(&repo, "qa").unwrap_err().to_string();
        assert!(err.contains("unknown environment `qa`"), "{err}");
        assert!(err.contains("prod, staging"), "{err}");
    }

    fn staging_text() -> String {
        std::fs::read_to_string(repo_root().join("gitops/environments/staging.yml")).unwrap()
    }

    #[test]
    fn wrong_type_names_file_line_and_field() {
        let text = staging_text().replace("replicas: 1,", "replicas: one,");
        let err = Environment::from_yaml(&text, Path::new("/x/staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/x/staging.yml"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn provider_generic_is_valid_and_others_are_named() {
        let text = staging_text().replace("provider: digitalocean", "provider: generic");
        let env = Environment::from_yaml(&text, Path::new("staging.yml")).unwrap();
        assert_eq!(env.provider, "generic");
        let text = staging_text().replace("provider: digitalocean", "provider: aws");
        let err = Environment::from_yaml(&text, Path::new("staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `provider`") && err.contains("`aws`"), "{err}");
    }

    #[test]
    fn chart_mirrors_take_a_map_or_a_list_and_bad_entries_are_named() {
        let map = format!(
            "{}chart_mirrors:\n  '*': http://127.0.0.1:8879/\n",
            staging_text()
        );
        let env = Environment::from_yaml(&map, Path::new("staging.yml")).unwrap();
        assert_eq!(
            env.chart_mirrors.items(),
            [(
                "chart_mirrors.*".to_string(),
                "*=http://127.0.0.1:8879/".to_string()
            )]
        );
        let list = format!(
            "{}chart_mirrors: ['https://charts.jetstack.io=oci://mirror.example/jetstack']\n",
            staging_text()
        );
        Environment::from_yaml(&list, Path::new("staging.yml")).unwrap();
        let bad = format!("{}chart_mirrors: ['*=ftp://x']\n", staging_text());
        let err = Environment::from_yaml(&bad, Path::new("/x/staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/x/staging.yml") && err.contains("chart_mirrors[0]") && err.contains("ftp://x"),
            "{err}"
        );
        assert_eq!(
            parse_chart_mirror("https://a.example/charts/=http://127.0.0.1:1/"),
            Ok(("https://a.example/charts".into(), "http://127.0.0.1:1".into()))
        );
        assert!(parse_chart_mirror("no-equals").unwrap_err().contains("FROM=TO"));
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let text = format!("{}replicaz: 3\n", staging_text());
        let err = Environment::from_yaml(&text, Path::new("staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("replicaz"), "{err}");
    }

    #[test]
    fn endpoint_in_another_namespace_is_rejected() {
        let text = staging_text().replace("database-rw.staging.svc", "database-rw.prod.svc");
        let err = Environment::from_yaml(&text, Path::new("staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("endpoints.postgres.internal"), "{err}");
    }

    #[test]
    fn bad_port_and_quantity_are_rejected() {
        let text = staging_text().replace("db-staging.duli.one:5432", "db-staging.duli.one:99999");
        let err = Environment::from_yaml(&text, Path::new("staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("endpoints.postgres.external"), "{err}");
        let text = staging_text().replace("memory: 512Mi}", "memory: lots}");
        let err = Environment::from_yaml(&text, Path::new("staging.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sizes.backend.memory"), "{err}");
    }

    #[test]
    fn file_name_must_match_name() {
        let err = Environment::from_yaml(&staging_text(), Path::new("qa.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `name`"), "{err}");
    }
}

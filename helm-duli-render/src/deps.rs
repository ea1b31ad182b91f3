//! Upstream chart dependencies, resolved instead of skipped: chart mirrors, a content-addressed chart
//! store, `Chart.lock` checks and fetching through real helm.
//!
//! - [`ChartMirrors`] maps an upstream chart repository URL (https or oci) to a mirror: `--chart-mirror
//!   FROM=TO` (repeatable, FROM may be `*`), else `DULI_CHART_MIRRORS` (comma-separated), else the
//!   environment file's `chart_mirrors`. `kubectl duli env up` uses the same type.
//! - [`ChartStore`] keeps chart packages under the user's cache dir by the sha256 of the `.tgz` (the
//!   repository index's `digest`), so a warm store renders offline.
//! - [`resolve`] checks a wrapper chart's committed `Chart.lock` against its `Chart.yaml` (the digest helm
//!   writes, [`hash_req`]) and finds every locked dependency in the store, fetching what is missing with
//!   `helm pull` (isolated helm home) from the upstream URL or its mirror and checking the package's sha256
//!   against the index. [`ResolvedChart::materialize`] copies the chart with its `charts/` filled into a
//!   temporary directory; the repository's `helm/` is never written.
//! - [`update_lock`] (`helm duli-render deps`) writes `Chart.lock` deliberately.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::environment::{ChartMirrorEntries, parse_chart_mirror};
use shared::fsio::{CONFIG_FILE_LIMIT, Mode, read_to_string_bounded, write_atomically};
use shared::paths::{CHART_FILE, CHART_VENDOR_DIR};

use super::cache::hex;
use super::charts::Chart;
use super::helm::Helm;

/// The environment variable holding comma-separated `FROM=TO` chart mirrors.
pub const MIRRORS_ENV: &str = "DULI_CHART_MIRRORS";
/// The lock file helm writes next to `Chart.yaml`.
pub const LOCK_FILE: &str = "Chart.lock";
/// How long one `helm pull` may take by default.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A bad chart mirror entry, naming where it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid chart mirror in {source_name}: {problem}")]
pub struct MirrorError {
    /// `--chart-mirror`, `DULI_CHART_MIRRORS`, or `FILE field chart_mirrors…`.
    pub source_name: String,
    /// What is wrong with the entry.
    pub problem: String,
}

/// Chart repository mirrors, in precedence order: `--chart-mirror`, then `DULI_CHART_MIRRORS`, then the
/// environment file. Within one source an exact FROM beats `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartMirrors {
    /// Sources, highest precedence first; each a list of (FROM, TO).
    layers: Vec<Vec<(String, String)>>,
}

impl ChartMirrors {
    /// Build from the flag values, the environment variable's value and the environment file's key
    /// (`file` names that file in messages).
    pub fn from_sources(
        flags: &[String],
        env_var: Option<&str>,
        file_entries: &ChartMirrorEntries,
        file: &Path,
    ) -> Result<Self, MirrorError> {
        let parse = |source_name: &str, item: &str| {
            parse_chart_mirror(item).map_err(|problem| MirrorError {
                source_name: source_name.to_string(),
                problem,
            })
        };
        let flags = flags
            .iter()
            .map(|item| parse("--chart-mirror", item))
            .collect::<Result<Vec<_>, _>>()?;
        let env = env_var
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| parse(MIRRORS_ENV, item))
            .collect::<Result<Vec<_>, _>>()?;
        let from_file = file_entries
            .items()
            .into_iter()
            .map(|(field, item)| parse(&format!("{} field {field}", file.display()), &item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ChartMirrors {
            layers: vec![flags, env, from_file],
        })
    }

    /// [`Self::from_sources`] with the process's `DULI_CHART_MIRRORS`.
    pub fn from_flags_env_and_file(
        flags: &[String],
        file_entries: &ChartMirrorEntries,
        file: &Path,
    ) -> Result<Self, MirrorError> {
        let env = std::env::var(MIRRORS_ENV).ok();
        Self::from_sources(flags, env.as_deref(), file_entries, file)
    }

    /// The mirror for an upstream repository URL, if any applies.
    pub fn mirror_for(&self, upstream: &str) -> Option<&str> {
        let upstream = upstream.trim_end_matches('/');
        for layer in &self.layers {
            let exact = layer.iter().find(|(from, _)| from == upstream);
            let any = layer.iter().find(|(from, _)| from == "*");
            if let Some((_, to)) = exact.or(any) {
                return Some(to);
            }
        }
        None
    }

    /// Where to fetch from: the mirror, else the upstream URL itself.
    pub fn apply(&self, upstream: &str) -> String {
        self.mirror_for(upstream)
            .unwrap_or(upstream.trim_end_matches('/'))
            .to_string()
    }

    /// True when no mirror is configured.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(Vec::is_empty)
    }
}

/// Errors resolving a chart's upstream dependencies. Each is one sentence naming the chart.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DepsError {
    /// The wrapper chart has no `Chart.lock`.
    #[error("chart `{chart}` has no Chart.lock; run `helm duli-render deps {chart}` to write one")]
    NoLock {
        /// The chart.
        chart: String,
    },
    /// `Chart.lock` does not parse.
    #[error("chart `{chart}`: invalid {path}: {message}")]
    LockInvalid {
        /// The chart.
        chart: String,
        /// The lock file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `Chart.lock`'s digest does not match `Chart.yaml`'s dependencies.
    #[error(
        "chart `{chart}`: Chart.lock is out of date with the dependencies in Chart.yaml (digest {found}, expected {expected}); run `helm duli-render deps {chart}` to refresh it"
    )]
    LockStale {
        /// The chart.
        chart: String,
        /// The digest in `Chart.lock`.
        found: String,
        /// The digest of `Chart.yaml`'s dependencies and the lock.
        expected: String,
    },
    /// A dependency version is a range: the lock needs an exact version.
    #[error(
        "chart `{chart}`: dependency `{name}` has version `{version}`, not an exact version; pin one in Chart.yaml"
    )]
    Unpinned {
        /// The chart.
        chart: String,
        /// The dependency.
        name: String,
        /// Its version or range.
        version: String,
    },
    /// Not in the store and not fetched (offline, or fetching from the upstream failed).
    #[error("chart `{chart}`: {name} {version} from {repo} is not in the chart cache ({reason})")]
    Unavailable {
        /// The chart.
        chart: String,
        /// The dependency.
        name: String,
        /// Its version.
        version: String,
        /// Its upstream repository.
        repo: String,
        /// Why it was not fetched.
        reason: String,
    },
    /// Fetching from a configured mirror failed (or timed out).
    #[error("chart `{chart}`: cannot fetch {name} {version} from mirror {url}: {message}")]
    Fetch {
        /// The chart.
        chart: String,
        /// The dependency.
        name: String,
        /// Its version.
        version: String,
        /// The URL fetched from.
        url: String,
        /// helm's message, or the timeout.
        message: String,
    },
    /// The package's sha256 is not the index's digest.
    #[error(
        "chart `{chart}`: {package} has sha256 {actual}, but the repository index says {expected}; the mirror serves a different package"
    )]
    DigestMismatch {
        /// The chart.
        chart: String,
        /// `NAME VERSION from URL`.
        package: String,
        /// The index's digest.
        expected: String,
        /// The package's sha256.
        actual: String,
    },
    /// The store or a temporary copy cannot be written.
    #[error("chart `{chart}`: {message}")]
    Io {
        /// The chart.
        chart: String,
        /// What failed.
        message: String,
    },
}

impl DepsError {
    /// True when the chart is merely not available (reported as external unless `--strict-deps`);
    /// false for errors in the repository or a broken mirror.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DepsError::NoLock { .. } | DepsError::Unavailable { .. })
    }
}

/// A content-addressed store of chart packages: `DIR/sha256/<digest>.tgz`, plus `DIR/refs/<key>` mapping
/// (upstream repository, chart, version) to the digest.
#[derive(Debug, Clone)]
pub struct ChartStore {
    dir: PathBuf,
}

impl ChartStore {
    /// The store in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        ChartStore { dir }
    }

    /// `DIR/charts` for `--cache-dir DIR`, else `<user cache dir>/duli/charts`.
    pub fn for_cache_dir(cache_dir: Option<&Path>) -> Self {
        let dir = match cache_dir {
            Some(dir) => dir.join("charts"),
            None => dirs::cache_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("duli")
                .join("charts"),
        };
        ChartStore::new(dir)
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ref_path(&self, repo: &str, name: &str, version: &str) -> PathBuf {
        let key = hex(&Sha256::digest(
            format!("{}\0{name}\0{version}", repo.trim_end_matches('/')).as_bytes(),
        ));
        self.dir.join("refs").join(key)
    }

    /// The package file for a digest.
    pub fn tgz_path(&self, digest: &str) -> PathBuf {
        self.dir.join("sha256").join(format!("{digest}.tgz"))
    }

    /// The stored package of `name` `version` from the upstream `repo`, if present and intact.
    pub fn lookup(&self, repo: &str, name: &str, version: &str) -> Option<(String, PathBuf)> {
        let digest = std::fs::read_to_string(self.ref_path(repo, name, version)).ok()?;
        let digest = digest.trim().to_string();
        let path = self.tgz_path(&digest);
        let bytes = std::fs::read(&path).ok()?;
        (hex(&Sha256::digest(&bytes)) == digest).then_some((digest, path))
    }

    /// Store `bytes` (whose sha256 is `digest`) as `name` `version` of `repo`.
    fn put(
        &self,
        repo: &str,
        name: &str,
        version: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, String> {
        let path = self.tgz_path(digest);
        let write = |path: &Path, bytes: &[u8]| {
            std::fs::create_dir_all(path.parent().expect("store paths have a parent"))
                .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
            write_atomically(path, bytes, Mode::Normal, "chart cache entry").map_err(|err| err.to_string())
        };
        if !path.is_file() {
            write(&path, bytes)?;
        }
        write(&self.ref_path(repo, name, version), digest.as_bytes())?;
        Ok(path)
    }
}

/// One upstream chart a wrapper depends on, resolved to a package in the [`ChartStore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamChart {
    /// The chart name.
    pub name: String,
    /// The alias the wrapper uses for its values, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The exact version.
    pub version: String,
    /// The upstream repository URL (as in `Chart.yaml`/`Chart.lock`).
    pub repo: String,
    /// The package (`NAME-VERSION.tgz` content) in the store.
    pub tgz_path: PathBuf,
    /// Its sha256 (hex).
    pub digest: String,
}

impl UpstreamChart {
    /// The key the wrapper's values for this chart sit under (the alias, else the name).
    pub fn values_key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// A wrapper chart with every dependency resolved.
#[derive(Debug, Clone)]
pub struct ResolvedChart {
    /// The chart (directory name under `helm/`).
    pub chart: String,
    /// The chart directory in the repository (read-only: see [`Self::materialize`]).
    pub dir: PathBuf,
    /// Its upstream charts, in `Chart.lock` order.
    pub upstream: Vec<UpstreamChart>,
}

impl ResolvedChart {
    /// A temporary copy of the chart with `charts/` holding the upstream packages, ready for `helm
    /// template`; the chart directory is the returned path, removed with the [`tempfile::TempDir`].
    pub fn materialize(&self) -> Result<(tempfile::TempDir, PathBuf), DepsError> {
        let io = |message: String| DepsError::Io {
            chart: self.chart.clone(),
            message,
        };
        let tmp = tempfile::Builder::new()
            .prefix("duli-render-chart-")
            .tempdir()
            .map_err(|err| io(format!("cannot create a temporary directory: {err}")))?;
        let dir = tmp.path().join(&self.chart);
        copy_tree(&self.dir, &dir).map_err(&io)?;
        let vendor = dir.join(CHART_VENDOR_DIR);
        std::fs::create_dir_all(&vendor)
            .map_err(|err| io(format!("cannot create {}: {err}", vendor.display())))?;
        for upstream in &self.upstream {
            let target = vendor.join(format!("{}-{}.tgz", upstream.name, upstream.version));
            std::fs::copy(&upstream.tgz_path, &target)
                .map_err(|err| io(format!("cannot copy {}: {err}", upstream.tgz_path.display())))?;
        }
        Ok((tmp, dir))
    }

    /// A key over the upstream packages, for the render cache.
    pub fn key(&self) -> String {
        self.upstream
            .iter()
            .map(|u| format!("{}={}", u.values_key(), u.digest))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|err| format!("cannot create {}: {err}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|err| format!("cannot list {}: {err}", from.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(|err| format!("cannot copy {}: {err}", path.display()))?;
        }
    }
    Ok(())
}

/// A dependency as helm hashes it (`chart.Dependency` field order and `omitempty`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HashDependency {
    /// `name`.
    pub name: String,
    /// `version`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `repository`.
    #[serde(default)]
    pub repository: String,
    /// `condition`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// `tags`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `enabled`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
    /// `import-values`.
    #[serde(default, rename = "import-values", skip_serializing_if = "Vec::is_empty")]
    pub import_values: Vec<serde_json::Value>,
    /// `alias`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

/// `Chart.lock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lock {
    /// The locked dependencies (name, repository, version).
    pub dependencies: Vec<LockedDependency>,
    /// `sha256:` + [`hash_req`] of `Chart.yaml`'s dependencies and these.
    pub digest: String,
    /// When it was written (RFC 3339).
    #[serde(default)]
    pub generated: String,
}

/// One entry of `Chart.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedDependency {
    /// The chart.
    pub name: String,
    /// The repository URL.
    pub repository: String,
    /// The exact version.
    pub version: String,
}

/// The digest helm writes into `Chart.lock` (`resolver.HashReq`): sha256 of the JSON array
/// `[requirements, locked]`, as Go's `encoding/json` writes it.
pub fn hash_req(requirements: &[HashDependency], locked: &[LockedDependency]) -> String {
    let locked: Vec<HashDependency> = locked
        .iter()
        .map(|l| HashDependency {
            name: l.name.clone(),
            version: l.version.clone(),
            repository: l.repository.clone(),
            ..Default::default()
        })
        .collect();
    let json = serde_json::to_string(&(requirements, &locked)).expect("dependencies serialize");
    // Go escapes these in strings; serde_json does not.
    let json = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("sha256:{}", hex(&Sha256::digest(json.as_bytes())))
}

#[derive(Debug, Deserialize)]
struct ChartDeps {
    #[serde(default)]
    dependencies: Vec<HashDependency>,
}

fn read_requirements(chart: &Chart) -> Result<Vec<HashDependency>, DepsError> {
    let path = chart.dir.join(CHART_FILE);
    let invalid = |message: String| DepsError::LockInvalid {
        chart: chart.name.clone(),
        path: path.clone(),
        message,
    };
    let text =
        read_to_string_bounded(&path, CONFIG_FILE_LIMIT, "Chart.yaml").map_err(|e| invalid(e.to_string()))?;
    let deps: ChartDeps =
        serde_saphyr::from_str(&text).map_err(|e| invalid(shared::yaml_error::describe(&e)))?;
    Ok(deps.dependencies)
}

/// Read a chart's `Chart.lock` and check its digest against `Chart.yaml`.
pub fn read_lock(chart: &Chart) -> Result<(Vec<HashDependency>, Lock), DepsError> {
    let path = chart.dir.join(LOCK_FILE);
    if !path.exists() {
        return Err(DepsError::NoLock {
            chart: chart.name.clone(),
        });
    }
    let invalid = |message: String| DepsError::LockInvalid {
        chart: chart.name.clone(),
        path: path.clone(),
        message,
    };
    let text =
        read_to_string_bounded(&path, CONFIG_FILE_LIMIT, "Chart.lock").map_err(|e| invalid(e.to_string()))?;
    let lock: Lock = serde_saphyr::from_str(&text).map_err(|e| invalid(shared::yaml_error::describe(&e)))?;
    let requirements = read_requirements(chart)?;
    let expected = hash_req(&requirements, &lock.dependencies);
    if lock.digest != expected {
        return Err(DepsError::LockStale {
            chart: chart.name.clone(),
            found: lock.digest.clone(),
            expected,
        });
    }
    Ok((requirements, lock))
}

/// What [`resolve`] may do when a package is not in the store.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// helm, for `helm pull`.
    pub helm: Helm,
    /// Mirrors.
    pub mirrors: ChartMirrors,
    /// The store.
    pub store: ChartStore,
    /// Never fetch (`--offline`): only the store counts.
    pub offline: bool,
    /// Bound on one `helm pull`.
    pub timeout: Duration,
    /// Fetches shared by every fetcher of a run.
    fetches: FetchMemo,
}

/// The fetches of one run, so two wrappers of one upstream chart (or two environments) fetch it once.
#[derive(Debug, Clone, Default)]
pub struct FetchMemo(Arc<tokio::sync::Mutex<BTreeMap<String, Arc<tokio::sync::OnceCell<Fetched>>>>>);

type Fetched = Result<(String, PathBuf), FetchFailure>;

/// Why a fetch failed, before it is attributed to a chart.
#[derive(Debug, Clone)]
enum FetchFailure {
    /// From the upstream URL itself (no mirror): the chart is unavailable.
    Upstream(String),
    /// From a configured mirror.
    Mirror { url: String, message: String },
    /// The package is not what the index says.
    Digest {
        url: String,
        expected: String,
        actual: String,
    },
    /// The store cannot be written.
    Io(String),
}

impl Fetcher {
    /// A fetcher; `offline` forbids any network access; `fetches` is shared by the fetchers of a run.
    pub fn new(
        helm: Helm,
        mirrors: ChartMirrors,
        store: ChartStore,
        offline: bool,
        timeout: Duration,
        fetches: FetchMemo,
    ) -> Self {
        Fetcher {
            helm,
            mirrors,
            store,
            offline,
            timeout,
            fetches,
        }
    }

    /// The package of `name` `version` from the upstream `repo`: from the store, else fetched.
    async fn package(
        &self,
        repo: &str,
        name: &str,
        version: &str,
    ) -> Result<(String, PathBuf), FetchFailure> {
        if let Some(found) = self.store.lookup(repo, name, version) {
            return Ok(found);
        }
        if self.offline {
            return Err(FetchFailure::Upstream("offline".into()));
        }
        let key = format!("{}\0{repo}\0{name}\0{version}", self.mirrors.apply(repo));
        let cell = self.fetches.0.lock().await.entry(key).or_default().clone();
        cell.get_or_init(|| self.fetch(repo, name, version)).await.clone()
    }

    async fn fetch(&self, repo: &str, name: &str, version: &str) -> Result<(String, PathBuf), FetchFailure> {
        let url = self.mirrors.apply(repo);
        let mirrored = self.mirrors.mirror_for(repo).is_some();
        let failed = |message: String| {
            // A mirror that answers but does not hold the chart is a mirror without it, not a broken one
            // (a chart repository: "… not found in … repository"; a registry: "…:VERSION: not found").
            let missing = message.contains("not found in") || message.ends_with(": not found");
            if mirrored && !missing {
                FetchFailure::Mirror {
                    url: url.clone(),
                    message,
                }
            } else {
                FetchFailure::Upstream(format!("fetching it from {url} failed: {message}"))
            }
        };
        let (bytes, index_digest) =
            match tokio::time::timeout(self.timeout, pull(&self.helm, &url, name, version)).await {
                Ok(result) => result.map_err(failed)?,
                Err(_) => {
                    return Err(failed(format!(
                        "no answer within {}",
                        shared::duration::human(self.timeout)
                    )));
                }
            };
        let actual = hex(&Sha256::digest(&bytes));
        if let Some(expected) = index_digest
            && expected != actual
        {
            return Err(FetchFailure::Digest {
                url,
                expected,
                actual,
            });
        }
        let path = self
            .store
            .put(repo, name, version, &actual, &bytes)
            .map_err(FetchFailure::Io)?;
        Ok((actual, path))
    }
}

/// `helm pull` into an isolated helm home; the package bytes and, for an http(s) repository, the digest
/// its index gives.
async fn pull(
    helm: &Helm,
    url: &str,
    name: &str,
    version: &str,
) -> Result<(Vec<u8>, Option<String>), String> {
    let home = tempfile::Builder::new()
        .prefix("duli-helm-pull-")
        .tempdir()
        .map_err(|err| format!("cannot create a temporary directory: {err}"))?;
    let dest = home.path().join("out");
    std::fs::create_dir_all(&dest).map_err(|err| format!("cannot create {}: {err}", dest.display()))?;
    let run = |plain_http: bool| {
        let mut command = helm.command();
        command.arg("pull");
        if url.starts_with("oci://") {
            command.arg(format!("{url}/{name}"));
        } else {
            command.arg(name).arg("--repo").arg(url);
        }
        if plain_http {
            command.arg("--plain-http");
        }
        command
            .arg("--version")
            .arg(version)
            .arg("--destination")
            .arg(&dest)
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .env_remove("HELM_REPOSITORY_CONFIG")
            .env_remove("HELM_REPOSITORY_CACHE")
            .env_remove("HELM_REGISTRY_CONFIG");
        async move {
            command
                .output()
                .await
                .map_err(|err| format!("cannot run {}: {err}", helm.bin.display()))
        }
    };
    let mut output = run(false).await?;
    if !output.status.success() && wants_plain_http(url, &String::from_utf8_lossy(&output.stderr)) {
        output = run(true).await?;
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("helm pull failed");
        return Err(line.strip_prefix("Error: ").unwrap_or(line).to_string());
    }
    let package = std::fs::read_dir(&dest)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .ok_or_else(|| "helm pull wrote no package".to_string())?;
    let bytes = std::fs::read(&package).map_err(|err| format!("cannot read {}: {err}", package.display()))?;
    Ok((
        bytes,
        index_digest(&home.path().join("cache/repository"), name, version),
    ))
}

/// Whether helm, having failed on the `oci://` registry `url` with `message`, should try again with
/// `--plain-http`: as Docker does for registries on a loopback address, one that does not speak TLS (a
/// local mirror, a port-forwarded registry) is spoken to in plain HTTP. Nowhere else: a remote registry
/// answering in plain HTTP is a misconfiguration to report, not to follow.
pub fn wants_plain_http(url: &str, message: &str) -> bool {
    is_loopback_registry(url) && message.contains("server gave HTTP response to HTTPS client")
}

/// True for an `oci://` registry on 127.0.0.0/8, `::1` or `localhost`.
fn is_loopback_registry(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("oci://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    #[serde(default)]
    version: String,
    #[serde(default)]
    digest: Option<String>,
}

/// The `digest` of `name` `version` in the index helm downloaded into `dir`.
fn index_digest(dir: &Path, name: &str, version: &str) -> Option<String> {
    let file = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-index.yaml"))?;
    let text = std::fs::read_to_string(file).ok()?;
    let index: Index = serde_saphyr::from_str(&text).ok()?;
    index
        .entries
        .get(name)?
        .iter()
        .find(|e| e.version == version)?
        .digest
        .clone()
}

fn is_exact_version(version: &str) -> bool {
    let core = version.trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or_default();
    core.split('.').count() == 3
        && core
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn attribute(chart: &str, name: &str, version: &str, repo: &str, failure: FetchFailure) -> DepsError {
    let (chart, name, version) = (chart.to_string(), name.to_string(), version.to_string());
    match failure {
        FetchFailure::Upstream(reason) => DepsError::Unavailable {
            chart,
            name,
            version,
            repo: repo.to_string(),
            reason,
        },
        FetchFailure::Mirror { url, message } => DepsError::Fetch {
            chart,
            name,
            version,
            url,
            message,
        },
        FetchFailure::Digest {
            url,
            expected,
            actual,
        } => DepsError::DigestMismatch {
            package: format!("{name} {version} from {url}"),
            chart,
            expected,
            actual,
        },
        FetchFailure::Io(message) => DepsError::Io { chart, message },
    }
}

/// Resolve a wrapper chart's locked dependencies to packages in the store (fetching what is missing).
pub async fn resolve(chart: &Chart, fetcher: &Fetcher) -> Result<ResolvedChart, DepsError> {
    let (requirements, lock) = read_lock(chart)?;
    let mut upstream = Vec::new();
    for locked in &lock.dependencies {
        let alias = requirements
            .iter()
            .find(|r| {
                r.name == locked.name
                    && r.repository.trim_end_matches('/') == locked.repository.trim_end_matches('/')
            })
            .map(|r| r.alias.clone())
            .filter(|a| !a.is_empty());
        let (digest, tgz_path) = fetcher
            .package(&locked.repository, &locked.name, &locked.version)
            .await
            .map_err(|failure| {
                attribute(
                    &chart.name,
                    &locked.name,
                    &locked.version,
                    &locked.repository,
                    failure,
                )
            })?;
        upstream.push(UpstreamChart {
            name: locked.name.clone(),
            alias,
            version: locked.version.clone(),
            repo: locked.repository.clone(),
            tgz_path,
            digest,
        });
    }
    Ok(ResolvedChart {
        chart: chart.name.clone(),
        dir: chart.dir.clone(),
        upstream,
    })
}

/// Resolve one chart package outside any wrapper (a `gitops/platform.yml` entry).
pub async fn resolve_package(
    owner: &str,
    repo: &str,
    name: &str,
    version: &str,
    fetcher: &Fetcher,
) -> Result<UpstreamChart, DepsError> {
    let (digest, tgz_path) = fetcher
        .package(repo, name, version)
        .await
        .map_err(|failure| attribute(owner, name, version, repo, failure))?;
    Ok(UpstreamChart {
        name: name.to_string(),
        alias: None,
        version: version.to_string(),
        repo: repo.to_string(),
        tgz_path,
        digest,
    })
}

/// `helm duli-render deps`: fetch every dependency of `chart` (exact versions only) into the store and
/// write its `Chart.lock` against the upstream URLs. Returns the lock written.
pub async fn update_lock(chart: &Chart, fetcher: &Fetcher) -> Result<Lock, DepsError> {
    let requirements = read_requirements(chart)?;
    let mut locked = Vec::new();
    for requirement in &requirements {
        if requirement.repository.starts_with("file://") || requirement.repository.is_empty() {
            continue;
        }
        if !is_exact_version(&requirement.version) {
            return Err(DepsError::Unpinned {
                chart: chart.name.clone(),
                name: requirement.name.clone(),
                version: requirement.version.clone(),
            });
        }
        let repo = requirement.repository.trim_end_matches('/').to_string();
        fetcher
            .package(&requirement.repository, &requirement.name, &requirement.version)
            .await
            .map_err(|failure| {
                attribute(
                    &chart.name,
                    &requirement.name,
                    &requirement.version,
                    &repo,
                    failure,
                )
            })?;
        locked.push(LockedDependency {
            name: requirement.name.clone(),
            repository: requirement.repository.clone(),
            version: requirement.version.clone(),
        });
    }
    let lock = Lock {
        digest: hash_req(&requirements, &locked),
        dependencies: locked,
        generated: jiff::Timestamp::now().to_string(),
    };
    let mut text = String::from("dependencies:\n");
    for dep in &lock.dependencies {
        text.push_str(&format!(
            "- name: {}\n  repository: {}\n  version: {}\n",
            dep.name, dep.repository, dep.version
        ));
    }
    text.push_str(&format!(
        "digest: {}\ngenerated: \"{}\"\n",
        lock.digest, lock.generated
    ));
    let path = chart.dir.join(LOCK_FILE);
    write_atomically(&path, text.as_bytes(), Mode::Normal, "Chart.lock").map_err(|err| DepsError::Io {
        chart: chart.name.clone(),
        message: err.to_string(),
    })?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_env_beats_file_and_exact_beats_star() {
        let file = ChartMirrorEntries::List(vec!["*=http://file.example".into()]);
        let mirrors = ChartMirrors::from_sources(
            &["https://charts.jetstack.io/=http://flag.example/".into()],
            Some("*=http://env.example, oci://registry-1.docker.io/bitnamicharts=http://env-oci.example"),
            &file,
            Path::new("staging.yml"),
        )
        .unwrap();
        assert_eq!(mirrors.apply("https://charts.jetstack.io"), "http://flag.example");
        assert_eq!(
            mirrors.apply("oci://registry-1.docker.io/bitnamicharts"),
            "http://env-oci.example"
        );
        assert_eq!(mirrors.apply("https://other.example/"), "http://env.example");
        let only_file = ChartMirrors::from_sources(&[], None, &file, Path::new("staging.yml")).unwrap();
        assert_eq!(only_file.apply("https://other.example"), "http://file.example");
        let none = ChartMirrors::default();
        assert_eq!(none.apply("https://other.example/"), "https://other.example");
        assert!(none.is_empty());
    }

    #[test]
    fn an_invalid_mirror_names_the_entry_and_its_source() {
        let err = ChartMirrors::from_sources(
            &["nonsense".into()],
            None,
            &Default::default(),
            Path::new("x.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--chart-mirror") && err.contains("`nonsense`"),
            "{err}"
        );
        let err = ChartMirrors::from_sources(&[], Some("*=ftp://x"), &Default::default(), Path::new("x.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(MIRRORS_ENV) && err.contains("ftp://x"), "{err}");
    }

    #[test]
    fn hash_req_matches_helm() {
        // Chart.lock written by `helm dependency update` (helm 4.1.4) for a chart with one aliased dependency.
        let requirements = [HashDependency {
            name: "rabbitmq-cluster-operator".into(),
            version: "4.4.34".into(),
            repository: "http://127.0.0.1:39057".into(),
            alias: "topology".into(),
            ..Default::default()
        }];
        let locked = [LockedDependency {
            name: "rabbitmq-cluster-operator".into(),
            repository: "http://127.0.0.1:39057".into(),
            version: "4.4.34".into(),
        }];
        assert_eq!(
            hash_req(&requirements, &locked),
            "sha256:283da4f97b6d64ce7241f4425607a2bef8d20e4eb6c07c0dfef694f9ff600d50"
        );
    }

    #[test]
    fn loopback_registries() {
        for url in [
            "oci://127.0.0.1:5000/charts",
            "oci://127.3.2.1/charts",
            "oci://localhost:5000",
            "oci://[::1]:5000/charts",
        ] {
            assert!(is_loopback_registry(url), "{url}");
        }
        for url in [
            "oci://registry.digitalocean.com/digitalocean",
            "oci://10.0.0.1:5000/charts",
            "http://127.0.0.1:8080",
            "oci://127.0.0.1.example.com/charts",
        ] {
            assert!(!is_loopback_registry(url), "{url}");
        }
    }

    #[test]
    fn exact_versions() {
        assert!(is_exact_version("v1.18.2") && is_exact_version("4.4.34") && is_exact_version("1.0.0-rc.1"));
        assert!(!is_exact_version("^1.2.0") && !is_exact_version("1.2.x") && !is_exact_version("1.2"));
    }
}

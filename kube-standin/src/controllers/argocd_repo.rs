//! Argo CD's repo-server, for `kube-standin serve --argocd REPO_URL=DIR`: an Application whose
//! `source.repoURL` is a served repository is rendered from `DIR/<path>` with real helm, as the
//! repo-server does, and [`super::argocd_sync::RenderedSource`] applies the result (see [`super::argocd`]).
//!
//! - Rendering works on a copy of the chart (the repository is never written to). Dependencies from
//!   upstream chart repositories (Chart.yaml `dependencies` with an `https://` or `oci://` repository) are
//!   pulled with `helm pull`, through `--chart-mirror FROM=TO` (FROM `*` = every upstream), into a cache
//!   shared by all renders — what `helm dependency build` does on a real repo-server.
//! - `helm template RELEASE . --namespace DEST --include-crds --kube-version … --api-versions …` with the
//!   source's `helm.valueFiles` (relative to the path; a missing one fails as in Argo CD unless
//!   `ignoreMissingValueFiles`), then `helm.values`/`valuesObject` (they win), then `helm.parameters`.
//! - The revision is a digest of the files the render read (a served directory need not be a git
//!   repository; a real Argo CD reports the commit). Changing a file under the path changes the revision
//!   and the Application is synced again — the repo-server's polling, without the 3-minute wait.
//! - Failures carry Argo CD's wording (`Failed to load target state: failed to generate manifest for
//!   source 1 of 1: rpc error: code = Unknown desc = …`), so they show as `ComparisonError`.
//!
//! Rendering runs on its own thread, never under the store lock; the controller asks again until the
//! render for the Application's current spec and revision is ready.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::store::ObjKey;
use crate::util::get_str;

/// A served repository: Applications whose `repoURL` is `url` read `dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedRepo {
    /// The repository URL as Applications spell it (compared without a trailing `/` or `.git`).
    pub url: String,
    /// The local checkout.
    pub dir: PathBuf,
}

impl ServedRepo {
    /// Parses `REPO_URL=DIR` (the `--argocd` flag).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (url, dir) = text.split_once('=').ok_or_else(|| {
            format!("`{text}` is not REPO_URL=DIR (e.g. https://github.com/acme/infra.git=/path/to/checkout)")
        })?;
        if url.is_empty() || dir.is_empty() {
            return Err(format!("`{text}`: both REPO_URL and DIR are needed"));
        }
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            return Err(format!("`{}` is not a directory", dir.display()));
        }
        Ok(ServedRepo {
            url: url.to_string(),
            dir,
        })
    }
}

/// One chart mirror: upstream repository `from` (or `*`) is fetched from `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartMirror {
    /// The upstream URL (`https://…`, `oci://…`) or `*`.
    pub from: String,
    /// The mirror's URL.
    pub to: String,
}

impl ChartMirror {
    /// Parses `FROM=TO` (the `--chart-mirror` flag).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (from, to) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not FROM=TO (e.g. '*=http://127.0.0.1:8879')"))?;
        let url_like = |s: &str| ["http://", "https://", "oci://"].iter().any(|p| s.starts_with(p));
        if !(from == "*" || url_like(from)) || !url_like(to) {
            return Err(format!(
                "`{text}`: FROM must be `*` or an http(s)/oci URL and TO an http(s)/oci URL"
            ));
        }
        Ok(ChartMirror {
            from: trim_url(from).to_string(),
            to: trim_url(to).to_string(),
        })
    }
}

fn trim_url(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn same_repo(a: &str, b: &str) -> bool {
    let norm = |s: &str| trim_url(s).trim_end_matches(".git").to_ascii_lowercase();
    norm(a) == norm(b)
}

/// What the repo-server needs: the served repositories, the mirrors, helm, and the cluster's versions.
#[derive(Debug, Clone)]
pub struct RepoServerConfig {
    /// Served repositories.
    pub repos: Vec<ServedRepo>,
    /// Chart mirrors, first match wins (an exact `from` before `*`).
    pub mirrors: Vec<ChartMirror>,
    /// The helm binary.
    pub helm: PathBuf,
}

impl RepoServerConfig {
    fn repo_dir(&self, url: &str) -> Option<&Path> {
        self.repos
            .iter()
            .find(|r| same_repo(&r.url, url))
            .map(|r| r.dir.as_path())
    }

    /// The URL to fetch an upstream chart repository from.
    fn mirrored(&self, upstream: &str) -> String {
        let upstream = trim_url(upstream);
        self.mirrors
            .iter()
            .find(|m| m.from == upstream)
            .or_else(|| self.mirrors.iter().find(|m| m.from == "*"))
            .map_or_else(|| upstream.to_string(), |m| m.to.clone())
    }
}

/// The part of an Application the render depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderRequest {
    /// `spec.source` (single-source Applications).
    pub source: Value,
    /// `spec.destination.namespace`.
    pub namespace: String,
    /// The Application's name (the default release name).
    pub app: String,
    /// `group/version` and `group/version/Kind` the cluster serves (helm's `--api-versions`).
    pub api_versions: Vec<String>,
    /// The cluster's version (helm's `--kube-version`).
    pub kube_version: String,
}

/// A finished render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The digest of what was read.
    pub revision: String,
    /// The manifests, in helm's order.
    pub manifests: Vec<Value>,
}

/// Prefix of every manifest-generation failure, as Argo CD words it.
fn load_failure(desc: &str) -> String {
    format!(
        "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = {desc}"
    )
}

impl RepoServerConfig {
    /// The source's chart directory and the revision of what a render reads, cheaply (no helm): used to
    /// notice repository changes.
    pub fn revision(&self, source: &Value) -> Result<(PathBuf, String), String> {
        let url = get_str(source, &["repoURL"]).unwrap_or("");
        if source.get("chart").is_some() {
            return Err(load_failure(&format!(
                "kube-standin serves only path sources from --argocd repositories; `chart` sources (repository {url}) are not supported"
            )));
        }
        let Some(root) = self.repo_dir(url) else {
            return Err(load_failure(&format!(
                "repository not found: {url} is not served by this kube-standin (serve it with --argocd {url}=DIR)"
            )));
        };
        let path = get_str(source, &["path"]).unwrap_or(".");
        // Canonical paths: `..` must not lead out of the repository.
        let dir = match (root.join(path).canonicalize(), root.canonicalize()) {
            (Ok(dir), Ok(root)) if dir.is_dir() && dir.starts_with(&root) => dir,
            _ => return Err(load_failure(&format!("{path}: app path does not exist"))),
        };
        let mut hasher = Sha256::new();
        hash_tree(&dir, &dir, &mut hasher).map_err(|e| load_failure(&format!("reading {path}: {e}")))?;
        hasher.update(serde_json::to_vec(source).unwrap_or_default());
        let digest = hasher.finalize();
        let revision: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
        Ok((dir, revision))
    }

    /// Renders one Application source with real helm (blocking; run off the store lock).
    pub fn render(&self, req: &RenderRequest, cache: &Path) -> Result<Rendered, String> {
        let (dir, revision) = self.revision(&req.source)?;
        let work = tempfile::Builder::new()
            .prefix("render-")
            .tempdir_in(cache)
            .map_err(|e| load_failure(&format!("creating a work directory: {e}")))?;
        let chart = work.path().join("chart");
        copy_tree(&dir, &chart).map_err(|e| load_failure(&format!("copying the chart: {e}")))?;
        let helm_home = cache.join("helm-home");
        self.fetch_dependencies(&chart, cache, &helm_home)?;

        let helm = &req.source["helm"];
        let release = get_str(helm, &["releaseName"]).unwrap_or(&req.app).to_string();
        let mut args: Vec<String> = vec![
            "template".into(),
            release.clone(),
            ".".into(),
            "--namespace".into(),
            req.namespace.clone(),
            "--include-crds".into(),
            "--kube-version".into(),
            req.kube_version.clone(),
        ];
        // The command as Argo CD's message shows it (without the long --api-versions list and values).
        let mut shown = format!(
            "helm template . --name-template {release} --namespace {} --kube-version {} --include-crds",
            req.namespace, req.kube_version
        );
        for v in &req.api_versions {
            args.push("--api-versions".into());
            args.push(v.clone());
        }
        let ignore_missing = helm
            .get("ignoreMissingValueFiles")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for file in helm
            .get("valueFiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !chart.join(file).is_file() {
                if ignore_missing {
                    continue;
                }
                let path = get_str(&req.source, &["path"]).unwrap_or(".");
                return Err(load_failure(&format!(
                    "Error: open {path}/{file}: no such file or directory"
                )));
            }
            args.push("--values".into());
            args.push(file.to_string());
            shown.push_str(&format!(" --values {file}"));
        }
        let inline = match (helm.get("valuesObject"), helm.get("values")) {
            (Some(obj), _) if obj.is_object() => Some(obj.clone()),
            (_, Some(Value::String(text))) if !text.trim().is_empty() => Some(
                serde_saphyr::from_str::<Value>(text)
                    .map_err(|e| load_failure(&format!("Error: failed to parse helm.values: {e}")))?,
            ),
            _ => None,
        };
        if let Some(values) = inline {
            let file = work.path().join("inline-values.json");
            std::fs::write(&file, values.to_string())
                .map_err(|e| load_failure(&format!("writing helm.values: {e}")))?;
            args.push("--values".into());
            args.push(file.display().to_string());
            shown.push_str(" --values <helm.values>");
        }
        for p in helm
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(value)) = (get_str(p, &["name"]), get_str(p, &["value"])) else {
                continue;
            };
            let flag = if p.get("forceString").and_then(Value::as_bool) == Some(true) {
                "--set-string"
            } else {
                "--set"
            };
            args.push(flag.into());
            args.push(format!("{name}={value}"));
            shown.push_str(&format!(" {flag} {name}=…"));
        }
        let output = self
            .helm_command(&helm_home)
            .args(&args)
            .current_dir(&chart)
            .output()
            .map_err(|e| load_failure(&format!("running {}: {e}", self.helm.display())))?;
        if !output.status.success() {
            return Err(load_failure(&format!(
                "`{shown}` failed {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let manifests = crate::store::parse_yaml_docs(&text, "helm template")
            .map_err(|e| load_failure(&format!("parsing helm's output: {e}")))?
            .into_iter()
            .filter(|m| m.get("kind").is_some())
            .collect();
        Ok(Rendered { revision, manifests })
    }

    /// helm with its own home under the cache: no user repositories, plugins or registry logins leak in.
    fn helm_command(&self, home: &Path) -> Command {
        let mut cmd = Command::new(&self.helm);
        cmd.env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null());
        cmd
    }

    /// Puts every upstream dependency of `chart` into `chart/charts/`, pulling each chart version once
    /// into `cache/charts/`.
    fn fetch_dependencies(&self, chart: &Path, cache: &Path, helm_home: &Path) -> Result<(), String> {
        let manifest = chart.join("Chart.yaml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            return Err(load_failure("Chart.yaml: no such file or directory"));
        };
        let meta: Value = serde_saphyr::from_str(&text)
            .map_err(|e| load_failure(&format!("Error: cannot load Chart.yaml: {e}")))?;
        let deps = meta
            .get("dependencies")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let charts_dir = chart.join("charts");
        for dep in deps {
            let (Some(name), Some(repo)) = (get_str(&dep, &["name"]), get_str(&dep, &["repository"])) else {
                continue;
            };
            if !(repo.starts_with("https://") || repo.starts_with("http://") || repo.starts_with("oci://")) {
                continue; // file:// and aliases: helm resolves them from the copy
            }
            let version = get_str(&dep, &["version"]).unwrap_or("");
            let store = cache.join("charts").join(format!(
                "{}-{}",
                hex_digest(&format!("{repo}\n{name}\n{version}"))[..16].to_owned(),
                name
            ));
            if !store.is_dir() || std::fs::read_dir(&store).map(|d| d.count()).unwrap_or(0) == 0 {
                self.pull(name, repo, version, &store, helm_home)?;
            }
            std::fs::create_dir_all(&charts_dir)
                .map_err(|e| load_failure(&format!("creating charts/: {e}")))?;
            for entry in std::fs::read_dir(&store).map_err(|e| load_failure(&e.to_string()))? {
                let entry = entry.map_err(|e| load_failure(&e.to_string()))?;
                std::fs::copy(entry.path(), charts_dir.join(entry.file_name()))
                    .map_err(|e| load_failure(&format!("copying {name}: {e}")))?;
            }
        }
        // Chart.lock pins the upstream URLs; helm template only needs the archives in charts/.
        let _ = std::fs::remove_file(chart.join("Chart.lock"));
        Ok(())
    }

    fn pull(
        &self,
        name: &str,
        repo: &str,
        version: &str,
        store: &Path,
        helm_home: &Path,
    ) -> Result<(), String> {
        let source = self.mirrored(repo);
        // A directory of this pull's own: two Applications may pull the same chart at once.
        let parent = store.parent().unwrap_or(store);
        std::fs::create_dir_all(parent).map_err(|e| load_failure(&e.to_string()))?;
        let partial = tempfile::Builder::new()
            .prefix(".pull-")
            .tempdir_in(parent)
            .map_err(|e| load_failure(&e.to_string()))?;
        let mut cmd = self.helm_command(helm_home);
        cmd.arg("pull");
        if source.starts_with("oci://") {
            cmd.arg(format!("{source}/{name}"));
        } else {
            cmd.args([name, "--repo", &source]);
        }
        if !version.is_empty() {
            cmd.args(["--version", version]);
        }
        cmd.arg("--destination").arg(partial.path());
        let output = cmd
            .output()
            .map_err(|e| load_failure(&format!("running {}: {e}", self.helm.display())))?;
        if !output.status.success() {
            return Err(load_failure(&format!(
                "`helm dependency build` failed: pulling {name} {version} from {source}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        // Renamed into place: a render never sees half a download; if another pull won, its copy serves.
        let partial = partial.keep();
        if std::fs::rename(&partial, store).is_err() {
            let _ = std::fs::remove_dir_all(&partial);
            if !store.is_dir() {
                return Err(load_failure(&format!(
                    "storing {name} {version} in the chart cache failed"
                )));
            }
        }
        Ok(())
    }
}

fn hex_digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hash_tree(root: &Path, dir: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        let rel = path.strip_prefix(root).unwrap_or(&path);
        if kind.is_dir() {
            hash_tree(root, &path, hasher)?;
        } else if kind.is_file() {
            hasher.update(rel.display().to_string().as_bytes());
            hasher.update([0]);
            hasher.update(std::fs::read(&path)?);
            hasher.update([0]);
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Renders in the background, one Application at a time per thread; the controller polls.
pub struct RenderQueue {
    config: Arc<RepoServerConfig>,
    cache: Arc<tempfile::TempDir>,
    slots: Arc<Mutex<HashMap<ObjKey, Slot>>>,
}

#[derive(Clone)]
enum Slot {
    Running(RenderRequest, String),
    Done(RenderRequest, String, Result<Rendered, String>),
}

/// Where an Application's render stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderState {
    /// Rendering; ask again.
    Pending,
    /// Rendered (or failed) for the current request and revision.
    Ready(Result<Rendered, String>),
}

impl RenderQueue {
    /// A queue with its cache in a fresh temporary directory.
    pub fn new(config: RepoServerConfig) -> std::io::Result<Self> {
        Ok(RenderQueue {
            config: Arc::new(config),
            cache: Arc::new(tempfile::Builder::new().prefix("kube-standin-repo-").tempdir()?),
            slots: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RepoServerConfig {
        &self.config
    }

    /// The render of `req` for `app`: ready, or started (or still running) in the background.
    pub fn get(&self, app: &ObjKey, req: &RenderRequest) -> RenderState {
        let revision = match self.config.revision(&req.source) {
            Ok((_, revision)) => revision,
            Err(message) => return RenderState::Ready(Err(message)),
        };
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slots.get(app) {
            Some(Slot::Done(r, rev, result)) if r == req && *rev == revision => {
                return RenderState::Ready(result.clone());
            }
            Some(Slot::Running(r, rev)) if r == req && *rev == revision => return RenderState::Pending,
            _ => {}
        }
        slots.insert(app.clone(), Slot::Running(req.clone(), revision.clone()));
        drop(slots);
        let (config, cache, slots, app, req) = (
            self.config.clone(),
            self.cache.clone(),
            self.slots.clone(),
            app.clone(),
            req.clone(),
        );
        std::thread::spawn(move || {
            let result = config.render(&req, cache.path());
            let mut slots = slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // A newer request may have replaced this one meanwhile: keep it.
            if matches!(slots.get(&app), Some(Slot::Running(r, rev)) if *r == req && *rev == revision) {
                slots.insert(app, Slot::Done(req, revision, result));
            }
        });
        RenderState::Pending
    }

    /// The current revision of a source (cheap), for noticing repository changes.
    pub fn revision(&self, source: &Value) -> Option<String> {
        self.config.revision(source).ok().map(|(_, r)| r)
    }

    /// Forgets an Application (deleted).
    pub fn forget(&self, app: &ObjKey) {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(app);
    }
}

/// The placeholder namespace Argo CD gives a namespaced manifest without one.
pub fn with_namespace(mut manifest: Value, namespace: &str) -> Value {
    if manifest.pointer("/metadata/namespace").is_none() {
        if manifest.get("metadata").is_none() {
            manifest["metadata"] = json!({});
        }
        manifest["metadata"]["namespace"] = json!(namespace);
    }
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_say_the_form() {
        let m = ChartMirror::parse("*=http://127.0.0.1:8879/").unwrap();
        assert_eq!((m.from.as_str(), m.to.as_str()), ("*", "http://127.0.0.1:8879"));
        assert!(ChartMirror::parse("nothing").unwrap_err().contains("FROM=TO"));
        assert!(
            ChartMirror::parse("*=ftp://x")
                .unwrap_err()
                .contains("http(s)/oci")
        );
        assert!(
            ServedRepo::parse("https://x/y.git")
                .unwrap_err()
                .contains("REPO_URL=DIR")
        );
        assert!(
            ServedRepo::parse("https://x/y.git=/does/not/exist")
                .unwrap_err()
                .contains("not a directory")
        );
    }

    #[test]
    fn repositories_match_with_or_without_git_suffix_and_mirrors_prefer_exact() {
        let dir = tempfile::tempdir().unwrap();
        let config = RepoServerConfig {
            repos: vec![
                ServedRepo::parse(&format!("https://github.com/a/b.git={}", dir.path().display())).unwrap(),
            ],
            mirrors: vec![
                ChartMirror::parse("*=http://127.0.0.1:1").unwrap(),
                ChartMirror::parse("https://charts.jetstack.io=oci://mirror/jetstack").unwrap(),
            ],
            helm: "helm".into(),
        };
        assert!(config.repo_dir("https://github.com/a/b/").is_some());
        assert!(config.repo_dir("https://github.com/a/c").is_none());
        assert_eq!(
            config.mirrored("https://charts.jetstack.io/"),
            "oci://mirror/jetstack"
        );
        assert_eq!(config.mirrored("https://other.example"), "http://127.0.0.1:1");
    }

    #[test]
    fn the_revision_follows_the_files_and_a_missing_path_is_argo_cds_message() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("helm/web")).unwrap();
        std::fs::write(dir.path().join("helm/web/Chart.yaml"), "name: web\n").unwrap();
        let config = RepoServerConfig {
            repos: vec![
                ServedRepo::parse(&format!("https://git.example/r={}", dir.path().display())).unwrap(),
            ],
            mirrors: vec![],
            helm: "helm".into(),
        };
        let source = json!({"repoURL": "https://git.example/r", "path": "helm/web"});
        let (_, first) = config.revision(&source).unwrap();
        std::fs::write(dir.path().join("helm/web/values.yaml"), "a: 1\n").unwrap();
        let (_, second) = config.revision(&source).unwrap();
        assert_ne!(first, second);
        let missing = json!({"repoURL": "https://git.example/r", "path": "helm/nope"});
        let err = config.revision(&missing).unwrap_err();
        assert!(
            err.starts_with("Failed to load target state:")
                && err.ends_with("helm/nope: app path does not exist"),
            "{err}"
        );
        let escape = json!({"repoURL": "https://git.example/r", "path": "../.."});
        assert!(config.revision(&escape).is_err());
    }
}

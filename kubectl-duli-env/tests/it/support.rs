//! The test world: a kube-standin with the real CRDs and its operator simulation, a copy of the repository
//! with fixture platform charts and SealedSecrets, our plugin in a private PATH directory, real helm 4, and
//! the real kubectl dispatching `kubectl duli env …` to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher;
use kube_standin::StandIn;

use super::helm_proxy::{self, HelmProxy};

/// The workspace root (the repository under test).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Real helm 4: `$DULI_HELM4_BIN`, else where `.ci/install-tools` puts it. Missing is a failure.
pub fn helm4() -> PathBuf {
    let path = std::env::var_os("DULI_HELM4_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/duli/tools/helm-4.1.4/helm")
        });
    assert!(
        path.is_file(),
        "helm 4 not found at {}: run `bash .ci/install-tools` first (or set DULI_HELM4_BIN)",
        path.display()
    );
    path
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What one command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Panic with both streams unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code}) after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        );
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// One isolated world.
pub struct World {
    /// The API server.
    pub api: StandIn,
    /// Everything on disk.
    pub dir: tempfile::TempDir,
    /// The repository copy.
    pub repo: PathBuf,
    /// KUBECONFIG for the plugin, kubectl and the test.
    pub kubeconfig: PathBuf,
    plugins: PathBuf,
    helm: PathBuf,
    proxy: HelmProxy,
    argocd: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.argocd.abort();
    }
}

impl World {
    /// A fresh world; objects become ready `delay` after they appear (the stand-in's operator simulation).
    pub async fn start(delay: Duration) -> World {
        Self::start_with(kube_standin::StandIn::builder().simulate_ready(delay)).await
    }

    /// A fresh world from a prepared stand-in builder (CRDs are added here).
    pub async fn start_with(builder: kube_standin::Builder) -> World {
        let helm = helm4();
        let api = builder
            .crd_dir(workspace().join("../shared/crds"))
            .start()
            .await
            .expect("stand-in starts");
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        copy_dir(&workspace().join("gitops"), &repo.join("gitops"));
        copy_dir(&workspace().join("helm"), &repo.join("helm"));
        copy_dir(&fixtures().join("sealed"), &repo.join("helm/secrets/sealed"));
        // The platform catalog points at local fixture charts that real helm installs.
        std::fs::copy(
            fixtures().join("platform/platform.yml"),
            repo.join("gitops/platform.yml"),
        )
        .unwrap();
        copy_dir(&fixtures().join("platform/charts"), &repo.join("gitops/charts"));
        let kubeconfig = api.write_kubeconfig(dir.path()).unwrap();
        let plugins = dir.path().join("bin");
        std::fs::create_dir_all(&plugins).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_kubectl-duli-env"),
            plugins.join("kubectl-duli-env"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&helm, plugins.join("helm")).unwrap();
        let proxy = helm_proxy::start(api.addr()).await;
        let argocd = tokio::spawn(argocd_finalizers(api.client()));
        World {
            api,
            dir,
            repo,
            kubeconfig,
            plugins,
            helm,
            proxy,
            argocd,
        }
    }

    /// `kubectl duli env ARGS` through the machine's kubectl dispatcher, with everything pointed at this world.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let home = self.dir.path().join("home");
        let mut command = tokio::process::Command::new("/usr/bin/kubectl");
        command
            .arg("duli")
            .arg("env")
            .args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", self.plugins.display()))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("DULI_REPO", &self.repo)
            .env("DULI_STATE_DIR", self.dir.path().join("state"))
            .env("HOME", &home)
            .env("HELM_KUBEAPISERVER", &self.proxy.url)
            .env("HELM_CACHE_HOME", home.join(".cache/helm"))
            .env("HELM_CONFIG_HOME", home.join(".config/helm"))
            .env("HELM_DATA_HOME", home.join(".local/share/helm"))
            .env_remove("HELM_BIN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let _ = &self.helm;
        command
    }

    /// Run `kubectl duli env ARGS` to completion (at most 3 minutes).
    pub async fn run(&self, args: &[&str]) -> Run {
        run_to_end(self.command(args), args).await
    }

    /// Wait (at most a minute) until helm has recorded the argocd release as pending-install: the moment
    /// to interrupt an `up` in its platform phase (a slow readiness delay keeps helm waiting there).
    pub async fn wait_for_pending_install(&self) {
        let pending = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let release = self.get("secrets", "argocd", "sh.helm.release.v1.argocd.v1");
                if release.is_some_and(|r| r["metadata"]["labels"]["status"] == "pending-install") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(pending.is_ok(), "helm never recorded a pending install");
    }

    /// A live object as JSON, from the stand-in's store.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.api.store().get(resource, namespace, name)
    }
}

/// Run a prepared `kubectl duli env ARGS` to completion; more than 3 minutes is a hang and fails the test.
pub async fn run_to_end(mut command: tokio::process::Command, args: &[&str]) -> Run {
    let started = Instant::now();
    let child = command.spawn().expect("kubectl runs");
    let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl duli env {} hung (3 minutes)", args.join(" ")))
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Send `signal` (`INT` for Ctrl-C, `KILL`) to a whole process group (kubectl, the plugin it runs, and helm),
/// as a terminal's Ctrl-C reaches all of them.
pub fn signal_group(signal: &str, pgid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} -- -{pgid} failed");
}

/// Argo CD's application controller, as far as deletion goes: it removes its cascade finalizer from
/// Applications and AppProjects being deleted. (Workaround until the stand-in simulates it.)
async fn argocd_finalizers(client: kube::Client) {
    let kinds = ["Application", "AppProject"];
    let streams = kinds.map(|kind| {
        let resource =
            kube::api::ApiResource::from_gvk(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", kind));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let resource = resource.clone();
        let client = client.clone();
        watcher(api, watcher::Config::default()).for_each(move |event| {
            let client = client.clone();
            let resource = resource.clone();
            async move {
                let Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) = event else {
                    return;
                };
                let deleting = obj.metadata.deletion_timestamp.is_some();
                let has = obj
                    .metadata
                    .finalizers
                    .as_ref()
                    .is_some_and(|f| f.iter().any(|f| f == "resources-finalizer.argocd.argoproj.io"));
                if deleting && has {
                    let namespace = obj.metadata.namespace.clone().unwrap_or_default();
                    let name = obj.metadata.name.clone().unwrap_or_default();
                    let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &resource);
                    let patch = serde_json::json!({"metadata": {"finalizers": null}});
                    let _ = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
            }
        })
    });
    let [a, b] = streams;
    futures::future::join(a, b).await;
}

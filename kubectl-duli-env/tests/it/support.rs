//! The test world: a kube-standin with the real CRDs and its operator simulation, a copy of the repository
//! with fixture platform charts and SealedSecrets, our plugin in a private PATH directory, real helm 4, and
//! the real kubectl dispatching `kubectl duli env …` to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use testkit::paths::{copy_dir, workspace};
pub use testkit::process::Run;
use testkit::tools::helm4;

use kube_standin::StandIn;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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
        World {
            api,
            dir,
            repo,
            kubeconfig,
            plugins,
            helm,
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
        run_to_end(self.command(args)).await
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

    /// Start `up staging --timeout 2m` in a process group of its own, so that a signal to the group reaches
    /// the whole tree (kubectl → plugin → helm) like Ctrl-C on a terminal; with its pid (the group's id).
    pub fn spawn_up_in_own_group(&self) -> (tokio::process::Child, i32) {
        let child = self
            .command(&["up", "staging", "--timeout", "2m"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap() as i32;
        (child, pid)
    }

    /// A live object as JSON, from the stand-in's store.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.api.store().get(resource, namespace, name)
    }

    /// Hold an object not ready with `reason` (the stand-in's switch for an operator that never gets there).
    pub fn hold_unready(&self, resource: &str, namespace: &str, name: &str, reason: &str) {
        self.api.set_unready(resource, namespace, name, reason).unwrap();
    }
}

/// Run a prepared `kubectl duli env ARGS` to completion; more than 3 minutes is a hang and fails the test.
pub async fn run_to_end(command: tokio::process::Command) -> Run {
    testkit::process::output_within(command, Duration::from_secs(180)).await
}

/// `text` contains `needle`; otherwise fail showing the whole text.
#[track_caller]
pub fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

//! Shared helpers: where the real CRDs are, how to run the real kubectl binaries, fixtures.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use kube_standin::StandIn;

/// A stand-in running its controllers (objects ready after 100 ms), as real helm's `--wait` needs.
pub async fn standin_with_controllers() -> StandIn {
    StandIn::builder()
        .simulate_ready(Duration::from_millis(100))
        .start()
        .await
        .expect("stand-in starts")
}

/// One folder of `../shared/crds` (relative to the repository root), asserting it exists so a wrong
/// path fails loudly.
pub fn crds(folder: &str) -> PathBuf {
    let p = kube_standin::shared_crds(folder);
    assert!(
        p.is_dir(),
        "missing CRD folder {} (shared/ must sit beside the repository)",
        p.display()
    );
    p
}

/// The two kubectl builds every kubectl check runs with: the dispatcher on PATH (which picks its 1.32
/// build from `/version`) and kubectl 1.35 from the tools cache.
pub fn kubectls() -> Vec<(&'static str, PathBuf)> {
    let k135 = std::env::var_os("DULI_KUBECTL135_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache/duli/tools/kubectl-1.35.2/kubectl")
        });
    assert!(
        k135.is_file(),
        "kubectl 1.35 not found at {}: run `bash .ci/install-tools` (or set DULI_KUBECTL135_BIN)",
        k135.display()
    );
    let k132 = which::which("kubectl").expect("kubectl (the 1.32 dispatcher) must be on PATH");
    vec![("1.32", k132), ("1.35", k135)]
}

/// Runs `scenario` once per kubectl build, each on a task of its own so they run at once; a scenario's
/// panic fails the test with its own message.
pub async fn spawn_per_kubectl<F>(scenario: impl Fn(&'static str, PathBuf) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let runs = kubectls()
        .into_iter()
        .map(|(label, bin)| tokio::spawn(scenario(label, bin)));
    for run in futures::future::join_all(runs).await {
        if let Err(e) = run {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("a kubectl scenario did not finish: {e}");
        }
    }
}

/// Runs kubectl against a stand-in, with its own cache dir so no discovery cache leaks between calls.
pub struct Kubectl {
    /// Which build ("1.32" / "1.35").
    pub label: &'static str,
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

/// The result of one kubectl run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(label: &'static str, bin: PathBuf, api: &StandIn) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path()).expect("kubeconfig");
        Kubectl {
            label,
            bin,
            kubeconfig,
            dir,
        }
    }

    /// A file in this kubectl's scratch dir.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write fixture");
        p
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let cache = tempfile::tempdir_in(self.dir.path()).expect("cache dir");
        let out: Output = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(&self.bin)
                .args(args)
                .arg("--cache-dir")
                .arg(cache.path())
                .env("KUBECONFIG", &self.kubeconfig)
                .env("HOME", self.dir.path())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("kubectl {} {args:?} hung", self.label))
        .expect("kubectl runs");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts success, returning stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert!(
            r.ok,
            "kubectl {} {args:?} failed:\nstdout: {}\nstderr: {}",
            self.label, r.stdout, r.stderr
        );
        r.stdout
    }

    /// `kubectl rollout status TARGET -n NAMESPACE --timeout=TIMEOUT`, asserting success; its stdout.
    pub async fn rollout_status(&self, target: &str, namespace: &str, timeout: &str) -> String {
        let timeout = format!("--timeout={timeout}");
        self.ok(&["rollout", "status", target, "-n", namespace, &timeout])
            .await
    }

    /// `kubectl wait --for=condition=CONDITION TARGET -n NAMESPACE --timeout=TIMEOUT`, asserting success.
    pub async fn wait_for(&self, condition: &str, target: &str, namespace: &str, timeout: &str) -> String {
        let (condition, timeout) = (
            format!("--for=condition={condition}"),
            format!("--timeout={timeout}"),
        );
        self.ok(&["wait", &condition, target, "-n", namespace, &timeout])
            .await
    }

    /// `kubectl patch RESOURCE NAME -n NAMESPACE --type=TYPE -p PATCH`, asserting success.
    pub async fn patch(&self, resource: &str, name: &str, namespace: &str, ty: &str, patch: &str) -> String {
        let ty = format!("--type={ty}");
        self.ok(&["patch", resource, name, "-n", namespace, &ty, "-p", patch])
            .await
    }

    /// Runs and asserts failure, returning stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert!(
            !r.ok,
            "kubectl {} {args:?} unexpectedly succeeded:\n{}",
            self.label, r.stdout
        );
        r.stderr
    }
}

/// A CloudNativePG Cluster as `duli env` would apply it.
pub const CNPG_CLUSTER: &str = "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: database
  namespace: staging
spec:
  instances: 1
  storage:
    size: 1Gi
";

/// A one-replica StatefulSet `db` in `staging`, for the workload checks.
pub const STATEFULSET_DB: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: staging}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: pg, image: postgres}]}
";

impl Kubectl {
    /// A kubectl command against this server to drive by hand (streaming output, e.g. `get -w`).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache-command"))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        cmd
    }
}

/// The whitespace-separated header of kubectl's table output (first line).
pub fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The row of kubectl's table output whose first column (after NAMESPACE, if any) is `name`, split on
/// runs of two or more spaces.
pub fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table.lines().skip(1).find_map(|l| {
        let cells: Vec<String> = l
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        cells.iter().take(2).any(|c| c == name).then_some(cells)
    })
}

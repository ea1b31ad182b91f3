//! Shared test support: keys and certificates made with the `openssl` CLI at test time, running the
//! plugin, and the kubesealpy oracle.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use testkit::certs;

/// The controller's test key pair and certificates, in one temp dir that lives for the test process.
pub struct Keys {
    pub dir: PathBuf,
    /// RSA-4096 private key (PKCS#8 PEM), as the controller makes them.
    pub key: PathBuf,
    /// Its self-signed certificate, valid ten years.
    pub cert: PathBuf,
    /// Same key, certificate expired yesterday.
    pub expired: PathBuf,
    /// Same key, certificate expiring in ten days.
    pub soon: PathBuf,
    /// An EC certificate.
    pub ec: PathBuf,
    /// A second RSA key's certificate (another cluster).
    pub other_cert: PathBuf,
}

/// Keys made once per day and shared by the test processes (nextest runs each test in its own): made in a
/// temp dir, then renamed into place, so a reader never sees half a set.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let day = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = base.join(format!("secrets-test-keys-{day}"));
        if !dir.join("other.pem").is_file() {
            std::fs::create_dir_all(base).unwrap();
            let work = tempfile::tempdir_in(base).unwrap();
            let at = work.path();
            certs::rsa_key(at, 4096, "key.pem");
            certs::self_signed(at, "key.pem", "sealed-secret", 3650, "cert.pem");
            certs::expired(at, "key.pem", "expired.pem");
            certs::self_signed(at, "key.pem", "soon", 10, "soon.pem");
            certs::ec_self_signed(at, "ec-key.pem", "ec.pem");
            certs::rsa_key(at, 2048, "other-key.pem");
            certs::self_signed(at, "other-key.pem", "other", 365, "other.pem");
            // Another process may have won the race: then its set is used and ours dropped.
            let work = work.keep();
            if std::fs::rename(&work, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&work);
            }
        }
        Keys {
            key: dir.join("key.pem"),
            cert: dir.join("cert.pem"),
            expired: dir.join("expired.pem"),
            soon: dir.join("soon.pem"),
            ec: dir.join("ec.pem"),
            other_cert: dir.join("other.pem"),
            dir,
        }
    })
}

/// The plugin binary with a clean environment: no kubeconfig, a private cache dir, no `SEALED_SECRETS_*`.
pub fn plugin(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-duli-secrets"));
    command
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("KUBECONFIG", home.join("no-kubeconfig"))
        .env_remove("DULI_REPO")
        .env_remove("RUST_LOG");
    // Every kubeseal variable (`SEALED_SECRETS_<FLAG>`) the plugin reads.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SEALED_SECRETS_") {
            command.env_remove(name);
        }
    }
    command
}

/// Run with `stdin` bytes.
pub fn run_with_stdin(mut command: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("plugin starts");
    // A plugin that refuses its arguments exits without reading stdin: the pipe is then closed, and that
    // is its answer, not the test's failure.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

/// `kubectl-duli-secrets ARGS` with `KUBECONFIG` and `stdin`, off the async runtime (a test's stand-in
/// keeps serving meanwhile).
pub async fn run_against(home: &Path, kubeconfig: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = plugin(home);
    command.env("KUBECONFIG", kubeconfig).args(args);
    let stdin = stdin.as_bytes().to_vec();
    tokio::task::spawn_blocking(move || run_with_stdin(command, &stdin))
        .await
        .unwrap()
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Assert exit code `code`, showing stderr otherwise.
#[track_caller]
pub fn assert_code(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// A python that imports kubesealpy: `$KUBESEALPY_PYTHON`, else `python3` if it has it (CI:
/// .ci/requirements-test.txt), else a virtualenv made by `tests/setup-kubesealpy.sh` (pip install
/// kubesealpy==1.0.1).
pub fn kubesealpy() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(python) = std::env::var("KUBESEALPY_PYTHON") {
            return PathBuf::from(python);
        }
        let system = Command::new("python3").args(["-c", "import kubesealpy"]).output();
        if system.is_ok_and(|output| output.status.success()) {
            return PathBuf::from("python3");
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/setup-kubesealpy.sh");
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubesealpy-venv");
        let output = Command::new("bash").arg(&script).arg(&venv).output().expect("bash runs");
        assert!(
            output.status.success(),
            "cannot set up kubesealpy (python3 -m venv {venv:?} && {venv:?}/bin/pip install kubesealpy==1.0.1): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// Run the oracle; `Ok(stdout)` or `Err(stderr)` (NoMatchingKeyError → exit 3).
pub fn oracle(args: &[&str]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubesealpy_oracle.py");
    let output = Command::new(kubesealpy())
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    match output.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        Some(3) => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        _ => panic!(
            "oracle {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// Standard base64.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A scratch repository with this repository's `gitops/environments/{staging,prod}.yml` copied in; the
/// caller adds the rest (catalog, charts).
pub fn repo_with_environments() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("gitops/environments")).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gitops/environments");
    for env in ["staging", "prod"] {
        std::fs::copy(
            source.join(format!("{env}.yml")),
            root.join(format!("gitops/environments/{env}.yml")),
        )
        .unwrap();
    }
    dir
}

/// Serves the test certificate ([`keys`]) at `/v1/cert.pem` on a local port, as the sealed-secrets
/// controller does, and returns the seed YAML of a `kube-system/sealed-secrets-controller` Service that
/// kube-standin proxies to it.
pub async fn certificate_serving_service() -> String {
    use axum::Router;
    use axum::routing::get;
    let cert = std::fs::read_to_string(&keys().cert).unwrap();
    let app = Router::new().route("/v1/cert.pem", get(move || async move { cert }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: sealed-secrets-controller\n  namespace: kube-system\n  \
         annotations: {{kube-standin/proxy: \"{url}\"}}\nspec:\n  ports:\n  - {{name: http, port: 8080, targetPort: 8080}}\n"
    )
}

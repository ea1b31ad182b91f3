//! A real OCI registry on 127.0.0.1: the CNCF distribution registry (Debian's `docker-registry` 2.8.2,
//! fetched by `.ci/install-tools --test`), plain HTTP, its storage in a temporary directory, with charts
//! pushed into it by the real helm (`helm push`). What an `oci://` chart repository or mirror is.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry; stopped (and its storage removed) when dropped.
#[derive(Debug)]
pub struct OciRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    child: Child,
    _storage: tempfile::TempDir,
}

impl OciRegistry {
    /// Start a registry on a free port and wait until it answers `GET /v2/`.
    pub fn start() -> Self {
        let bin = crate::tools::docker_registry();
        let storage = tempfile::tempdir().unwrap();
        let host = format!("127.0.0.1:{}", crate::servers::free_port());
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        let registry = OciRegistry {
            host,
            child,
            _storage: storage,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !registry.answers() {
            assert!(
                Instant::now() < deadline,
                "the registry at {} did not start",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(&self.host) else {
            return false;
        };
        let request = format!(
            "GET /v2/ HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.host
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }

    /// `oci://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.host)
    }

    /// `helm push PACKAGE oci://HOST/<path> --plain-http` with `helm`, in a helm home of its own.
    pub fn push(&self, helm: &Path, package: &Path, path: &str) {
        let home = tempfile::tempdir().unwrap();
        let output = Command::new(helm)
            .arg("push")
            .arg(package)
            .arg(self.url(path))
            .arg("--plain-http")
            .envs(crate::tools::helm_home_env(home.path()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "helm push {} failed: {}",
            package.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

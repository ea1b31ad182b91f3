//! The real helm and kubectl builds the tests run. Each is found through its environment variable, else
//! where `.ci/install-tools` puts it; a missing tool fails the test, naming the variable and the fix.

use std::path::{Path, PathBuf};

/// `$HOME/.cache/duli/tools`, where `.ci/install-tools` installs the pinned builds.
pub fn tools_cache() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/duli/tools")
}

/// `$var`, else `tools_cache()/default`; asserted to be a file.
fn pinned(var: &str, default: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_cache().join(default));
    assert!(
        path.is_file(),
        "{what} not found at {}: set {var} or run `bash .ci/install-tools --test` in the repository",
        path.display()
    );
    path
}

/// helm 4.1.4: `$DULI_HELM4_BIN`, else the tools cache.
pub fn helm4() -> PathBuf {
    pinned("DULI_HELM4_BIN", "helm-4.1.4/helm", "helm 4")
}

/// helm 3.17.2: `$DULI_HELM3_BIN`, else the tools cache.
pub fn helm3() -> PathBuf {
    pinned("DULI_HELM3_BIN", "helm-3.17.2/helm", "helm 3")
}

/// kubectl 1.35.2: `$DULI_KUBECTL135_BIN`, else the tools cache.
pub fn kubectl135() -> PathBuf {
    pinned("DULI_KUBECTL135_BIN", "kubectl-1.35.2/kubectl", "kubectl 1.35")
}

/// Microsoft's SARIF Multitool 5.7.0 (the SARIF validator): `$DULI_SARIF_MULTITOOL_BIN`, else the tools
/// cache (`.ci/install-tools --test` fetches it).
pub fn sarif_multitool() -> PathBuf {
    pinned(
        "DULI_SARIF_MULTITOOL_BIN",
        "sarif-multitool-5.7.0/Sarif.Multitool",
        "SARIF Multitool",
    )
}

/// The CNCF distribution registry 2.8.2 (Debian's `docker-registry`): `$DULI_DOCKER_REGISTRY_BIN`, else the
/// tools cache (`.ci/install-tools --test` fetches it).
pub fn docker_registry() -> PathBuf {
    pinned(
        "DULI_DOCKER_REGISTRY_BIN",
        "docker-registry-2.8.2/docker-registry",
        "docker-registry",
    )
}

/// What keeps a helm run away from the user's repositories, caches and registry logins: its cache,
/// config and data homes under `dir` (for `Command::envs`).
pub fn helm_home_env(dir: &Path) -> [(&'static str, PathBuf); 3] {
    [
        ("HELM_CACHE_HOME", dir.join("cache")),
        ("HELM_CONFIG_HOME", dir.join("config")),
        ("HELM_DATA_HOME", dir.join("data")),
    ]
}

/// The machine's kubectl (the 1.32 dispatcher), `/usr/bin/kubectl`: the one that runs `kubectl duli …`.
pub fn kubectl() -> PathBuf {
    let path = Path::new("/usr/bin/kubectl");
    assert!(
        path.is_file(),
        "the machine's kubectl 1.32 is expected at /usr/bin/kubectl"
    );
    path.to_path_buf()
}

/// The two kubectl builds every kubectl check runs with, labelled: the machine's dispatcher (1.32) and 1.35.
pub fn kubectls() -> Vec<(&'static str, PathBuf)> {
    vec![("1.32", kubectl()), ("1.35", kubectl135())]
}

/// A program on PATH (e.g. `pg_ctl`, `redis-server`), or a failure saying which package provides it.
pub fn on_path(program: &str, package: &str) -> PathBuf {
    which::which(program).unwrap_or_else(|_| panic!("`{program}` not on PATH: install {package}"))
}

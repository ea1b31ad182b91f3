//! Locating the external programs the plugins drive (helm, psql, redis-cli), with install hints.

use std::path::PathBuf;

/// Errors finding a tool.
#[derive(Debug, thiserror::Error)]
#[error("`{name}` {problem}: {hint}")]
pub struct ToolNotFound {
    /// The program.
    pub name: String,
    /// What is wrong, e.g. "not found on PATH".
    pub problem: String,
    /// How to install it.
    pub hint: String,
}

/// How to install each tool we know about.
fn install_hint(name: &str) -> &'static str {
    match name {
        "helm" => {
            "install helm 3.17+ or 4 (`bash .ci/install-tools` in the duli repository fetches both) or set HELM_BIN"
        }
        "psql" => {
            "install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq)"
        }
        "redis-cli" => {
            "install the Redis client (Debian/Ubuntu: apt-get install redis-tools; macOS: brew install redis)"
        }
        "kubectl" => "install kubectl (`bash .ci/install-tools` in the duli repository fetches 1.35)",
        _ => "install it and make sure it is on PATH",
    }
}

/// Find `name` on PATH.
pub fn find(name: &str) -> Result<PathBuf, ToolNotFound> {
    which::which(name).map_err(|_| ToolNotFound {
        name: name.to_string(),
        problem: "not found on PATH".to_string(),
        hint: install_hint(name).to_string(),
    })
}

/// The helm binary: `$HELM_BIN` when helm runs us as a plugin (or the user sets it), else `helm` on PATH.
pub fn helm() -> Result<PathBuf, ToolNotFound> {
    helm_from(std::env::var_os("HELM_BIN"))
}

/// [`helm`] with `HELM_BIN`'s value given.
fn helm_from(helm_bin: Option<std::ffi::OsString>) -> Result<PathBuf, ToolNotFound> {
    match helm_bin.filter(|value| !value.is_empty()) {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            // HELM_BIN may be a bare name (helm's argv[0]) or a path.
            which::which(&bin).map_err(|_| {
                // A file that is there but cannot run needs another fix than a missing one.
                let (problem, hint) = if bin.is_file() {
                    (
                        "(from HELM_BIN) is not executable",
                        "make it executable (chmod +x) or point HELM_BIN at the helm binary",
                    )
                } else {
                    ("(from HELM_BIN) not found", install_hint("helm"))
                };
                ToolNotFound {
                    name: bin.display().to_string(),
                    problem: problem.to_string(),
                    hint: hint.to_string(),
                }
            })
        }
        None => find("helm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_bin_that_is_not_executable_says_so() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let helm = tmp.path().join("helm");
        std::fs::write(&helm, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o644)).unwrap();
        let not_executable = helm_from(Some(helm.into_os_string())).unwrap_err().to_string();
        let missing = helm_from(Some(tmp.path().join("missing").into_os_string()))
            .unwrap_err()
            .to_string();
        assert!(
            not_executable.contains("(from HELM_BIN) is not executable")
                && not_executable.contains("chmod +x"),
            "{not_executable}"
        );
        assert!(
            missing.contains("(from HELM_BIN) not found") && missing.contains("install helm"),
            "{missing}"
        );
    }

    #[test]
    fn missing_tool_says_how_to_install() {
        let err = find("psql-that-does-not-exist").unwrap_err().to_string();
        assert!(err.contains("not found on PATH"), "{err}");
        let hint = install_hint("psql");
        assert!(hint.contains("postgresql-client"));
    }
}

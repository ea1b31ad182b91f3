//! Locating the external programs the plugins drive (helm, psql, redis-cli), with install hints.

use std::path::PathBuf;

/// Errors finding a tool.
#[derive(Debug, thiserror::Error)]
#[error("`{name}` not found{where_}: {hint}")]
pub struct ToolNotFound {
    /// The program.
    pub name: String,
    /// Where we looked, e.g. " on PATH".
    pub where_: String,
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
        where_: " on PATH".to_string(),
        hint: install_hint(name).to_string(),
    })
}

/// The helm binary: `$HELM_BIN` when helm runs us as a plugin (or the user sets it), else `helm` on PATH.
pub fn helm() -> Result<PathBuf, ToolNotFound> {
    match std::env::var_os("HELM_BIN").filter(|value| !value.is_empty()) {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            // HELM_BIN may be a bare name (helm's argv[0]) or a path.
            which::which(&bin).map_err(|_| ToolNotFound {
                name: bin.display().to_string(),
                where_: " (from HELM_BIN)".to_string(),
                hint: install_hint("helm").to_string(),
            })
        }
        None => find("helm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_says_how_to_install() {
        let err = find("psql-that-does-not-exist").unwrap_err().to_string();
        assert!(err.contains("not found on PATH"), "{err}");
        let hint = install_hint("psql");
        assert!(hint.contains("postgresql-client"));
    }
}

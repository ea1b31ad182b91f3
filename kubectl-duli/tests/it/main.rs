//! `kubectl-duli`, the one binary: every slice through real kubectl (as krew installs it, and under the
//! slices' own names), and the release artefacts `.ci/release` makes from it, installed as krew and helm
//! install them; and the whole-platform walkthrough (`walkthrough.sh`) that the README tells.

mod release;
mod slices;
mod walkthrough;

use std::path::{Path, PathBuf};

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-duli"))
}

/// A PATH of `dir` first, then the system's directories (kubectl's dispatcher lives in /usr/bin).
pub fn path_with(dir: &Path) -> String {
    format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display())
}

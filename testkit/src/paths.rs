//! Where things are: the workspace (the repository under test), the CRDs next to it, and copying fixture
//! trees into a test's own directory.

use std::path::{Path, PathBuf};

/// The workspace root: the repository under test (holds `helm/`, `gitops/`, every crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The real CRDs next to the repository (`../shared/crds`), asserted to exist.
pub fn crds() -> PathBuf {
    let dir = workspace().join("../shared/crds");
    assert!(
        dir.is_dir(),
        "the CRDs are missing at {}: the tests need ../shared/crds next to the repository",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

/// One operator's folder of [`crds`] (e.g. `cloudnative-pg`), asserted to exist.
pub fn crds_folder(folder: &str) -> PathBuf {
    let dir = crds().join(folder);
    assert!(dir.is_dir(), "missing CRD folder {}", dir.display());
    dir
}

/// Copy a directory tree (files and directories; the target is created).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|err| panic!("cannot create {}: {err}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|err| panic!("cannot read {}: {err}", from.display()))
    {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_holds_the_repository_and_copies_are_whole() {
        let root = workspace();
        assert!(root.join("Cargo.toml").is_file() && root.join("gitops/environments").is_dir());
        let copy = std::env::temp_dir().join(format!("testkit-copy-{}", std::process::id()));
        copy_dir(&root.join("gitops/environments"), &copy);
        assert!(copy.join("staging.yml").is_file() && copy.join("prod.yml").is_file());
        std::fs::remove_dir_all(&copy).unwrap();
    }
}

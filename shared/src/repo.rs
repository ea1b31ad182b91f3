//! Finding the repository that holds `helm/` and `gitops/`.
//!
//! Like git finds `.git`, the plugins walk up from the current directory unless `--repo DIR` (or
//! `DULI_REPO`) names it; a directory counts as the repository when it has both `helm/` and
//! `gitops/environments/`. Every path inside the repository is named in [`crate::paths`].

use std::path::{Path, PathBuf};

/// Errors locating the repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Walking up found nothing.
    #[error(
        "no duli repository found in {start} or any parent (looked for helm/ and gitops/environments/); \
         run from inside the repository or pass --repo DIR"
    )]
    NotFound {
        /// Where the walk started.
        start: PathBuf,
    },
    /// `--repo` names a file or nothing.
    #[error(
        "--repo {path} is not a directory; pass the root of the duli repository (it holds helm/ and gitops/environments/)"
    )]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// `--repo` names a directory without the expected layout.
    #[error("--repo {path} is not a duli repository: {missing} is missing")]
    NotARepo {
        /// The directory given.
        path: PathBuf,
        /// The first missing part.
        missing: &'static str,
    },
}

/// A located repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    root: PathBuf,
}

impl Repo {
    /// The repository at exactly `root`, checked for its layout.
    pub fn at(root: impl Into<PathBuf>) -> Result<Self, RepoError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(RepoError::NotADirectory { path: root });
        }
        for missing in crate::paths::REPO_MARKERS {
            if !root.join(missing).is_dir() {
                return Err(RepoError::NotARepo { path: root, missing });
            }
        }
        let root = root.canonicalize().unwrap_or(root);
        Ok(Repo { root })
    }

    /// `explicit` when given, else the nearest ancestor of `start` that is a repository.
    pub fn locate(explicit: Option<&Path>, start: &Path) -> Result<Self, RepoError> {
        if let Some(explicit) = explicit {
            return Self::at(explicit);
        }
        start
            .ancestors()
            .find_map(|dir| Self::at(dir).ok())
            .ok_or_else(|| RepoError::NotFound {
                start: start.to_path_buf(),
            })
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `helm/`, the charts.
    pub fn charts_dir(&self) -> PathBuf {
        self.root.join(crate::paths::CHARTS_DIR)
    }

    /// `gitops/`, the ArgoCD templates and environment data.
    pub fn gitops_dir(&self) -> PathBuf {
        self.root.join(crate::paths::GITOPS_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_to_the_repository() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("helm/backend/templates")).unwrap();
        std::fs::create_dir_all(tmp.path().join("gitops/environments")).unwrap();
        let repo = Repo::locate(None, &tmp.path().join("helm/backend/templates")).unwrap();
        assert_eq!(repo.root(), tmp.path().canonicalize().unwrap());
    }

    #[test]
    fn no_repository_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = Repo::locate(None, tmp.path()).unwrap_err().to_string();
        assert!(err.contains("no duli repository found"), "{err}");
        assert!(err.contains("--repo"), "{err}");
        let err = Repo::locate(Some(tmp.path()), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("helm is missing"), "{err}");
    }
}

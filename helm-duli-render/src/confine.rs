//! Keeping a render inside the repository: every chart file, values file and Application template is
//! the repository's own, so a symlink that leaves it (a template pointing at `/etc/passwd`, whose content
//! would be printed) is refused, and a symlink loop (which helm would follow until its paths overflow) is
//! named in one sentence instead of helm's log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A symlink that leaves the repository or loops.
#[derive(Debug, thiserror::Error)]
pub enum SymlinkError {
    /// It points outside the repository.
    #[error(
        "{} is a symlink to {}, outside the repository {}; charts, values files and Application templates \
         must be files of the repository, so copy the file in instead",
        link.display(),
        target.display(),
        root.display()
    )]
    Outside {
        /// The symlink.
        link: PathBuf,
        /// Where it leads.
        target: PathBuf,
        /// The repository root.
        root: PathBuf,
    },
    /// It loops (directly, or back to a directory that contains it).
    #[error("{} is a symlink loop ({why}); remove it or point it at a file", link.display())]
    Loop {
        /// The symlink.
        link: PathBuf,
        /// How it loops.
        why: String,
    },
    /// It cannot be resolved for another reason (a dangling link is left to the reader).
    #[error("cannot resolve the symlink {}: {source}", link.display())]
    Resolve {
        /// The symlink.
        link: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Check `path` (a file or directory of the repository at `root`, itself possibly a symlink) and, for a
/// directory, every symlink under it: each must resolve inside `root` and not loop. `root` is canonical.
pub fn check_tree(root: &Path, path: &Path) -> Result<(), SymlinkError> {
    let mut visited = BTreeSet::new();
    walk(root, path, &mut visited)
}

fn walk(root: &Path, path: &Path, visited: &mut BTreeSet<PathBuf>) -> Result<(), SymlinkError> {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let real = if metadata.file_type().is_symlink() {
        match resolve(root, path)? {
            Some(real) => real,
            None => return Ok(()),
        }
    } else {
        path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
    };
    if !real.is_dir() || !visited.insert(real.clone()) {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Ok(());
    };
    let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    children.sort();
    for child in children {
        walk(root, &child, visited)?;
    }
    Ok(())
}

/// Where the symlink `link` leads, checked: inside `root`, no loop. `None` for a dangling link (whoever
/// reads it reports the missing file).
fn resolve(root: &Path, link: &Path) -> Result<Option<PathBuf>, SymlinkError> {
    let target = match link.canonicalize() {
        Ok(target) => target,
        Err(err) if err.raw_os_error() == Some(libc_eloop()) => {
            return Err(SymlinkError::Loop {
                link: link.to_path_buf(),
                why: "it resolves to itself through other symlinks".into(),
            });
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SymlinkError::Resolve {
                link: link.to_path_buf(),
                source,
            });
        }
    };
    if !target.starts_with(root) {
        return Err(SymlinkError::Outside {
            link: link.to_path_buf(),
            target,
            root: root.to_path_buf(),
        });
    }
    let parent = link
        .parent()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_default();
    if target.is_dir() && parent.starts_with(&target) {
        return Err(SymlinkError::Loop {
            link: link.to_path_buf(),
            why: format!("it points at {}, a directory that contains it", target.display()),
        });
    }
    Ok(Some(target))
}

/// `ELOOP` on Linux (and every other Unix the plugins build for but macOS/BSD, where it is 62).
fn libc_eloop() -> i32 {
    if cfg!(any(
        target_os = "macos",
        target_os = "freebsd",
        target_os = "openbsd"
    )) {
        62
    } else {
        40
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn root() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("helm/app/templates")).unwrap();
        let root = root.canonicalize().unwrap();
        (tmp, root)
    }

    #[test]
    fn links_inside_the_repository_pass() {
        let (_tmp, root) = root();
        std::fs::write(root.join("helm/shared.tpl"), "x").unwrap();
        symlink(
            root.join("helm/shared.tpl"),
            root.join("helm/app/templates/_shared.tpl"),
        )
        .unwrap();
        symlink("../nowhere", root.join("helm/app/templates/dangling.yaml")).unwrap();
        check_tree(&root, &root.join("helm/app")).unwrap();
    }

    #[test]
    fn a_link_out_of_the_repository_is_refused_naming_it() {
        let (tmp, root) = root();
        std::fs::write(tmp.path().join("secret.txt"), "x").unwrap();
        let link = root.join("helm/app/templates/cm.yaml");
        symlink(tmp.path().join("secret.txt"), &link).unwrap();
        let err = check_tree(&root, &root.join("helm/app")).unwrap_err().to_string();
        assert!(err.contains(&link.display().to_string()), "{err}");
        assert!(err.contains("outside the repository"), "{err}");
    }

    #[test]
    fn loops_are_named_in_one_sentence() {
        let (_tmp, root) = root();
        let a = root.join("helm/app/templates/a.yaml");
        symlink("b.yaml", &a).unwrap();
        symlink("a.yaml", root.join("helm/app/templates/b.yaml")).unwrap();
        let err = check_tree(&root, &root.join("helm/app")).unwrap_err().to_string();
        assert!(err.contains("symlink loop"), "{err}");
        std::fs::remove_file(&a).unwrap();
        std::fs::remove_file(root.join("helm/app/templates/b.yaml")).unwrap();
        let up = root.join("helm/app/templates/up");
        symlink("..", &up).unwrap();
        let err = check_tree(&root, &root.join("helm/app")).unwrap_err().to_string();
        assert!(
            err.contains(&up.display().to_string()) && err.contains("contains it"),
            "{err}"
        );
    }
}

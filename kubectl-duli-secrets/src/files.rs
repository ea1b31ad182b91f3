//! Output files: parent directories created (the documented meaning of `--out`, the cache and `init`), then
//! the one output path, [`shared::fsio::write_atomically`] — which refuses symlinks and special files and
//! cleans its temporary on every way out.

use std::path::Path;

use shared::fsio::{FsError, Mode, write_atomically};

/// Write `bytes` to `path` atomically, creating parent directories; `what` names the file in messages.
pub fn write_file(path: &Path, bytes: &[u8], mode: Mode, what: &str) -> Result<(), FsError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| FsError::Io {
            action: "create the directory of",
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
    }
    write_atomically(path, bytes, mode, what)
}

/// The file a `--merge-into` path means: a symlink is followed (the file it points at is updated and the
/// link kept), anything else is the path itself.
pub fn merge_target(path: &Path) -> std::io::Result<std::path::PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => std::fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_create_dirs_and_refuse_symlinks_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.yml");
        write_file(&path, b"one", Mode::Secret, "sealed secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = write_file(&link, b"two", Mode::Secret, "sealed secret").unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(
            merge_target(&link).unwrap(),
            std::fs::canonicalize(&path).unwrap()
        );
    }
}

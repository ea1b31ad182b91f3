//! The content-hash cache that lets unchanged charts skip `helm template` and validation.
//!
//! A chart's render key hashes everything helm reads and nothing else: every file of the chart directory
//! (templates, `values.yaml`, `values-<env>.yml`, vendored subcharts), the contents of the values files
//! it is given (`values-<env>.yml`, `--values`), the `--set` items, the release name and namespace, the
//! capabilities, the upstream packages, and the helm binary (path, size, mtime: a helm upgrade or a
//! different `HELM_BIN` misses). Not the environment file or the values files' paths: a chart whose
//! inputs are the same in two environments has one key, and is rendered once per run. Validation results are keyed by the rendered text and a
//! fingerprint of the CRD files, so changing a CRD re-validates without re-rendering.
//!
//! Entries are files named by their key under the cache directory, written to a temporary file and
//! renamed, so concurrent runs never see half an entry. A corrupt entry is a miss.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Bumped whenever the cached data's shape or meaning changes.
const FORMAT: &str = concat!("duli-render-cache-2/", env!("CARGO_PKG_VERSION"));

/// A cache directory, or none (`--no-cache`).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// A cache in `dir` (`--cache-dir`), else `<user cache dir>/duli/render`; `enabled: false` disables it.
    pub fn new(dir: Option<PathBuf>, enabled: bool) -> Self {
        let dir = enabled
            .then(|| dir.or_else(|| dirs::cache_dir().map(|d| d.join("duli").join("render"))))
            .flatten();
        Cache { dir }
    }

    fn path(&self, kind: &str, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(kind).join(&key[..2]).join(format!("{key}.json")))
    }

    /// The entry `kind/key`, if present and readable.
    pub fn get<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let bytes = std::fs::read(self.path(kind, key)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Store `value` as `kind/key`. Failures only cost a future miss and are logged.
    pub fn put<T: Serialize>(&self, kind: &str, key: &str, value: &T) {
        let Some(path) = self.path(kind, key) else { return };
        if let Err(err) = write_atomically(&path, value) {
            tracing::debug!("cannot write cache entry {}: {err}", path.display());
        }
    }
}

fn write_atomically<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let dir = path.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let file = tempfile::NamedTempFile::new_in(dir)?;
    // Buffered: serde_json writes token by token, a system call each without it.
    let mut writer = std::io::BufWriter::with_capacity(64 * 1024, file);
    serde_json::to_writer(&mut writer, value)?;
    let file = writer.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// Builds a cache key from labelled inputs.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    hasher: Sha256,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    /// A key for the current cache format.
    pub fn new() -> Self {
        let mut builder = KeyBuilder {
            hasher: Sha256::new(),
        };
        builder.text("format", FORMAT);
        builder
    }

    /// Add a labelled value (length-prefixed, so fields cannot run into each other).
    pub fn bytes(&mut self, label: &str, bytes: &[u8]) -> &mut Self {
        self.hasher.update((label.len() as u64).to_le_bytes());
        self.hasher.update(label.as_bytes());
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
        self
    }

    /// Add a labelled string.
    pub fn text(&mut self, label: &str, text: &str) -> &mut Self {
        self.bytes(label, text.as_bytes())
    }

    /// Add a file's contents (a missing file hashes as such).
    pub fn file(&mut self, label: &str, path: &Path) -> &mut Self {
        match std::fs::read(path) {
            Ok(bytes) => self.bytes(label, &bytes),
            Err(_) => self.text(label, "\0missing"),
        }
    }

    /// Add every file under `dir` (relative names and contents, sorted; symlinks followed).
    pub fn tree(&mut self, label: &str, dir: &Path) -> &mut Self {
        let mut files = Vec::new();
        collect(dir, dir, &mut files);
        files.sort();
        self.text(label, &dir.display().to_string());
        for relative in files {
            let name = format!("{label}/{}", relative.display());
            self.file(&name, &dir.join(&relative));
        }
        self
    }

    /// The key, as hex.
    pub fn finish(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_any_file_of_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("templates")).unwrap();
        std::fs::write(tmp.path().join("templates/a.yaml"), "a").unwrap();
        let key = || KeyBuilder::new().tree("chart", tmp.path()).finish();
        let first = key();
        assert_eq!(first, key());
        std::fs::write(tmp.path().join("templates/a.yaml"), "b").unwrap();
        let second = key();
        assert_ne!(first, second);
        std::fs::write(tmp.path().join("templates/b.yaml"), "").unwrap();
        assert_ne!(second, key());
    }

    #[test]
    fn round_trips_and_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(tmp.path().to_path_buf()), true);
        assert_eq!(cache.get::<Vec<String>>("render", "abcd"), None);
        cache.put("render", "abcd", &vec!["x".to_string()]);
        assert_eq!(
            cache.get::<Vec<String>>("render", "abcd"),
            Some(vec!["x".to_string()])
        );
        assert_eq!(
            Cache::new(Some(tmp.path().to_path_buf()), false).get::<Vec<String>>("render", "abcd"),
            None
        );
    }
}

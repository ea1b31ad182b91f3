//! Writing the render: one object per file under `--out DIR`, or one multi-document stream.
//!
//! Layout: `DIR/<env>/<chart>/<kind>-<name>.yml` and `DIR/<env>/applications/<component>.yml`; file names
//! are bounded ([`shared::fsio::bounded_file_name`]), so a 253-character object name still fits. The whole
//! `DIR/<env>` is built in a temporary sibling and renamed into place, so a failed run leaves the previous
//! output untouched and readers never see a half-written tree. An existing `DIR/<env>` is replaced only when
//! every file in it is one this tool writes (`<group>/<file>.yml`): a user's own files are never deleted.
//! Contents depend only on the inputs (no timestamps, stable order), so two runs are byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shared::fsio::{self, FsError, Mode};

use super::manifests::Object;

/// The largest earlier output file `--diff` reads (a rendered object).
const RENDERED_FILE_LIMIT: u64 = 8 * 1024 * 1024;

/// Errors writing output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The OS refused.
    #[error("cannot write --out {}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written safely.
    #[error(transparent)]
    File(#[from] FsError),
    /// `DIR/<env>` holds something this tool did not write, which replacing it would delete.
    #[error(
        "will not replace --out {}: it holds {}, which helm duli-render did not write; move your files out \
         of it or pass another --out directory",
        dir.display(),
        foreign.display()
    )]
    Foreign {
        /// `DIR/<env>`.
        dir: PathBuf,
        /// The first path in it that is not the tool's.
        foreign: PathBuf,
    },
}

/// The files of one environment's render: relative path (`<chart>/<kind>-<name>.yml`) → contents.
pub type Tree = BTreeMap<String, String>;

/// The file text of one object: its source and its document.
pub fn object_text(object: &Object) -> String {
    format!("# Source: {}\n{}", object.source, object.text)
}

/// The file stem for an object: `<kind>-<name>`, lowercase, with anything unsafe replaced; `taken` counts
/// the stems already used in the group.
fn file_stem(object: &Object, taken: &BTreeMap<String, usize>) -> String {
    let clean = |text: &str| -> String {
        text.to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let base = format!("{}-{}", clean(object.kind()), clean(object.name()));
    let base = match object.namespace() {
        Some(namespace) if taken.contains_key(&base) => format!("{base}-{}", clean(namespace)),
        _ => base,
    };
    match taken.get(&base) {
        None => base,
        Some(count) => format!("{base}-{}", count + 1),
    }
}

/// Add the objects of one chart (or other group) under `dir/` of the tree.
pub fn add_objects(tree: &mut Tree, dir: &str, objects: &[Object]) {
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for object in objects {
        let stem = file_stem(object, &taken);
        *taken.entry(stem.clone()).or_default() += 1;
        tree.insert(
            format!("{dir}/{}", fsio::bounded_file_name(&stem, ".yml")),
            object_text(object),
        );
    }
}

/// One multi-document stream of the given files' contents, in tree order.
pub fn stream(groups: &[(String, std::sync::Arc<Vec<Object>>)]) -> String {
    let mut out = String::new();
    for (_, objects) in groups {
        for object in objects.iter() {
            out.push_str("---\n");
            out.push_str(&object_text(object));
        }
    }
    out
}

/// Replace `out/<env>` with `tree`, through a temporary sibling and a rename. Refuses (before writing
/// anything) when `out/<env>` holds files this tool does not write ([`check_replaceable`]).
pub fn write(out: &Path, env: &str, tree: &Tree) -> Result<PathBuf, OutputError> {
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    let target = out.join(env);
    check_replaceable(&target)?;
    std::fs::create_dir_all(out).map_err(error(out))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{env}.new-"))
        .tempdir_in(out)
        .map_err(error(out))?;
    for (relative, contents) in tree {
        let path = staging.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error(parent))?;
        }
        fsio::write_atomically(&path, contents.as_bytes(), Mode::Normal, "rendered manifest")?;
    }
    let old = tempfile::Builder::new()
        .prefix(&format!(".{env}.old-"))
        .tempdir_in(out)
        .map_err(error(out))?;
    let previous = old.path().join(env);
    let had_previous = target.exists();
    if had_previous {
        std::fs::rename(&target, &previous).map_err(error(&target))?;
    }
    let staged = staging.keep();
    if let Err(source) = std::fs::rename(&staged, &target) {
        if had_previous {
            let _ = std::fs::rename(&previous, &target);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(OutputError::Io { path: target, source });
    }
    drop(old);
    Ok(target)
}

/// Check that `dir` (`DIR/<env>`) may be replaced: it is missing, or a directory holding only what this
/// tool writes (`<group>/` directories of `*.yml` files). Anything else is the user's and would be deleted.
pub fn check_replaceable(dir: &Path) -> Result<(), OutputError> {
    let foreign = |path: &Path| OutputError::Foreign {
        dir: dir.to_path_buf(),
        foreign: path.to_path_buf(),
    };
    let metadata = match std::fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(OutputError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    if !metadata.is_dir() {
        return Err(foreign(dir));
    }
    let entries = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    for group in entries(dir)? {
        let group = group.map_err(|source| OutputError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let group_path = group.path();
        if !group.file_type().is_ok_and(|t| t.is_dir()) {
            return Err(foreign(&group_path));
        }
        for file in entries(&group_path)? {
            let file = file.map_err(|source| OutputError::Io {
                path: group_path.clone(),
                source,
            })?;
            let path = file.path();
            let ours =
                file.file_type().is_ok_and(|t| t.is_file()) && path.extension().is_some_and(|e| e == "yml");
            if !ours {
                return Err(foreign(&path));
            }
        }
    }
    Ok(())
}

/// Check early that `out` can be written (so a long render does not end in an error), without creating
/// anything: the nearest existing ancestor must be a directory that takes a file, and `out/<env>` must be
/// the tool's own ([`check_replaceable`]).
pub fn check_writable(out: &Path, env: &str) -> Result<(), OutputError> {
    let error = |source| OutputError::Io {
        path: out.to_path_buf(),
        source,
    };
    let existing = out.ancestors().find(|dir| dir.exists()).unwrap_or(Path::new("."));
    if !existing.is_dir() {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", existing.display()),
        )));
    }
    tempfile::Builder::new()
        .prefix(".duli-render-check-")
        .tempfile_in(existing)
        .map(drop)
        .map_err(error)?;
    check_replaceable(&out.join(env))
}

/// Read a tree written earlier (`DIR/<env>`), for `--diff`.
pub fn read(root: &Path) -> std::io::Result<Tree> {
    fn walk(root: &Path, dir: &Path, tree: &mut Tree) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, tree)?;
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let relative = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = fsio::read_to_string_bounded(&path, RENDERED_FILE_LIMIT, "rendered manifest")
                    .map_err(|err| std::io::Error::other(err.to_string()))?;
                tree.insert(relative, text);
            }
        }
        Ok(())
    }
    let mut tree = Tree::new();
    walk(root, root, &mut tree)?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, namespace: Option<&str>) -> Object {
        let mut value = serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        if let Some(namespace) = namespace {
            value["metadata"]["namespace"] = namespace.into();
        }
        Object {
            source: "c/templates/x.yaml".into(),
            text: format!("kind: {kind}\n"),
            value,
        }
    }

    #[test]
    fn names_are_unique_and_stable() {
        let mut tree = Tree::new();
        add_objects(
            &mut tree,
            "c",
            &[
                object("ConfigMap", "a", Some("x")),
                object("ConfigMap", "a", Some("y")),
                object("Service", "A", None),
            ],
        );
        let names: Vec<_> = tree.keys().cloned().collect();
        assert_eq!(
            names,
            ["c/configmap-a-y.yml", "c/configmap-a.yml", "c/service-a.yml"]
        );
    }

    #[test]
    fn replaces_the_env_dir_and_leaves_others() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("prod")).unwrap();
        std::fs::write(tmp.path().join("prod/keep.yml"), "x").unwrap();
        std::fs::create_dir_all(tmp.path().join("staging/old")).unwrap();
        std::fs::write(tmp.path().join("staging/old/gone.yml"), "x").unwrap();
        // An earlier render: only `<group>/*.yml`, so it may be replaced.
        let mut tree = Tree::new();
        tree.insert("c/a.yml".into(), "a\n".into());
        write(tmp.path(), "staging", &tree).unwrap();
        assert!(tmp.path().join("prod/keep.yml").exists());
        assert!(!tmp.path().join("staging/old").exists());
        assert_eq!(read(&tmp.path().join("staging")).unwrap(), tree);
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn long_names_get_bounded_distinct_file_names() {
        let (a, b) = ("a".repeat(253), format!("{}b", "a".repeat(252)));
        let mut tree = Tree::new();
        add_objects(
            &mut tree,
            "c",
            &[object("ConfigMap", &a, None), object("ConfigMap", &b, None)],
        );
        let names: Vec<&str> = tree.keys().map(|k| k.strip_prefix("c/").unwrap()).collect();
        assert_eq!(names.len(), 2);
        assert!(
            names.iter().all(|n| n.len() <= 255 && n.ends_with(".yml")),
            "{names:?}"
        );
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "staging", &tree).unwrap();
        assert_eq!(read(&tmp.path().join("staging")).unwrap(), tree);
    }

    #[test]
    fn a_directory_holding_a_users_files_is_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let mut tree = Tree::new();
        tree.insert("c/a.yml".into(), "a\n".into());
        for (file, contents) in [("staging/notes.txt", "mine"), ("staging/c/mine.md", "mine")] {
            let path = tmp.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            let err = write(tmp.path(), "staging", &tree).unwrap_err().to_string();
            assert!(err.contains(file) && err.contains("did not write"), "{err}");
            assert!(check_writable(tmp.path(), "staging").is_err());
            assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::remove_dir_all(tmp.path().join("staging")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("staging")).unwrap();
        assert!(
            write(tmp.path(), "staging", &tree).is_err(),
            "a symlink is not the tool's output"
        );
    }
}

//! Writing the render: one object per file under `--out DIR`, or one multi-document stream.
//!
//! Layout: `DIR/<env>/<chart>/<kind>-<name>.yml` and `DIR/<env>/applications/<component>.yml`. The whole
//! `DIR/<env>` is built in a temporary sibling and renamed into place, so a failed run leaves the previous
//! output untouched and readers never see a half-written tree. Contents depend only on the inputs (no
//! timestamps, stable order), so two runs are byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manifests::Object;

/// Errors writing output.
#[derive(Debug, thiserror::Error)]
#[error("cannot write --out {path}: {source}")]
pub struct OutputError {
    /// The path that failed.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The files of one environment's render: relative path (`<chart>/<kind>-<name>.yml`) → contents.
pub type Tree = BTreeMap<String, String>;

/// The file text of one object: its source and its document.
pub fn object_text(object: &Object) -> String {
    format!("# Source: {}\n{}", object.source, object.text)
}

/// A file name for an object: `<kind>-<name>.yml`, lowercase, with anything unsafe replaced.
fn file_name(object: &Object, taken: &BTreeMap<String, usize>) -> String {
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
        let name = file_name(object, &taken);
        *taken.entry(name.clone()).or_default() += 1;
        tree.insert(format!("{dir}/{name}.yml"), object_text(object));
    }
}

/// One multi-document stream of the given files' contents, in tree order.
pub fn stream(groups: &[(String, Vec<Object>)]) -> String {
    let mut out = String::new();
    for (_, objects) in groups {
        for object in objects {
            out.push_str("---\n");
            out.push_str(&object_text(object));
        }
    }
    out
}

/// Replace `out/<env>` with `tree`, through a temporary sibling and a rename.
pub fn write(out: &Path, env: &str, tree: &Tree) -> Result<PathBuf, OutputError> {
    let error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError { path, source }
    };
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
        std::fs::write(&path, contents).map_err(error(&path))?;
    }
    let target = out.join(env);
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
        return Err(OutputError { path: target, source });
    }
    drop(old);
    Ok(target)
}

/// Check early that `out` can be written (so a long render does not end in an error), without creating
/// anything: the nearest existing ancestor must be a directory that takes a file.
pub fn check_writable(out: &Path) -> Result<(), OutputError> {
    let error = |source| OutputError {
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
        .map_err(error)
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
                tree.insert(relative, std::fs::read_to_string(&path)?);
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
}

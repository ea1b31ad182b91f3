//! `--diff DIR`: compare this render with an earlier one (`DIR/<env>`, as `--out` writes it) and print a
//! unified diff per changed, added or removed object.
//!
//! Some output is random on every render, whatever the inputs: upstream charts generate values with
//! `randAlphaNum`/`genCA` (grafana's admin password, minio's root credentials, rabbitmq-cluster-operator's
//! webhook certificates) and hash them into `checksum/*` annotations. An object whose only differences
//! are such fields ([`is_nondeterministic`]) is not a change: its fields are listed as
//! [`TreeDiff::nondeterministic`] instead. Those fields are: the `data`/`stringData` entries of a
//! `Secret` (the platform keeps its own secrets in SealedSecrets, so rendered Secrets are generated
//! ones), `checksum/*` annotations, and `caBundle` fields.

use serde::Serialize;

use similar::TextDiff;

use super::output::Tree;

/// The comparison of two trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeDiff {
    /// Files whose contents changed.
    pub changed: Vec<String>,
    /// Files only in the new render.
    pub added: Vec<String>,
    /// Files only in the old render.
    pub removed: Vec<String>,
    /// The unified diff text of all of them.
    pub text: String,
    /// Fields that differ only because the chart generates them at random (not counted as changes).
    pub nondeterministic: Vec<NondeterministicField>,
}

/// A field whose value differs between two renders of the same inputs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NondeterministicField {
    /// The object's file, e.g. `kube-prometheus-stack/secret-grafana.yml`.
    pub file: String,
    /// The field, e.g. `data.admin-password`.
    pub path: String,
}

/// Whether `path` of an object of `kind` is a field charts generate at random.
pub fn is_nondeterministic(kind: &str, path: &[String]) -> bool {
    let last = path.last().map(String::as_str).unwrap_or_default();
    (kind == "Secret" && path.len() == 2 && matches!(path[0].as_str(), "data" | "stringData"))
        || (last.starts_with("checksum/") && path.iter().any(|s| s == "annotations"))
        || last == "caBundle"
}

/// The paths (segments) of the leaves that differ between `a` and `b`.
fn differing(a: &serde_json::Value, b: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                at.push(key.clone());
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differing(x, y, at, out),
                    _ => out.push(at.clone()),
                }
                at.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (index, (x, y)) in x.iter().zip(y).enumerate() {
                at.push(index.to_string());
                differing(x, y, at, out);
                at.pop();
            }
        }
        _ if a != b => out.push(at.clone()),
        _ => {}
    }
}

/// The non-deterministic fields that are the only difference between two texts of one object, or
/// `None` when anything else differs (or a text does not parse).
fn only_nondeterministic(before: &str, after: &str) -> Option<Vec<String>> {
    let a: serde_json::Value = serde_saphyr::from_str(before).ok()?;
    let b: serde_json::Value = serde_saphyr::from_str(after).ok()?;
    let kind = a
        .get("kind")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let mut paths = Vec::new();
    differing(&a, &b, &mut Vec::new(), &mut paths);
    paths
        .iter()
        .all(|path| is_nondeterministic(kind, path))
        .then(|| paths.iter().map(|path| path.join(".")).collect())
}

impl TreeDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// Compare `old` with `new`; paths are shown as `a/<env>/<file>` and `b/<env>/<file>`.
pub fn compare(env: &str, old: &Tree, new: &Tree) -> TreeDiff {
    let mut diff = TreeDiff::default();
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        match (before, after) {
            (Some(before), Some(after)) if before == after => continue,
            (Some(before), Some(after)) => match only_nondeterministic(before, after) {
                Some(paths) => {
                    diff.nondeterministic
                        .extend(paths.into_iter().map(|path| NondeterministicField {
                            file: name.clone(),
                            path,
                        }));
                    continue;
                }
                None => diff.changed.push(name.clone()),
            },
            (None, Some(_)) => diff.added.push(name.clone()),
            (Some(_), None) => diff.removed.push(name.clone()),
            (None, None) => continue,
        }
        let a = if before.is_some() {
            format!("a/{env}/{name}")
        } else {
            "/dev/null".into()
        };
        let b = if after.is_some() {
            format!("b/{env}/{name}")
        } else {
            "/dev/null".into()
        };
        let text_diff = TextDiff::from_lines(
            before.map(String::as_str).unwrap_or(""),
            after.map(String::as_str).unwrap_or(""),
        );
        diff.text.push_str(&format!("diff {a} {b}\n"));
        diff.text.push_str(
            &text_diff
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_a_changed_replica_count() {
        let mut old = Tree::new();
        old.insert(
            "backend/deployment-backend.yml".into(),
            "kind: Deployment\nspec:\n  replicas: 1\n".into(),
        );
        old.insert("backend/service-backend.yml".into(), "kind: Service\n".into());
        let mut new = old.clone();
        new.insert(
            "backend/deployment-backend.yml".into(),
            "kind: Deployment\nspec:\n  replicas: 3\n".into(),
        );
        new.remove("backend/service-backend.yml");
        let diff = compare("staging", &old, &new);
        assert_eq!(diff.changed, ["backend/deployment-backend.yml"]);
        assert_eq!(diff.removed, ["backend/service-backend.yml"]);
        assert!(
            diff.text.contains("--- a/staging/backend/deployment-backend.yml"),
            "{}",
            diff.text
        );
        assert!(
            diff.text.contains("-  replicas: 1\n+  replicas: 3\n"),
            "{}",
            diff.text
        );
        assert!(compare("staging", &old, &old).is_empty());
    }

    #[test]
    fn generated_fields_alone_are_not_changes_but_anything_else_is() {
        let secret = |password: &str| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: g\ndata:\n  admin-password: {password}\n"
            )
        };
        let deployment = |checksum: &str, replicas: u8| {
            format!(
                "kind: Deployment\nspec:\n  replicas: {replicas}\n  template:\n    metadata:\n      annotations:\n        checksum/secret: {checksum}\n"
            )
        };
        let mut old = Tree::new();
        old.insert("g/secret-g.yml".into(), secret("YQ=="));
        old.insert("g/deployment-g.yml".into(), deployment("aaa", 1));
        let mut new = Tree::new();
        new.insert("g/secret-g.yml".into(), secret("Yg=="));
        new.insert("g/deployment-g.yml".into(), deployment("bbb", 1));
        let diff = compare("staging", &old, &new);
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(
            diff.nondeterministic,
            [
                NondeterministicField {
                    file: "g/deployment-g.yml".into(),
                    path: "spec.template.metadata.annotations.checksum/secret".into()
                },
                NondeterministicField {
                    file: "g/secret-g.yml".into(),
                    path: "data.admin-password".into()
                },
            ]
        );
        // A real change next to a generated one is a change.
        new.insert("g/deployment-g.yml".into(), deployment("bbb", 2));
        assert_eq!(compare("staging", &old, &new).changed, ["g/deployment-g.yml"]);
    }
}

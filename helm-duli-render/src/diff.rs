//! `--diff DIR`: compare this render with an earlier one (`DIR/<env>`, as `--out` writes it) and print a
//! unified diff per changed, added or removed object.
//!
//! Some output is random on every render, whatever the inputs: upstream charts generate values with
//! `randAlphaNum`/`genCA` (grafana's admin password, minio's root credentials, rabbitmq-cluster-operator's
//! webhook certificates) and hash them into `checksum/*` annotations. An object whose only differences
//! are such fields ([`is_nondeterministic`]) is not a change: its fields are listed as
//! [`TreeDiff::nondeterministic`] instead. Those fields are: the `data`/`stringData` entries of a
//! `Secret` rendered by a chart that wraps upstream charts ([`Compare::upstream`]; in our own charts a
//! changed Secret value is a change someone made), `checksum/*` annotations, and `caBundle` fields.
//!
//! A Secret's values never appear in the diff text unless asked (`--show-secrets`), as helm-diff does:
//! each shows as `REDACTED # (N bytes)`, or `--------`/`++++++++ # (N bytes)` on the side where it changed,
//! so a reviewer sees which key changed without the value reaching a CI log.

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

/// Whether `path` of an object of `kind` is a field charts generate at random (`upstream`: the object
/// comes from a chart that wraps upstream charts, whose Secrets may be generated).
pub fn is_nondeterministic(kind: &str, path: &[String], upstream: bool) -> bool {
    let last = path.last().map(String::as_str).unwrap_or_default();
    (upstream && kind == "Secret" && path.len() == 2 && matches!(path[0].as_str(), "data" | "stringData"))
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
fn only_nondeterministic(before: &str, after: &str, upstream: bool) -> Option<Vec<String>> {
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
        .all(|path| is_nondeterministic(kind, path, upstream))
        .then(|| paths.iter().map(|path| path.join(".")).collect())
}

impl TreeDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// How to compare two renders.
#[derive(Debug, Clone)]
pub struct Compare {
    /// Whether Secret values may be shown.
    pub secrets: SecretValues,
    /// The top directories of the tree (charts) that wrap upstream charts: their Secrets' values may be
    /// generated at random on every render.
    pub upstream: std::collections::BTreeSet<String>,
}

impl Compare {
    /// Secret values redacted, no chart taken for an upstream one.
    pub fn redacted() -> Self {
        Compare {
            secrets: SecretValues::Redacted,
            upstream: Default::default(),
        }
    }
}

/// Whether a diff may show Secret values (`--show-secrets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretValues {
    /// Masked with their length (the default).
    Redacted,
    /// In clear.
    Shown,
}

/// The byte length of a Secret value: decoded for `data` (base64), as written for `stringData`.
fn value_len(field: &str, value: &serde_json::Value) -> usize {
    use base64::Engine as _;
    let text = value.as_str().unwrap_or_default();
    if field == "data" {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_or(text.len(), |bytes| bytes.len())
    } else {
        text.len()
    }
}

/// A Secret's text with its values masked, given the other side of the comparison (to mark changes);
/// `None` when the text is not a Secret (or does not parse).
fn redact_secret(text: &str, other: Option<&str>, changed_mark: &str) -> Option<String> {
    let mut doc: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    if doc.get("kind").and_then(serde_json::Value::as_str) != Some("Secret") {
        return None;
    }
    let other: Option<serde_json::Value> = other.and_then(|o| serde_saphyr::from_str(o).ok());
    for field in ["data", "stringData"] {
        let Some(values) = doc.get_mut(field).and_then(serde_json::Value::as_object_mut) else {
            continue;
        };
        for (key, value) in values.iter_mut() {
            let same = other
                .as_ref()
                .and_then(|o| o.get(field))
                .and_then(|m| m.get(key))
                .is_some_and(|v| v == value);
            let mark = if same { "REDACTED" } else { changed_mark };
            *value = format!("{mark} # ({} bytes)", value_len(field, value)).into();
        }
    }
    serde_saphyr::to_string(&doc).ok()
}

/// Compare `old` with `new`; paths are shown as `a/<env>/<file>` and `b/<env>/<file>`.
pub fn compare(env: &str, old: &Tree, new: &Tree, how: &Compare) -> TreeDiff {
    let mut diff = TreeDiff::default();
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        match (before, after) {
            (Some(before), Some(after)) if before == after => continue,
            (Some(before), Some(after)) => match only_nondeterministic(
                before,
                after,
                how.upstream.contains(name.split('/').next().unwrap_or_default()),
            ) {
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
        let (mut before_text, mut after_text) = (
            before.cloned().unwrap_or_default(),
            after.cloned().unwrap_or_default(),
        );
        if how.secrets == SecretValues::Redacted {
            if let Some(masked) = before.and_then(|b| redact_secret(b, after.map(String::as_str), "--------"))
            {
                before_text = masked;
            }
            if let Some(masked) = after.and_then(|a| redact_secret(a, before.map(String::as_str), "++++++++"))
            {
                after_text = masked;
            }
        }
        let text_diff = TextDiff::from_lines(&before_text, &after_text);
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

    fn shown() -> Compare {
        Compare {
            secrets: SecretValues::Shown,
            upstream: ["g".to_string()].into(),
        }
    }

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
        let diff = compare("staging", &old, &new, &shown());
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
        assert!(compare("staging", &old, &old, &shown()).is_empty());
    }

    #[test]
    fn secret_values_are_redacted_unless_shown_and_changed_keys_are_marked() {
        let secret = |password: &str| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  labels:\n    tier: a\ndata:\n  user: YWRtaW4=\n  password: {password}\nstringData:\n  token: t0ps3cr3t\n"
            )
        };
        let mut old = Tree::new();
        old.insert("s/secret-s.yml".into(), secret("aHVudGVyMg=="));
        let mut new = Tree::new();
        new.insert(
            "s/secret-s.yml".into(),
            secret("Y29ycmVjdGhvcnNl").replace("tier: a", "tier: b"),
        );
        let diff = compare("staging", &old, &new, &Compare::redacted());
        assert_eq!(diff.changed, ["s/secret-s.yml"]);
        for clear in ["aHVudGVyMg==", "Y29ycmVjdGhvcnNl", "YWRtaW4=", "t0ps3cr3t"] {
            assert!(!diff.text.contains(clear), "{clear} in {}", diff.text);
        }
        assert!(
            diff.text.contains("-  password: \"-------- # (7 bytes)\""),
            "{}",
            diff.text
        );
        assert!(
            diff.text.contains("+  password: \"++++++++ # (12 bytes)\""),
            "{}",
            diff.text
        );
        assert!(
            diff.text.contains("   user: \"REDACTED # (5 bytes)\""),
            "{}",
            diff.text
        );
        assert!(diff.text.contains("+    tier: b"), "{}", diff.text);
        let shown = compare("staging", &old, &new, &shown());
        assert!(
            shown.text.contains("+  password: Y29ycmVjdGhvcnNl"),
            "{}",
            shown.text
        );
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
        let diff = compare("staging", &old, &new, &shown());
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
        assert_eq!(
            compare("staging", &old, &new, &shown()).changed,
            ["g/deployment-g.yml"]
        );
        // In a chart of our own, a changed Secret value is somebody's change.
        let own = Compare {
            secrets: SecretValues::Shown,
            upstream: Default::default(),
        };
        assert!(
            compare("staging", &old, &new, &own)
                .changed
                .contains(&"g/secret-g.yml".to_string())
        );
    }
}

//! `--diff DIR`: compare this render with an earlier one (`DIR/<env>`, as `--out` writes it) and print a
//! unified diff per changed, added or removed object.

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
            (Some(_), Some(_)) => diff.changed.push(name.clone()),
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
}

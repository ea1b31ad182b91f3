//! Server-side apply: field ownership per manager, conflicts, merge and pruning.
//!
//! The model is the visible behaviour of the real field manager at leaf granularity: every leaf of an
//! applied configuration (scalars, whole lists, empty maps) is a field path owned by that manager. A
//! re-apply that omits a path it owned removes the field unless another manager still owns it; applying a
//! different value to a path owned by another manager is a 409 `Conflict` unless `force`, which takes the
//! ownership over. Non-apply writes (PUT, PATCH) take ownership of the leaves they change, as `Update`
//! managers. Lists are atomic (no merge keys) — a documented simplification.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A path of object keys from the root, e.g. `["spec", "instances"]`.
pub type FieldPath = Vec<String>;

/// How a manager last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// PUT or a non-apply PATCH.
    Update,
}

/// What one manager owns on one object.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerFields {
    /// Apply or Update.
    pub operation: Operation,
    /// The owned leaf paths.
    pub paths: BTreeSet<FieldPath>,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: String,
    /// When the manager last wrote.
    pub time: String,
    /// apiVersion used by that write.
    pub api_version: String,
}

/// Ownership of all managers on one object, keyed by (manager, subresource).
pub type ManagedFields = BTreeMap<(String, String), ManagerFields>;

/// A path that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The field, `.spec.instances`.
    pub field: String,
}

/// The metadata fields a user can own.
const USER_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// Reduces an object to the part a write in `subresource` scope may own: without `apiVersion`/`kind`,
/// with only user metadata, and with `status` alone (status scope) or without it (main scope, when the
/// type has a status subresource).
pub fn scoped(obj: &Value, subresource: &str, has_status: bool) -> Value {
    let mut out = Map::new();
    let Some(m) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" if subresource.is_empty() => {
                if let Some(meta) = v.as_object() {
                    let user: Map<String, Value> = meta
                        .iter()
                        .filter(|(k, _)| USER_METADATA.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !user.is_empty() {
                        out.insert(k.clone(), Value::Object(user));
                    }
                }
            }
            "metadata" => {}
            "status" if subresource == "status" || (!has_status && subresource.is_empty()) => {
                out.insert(k.clone(), v.clone());
            }
            "status" => {}
            _ if subresource.is_empty() => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// The leaf paths of a value: scalars, arrays and empty objects are leaves. Nulls are not fields.
pub fn leaf_paths(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    prefix.push(k.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            Value::Null => {}
            _ => {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The value at a path.
pub fn get_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

/// Removes the value at a path, then any parent objects left empty.
pub fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(Value::Object(m)) = get_at_mut(v, parents) {
        m.remove(last);
        if m.is_empty() && !parents.is_empty() {
            remove_at(v, parents);
        }
    }
}

fn get_at_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(k))
}

/// Merges an applied configuration into an object: maps recursively, everything else replaced;
/// `null` removes the field.
pub fn merge_into(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                if v.is_null() {
                    t.remove(k);
                } else if let (Some(existing @ Value::Object(_)), Value::Object(_)) = (t.get_mut(k), v) {
                    merge_into(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn dotted(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// The result of an apply: the new object and the new ownership.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The merged object (to be validated and committed by the caller).
    pub object: Value,
    /// Ownership after the apply.
    pub fields: ManagedFields,
}

// The arguments are the apply request's independent inputs; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
/// Server-side-applies `config` (already [`scoped`]) by `manager` onto `current` (the full stored object,
/// or a fresh skeleton on create).
pub fn apply(
    current: &Value,
    fields: &ManagedFields,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    api_version: &str,
    now: &str,
) -> Result<Applied, Vec<Conflict>> {
    let new_paths = leaf_paths(config);
    let me = (manager.to_string(), subresource.to_string());
    let mut fields = fields.clone();

    // Conflicts: another manager owns a path this config sets (or a path below/above it) with another value.
    let mut conflicts = Vec::new();
    let mut taken: Vec<((String, String), FieldPath)> = Vec::new();
    for (key, mf) in &fields {
        if *key == me {
            continue;
        }
        for owned in &mf.paths {
            for p in &new_paths {
                if !(is_prefix(p, owned) || is_prefix(owned, p)) {
                    continue;
                }
                // Whichever of the two is deeper, the owned path is where the values must agree.
                if get_at(current, owned) != get_at(config, owned) {
                    if force {
                        taken.push((key.clone(), owned.clone()));
                    } else {
                        conflicts.push(Conflict {
                            manager: key.0.clone(),
                            field: dotted(owned),
                        });
                    }
                }
            }
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        conflicts.dedup();
        return Err(conflicts);
    }
    for (key, path) in taken {
        if let Some(mf) = fields.get_mut(&key) {
            mf.paths.remove(&path);
        }
    }

    // Prune what this manager applied before and omits now, unless someone else still owns it.
    let mut object = current.clone();
    if let Some(prev) = fields.get(&me).filter(|m| m.operation == Operation::Apply) {
        for old in prev.paths.difference(&new_paths) {
            let shared = fields
                .iter()
                .any(|(k, mf)| *k != me && mf.paths.iter().any(|o| is_prefix(old, o) || is_prefix(o, old)));
            let still_set = new_paths.iter().any(|n| is_prefix(old, n) || is_prefix(n, old));
            if !shared && !still_set {
                remove_at(&mut object, old);
            }
        }
    }
    merge_into(&mut object, config);

    fields.insert(
        me,
        ManagerFields {
            operation: Operation::Apply,
            paths: new_paths,
            subresource: subresource.to_string(),
            time: now.to_string(),
            api_version: api_version.to_string(),
        },
    );
    fields.retain(|_, mf| !mf.paths.is_empty());
    Ok(Applied { object, fields })
}

/// Records a non-apply write: `manager` takes the leaves that changed between `old` and `new` (both
/// [`scoped`]); leaves that disappeared are dropped from every manager.
pub fn record_update(
    fields: &mut ManagedFields,
    old: &Value,
    new: &Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    now: &str,
) {
    let new_paths = leaf_paths(new);
    let changed: BTreeSet<FieldPath> = new_paths
        .iter()
        .filter(|p| get_at(old, p) != get_at(new, p))
        .cloned()
        .collect();
    for mf in fields.values_mut() {
        mf.paths.retain(|p| new_paths.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let entry = fields
            .entry((manager.to_string(), subresource.to_string()))
            .or_insert_with(|| ManagerFields {
                operation: Operation::Update,
                paths: BTreeSet::new(),
                subresource: subresource.to_string(),
                time: now.to_string(),
                api_version: api_version.to_string(),
            });
        entry.paths.extend(changed);
        entry.time = now.to_string();
    }
    fields.retain(|_, mf| !mf.paths.is_empty());
}

/// Renders ownership as `metadata.managedFields` (FieldsV1), the shape clients expect.
pub fn render(fields: &ManagedFields) -> Value {
    let mut out = Vec::new();
    for ((manager, _), mf) in fields {
        let mut tree = Map::new();
        for path in &mf.paths {
            let mut node = &mut tree;
            for key in path {
                node = node
                    .entry(format!("f:{key}"))
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("fields tree holds objects only");
            }
        }
        let mut entry = json!({
            "manager": manager,
            "operation": if mf.operation == Operation::Apply { "Apply" } else { "Update" },
            "apiVersion": mf.api_version,
            "time": mf.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": tree,
        });
        if !mf.subresource.is_empty() {
            entry["subresource"] = json!(mf.subresource);
        }
        out.push(entry);
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        current: &Value,
        fields: &ManagedFields,
        config: Value,
        manager: &str,
        force: bool,
    ) -> Result<Applied, Vec<Conflict>> {
        apply(
            current,
            fields,
            &scoped(&config, "", true),
            manager,
            "",
            force,
            "v1",
            "t",
        )
    }

    #[test]
    fn merges_prunes_and_keeps_others() {
        let base = json!({"metadata": {"name": "a"}, "spec": {"keep": 1}});
        let a = run(
            &base,
            &ManagedFields::new(),
            json!({"spec": {"x": 1, "y": 2}, "metadata": {"labels": {"l": "1"}}}),
            "m",
            false,
        )
        .unwrap();
        assert_eq!(a.object["spec"], json!({"keep": 1, "x": 1, "y": 2}));
        // Re-apply without y: y goes, keep (never applied) stays, the emptied labels map goes.
        let b = run(&a.object, &a.fields, json!({"spec": {"x": 1}}), "m", false).unwrap();
        assert_eq!(b.object["spec"], json!({"keep": 1, "x": 1}));
        assert!(b.object["metadata"].get("labels").is_none());
        // A no-op re-apply gives the same object.
        let c = run(&b.object, &b.fields, json!({"spec": {"x": 1}}), "m", false).unwrap();
        assert_eq!(c.object, b.object);
    }

    #[test]
    fn conflicts_between_managers_unless_forced() {
        let base = json!({"metadata": {"name": "a"}});
        let a = run(
            &base,
            &ManagedFields::new(),
            json!({"spec": {"x": 1}}),
            "one",
            false,
        )
        .unwrap();
        // Same value: shared ownership, no conflict.
        let shared = run(&a.object, &a.fields, json!({"spec": {"x": 1}}), "two", false).unwrap();
        assert_eq!(shared.fields.len(), 2);
        let err = run(&a.object, &a.fields, json!({"spec": {"x": 2}}), "two", false).unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "one".into(),
                field: ".spec.x".into()
            }]
        );
        let forced = run(&a.object, &a.fields, json!({"spec": {"x": 2}}), "two", true).unwrap();
        assert_eq!(forced.object["spec"]["x"], 2);
        assert!(!forced.fields.contains_key(&("one".to_string(), String::new())));
        // "one" no longer owns x; dropping it from "two" now prunes.
        let pruned = run(
            &forced.object,
            &forced.fields,
            json!({"spec": {"z": 1}}),
            "two",
            false,
        )
        .unwrap();
        assert_eq!(pruned.object["spec"], json!({"z": 1}));
    }

    #[test]
    fn updates_take_ownership() {
        let base = json!({"metadata": {"name": "a"}});
        let a = run(
            &base,
            &ManagedFields::new(),
            json!({"spec": {"replicas": 1}}),
            "apply",
            false,
        )
        .unwrap();
        let mut fields = a.fields.clone();
        let mut scaled = a.object.clone();
        scaled["spec"]["replicas"] = json!(3);
        record_update(
            &mut fields,
            &scoped(&a.object, "", true),
            &scoped(&scaled, "", true),
            "kubectl-scale",
            "",
            "v1",
            "t",
        );
        let err = run(&scaled, &fields, json!({"spec": {"replicas": 1}}), "apply", false).unwrap_err();
        assert_eq!(err[0].manager, "kubectl-scale");
        let rendered = render(&fields);
        assert_eq!(rendered[0]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    }
}

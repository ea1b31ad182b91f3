//! Strategic merge patch driven by the upstream OpenAPI schemas, as the API server applies it to
//! built-in kinds: lists merge only where the schema says `x-kubernetes-patch-strategy: merge`, keyed
//! by `x-kubernetes-patch-merge-key` (containers by `name`, ports by `containerPort`, volume mounts by
//! `mountPath`), primitive lists with a merge strategy are unions, other lists are replaced. The
//! directives kubectl's three-way patches carry are honoured: `$patch: replace|delete` (maps and list
//! items), `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`.

use serde_json::{Map, Value};

const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";

/// The schemas a patch is interpreted against: the v2 `definitions` and the patched kind's schema.
#[derive(Debug, Clone, Copy)]
pub struct Schema<'a> {
    /// Every definition, to resolve `$ref`s.
    pub definitions: &'a Map<String, Value>,
    /// The definition of the patched kind.
    pub root: &'a Value,
}

impl<'a> Schema<'a> {
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match s
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
                .and_then(|name| self.definitions.get(name))
            {
                Some(next) => s = next,
                None => break,
            }
        }
        s
    }

    fn property(&self, schema: Option<&'a Value>, key: &str) -> Option<&'a Value> {
        schema
            .map(|s| self.resolve(s))
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(key))
            // A map's values (`additionalProperties`) share one schema.
            .or_else(|| {
                schema
                    .map(|s| self.resolve(s))
                    .and_then(|s| s.get("additionalProperties"))
                    .filter(|a| a.is_object())
            })
    }
}

/// Applies a strategic merge patch to `doc` with `schema` giving list strategies.
pub fn merge(doc: &mut Value, patch: &Value, schema: Schema<'_>) {
    merge_value(doc, patch, &schema, Some(schema.root));
}

fn merge_value<'a>(target: &mut Value, patch: &Value, schema: &Schema<'a>, node: Option<&'a Value>) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            merge_map(target.as_object_mut().expect("made an object"), p, schema, node);
        }
        other => *target = stripped(other),
    }
}

fn merge_map<'a>(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    schema: &Schema<'a>,
    node: Option<&'a Value>,
) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *target = Map::new();
        merge_map(target, &replacement, schema, node);
        return;
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        target.retain(|k, _| keep.iter().any(|r| r.as_str() == Some(k)));
    }
    for (k, values) in patch {
        if let Some(list) = k.strip_prefix(DELETE_FROM)
            && let (Some(Value::Array(items)), Some(gone)) = (target.get_mut(list), values.as_array())
        {
            items.retain(|v| !gone.contains(v));
        }
    }
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        let prop = schema.property(node, k);
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(pm) if pm.get("$patch").and_then(Value::as_str) == Some("delete") => {
                target.remove(k);
            }
            Value::Object(_) => {
                let slot = target.entry(k.clone()).or_insert(Value::Object(Map::new()));
                merge_value(slot, v, schema, prop);
            }
            Value::Array(items) => {
                let strategy = prop
                    .and_then(|p| p.get("x-kubernetes-patch-strategy"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !strategy.split(',').any(|s| s == "merge") {
                    target.insert(k.clone(), stripped(v));
                    continue;
                }
                let key = prop
                    .and_then(|p| p.get("x-kubernetes-patch-merge-key"))
                    .and_then(Value::as_str);
                let item_schema = prop.and_then(|p| p.get("items"));
                let slot = target.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let old = slot.as_array_mut().expect("made an array");
                match key {
                    Some(key) => merge_keyed_list(old, items, key, schema, item_schema),
                    None => {
                        for item in items.iter().filter(|i| !is_directive(i)) {
                            if !old.contains(item) {
                                old.push(item.clone());
                            }
                        }
                    }
                }
            }
            scalar => {
                target.insert(k.clone(), scalar.clone());
            }
        }
    }
    for (k, order) in patch {
        if let (Some(list), Some(order)) = (k.strip_prefix(SET_ORDER), order.as_array()) {
            let key = schema
                .property(node, list)
                .and_then(|p| p.get("x-kubernetes-patch-merge-key"))
                .and_then(Value::as_str);
            if let Some(Value::Array(items)) = target.get_mut(list) {
                reorder(items, order, key);
            }
        }
    }
}

fn is_directive(item: &Value) -> bool {
    item.as_object().is_some_and(|m| m.contains_key("$patch"))
}

fn merge_keyed_list<'a>(
    old: &mut Vec<Value>,
    items: &[Value],
    key: &str,
    schema: &Schema<'a>,
    item_schema: Option<&'a Value>,
) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *old = items.iter().filter(|i| !is_directive(i)).map(stripped).collect();
        return;
    }
    for item in items {
        let id = item.get(key);
        let position = id.and_then(|id| old.iter().position(|o| o.get(key) == Some(id)));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = position {
                old.remove(i);
            }
            continue;
        }
        match position {
            Some(i) => merge_value(&mut old[i], item, schema, item_schema),
            None => {
                let mut fresh = Value::Object(Map::new());
                merge_value(&mut fresh, item, schema, item_schema);
                old.push(fresh);
            }
        }
    }
}

/// `$setElementOrder`: listed items first, in the given order; others keep their relative order after.
fn reorder(items: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut rest = std::mem::take(items);
    for o in order {
        let want = id(o);
        if let Some(i) = rest.iter().position(|x| id(x) == want) {
            items.push(rest.remove(i));
        }
    }
    items.extend(rest);
}

/// A value with every `$`-directive removed (what a replaced subtree stores).
fn stripped(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), stripped(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().filter(|i| !is_directive(i)).map(stripped).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Map<String, Value> {
        json!({
            "Pod": {"properties": {"metadata": {"$ref": "#/definitions/Meta"}, "spec": {"$ref": "#/definitions/PodSpec"}}},
            "Meta": {"properties": {
                "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "PodSpec": {"properties": {
                "containers": {"type": "array", "items": {"$ref": "#/definitions/Container"},
                    "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                "tolerations": {"type": "array", "items": {"type": "object"}}}},
            "Container": {"properties": {
                "args": {"type": "array", "items": {"type": "string"}},
                "ports": {"type": "array", "items": {"type": "object"},
                    "x-kubernetes-patch-merge-key": "containerPort", "x-kubernetes-patch-strategy": "merge"}}}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn patched(doc: Value, patch: Value) -> Value {
        let d = defs();
        let schema = Schema {
            definitions: &d,
            root: &d["Pod"],
        };
        let mut doc = doc;
        merge(&mut doc, &patch, schema);
        doc
    }

    #[test]
    fn lists_follow_the_schema() {
        let doc = json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1"}},
            "spec": {"containers": [{"name": "app", "image": "1", "args": ["-v"],
                                     "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81}]},
                                    {"name": "side", "image": "1"}],
                     "tolerations": [{"key": "a"}]}});
        let out = patched(
            doc,
            json!({"metadata": {"finalizers": ["b", "a"], "labels": {"x": null, "y": "2"}},
                "spec": {"$setElementOrder/containers": [{"name": "app"}],
                    "containers": [{"name": "app", "image": "2", "args": ["-q"],
                        "ports": [{"containerPort": 81, "$patch": "delete"}, {"containerPort": 80, "protocol": "TCP"}]},
                        {"name": "side", "$patch": "delete"}],
                    "tolerations": [{"key": "b"}]}}),
        );
        assert_eq!(
            out["metadata"],
            json!({"finalizers": ["a", "b"], "labels": {"y": "2"}})
        );
        assert_eq!(
            out["spec"],
            json!({"containers": [{"name": "app", "image": "2", "args": ["-q"],
                "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}],
                "tolerations": [{"key": "b"}]})
        );
    }

    #[test]
    fn directives() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let out = patched(
            doc.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
                   "spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}], "containers": [{"name": "d"}]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c", "a", "b", "d"]);
        let out = patched(
            doc.clone(),
            json!({"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}),
        );
        assert_eq!(out["spec"]["containers"], json!([{"name": "z"}]));
        let out = patched(
            doc.clone(),
            json!({"spec": {"$patch": "replace", "containers": [{"name": "y"}]}}),
        );
        assert_eq!(out["spec"], json!({"containers": [{"name": "y"}]}));
        let out = patched(doc, json!({"spec": {"$patch": "delete"}}));
        assert!(out.get("spec").is_none());
        let out = patched(
            json!({"spec": {"a": 1, "b": 2}}),
            json!({"spec": {"$retainKeys": ["b", "c"], "c": 3}}),
        );
        assert_eq!(out["spec"], json!({"b": 2, "c": 3}));
    }
}

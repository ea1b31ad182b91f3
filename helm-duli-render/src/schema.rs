//! From a CRD's Kubernetes OpenAPI v3 schema to a JSON schema that rejects unknown fields.
//!
//! jsonschema ignores Kubernetes' `x-kubernetes-*` extensions and OpenAPI's `nullable`, so the schema is
//! rewritten first, as kubeconform's `openapi2jsonschema.py` does:
//! - `x-kubernetes-int-or-string: true` → `anyOf: [{type: integer}, {type: string}]`;
//! - `nullable: true` → `null` added to `type` (and to `enum`); nulls on non-nullable fields are pruned
//!   from the object before validating, as the API server does ([`prune_nulls`]);
//! - every object schema with `properties` gets `additionalProperties: false` (unknown fields rejected),
//!   except where `x-kubernetes-preserve-unknown-fields: true` says anything goes;
//! - `x-kubernetes-embedded-resource: true` objects may carry `apiVersion`, `kind` and `metadata`;
//! - the root always allows `apiVersion`, `kind` and `metadata`.
//!
//! Only structural positions (`properties`, `items`, `additionalProperties`) are made strict: branches of
//! `allOf`/`anyOf`/`oneOf`/`not` may only restate fields declared beside them, so closing them would
//! reject valid objects.

use serde_json::{Map, Value, json};

/// Rewrite a CRD version's `openAPIV3Schema` into a strict JSON schema (draft 4).
pub fn rewrite(openapi: &Value) -> Value {
    let mut schema = rewrite_node(openapi, true);
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        add_resource_fields(properties);
    }
    schema
}

fn add_resource_fields(properties: &mut Map<String, Value>) {
    properties
        .entry("apiVersion")
        .or_insert_with(|| json!({"type": "string"}));
    properties
        .entry("kind")
        .or_insert_with(|| json!({"type": "string"}));
    properties
        .entry("metadata")
        .or_insert_with(|| json!({"type": "object"}));
}

fn is_true(node: &Map<String, Value>, key: &str) -> bool {
    node.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn rewrite_node(node: &Value, structural: bool) -> Value {
    let Some(node) = node.as_object() else {
        return node.clone();
    };
    let mut out = Map::new();
    for (key, value) in node {
        let value = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => match value.as_object() {
                Some(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), rewrite_node(v, true)))
                        .collect(),
                ),
                None => value.clone(),
            },
            "items" => match value {
                Value::Array(items) => Value::Array(items.iter().map(|v| rewrite_node(v, true)).collect()),
                other => rewrite_node(other, true),
            },
            "additionalProperties" => rewrite_node(value, true),
            "allOf" | "anyOf" | "oneOf" => match value.as_array() {
                Some(items) => Value::Array(items.iter().map(|v| rewrite_node(v, false)).collect()),
                None => value.clone(),
            },
            "not" => rewrite_node(value, false),
            // OpenAPI and Kubernetes keywords jsonschema does not know; their meaning is applied below.
            "nullable" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    if is_true(node, "x-kubernetes-int-or-string") {
        out.remove("type");
        if !out.contains_key("anyOf") {
            out.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
        }
    }
    if is_true(node, "nullable") {
        match out.get_mut("type") {
            Some(Value::String(kind)) => {
                let kind = std::mem::take(kind);
                out.insert("type".into(), json!([kind, "null"]));
            }
            Some(Value::Array(kinds)) if !kinds.contains(&json!("null")) => kinds.push(json!("null")),
            _ => {}
        }
        if let Some(Value::Array(any_of)) = out.get_mut("anyOf") {
            any_of.push(json!({"type": "null"}));
        }
        if let Some(Value::Array(values)) = out.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
    let embedded = is_true(node, "x-kubernetes-embedded-resource");
    if embedded && let Some(properties) = out.get_mut("properties").and_then(Value::as_object_mut) {
        add_resource_fields(properties);
    }
    let preserve = is_true(node, "x-kubernetes-preserve-unknown-fields");
    if structural && !preserve && out.contains_key("properties") && !out.contains_key("additionalProperties")
    {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// The shape of an instance: which fields and items it has, merged over array elements.
#[derive(Debug, Clone)]
enum Shape {
    Leaf,
    Object(std::collections::BTreeMap<String, Shape>),
    Array(Box<Shape>),
    /// Objects and arrays met at the same place: keep the whole schema there.
    Any,
}

impl Shape {
    fn of(value: &Value) -> Shape {
        match value {
            Value::Object(map) => Shape::Object(map.iter().map(|(k, v)| (k.clone(), Shape::of(v))).collect()),
            Value::Array(items) => Shape::Array(Box::new(
                items.iter().map(Shape::of).fold(Shape::Leaf, Shape::union),
            )),
            _ => Shape::Leaf,
        }
    }

    fn union(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Leaf, x) | (x, Shape::Leaf) => x,
            (Shape::Object(mut a), Shape::Object(b)) => {
                for (key, shape) in b {
                    let merged = match a.remove(&key) {
                        Some(existing) => existing.union(shape),
                        None => shape,
                    };
                    a.insert(key, merged);
                }
                Shape::Object(a)
            }
            (Shape::Array(a), Shape::Array(b)) => Shape::Array(Box::new(a.union(*b))),
            _ => Shape::Any,
        }
    }
}

/// Cut a schema down to the fields `instance` actually has, so that compiling it costs next to nothing
/// even for CRDs with thousands of fields. Validation results are the same: every present field keeps its
/// full schema, absent fields only mattered through `required`, which is kept.
pub fn trim(openapi: &Value, instance: &Value) -> Value {
    trim_node(openapi, &Shape::of(instance))
}

fn trim_node(schema: &Value, shape: &Shape) -> Value {
    let Some(node) = schema.as_object() else {
        return schema.clone();
    };
    if matches!(shape, Shape::Any) {
        return schema.clone();
    }
    let mut out = Map::new();
    for (key, value) in node {
        let value = match (key.as_str(), shape) {
            ("properties", Shape::Object(fields)) => match value.as_object() {
                Some(properties) => Value::Object(
                    properties
                        .iter()
                        .filter_map(|(name, child)| {
                            fields.get(name).map(|f| (name.clone(), trim_node(child, f)))
                        })
                        .collect(),
                ),
                None => value.clone(),
            },
            ("properties", _) => Value::Object(Map::new()),
            ("additionalProperties", Shape::Object(fields)) => {
                let union = fields.values().cloned().fold(Shape::Leaf, Shape::union);
                trim_node(value, &union)
            }
            ("items", Shape::Array(item)) if value.is_object() => trim_node(value, item),
            ("items", Shape::Object(_) | Shape::Leaf) if value.is_object() => trim_node(value, &Shape::Leaf),
            ("allOf" | "anyOf" | "oneOf", _) => match value.as_array() {
                Some(branches) => Value::Array(branches.iter().map(|b| trim_node(b, shape)).collect()),
                None => value.clone(),
            },
            ("not", _) => trim_node(value, shape),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// Drop null-valued fields the schema does not declare `nullable`, as the API server does before
/// validating; nulls where `nullable: true` stay and are checked.
pub fn prune_nulls(instance: &mut Value, openapi: &Value) {
    match instance {
        Value::Object(map) => {
            let properties = openapi.get("properties").and_then(Value::as_object);
            let additional = openapi.get("additionalProperties").filter(|v| v.is_object());
            map.retain(|key, value| {
                let child = properties.and_then(|p| p.get(key)).or(additional);
                !value.is_null() || child.is_some_and(|c| c.get("nullable") == Some(&Value::Bool(true)))
            });
            for (key, value) in map.iter_mut() {
                let child = properties.and_then(|p| p.get(key)).or(additional);
                match child {
                    Some(child) => prune_nulls(value, child),
                    None => super::manifests::strip_nulls(value),
                }
            }
        }
        Value::Array(items) => match openapi.get("items") {
            Some(child) => items.iter_mut().for_each(|item| prune_nulls(item, child)),
            None => items.iter_mut().for_each(super::manifests::strip_nulls),
        },
        _ => {}
    }
}

/// The property names the schema declares at the object at `path` (JSON-pointer segments), for
/// "did you mean" hints.
pub fn known_properties<'a>(openapi: &'a Value, path: &[String]) -> Vec<&'a str> {
    let mut node = openapi;
    for segment in path {
        let next = if segment.parse::<usize>().is_ok() && node.get("items").is_some() {
            node.get("items")
        } else {
            node.get("properties")
                .and_then(|p| p.get(segment))
                .or_else(|| node.get("additionalProperties"))
        };
        match next {
            Some(next) => node = next,
            None => return Vec::new(),
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The known name closest to `name` (edit distance at most a third of its length, at least 1), if any.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.len() / 3).max(1);
    known
        .iter()
        .map(|candidate| {
            (
                edit_distance(&name.to_lowercase(), &candidate.to_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push((previous[j] + cost).min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// A JSON pointer (`/spec/containers/0/name`) as a field path (`spec.containers[0].name`).
pub fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    if out.is_empty() { "(root)".to_string() } else { out }
}

/// A validator for a rewritten schema: draft 4 (OpenAPI v3.0's base), Kubernetes formats registered.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .with_format("byte", is_base64)
        .with_format("int32", |_: &str| true)
        .with_format("int64", |_: &str| true)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|err| err.to_string())
}

fn is_base64(text: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(openapi: Value, instance: Value) -> Result<(), Vec<String>> {
        let full = check_with(&rewrite(&openapi), &openapi, instance.clone());
        let trimmed = check_with(&rewrite(&trim(&openapi, &instance)), &openapi, instance);
        assert_eq!(full, trimmed, "trimming the schema changed the result");
        full
    }

    fn check_with(schema: &Value, openapi: &Value, instance: Value) -> Result<(), Vec<String>> {
        let validator = compile(schema).unwrap();
        let mut instance = instance;
        prune_nulls(&mut instance, openapi);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, field_path(&e.instance_path().to_string())))
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn spec(properties: Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": properties}}})
    }

    #[test]
    fn int_or_string_takes_both_and_nothing_else() {
        let schema = spec(json!({"port": {"x-kubernetes-int-or-string": true}}));
        assert!(check(schema.clone(), json!({"spec": {"port": 80}})).is_ok());
        assert!(check(schema.clone(), json!({"spec": {"port": "http"}})).is_ok());
        assert!(check(schema, json!({"spec": {"port": true}})).is_err());
        let existing = json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}], "pattern": "^\\d+%$"});
        let schema = spec(json!({"maxUnavailable": existing}));
        assert!(check(schema.clone(), json!({"spec": {"maxUnavailable": 1}})).is_ok());
        assert!(check(schema, json!({"spec": {"maxUnavailable": "abc"}})).is_err());
    }

    #[test]
    fn nullable_allows_null_and_other_nulls_are_pruned() {
        let schema = spec(json!({
            "a": {"type": "string", "nullable": true},
            "b": {"type": "string"},
            "c": {"type": "string", "enum": ["x"], "nullable": true},
        }));
        assert!(check(schema.clone(), json!({"spec": {"a": null, "b": null, "c": null}})).is_ok());
        assert!(check(schema.clone(), json!({"spec": {"a": 3}})).is_err());
        let rewritten = rewrite(&schema);
        assert_eq!(
            rewritten.pointer("/properties/spec/properties/a/type"),
            Some(&json!(["string", "null"]))
        );
        assert_eq!(
            rewritten.pointer("/properties/spec/properties/c/enum"),
            Some(&json!(["x", null]))
        );
        let mut instance = json!({"spec": {"a": null, "b": null}});
        prune_nulls(&mut instance, &schema);
        assert_eq!(instance, json!({"spec": {"a": null}}));
    }

    #[test]
    fn unknown_fields_are_rejected_unless_preserved() {
        let schema = spec(json!({
            "instances": {"type": "integer"},
            "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"known": {"type": "string"}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }));
        let errors = check(schema.clone(), json!({"spec": {"instancez": 3}})).unwrap_err();
        assert!(errors[0].contains("instancez"), "{errors:?}");
        assert!(
            check(
                schema.clone(),
                json!({"spec": {"config": {"anything": {"goes": 1}}}})
            )
            .is_ok()
        );
        assert!(check(schema.clone(), json!({"spec": {"labels": {"a": "b"}}})).is_ok());
        assert!(check(schema.clone(), json!({"spec": {"labels": {"a": 1}}})).is_err());
        assert!(
            check(
                schema,
                json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"}})
            )
            .is_ok()
        );
    }

    #[test]
    fn embedded_resources_carry_type_and_object_metadata() {
        let schema = spec(json!({
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}}},
            },
        }));
        let embedded =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"replicas": 1}});
        assert!(check(schema.clone(), json!({"spec": {"template": embedded}})).is_ok());
        assert!(check(schema, json!({"spec": {"template": {"spec": {"replicaz": 1}}}})).is_err());
    }

    #[test]
    fn combinator_branches_stay_open() {
        let schema = spec(json!({
            "a": {"type": "string"},
            "b": {"type": "string"},
        }));
        let mut schema = schema;
        schema["properties"]["spec"]["oneOf"] = json!([{"properties": {"a": {}}, "required": ["a"]}, {"properties": {"b": {}}, "required": ["b"]}]);
        assert!(check(schema.clone(), json!({"spec": {"a": "x"}})).is_ok());
        assert!(check(schema, json!({"spec": {"a": "x", "b": "y"}})).is_err());
    }

    #[test]
    fn k8s_formats() {
        let schema = spec(
            json!({"ca": {"type": "string", "format": "byte"}, "n": {"type": "integer", "format": "int32"}, "t": {"type": "string", "format": "date-time"}}),
        );
        assert!(
            check(
                schema.clone(),
                json!({"spec": {"ca": "aGVsbG8=", "n": 3, "t": "2024-01-01T00:00:00Z"}})
            )
            .is_ok()
        );
        assert!(check(schema.clone(), json!({"spec": {"ca": "not base64!"}})).is_err());
        assert!(check(schema, json!({"spec": {"t": "yesterday"}})).is_err());
    }

    #[test]
    fn hints_and_paths() {
        assert_eq!(
            closest("instancez", &["instances", "imageName"]),
            Some("instances")
        );
        assert_eq!(closest("zzz", &["instances"]), None);
        assert_eq!(field_path("/spec/containers/0/name"), "spec.containers[0].name");
        let schema = spec(json!({"instances": {"type": "integer"}}));
        assert_eq!(known_properties(&schema, &["spec".into()]), vec!["instances"]);
    }
}

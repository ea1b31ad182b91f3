//! A compact structural-schema validator for custom resources, with the API server's pruning and its
//! error wording (`spec.instances: Invalid value: "string": spec.instances in body must be of type integer: "string"`).
//!
//! Covers what CRD schemas of the platform's operators use for shape: `type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `nullable`, `minimum`/`maximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields`,
//! `x-kubernetes-embedded-resource`. Not covered: `pattern`, `format`, `anyOf`/`oneOf`/`allOf`,
//! CEL `x-kubernetes-validations`, defaulting.

use serde_json::Value;

use crate::error::Cause;

/// The outcome of validating one object.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Validation {
    /// Schema violations; non-empty means 422.
    pub causes: Vec<Cause>,
    /// Paths of fields that were pruned because the schema does not declare them.
    pub unknown_fields: Vec<String>,
}

/// Validates `obj` against a CRD's `openAPIV3Schema`, pruning undeclared fields in place.
/// `metadata` is left to the server's own checks, `apiVersion` and `kind` are always allowed.
pub fn validate_and_prune(schema: &Value, obj: &mut Value) -> Validation {
    let mut v = Validation::default();
    let Some(map) = obj.as_object_mut() else {
        v.causes.push(type_cause("", "object", obj));
        return v;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields");
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if ["apiVersion", "kind", "metadata"].contains(&key.as_str()) {
            continue;
        }
        match props.and_then(|p| p.get(&key)) {
            Some(sub) => walk(sub, map.get_mut(&key).expect("key listed"), &key, &mut v),
            None if preserve => {}
            None => {
                map.remove(&key);
                v.unknown_fields.push(key);
            }
        }
    }
    check_required(schema, map, "", &mut v);
    v
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) | Value::Array(_) => format!("{:?}", json_type(v)),
        other => other.to_string(),
    }
}

fn type_cause(path: &str, expected: &str, actual: &Value) -> Cause {
    let t = json_type(actual);
    Cause {
        reason: "FieldValueTypeInvalid".into(),
        message: format!("Invalid value: \"{t}\": {path} in body must be of type {expected}: \"{t}\""),
        field: path.into(),
    }
}

fn invalid(path: &str, value: &Value, what: String) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {path} in body {what}", shown(value)),
        field: path.into(),
    }
}

fn check_required(schema: &Value, map: &serde_json::Map<String, Value>, path: &str, v: &mut Validation) {
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(key) = req.as_str()
            && !map.contains_key(key)
        {
            v.causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: join(path, key),
            });
        }
    }
}

fn walk(schema: &Value, value: &mut Value, path: &str, v: &mut Validation) {
    if value.is_null() {
        if !is_true(schema, "nullable") && schema.get("type").is_some() {
            let expected = schema["type"].as_str().unwrap_or("object");
            v.causes.push(type_cause(path, expected, value));
        }
        return;
    }
    if is_true(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || json_type(value) == "integer") {
            v.causes.push(type_cause(path, "integer or string", value));
        }
        return;
    }
    let expected = schema.get("type").and_then(Value::as_str);
    let actual = json_type(value);
    let type_ok = match expected {
        None => true,
        Some("number") => value.is_number(),
        Some("integer") => actual == "integer" || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        Some(t) => t == actual,
    };
    if !type_ok {
        v.causes
            .push(type_cause(path, expected.unwrap_or("object"), value));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let supported: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        v.causes.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                value,
                supported.join(", ")
            ),
            field: path.into(),
        });
    }
    check_bounds(schema, value, path, v);
    match value {
        Value::Object(map) => {
            let embedded = is_true(schema, "x-kubernetes-embedded-resource");
            let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields");
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child = join(path, &key);
                if let Some(sub) = props.and_then(|p| p.get(&key)) {
                    walk(sub, map.get_mut(&key).expect("key listed"), &child, v);
                } else if let Some(sub) = additional.filter(|a| a.is_object()) {
                    walk(sub, map.get_mut(&key).expect("key listed"), &child, v);
                } else if preserve
                    || additional.and_then(Value::as_bool) == Some(true)
                    || (embedded && ["apiVersion", "kind", "metadata"].contains(&key.as_str()))
                {
                    // Kept as is.
                } else {
                    map.remove(&key);
                    v.unknown_fields.push(child);
                }
            }
            check_required(schema, map, path, v);
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), v);
                }
            }
        }
        _ => {}
    }
}

fn check_bounds(schema: &Value, value: &Value, path: &str, v: &mut Validation) {
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    if let Some(x) = value.as_f64() {
        if let Some(min) = num("minimum")
            && (x < min || (is_true(schema, "exclusiveMinimum") && x == min))
        {
            v.causes.push(invalid(
                path,
                value,
                format!("should be greater than or equal to {min}"),
            ));
        }
        if let Some(max) = num("maximum")
            && (x > max || (is_true(schema, "exclusiveMaximum") && x == max))
        {
            v.causes.push(invalid(
                path,
                value,
                format!("should be less than or equal to {max}"),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as f64;
        if let Some(min) = num("minLength")
            && len < min
        {
            v.causes.push(invalid(
                path,
                value,
                format!("should be at least {min} chars long"),
            ));
        }
        if let Some(max) = num("maxLength")
            && len > max
        {
            v.causes
                .push(invalid(path, value, format!("may not be more than {max} bytes")));
        }
    }
    if let Some(a) = value.as_array() {
        let len = a.len() as f64;
        if let Some(min) = num("minItems")
            && len < min
        {
            v.causes.push(invalid(
                path,
                &Value::from(a.len()),
                format!("should have at least {min} items"),
            ));
        }
        if let Some(max) = num("maxItems")
            && len > max
        {
            v.causes.push(invalid(
                path,
                &Value::from(a.len()),
                format!("must have at most {max} items"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["instances", "storage"],
                    "properties": {
                        "instances": {"type": "integer", "minimum": 1},
                        "storage": {"type": "object", "properties": {"size": {"type": "string"}}},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "params": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tpl": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}},
                        "list": {"type": "array", "items": {"type": "string"}},
                        "opt": {"type": "string", "nullable": true}
                    }
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        })
    }

    #[test]
    fn accepts_and_prunes() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"instances": 2, "storage": {"size": "1Gi", "junk": 1}, "mode": "a", "port": "http",
                     "params": {"k": "v"}, "free": {"any": {"thing": 1}}, "opt": null,
                     "tpl": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}}, "list": ["x"]},
            "extra": true});
        let v = validate_and_prune(&schema(), &mut o);
        assert_eq!(v.causes, vec![]);
        assert_eq!(
            v.unknown_fields,
            vec!["spec.storage.junk".to_string(), "extra".to_string()]
        );
        assert!(o.get("extra").is_none());
        assert!(o["spec"]["storage"].get("junk").is_none());
        assert_eq!(o["spec"]["free"]["any"]["thing"], 1);
    }

    #[test]
    fn reports_like_the_api_server() {
        let mut o = json!({"spec": {"instances": "three", "mode": "c", "list": [1], "port": 1.5, "params": {"k": 3}}});
        let v = validate_and_prune(&schema(), &mut o);
        let msgs: Vec<String> = v
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            msgs,
            vec![
                r#"spec.instances: Invalid value: "string": spec.instances in body must be of type integer: "string""#,
                r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#,
                r#"spec.list[0]: Invalid value: "integer": spec.list[0] in body must be of type string: "integer""#,
                r#"spec.port: Invalid value: "number": spec.port in body must be of type integer or string: "number""#,
                r#"spec.params.k: Invalid value: "integer": spec.params.k in body must be of type string: "integer""#,
                "spec.storage: Required value",
            ]
        );
        let mut o = json!({"spec": {"instances": 0, "storage": {}}});
        let v = validate_and_prune(&schema(), &mut o);
        assert_eq!(
            v.causes[0].message,
            "Invalid value: 0: spec.instances in body should be greater than or equal to 1"
        );
    }
}

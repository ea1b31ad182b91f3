//! The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation of
//! strategic merge patch (directives stripped, lists of objects merged by `name`, other lists replaced).

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch flavours, from the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// Maps a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(PatchKind::Apply),
            _ => None,
        }
    }

    /// The patch kind a request's `Content-Type` names, with that header; any other body type is a 415.
    pub fn of_request(headers: &HeaderMap) -> Result<(Self, &str), ApiError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let kind = Self::from_content_type(ct).ok_or_else(|| ApiError::unsupported_media_type(ct))?;
        Ok((kind, ct))
    }
}

/// Applies a merge, JSON or strategic patch body to `doc`.
pub fn apply_patch(kind: PatchKind, doc: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    match kind {
        PatchKind::Merge => {
            let patch: Value = parse_json(body)?;
            json_patch::merge(doc, &patch);
        }
        PatchKind::Strategic => {
            let patch: Value = parse_json(body)?;
            strategic_merge(doc, &patch);
        }
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(doc, &patch).map_err(|e| {
                // The real server answers 422 for a failing test/remove of a missing path.
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchKind::Apply => unreachable!("server-side apply is handled by the apply module"),
    }
    Ok(())
}

/// Like [`apply_patch`], but a strategic merge patch follows `schema`'s list strategies and merge keys
/// when given (built-in kinds with the upstream OpenAPI document loaded).
pub fn apply_patch_with_schema(
    kind: PatchKind,
    doc: &mut Value,
    body: &[u8],
    schema: Option<crate::strategic::Schema<'_>>,
) -> Result<(), ApiError> {
    match (kind, schema) {
        (PatchKind::Strategic, Some(schema)) => {
            let patch = parse_json(body)?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            crate::strategic::merge(doc, &patch, schema);
            Ok(())
        }
        _ => apply_patch(kind, doc, body),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in patch body: {e}")))
}

fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let target = doc.as_object_mut().expect("made an object");
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = Map::new();
    }
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            target.remove(k);
            continue;
        }
        match (target.get_mut(k), v) {
            (Some(Value::Array(old)), Value::Array(new)) if is_named_list(old) && is_named_list(new) => {
                for item in new {
                    let name = item.get("name").cloned();
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match old.iter().position(|o| o.get("name") == name.as_ref()) {
                        Some(i) if delete => {
                            old.remove(i);
                        }
                        Some(i) => strategic_merge(&mut old[i], item),
                        None if delete => {}
                        None => {
                            let mut fresh = Value::Object(Map::new());
                            strategic_merge(&mut fresh, item);
                            old.push(fresh);
                        }
                    }
                }
            }
            (Some(old @ Value::Object(_)), Value::Object(_)) => strategic_merge(old, v),
            _ => {
                let mut clean = v.clone();
                strip_directives(&mut clean);
                target.insert(k.clone(), clean);
            }
        }
    }
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("name").is_some_and(Value::is_string))
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patches() {
        let mut d = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1}});
        apply_patch(
            PatchKind::Merge,
            &mut d,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}}}"#,
        )
        .unwrap();
        assert_eq!(d["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        apply_patch(
            PatchKind::Json,
            &mut d,
            br#"[{"op":"replace","path":"/spec/x","value":2}]"#,
        )
        .unwrap();
        assert_eq!(d["spec"]["x"], 2);
        let err = apply_patch(
            PatchKind::Json,
            &mut d,
            br#"[{"op":"remove","path":"/spec/nope"}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn strategic_merges_named_lists() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}], "args": ["x"]}});
        let p = json!({"$setElementOrder/containers": [{"name": "a"}],
                        "spec": {"containers": [{"name": "a", "image": "2"}, {"name": "c", "image": "3"}, {"name": "b", "$patch": "delete"}],
                                 "args": ["y"]}});
        apply_patch(PatchKind::Strategic, &mut d, p.to_string().as_bytes()).unwrap();
        assert_eq!(
            d,
            json!({"spec": {"containers": [{"name": "a", "image": "2"}, {"name": "c", "image": "3"}], "args": ["y"]}})
        );
    }
}

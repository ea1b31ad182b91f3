//! Just enough OpenAPI v3 for kubectl's field-validation check (`query_param_verifier_v3.go`): an index
//! at `/openapi/v3` and, per group/version, one PATCH operation per kind that declares the
//! `fieldValidation` query parameter. kubectl then sends `fieldValidation=Strict` and leaves validation
//! to the server. The hash in each URL changes with the registry so kubectl's HTTP cache stays honest.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::registry::Registry;

fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash_of(reg: &Registry, group: &str, version: &str) -> String {
    let mut h = DefaultHasher::new();
    reg.generation.hash(&mut h);
    for t in reg.in_group_version(group, version) {
        (&t.kind, &t.plural, t.namespaced).hash(&mut h);
    }
    format!("{:016X}", h.finish())
}

/// `GET /openapi/v3`.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let key = gv_key(&group, &v);
            let url = format!("/openapi/v3/{key}?hash={}", hash_of(reg, &group, &v));
            paths.insert(key, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/G/V`; `None` for an unknown group/version.
pub fn group_version_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = reg.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
                ],
                "responses": {"200": {"description": "OK"}}
            })
        };
        let prefix = t.gv_path();
        let ns = if t.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        paths.insert(
            format!("{prefix}{ns}/{}/{{name}}", t.plural),
            json!({"patch": op("patch"), "put": op("replace"), "get": op("read"), "delete": op("delete")}),
        );
        paths.insert(
            format!("{prefix}{ns}/{}", t.plural),
            json!({"post": op("create"), "get": op("list")}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": {}}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_docs() {
        let reg = Registry::builtin();
        let idx = index(&reg);
        assert!(
            idx["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        let doc = group_version_doc(&reg, "apps", "v1").unwrap();
        let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert_eq!(p["parameters"][0]["name"], "fieldValidation");
        assert!(group_version_doc(&reg, "nope", "v1").is_none());
    }
}

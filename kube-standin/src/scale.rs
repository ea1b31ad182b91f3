//! The `scale` subresource (`autoscaling/v1` `Scale`) of Deployments, StatefulSets, ReplicaSets and of
//! custom resources whose CRD version declares `subresources.scale`: GET, PUT and PATCH (merge, JSON,
//! strategic; an apply configuration is merged like a merge patch). A write sets the replica count at
//! the type's spec path through the ordinary update path, so resourceVersion preconditions, watches and
//! the simulation see it as any other change.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::handlers::{Target, default_manager, json_ok};
use crate::patch::{PatchKind, apply_patch};
use crate::printers::builtin::selector_string;
use crate::registry::ResourceType;
use crate::server::AppState;
use crate::store::{State, WriteCtx};

/// Where a type keeps its replica counts and selector.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// e.g. `.status.replicas`; empty when the type reports none.
    pub status_replicas: String,
    /// A path to a label selector: a `LabelSelector` object for built-ins, a string for CRDs.
    pub label_selector: String,
}

/// The scale paths of a type, `None` when it has no scale subresource.
pub fn paths_for(st: &State, rt: &ResourceType) -> Option<ScalePaths> {
    if let Some(crd_name) = &rt.crd_name {
        let crd_rt = st
            .registry
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")?;
        let crd = st.get(&crd_rt, "", crd_name)?;
        let version = crd
            .pointer("/spec/versions")?
            .as_array()?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(rt.version.as_str()))?;
        let scale = version.pointer("/subresources/scale")?;
        let field = |k: &str| scale.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Some(ScalePaths {
            spec_replicas: field("specReplicasPath"),
            status_replicas: field("statusReplicasPath"),
            label_selector: field("labelSelectorPath"),
        });
    }
    let builtin = rt.group == "apps"
        && ["deployments", "statefulsets", "replicasets"].contains(&rt.plural.as_str())
        || rt.group.is_empty() && rt.plural == "replicationcontrollers";
    builtin.then(|| ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: ".spec.selector".into(),
    })
}

fn pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |mut acc, seg| {
            acc.push('/');
            acc.push_str(&seg.replace('~', "~0").replace('/', "~1"));
            acc
        })
}

fn set_at(doc: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = doc;
    for seg in &segs[..segs.len() - 1] {
        if !cur.get(*seg).is_some_and(Value::is_object) {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
    cur[segs[segs.len() - 1]] = value;
}

/// The `Scale` view of an object.
pub fn scale_of(rt: &ResourceType, obj: &Value, paths: &ScalePaths) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut metadata = json!({});
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = meta.get(k) {
            metadata[k] = v.clone();
        }
    }
    let default_replicas = if rt.crd_name.is_some() { 0 } else { 1 };
    let spec_replicas = obj
        .pointer(&pointer(&paths.spec_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(default_replicas);
    let status_replicas = if paths.status_replicas.is_empty() {
        0
    } else {
        obj.pointer(&pointer(&paths.status_replicas))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut status = json!({"replicas": status_replicas});
    if !paths.label_selector.is_empty() {
        match obj.pointer(&pointer(&paths.label_selector)) {
            Some(Value::String(s)) => status["selector"] = json!(s),
            Some(sel @ Value::Object(_)) => status["selector"] = json!(selector_string(Some(sel))),
            _ => {}
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

fn invalid_replicas(rt: &ResourceType, name: &str, got: Option<&Value>) -> ApiError {
    ApiError::invalid(
        rt,
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: {}: must be a non-negative integer",
                got.map_or("null".to_string(), Value::to_string)
            ),
            field: "spec.replicas".into(),
        }],
    )
}

/// Serves `.../NAME/scale`.
pub async fn handle(
    app: &Arc<AppState>,
    rt: &Arc<ResourceType>,
    ns: &str,
    target: &Target,
    query: &[(String, String)],
    req: Request,
) -> Result<Response, ApiError> {
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let name = target.name.clone().unwrap_or_default();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 4 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
    let mut st = app.store.lock();
    let paths = paths_for(&st, rt).ok_or_else(|| {
        ApiError::no_such_path(&format!("{} has no scale subresource", rt.group_resource()))
    })?;
    if paths.spec_replicas.trim_start_matches('.').is_empty() {
        return Err(ApiError::internal(format!(
            "the scale subresource of {} declares no specReplicasPath",
            rt.group_resource()
        )));
    }
    let old = st
        .get(rt, ns, &name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, &name))?;
    let current = scale_of(rt, &old, &paths);
    let wanted = match method {
        Method::GET => return Ok(json_ok(current)),
        Method::PUT => serde_json::from_slice::<Value>(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid Scale body: {e}")))?,
        Method::PATCH => {
            let (kind, _) = PatchKind::of_request(&headers)?;
            let mut doc = current.clone();
            if kind == PatchKind::Apply {
                let config: Value = serde_json::from_slice(&body)
                    .or_else(|_| serde_saphyr::from_slice::<Value>(&body))
                    .map_err(|e| ApiError::bad_request(format!("invalid apply configuration: {e}")))?;
                json_patch::merge(&mut doc, &config);
            } else {
                apply_patch(kind, &mut doc, &body)?;
            }
            doc
        }
        m => {
            return Err(ApiError::method_not_allowed(format!(
                "the scale subresource serves GET, PUT and PATCH, not {m}"
            )));
        }
    };
    let replicas = wanted.pointer("/spec/replicas");
    let n = replicas
        .and_then(Value::as_i64)
        .filter(|n| *n >= 0 && *n <= i64::from(i32::MAX))
        .ok_or_else(|| invalid_replicas(rt, &name, replicas))?;
    let mut updated = crate::store::present(rt, &old);
    set_at(&mut updated, &paths.spec_replicas, json!(n));
    // A resourceVersion in the Scale is a precondition on the object, as on the real server.
    if let Some(rv) = wanted
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        updated["metadata"]["resourceVersion"] = json!(rv);
    }
    let ctx = WriteCtx {
        dry_run: q("dryRun").is_some_and(|v| v == "All"),
        seed: false,
        manager: q("fieldManager")
            .map(str::to_string)
            .unwrap_or_else(|| default_manager(&headers, &Method::PUT)),
        strict: false,
        subresource: String::new(),
    };
    let stored = st.replace(rt, ns, &name, updated, &ctx)?;
    Ok(json_ok(scale_of(rt, &stored, &paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_and_paths() {
        let paths = ScalePaths {
            spec_replicas: ".spec.instances".into(),
            status_replicas: ".status.instances".into(),
            label_selector: ".status.selector".into(),
        };
        let rt = crate::registry::Registry::builtin()
            .lookup("deployments")
            .unwrap();
        let obj = json!({"metadata": {"name": "db", "namespace": "s", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"instances": 3}, "status": {"instances": 2, "selector": "app=db"}});
        let s = scale_of(&rt, &obj, &paths);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=db"}));
        assert!(s["metadata"].get("labels").is_none());
        let mut doc = json!({});
        set_at(&mut doc, ".spec.instances", json!(5));
        assert_eq!(doc, json!({"spec": {"instances": 5}}));
        assert_eq!(pointer(".status.a/b"), "/status/a~1b");
    }
}

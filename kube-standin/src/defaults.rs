//! Per-kind defaulting and name validation, the parts of the API server's registry strategies that
//! clients notice: a Secret's `stringData` folded into `data`, a Service's `clusterIP`, a Namespace's
//! `Active` phase, a CRD's `Established` condition, a new Pod's `Pending` phase.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause};
use crate::registry::ResourceType;
use crate::util::{ensure_object, get_str, now_rfc3339};

/// Defaults applied on every write (create and update).
pub fn on_write(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "secrets") => fold_string_data(obj),
        ("", "services") => default_service(obj),
        ("", "namespaces") => {
            let name = get_str(obj, &["metadata", "name"])
                .unwrap_or_default()
                .to_string();
            ensure_object(obj, &["metadata", "labels"])
                .insert("kubernetes.io/metadata.name".into(), json!(name));
        }
        ("apps", "deployments") => {
            let spec = ensure_object(obj, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            spec.entry("strategy")
                .or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
        }
        ("apps", "statefulsets") => {
            let spec = ensure_object(obj, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("podManagementPolicy").or_insert(json!("OrderedReady"));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            // kubectl rollout status refuses StatefulSets without this default.
            spec.entry("updateStrategy")
                .or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        }
        _ => {}
    }
}

/// Defaults applied only when an object is created through the API (seeds keep what they are given).
pub fn on_create(rt: &ResourceType, obj: &mut Value, seeded: bool) {
    let has_status = obj
        .get("status")
        .is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()));
    if seeded && has_status {
        return;
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            ensure_object(obj, &["status"]).insert("phase".into(), json!("Active"));
            // The namespace controller's finalizer, removed once the content is gone.
            ensure_object(obj, &["spec"])
                .entry("finalizers")
                .or_insert(json!(["kubernetes"]));
        }
        ("batch", "jobs") => default_job(obj),
        ("", "pods") => {
            ensure_object(obj, &["status"]).insert("phase".into(), json!("Pending"));
        }
        ("", "persistentvolumeclaims") => {
            ensure_object(obj, &["status"]).insert("phase".into(), json!("Pending"));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd_status(obj),
        _ => {}
    }
}

/// The Job defaults and the selector the API server generates from the Job's uid.
fn default_job(obj: &mut Value) {
    let uid = get_str(obj, &["metadata", "uid"]).unwrap_or("").to_string();
    let name = get_str(obj, &["metadata", "name"]).unwrap_or("").to_string();
    let spec = ensure_object(obj, &["spec"]);
    if !spec.contains_key("parallelism") {
        // Completions stays unset for a work queue (parallelism given without completions).
        spec.entry("completions").or_insert(json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    spec.entry("backoffLimit").or_insert(json!(6));
    spec.entry("completionMode").or_insert(json!("NonIndexed"));
    spec.entry("suspend").or_insert(json!(false));
    spec.entry("podReplacementPolicy")
        .or_insert(json!("TerminatingOrFailed"));
    if spec.get("manualSelector") == Some(&json!(true)) {
        return;
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let labels = ensure_object(obj, &["spec", "template", "metadata", "labels"]);
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.insert(k.into(), json!(v));
    }
    // SetDefaults_Job: a Job without labels shows its template's.
    let labels = labels.clone();
    let meta = ensure_object(obj, &["metadata"]);
    if meta
        .get("labels")
        .and_then(Value::as_object)
        .is_none_or(|l| l.is_empty())
    {
        meta.insert("labels".into(), Value::Object(labels));
    }
}

fn fold_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else { return };
    map.entry("type").or_insert(json!("Opaque"));
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    let data = data.as_object_mut().expect("made an object");
    for (k, v) in string_data {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        data.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(text)));
    }
}

fn default_service(obj: &mut Value) {
    let spec = ensure_object(obj, &["spec"]);
    let ty = spec
        .entry("type")
        .or_insert(json!("ClusterIP"))
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    if ty != "ExternalName" && !spec.contains_key("clusterIP") {
        // Deterministic per name would be nicer; uniqueness is all clients rely on.
        let ip = format!("10.96.{}.{}", rand::random::<u8>(), rand::random::<u8>().max(1));
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    spec.entry("sessionAffinity").or_insert(json!("None"));
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
}

fn crd_status(obj: &mut Value) {
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"] == json!(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let now = now_rfc3339();
    let status = ensure_object(obj, &["status"]);
    status.insert("acceptedNames".into(), names);
    status.insert("storedVersions".into(), json!(stored));
    status.insert(
        "conditions".into(),
        json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
        ]),
    );
}

const SUBDOMAIN_HELP: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_HELP: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    s.len() <= 63 && is_label_shaped(s)
}

/// One dot-separated part of a DNS-1123 subdomain: a label's characters, without the label's 63-byte
/// limit (upstream's subdomain regex has none; a ReplicaSet of a 54-character Deployment is valid).
fn is_label_shaped(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks `metadata.name` the way the API server does (DNS-1123 subdomain; namespaces and services:
/// DNS-1123 label). Returns the 422 on failure.
pub fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let label_only = rt.group.is_empty() && matches!(rt.plural.as_str(), "namespaces" | "services");
    let problem = if rt.group == "rbac.authorization.k8s.io" {
        // RBAC objects only need to be a valid path segment (`cert-manager:leaderelection` is a real name).
        match name {
            "." => Some("may not be '.'"),
            ".." => Some("may not be '..'"),
            _ if name.contains('/') => Some("may not contain '/'"),
            _ if name.contains('%') => Some("may not contain '%'"),
            _ => None,
        }
    } else if label_only {
        (!is_label(name)).then_some(LABEL_HELP)
    } else {
        (name.len() > 253 || !name.split('.').all(is_label_shaped)).then_some(SUBDOMAIN_HELP)
    };
    match problem {
        None => Ok(()),
        Some(help) => Err(ApiError::invalid(
            rt,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {name:?}: {help}"),
                field: "metadata.name".into(),
            }],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn secrets_fold_string_data() {
        let rt = Registry::builtin().lookup("secrets").unwrap();
        let mut s =
            json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"password": "hunter2"}});
        on_write(&rt, &mut s);
        assert_eq!(s["data"], json!({"a": "eA==", "password": "aHVudGVyMg=="}));
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn names_are_validated() {
        let reg = Registry::builtin();
        assert!(validate_name(&reg.lookup("secrets").unwrap(), "a.b-c").is_ok());
        let err = validate_name(&reg.lookup("secrets").unwrap(), "Bad_Name").unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .starts_with("Secret \"Bad_Name\" is invalid: metadata.name: Invalid value")
        );
        assert!(validate_name(&reg.lookup("namespaces").unwrap(), "a.b").is_err());
        let long = format!("{}-698c454699", "x".repeat(54));
        assert!(validate_name(&reg.lookup("replicasets").unwrap(), &long).is_ok());
        assert!(validate_name(&reg.lookup("services").unwrap(), &long).is_err());
        assert!(validate_name(&reg.lookup("roles").unwrap(), "cert-manager:leaderelection").is_ok());
        assert!(validate_name(&reg.lookup("clusterroles").unwrap(), "a/b").is_err());
    }
}

//! Validating built-in Kubernetes objects against their k8s-openapi types.
//!
//! The object is deserialized into its typed struct (type errors come with the field path), then
//! serialized back; any field of the original that the round trip lost is a field the type does not
//! have: a typo or an API that moved. Nulls are ignored (the API server drops them too). Objects of
//! built-in API groups whose version/kind k8s-openapi (Kubernetes 1.33) does not have are reported as
//! unknown APIs (for example removed beta versions).

use k8s_openapi::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::crds::Violation;

/// Validate a built-in object. `None` when its `apiVersion`/`kind` is not a type this module knows.
pub fn validate(object: &Value) -> Option<Vec<Violation>> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    macro_rules! types {
        ($($ty:ty),* $(,)?) => {
            $(if api_version == <$ty as Resource>::API_VERSION && kind == <$ty as Resource>::KIND {
                return Some(check::<$ty>(object));
            })*
        };
    }
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps, autoscaling::v1 as autoscaling1,
        autoscaling::v2 as autoscaling2, batch::v1 as batch, coordination::v1 as coordination,
        core::v1 as core, discovery::v1 as discovery, networking::v1 as networking, policy::v1 as policy,
        rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    types![
        core::ConfigMap,
        core::Secret,
        core::Service,
        core::ServiceAccount,
        core::Namespace,
        core::PersistentVolumeClaim,
        core::PersistentVolume,
        core::Pod,
        core::Endpoints,
        core::LimitRange,
        core::ResourceQuota,
        core::ReplicationController,
        core::PodTemplate,
        apps::Deployment,
        apps::StatefulSet,
        apps::DaemonSet,
        apps::ReplicaSet,
        apps::ControllerRevision,
        batch::Job,
        batch::CronJob,
        autoscaling1::HorizontalPodAutoscaler,
        autoscaling2::HorizontalPodAutoscaler,
        policy::PodDisruptionBudget,
        networking::Ingress,
        networking::IngressClass,
        networking::NetworkPolicy,
        rbac::Role,
        rbac::RoleBinding,
        rbac::ClusterRole,
        rbac::ClusterRoleBinding,
        apiextensions::CustomResourceDefinition,
        storage::StorageClass,
        storage::CSIDriver,
        storage::VolumeAttachment,
        scheduling::PriorityClass,
        admission::ValidatingWebhookConfiguration,
        admission::MutatingWebhookConfiguration,
        admission::ValidatingAdmissionPolicy,
        admission::ValidatingAdmissionPolicyBinding,
        apiregistration::APIService,
        coordination::Lease,
        discovery::EndpointSlice,
    ];
    None
}

/// True for API groups Kubernetes itself serves (core, `apps`, `*.k8s.io`, …): a kind there that
/// [`validate`] does not know is an unknown or removed API, not a custom resource.
pub fn is_builtin_group(api_version: &str) -> bool {
    match api_version.rsplit_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

fn check<T: DeserializeOwned + Serialize>(object: &Value) -> Vec<Violation> {
    let typed: T = match serde_path_to_error::deserialize(object) {
        Ok(typed) => typed,
        Err(err) => {
            let path = err.path().to_string();
            return vec![Violation {
                message: format!("{path}: {}", err.inner()),
                path,
                fix: "give the field the type Kubernetes expects (kubectl explain shows it)".into(),
            }];
        }
    };
    let round_trip = match serde_json::to_value(&typed) {
        Ok(value) => value,
        Err(err) => {
            return vec![Violation {
                path: "(root)".into(),
                message: err.to_string(),
                fix: String::new(),
            }];
        }
    };
    let mut lost = Vec::new();
    lost_fields(object, &round_trip, String::new(), &mut lost);
    lost.into_iter()
        .map(|path| Violation {
            message: format!("unknown field `{path}` (not part of the Kubernetes API type)"),
            fix: "remove it or fix its spelling or indentation (kubectl explain shows the valid fields)"
                .into(),
            path,
        })
        .collect()
}

/// Paths present (non-null) in `original` but missing from `round_trip`.
fn lost_fields(original: &Value, round_trip: &Value, path: String, lost: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(original), Value::Object(round_trip)) => {
            for (key, value) in original {
                if value.is_null() {
                    continue;
                }
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match round_trip.get(key) {
                    Some(kept) => lost_fields(value, kept, child, lost),
                    None => lost.push(child),
                }
            }
        }
        (Value::Array(original), Value::Array(round_trip)) => {
            for (index, (value, kept)) in original.iter().zip(round_trip).enumerate() {
                lost_fields(value, kept, format!("{path}[{index}]"), lost);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "backend", "labels": {"a": "b"}, "creationTimestamp": null},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container]}}},
        })
    }

    #[test]
    fn valid_objects_pass_the_round_trip() {
        let found = validate(&deployment(json!({"name": "c", "image": "x:1", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}, "env": [{"name": "A", "value": "1"}]}))).unwrap();
        assert_eq!(found, vec![]);
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "aGVsbG8="}, "type": "Opaque"});
        assert_eq!(validate(&secret).unwrap(), vec![]);
    }

    #[test]
    fn unknown_fields_are_found_with_their_path() {
        let found = validate(&deployment(
            json!({"name": "c", "image": "x:1", "imagePullPolicyy": "Always"}),
        ))
        .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "spec.template.spec.containers[0].imagePullPolicyy");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let mut object = deployment(json!({"name": "c", "image": "x:1"}));
        object["spec"]["replicas"] = json!("two");
        let found = validate(&object).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.replicas", "{found:?}");
    }

    #[test]
    fn builtin_groups_and_unknown_kinds() {
        assert!(validate(&json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress"})).is_none());
        assert!(is_builtin_group("extensions/v1beta1"));
        assert!(is_builtin_group("v1"));
        assert!(is_builtin_group("networking.k8s.io/v1beta1"));
        assert!(!is_builtin_group("postgresql.cnpg.io/v1"));
    }
}

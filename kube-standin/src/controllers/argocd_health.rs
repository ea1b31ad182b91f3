//! Argo CD's resource health, as gitops-engine (`pkg/health`) and Argo CD's built-in Lua checks
//! (`resource_customizations/<group>/<Kind>/health.lua`) judge it, for the kinds the platform deploys.
//! A kind without a check does not affect the Application's health (Argo CD leaves its health empty).

use serde_json::Value;

use crate::util::get_str;

/// Argo CD's health statuses, in the order Argo CD ranks them (later is worse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Every check passes.
    Healthy,
    /// Paused or suspended on purpose.
    Suspended,
    /// Not there yet.
    Progressing,
    /// The resource does not exist.
    Missing,
    /// Failed.
    Degraded,
}

impl HealthStatus {
    /// The word Argo CD writes.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "Healthy",
            HealthStatus::Suspended => "Suspended",
            HealthStatus::Progressing => "Progressing",
            HealthStatus::Missing => "Missing",
            HealthStatus::Degraded => "Degraded",
        }
    }
}

/// A resource's health and message.
pub type Health = (HealthStatus, String);

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn condition_is(obj: &Value, type_: &str, status: &str) -> bool {
    condition(obj, type_).and_then(|c| get_str(c, &["status"])) == Some(status)
}

fn message_of(obj: &Value, type_: &str) -> String {
    condition(obj, type_)
        .and_then(|c| get_str(c, &["message"]).or_else(|| get_str(c, &["reason"])))
        .unwrap_or("")
        .to_string()
}

fn healthy(message: impl Into<String>) -> Option<Health> {
    Some((HealthStatus::Healthy, message.into()))
}

fn progressing(message: impl Into<String>) -> Option<Health> {
    Some((HealthStatus::Progressing, message.into()))
}

fn degraded(message: impl Into<String>) -> Option<Health> {
    Some((HealthStatus::Degraded, message.into()))
}

/// The health of one live object, or `None` when Argo CD has no check for its kind.
pub fn of(obj: &Value) -> Option<Health> {
    let api_version = get_str(obj, &["apiVersion"]).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = get_str(obj, &["kind"]).unwrap_or("");
    let stale = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > int(obj, "/status/observedGeneration"));
    match (group, kind) {
        ("apps", "Deployment") => {
            if obj.pointer("/spec/paused") == Some(&Value::Bool(true)) {
                return Some((HealthStatus::Suspended, "Deployment is paused".into()));
            }
            if stale {
                return progressing(
                    "Waiting for rollout to finish: observed deployment generation less than desired generation",
                );
            }
            if condition(obj, "Progressing").and_then(|c| get_str(c, &["reason"]))
                == Some("ProgressDeadlineExceeded")
            {
                return degraded(format!(
                    "Deployment {:?} exceeded its progress deadline",
                    get_str(obj, &["metadata", "name"]).unwrap_or("")
                ));
            }
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let updated = int(obj, "/status/updatedReplicas");
            let total = int(obj, "/status/replicas");
            let available = int(obj, "/status/availableReplicas");
            if updated < want {
                progressing(format!(
                    "Waiting for rollout to finish: {updated} out of {want} new replicas have been updated..."
                ))
            } else if total > updated {
                progressing(format!(
                    "Waiting for rollout to finish: {} old replicas are pending termination...",
                    total - updated
                ))
            } else if available < updated {
                progressing(format!(
                    "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
                ))
            } else {
                healthy("")
            }
        }
        ("apps", "StatefulSet") => {
            if int(obj, "/status/observedGeneration") == 0 || stale {
                return progressing("Waiting for statefulset spec update to be observed...");
            }
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let ready = int(obj, "/status/readyReplicas");
            if ready < want {
                return progressing(format!("Waiting for {} pods to be ready...", want - ready));
            }
            let (update, current) = (
                get_str(obj, &["status", "updateRevision"]),
                get_str(obj, &["status", "currentRevision"]),
            );
            if update.is_some() && update != current {
                return progressing("waiting for statefulset rolling update to complete");
            }
            healthy(format!(
                "statefulset rolling update complete {ready} pods at revision {}...",
                current.unwrap_or("")
            ))
        }
        ("apps", "DaemonSet") => {
            if stale {
                return progressing(
                    "Waiting for rollout to finish: observed daemon set generation less than desired generation",
                );
            }
            let want = int(obj, "/status/desiredNumberScheduled");
            let updated = int(obj, "/status/updatedNumberScheduled");
            let available = int(obj, "/status/numberAvailable");
            if updated < want {
                progressing(format!(
                    "Waiting for daemon set {:?} rollout to finish: {updated} out of {want} new pods have been updated...",
                    get_str(obj, &["metadata", "name"]).unwrap_or("")
                ))
            } else if available < want {
                progressing(format!(
                    "Waiting for daemon set {:?} rollout to finish: {available} of {want} updated pods are available...",
                    get_str(obj, &["metadata", "name"]).unwrap_or("")
                ))
            } else {
                healthy("")
            }
        }
        ("apps", "ReplicaSet") => {
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            if stale || int(obj, "/status/availableReplicas") < want {
                progressing(format!(
                    "Waiting for rollout to finish: {} out of {want} new replicas are available...",
                    int(obj, "/status/availableReplicas")
                ))
            } else {
                healthy("")
            }
        }
        ("", "Pod") => match get_str(obj, &["status", "phase"]).unwrap_or("Pending") {
            "Succeeded" => healthy(""),
            "Failed" => degraded(get_str(obj, &["status", "message"]).unwrap_or("").to_string()),
            "Running" if condition_is(obj, "Ready", "True") => healthy(""),
            _ => progressing(get_str(obj, &["status", "message"]).unwrap_or("").to_string()),
        },
        ("", "PersistentVolumeClaim") => match get_str(obj, &["status", "phase"]) {
            Some("Bound") => healthy(""),
            Some("Lost") => degraded(""),
            _ => progressing(""),
        },
        ("", "Service") if get_str(obj, &["spec", "type"]) == Some("LoadBalancer") => {
            if obj.pointer("/status/loadBalancer/ingress/0").is_some() {
                healthy("")
            } else {
                progressing("")
            }
        }
        ("batch", "Job") => {
            if condition_is(obj, "Failed", "True") {
                degraded(message_of(obj, "Failed"))
            } else if condition_is(obj, "Complete", "True") {
                healthy(message_of(obj, "Complete"))
            } else if obj.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
                Some((HealthStatus::Suspended, "job is suspended".into()))
            } else {
                progressing("")
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") | ("apiregistration.k8s.io", "APIService") => {
            let type_ = if kind == "APIService" {
                "Available"
            } else {
                "ScalingActive"
            };
            match condition(obj, type_).and_then(|c| get_str(c, &["status"])) {
                Some("False") if kind == "APIService" => progressing(message_of(obj, type_)),
                _ => healthy(""),
            }
        }
        ("argoproj.io", "Application") => {
            let status = get_str(obj, &["status", "health", "status"]).unwrap_or("");
            let message = get_str(obj, &["status", "health", "message"])
                .unwrap_or("")
                .to_string();
            match status {
                "Healthy" => healthy(message),
                "Degraded" => degraded(message),
                "Suspended" => Some((HealthStatus::Suspended, message)),
                "Missing" => Some((HealthStatus::Missing, message)),
                _ => progressing(message),
            }
        }
        // resource_customizations/postgresql.cnpg.io/Cluster/health.lua
        ("postgresql.cnpg.io", "Cluster") => {
            let phase = get_str(obj, &["status", "phase"]).unwrap_or("");
            match phase {
                "Cluster in healthy state" => healthy(phase),
                "" => progressing("Waiting for the cluster to be created"),
                p if p.contains("failed") || p.contains("Failed") => degraded(p),
                p => progressing(p),
            }
        }
        // Ready-condition kinds: cert-manager, Keycloak, the RabbitMQ topology objects, sealed secrets
        // (Synced), RabbitmqCluster (AllReplicasReady + ClusterAvailable).
        ("rabbitmq.com", "RabbitmqCluster") => {
            if condition_is(obj, "ReconcileSuccess", "False") {
                degraded(message_of(obj, "ReconcileSuccess"))
            } else if condition_is(obj, "AllReplicasReady", "True")
                && condition_is(obj, "ClusterAvailable", "True")
            {
                healthy("")
            } else {
                progressing("Waiting for the RabbitMQ cluster to be available")
            }
        }
        ("bitnami.com", "SealedSecret") => {
            match condition(obj, "Synced").and_then(|c| get_str(c, &["status"])) {
                Some("True") => healthy(""),
                Some("False") => degraded(message_of(obj, "Synced")),
                _ => progressing(""),
            }
        }
        ("cert-manager.io", "Certificate" | "Issuer" | "ClusterIssuer")
        | ("k8s.keycloak.org", "Keycloak" | "KeycloakRealmImport")
        | ("rabbitmq.com", _) => match condition(obj, "Ready").and_then(|c| get_str(c, &["status"])) {
            Some("True") => healthy(message_of(obj, "Ready")),
            Some("False") if kind != "Keycloak" => degraded(message_of(obj, "Ready")),
            _ => progressing(message_of(obj, "Ready")),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn workloads_wait_for_their_controllers() {
        let fresh = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2}});
        assert_eq!(of(&fresh).unwrap().0, HealthStatus::Progressing);
        let done = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(of(&done).unwrap().0, HealthStatus::Healthy);
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 1, "readyReplicas": 1}});
        assert_eq!(of(&sts).unwrap().1, "Waiting for 2 pods to be ready...");
        assert!(of(&json!({"apiVersion": "v1", "kind": "ConfigMap"})).is_none());
    }

    #[test]
    fn operator_resources_by_their_own_status() {
        let cnpg = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "status": {"phase": "Cluster in healthy state"}});
        assert_eq!(of(&cnpg).unwrap().0, HealthStatus::Healthy);
        let user = json!({"apiVersion": "rabbitmq.com/v1beta1", "kind": "User", "status": {"conditions": [{"type": "Ready", "status": "False", "message": "no cluster"}]}});
        assert_eq!(of(&user).unwrap(), (HealthStatus::Degraded, "no cluster".into()));
        assert!(
            HealthStatus::Degraded > HealthStatus::Progressing
                && HealthStatus::Progressing > HealthStatus::Healthy
        );
    }
}

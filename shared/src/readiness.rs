//! Readiness rules: is this object ready, and if not, why — as small pure functions over the object's JSON.
//!
//! Each rule reads only the fields its operator or controller writes (see `shared/reference/operators.md`)
//! and returns a [`Readiness`]: a flag plus the message a person needs — the failing condition's own
//! message when there is one. The rules never talk to a cluster, so `db status` and `env` use them on objects
//! they fetched however they like, and waits wrap them in `await_condition` under a user-visible timeout.
//!
//! Objects are taken as `serde_json::Value` (whole objects: `metadata`, `spec`, `status`) so that typed
//! k8s-openapi objects, `DynamicObject`s and YAML fixtures all fit after `serde_json::to_value`.

use serde::Serialize;
use serde_json::Value;

/// The verdict of a readiness rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Readiness {
    /// True when the object is ready for use.
    pub ready: bool,
    /// Why: the failing condition's message when not ready, a short summary (plus warnings) when ready.
    pub message: String,
}

impl Readiness {
    /// A ready verdict with a summary.
    pub fn ready(message: impl Into<String>) -> Self {
        Readiness {
            ready: true,
            message: message.into(),
        }
    }

    /// A not-ready verdict with the reason.
    pub fn not_ready(message: impl Into<String>) -> Self {
        Readiness {
            ready: false,
            message: message.into(),
        }
    }
}

/// The exact phase CloudNativePG writes when a cluster is healthy (`PhaseHealthy`).
pub const CNPG_PHASE_HEALTHY: &str = "Cluster in healthy state";

/// The pod label redis-operator sets from the live `ROLE` reply.
pub const REDIS_ROLE_LABEL: &str = "redis-role";

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}

fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// The condition of `type_` in `status.conditions`, if present.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// True when the condition `type_` has status `"True"`.
pub fn is_condition_true(obj: &Value, type_: &str) -> bool {
    condition(obj, type_)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// `TYPE=STATUS (reason): message` for a condition that is not `True`, or `TYPE missing`.
fn describe_condition(obj: &Value, type_: &str) -> String {
    let Some(cond) = condition(obj, type_) else {
        return format!("condition {type_} not reported yet");
    };
    let status = cond.get("status").and_then(Value::as_str).unwrap_or("Unknown");
    let reason = cond
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    let message = cond
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    let mut text = format!("{type_}={status}");
    if let Some(reason) = reason {
        text.push_str(&format!(" ({reason})"));
    }
    if let Some(message) = message {
        text.push_str(&format!(": {message}"));
    }
    text
}

/// `Some(message)` when `status.observedGeneration` is present and behind `metadata.generation`.
fn stale_generation(obj: &Value, what: &str) -> Option<String> {
    let generation = int_at(obj, "/metadata/generation")?;
    let observed = int_at(obj, "/status/observedGeneration")?;
    (observed < generation).then(|| {
        format!("{what} has not processed the latest spec yet (observedGeneration {observed} < generation {generation})")
    })
}

/// CloudNativePG `Cluster`: `Ready=True`, phase `Cluster in healthy state`, `readyInstances == spec.instances`
/// and `currentPrimary == targetPrimary`. Not ready shows `phase: phaseReason` verbatim; hibernation and
/// fencing are flagged.
#[must_use]
pub fn is_cnpg_cluster_ready(cluster: &Value) -> Readiness {
    let annotations = cluster.pointer("/metadata/annotations");
    if annotations
        .and_then(|a| a.get("cnpg.io/hibernation"))
        .and_then(Value::as_str)
        == Some("on")
    {
        return Readiness::not_ready(
            "hibernated (annotation cnpg.io/hibernation=on): pods are deleted, PVCs kept",
        );
    }
    let fenced = annotations
        .and_then(|a| a.get("cnpg.io/fencedInstances"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let fence_note = match fenced.trim() {
        "" | "[]" => None,
        list => Some(format!(
            "fenced instances {list} (annotation cnpg.io/fencedInstances)"
        )),
    };
    let Some(phase) = str_at(cluster, "/status/phase") else {
        return Readiness::not_ready(
            "no status yet: the CloudNativePG operator has not reconciled this Cluster",
        );
    };
    let desired = int_at(cluster, "/spec/instances")
        .or_else(|| int_at(cluster, "/status/instances"))
        .unwrap_or(0);
    let ready = int_at(cluster, "/status/readyInstances").unwrap_or(0);
    let current = str_at(cluster, "/status/currentPrimary");
    let target = str_at(cluster, "/status/targetPrimary");
    let phase_text = match str_at(cluster, "/status/phaseReason") {
        Some(reason) => format!("{phase}: {reason}"),
        None => phase.to_string(),
    };
    if phase != CNPG_PHASE_HEALTHY {
        return Readiness::not_ready(phase_text);
    }
    if !is_condition_true(cluster, "Ready") {
        return Readiness::not_ready(describe_condition(cluster, "Ready"));
    }
    if ready != desired {
        return Readiness::not_ready(format!("{ready}/{desired} instances ready ({phase_text})"));
    }
    if current != target {
        return Readiness::not_ready(format!(
            "switchover in progress: currentPrimary {} != targetPrimary {}",
            current.unwrap_or("(none)"),
            target.unwrap_or("(none)")
        ));
    }
    if let Some(note) = fence_note {
        return Readiness::not_ready(note);
    }
    Readiness::ready(phase)
}

/// RabbitMQ cluster-operator `RabbitmqCluster`: `AllReplicasReady=True` ∧ `ClusterAvailable=True` ∧
/// `status.observedGeneration == metadata.generation`. Ready clusters still carry warnings
/// (`NoWarnings=False`, `ReconcileSuccess=False`, a `quorumStatus` not starting with `ok`) in the message.
#[must_use]
pub fn is_rabbitmq_cluster_ready(cluster: &Value) -> Readiness {
    if cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Readiness::not_ready(
            "no status yet: the RabbitMQ cluster operator has not reconciled this RabbitmqCluster",
        );
    }
    for type_ in ["AllReplicasReady", "ClusterAvailable"] {
        if !is_condition_true(cluster, type_) {
            return Readiness::not_ready(describe_condition(cluster, type_));
        }
    }
    if let Some(stale) = stale_generation(cluster, "the RabbitMQ cluster operator") {
        return Readiness::not_ready(stale);
    }
    let mut warnings = Vec::new();
    for type_ in ["NoWarnings", "ReconcileSuccess"] {
        if condition(cluster, type_)
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            == Some("False")
        {
            warnings.push(describe_condition(cluster, type_));
        }
    }
    if let Some(quorum) = str_at(cluster, "/status/quorumStatus").filter(|q| !q.starts_with("ok")) {
        warnings.push(format!("quorumStatus: {quorum}"));
    }
    if warnings.is_empty() {
        Readiness::ready("AllReplicasReady, ClusterAvailable")
    } else {
        Readiness::ready(format!("ready; warning: {}", warnings.join("; ")))
    }
}

/// StatefulSet ready counts: (`status.readyReplicas`, `spec.replicas`, default 1).
pub fn statefulset_counts(sts: &Value) -> (i64, i64) {
    (
        int_at(sts, "/status/readyReplicas").unwrap_or(0),
        int_at(sts, "/spec/replicas").unwrap_or(1),
    )
}

/// redis-operator `RedisReplication`: its StatefulSet has all replicas ready, exactly one of its pods is
/// labelled `redis-role=master`, and `status.masterNode` names that pod. `statefulset` is the replication's
/// StatefulSet (same name), `pods` its pods (any extra pods are ignored by name prefix).
#[must_use]
pub fn is_redis_replication_ready(
    replication: &Value,
    statefulset: Option<&Value>,
    pods: &[Value],
) -> Readiness {
    let name = str_at(replication, "/metadata/name").unwrap_or("redis");
    let Some(sts) = statefulset else {
        return Readiness::not_ready(format!(
            "StatefulSet {name} not found: the redis-operator has not created it (is the operator running?)"
        ));
    };
    let (ready, desired) = statefulset_counts(sts);
    if ready < desired {
        return Readiness::not_ready(format!("StatefulSet {name}: {ready}/{desired} pods ready"));
    }
    let prefix = format!("{name}-");
    let masters: Vec<&str> = pods
        .iter()
        .filter(|pod| str_at(pod, "/metadata/name").is_some_and(|n| n.starts_with(&prefix)))
        .filter(|pod| {
            pod.pointer("/metadata/labels")
                .and_then(|l| l.get(REDIS_ROLE_LABEL))
                .and_then(Value::as_str)
                == Some("master")
        })
        .filter_map(|pod| str_at(pod, "/metadata/name"))
        .collect();
    let Some(master_node) = str_at(replication, "/status/masterNode") else {
        return Readiness::not_ready("status.masterNode is empty: no master elected yet");
    };
    match masters.as_slice() {
        [] => Readiness::not_ready(format!(
            "no pod labelled {REDIS_ROLE_LABEL}=master (status.masterNode is {master_node})"
        )),
        [only] if *only == master_node => {
            Readiness::ready(format!("master {master_node}, {ready}/{desired} pods ready"))
        }
        [only] => Readiness::not_ready(format!(
            "status.masterNode is {master_node} but pod {only} is labelled {REDIS_ROLE_LABEL}=master (failover in progress?)"
        )),
        many => Readiness::not_ready(format!(
            "{} pods labelled {REDIS_ROLE_LABEL}=master: {}",
            many.len(),
            many.join(", ")
        )),
    }
}

/// A StatefulSet-backed component without status of its own (redis-operator `RedisSentinel`): all replicas
/// ready. `what` names it in messages, e.g. `StatefulSet redis-sentinel-sentinel`.
#[must_use]
pub fn is_statefulset_pods_ready(statefulset: Option<&Value>, what: &str) -> Readiness {
    let Some(sts) = statefulset else {
        return Readiness::not_ready(format!("{what} not found"));
    };
    let (ready, desired) = statefulset_counts(sts);
    if ready < desired {
        Readiness::not_ready(format!("{what}: {ready}/{desired} pods ready"))
    } else {
        Readiness::ready(format!("{ready}/{desired} pods ready"))
    }
}

/// Keycloak operator `Keycloak`: `Ready=True`, `HasErrors` not `True`, and the conditions are current.
#[must_use]
pub fn is_keycloak_ready(keycloak: &Value) -> Readiness {
    if is_condition_true(keycloak, "HasErrors") {
        return Readiness::not_ready(describe_condition(keycloak, "HasErrors"));
    }
    if !is_condition_true(keycloak, "Ready") {
        return Readiness::not_ready(describe_condition(keycloak, "Ready"));
    }
    let generation = int_at(keycloak, "/metadata/generation");
    let observed = condition(keycloak, "Ready")
        .and_then(|c| c.get("observedGeneration"))
        .and_then(Value::as_i64)
        .or_else(|| int_at(keycloak, "/status/observedGeneration"));
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Readiness::not_ready(format!(
            "the Keycloak operator has not processed the latest spec yet (observedGeneration {observed} < generation {generation})"
        ));
    }
    if is_condition_true(keycloak, "RollingUpdate") {
        return Readiness::not_ready(describe_condition(keycloak, "RollingUpdate"));
    }
    Readiness::ready("Ready")
}

/// Whether an Application's status is about its current source: Argo CD records what it compared in
/// `status.sync.comparedTo` (nothing recorded counts as current).
#[must_use]
pub fn argocd_status_is_current(application: &Value) -> bool {
    let compared = application.pointer("/status/sync/comparedTo/source");
    compared.is_none() || compared == application.pointer("/spec/source")
}

/// Argo CD's `ComparisonError` (or `InvalidSpecError`) message on an Application, when it concerns the
/// Application's current source: the source cannot be rendered.
#[must_use]
pub fn argocd_comparison_error(application: &Value) -> Option<&str> {
    if !argocd_status_is_current(application) {
        return None;
    }
    application
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| matches!(c["type"].as_str(), Some("ComparisonError" | "InvalidSpecError")))?["message"]
        .as_str()
}

/// Argo CD `Application`: sync `Synced` and health `Healthy`; otherwise both states plus the most telling
/// message (the failed operation's, an error condition's, or the health message).
#[must_use]
pub fn is_argocd_application_ready(application: &Value) -> Readiness {
    let sync = str_at(application, "/status/sync/status").unwrap_or("Unknown");
    let health = str_at(application, "/status/health/status").unwrap_or("Unknown");
    // A refresh asked for (`argocd.argoproj.io/refresh`, removed by Argo CD once done) is not done yet:
    // the status may predate the repository's current content.
    if let Some(kind) = str_at(application, "/metadata/annotations/argocd.argoproj.io~1refresh") {
        return Readiness::not_ready(format!(
            "sync {sync}, health {health}: Argo CD has not finished the {kind} refresh asked for"
        ));
    }
    // A status about an earlier spec says nothing about this one.
    if !argocd_status_is_current(application) {
        return Readiness::not_ready(format!(
            "sync {sync}, health {health} for the previous source: Argo CD has not compared the new one yet"
        ));
    }
    if sync == "Synced" && health == "Healthy" {
        return Readiness::ready("Synced, Healthy");
    }
    let operation = match (
        str_at(application, "/status/operationState/phase"),
        str_at(application, "/status/operationState/message"),
    ) {
        (Some(phase), Some(message)) if phase != "Succeeded" => Some(format!("operation {phase}: {message}")),
        _ => None,
    };
    let condition = application
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conditions| {
            conditions.iter().find_map(|c| {
                let type_ = c.get("type").and_then(Value::as_str)?;
                let message = c.get("message").and_then(Value::as_str)?;
                Some(format!("{type_}: {message}"))
            })
        });
    let health_message = str_at(application, "/status/health/message").map(str::to_string);
    let detail = operation.or(condition).or(health_message);
    let mut text = format!("sync {sync}, health {health}");
    if let Some(detail) = detail {
        text.push_str(&format!(": {detail}"));
    }
    Readiness::not_ready(text)
}

/// Deployment or StatefulSet rollout complete, as `kubectl rollout status` judges it: the controller saw the
/// latest spec and every replica is updated and ready (Deployment: available; no old replicas left).
#[must_use]
pub fn is_rollout_complete(workload: &Value) -> Readiness {
    let kind = str_at(workload, "/kind").unwrap_or("Deployment");
    let name = str_at(workload, "/metadata/name").unwrap_or("?");
    let what = format!("{kind} {name}");
    if let Some(stale) = stale_generation(workload, &format!("the {kind} controller")) {
        return Readiness::not_ready(stale);
    }
    if int_at(workload, "/status/observedGeneration").is_none() {
        return Readiness::not_ready(format!("{what}: no status yet"));
    }
    let desired = int_at(workload, "/spec/replicas").unwrap_or(1);
    let updated = int_at(workload, "/status/updatedReplicas").unwrap_or(0);
    let ready = int_at(workload, "/status/readyReplicas").unwrap_or(0);
    if kind == "Deployment" {
        if let Some(progressing) = condition(workload, "Progressing")
            && progressing.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        {
            return Readiness::not_ready(format!("{what}: {}", describe_condition(workload, "Progressing")));
        }
        let total = int_at(workload, "/status/replicas").unwrap_or(0);
        let available = int_at(workload, "/status/availableReplicas").unwrap_or(0);
        if updated < desired {
            return Readiness::not_ready(format!("{what}: {updated}/{desired} replicas updated"));
        }
        if total > updated {
            return Readiness::not_ready(format!(
                "{what}: {} old replicas pending termination",
                total - updated
            ));
        }
        if available < updated {
            return Readiness::not_ready(format!(
                "{what}: {available}/{updated} updated replicas available"
            ));
        }
        return Readiness::ready(format!("{available}/{desired} available"));
    }
    if ready < desired {
        return Readiness::not_ready(format!("{what}: {ready}/{desired} pods ready"));
    }
    let rolling = str_at(workload, "/spec/updateStrategy/type").unwrap_or("RollingUpdate") == "RollingUpdate";
    if rolling {
        let current = str_at(workload, "/status/currentRevision");
        let update = str_at(workload, "/status/updateRevision");
        if updated < desired || (update.is_some() && current != update) {
            return Readiness::not_ready(format!(
                "{what}: {updated}/{desired} pods updated to the new revision"
            ));
        }
    }
    Readiness::ready(format!("{ready}/{desired} ready"))
}

/// Pod: phase `Running` and condition `Ready=True`.
#[must_use]
pub fn is_pod_ready(pod: &Value) -> Readiness {
    let phase = str_at(pod, "/status/phase").unwrap_or("Unknown");
    if phase != "Running" {
        return Readiness::not_ready(format!("pod phase {phase}"));
    }
    if !is_condition_true(pod, "Ready") {
        return Readiness::not_ready(describe_condition(pod, "Ready"));
    }
    Readiness::ready("Running")
}

/// The rule for an object by its `apiVersion` group and `kind`, or `None` for kinds without one.
#[must_use]
pub fn for_object(obj: &Value) -> Option<Readiness> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map(|(group, _)| group).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    Some(match (group, kind) {
        ("postgresql.cnpg.io", "Cluster") => is_cnpg_cluster_ready(obj),
        ("rabbitmq.com", "RabbitmqCluster") => is_rabbitmq_cluster_ready(obj),
        ("k8s.keycloak.org", "Keycloak") => is_keycloak_ready(obj),
        ("argoproj.io", "Application") => is_argocd_application_ready(obj),
        ("apps", "Deployment" | "StatefulSet") => is_rollout_complete(obj),
        ("", "Pod") => is_pod_ready(obj),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap()
    }

    const CNPG_HEALTHY: &str = r#"
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: database, namespace: staging, generation: 1}
spec: {instances: 3}
status:
  instances: 3
  readyInstances: 3
  phase: Cluster in healthy state
  currentPrimary: database-1
  targetPrimary: database-1
  instanceNames: [database-1, database-2, database-3]
  instancesStatus: {healthy: [database-1, database-2, database-3]}
  conditions:
  - {type: Ready, status: "True", reason: ClusterIsReady, message: Cluster is Ready, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: ContinuousArchiving, status: "True", reason: ContinuousArchivingSuccess, message: Continuous archiving is working}
"#;

    #[test]
    fn cnpg_healthy_cluster_is_ready() {
        let verdict = is_cnpg_cluster_ready(&yaml(CNPG_HEALTHY));
        assert_eq!(verdict, Readiness::ready("Cluster in healthy state"));
        assert_eq!(for_object(&yaml(CNPG_HEALTHY)), Some(verdict));
    }

    #[test]
    fn cnpg_phase_and_reason_are_shown_verbatim() {
        let text = CNPG_HEALTHY
            .replace(
                "phase: Cluster in healthy state",
                "phase: Creating a new replica\n  phaseReason: Creating replica database-3-join",
            )
            .replace("readyInstances: 3", "readyInstances: 2")
            .replace(
                r#"status: "True", reason: ClusterIsReady, message: Cluster is Ready"#,
                r#"status: "False", reason: ClusterIsNotReady, message: Cluster Is Not Ready"#,
            );
        let verdict = is_cnpg_cluster_ready(&yaml(&text));
        assert!(!verdict.ready);
        assert_eq!(
            verdict.message,
            "Creating a new replica: Creating replica database-3-join"
        );
    }

    #[test]
    fn cnpg_counts_switchover_and_fencing() {
        let short = CNPG_HEALTHY.replace("readyInstances: 3", "readyInstances: 2");
        assert_eq!(
            is_cnpg_cluster_ready(&yaml(&short)).message,
            "2/3 instances ready (Cluster in healthy state)"
        );
        let switching = CNPG_HEALTHY.replace("targetPrimary: database-1", "targetPrimary: database-2");
        let verdict = is_cnpg_cluster_ready(&yaml(&switching));
        assert!(!verdict.ready);
        assert!(
            verdict
                .message
                .contains("currentPrimary database-1 != targetPrimary database-2"),
            "{}",
            verdict.message
        );
        let fenced = CNPG_HEALTHY.replace(
            "generation: 1}",
            "generation: 1, annotations: {cnpg.io/fencedInstances: '[\"database-2\"]'}}",
        );
        assert!(
            is_cnpg_cluster_ready(&yaml(&fenced))
                .message
                .contains("fenced instances [\"database-2\"]")
        );
        let hibernated = CNPG_HEALTHY.replace(
            "generation: 1}",
            "generation: 1, annotations: {cnpg.io/hibernation: 'on'}}",
        );
        assert!(
            is_cnpg_cluster_ready(&yaml(&hibernated))
                .message
                .starts_with("hibernated")
        );
    }

    #[test]
    fn cnpg_without_status_blames_the_operator() {
        let verdict = is_cnpg_cluster_ready(&yaml("metadata: {name: database}\nspec: {instances: 3}\n"));
        assert!(!verdict.ready);
        assert!(
            verdict.message.contains("operator has not reconciled"),
            "{}",
            verdict.message
        );
    }

    const RABBIT_READY: &str = r#"
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata: {name: queue, namespace: staging, generation: 2}
spec: {replicas: 3}
status:
  observedGeneration: 2
  quorumStatus: ok
  defaultUser:
    secretReference: {name: queue-default-user, namespace: staging, keys: {username: username, password: password}}
    serviceReference: {name: queue, namespace: staging}
  conditions:
  - {type: AllReplicasReady, status: "True", reason: AllPodsAreReady, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: ClusterAvailable, status: "True", reason: AtLeastOneEndpointAvailable, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: NoWarnings, status: "True", reason: NoWarnings, lastTransitionTime: "2026-01-01T00:00:00Z"}
  - {type: ReconcileSuccess, status: "True", reason: Success, message: Finish reconciling, lastTransitionTime: "2026-01-01T00:00:00Z"}
"#;

    #[test]
    fn rabbitmq_ready_and_not_ready_with_the_condition_message() {
        assert_eq!(
            is_rabbitmq_cluster_ready(&yaml(RABBIT_READY)),
            Readiness::ready("AllReplicasReady, ClusterAvailable")
        );
        let text = RABBIT_READY.replace(
            r#"{type: AllReplicasReady, status: "True", reason: AllPodsAreReady,"#,
            r#"{type: AllReplicasReady, status: "False", reason: NotAllPodsReady, message: 1/3 Pods ready,"#,
        );
        let verdict = is_rabbitmq_cluster_ready(&yaml(&text));
        assert_eq!(
            verdict,
            Readiness::not_ready("AllReplicasReady=False (NotAllPodsReady): 1/3 Pods ready")
        );
    }

    #[test]
    fn rabbitmq_stale_generation_and_warnings() {
        let stale = RABBIT_READY.replace("generation: 2}", "generation: 3}");
        let verdict = is_rabbitmq_cluster_ready(&yaml(&stale));
        assert!(!verdict.ready);
        assert!(
            verdict.message.contains("observedGeneration 2 < generation 3"),
            "{}",
            verdict.message
        );
        let warn = RABBIT_READY.replace(
            "quorumStatus: ok",
            "quorumStatus: 'quorum-critical: queue-server-1'",
        );
        let verdict = is_rabbitmq_cluster_ready(&yaml(&warn));
        assert!(verdict.ready);
        assert!(
            verdict.message.contains("quorum-critical: queue-server-1"),
            "{}",
            verdict.message
        );
        let empty = is_rabbitmq_cluster_ready(&yaml("metadata: {name: queue}\nstatus: {}\n"));
        assert!(!empty.ready && empty.message.contains("no status yet"));
    }

    const REDIS_RR: &str = r#"
apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisReplication
metadata: {name: redis, namespace: staging}
spec:
  clusterSize: 3
  kubernetesConfig: {image: "quay.io/opstree/redis:v7.0.15", redisSecret: {name: redis-secret, key: password}}
status:
  masterNode: redis-0
  connectionInfo: {host: redis-master.staging.svc.cluster.local, port: 6379}
"#;
    const REDIS_STS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: redis, namespace: staging, generation: 1}
spec: {replicas: 3, serviceName: redis-headless}
status: {replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, observedGeneration: 1}
"#;

    fn redis_pods(master: &[&str]) -> Vec<Value> {
        (0..3)
            .map(|i| {
                let name = format!("redis-{i}");
                let role = if master.contains(&name.as_str()) { "master" } else { "slave" };
                yaml(&format!(
                    "metadata: {{name: {name}, labels: {{app: redis, redis_setup_type: replication, role: replication, redis-role: {role}}}}}\nstatus: {{phase: Running}}\n"
                ))
            })
            .collect()
    }

    #[test]
    fn redis_replication_needs_statefulset_master_label_and_master_node() {
        let rr = yaml(REDIS_RR);
        let sts = yaml(REDIS_STS);
        assert_eq!(
            is_redis_replication_ready(&rr, Some(&sts), &redis_pods(&["redis-0"])),
            Readiness::ready("master redis-0, 3/3 pods ready")
        );
        let verdict = is_redis_replication_ready(&rr, None, &[]);
        assert!(
            verdict.message.contains("StatefulSet redis not found"),
            "{}",
            verdict.message
        );
        let short = yaml(&REDIS_STS.replace("readyReplicas: 3", "readyReplicas: 1"));
        assert_eq!(
            is_redis_replication_ready(&rr, Some(&short), &redis_pods(&["redis-0"])).message,
            "StatefulSet redis: 1/3 pods ready"
        );
        assert!(
            is_redis_replication_ready(&rr, Some(&sts), &redis_pods(&[]))
                .message
                .contains("no pod labelled redis-role=master")
        );
        assert!(
            is_redis_replication_ready(&rr, Some(&sts), &redis_pods(&["redis-0", "redis-1"]))
                .message
                .contains("2 pods labelled")
        );
        assert!(
            is_redis_replication_ready(&rr, Some(&sts), &redis_pods(&["redis-2"]))
                .message
                .contains("failover in progress")
        );
        let no_master = yaml(&REDIS_RR.replace("masterNode: redis-0", "masterNode: ''"));
        assert!(
            is_redis_replication_ready(&no_master, Some(&sts), &redis_pods(&["redis-0"]))
                .message
                .contains("no master elected")
        );
    }

    #[test]
    fn sentinel_statefulset_counts() {
        let sts = yaml(&REDIS_STS.replace("readyReplicas: 3", "readyReplicas: 2"));
        assert_eq!(
            is_statefulset_pods_ready(Some(&sts), "StatefulSet redis-sentinel-sentinel"),
            Readiness::not_ready("StatefulSet redis-sentinel-sentinel: 2/3 pods ready")
        );
        assert!(!is_statefulset_pods_ready(None, "StatefulSet x").ready);
    }

    const KEYCLOAK: &str = r#"
apiVersion: k8s.keycloak.org/v2alpha1
kind: Keycloak
metadata: {name: keycloak, generation: 4}
status:
  instances: 1
  observedGeneration: 4
  conditions:
  - {type: Ready, status: "True", message: "", observedGeneration: 4}
  - {type: HasErrors, status: "False", message: "", observedGeneration: 4}
  - {type: RollingUpdate, status: "False", message: "", observedGeneration: 4}
"#;

    #[test]
    fn keycloak_ready_errors_and_stale() {
        assert!(is_keycloak_ready(&yaml(KEYCLOAK)).ready);
        let errors = KEYCLOAK.replace(
            r#"{type: HasErrors, status: "False", message: """#,
            r#"{type: HasErrors, status: "True", message: "Waiting for keycloak-db-secret secret""#,
        );
        assert_eq!(
            is_keycloak_ready(&yaml(&errors)).message,
            "HasErrors=True: Waiting for keycloak-db-secret secret"
        );
        let stale = KEYCLOAK.replace("generation: 4}", "generation: 5}");
        assert!(
            is_keycloak_ready(&yaml(&stale))
                .message
                .contains("observedGeneration 4 < generation 5")
        );
    }

    const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: backend-staging, namespace: argocd}
status:
  sync: {status: Synced, revision: abc}
  health: {status: Healthy}
"#;

    #[test]
    fn only_a_comparison_error_about_the_current_source_counts() {
        let app = |compared: &str| {
            serde_json::json!({"spec": {"source": {"path": "helm/web"}},
                "status": {"sync": {"comparedTo": {"source": {"path": compared}}},
                           "conditions": [{"type": "ComparisonError", "message": "helm/web: app path does not exist"}]}})
        };
        assert_eq!(
            argocd_comparison_error(&app("helm/web")),
            Some("helm/web: app path does not exist")
        );
        assert_eq!(
            argocd_comparison_error(&app("helm/old")),
            None,
            "about an earlier spec"
        );
        assert_eq!(argocd_comparison_error(&serde_json::json!({"status": {}})), None);
    }

    #[test]
    fn argocd_application_states_and_messages() {
        assert_eq!(
            is_argocd_application_ready(&yaml(APP)),
            Readiness::ready("Synced, Healthy")
        );
        let failed = format!(
            "{}  operationState: {{phase: Failed, message: 'one or more objects failed to apply, reason: Deployment.apps \"backend\" is invalid'}}\n",
            APP.replace("Synced", "OutOfSync").replace("Healthy", "Degraded")
        );
        let verdict = is_argocd_application_ready(&yaml(&failed));
        assert!(!verdict.ready);
        assert!(
            verdict
                .message
                .starts_with("sync OutOfSync, health Degraded: operation Failed: one or more objects"),
            "{}",
            verdict.message
        );
        let progressing = APP.replace(
            "{status: Healthy}",
            "{status: Progressing, message: 'Waiting for rollout to finish'}",
        );
        assert_eq!(
            is_argocd_application_ready(&yaml(&progressing)).message,
            "sync Synced, health Progressing: Waiting for rollout to finish"
        );
        let cond = format!(
            "{}  conditions:\n  - {{type: ComparisonError, message: 'repository not found'}}\n",
            APP.replace("Synced", "Unknown")
        );
        assert!(
            is_argocd_application_ready(&yaml(&cond))
                .message
                .ends_with("ComparisonError: repository not found")
        );
        // Synced and Healthy, but for the source before the one just applied.
        let stale = format!(
            "{}spec:\n  source: {{path: helm/backend-new}}\n",
            APP.replace(
                "revision: abc}",
                "revision: abc, comparedTo: {source: {path: helm/backend}}}"
            )
        );
        let verdict = is_argocd_application_ready(&yaml(&stale));
        assert!(
            !verdict.ready && verdict.message.contains("has not compared the new one yet"),
            "{verdict:?}"
        );
        let current = stale.replace("helm/backend-new", "helm/backend");
        assert!(is_argocd_application_ready(&yaml(&current)).ready);
        let refreshing = current.replace(
            "namespace: argocd}",
            "namespace: argocd, annotations: {argocd.argoproj.io/refresh: normal}}",
        );
        let verdict = is_argocd_application_ready(&yaml(&refreshing));
        assert!(
            !verdict.ready && verdict.message.ends_with("normal refresh asked for"),
            "{verdict:?}"
        );
    }

    #[test]
    fn deployment_and_statefulset_rollouts() {
        let deploy = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, generation: 2}
spec: {replicas: 2}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}
"#;
        assert!(is_rollout_complete(&yaml(deploy)).ready);
        let old = deploy.replace(
            "replicas: 2, updatedReplicas: 2",
            "replicas: 3, updatedReplicas: 2",
        );
        assert_eq!(
            is_rollout_complete(&yaml(&old)).message,
            "Deployment backend: 1 old replicas pending termination"
        );
        let stale = deploy.replace("observedGeneration: 2", "observedGeneration: 1");
        assert!(!is_rollout_complete(&yaml(&stale)).ready);
        let deadline = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, generation: 2}
spec: {replicas: 2}
status:
  observedGeneration: 2
  replicas: 2
  updatedReplicas: 1
  conditions:
  - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: 'ReplicaSet "backend-1" has timed out progressing.'}
"#;
        let verdict = is_rollout_complete(&yaml(deadline));
        assert!(
            verdict.message.contains("has timed out progressing"),
            "{}",
            verdict.message
        );
        let sts = REDIS_STS.replace(
            "observedGeneration: 1}",
            "observedGeneration: 1, currentRevision: redis-a, updateRevision: redis-b}",
        );
        assert!(!is_rollout_complete(&yaml(&sts)).ready);
        assert!(for_object(&yaml(REDIS_STS)).unwrap().ready);
    }

    #[test]
    fn pod_readiness_and_unknown_kinds() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus:\n  phase: Running\n  conditions: [{type: Ready, status: 'True'}]\n";
        assert!(for_object(&yaml(pod)).unwrap().ready);
        assert_eq!(
            is_pod_ready(&yaml(&pod.replace("Running", "Pending"))).message,
            "pod phase Pending"
        );
        assert_eq!(for_object(&yaml("apiVersion: v1\nkind: ConfigMap\n")), None);
    }
}

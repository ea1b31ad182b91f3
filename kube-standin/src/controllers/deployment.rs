//! The Deployment controller: one ReplicaSet per pod template, named `DEPLOYMENT-<pod-template-hash>`,
//! carrying the `pod-template-hash` label and the `deployment.kubernetes.io/revision` annotation; a new
//! template makes a new ReplicaSet (revision max+1) and scales the old ones to 0 once the new one is
//! available (RollingUpdate) or first (Recreate); going back to an old template (`kubectl rollout undo`)
//! reuses its ReplicaSet with a new revision. Status as `pkg/controller/deployment` writes it.
//!
//! Simplification: a rolling update surges the whole new ReplicaSet at once instead of `maxSurge` pods.

use serde_json::{Map, Value, json};

use super::{
    Controller, Requeue, SeededGenerations, condition, controller_ref, create, delete, deleting, int_at,
    owned, read, template_hash, update, warn, workload_or_controller, write_status,
};
use crate::store::{Event, ObjKey, State};
use crate::util::{get_str, now_rfc3339};

/// The label that ties a ReplicaSet and its pods to one pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision annotation on Deployments and their ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations the controller does not copy from a Deployment to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// The Deployment controller (see the module docs).
#[derive(Debug, Default)]
pub struct DeploymentController {
    seeded: SeededGenerations,
    /// The last progress seen per Deployment (its replica counts), and when: `progressDeadlineSeconds`
    /// without progress is `ProgressDeadlineExceeded`.
    progress: std::collections::HashMap<ObjKey, (Vec<i64>, std::time::Instant)>,
}

/// A template without its `pod-template-hash` label, compared the way `apiequality.Semantic` compares
/// typed objects (null, `{}` and `[]` count as absent), for `EqualIgnoreHash`: `kubectl rollout undo`
/// sends back a template re-encoded from Go structs (`creationTimestamp: null`, `resources: {}`).
pub fn without_hash(template: &Value) -> Value {
    let mut t = semantic(template);
    if let Some(labels) = t.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty() {
            t["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
    }
    t
}

/// Drops nulls and empty objects and arrays, recursively.
pub fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn revision(obj: &Value) -> i64 {
    get_str(obj, &["metadata", "annotations", REVISION])
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Resolves an int-or-percent (`maxSurge`, `maxUnavailable`) against `total`, rounding up or down.
pub fn int_or_percent(v: Option<&Value>, total: i64, default: &str, round_up: bool) -> i64 {
    let v = v.cloned().unwrap_or(json!(default));
    if let Some(n) = v.as_i64() {
        return n;
    }
    let s = v.as_str().unwrap_or(default);
    let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
    if round_up {
        (pct * total + 99) / 100
    } else {
        pct * total / 100
    }
}

/// The `ScalingReplicaSet` event, worded as the controller words it.
fn scaled_event(st: &mut State, dep: &Value, rs: &str, from: i64, to: i64) {
    if from == to {
        return;
    }
    let direction = if to > from { "up" } else { "down" };
    let message = format!("Scaled {direction} replica set {rs} from {from} to {to}");
    super::record_event(st, dep, "ScalingReplicaSet", &message, "deployment-controller");
}

fn is_recreate(dep: &Value) -> bool {
    dep.pointer("/spec/strategy/type") == Some(&json!("Recreate"))
}

fn copied_annotations(dep: &Value) -> Map<String, Value> {
    dep.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

impl DeploymentController {
    /// Whether an unfinished rollout has made no progress for `spec.progressDeadlineSeconds` (and if not,
    /// a reconcile when the deadline would pass).
    fn deadline_exceeded(&mut self, key: &ObjKey, dep: &Value, counts: Vec<i64>, queue: &Requeue) -> bool {
        let Some(deadline) = dep
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_u64)
            .map(std::time::Duration::from_secs)
        else {
            return false;
        };
        let now = std::time::Instant::now();
        let since = match self.progress.get(key) {
            Some((seen, at)) if *seen == counts => *at,
            _ => {
                self.progress.insert(key.clone(), (counts, now));
                now
            }
        };
        let elapsed = now.duration_since(since);
        if elapsed >= deadline {
            return true;
        }
        queue.after(key, deadline - elapsed);
        false
    }
}

impl Controller for DeploymentController {
    fn name(&self) -> &'static str {
        "deployment-controller"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        workload_or_controller(
            st,
            event,
            ("apps", "deployments"),
            ("apps", "replicasets"),
            "Deployment",
        )
        .unwrap_or_default()
    }

    fn reconcile(&mut self, st: &mut State, key: &ObjKey, queue: &Requeue) {
        let Some(dep) = read(st, key) else {
            self.progress.remove(key);
            return;
        };
        if deleting(&dep) || self.seeded.frozen(st, key, &dep) {
            return;
        }
        let ns = key.namespace.as_str();
        let name = key.name.as_str();
        let uid = get_str(&dep, &["metadata", "uid"]).unwrap_or("").to_string();
        let desired = int_at(&dep, "/spec/replicas", 1);
        let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let paused = dep.pointer("/spec/paused") == Some(&json!(true));
        let surge = if is_recreate(&dep) {
            0
        } else {
            int_or_percent(
                dep.pointer("/spec/strategy/rollingUpdate/maxSurge"),
                desired,
                "25%",
                true,
            )
        };

        super::adopt_orphans(st, &dep, "apps", "replicasets", |_| true);
        let all: Vec<Value> = owned(st, "apps", "replicasets", ns, &uid)
            .into_iter()
            .filter(|rs| !deleting(rs))
            .collect();
        let (current, old): (Vec<Value>, Vec<Value>) = all.into_iter().partition(|rs| {
            rs.pointer("/spec/template").map(without_hash).as_ref() == Some(&without_hash(&template))
        });
        let max_old_revision = old.iter().map(revision).max().unwrap_or(0);
        let old_pods_left = old
            .iter()
            .any(|rs| int_at(rs, "/status/replicas", 0) > 0 || int_at(rs, "/spec/replicas", 0) > 0);
        let new_replicas = if is_recreate(&dep) && old_pods_left {
            0
        } else {
            desired
        };
        let mut created = None;

        let new_rs = match current.into_iter().next() {
            Some(mut rs) => {
                // The same template again (scale, or `rollout undo`): keep its ReplicaSet, move its revision up.
                let rs_key = super::key(
                    "apps",
                    "replicasets",
                    ns,
                    get_str(&rs, &["metadata", "name"]).unwrap_or(""),
                );
                let before = rs.clone();
                let mut annotations = copied_annotations(&dep);
                let existing = rs
                    .pointer("/metadata/annotations")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for k in [REVISION, REVISION_HISTORY] {
                    if let Some(v) = existing.get(k) {
                        annotations.insert(k.into(), v.clone());
                    }
                }
                let rev = revision(&rs);
                if rev <= max_old_revision {
                    let mut history: Vec<String> = existing
                        .get(REVISION_HISTORY)
                        .and_then(Value::as_str)
                        .map(|h| h.split(',').map(str::to_string).collect())
                        .unwrap_or_default();
                    if rev > 0 {
                        history.push(rev.to_string());
                    }
                    annotations.insert(REVISION.into(), json!((max_old_revision + 1).to_string()));
                    annotations.insert(REVISION_HISTORY.into(), json!(history.join(",")));
                }
                annotations.insert(DESIRED_REPLICAS.into(), json!(desired.to_string()));
                annotations.insert(MAX_REPLICAS.into(), json!((desired + surge).to_string()));
                rs["metadata"]["annotations"] = Value::Object(annotations);
                if !paused {
                    rs["spec"]["replicas"] = json!(new_replicas);
                }
                if rs != before {
                    let (from, to) = (
                        int_at(&before, "/spec/replicas", 0),
                        int_at(&rs, "/spec/replicas", 0),
                    );
                    match update(st, &rs_key, rs.clone()) {
                        Ok(written) => {
                            rs = written;
                            scaled_event(st, &dep, &rs_key.name, from, to);
                        }
                        Err(e) => tracing::warn!(
                            "deployment-controller: updating {ns}/{}: {}",
                            rs_key.name,
                            e.message
                        ),
                    }
                }
                Some(rs)
            }
            None if paused => None,
            None => {
                let mut rs_template = template.clone();
                let mut hash = template_hash(&semantic(&template));
                // A name taken by a ReplicaSet with another template is a hash collision: count on.
                for collision in 1..=5 {
                    let taken = read(
                        st,
                        &super::key("apps", "replicasets", ns, &format!("{name}-{hash}")),
                    );
                    if taken.is_none() {
                        break;
                    }
                    hash = template_hash(&json!([semantic(&template), collision]));
                }
                let rs_name = format!("{name}-{hash}");
                super::insert_at(
                    &mut rs_template,
                    &["metadata", "labels"],
                    POD_TEMPLATE_HASH,
                    json!(hash),
                );
                let mut labels = template
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                labels.insert(POD_TEMPLATE_HASH.into(), json!(hash));
                let mut selector = dep.pointer("/spec/selector").cloned().unwrap_or(json!({}));
                super::insert_at(&mut selector, &["matchLabels"], POD_TEMPLATE_HASH, json!(hash));
                let mut annotations = copied_annotations(&dep);
                annotations.insert(REVISION.into(), json!((max_old_revision + 1).to_string()));
                annotations.insert(DESIRED_REPLICAS.into(), json!(desired.to_string()));
                annotations.insert(MAX_REPLICAS.into(), json!((desired + surge).to_string()));
                let mut spec =
                    json!({"replicas": new_replicas, "selector": selector, "template": rs_template});
                if let Some(m) = dep.pointer("/spec/minReadySeconds") {
                    spec["minReadySeconds"] = m.clone();
                }
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs_name, "namespace": ns, "labels": labels, "annotations": annotations,
                                 "ownerReferences": [controller_ref(&dep)]},
                    "spec": spec
                });
                match create(st, rs) {
                    Ok(rs) => {
                        scaled_event(st, &dep, &rs_name, 0, new_replicas);
                        created = Some(rs_name);
                        Some(rs)
                    }
                    Err(e) => {
                        tracing::warn!(
                            "deployment-controller: creating ReplicaSet {ns}/{rs_name}: {}",
                            e.message
                        );
                        return;
                    }
                }
            }
        };

        // Old ReplicaSets go to 0 once the new one is available (at once for Recreate).
        let new_available = new_rs
            .as_ref()
            .map(|rs| int_at(rs, "/status/availableReplicas", 0))
            .unwrap_or(0);
        if !paused && (is_recreate(&dep) || new_available >= desired) {
            for mut rs in old.clone() {
                let from = int_at(&rs, "/spec/replicas", 0);
                if from != 0 {
                    rs["spec"]["replicas"] = json!(0);
                    scaled_event(
                        st,
                        &dep,
                        get_str(&rs, &["metadata", "name"]).unwrap_or(""),
                        from,
                        0,
                    );
                    let k = super::key(
                        "apps",
                        "replicasets",
                        ns,
                        get_str(&rs, &["metadata", "name"]).unwrap_or(""),
                    );
                    warn(self.name(), "scaling down an old ReplicaSet", update(st, &k, rs));
                }
            }
        }
        // Old, empty ReplicaSets beyond revisionHistoryLimit go, oldest first.
        let limit = int_at(&dep, "/spec/revisionHistoryLimit", 10).max(0) as usize;
        let mut empty: Vec<&Value> = old
            .iter()
            .filter(|rs| int_at(rs, "/spec/replicas", 0) == 0 && int_at(rs, "/status/replicas", 0) == 0)
            .collect();
        if empty.len() > limit {
            empty.sort_by_key(|rs| revision(rs));
            for rs in &empty[..empty.len() - limit] {
                let k = super::key(
                    "apps",
                    "replicasets",
                    ns,
                    get_str(rs, &["metadata", "name"]).unwrap_or(""),
                );
                warn(
                    self.name(),
                    "deleting an old ReplicaSet",
                    delete(st, &k, "Background"),
                );
            }
        }

        // The Deployment carries its newest revision.
        if let Some(rs) = &new_rs {
            let rev = get_str(rs, &["metadata", "annotations", REVISION])
                .unwrap_or("")
                .to_string();
            if !rev.is_empty() && get_str(&dep, &["metadata", "annotations", REVISION]) != Some(rev.as_str())
            {
                let mut d = dep.clone();
                super::insert_at(&mut d, &["metadata", "annotations"], REVISION, json!(rev));
                warn(self.name(), "annotating the revision", update(st, key, d));
            }
        }

        // Status from the ReplicaSets as they are now.
        let Some(dep) = read(st, key) else { return };
        let all: Vec<Value> = owned(st, "apps", "replicasets", ns, &uid);
        let new_name = new_rs
            .as_ref()
            .and_then(|rs| get_str(rs, &["metadata", "name"]))
            .map(str::to_string);
        let new_now = new_name.as_ref().and_then(|n| {
            all.iter()
                .find(|rs| get_str(rs, &["metadata", "name"]) == Some(n))
        });
        let sum = |p: &str| all.iter().map(|rs| int_at(rs, p, 0)).sum::<i64>();
        let replicas = sum("/status/replicas");
        let updated = new_now.map(|rs| int_at(rs, "/status/replicas", 0)).unwrap_or(0);
        let ready = sum("/status/readyReplicas");
        let available = sum("/status/availableReplicas");
        let unavailable = (sum("/spec/replicas") - available).max(0);
        let generation = int_at(&dep, "/metadata/generation", 1);
        let max_unavailable = if is_recreate(&dep) {
            0
        } else {
            int_or_percent(
                dep.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
                desired,
                "25%",
                false,
            )
        };
        let now = now_rfc3339();
        let previous = dep.get("status");
        let available_cond = if available >= desired - max_unavailable {
            condition(
                previous,
                "Available",
                true,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                &now,
            )
        } else {
            condition(
                previous,
                "Available",
                false,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                &now,
            )
        };
        let rs_name = new_name.unwrap_or_default();
        let complete = updated == desired && replicas == desired && available == desired;
        let progressing = if paused {
            condition(
                previous,
                "Progressing",
                false,
                "DeploymentPaused",
                "Deployment is paused",
                &now,
            )
        } else if complete {
            condition(
                previous,
                "Progressing",
                true,
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                &now,
            )
        } else if self.deadline_exceeded(key, &dep, vec![generation, updated, ready, available], queue) {
            condition(
                previous,
                "Progressing",
                false,
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                &now,
            )
        } else if created.is_some() {
            condition(
                previous,
                "Progressing",
                true,
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{rs_name}\""),
                &now,
            )
        } else {
            condition(
                previous,
                "Progressing",
                true,
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs_name}\" is progressing."),
                &now,
            )
        };
        let mut status = Map::new();
        status.insert("observedGeneration".into(), json!(generation));
        for (k, v) in [
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable),
        ] {
            // DeploymentStatus counts are `omitempty`.
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        status.insert("conditions".into(), json!([available_cond, progressing]));
        if let Some(c) = dep.pointer("/status/collisionCount") {
            status.insert("collisionCount".into(), c.clone());
        }
        warn(
            self.name(),
            "writing Deployment status",
            write_status(st, key, Value::Object(status)),
        );
    }
}

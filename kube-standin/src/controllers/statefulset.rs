//! The StatefulSet controller: pods `NAME-0..N-1` with the `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index` and `controller-revision-hash` labels, created in order (each waits for
//! the previous one to be ready under `OrderedReady`, all at once under `Parallel`), removed from the
//! highest ordinal down; one ControllerRevision per template (`NAME-<hash>`), rolling updates that
//! replace pods from the highest ordinal down to `partition`; PVCs from `volumeClaimTemplates`
//! (`TEMPLATE-NAME-i`); status as `pkg/controller/statefulset` writes it.

use serde_json::{Map, Value, json};

use super::deployment::semantic;
use super::{
    Controller, Requeue, SeededGenerations, controller_ref, create, delete, deleting, int_at, key, owned,
    pod_ready, read, record_event, sync_pod_unready, template_hash, unready_message, update, warn,
    workload_or_controller, write_status,
};
use crate::store::{Event, ObjKey, State};
use crate::util::get_str;

/// The label naming a pod's revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The StatefulSet controller (see the module docs).
#[derive(Debug, Default)]
pub struct StatefulSetController {
    seeded: SeededGenerations,
}

fn ordinal(sts: &str, pod: &Value) -> Option<i64> {
    get_str(pod, &["metadata", "name"])?
        .strip_prefix(sts)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn revision_template(rev: &Value) -> Value {
    let mut t = rev.pointer("/data/spec/template").cloned().unwrap_or(json!({}));
    t.as_object_mut().map(|m| m.remove("$patch"));
    t
}

impl Controller for StatefulSetController {
    fn name(&self) -> &'static str {
        "statefulset-controller"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        workload_or_controller(st, event, ("apps", "statefulsets"), ("", "pods"), "StatefulSet")
            .unwrap_or_default()
    }

    fn reconcile(&mut self, st: &mut State, sts_key: &ObjKey, _queue: &Requeue) {
        let Some(sts) = read(st, sts_key) else { return };
        if deleting(&sts) || self.seeded.frozen(st, sts_key, &sts) {
            return;
        }
        let ns = sts_key.namespace.as_str();
        let name = sts_key.name.as_str();
        let uid = get_str(&sts, &["metadata", "uid"]).unwrap_or("").to_string();
        let replicas = int_at(&sts, "/spec/replicas", 1).max(0);
        let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let parallel = sts.pointer("/spec/podManagementPolicy") == Some(&json!("Parallel"));
        let on_delete = sts.pointer("/spec/updateStrategy/type") == Some(&json!("OnDelete"));
        let partition = int_at(&sts, "/spec/updateStrategy/rollingUpdate/partition", 0);

        // The revision of the current template.
        let revisions = owned(st, "apps", "controllerrevisions", ns, &uid);
        let max_revision = revisions
            .iter()
            .map(|r| int_at(r, "/revision", 0))
            .max()
            .unwrap_or(0);
        let update_revision = match revisions
            .iter()
            .find(|r| semantic(&revision_template(r)) == semantic(&template))
        {
            Some(r) => {
                let rname = get_str(r, &["metadata", "name"]).unwrap_or("").to_string();
                if int_at(r, "/revision", 0) < max_revision {
                    let mut r = r.clone();
                    r["revision"] = json!(max_revision + 1);
                    warn(
                        self.name(),
                        "moving a revision up",
                        update(st, &key("apps", "controllerrevisions", ns, &rname), r),
                    );
                }
                rname
            }
            None => {
                let hash = template_hash(&semantic(&template));
                let rname = format!("{name}-{hash}");
                let mut labels = template
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                labels.insert("controller.kubernetes.io/hash".into(), json!(hash));
                let mut data_template = template.clone();
                data_template["$patch"] = json!("replace");
                let rev = json!({
                    "apiVersion": "apps/v1", "kind": "ControllerRevision",
                    "metadata": {"name": rname, "namespace": ns, "labels": labels, "ownerReferences": [controller_ref(&sts)]},
                    "data": {"spec": {"template": data_template}},
                    "revision": max_revision + 1
                });
                if read(st, &key("apps", "controllerrevisions", ns, &rname)).is_none() {
                    warn(self.name(), "creating a ControllerRevision", create(st, rev));
                }
                rname
            }
        };
        let current_revision = get_str(&sts, &["status", "currentRevision"])
            .filter(|r| {
                revisions
                    .iter()
                    .any(|x| get_str(x, &["metadata", "name"]) == Some(r))
            })
            .unwrap_or(&update_revision)
            .to_string();

        let unready = unready_message(st, sts_key, &sts);
        super::adopt_orphans(st, &sts, "", "pods", |p| ordinal(name, p).is_some());
        let pods: Vec<Value> = owned(st, "", "pods", ns, &uid);
        sync_pod_unready(st, &pods, unready.as_deref(), self.name());
        let by_ordinal = |i: i64| pods.iter().find(|p| ordinal(name, p) == Some(i));

        // PVCs first, as the controller creates them before the pod that mounts them.
        let claims = sts
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let selector_labels = sts
            .pointer("/spec/selector/matchLabels")
            .cloned()
            .unwrap_or(json!({}));
        let mut acted = false;
        for i in 0..replicas {
            if by_ordinal(i).is_some() {
                if !parallel && !by_ordinal(i).is_some_and(pod_ready) {
                    break;
                }
                continue;
            }
            let pod_name = format!("{name}-{i}");
            for c in &claims {
                let cname = format!(
                    "{}-{pod_name}",
                    get_str(c, &["metadata", "name"]).unwrap_or("data")
                );
                if read(st, &key("", "persistentvolumeclaims", ns, &cname)).is_none() {
                    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": cname, "namespace": ns, "labels": selector_labels},
                        "spec": c.get("spec").cloned().unwrap_or(json!({}))});
                    warn(self.name(), "creating a PVC", create(st, pvc));
                    let message =
                        format!("create Claim {cname} Pod {pod_name} in StatefulSet {name} success");
                    record_event(st, &sts, "SuccessfulCreate", &message, "statefulset-controller");
                }
            }
            let mut meta: Map<String, Value> = template
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            meta.insert("name".into(), json!(pod_name));
            meta.insert("namespace".into(), json!(ns));
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            labels[REVISION_LABEL] = json!(update_revision);
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            labels["apps.kubernetes.io/pod-index"] = json!(i.to_string());
            meta.insert("ownerReferences".into(), json!([controller_ref(&sts)]));
            if let Some(m) = &unready {
                let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                ann[crate::simulate::UNREADY_ANNOTATION] = json!(m);
            }
            let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
            spec["hostname"] = json!(pod_name);
            if let Some(svc) = sts
                .pointer("/spec/serviceName")
                .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()))
            {
                spec["subdomain"] = svc.clone();
            }
            if !claims.is_empty() {
                let vols = spec
                    .as_object_mut()
                    .expect("object")
                    .entry("volumes")
                    .or_insert_with(|| json!([]));
                for c in &claims {
                    let cname = get_str(c, &["metadata", "name"]).unwrap_or("data");
                    if let Some(v) = vols.as_array_mut() {
                        v.push(json!({"name": cname, "persistentVolumeClaim": {"claimName": format!("{cname}-{pod_name}")}}));
                    }
                }
            }
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
            match create(st, pod) {
                Ok(_) => {
                    let message = format!("create Pod {pod_name} in StatefulSet {name} successful");
                    record_event(st, &sts, "SuccessfulCreate", &message, "statefulset-controller");
                }
                Err(e) => tracing::warn!("statefulset-controller: creating pod {pod_name}: {}", e.message),
            }
            acted = true;
            if !parallel {
                break;
            }
        }
        // Scale down from the highest ordinal (one at a time unless Parallel).
        let mut condemned: Vec<&Value> = pods
            .iter()
            .filter(|p| ordinal(name, p).is_some_and(|i| i >= replicas))
            .collect();
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(name, p)));
        for p in condemned.iter().take(if parallel { usize::MAX } else { 1 }) {
            let k = key("", "pods", ns, get_str(p, &["metadata", "name"]).unwrap_or(""));
            warn(
                self.name(),
                "deleting a pod past spec.replicas",
                delete(st, &k, "Background"),
            );
            let message = format!("delete Pod {} in StatefulSet {name} successful", k.name);
            record_event(st, &sts, "SuccessfulDelete", &message, "statefulset-controller");
            acted = true;
        }
        // Rolling update: when everything is up, replace the highest outdated pod (above the partition).
        let all_ready = (0..replicas).all(|i| by_ordinal(i).is_some_and(pod_ready));
        if !acted && !on_delete && all_ready {
            let outdated = (partition..replicas).rev().find_map(|i| {
                by_ordinal(i).filter(|p| {
                    get_str(p, &["metadata", "labels", REVISION_LABEL]) != Some(update_revision.as_str())
                })
            });
            if let Some(p) = outdated {
                let k = key("", "pods", ns, get_str(p, &["metadata", "name"]).unwrap_or(""));
                warn(
                    self.name(),
                    "replacing an outdated pod",
                    delete(st, &k, "Background"),
                );
                let message = format!("delete Pod {} in StatefulSet {name} successful", k.name);
                record_event(st, &sts, "SuccessfulDelete", &message, "statefulset-controller");
            }
        }

        let pods: Vec<Value> = owned(st, "", "pods", ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as i64;
        let ready = count(&|p| pod_ready(p));
        let updated =
            count(&|p| get_str(p, &["metadata", "labels", REVISION_LABEL]) == Some(update_revision.as_str()));
        let current_revision = if updated == replicas && pods.len() as i64 == replicas {
            update_revision.clone()
        } else {
            current_revision
        };
        let current = count(&|p| {
            get_str(p, &["metadata", "labels", REVISION_LABEL]) == Some(current_revision.as_str())
        });
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int_at(&sts, "/metadata/generation", 1)),
        );
        status.insert("replicas".into(), json!(pods.len()));
        // StatefulSetStatus: readyReplicas, currentReplicas and updatedReplicas are `omitempty`.
        for (k, v) in [
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
        ] {
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        status.insert("availableReplicas".into(), json!(ready));
        status.insert("currentRevision".into(), json!(current_revision));
        status.insert("updateRevision".into(), json!(update_revision));
        status.insert("collisionCount".into(), json!(0));
        warn(
            self.name(),
            "writing StatefulSet status",
            write_status(st, sts_key, Value::Object(status)),
        );
    }
}

//! The ReplicaSet controller: `spec.replicas` pods from the template, named `REPLICASET-<5 chars>` through
//! `generateName`, owned by the ReplicaSet; extra pods are deleted (unready and newest first); status
//! counts them (`replicas`, `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas`).
//!
//! A Deployment or ReplicaSet held unready (`kube-standin/unready`) passes its message to its pods, so
//! they stay unready the way pods failing their readiness probe do.

use serde_json::{Map, Value, json};

use super::{
    Controller, Requeue, SeededGenerations, controlled_by, controller_key, create, delete, deleting, int_at,
    key, owned, pod_from_template, pod_ready, read, record_event, sync_pod_unready, unready_message, warn,
    workload_or_controller, write_status,
};
use crate::store::{Event, ObjKey, State};
use crate::util::get_str;

/// The ReplicaSet controller (see the module docs).
#[derive(Debug, Default)]
pub struct ReplicaSetController {
    seeded: SeededGenerations,
}

impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset-controller"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        if let Some(keys) =
            workload_or_controller(st, event, ("apps", "replicasets"), ("", "pods"), "ReplicaSet")
        {
            return keys;
        }
        let ns = event.key.namespace.as_str();
        // A Deployment's unready override reaches its ReplicaSets' pods.
        if event.key.group == "apps" && event.key.plural == "deployments" {
            let uid = get_str(&event.object, &["metadata", "uid"]).unwrap_or("");
            return st
                .objects()
                .filter(|(k, o)| {
                    k.group == "apps"
                        && k.plural == "replicasets"
                        && k.namespace == ns
                        && controlled_by(o, uid)
                })
                .map(|(k, _)| k.clone())
                .collect();
        }
        Vec::new()
    }

    fn reconcile(&mut self, st: &mut State, rs_key: &ObjKey, _queue: &Requeue) {
        let Some(rs) = read(st, rs_key) else { return };
        if deleting(&rs) || self.seeded.frozen(st, rs_key, &rs) {
            return;
        }
        let ns = rs_key.namespace.as_str();
        let uid = get_str(&rs, &["metadata", "uid"]).unwrap_or("").to_string();
        let desired = int_at(&rs, "/spec/replicas", 1).max(0) as usize;
        let unready = unready_message(st, rs_key, &rs).or_else(|| {
            let dep = controller_key(st, &rs, ns, "Deployment")?;
            let obj = read(st, &dep)?;
            unready_message(st, &dep, &obj)
        });
        super::adopt_orphans(st, &rs, "", "pods", |_| true);
        let mut pods: Vec<Value> = owned(st, "", "pods", ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        sync_pod_unready(st, &pods, unready.as_deref(), self.name());
        if pods.len() < desired {
            for _ in pods.len()..desired {
                let mut pod = pod_from_template(&rs, ns);
                if let Some(m) = &unready {
                    let meta = pod["metadata"].as_object_mut().expect("an object");
                    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                    ann[crate::simulate::UNREADY_ANNOTATION] = json!(m);
                }
                match create(st, pod) {
                    Ok(pod) => {
                        let message = format!(
                            "Created pod: {}",
                            get_str(&pod, &["metadata", "name"]).unwrap_or("")
                        );
                        record_event(st, &rs, "SuccessfulCreate", &message, "replicaset-controller");
                    }
                    Err(e) => tracing::warn!("replicaset-controller: creating a pod: {}", e.message),
                }
            }
        } else if pods.len() > desired {
            // Unready pods go first, then the newest.
            pods.sort_by(|a, b| {
                pod_ready(a).cmp(&pod_ready(b)).then_with(|| {
                    get_str(b, &["metadata", "creationTimestamp"])
                        .cmp(&get_str(a, &["metadata", "creationTimestamp"]))
                })
            });
            for pod in &pods[..pods.len() - desired] {
                let k = key("", "pods", ns, get_str(pod, &["metadata", "name"]).unwrap_or(""));
                warn(
                    self.name(),
                    "deleting a surplus pod",
                    delete(st, &k, "Background"),
                );
                let message = format!("Deleted pod: {}", k.name);
                record_event(st, &rs, "SuccessfulDelete", &message, "replicaset-controller");
            }
        }
        let pods: Vec<Value> = owned(st, "", "pods", ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut status = Map::new();
        status.insert("replicas".into(), json!(pods.len()));
        // ReplicaSetStatus counts other than `replicas` are `omitempty`.
        for (k, v) in [
            ("fullyLabeledReplicas", pods.len()),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
        ] {
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        status.insert(
            "observedGeneration".into(),
            json!(int_at(&rs, "/metadata/generation", 1)),
        );
        warn(
            self.name(),
            "writing ReplicaSet status",
            write_status(st, rs_key, Value::Object(status)),
        );
    }
}

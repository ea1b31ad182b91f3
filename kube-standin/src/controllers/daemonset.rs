//! The DaemonSet controller: one pod per Node (`spec.nodeName` set, as the scheduler-less DaemonSet
//! controller does), pods of Nodes that are gone removed, and the status `pkg/controller/daemon` writes
//! (`desiredNumberScheduled`, `currentNumberScheduled`, `updatedNumberScheduled`, `numberReady`,
//! `numberAvailable`, `observedGeneration`). Node selectors, taints and tolerations are not evaluated.
//! The stand-in has no Nodes unless they are created, so by default a DaemonSet wants zero pods — as on a
//! cluster without nodes — and is rolled out at once.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{
    Controller, Requeue, SeededGenerations, create, delete, deleting, int_at, key, owned, pod_from_template,
    pod_ready, read, warn, workload_or_controller, write_status,
};
use crate::store::{Event, ObjKey, State};
use crate::util::get_str;

/// The DaemonSet controller (see the module docs).
#[derive(Debug, Default)]
pub struct DaemonSetController {
    seeded: SeededGenerations,
}

impl Controller for DaemonSetController {
    fn name(&self) -> &'static str {
        "daemonset-controller"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        if event.key.group.is_empty() && event.key.plural == "nodes" {
            return st
                .objects()
                .filter(|(k, _)| k.group == "apps" && k.plural == "daemonsets")
                .map(|(k, _)| k.clone())
                .collect();
        }
        workload_or_controller(st, event, ("apps", "daemonsets"), ("", "pods"), "DaemonSet")
            .unwrap_or_default()
    }

    fn reconcile(&mut self, st: &mut State, ds_key: &ObjKey, _queue: &Requeue) {
        let Some(ds) = read(st, ds_key) else { return };
        if deleting(&ds) || self.seeded.frozen(st, ds_key, &ds) {
            return;
        }
        let ns = ds_key.namespace.as_str();
        let uid = get_str(&ds, &["metadata", "uid"]).unwrap_or("").to_string();
        let nodes: BTreeSet<String> = st
            .objects()
            .filter(|(k, o)| k.group.is_empty() && k.plural == "nodes" && !deleting(o))
            .map(|(k, _)| k.name.clone())
            .collect();
        let pods: Vec<Value> = owned(st, "", "pods", ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let node_of = |p: &Value| get_str(p, &["spec", "nodeName"]).unwrap_or("").to_string();
        for pod in pods.iter().filter(|p| !nodes.contains(&node_of(p))) {
            let k = key("", "pods", ns, get_str(pod, &["metadata", "name"]).unwrap_or(""));
            warn(
                self.name(),
                "deleting the pod of a gone node",
                delete(st, &k, "Background"),
            );
        }
        let covered: BTreeSet<String> = pods.iter().map(node_of).collect();
        for node in nodes.iter().filter(|n| !covered.contains(*n)) {
            let mut pod = pod_from_template(&ds, ns);
            pod["spec"]["nodeName"] = json!(node);
            warn(self.name(), "creating a pod", create(st, pod).map(|_| ()));
        }
        let pods: Vec<Value> = owned(st, "", "pods", ns, &uid)
            .into_iter()
            .filter(|p| !deleting(p))
            .collect();
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut status = Map::new();
        for (k, v) in [
            ("desiredNumberScheduled", nodes.len()),
            ("currentNumberScheduled", pods.len()),
            ("updatedNumberScheduled", pods.len()),
            ("numberReady", ready),
            ("numberAvailable", ready),
            ("numberMisscheduled", 0),
        ] {
            status.insert(k.into(), json!(v));
        }
        if nodes.len() > ready {
            status.insert("numberUnavailable".into(), json!(nodes.len() - ready));
        }
        status.insert(
            "observedGeneration".into(),
            json!(int_at(&ds, "/metadata/generation", 1)),
        );
        warn(
            self.name(),
            "writing DaemonSet status",
            write_status(st, ds_key, Value::Object(status)),
        );
    }
}

//! The namespace controller: a deleted namespace is `Terminating` (the API server sets that and the
//! deletionTimestamp); the controller deletes everything in it, reports what remains in the namespace's
//! conditions, and once it is empty removes its `kubernetes` finalizer from `spec.finalizers` (through the
//! `finalize` subresource), upon which the API server removes the namespace.
//!
//! Objects with finalizers nobody removes keep the namespace terminating, as on a real cluster.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Controller, Requeue, delete, deleting, key, read, warn, write, write_status};
use crate::store::{Event, EventType, ObjKey, State};
use crate::util::now_rfc3339;

/// The finalizer the namespace controller owns.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// The namespace controller (see the module docs).
pub struct NamespaceController;

fn namespace_key(name: &str) -> ObjKey {
    key("", "namespaces", "", name)
}

impl Controller for NamespaceController {
    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        let k = &event.key;
        if k.group.is_empty() && k.plural == "namespaces" {
            return vec![k.clone()];
        }
        // Content leaving a terminating namespace may let it finish.
        if event.kind == EventType::Deleted
            && !k.namespace.is_empty()
            && read(st, &namespace_key(&k.namespace)).is_some_and(|n| deleting(&n))
        {
            return vec![namespace_key(&k.namespace)];
        }
        Vec::new()
    }

    fn reconcile(&mut self, st: &mut State, ns_key: &ObjKey, _queue: &Requeue) {
        let ns = ns_key.name.clone();
        let namespace = read(st, ns_key);
        if namespace.as_ref().is_some_and(|n| !deleting(n)) {
            return;
        }
        // Delete the content (a namespace removed without its finalizer leaves content behind too).
        let content: Vec<(ObjKey, Value)> = st
            .objects()
            .filter(|(k, _)| k.namespace == ns && !(k.group.is_empty() && k.plural == "namespaces"))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        for (k, o) in &content {
            if !deleting(o) {
                warn(
                    self.name(),
                    "deleting namespace content",
                    delete(st, k, "Background"),
                );
            }
        }
        let Some(namespace) = namespace else { return };
        // What is left, by resource, and which finalizers hold it.
        let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
        let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
        for (k, o) in st
            .objects()
            .filter(|(k, _)| k.namespace == ns && !k.plural.is_empty())
        {
            if k.group.is_empty() && k.plural == "namespaces" {
                continue;
            }
            let resource = if k.group.is_empty() {
                k.plural.clone()
            } else {
                format!("{}.{}", k.plural, k.group)
            };
            *remaining.entry(resource).or_default() += 1;
            for f in o
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                *finalizers.entry(f.to_string()).or_default() += 1;
            }
        }
        let now = now_rfc3339();
        let previous = namespace.get("status").cloned();
        let cond = |ty: &str, ok_when_false: bool, reason: &str, message: String| {
            let status = if ok_when_false { "False" } else { "True" };
            let keep = previous
                .as_ref()
                .and_then(|s| s["conditions"].as_array().cloned())
                .and_then(|cs| cs.into_iter().find(|c| c["type"] == ty && c["status"] == status))
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or(json!(now));
            json!({"type": ty, "status": status, "lastTransitionTime": keep, "reason": reason, "message": message})
        };
        let content_left = if remaining.is_empty() {
            cond(
                "NamespaceContentRemaining",
                true,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            let list: Vec<String> = remaining
                .iter()
                .map(|(r, n)| format!("{r} has {n} resource instances"))
                .collect();
            cond(
                "NamespaceContentRemaining",
                false,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", list.join(", ")),
            )
        };
        let finalizers_left = if finalizers.is_empty() {
            cond(
                "NamespaceFinalizersRemaining",
                true,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            let list: Vec<String> = finalizers
                .iter()
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            cond(
                "NamespaceFinalizersRemaining",
                false,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    list.join(", ")
                ),
            )
        };
        let status = json!({
            "phase": "Terminating",
            "conditions": [
                cond("NamespaceDeletionDiscoveryFailure", true, "ResourcesDiscovered", "All resources successfully discovered".into()),
                cond("NamespaceDeletionGroupVersionParsingFailure", true, "ParsedGroupVersions", "All legacy kube types successfully parsed".into()),
                cond("NamespaceDeletionContentFailure", true, "ContentDeleted", "All content successfully deleted, may be waiting on finalization".into()),
                content_left,
                finalizers_left,
            ]
        });
        warn(
            self.name(),
            "writing namespace status",
            write_status(st, ns_key, status),
        );
        if !remaining.is_empty() {
            return;
        }
        let Some(mut namespace) = read(st, ns_key) else {
            return;
        };
        let Some(list) = namespace
            .pointer_mut("/spec/finalizers")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let before = list.len();
        list.retain(|f| f != KUBERNETES_FINALIZER);
        if list.len() != before {
            warn(
                self.name(),
                "finalizing the namespace",
                write(st, ns_key, namespace, "finalize"),
            );
        }
    }
}

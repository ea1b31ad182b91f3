//! The garbage collector: dependents follow their owners through `metadata.ownerReferences`.
//!
//! - Background (the default): the owner goes at once; then each dependent whose owners are all gone is
//!   deleted (references to owners that are gone are dropped from dependents that keep another owner).
//! - Foreground: the API server parks the owner behind the `foregroundDeletion` finalizer; the collector
//!   deletes its dependents (in the foreground when they have dependents themselves) and removes the
//!   finalizer once no dependent with `blockOwnerDeletion: true` is left.
//! - Orphan: the owner waits behind the `orphan` finalizer while the collector strips the owner's
//!   reference from every dependent, then the finalizer goes and the dependents stay.
//!
//! Dependents that point at an owner which never existed (seeded fixtures) are left alone: only an owner's
//! deletion, seen as an event, triggers collection.

use serde_json::{Value, json};

use super::{Controller, Requeue, delete, deleting, owner_refs, read, remove_finalizer, update, warn};
use crate::store::{Event, EventType, ObjKey, State};
use crate::util::get_str;

/// The finalizer of foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of orphan deletion.
pub const ORPHAN: &str = "orphan";

/// The garbage collector (see the module docs).
pub struct GarbageCollector;

fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

fn uid_of(obj: &Value) -> &str {
    get_str(obj, &["metadata", "uid"]).unwrap_or("")
}

/// Objects referencing `uid` as an owner.
fn dependents_of(st: &State, uid: &str) -> Vec<ObjKey> {
    if uid.is_empty() {
        return Vec::new();
    }
    st.objects()
        .filter(|(_, o)| owner_refs(o).iter().any(|r| r["uid"] == json!(uid)))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The key an owner reference points at, when its type is served.
fn owner_key(st: &State, dependent: &ObjKey, r: &Value) -> Option<ObjKey> {
    let rt = st.type_for(r["apiVersion"].as_str()?, r["kind"].as_str()?)?;
    Some(ObjKey::new(&rt, &dependent.namespace, r["name"].as_str()?))
}

impl Controller for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        let obj = &event.object;
        let mut keys = Vec::new();
        match event.kind {
            EventType::Deleted => {
                // The owner is gone: look at its dependents.
                keys.extend(dependents_of(st, uid_of(obj)));
                // A dependent is gone: an owner waiting in the foreground may be free now.
                for r in owner_refs(obj) {
                    if let Some(k) = owner_key(st, &event.key, &r)
                        && read(st, &k).is_some_and(|o| deleting(&o) && has_finalizer(&o, FOREGROUND))
                    {
                        keys.push(k);
                    }
                }
            }
            EventType::Added | EventType::Modified => {
                if deleting(obj) && (has_finalizer(obj, FOREGROUND) || has_finalizer(obj, ORPHAN)) {
                    keys.push(event.key.clone());
                }
            }
        }
        keys
    }

    fn reconcile(&mut self, st: &mut State, key: &ObjKey, _queue: &Requeue) {
        let Some(obj) = read(st, key) else { return };
        let uid = uid_of(&obj).to_string();
        if deleting(&obj) && has_finalizer(&obj, ORPHAN) {
            for dep in dependents_of(st, &uid) {
                if let Some(mut d) = read(st, &dep) {
                    let refs: Vec<Value> = owner_refs(&d)
                        .into_iter()
                        .filter(|r| r["uid"] != json!(uid))
                        .collect();
                    d["metadata"]["ownerReferences"] = json!(refs);
                    if refs.is_empty() {
                        d["metadata"].as_object_mut().map(|m| m.remove("ownerReferences"));
                    }
                    warn(self.name(), "orphaning a dependent", update(st, &dep, d));
                }
            }
            warn(
                self.name(),
                "removing the orphan finalizer",
                remove_finalizer(st, key, ORPHAN),
            );
            return;
        }
        if deleting(&obj) && has_finalizer(&obj, FOREGROUND) {
            let mut blocking = false;
            for dep in dependents_of(st, &uid) {
                let Some(d) = read(st, &dep) else { continue };
                if !deleting(&d) {
                    let policy = if dependents_of(st, uid_of(&d)).is_empty() {
                        "Background"
                    } else {
                        "Foreground"
                    };
                    warn(self.name(), "deleting a dependent", delete(st, &dep, policy));
                }
                let blocks = owner_refs(&d)
                    .iter()
                    .any(|r| r["uid"] == json!(uid) && r["blockOwnerDeletion"] == json!(true));
                if blocks && read(st, &dep).is_some() {
                    blocking = true;
                }
            }
            if !blocking {
                warn(
                    self.name(),
                    "removing the foregroundDeletion finalizer",
                    remove_finalizer(st, key, FOREGROUND),
                );
            }
            return;
        }
        // A dependent: delete it when none of its owners is left, else drop the references to gone owners.
        let refs = owner_refs(&obj);
        if refs.is_empty() || deleting(&obj) {
            return;
        }
        let alive: Vec<Value> = refs
            .iter()
            .filter(|r| match owner_key(st, key, r) {
                // An owner of a kind not served here cannot be checked: keep it.
                None => true,
                Some(k) => read(st, &k).is_some_and(|o| o["metadata"]["uid"] == r["uid"]),
            })
            .cloned()
            .collect();
        if alive.is_empty() {
            let foreground = refs.iter().any(|r| {
                owner_key(st, key, r)
                    .and_then(|k| read(st, &k))
                    .is_some_and(|o| deleting(&o) && has_finalizer(&o, FOREGROUND))
            });
            let policy = if foreground { "Foreground" } else { "Background" };
            warn(
                self.name(),
                "deleting an orphaned dependent",
                delete(st, key, policy),
            );
        } else if alive.len() < refs.len() {
            let mut d = obj.clone();
            d["metadata"]["ownerReferences"] = json!(alive);
            warn(
                self.name(),
                "dropping references to deleted owners",
                update(st, key, d),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use crate::store::Store;

    async fn until(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn a_dependent_with_another_owner_survives_until_the_last_goes() {
        let store = Store::new();
        let controllers = crate::controllers::spawn(store.clone(), None, None);
        let uid = |name: &str| store.get("configmaps", "default", name).unwrap()["metadata"]["uid"].clone();
        for name in ["a", "b"] {
            store
                .insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}))
                .unwrap();
        }
        let owner =
            |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid(name)});
        store
            .insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "dep", "namespace": "default", "ownerReferences": [owner("a"), owner("b")]}}))
            .unwrap();
        store.delete("configmaps", "default", "a").unwrap();
        until("the reference to a dropped", || {
            store.get("configmaps", "default", "dep").is_some_and(|d| {
                d["metadata"]["ownerReferences"].as_array().map(Vec::len) == Some(1)
                    && d["metadata"]["ownerReferences"][0]["name"] == "b"
            })
        })
        .await;
        store.delete("configmaps", "default", "b").unwrap();
        until("the dependent collected", || {
            store.get("configmaps", "default", "dep").is_none()
        })
        .await;
        controllers.abort();
    }

    #[tokio::test]
    async fn without_controllers_the_store_cascades_inline() {
        let store = Store::new();
        store
            .insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}))
            .unwrap();
        let uid = store.get("configmaps", "default", "a").unwrap()["metadata"]["uid"].clone();
        store
            .insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dep", "namespace": "default",
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": uid}]}}))
            .unwrap();
        store.delete("configmaps", "default", "a").unwrap();
        assert!(store.get("configmaps", "default", "dep").is_none());
    }
}

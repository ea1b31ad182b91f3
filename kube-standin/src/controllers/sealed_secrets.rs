//! The sealed-secrets controller (bitnami-labs/sealed-secrets `pkg/controller/controller.go`), running
//! only while its chart is installed — while the Service `kube-system/sealed-secrets-controller` exists,
//! as the real one runs only where the chart put it. Each SealedSecret (`bitnami.com/v1alpha1`) is
//! unsealed with the key ring ([`crate::sealing`]) into the Secret of the same name: labels, annotations,
//! type from `spec.template`, a controller owner reference to the SealedSecret; an existing Secret it
//! does not control is left alone (unless annotated `sealedsecrets.bitnami.com/managed: "true"`). The
//! outcome goes to `status` (condition `Synced` True/False with the error message, `observedGeneration`)
//! and to an Event (`Unsealed`, `ErrUnsealFailed`, `ErrUpdateFailed`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Controller, Requeue, controlled_by, create, deleting, read, record_event, update, warn, write_status,
};
use crate::sealing::{KeyRing, MANAGED, unseal};
use crate::store::{Event, ObjKey, State};
use crate::util::{get_str, now_rfc3339};

/// Where the chart puts the controller's Service (`fullnameOverride: sealed-secrets-controller`, kubeseal's
/// default name).
pub const SERVICE: (&str, &str) = ("kube-system", "sealed-secrets-controller");
const GROUP: &str = "bitnami.com";
const PLURAL: &str = "sealedsecrets";
const COMPONENT: &str = "sealed-secrets-controller";

/// The controller (see the module docs).
pub struct SealedSecretsController {
    keys: Arc<KeyRing>,
}

impl SealedSecretsController {
    /// A controller unsealing with `keys`.
    pub fn new(keys: Arc<KeyRing>) -> Self {
        SealedSecretsController { keys }
    }
}

/// Whether the controller is installed (its Service exists).
pub fn installed(st: &State) -> bool {
    st.objects().any(|(k, _)| {
        k.group.is_empty() && k.plural == "services" && (k.namespace.as_str(), k.name.as_str()) == SERVICE
    })
}

fn sealed_secret_keys(st: &State) -> Vec<ObjKey> {
    st.objects()
        .filter(|(k, _)| k.group == GROUP && k.plural == PLURAL)
        .map(|(k, _)| k.clone())
        .collect()
}

fn synced(previous: Option<&Value>, error: Option<&str>, now: &str) -> Value {
    let status = if error.is_some() { "False" } else { "True" };
    let old = previous
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Synced"));
    let transition = match old {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut cond = json!({"type": "Synced", "status": status, "lastUpdateTime": now,
                          "lastTransitionTime": transition});
    if let Some(message) = error {
        cond["message"] = json!(message);
    }
    cond
}

impl Controller for SealedSecretsController {
    fn name(&self) -> &'static str {
        COMPONENT
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        let k = &event.key;
        if k.group == GROUP && k.plural == PLURAL {
            return vec![k.clone()];
        }
        // The chart arrives: everything waiting is unsealed.
        if k.group.is_empty() && k.plural == "services" && (k.namespace.as_str(), k.name.as_str()) == SERVICE
        {
            return sealed_secret_keys(st);
        }
        // A Secret it controls changed or went: put it back.
        if k.group.is_empty() && k.plural == "secrets" {
            let owner = super::controller_key(st, &event.object, &k.namespace, "SealedSecret");
            return owner.into_iter().collect();
        }
        Vec::new()
    }

    fn reconcile(&mut self, st: &mut State, key: &ObjKey, queue: &Requeue) {
        let Some(ss) = read(st, key) else { return };
        if deleting(&ss) || !installed(st) {
            return;
        }
        let keys = match self.keys.ready() {
            Some(Ok(keys)) => keys,
            Some(Err(e)) => {
                tracing::error!("{COMPONENT}: {e}");
                return;
            }
            None => {
                // The key is being generated; come back once it is there.
                queue.after(key, Duration::from_millis(200));
                return;
            }
        };
        let outcome = unseal(&ss, &keys).map_err(|e| {
            record_event(
                st,
                &ss,
                "ErrUnsealFailed",
                &format!("Failed to unseal: {e}"),
                COMPONENT,
            );
            e
        });
        let outcome = outcome.and_then(|secret| {
            let result = apply_secret(st, &ss, secret);
            match &result {
                Ok(changed) if *changed => record_event(
                    st,
                    &ss,
                    "Unsealed",
                    "SealedSecret unsealed successfully",
                    COMPONENT,
                ),
                Ok(_) => {}
                Err(e) => record_event(st, &ss, "ErrUpdateFailed", e, COMPONENT),
            }
            result.map(|_| ())
        });
        let previous = ss.get("status");
        let now = now_rfc3339();
        let error = outcome.err();
        let cond = synced(previous, error.as_deref(), &now);
        let generation = ss.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
        let unchanged = previous.is_some_and(|p| {
            p["observedGeneration"] == generation
                && p["conditions"].as_array().is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["type"] == "Synced"
                            && c["status"] == cond["status"]
                            && c["message"] == cond["message"]
                    })
                })
        });
        // As the controller: the status is written when the condition or the generation changed.
        if !unchanged {
            let status = json!({"conditions": [cond], "observedGeneration": generation});
            warn(
                COMPONENT,
                "writing SealedSecret status",
                write_status(st, key, status),
            );
        }
    }
}

/// Creates or updates the Secret; whether it changed, or the controller's error.
fn apply_secret(st: &mut State, ss: &Value, secret: Value) -> Result<bool, String> {
    let ns = get_str(ss, &["metadata", "namespace"]).unwrap_or("").to_string();
    let name = get_str(ss, &["metadata", "name"]).unwrap_or("").to_string();
    let secret_key = super::key("", "secrets", &ns, &name);
    let Some(existing) = read(st, &secret_key) else {
        return create(st, secret).map(|_| true).map_err(|e| e.message);
    };
    let uid = get_str(ss, &["metadata", "uid"]).unwrap_or("");
    let managed = existing.pointer(&format!("/metadata/annotations/{}", MANAGED.replace('/', "~1")))
        == Some(&json!("true"));
    if !controlled_by(&existing, uid) && !managed {
        return Err(format!(
            "failed update: Resource \"{name}\" already exists and is not managed by SealedSecret"
        ));
    }
    let mut updated = existing.clone();
    for field in ["labels", "annotations", "ownerReferences"] {
        match secret["metadata"].get(field) {
            Some(v) => updated["metadata"][field] = v.clone(),
            None => {
                if let Some(meta) = updated["metadata"].as_object_mut() {
                    meta.remove(field);
                }
            }
        }
    }
    updated["data"] = secret["data"].clone();
    updated["type"] = secret.get("type").cloned().unwrap_or(json!("Opaque"));
    if updated == existing {
        return Ok(false);
    }
    update(st, &secret_key, updated)
        .map(|_| true)
        .map_err(|e| e.message)
}

//! The controllers a real cluster runs, driven by the store's events like [`crate::simulate`]:
//! the garbage collector and the namespace controller (always, as kube-controller-manager always runs),
//! and — with `--simulate-ready` — the Deployment, ReplicaSet, StatefulSet, DaemonSet and Job controllers and Argo
//! CD's application controller; with `--simulate-ready` or `--sealing-key`, the sealed-secrets controller.
//!
//! Each controller says which of its objects an event concerns ([`Controller::watches`]) and reconciles
//! one object at a time, level-triggered, under the store lock ([`Controller::reconcile`]). Writes that
//! change nothing emit no event, so the loop settles; nothing polls. Pods become ready through the
//! simulation's kubelet stand-in ([`crate::simulate`]), which is what moves the workload controllers on.

pub mod argocd;
pub mod argocd_health;
pub mod argocd_repo;
pub mod argocd_sync;
pub mod daemonset;
pub mod deployment;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
pub mod replicaset;
pub mod sealed_secrets;
pub mod statefulset;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::{Event, EventType, ObjKey, State, Store, WriteCtx};
use crate::util::get_str;

/// The field manager of kube-controller-manager's writes.
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";

/// One controller: which objects an event concerns, and how to bring one object to its desired state.
pub trait Controller: Send {
    /// The controller's name, for logs.
    fn name(&self) -> &'static str;
    /// The keys (of objects this controller reconciles) an event concerns.
    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey>;
    /// Reconciles one object (it may be gone); writes go through `st`, later work through `queue`.
    fn reconcile(&mut self, st: &mut State, key: &ObjKey, queue: &Requeue);
}

/// Asks for a key to be reconciled again later (the simulated delays of operators).
#[derive(Clone)]
pub struct Requeue {
    tx: mpsc::UnboundedSender<(usize, ObjKey)>,
    controller: usize,
}

impl Requeue {
    /// Reconciles `key` again after `delay`.
    pub fn after(&self, key: &ObjKey, delay: Duration) {
        let tx = self.tx.clone();
        let item = (self.controller, key.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(item);
        });
    }
}

/// Starts the controllers: the garbage collector and namespace controller always, the workload and Argo
/// CD controllers when `simulate` gives the operators' delay.
pub fn spawn(
    store: Store,
    simulate: Option<Duration>,
    argocd: Option<argocd_repo::RepoServerConfig>,
) -> JoinHandle<()> {
    let mut controllers: Vec<Box<dyn Controller>> = vec![
        Box::new(garbage_collector::GarbageCollector),
        Box::new(namespace::NamespaceController),
    ];
    if let Some(delay) = simulate {
        controllers.push(Box::new(deployment::DeploymentController::default()));
        controllers.push(Box::new(replicaset::ReplicaSetController::default()));
        controllers.push(Box::new(statefulset::StatefulSetController::default()));
        controllers.push(Box::new(daemonset::DaemonSetController::default()));
        controllers.push(Box::new(job::JobController::default()));
        let application_controller = match argocd.map(argocd_sync::RenderedSource::new) {
            Some(Ok(source)) => argocd::ApplicationController::with_source(delay, Box::new(source)),
            Some(Err(e)) => {
                tracing::error!("argocd: cannot create the repo-server's cache directory: {e}");
                argocd::ApplicationController::new(delay)
            }
            None => argocd::ApplicationController::new(delay),
        };
        controllers.push(Box::new(application_controller));
    }
    if let Some(keys) = store.lock().overrides.sealing.clone() {
        controllers.push(Box::new(sealed_secrets::SealedSecretsController::new(keys)));
    }
    let (pokes_tx, mut pokes) = mpsc::unbounded_channel::<ObjKey>();
    let (later_tx, mut later) = mpsc::unbounded_channel::<(usize, ObjKey)>();
    let (mut events, initial) = {
        let mut st = store.lock();
        st.overrides.garbage_collector = true;
        st.overrides.controller_pokes = Some(pokes_tx);
        (st.subscribe(), st.all_objects())
    };
    let requeues: Vec<Requeue> = (0..controllers.len())
        .map(|controller| Requeue {
            tx: later_tx.clone(),
            controller,
        })
        .collect();
    tokio::spawn(async move {
        let mut pending: Vec<BTreeSet<ObjKey>> = vec![BTreeSet::new(); controllers.len()];
        {
            let st = store.lock();
            for (key, object) in initial {
                let ev = synthetic(EventType::Added, key, object);
                route(&mut controllers, &mut pending, &st, &ev);
            }
        }
        loop {
            run_pending(&store, &mut controllers, &mut pending, &requeues);
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        let st = store.lock();
                        route(&mut controllers, &mut pending, &st, &ev);
                        // Take whatever else is already queued before reconciling.
                        while let Ok(ev) = events.try_recv() {
                            route(&mut controllers, &mut pending, &st, &ev);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let st = store.lock();
                        for (key, object) in st.all_objects() {
                            let ev = synthetic(EventType::Modified, key, object);
                            route(&mut controllers, &mut pending, &st, &ev);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                poke = pokes.recv() => {
                    let Some(key) = poke else { return };
                    let st = store.lock();
                    if let Some(object) = st.objects().find(|(k, _)| **k == key).map(|(_, o)| o.clone()) {
                        let ev = synthetic(EventType::Modified, key, object);
                        route(&mut controllers, &mut pending, &st, &ev);
                    }
                }
                item = later.recv() => {
                    let Some((controller, key)) = item else { return };
                    pending[controller].insert(key);
                }
            }
        }
    })
}

fn synthetic(kind: EventType, key: ObjKey, object: Value) -> Event {
    Event {
        rv: 0,
        kind,
        key,
        object,
        prev: None,
    }
}

fn route(
    controllers: &mut [Box<dyn Controller>],
    pending: &mut [BTreeSet<ObjKey>],
    st: &State,
    event: &Event,
) {
    for (i, c) in controllers.iter_mut().enumerate() {
        pending[i].extend(c.watches(st, event));
    }
}

fn run_pending(
    store: &Store,
    controllers: &mut [Box<dyn Controller>],
    pending: &mut [BTreeSet<ObjKey>],
    requeues: &[Requeue],
) {
    for (i, c) in controllers.iter_mut().enumerate() {
        let keys = std::mem::take(&mut pending[i]);
        for key in keys {
            let mut st = store.lock();
            c.reconcile(&mut st, &key, &requeues[i]);
        }
    }
}

/// The key of an event's object when it is of `group`/`plural`.
pub fn key_if(event: &Event, group: &str, plural: &str) -> Option<ObjKey> {
    (event.key.group == group && event.key.plural == plural).then(|| event.key.clone())
}

/// What a workload controller reconciles for `event`: the workload (`group`, `plural`) when it changed
/// itself, or the `kind` that controls a changed child (`child`); `None` for any other event.
pub fn workload_or_controller(
    st: &State,
    event: &Event,
    (group, plural): (&str, &str),
    child: (&str, &str),
    kind: &str,
) -> Option<Vec<ObjKey>> {
    if let Some(k) = key_if(event, group, plural) {
        return Some(vec![k]);
    }
    (event.key.group == child.0 && event.key.plural == child.1).then(|| {
        controller_key(st, &event.object, &event.key.namespace, kind)
            .into_iter()
            .collect()
    })
}

/// The served type of a key.
pub fn type_of(st: &State, group: &str, plural: &str) -> Option<ResourceType> {
    st.registry
        .types()
        .iter()
        .find(|t| t.group == group && t.plural == plural)
        .map(|t| (**t).clone())
}

/// One stored object by key.
pub fn read(st: &State, key: &ObjKey) -> Option<Value> {
    let rt = type_of(st, &key.group, &key.plural)?;
    st.get(&rt, &key.namespace, &key.name).cloned()
}

/// A key for `group`/`plural` in `namespace`.
pub fn key(group: &str, plural: &str, namespace: &str, name: &str) -> ObjKey {
    ObjKey {
        group: group.into(),
        plural: plural.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// Whether `obj` has a controller owner reference to `owner_uid`.
pub fn controlled_by(obj: &Value, owner_uid: &str) -> bool {
    owner_refs(obj)
        .iter()
        .any(|r| r["uid"] == json!(owner_uid) && r["controller"] == json!(true))
}

/// An object's owner references.
pub fn owner_refs(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A new pod from `owner`'s `spec.template`: named `OWNER-xxxxx` by the server (`generateName`), in
/// `namespace`, controlled by `owner` — what the ReplicaSet, Job and DaemonSet controllers create.
pub fn pod_from_template(owner: &Value, namespace: &str) -> Value {
    let template = owner.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = template
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let name = get_str(owner, &["metadata", "name"]).unwrap_or("");
    meta.insert("generateName".into(), json!(format!("{name}-")));
    meta.insert("namespace".into(), json!(namespace));
    meta.insert("ownerReferences".into(), json!([controller_ref(owner)]));
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
           "spec": template.get("spec").cloned().unwrap_or(json!({}))})
}

/// The key of `obj`'s controller owner, when it is of `kind`.
pub fn controller_key(st: &State, obj: &Value, namespace: &str, kind: &str) -> Option<ObjKey> {
    let r = owner_refs(obj)
        .into_iter()
        .find(|r| r["controller"] == json!(true) && r["kind"] == json!(kind))?;
    let rt = st.type_for(r["apiVersion"].as_str()?, kind)?;
    Some(ObjKey::new(&rt, namespace, r["name"].as_str()?))
}

/// The owner reference a controller puts on what it creates.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
    })
}

/// Whether the object is being deleted.
pub fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// An integer field, with a default.
pub fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

/// Objects of `group`/`plural` in `namespace` controlled by `owner_uid`, sorted by name.
pub fn owned(st: &State, group: &str, plural: &str, namespace: &str, owner_uid: &str) -> Vec<Value> {
    st.objects()
        .filter(|(k, _)| k.group == group && k.plural == plural && k.namespace == namespace)
        .filter(|(_, o)| controlled_by(o, owner_uid))
        .map(|(_, o)| o.clone())
        .collect()
}

fn ctx(subresource: &str) -> WriteCtx {
    WriteCtx {
        manager: CONTROLLER_MANAGER.into(),
        subresource: subresource.into(),
        ..Default::default()
    }
}

/// Creates an object through the API path (so a Pod starts `Pending` like a new one).
pub fn create(st: &mut State, obj: Value) -> Result<Value, ApiError> {
    let api_version = get_str(&obj, &["apiVersion"]).unwrap_or("").to_string();
    let kind = get_str(&obj, &["kind"]).unwrap_or("").to_string();
    let namespace = get_str(&obj, &["metadata", "namespace"])
        .unwrap_or("")
        .to_string();
    let rt = st
        .type_for(&api_version, &kind)
        .ok_or_else(|| ApiError::internal(format!("no served type {api_version} {kind}")))?;
    st.create(&rt, &namespace, obj, &ctx(""))
}

/// Replaces an object's main resource (a no-op write emits nothing).
pub fn update(st: &mut State, key: &ObjKey, obj: Value) -> Result<Value, ApiError> {
    write(st, key, obj, "")
}

/// Replaces an object's status when it differs (through the status subresource when it has one).
pub fn write_status(st: &mut State, key: &ObjKey, status: Value) -> Result<(), ApiError> {
    let Some(mut obj) = read(st, key) else {
        return Ok(());
    };
    if obj.get("status") == Some(&status) {
        return Ok(());
    }
    obj["status"] = status;
    let rt = type_of(st, &key.group, &key.plural)
        .ok_or_else(|| ApiError::internal(format!("no served type {}", key.plural)))?;
    let sub = if rt.has_status() { "status" } else { "" };
    write(st, key, obj, sub).map(|_| ())
}

/// Replaces an object through `subresource` (`""`, `status`, `finalize`).
pub fn write(st: &mut State, key: &ObjKey, obj: Value, subresource: &str) -> Result<Value, ApiError> {
    let rt = type_of(st, &key.group, &key.plural)
        .ok_or_else(|| ApiError::internal(format!("no served type {}", key.plural)))?;
    st.replace(&rt, &key.namespace, &key.name, obj, &ctx(subresource))
}

/// Deletes an object with a propagation policy (`Background`, `Foreground`, `Orphan`).
pub fn delete(st: &mut State, key: &ObjKey, policy: &str) -> Result<(), ApiError> {
    let rt = type_of(st, &key.group, &key.plural)
        .ok_or_else(|| ApiError::internal(format!("no served type {}", key.plural)))?;
    let options = json!({"propagationPolicy": policy});
    match st.delete(&rt, &key.namespace, &key.name, &ctx(""), Some(&options)) {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes one finalizer from an object (the store finishes a pending deletion when it was the last).
pub fn remove_finalizer(st: &mut State, key: &ObjKey, finalizer: &str) -> Result<(), ApiError> {
    let Some(mut obj) = read(st, key) else {
        return Ok(());
    };
    let Some(list) = obj
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    let before = list.len();
    list.retain(|f| f != finalizer);
    if list.len() == before {
        return Ok(());
    }
    update(st, key, obj).map(|_| ())
}

/// Logs a failed controller write (the next event retries).
pub fn warn(controller: &str, what: &str, result: Result<impl Sized, ApiError>) {
    if let Err(e) = result {
        tracing::warn!("{controller}: {what}: {}", e.message);
    }
}

/// A condition as the workload controllers write it, keeping its transition time while its status holds.
pub fn condition(
    previous: Option<&Value>,
    ty: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> Value {
    let status = if status { "True" } else { "False" };
    let old = previous
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty));
    let transition = old
        .filter(|c| c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or(json!(now));
    let same = old.is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message);
    let update = if same {
        old.and_then(|c| c.get("lastUpdateTime").cloned())
            .unwrap_or(json!(now))
    } else {
        json!(now)
    };
    json!({"type": ty, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition,
           "reason": reason, "message": message})
}

/// The pod-template hash: FNV-1a (32 bit) over the template's canonical JSON, its decimal digits mapped
/// through the alphabet of `rand.SafeEncodeString`, as the Deployment and StatefulSet controllers name things.
pub fn template_hash(template: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&json!(k).to_string());
                    out.push(':');
                    canonical(&m[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    canonical(x, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(template, &mut text);
    let mut hash: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    safe_encode(&hash.to_string())
}

/// `rand.SafeEncodeString`: every byte mapped into an alphabet without vowels or confusable digits.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Sets `v[path...][k] = val`, creating objects on the way.
pub fn insert_at(v: &mut Value, path: &[&str], k: &str, val: Value) {
    crate::util::ensure_object(v, path).insert(k.to_string(), val);
}

/// Keeps pods' unready annotation in line with their owner's unready message: the simulation's kubelet
/// makes them ready after its delay unless the owner is held unready.
pub fn sync_pod_unready(st: &mut State, pods: &[Value], message: Option<&str>, controller: &str) {
    let ann = crate::simulate::UNREADY_ANNOTATION;
    for pod in pods {
        let current = get_str(pod, &["metadata", "annotations", ann]);
        if current == message {
            continue;
        }
        let mut p = pod.clone();
        match message {
            Some(m) => insert_at(&mut p, &["metadata", "annotations"], ann, json!(m)),
            None => {
                if let Some(a) = p
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                {
                    a.remove(ann);
                }
            }
        }
        let k = key(
            "",
            "pods",
            get_str(pod, &["metadata", "namespace"]).unwrap_or(""),
            get_str(pod, &["metadata", "name"]).unwrap_or(""),
        );
        warn(
            controller,
            "passing the owner's unready message to a pod",
            update(st, &k, p),
        );
    }
}

/// A `metav1.LabelSelector` as a [`LabelSelector`]; `None` for an empty or unusable one (which selects
/// nothing for adoption).
pub fn label_selector(selector: Option<&Value>) -> Option<LabelSelector> {
    let selector = selector?;
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        parts.extend(m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = e["key"].as_str()?;
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str()? {
            "In" => format!("{k} in ({})", values.join(",")),
            "NotIn" => format!("{k} notin ({})", values.join(",")),
            "Exists" => k.to_string(),
            "DoesNotExist" => format!("!{k}"),
            _ => return None,
        });
    }
    if parts.is_empty() {
        return None;
    }
    LabelSelector::parse(&parts.join(",")).ok()
}

/// Adopts orphans, as `ControllerRefManager` does: objects of `group`/`plural` in the owner's namespace
/// without a controller, matching the owner's `spec.selector` (and `accept`), get the owner as controller.
pub fn adopt_orphans(
    st: &mut State,
    owner: &Value,
    group: &str,
    plural: &str,
    accept: impl Fn(&Value) -> bool,
) {
    let Some(selector) = label_selector(owner.pointer("/spec/selector")) else {
        return;
    };
    let ns = get_str(owner, &["metadata", "namespace"]).unwrap_or("");
    let orphans: Vec<(ObjKey, Value)> = st
        .objects()
        .filter(|(k, _)| k.group == group && k.plural == plural && k.namespace == ns)
        .filter(|(_, o)| !deleting(o) && !owner_refs(o).iter().any(|r| r["controller"] == json!(true)))
        .filter(|(_, o)| selector.matches(o) && accept(o))
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect();
    for (k, mut o) in orphans {
        let mut refs = owner_refs(&o);
        refs.push(controller_ref(owner));
        o["metadata"]["ownerReferences"] = json!(refs);
        warn(CONTROLLER_MANAGER, "adopting an orphan", update(st, &k, o));
    }
}

/// Records a Normal core/v1 Event about `involved`, as the controllers' event recorders do (what
/// `kubectl describe` lists under Events).
pub fn record_event(st: &mut State, involved: &Value, reason: &str, message: &str, component: &str) {
    let name = get_str(involved, &["metadata", "name"]).unwrap_or("");
    let namespace = get_str(involved, &["metadata", "namespace"]).unwrap_or("default");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let now = crate::util::now_rfc3339();
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": namespace},
        "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": name,
                           "namespace": namespace, "uid": involved["metadata"]["uid"],
                           "resourceVersion": involved["metadata"]["resourceVersion"]},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "source": {"component": component}, "firstTimestamp": now, "lastTimestamp": now,
        "reportingComponent": component, "reportingInstance": ""
    });
    warn(component, "recording an event", create(st, event));
}

/// Whether a Pod is Running with its Ready condition true.
pub fn pod_ready(pod: &Value) -> bool {
    !deleting(pod)
        && pod.pointer("/status/phase") == Some(&json!("Running"))
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The unready message the simulation honours for `key` (the override or the annotation).
pub fn unready_message(st: &State, key: &ObjKey, obj: &Value) -> Option<String> {
    st.overrides.unready.get(key).cloned().or_else(|| {
        get_str(
            obj,
            &["metadata", "annotations", crate::simulate::UNREADY_ANNOTATION],
        )
        .map(str::to_string)
    })
}

/// Tracks objects seeded with a status: controllers leave them as seeded until their spec changes, as the
/// simulation does (see [`crate::simulate`]).
#[derive(Debug, Default)]
pub struct SeededGenerations(std::collections::HashMap<ObjKey, i64>);

impl SeededGenerations {
    /// Whether the object is still as seeded (remembers the generation it was first seen at).
    pub fn frozen(&mut self, st: &State, key: &ObjKey, obj: &Value) -> bool {
        if !st.overrides.seeded_status.contains(key) {
            self.0.remove(key);
            return false;
        }
        let generation = int_at(obj, "/metadata/generation", 1);
        let seen = *self.0.entry(key.clone()).or_insert(generation);
        seen == generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_look_like_the_controllers() {
        let h = template_hash(&json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}));
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(
            h.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
            "{h}"
        );
        // Key order does not matter.
        let a = template_hash(&json!({"a": 1, "b": 2}));
        let b = template_hash(&json!({"b": 2, "a": 1}));
        assert_eq!(a, b);
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }
}

//! Argo CD's application controller, as far as the lifecycle goes.
//!
//! - Sync: the simulated delay after an Application appears or its spec changes, it is synced through its
//!   [`ApplicationSource`] and gets `status.sync` (with `comparedTo`), `status.health`, `operationState`
//!   (with `syncResult`), `history`, `resources`, `sourceType`, `reconciledAt` and `controllerNamespace`
//!   in the shape Argo CD writes them. An unready override (`kube-standin/unready: message`) reports it
//!   `OutOfSync`/`Progressing` with that message instead. An Application seeded with a status keeps it
//!   until its spec changes.
//! - Refresh: `argocd.argoproj.io/refresh: normal|hard` (what `argocd app get --refresh` sets) makes the
//!   Application compared again now (`hard` renders again), then the annotation is removed, as Argo CD does.
//! - Cascade deletion: an Application being deleted with `resources-finalizer.argocd.argoproj.io`
//!   (foreground, Argo CD's default) or its `/foreground` and `/background` variants has the resources it
//!   manages deleted with that propagation policy — those in its destination namespace carrying its
//!   tracking label `app.kubernetes.io/instance: APP` or tracking annotation
//!   `argocd.argoproj.io/tracking-id: APP:...` — and once they are gone the finalizer is removed, so the
//!   Application goes. An AppProject's `resources-finalizer.argocd.argoproj.io` is removed once no
//!   Application of the project is left in its namespace.
//!
//! The source is pluggable: [`ObservedSource`] (the default) renders nothing and reports the resources
//! already tracked in the destination namespace; a source that renders and applies the Application's
//! manifests implements [`ApplicationSource`] and is given to [`ApplicationController::with_source`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::argocd_health::HealthStatus;
use super::{
    Controller, Requeue, SeededGenerations, delete, deleting, read, remove_finalizer, warn, write_status,
};
use crate::store::{Event, EventType, ObjKey, State};
use crate::util::{get_str, now_rfc3339};

/// The cascade-deletion finalizer (foreground unless suffixed `/background`).
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// The label Argo CD's label tracking writes.
pub const TRACKING_LABEL: &str = "app.kubernetes.io/instance";
/// The annotation Argo CD's annotation tracking writes (`APP:GROUP/KIND:NAMESPACE/NAME`).
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";
const MANAGER: &str = "argocd-application-controller";
/// The annotation that asks for a refresh now (`normal`, or `hard` to render again); removed when done.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";

/// Removes the refresh annotation, as Argo CD does once the refresh is done.
fn clear_refresh(st: &mut State, key: &ObjKey) {
    let Some(mut obj) = read(st, key) else { return };
    let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if annotations.remove(REFRESH_ANNOTATION).is_some() {
        warn(
            MANAGER,
            "removing the refresh annotation",
            super::update(st, key, obj).map(|_| ()),
        );
    }
}

/// One resource an Application manages.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedResource {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// What a sync of one Application did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    /// The revision synced (a commit or chart version; [`ObservedSource`] reports `kube-standin`).
    pub revision: String,
    /// The resources the Application manages after the sync.
    pub resources: Vec<ManagedResource>,
}

/// How an Application's source becomes resources: render and apply it
/// ([`super::argocd_sync::RenderedSource`], `--argocd`), or observe what is there ([`ObservedSource`]).
/// Called under the store lock; an `Err` from [`ApplicationSource::sync`] is reported as Argo CD's
/// `ComparisonError` condition with the message, and the Application stays `Unknown`/`Missing`.
pub trait ApplicationSource: Send {
    /// Whether `app` can be synced now; `false` while its manifests are still being produced (the
    /// controller asks again shortly). Must not block.
    fn prepare(&mut self, _st: &State, _app: &Value) -> bool {
        true
    }
    /// The revision the source holds for `app` now (a change triggers a sync); `None`: it never changes.
    fn current_revision(&mut self, _app: &Value) -> Option<String> {
        None
    }
    /// How often to look at [`ApplicationSource::current_revision`] again (the repo-server's polling).
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
    /// Forgets a deleted Application.
    fn forget(&mut self, _app: &ObjKey) {}
    /// The health of one managed resource; `None` when it has no health check (it does not count).
    fn health(&self, _st: &State, _resource: &ManagedResource) -> Option<(HealthStatus, String)> {
        None
    }
    /// Syncs `app` (the stored Application) and reports the outcome.
    fn sync(&mut self, st: &mut State, app: &Value) -> Result<SyncOutcome, String>;
}

/// The default source: nothing is rendered; the Application manages what already carries its tracking
/// label or annotation in its destination namespace.
#[derive(Debug, Default)]
pub struct ObservedSource;

impl ApplicationSource for ObservedSource {
    fn sync(&mut self, st: &mut State, app: &Value) -> Result<SyncOutcome, String> {
        let name = get_str(app, &["metadata", "name"]).unwrap_or("");
        let dest = destination_namespace(app);
        let mut resources: Vec<ManagedResource> = st
            .objects()
            .filter(|(k, o)| k.namespace == dest && tracked_by(o, name))
            .map(|(k, o)| {
                let api_version = get_str(o, &["apiVersion"]).unwrap_or("v1");
                ManagedResource {
                    group: k.group.clone(),
                    version: api_version.rsplit('/').next().unwrap_or("v1").to_string(),
                    kind: get_str(o, &["kind"]).unwrap_or("").to_string(),
                    namespace: k.namespace.clone(),
                    name: k.name.clone(),
                }
            })
            .collect();
        resources.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        Ok(SyncOutcome {
            revision: "kube-standin".into(),
            resources,
        })
    }
}

/// Whether an object is one Application `app` manages: tracked by its label or by a tracking annotation
/// naming this very object, and not owned by another object (Argo CD sees owned objects — a Deployment's
/// ReplicaSets and pods — as children in the tree, not as managed resources; the garbage collector
/// removes them).
pub fn tracked_by(obj: &Value, app: &str) -> bool {
    if app.is_empty() || has_owner(obj) {
        return false;
    }
    let name = get_str(obj, &["metadata", "name"]).unwrap_or("");
    get_str(obj, &["metadata", "labels", TRACKING_LABEL]) == Some(app)
        || get_str(obj, &["metadata", "annotations", TRACKING_ANNOTATION]).is_some_and(|t| {
            let mut parts = t.split(':');
            parts.next() == Some(app)
                && parts
                    .nth(1)
                    .is_none_or(|ns_name| ns_name.rsplit('/').next() == Some(name))
        })
}

/// Whether `app` (deploying into `dest`) manages the object at `k`: tracked in its destination namespace,
/// or anywhere (cluster-scoped CRDs and ClusterRoles of an operator's chart) by its tracking annotation.
fn managed_by(k: &ObjKey, obj: &Value, app: &str, dest: &str) -> bool {
    let annotated = || {
        get_str(obj, &["metadata", "annotations", TRACKING_ANNOTATION])
            .is_some_and(|t| t.split(':').next() == Some(app))
    };
    (k.namespace == dest && tracked_by(obj, app)) || (annotated() && tracked_by(obj, app))
}

fn has_owner(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

/// The Application names an object is tracked by.
fn trackers(obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = get_str(obj, &["metadata", "labels", TRACKING_LABEL]) {
        out.push(l.to_string());
    }
    if let Some(a) =
        get_str(obj, &["metadata", "annotations", TRACKING_ANNOTATION]).and_then(|t| t.split(':').next())
    {
        out.push(a.to_string());
    }
    out
}

/// The namespace an Application deploys into.
pub fn destination_namespace(app: &Value) -> String {
    get_str(app, &["spec", "destination", "namespace"])
        .or_else(|| get_str(app, &["metadata", "namespace"]))
        .unwrap_or("")
        .to_string()
}

fn resources_finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|f| *f == RESOURCES_FINALIZER || f.starts_with(&format!("{RESOURCES_FINALIZER}/")))
        .map(str::to_string)
        .collect()
}

fn source_type(app: &Value) -> &'static str {
    let source = app
        .pointer("/spec/source")
        .or_else(|| app.pointer("/spec/sources/0"));
    match source {
        Some(s) if s.get("chart").is_some() || s.get("helm").is_some() => "Helm",
        Some(s) if s.get("kustomize").is_some() => "Kustomize",
        Some(s) if s.get("plugin").is_some() => "Plugin",
        _ => "Directory",
    }
}

/// What an Application's status depends on: its identity, spec, unready override and source revision.
#[derive(Debug, Clone, PartialEq)]
struct Signature {
    uid: String,
    spec: Value,
    unready: Option<String>,
    revision: Option<String>,
}

/// Argo CD's application controller (see the module docs).
pub struct ApplicationController {
    delay: Duration,
    source: Box<dyn ApplicationSource>,
    seeded: SeededGenerations,
    /// The signature whose status is written.
    done: HashMap<ObjKey, Signature>,
    /// The signature waiting for its delay.
    due: HashMap<ObjKey, (Signature, Instant)>,
    /// When each Application's source is looked at again.
    polls: HashMap<ObjKey, Instant>,
}

impl ApplicationController {
    /// The controller with the default [`ObservedSource`].
    pub fn new(delay: Duration) -> Self {
        Self::with_source(delay, Box::new(ObservedSource))
    }

    /// The controller with another source.
    pub fn with_source(delay: Duration, source: Box<dyn ApplicationSource>) -> Self {
        ApplicationController {
            delay,
            source,
            seeded: SeededGenerations::default(),
            done: HashMap::new(),
            due: HashMap::new(),
            polls: HashMap::new(),
        }
    }

    fn finalize_application(&mut self, st: &mut State, app_key: &ObjKey, app: &Value) {
        let finalizers = resources_finalizers(app);
        if finalizers.is_empty() {
            return;
        }
        let policy = if finalizers.iter().all(|f| f.ends_with("/background")) {
            "Background"
        } else {
            "Foreground"
        };
        let dest = destination_namespace(app);
        let managed: Vec<(ObjKey, bool)> = st
            .objects()
            .filter(|(k, o)| *k != app_key && managed_by(k, o, &app_key.name, &dest))
            .map(|(k, o)| (k.clone(), super::deleting(o)))
            .collect();
        for (k, is_deleting) in &managed {
            if !is_deleting {
                warn(MANAGER, "deleting a managed resource", delete(st, k, policy));
            }
        }
        let left = st
            .objects()
            .any(|(k, o)| k != app_key && managed_by(k, o, &app_key.name, &dest));
        if !left {
            for f in finalizers {
                warn(
                    MANAGER,
                    "removing the resources finalizer",
                    remove_finalizer(st, app_key, &f),
                );
            }
        }
    }

    fn finalize_project(&self, st: &mut State, project_key: &ObjKey, project: &Value) {
        if !resources_finalizers(project)
            .iter()
            .any(|f| f == RESOURCES_FINALIZER)
        {
            return;
        }
        let in_use = st.objects().any(|(k, o)| {
            k.group == "argoproj.io"
                && k.plural == "applications"
                && k.namespace == project_key.namespace
                && get_str(o, &["spec", "project"]) == Some(project_key.name.as_str())
        });
        if !in_use {
            warn(
                MANAGER,
                "removing the project finalizer",
                remove_finalizer(st, project_key, RESOURCES_FINALIZER),
            );
        }
    }

    /// `status.resources` entries (with each one's health) and the Application's health: the worst of its
    /// resources', with that resource's message.
    fn resources_and_health(
        &self,
        st: &State,
        resources: &[ManagedResource],
    ) -> (Vec<Value>, (HealthStatus, String)) {
        let mut worst = (HealthStatus::Healthy, String::new());
        let entries = resources
            .iter()
            .map(|r| {
                let mut v = json!({"version": r.version, "kind": r.kind, "namespace": r.namespace,
                                   "name": r.name, "status": "Synced"});
                if !r.group.is_empty() {
                    v["group"] = json!(r.group);
                }
                if let Some((status, message)) = self.source.health(st, r) {
                    v["health"] = json!({"status": status.as_str()});
                    if !message.is_empty() {
                        v["health"]["message"] = json!(message);
                    }
                    if status > worst.0 {
                        let what = format!("{} {}", r.kind, r.name);
                        let message = if message.is_empty() {
                            what
                        } else {
                            format!("{what}: {message}")
                        };
                        worst = (status, message);
                    }
                }
                v
            })
            .collect();
        (entries, worst)
    }

    /// Re-evaluates a synced Application's health from its live resources (they change after the sync);
    /// reports whether one of them is gone.
    fn refresh_health(&self, st: &mut State, app_key: &ObjKey, app: &Value) -> bool {
        let Some(status) = app.get("status") else {
            return false;
        };
        if status.pointer("/sync/status") != Some(&json!("Synced")) {
            return false;
        }
        let resources: Vec<ManagedResource> = status
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| ManagedResource {
                group: get_str(r, &["group"]).unwrap_or("").to_string(),
                version: get_str(r, &["version"]).unwrap_or("").to_string(),
                kind: get_str(r, &["kind"]).unwrap_or("").to_string(),
                namespace: get_str(r, &["namespace"]).unwrap_or("").to_string(),
                name: get_str(r, &["name"]).unwrap_or("").to_string(),
            })
            .collect();
        let (entries, health) = self.resources_and_health(st, &resources);
        let mut next = status.clone();
        let moved = status.pointer("/health/status") != Some(&json!(health.0.as_str()));
        next["resources"] = json!(entries);
        next["health"]["status"] = json!(health.0.as_str());
        match health.1.as_str() {
            "" => {
                if let Some(h) = next["health"].as_object_mut() {
                    h.remove("message");
                }
            }
            m => next["health"]["message"] = json!(m),
        }
        if moved {
            next["health"]["lastTransitionTime"] = json!(now_rfc3339());
        }
        if next != *status {
            warn(
                MANAGER,
                "writing Application health",
                write_status(st, app_key, next),
            );
        }
        health.0 == HealthStatus::Missing
    }

    fn status(&mut self, st: &mut State, app: &Value, unready: Option<&str>) -> Value {
        let now = now_rfc3339();
        let previous = app.get("status").cloned().unwrap_or(json!({}));
        let app_ns = get_str(app, &["metadata", "namespace"]).unwrap_or("").to_string();
        let spec = app.get("spec").cloned().unwrap_or(json!({}));
        let mut compared = Map::new();
        match spec.get("sources") {
            Some(sources) => compared.insert("sources".into(), sources.clone()),
            None => compared.insert("source".into(), spec.get("source").cloned().unwrap_or(json!({}))),
        };
        compared.insert(
            "destination".into(),
            spec.get("destination").cloned().unwrap_or(json!({})),
        );
        let compared = Value::Object(compared);
        // health.lastTransitionTime moves only when the health status does.
        let health_since = |status: &str| {
            previous
                .pointer("/health/lastTransitionTime")
                .filter(|_| previous.pointer("/health/status") == Some(&json!(status)))
                .cloned()
                .unwrap_or(json!(now))
        };
        let mut s = Map::new();
        if let Some(message) = unready {
            s.insert(
                "sync".into(),
                json!({"status": "OutOfSync", "comparedTo": compared}),
            );
            s.insert(
                "health".into(),
                json!({"status": "Progressing", "message": message,
                "lastTransitionTime": health_since("Progressing")}),
            );
        } else {
            match self.source.sync(st, app) {
                Err(message) => {
                    s.insert(
                        "sync".into(),
                        json!({"status": "Unknown", "comparedTo": compared}),
                    );
                    s.insert(
                        "health".into(),
                        json!({"status": "Missing",
                        "lastTransitionTime": health_since("Missing")}),
                    );
                    s.insert(
                        "conditions".into(),
                        json!([{"type": "ComparisonError", "message": message, "lastTransitionTime": now}]),
                    );
                }
                Ok(outcome) => {
                    let (resources, health) = self.resources_and_health(st, &outcome.resources);
                    let already = previous.pointer("/sync/status") == Some(&json!("Synced"))
                        && previous.pointer("/sync/comparedTo") == Some(&compared)
                        && previous.pointer("/sync/revision") == Some(&json!(outcome.revision));
                    s.insert(
                        "sync".into(),
                        json!({"status": "Synced", "revision": outcome.revision, "comparedTo": compared}),
                    );
                    let mut h = json!({"status": health.0.as_str(),
                        "lastTransitionTime": health_since(health.0.as_str())});
                    if !health.1.is_empty() {
                        h["message"] = json!(health.1);
                    }
                    s.insert("health".into(), h);
                    s.insert("resources".into(), json!(resources));
                    let initiated = if spec.pointer("/syncPolicy/automated").is_some() {
                        json!({"automated": true})
                    } else {
                        json!({"username": "admin"})
                    };
                    if already && previous.get("operationState").is_some() {
                        for k in ["operationState", "history"] {
                            if let Some(v) = previous.get(k) {
                                s.insert(k.into(), v.clone());
                            }
                        }
                    } else {
                        let source = compared.get("source").cloned();
                        let sync_results: Vec<Value> = outcome
                            .resources
                            .iter()
                            .map(|r| json!({"group": r.group, "version": r.version, "kind": r.kind, "namespace": r.namespace,
                                "name": r.name, "status": "Synced", "message": format!("{}/{} configured", r.kind.to_ascii_lowercase(), r.name),
                                "hookPhase": "Running", "syncPhase": "Sync"}))
                            .collect();
                        let mut sync_result =
                            json!({"revision": outcome.revision, "resources": sync_results});
                        if let Some(src) = &source {
                            sync_result["source"] = src.clone();
                        }
                        let mut operation = json!({"sync": {"revision": outcome.revision, "syncStrategy": {"hook": {}}},
                            "initiatedBy": initiated, "retry": spec.pointer("/syncPolicy/retry").cloned().unwrap_or(json!({}))});
                        if let Some(opts) = spec.pointer("/syncPolicy/syncOptions") {
                            operation["sync"]["syncOptions"] = opts.clone();
                        }
                        s.insert("operationState".into(), json!({
                            "operation": operation, "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                            "startedAt": now, "finishedAt": now, "syncResult": sync_result
                        }));
                        let mut history: Vec<Value> = previous
                            .get("history")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        let id = history
                            .iter()
                            .filter_map(|h| h["id"].as_i64())
                            .max()
                            .map_or(0, |m| m + 1);
                        let mut entry = json!({"revision": outcome.revision, "deployedAt": now, "deployStartedAt": now,
                                               "id": id, "initiatedBy": initiated});
                        if let Some(src) = source {
                            entry["source"] = src;
                        }
                        history.push(entry);
                        let limit = spec
                            .get("revisionHistoryLimit")
                            .and_then(Value::as_i64)
                            .unwrap_or(10)
                            .max(1) as usize;
                        if history.len() > limit {
                            history.drain(..history.len() - limit);
                        }
                        s.insert("history".into(), json!(history));
                    }
                }
            }
        }
        s.insert("reconciledAt".into(), json!(now));
        s.insert("sourceType".into(), json!(source_type(app)));
        s.insert("resourceHealthSource".into(), json!("appTree"));
        s.insert("controllerNamespace".into(), json!(app_ns));
        s.insert(
            "summary".into(),
            previous.get("summary").cloned().unwrap_or(json!({})),
        );
        Value::Object(s)
    }
}

/// Compares statuses with timestamps blanked (a re-sync that changes nothing writes nothing).
fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    fn blank(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let timeish = k.ends_with("Time") || k.ends_with("At");
                        (k.clone(), if timeish { Value::Null } else { blank(v) })
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(blank).collect()),
            other => other.clone(),
        }
    }
    blank(a) == blank(b)
}

impl Controller for ApplicationController {
    fn name(&self) -> &'static str {
        MANAGER
    }

    fn watches(&mut self, st: &State, event: &Event) -> Vec<ObjKey> {
        let k = &event.key;
        if k.group == "argoproj.io" && k.plural == "applications" {
            let mut keys = vec![k.clone()];
            if event.kind == EventType::Deleted {
                self.done.remove(k);
                self.due.remove(k);
                self.polls.remove(k);
                self.source.forget(k);
                // A project waiting for its Applications to go.
                keys.extend(
                    st.objects()
                        .filter(|(p, o)| {
                            p.group == "argoproj.io"
                                && p.plural == "appprojects"
                                && p.namespace == k.namespace
                                && deleting(o)
                        })
                        .map(|(p, _)| p.clone()),
                );
            }
            return keys;
        }
        if k.group == "argoproj.io" && k.plural == "appprojects" {
            return vec![k.clone()];
        }
        // A managed resource changed: its Application's health may move, and an Application being deleted
        // may finish once it is gone. Owned objects (a Deployment's pods, which copy its labels) are not
        // managed: their owner's own events follow.
        if has_owner(&event.object) {
            return Vec::new();
        }
        let names = trackers(&event.object);
        if names.is_empty() {
            return Vec::new();
        }
        st.objects()
            .filter(|(a, o)| {
                a.group == "argoproj.io"
                    && a.plural == "applications"
                    && names.contains(&a.name)
                    && (deleting(o) || self.done.contains_key(a))
            })
            .map(|(a, _)| a.clone())
            .collect()
    }

    fn reconcile(&mut self, st: &mut State, app_key: &ObjKey, queue: &Requeue) {
        let Some(obj) = read(st, app_key) else { return };
        if app_key.plural == "appprojects" {
            if deleting(&obj) {
                self.finalize_project(st, app_key, &obj);
            }
            return;
        }
        if deleting(&obj) {
            self.finalize_application(st, app_key, &obj);
            return;
        }
        let unready = super::unready_message(st, app_key, &obj);
        let refresh = get_str(&obj, &["metadata", "annotations", REFRESH_ANNOTATION]).map(str::to_string);
        if let Some(kind) = &refresh {
            // Once per refresh: the render it starts must not be thrown away on the next look.
            if kind == "hard" && !self.due.contains_key(app_key) {
                self.source.forget(app_key);
            }
            self.done.remove(app_key);
        }
        let sig = Signature {
            uid: get_str(&obj, &["metadata", "uid"]).unwrap_or("").to_string(),
            spec: obj.get("spec").cloned().unwrap_or(json!({})),
            unready: unready.clone(),
            revision: self.source.current_revision(&obj),
        };
        if let Some(every) = self.source.poll_interval() {
            let now = Instant::now();
            if self.polls.get(app_key).is_none_or(|at| *at <= now) {
                self.polls.insert(app_key.clone(), now + every);
                queue.after(app_key, every);
            }
        }
        if self.done.get(app_key) == Some(&sig) {
            let gone = self.refresh_health(st, app_key, &obj);
            // selfHeal: a managed resource deleted behind Argo CD's back is synced back.
            if !(gone && obj.pointer("/spec/syncPolicy/automated/selfHeal") == Some(&json!(true))) {
                return;
            }
            self.done.remove(app_key);
        }
        if unready.is_none() && self.seeded.frozen(st, app_key, &obj) {
            self.done.insert(app_key.clone(), sig);
            if refresh.is_some() {
                clear_refresh(st, app_key);
            }
            return;
        }
        let now = Instant::now();
        match self.due.get(app_key) {
            Some((due_sig, at)) if *due_sig == sig => {
                if now < *at {
                    queue.after(app_key, *at - now);
                    return;
                }
            }
            _ => {
                self.due.insert(app_key.clone(), (sig, now + self.delay));
                queue.after(app_key, self.delay);
                return;
            }
        }
        if unready.is_none() && !self.source.prepare(st, &obj) {
            queue.after(app_key, Duration::from_millis(200));
            return;
        }
        self.due.remove(app_key);
        let status = self.status(st, &obj, unready.as_deref());
        let failed = status.get("conditions").is_some();
        if !obj.get("status").is_some_and(|s| same_ignoring_times(s, &status)) {
            warn(
                MANAGER,
                "writing Application status",
                write_status(st, app_key, status),
            );
        }
        if refresh.is_some() {
            clear_refresh(st, app_key);
        }
        match self.source.poll_interval() {
            // A failed comparison is retried, as Argo CD's controller does on each refresh: a CRD from an
            // earlier wave may be there now.
            Some(every) if failed => {
                // Forget the last good sync too: going back to that spec must be synced again.
                self.done.remove(app_key);
                queue.after(app_key, every);
            }
            _ => {
                self.done.insert(app_key.clone(), sig);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_by_label_or_annotation() {
        let by_label = json!({"metadata": {"labels": {TRACKING_LABEL: "web"}}});
        let by_annotation = json!({"metadata": {"name": "web", "annotations": {TRACKING_ANNOTATION: "web:apps/Deployment:staging/web"}}});
        assert!(tracked_by(&by_label, "web") && tracked_by(&by_annotation, "web"));
        let copied = json!({"metadata": {"name": "web-1", "annotations": {TRACKING_ANNOTATION: "web:apps/Deployment:staging/web"}}});
        assert!(!tracked_by(&copied, "web"));
        let owned =
            json!({"metadata": {"labels": {TRACKING_LABEL: "web"}, "ownerReferences": [{"uid": "u"}]}});
        assert!(!tracked_by(&owned, "web"));
        assert!(!tracked_by(&by_annotation, "we") && !tracked_by(&json!({}), "web"));
        assert_eq!(trackers(&by_annotation), ["web"]);
    }

    #[test]
    fn finalizer_variants() {
        let app = json!({"metadata": {"finalizers": ["x", RESOURCES_FINALIZER, "resources-finalizer.argocd.argoproj.io/background"]}});
        assert_eq!(resources_finalizers(&app).len(), 2);
    }
}

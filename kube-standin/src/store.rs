//! The object store: every object as JSON, one global resourceVersion counter, a bounded history of
//! watch events, field ownership for server-side apply, and the write path that does the API server's
//! bookkeeping (uid, timestamps, generation, status subresource, finalizers, validation, defaulting).
//!
//! All state sits behind one `std::sync::Mutex` that is never held across an `.await`; events are
//! broadcast while the lock is held, so a watcher that subscribes under the lock sees no gap and no
//! duplicate between its snapshot and the live stream.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::apply::{self, ManagedFields};
use crate::defaults;
use crate::error::{ApiError, Error};
use crate::patch::{self, PatchKind};
use crate::registry::{Registry, ResourceType};
use crate::schema;
use crate::selector::Selectors;
use crate::util::{ensure_object, get_str, meta_mut, new_uid, now_rfc3339, random_suffix, without_keys};

/// How many events the watch history keeps before older resourceVersions answer 410.
const HISTORY: usize = 10_000;

/// Identifies a stored object independently of the version it is served at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjKey {
    /// The key of `name` in `namespace` (dropped for cluster-scoped types).
    pub(crate) fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// Added, Modified or Deleted.
    pub kind: EventType,
    /// Which object.
    pub key: ObjKey,
    /// The object after the change (the last state for Deleted).
    pub object: Value,
    /// The object before the change (for selector transitions).
    pub prev: Option<Value>,
}

/// Options of one write, from the query string and the caller.
#[derive(Debug, Clone, Default)]
pub struct WriteCtx {
    /// `dryRun=All`: full processing, nothing stored.
    pub dry_run: bool,
    /// Seeding: keep the given status, create missing namespaces.
    pub seed: bool,
    /// The field manager (query `fieldManager`, else derived from the user agent).
    pub manager: String,
    /// `fieldValidation=Strict`: unknown fields are an error instead of being pruned.
    pub strict: bool,
    /// `""` for the main resource or `"status"`.
    pub subresource: String,
}

/// Run-time switches kept next to the objects.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Objects that must stay unready, with the message the simulation reports.
    pub unready: HashMap<ObjKey, String>,
    /// Port-forward targets: (namespace, pod, port) → `host:port`.
    pub forwards: HashMap<(String, String, u16), String>,
    /// Proxy targets: (namespace, service) → base URL.
    pub proxies: HashMap<(String, String), String>,
    /// Requests refused with 403 (and answered "no" in access reviews).
    pub denials: Vec<crate::authz::Denial>,
    /// Objects seeded with a non-empty status (the simulation leaves them alone until their spec changes).
    pub seeded_status: HashSet<ObjKey>,
    /// Wakes the simulation when an override changes.
    pub pokes: Option<mpsc::UnboundedSender<ObjKey>>,
    /// Wakes the controllers when an override changes.
    pub controller_pokes: Option<mpsc::UnboundedSender<ObjKey>>,
    /// A garbage collector and namespace controller run (see [`crate::controllers`]): deleting an owner or a
    /// namespace leaves its dependents to them, as on a real cluster. Without them the store cascades inline.
    pub garbage_collector: bool,
    /// The sealed-secrets controller's keys, when it runs (`--simulate-ready` or `--sealing-key`): it unseals
    /// SealedSecrets and answers the proxy of `kube-system/sealed-secrets-controller`.
    pub sealing: Option<std::sync::Arc<crate::sealing::KeyRing>>,
}

/// Everything behind the lock.
pub struct State {
    rv: u64,
    /// Events up to and including this resourceVersion are gone from the history.
    floor: u64,
    /// The served types.
    pub registry: Registry,
    objects: BTreeMap<ObjKey, Value>,
    fields: HashMap<ObjKey, ManagedFields>,
    history: VecDeque<Arc<Event>>,
    tx: broadcast::Sender<Arc<Event>>,
    /// Run-time switches.
    pub overrides: Overrides,
    /// The upstream OpenAPI document: list merge strategies for strategic merge patches of built-ins.
    pub openapi: Option<Arc<crate::openapi::Upstream>>,
}

/// A cheap, clonable handle on the shared object store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("resource_version", &self.resource_version())
            .finish()
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn name_of(obj: &Value) -> &str {
    get_str(obj, &["metadata", "name"]).unwrap_or("")
}

/// Server-owned metadata that clients cannot change through writes.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

impl Store {
    /// An empty store with the built-in types and the `default` and `kube-system` namespaces.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        let state = State {
            rv: 0,
            floor: 0,
            registry: Registry::builtin(),
            objects: BTreeMap::new(),
            fields: HashMap::new(),
            history: VecDeque::new(),
            tx,
            overrides: Overrides::default(),
            openapi: None,
        };
        let store = Store {
            inner: Arc::new(Mutex::new(state)),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            store
                .insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .expect("builtin namespace");
        }
        store
    }

    /// Locks the state (internal; never held across an await).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Resolves a kubectl-style resource name (`secrets`, `cluster`, `rmq`, `Cluster.postgresql.cnpg.io`).
    pub fn resolve(&self, resource: &str) -> Option<ResourceType> {
        self.lock().registry.lookup(resource).map(|t| (*t).clone())
    }

    /// Reads one object (namespace ignored for cluster-scoped types).
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.lock();
        let rt = st.registry.lookup(resource)?;
        st.get(&rt, namespace, name).map(|o| present(&rt, o))
    }

    /// Reads one object as a typed k8s-openapi/kube resource, e.g. `store.get_as::<Secret>("ns", "x")`.
    pub fn get_as<K: k8s_openapi::Resource + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let resource = if K::GROUP.is_empty() {
            K::URL_PATH_SEGMENT.to_string()
        } else {
            format!("{}.{}", K::URL_PATH_SEGMENT, K::GROUP)
        };
        self.get(&resource, namespace, name)
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// Lists objects of a type, in one namespace or (`None`) in all.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let st = self.lock();
        let Some(rt) = st.registry.lookup(resource) else {
            return Vec::new();
        };
        st.list(&rt, namespace, &Selectors::default())
    }

    /// Creates or replaces an object the way seeding does: API bookkeeping and defaults, but the given
    /// `status` is kept and a missing namespace is created. CRDs register their types.
    pub fn insert(&self, obj: Value) -> Result<Value, Error> {
        self.lock().seed(obj)
    }

    /// [`Store::insert`] for every document of a multi-document YAML string.
    pub fn insert_yaml(&self, yaml: &str) -> Result<Vec<Value>, Error> {
        parse_yaml_docs(yaml, "inserted YAML")?
            .into_iter()
            .map(|d| self.insert(d))
            .collect()
    }

    /// Replaces an object's `status` (as an operator would through the status subresource).
    pub fn set_status(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<Value, Error> {
        let mut st = self.lock();
        let rt = st
            .registry
            .lookup(resource)
            .ok_or_else(|| Error::UnknownResource(resource.into()))?;
        let ctx = WriteCtx {
            manager: "kube-standin".into(),
            subresource: "status".into(),
            ..Default::default()
        };
        let what = format!("{}/{namespace}/{name}", rt.plural);
        let mut body = st
            .get(&rt, namespace, name)
            .cloned()
            .ok_or_else(|| Error::Rejected {
                what: what.clone(),
                source: ApiError::not_found(&rt, name),
            })?;
        body["status"] = status;
        st.replace(&rt, namespace, name, body, &ctx)
            .map_err(|source| Error::Rejected { what, source })
    }

    /// Deletes an object (finalizers respected, as through the API).
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, Error> {
        let mut st = self.lock();
        let rt = st
            .registry
            .lookup(resource)
            .ok_or_else(|| Error::UnknownResource(resource.into()))?;
        st.delete(&rt, namespace, name, &WriteCtx::default(), None)
            .map_err(|source| Error::Rejected {
                what: format!("{}/{namespace}/{name}", rt.plural),
                source,
            })
    }

    /// Forgets the watch history: a watch resuming from any older resourceVersion gets 410 Expired.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.floor = st.rv;
    }

    /// Subscribes to committed events (used by the simulation).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.lock().tx.subscribe()
    }
}

/// Parses multi-document YAML (or JSON) into objects, skipping empty documents and unwrapping `List`s.
pub fn parse_yaml_docs(text: &str, origin: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Error::Yaml {
        origin: origin.into(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for d in docs {
        match d {
            Value::Null => {}
            Value::Object(ref m) if m.is_empty() => {}
            Value::Object(ref m)
                if m.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && m.contains_key("items") =>
            {
                out.extend(m["items"].as_array().cloned().unwrap_or_default());
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Rewrites `apiVersion`/`kind` for the version the client asked for (objects are stored once per
/// group/resource; versions are not converted).
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
    }
    out
}

impl State {
    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Events newer than `rv` still in the history, or `Err(oldest)` when `rv` was compacted away.
    pub fn events_since(&self, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.floor {
            return Err(self.floor + 1);
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// A new receiver of live events; subscribe while holding the lock to get a gap-free stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// One stored object.
    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&ObjKey::new(rt, namespace, name))
    }

    /// Objects of a type matching the selectors, ordered by namespace and name, presented for `rt`.
    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>, sel: &Selectors) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| !rt.namespaced || k.namespace == ns))
            .filter(|(_, o)| sel.matches(o))
            .map(|(_, o)| present(rt, o))
            .collect()
    }

    /// Every stored object by key, without copying (for controllers looking for owners and dependents).
    pub fn objects(&self) -> impl Iterator<Item = (&ObjKey, &Value)> {
        self.objects.iter()
    }

    /// All objects (for the simulation's initial scan).
    pub fn all_objects(&self) -> Vec<(ObjKey, Value)> {
        self.objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn emit(&mut self, kind: EventType, key: ObjKey, object: Value, prev: Option<Value>) {
        let event = Arc::new(Event {
            rv: self.rv,
            kind,
            key,
            object,
            prev,
        });
        self.history.push_back(event.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.rv;
            }
        }
        let _ = self.tx.send(event);
    }

    /// Seeds one object: create, or replace (status included) if it exists.
    fn seed(&mut self, obj: Value) -> Result<Value, Error> {
        let api_version = get_str(&obj, &["apiVersion"]).unwrap_or("").to_string();
        let kind = get_str(&obj, &["kind"]).unwrap_or("").to_string();
        let name = name_of(&obj).to_string();
        let namespace = get_str(&obj, &["metadata", "namespace"])
            .unwrap_or("default")
            .to_string();
        let what = format!("{kind}/{namespace}/{name}");
        let rt = self
            .type_for(&api_version, &kind)
            .ok_or_else(|| Error::UnknownResource(format!("{api_version} {kind}")))?;
        let ctx = WriteCtx {
            seed: true,
            manager: "kube-standin".into(),
            ..Default::default()
        };
        let key = ObjKey::new(&rt, &namespace, &name);
        if obj
            .get("status")
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty())
        {
            self.overrides.seeded_status.insert(key);
        } else {
            self.overrides.seeded_status.remove(&key);
        }
        let result = if self.get(&rt, &namespace, &name).is_some() {
            self.replace(&rt, &namespace, &name, obj, &ctx)
        } else {
            self.create(&rt, &namespace, obj, &ctx)
        };
        result.map_err(|source| Error::Rejected { what, source })
    }

    /// The type for an `apiVersion` + `kind` pair.
    pub fn type_for(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.registry
            .types()
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// The API server refuses new objects in a namespace being deleted (its `NamespaceLifecycle` admission).
    fn refuse_terminating_namespace(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<(), ApiError> {
        let key = ObjKey {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.to_string(),
        };
        if self
            .objects
            .get(&key)
            .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_some())
        {
            return Err(ApiError {
                details: Some(Box::new(
                    json!({"name": name, "group": rt.group, "kind": rt.plural,
                    "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                )),
                ..ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.group_resource()
                    ),
                )
            });
        }
        Ok(())
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .keys()
            .any(|k| k.group.is_empty() && k.plural == "namespaces" && k.name == ns)
    }

    /// Creates an object (POST).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut obj: Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        check_type(rt, &obj)?;
        let body_ns = get_str(&obj, &["metadata", "namespace"])
            .unwrap_or("")
            .to_string();
        if rt.namespaced && !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = name_of(&obj).to_string();
        if name.is_empty() {
            match get_str(&obj, &["metadata", "generateName"]) {
                Some(prefix) => name = format!("{prefix}{}", random_suffix(5)),
                None => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        vec![crate::error::Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            }
        }
        defaults::validate_name(rt, &name)?;
        if rt.namespaced && !self.namespace_exists(namespace) {
            if ctx.seed {
                self.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            } else {
                let ns_rt = self.registry.lookup("namespaces").expect("builtin");
                return Err(ApiError::not_found(&ns_rt, namespace));
            }
        }
        if rt.namespaced {
            self.refuse_terminating_namespace(rt, namespace, &name)?;
        }
        let key = ObjKey::new(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt, &name));
        }
        {
            let meta = meta_mut(&mut obj);
            for k in SERVER_METADATA {
                meta.remove(*k);
            }
            meta.insert("name".into(), json!(name));
            if rt.namespaced {
                meta.insert("namespace".into(), json!(namespace));
            } else {
                meta.remove("namespace");
            }
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
            meta.insert("generation".into(), json!(1));
        }
        if rt.has_status() && !ctx.seed {
            obj.as_object_mut().expect("checked").remove("status");
        }
        defaults::on_write(rt, &mut obj);
        defaults::on_create(rt, &mut obj, ctx.seed);
        self.validate(rt, &name, &mut obj, ctx)?;
        let mut fields = ManagedFields::new();
        let empty = json!({});
        let scope = apply::scoped(&obj, "", rt.has_status());
        apply::record_update(
            &mut fields,
            &empty,
            &scope,
            &ctx.manager,
            "",
            &rt.api_version(),
            &now_rfc3339(),
        );
        self.commit_create(rt, key, obj, fields, ctx)
    }

    fn commit_create(
        &mut self,
        rt: &ResourceType,
        key: ObjKey,
        mut obj: Value,
        fields: ManagedFields,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            // Reject unusable CRDs before storing them, as the real server validates them.
            crate::registry::types_from_crd(&obj).map_err(|m| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "CustomResourceDefinition.apiextensions.k8s.io {:?} is invalid: {m}",
                        key.name
                    ),
                )
            })?;
        }
        if ctx.dry_run {
            return Ok(present(rt, &obj));
        }
        let rv = self.next_rv();
        let meta = meta_mut(&mut obj);
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if !fields.is_empty() {
            meta.insert("managedFields".into(), apply::render(&fields));
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            let _ = self.registry.add_crd(&obj);
        }
        self.objects.insert(key.clone(), obj.clone());
        self.fields.insert(key.clone(), fields);
        self.emit(EventType::Added, key, obj.clone(), None);
        Ok(present(rt, &obj))
    }

    /// Schema validation and pruning for custom resources.
    fn validate(
        &self,
        rt: &ResourceType,
        name: &str,
        obj: &mut Value,
        ctx: &WriteCtx,
    ) -> Result<(), ApiError> {
        let Some(schema) = &rt.schema else { return Ok(()) };
        let result = schema::validate_and_prune(schema, obj);
        if !result.causes.is_empty() {
            return Err(ApiError::invalid(rt, name, result.causes));
        }
        if ctx.strict && !result.unknown_fields.is_empty() {
            let list: Vec<String> = result
                .unknown_fields
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        Ok(())
    }

    /// Replaces an object (PUT), honouring a `metadata.resourceVersion` precondition.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        check_type(rt, &body)?;
        let body_name = name_of(&body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let (key, old) = self.existing(rt, namespace, name)?;
        if let Some(want) = get_str(&body, &["metadata", "resourceVersion"]).filter(|s| !s.is_empty())
            && want != get_str(&old, &["metadata", "resourceVersion"]).unwrap_or("")
        {
            return Err(ApiError::conflict(rt, name));
        }
        self.write_update(rt, key, old, body, None, ctx)
    }

    /// The key and a copy of a stored object, or the API's 404 for it.
    fn existing(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<(ObjKey, Value), ApiError> {
        let key = ObjKey::new(rt, namespace, name);
        let old = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        Ok((key, old))
    }

    /// Patches an object with a merge, JSON or strategic patch.
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let (key, old) = self.existing(rt, namespace, name)?;
        let mut doc = present(rt, &old);
        let schema = self.openapi.as_deref().and_then(|u| u.schema_for(rt));
        patch::apply_patch_with_schema(kind, &mut doc, body, schema)?;
        if get_str(&doc, &["metadata", "resourceVersion"]) != get_str(&old, &["metadata", "resourceVersion"])
        {
            return Err(ApiError::conflict(rt, name));
        }
        if name_of(&doc) != name {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        self.write_update(rt, key, old, doc, None, ctx)
    }

    /// Server-side apply (`application/apply-patch+yaml`); returns the object and whether it was created.
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        force: bool,
        ctx: &WriteCtx,
    ) -> Result<(Value, bool), ApiError> {
        if ctx.manager.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        if !body.is_object() {
            return Err(ApiError::bad_request("the apply configuration must be an object"));
        }
        let (Some(api_version), Some(kind)) = (get_str(&body, &["apiVersion"]), get_str(&body, &["kind"]))
        else {
            return Err(ApiError::bad_request(
                "invalid object type: apiVersion and kind are required for apply",
            ));
        };
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group != rt.group || kind != rt.kind {
            return Err(ApiError::bad_request(format!(
                "the apply configuration is a {api_version}, Kind={kind} but the URL is for {}",
                rt.group_resource()
            )));
        }
        if name_of(&body) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&body)
            )));
        }
        if let Some(ns) = get_str(&body, &["metadata", "namespace"])
            && rt.namespaced
            && ns != namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut config = apply::scoped(&body, &ctx.subresource, rt.has_status());
        if rt.group.is_empty() && rt.plural == "namespaces" {
            // Only the `finalize` subresource changes a namespace's spec.finalizers: not a field to own.
            // (Nor is an empty `spec: {}` left behind, which would claim the field above it.)
            if let Some(spec) = config.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
                if spec.is_empty() {
                    config.as_object_mut().map(|m| m.remove("spec"));
                }
            }
        }
        let now = now_rfc3339();
        let key = ObjKey::new(rt, namespace, name);
        match self.objects.get(&key).cloned() {
            None => {
                if !ctx.subresource.is_empty() {
                    return Err(ApiError::not_found(rt, name));
                }
                let skeleton = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
                let applied = apply::apply(
                    &skeleton,
                    &ManagedFields::new(),
                    &config,
                    &ctx.manager,
                    "",
                    force,
                    &rt.api_version(),
                    &now,
                )
                .map_err(|c| conflict_error(rt, name, &c))?;
                let mut obj = applied.object;
                defaults::validate_name(rt, name)?;
                if rt.namespaced && !self.namespace_exists(namespace) {
                    let ns_rt = self.registry.lookup("namespaces").expect("builtin");
                    return Err(ApiError::not_found(&ns_rt, namespace));
                }
                if rt.namespaced {
                    self.refuse_terminating_namespace(rt, namespace, name)?;
                }
                {
                    let meta = meta_mut(&mut obj);
                    meta.insert("name".into(), json!(name));
                    if rt.namespaced {
                        meta.insert("namespace".into(), json!(namespace));
                    }
                    meta.insert("uid".into(), json!(new_uid()));
                    meta.insert("creationTimestamp".into(), json!(now));
                    meta.insert("generation".into(), json!(1));
                }
                defaults::on_write(rt, &mut obj);
                defaults::on_create(rt, &mut obj, false);
                self.validate(rt, name, &mut obj, ctx)?;
                self.commit_create(rt, key, obj, applied.fields, ctx)
                    .map(|o| (o, true))
            }
            Some(old) => {
                let fields = self.fields.get(&key).cloned().unwrap_or_default();
                let applied = apply::apply(
                    &old,
                    &fields,
                    &config,
                    &ctx.manager,
                    &ctx.subresource,
                    force,
                    &rt.api_version(),
                    &now,
                )
                .map_err(|c| conflict_error(rt, name, &c))?;
                self.write_update(rt, key, old, applied.object, Some(applied.fields), ctx)
                    .map(|o| (o, false))
            }
        }
    }

    /// The shared tail of PUT, PATCH and apply on an existing object: scope to main resource or status,
    /// restore server-owned metadata, default, validate, bump generation, detect no-ops, commit, and
    /// finish a pending deletion when the last finalizer goes.
    fn write_update(
        &mut self,
        rt: &ResourceType,
        key: ObjKey,
        old: Value,
        body: Value,
        applied_fields: Option<ManagedFields>,
        ctx: &WriteCtx,
    ) -> Result<Value, ApiError> {
        let mut new = if ctx.subresource == "status" {
            let mut n = old.clone();
            match body.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    n.as_object_mut()
                        .expect("stored objects are objects")
                        .remove("status");
                }
            }
            n
        } else {
            let mut n = body;
            if !n.is_object() {
                return Err(ApiError::bad_request("the request body must be an object"));
            }
            let keep_status = rt.has_status() && !ctx.seed;
            if keep_status {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().expect("checked").remove("status");
                    }
                }
            }
            // Server-owned metadata comes from the stored object.
            let old_meta = old
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let meta = meta_mut(&mut n);
            for k in SERVER_METADATA.iter().chain(["name", "namespace"].iter()) {
                match old_meta.get(*k) {
                    Some(v) => meta.insert(k.to_string(), v.clone()),
                    None => meta.remove(*k),
                };
            }
            // A namespace's spec.finalizers change only through its `finalize` subresource.
            if is_namespace(&key) && ctx.subresource != "finalize" {
                match old.pointer("/spec/finalizers") {
                    Some(f) => {
                        ensure_object(&mut n, &["spec"]).insert("finalizers".into(), f.clone());
                    }
                    None => {
                        if let Some(spec) = n.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.remove("finalizers");
                        }
                    }
                }
            }
            n
        };
        if let Some(m) = new.as_object_mut() {
            m.insert(
                "apiVersion".into(),
                old.get("apiVersion").cloned().unwrap_or(json!(rt.api_version())),
            );
            m.insert("kind".into(), json!(rt.kind));
        }
        defaults::on_write(rt, &mut new);
        self.validate(rt, &key.name, &mut new, ctx)?;

        // Generation follows changes outside metadata (and outside status when it is a subresource).
        let ignored: &[&str] = if rt.has_status() {
            &["metadata", "status"]
        } else {
            &["metadata"]
        };
        let spec_changed = without_keys(&old, ignored) != without_keys(&new, ignored);
        if spec_changed {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                + 1;
            meta_mut(&mut new).insert("generation".into(), json!(generation));
        }
        if strip_volatile(&old) == strip_volatile(&new) {
            return Ok(present(rt, &old));
        }

        let fields = match applied_fields {
            Some(f) => f,
            None => {
                let mut f = self.fields.get(&key).cloned().unwrap_or_default();
                let sub = ctx.subresource.as_str();
                apply::record_update(
                    &mut f,
                    &apply::scoped(&old, sub, rt.has_status()),
                    &apply::scoped(&new, sub, rt.has_status()),
                    &ctx.manager,
                    sub,
                    &rt.api_version(),
                    &now_rfc3339(),
                );
                f
            }
        };
        if ctx.dry_run {
            return Ok(present(rt, &new));
        }
        let finished_deleting = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty())
            && !(self.overrides.garbage_collector && is_namespace(&key) && has_spec_finalizers(&new));
        let rv = self.next_rv();
        let meta = meta_mut(&mut new);
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if fields.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), apply::render(&fields));
        }
        if finished_deleting {
            self.remove(rt, &key, new.clone());
            return Ok(present(rt, &new));
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.registry
                .add_crd(&new)
                .map_err(|m| ApiError::new(422, "Invalid", m))?;
        }
        self.objects.insert(key.clone(), new.clone());
        self.fields.insert(key.clone(), fields);
        self.emit(EventType::Modified, key, new.clone(), Some(old));
        Ok(present(rt, &new))
    }

    /// Removes an object for good (already given its deletion resourceVersion) and cascades.
    fn remove(&mut self, rt: &ResourceType, key: &ObjKey, last: Value) {
        self.objects.remove(key);
        self.fields.remove(key);
        self.overrides.unready.remove(key);
        let uid = get_str(&last, &["metadata", "uid"]).unwrap_or("").to_string();
        self.emit(EventType::Deleted, key.clone(), last, None);

        let mut dependents: Vec<ObjKey> = Vec::new();
        let inline_cascade = !self.overrides.garbage_collector;
        if inline_cascade && is_namespace(key) {
            dependents.extend(self.objects.keys().filter(|k| k.namespace == key.name).cloned());
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            let (plural, group) = key.name.split_once('.').unwrap_or((&key.name, ""));
            dependents.extend(
                self.objects
                    .keys()
                    .filter(|k| k.group == group && k.plural == plural)
                    .cloned(),
            );
            self.registry.remove_crd(&key.name);
        }
        if inline_cascade && !uid.is_empty() {
            dependents.extend(
                self.objects
                    .iter()
                    .filter(|(_, o)| {
                        o.pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|refs| refs.iter().any(|r| r["uid"] == json!(uid)))
                    })
                    .map(|(k, _)| k.clone()),
            );
        }
        for dep in dependents {
            if let Some(mut obj) = self.objects.get(&dep).cloned() {
                let rv = self.next_rv();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                let dep_rt = self
                    .registry
                    .types()
                    .iter()
                    .find(|t| t.group == dep.group && t.plural == dep.plural)
                    .map(|t| (**t).clone())
                    .unwrap_or_else(|| rt.clone());
                self.remove(&dep_rt, &dep, obj);
            }
        }
    }

    /// Deletes an object (DELETE): immediate without finalizers, else marks `deletionTimestamp`.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        ctx: &WriteCtx,
        options: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let (key, old) = self.existing(rt, namespace, name)?;
        if let Some(pre) = options.and_then(|o| o.get("preconditions")) {
            let stale_rv = pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|rv| Some(rv) != get_str(&old, &["metadata", "resourceVersion"]));
            let wrong_uid = pre
                .get("uid")
                .and_then(Value::as_str)
                .is_some_and(|u| Some(u) != get_str(&old, &["metadata", "uid"]));
            if stale_rv || wrong_uid {
                return Err(ApiError::conflict(rt, name));
            }
        }
        if let Some(p) = propagation_policy(options)
            && !["Foreground", "Background", "Orphan"].contains(&p)
        {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            ));
        }
        let mut obj = old.clone();
        // With a garbage collector, Foreground and Orphan deletion park the object behind the finalizer
        // the collector removes once dependents are gone (or orphaned), as the API server does.
        if self.overrides.garbage_collector && !is_namespace(&key) {
            let finalizer = match propagation_policy(options) {
                Some("Foreground") => Some("foregroundDeletion"),
                Some("Orphan") => Some("orphan"),
                _ => None,
            };
            if let Some(finalizer) = finalizer {
                let list = meta_mut(&mut obj)
                    .entry("finalizers")
                    .or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut()
                    && !list.iter().any(|f| f == finalizer)
                {
                    list.push(json!(finalizer));
                }
            }
        }
        let has_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
            || (self.overrides.garbage_collector && is_namespace(&key) && has_spec_finalizers(&obj));
        if is_namespace(&key) {
            ensure_status_phase(&mut obj, "Terminating");
        }
        if ctx.dry_run {
            return Ok(present(rt, &obj));
        }
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                if obj.pointer("/metadata/finalizers") != old.pointer("/metadata/finalizers") {
                    // A second DELETE may still switch the object to foreground or orphan deletion.
                    let rv = self.next_rv();
                    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                    self.objects.insert(key.clone(), obj.clone());
                    self.emit(EventType::Modified, key, obj.clone(), Some(old));
                    return Ok(present(rt, &obj));
                }
                return Ok(present(rt, &old));
            }
            let rv = self.next_rv();
            let meta = meta_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            self.objects.insert(key.clone(), obj.clone());
            self.emit(EventType::Modified, key, obj.clone(), Some(old));
            return Ok(present(rt, &obj));
        }
        let rv = self.next_rv();
        let meta = meta_mut(&mut obj);
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.entry("deletionTimestamp").or_insert(json!(now_rfc3339()));
        self.remove(rt, &key, obj.clone());
        Ok(present(rt, &obj))
    }
}

fn is_namespace(key: &ObjKey) -> bool {
    key.group.is_empty() && key.plural == "namespaces"
}

fn has_spec_finalizers(obj: &Value) -> bool {
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// `DeleteOptions.propagationPolicy`, or `Orphan` for the legacy `orphanDependents: true`.
pub fn propagation_policy(options: Option<&Value>) -> Option<&str> {
    let options = options?;
    if let Some(p) = options.get("propagationPolicy").and_then(Value::as_str) {
        return Some(p);
    }
    match options.get("orphanDependents").and_then(Value::as_bool) {
        Some(true) => Some("Orphan"),
        Some(false) => Some("Background"),
        None => None,
    }
}

fn ensure_status_phase(obj: &mut Value, phase: &str) {
    if let Some(m) = obj.as_object_mut() {
        let status = m.entry("status").or_insert_with(|| Value::Object(Map::new()));
        if let Some(s) = status.as_object_mut() {
            s.insert("phase".into(), json!(phase));
        }
    }
}

/// The object without fields that change on every write, for no-op detection.
fn strip_volatile(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    o.as_object_mut().map(|m| m.remove("apiVersion"));
    o
}

/// A body's `kind` (and group), when given, must match the URL.
fn check_type(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if let Some(kind) = get_str(body, &["kind"])
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (kind {kind} does not match the URL, which is for {})",
            rt.kind
        )));
    }
    if let Some(api_version) = get_str(body, &["apiVersion"]) {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group != rt.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
    }
    Ok(())
}

fn conflict_error(rt: &ResourceType, name: &str, conflicts: &[apply::Conflict]) -> ApiError {
    let n = conflicts.len();
    let message = if n == 1 {
        format!(
            "Apply failed with 1 conflict: conflict with \"{}\": {}",
            conflicts[0].manager, conflicts[0].field
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in conflicts {
            by_manager.entry(&c.manager).or_default().push(&c.field);
        }
        let groups: Vec<String> = by_manager
            .iter()
            .map(|(m, fs)| {
                let items: String = fs.iter().map(|f| format!("\n- {f}")).collect();
                format!("conflicts with \"{m}\":{items}")
            })
            .collect();
        format!("Apply failed with {n} conflicts: {}", groups.join("\n"))
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"type": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
        .collect();
    ApiError {
        details: Some(Box::new(
            json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}),
        )),
        ..ApiError::new(409, "Conflict", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv_of(obj: &Value) -> u64 {
        get_str(obj, &["metadata", "resourceVersion"])
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn store_with_crd() -> Store {
        let s = Store::new();
        s.insert(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}
        }))
        .unwrap();
        s
    }

    fn ctx(manager: &str) -> WriteCtx {
        WriteCtx {
            manager: manager.into(),
            ..Default::default()
        }
    }

    #[test]
    fn bookkeeping_generation_and_status_scope() {
        let s = store_with_crd();
        let mut st = s.lock();
        let rt = st.registry.lookup("widgets").unwrap();
        let created = st
            .create(&rt, "default", json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"ready": true}}), &ctx("t"))
            .unwrap();
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(
            created.get("status").is_none(),
            "status is dropped on create through the API"
        );
        let rv1 = rv_of(&created);
        let merge = |st: &mut State, body: &[u8], ctx: &WriteCtx| {
            st.patch(&rt, "default", "w", PatchKind::Merge, body, ctx)
        };

        // A label change: new RV, same generation.
        let labelled = merge(
            &mut st,
            br#"{"metadata":{"labels":{"a":"b"}},"status":{"ready":true}}"#,
            &ctx("t"),
        )
        .unwrap();
        assert!(rv_of(&labelled) > rv1);
        assert_eq!(labelled["metadata"]["generation"], 1);
        assert!(
            labelled.get("status").is_none(),
            "main-resource writes never change status"
        );

        // A status write: status changes, generation does not.
        let status_ctx = WriteCtx {
            subresource: "status".into(),
            ..ctx("op")
        };
        let with_status = merge(
            &mut st,
            br#"{"status":{"ready":true},"spec":{"size":9}}"#,
            &status_ctx,
        )
        .unwrap();
        assert_eq!(with_status["status"]["ready"], true);
        assert_eq!(with_status["spec"]["size"], 1);
        assert_eq!(with_status["metadata"]["generation"], 1);

        // A spec change bumps generation.
        let resized = merge(&mut st, br#"{"spec":{"size":2}}"#, &ctx("t")).unwrap();
        assert_eq!(resized["metadata"]["generation"], 2);
        // No-op writes keep the RV.
        let same = merge(&mut st, br#"{"spec":{"size":2}}"#, &ctx("t")).unwrap();
        assert_eq!(rv_of(&same), rv_of(&resized));
        // Stale PUT conflicts.
        let mut stale = resized.clone();
        stale["metadata"]["resourceVersion"] = json!(rv1.to_string());
        assert_eq!(
            st.replace(&rt, "default", "w", stale, &ctx("t"))
                .unwrap_err()
                .code,
            409
        );
        // Invalid spec is rejected.
        let bad = merge(&mut st, br#"{"spec":{"size":"big"}}"#, &ctx("t")).unwrap_err();
        assert_eq!(bad.code, 422);
    }

    #[test]
    fn finalizers_and_namespace_deletion() {
        let s = Store::new();
        s.insert_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: team, finalizers: [x/y]}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: team}\nstringData: {k: v}\n").unwrap();
        assert_eq!(s.get("secrets", "team", "s").unwrap()["data"]["k"], "dg==");
        let marked = s.delete("configmaps", "team", "c").unwrap();
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get("configmaps", "team", "c").is_some());
        {
            let mut st = s.lock();
            let rt = st.registry.lookup("configmaps").unwrap();
            st.patch(
                &rt,
                "team",
                "c",
                PatchKind::Merge,
                br#"{"metadata":{"finalizers":null}}"#,
                &ctx("t"),
            )
            .unwrap();
        }
        assert!(s.get("configmaps", "team", "c").is_none());
        s.delete("namespaces", "", "team").unwrap();
        assert!(s.get("secrets", "team", "s").is_none());
        assert!(s.get("namespaces", "", "team").is_none());
    }

    #[test]
    fn history_and_compaction() {
        let s = Store::new();
        let rv = s.resource_version();
        s.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}})).unwrap();
        assert_eq!(s.lock().events_since(rv).unwrap().len(), 1);
        s.compact();
        assert!(s.lock().events_since(rv).is_err());
        let now = s.resource_version();
        assert!(s.lock().events_since(now).unwrap().is_empty());
    }
}

//! The server-side-apply engine: every object `up` writes goes through here.
//!
//! Pattern of kube's `examples/kubectl.rs`: [`Discovery`] resolves each object's group/version/kind to its
//! resource and scope, then `Api<DynamicObject>` + `Patch::Apply` with the fixed field manager
//! [`FIELD_MANAGER`]. Field conflicts with another manager are reported with the fields and managers
//! involved; they are forced only when the user passed `--force-conflicts`. The live object is read first, so
//! each apply is counted as created, changed (resourceVersion moved) or unchanged — the counts that prove a
//! second `up` is a no-op. Independent objects are applied concurrently; every call retries on 429/5xx.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Discovery, Scope};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::RwLock;

use shared::api::{ApiClient, ApiError, Call};

/// The field manager of everything `kubectl duli env` applies.
pub const FIELD_MANAGER: &str = "duli";

/// How many objects are applied at the same time: enough to hide round trips, few enough not to be throttled.
pub const CONCURRENCY: usize = 8;

/// Which object: `Kind namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, for namespaced objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectId {
    /// The identity of `obj` (empty strings where fields are missing).
    pub fn of(obj: &DynamicObject) -> Self {
        let (api_version, kind) = obj
            .types
            .as_ref()
            .map(|t| (t.api_version.clone(), t.kind.clone()))
            .unwrap_or_default();
        ObjectId {
            api_version,
            kind,
            namespace: obj.metadata.namespace.clone(),
            name: obj.metadata.name.clone().unwrap_or_default(),
        }
    }

    /// The group/version/kind.
    pub fn gvk(&self) -> GroupVersionKind {
        let (group, version) = match self.api_version.split_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), self.api_version.clone()),
        };
        GroupVersionKind {
            group,
            version,
            kind: self.kind.clone(),
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyResult {
    /// It did not exist.
    Created,
    /// It existed and changed.
    Changed,
    /// It existed and nothing changed.
    Unchanged,
}

/// Created/changed/unchanged counts of a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Objects (or releases) created.
    pub created: usize,
    /// Objects (or releases) changed.
    pub changed: usize,
    /// Objects (or releases) left as they were.
    pub unchanged: usize,
}

impl Counts {
    /// Count one outcome.
    pub fn add(&mut self, outcome: ApplyResult) {
        match outcome {
            ApplyResult::Created => self.created += 1,
            ApplyResult::Changed => self.changed += 1,
            ApplyResult::Unchanged => self.unchanged += 1,
        }
    }

    /// Add another phase's counts.
    pub fn merge(&mut self, other: Counts) {
        self.created += other.created;
        self.changed += other.changed;
        self.unchanged += other.unchanged;
    }
}

/// The result of applying (or dry-running) one object.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Which object.
    pub id: ObjectId,
    /// What happened (or would happen, for a dry run).
    pub outcome: ApplyResult,
    /// The live object before, if it existed.
    pub before: Option<Value>,
    /// The object as the server returned it after the apply.
    pub after: Value,
    /// The Argo CD Application that has taken the object over, which left it alone (see [`Applier::apply`]).
    pub left_to_argocd: Option<String>,
}

/// Why one object could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The cluster does not serve the object's kind (its CRD is not installed).
    #[error("cannot apply {id}: the cluster does not serve {} {}{hint}", id.api_version, id.kind)]
    NotServed {
        /// The object.
        id: ObjectId,
        /// What would install the kind.
        hint: String,
    },
    /// Another field manager owns fields this apply sets.
    #[error(
        "conflict applying {id}: {}; re-run with --force-conflicts to take these fields over (or revert the other manager's change)",
        conflicts.join("; ")
    )]
    Conflict {
        /// The object.
        id: ObjectId,
        /// One line per conflicting field: the field and its owner.
        conflicts: Vec<String>,
    },
    /// The object is missing what an apply needs.
    #[error("cannot apply {id}: {problem}")]
    Invalid {
        /// The object.
        id: ObjectId,
        /// What is missing.
        problem: String,
    },
    /// The API call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Every object of a batch that failed, reported at once.
#[derive(Debug, thiserror::Error)]
#[error("{} of {total} objects failed to apply:\n  - {}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - "))]
pub struct ApplyErrors {
    /// The failures.
    pub errors: Vec<ApplyError>,
    /// How many objects the batch had.
    pub total: usize,
}

/// Resolves kinds to resources with API discovery, refreshed when a kind is missing (a CRD just installed).
#[derive(Clone)]
pub struct Resolver {
    api: ApiClient,
    client: kube::Client,
    discovery: Arc<RwLock<Option<Arc<Discovery>>>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver whose calls go through `api`; discovery runs on first use.
    pub fn new(api: ApiClient) -> Self {
        Resolver {
            client: api.client().clone(),
            api,
            discovery: Arc::new(RwLock::new(None)),
        }
    }

    /// The API layer every call goes through.
    pub fn api_client(&self) -> &ApiClient {
        &self.api
    }

    /// The client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    async fn run_discovery(&self) -> Result<Arc<Discovery>, ApiError> {
        let call = Call::new("get", "API discovery (/api, /apis)", None, None);
        let client = self.client.clone();
        let discovery = self
            .api
            .call(&call, || Discovery::new(client.clone()).run_aggregated())
            .await?;
        // A server without aggregated discovery answers with zero groups instead of an error.
        let discovery = if discovery.groups().next().is_none() {
            self.api
                .call(&call, || Discovery::new(client.clone()).run())
                .await?
        } else {
            discovery
        };
        let discovery = Arc::new(discovery);
        *self.discovery.write().await = Some(discovery.clone());
        Ok(discovery)
    }

    /// Forget what discovery found (after the platform phase installed CRDs).
    pub async fn invalidate(&self) {
        *self.discovery.write().await = None;
    }

    /// The resource and capabilities serving `gvk`, or `None` when the cluster does not serve it (after one
    /// refresh of discovery, since CRDs appear while `up` runs).
    pub async fn resolve(
        &self,
        gvk: &GroupVersionKind,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, ApiError> {
        let cached = self.discovery.read().await.clone();
        let discovery = match cached {
            Some(discovery) => {
                if let Some(found) = discovery.resolve_gvk(gvk) {
                    return Ok(Some(found));
                }
                self.run_discovery().await?
            }
            None => self.run_discovery().await?,
        };
        Ok(discovery.resolve_gvk(gvk))
    }

    /// The version the cluster prefers for `group`, from the last discovery (`None`: not served).
    pub async fn preferred_version(&self, group: &str) -> Option<String> {
        let discovery = self.discovery.read().await.clone()?;
        discovery
            .get(group)
            .map(|g| g.preferred_version_or_latest().to_string())
    }

    /// The resource for `gvk`, or a guess from the kind (`Foo` → `foos`) when not served, for messages and
    /// access reviews about kinds not installed yet.
    pub async fn resource_or_guess(&self, gvk: &GroupVersionKind) -> Result<(ApiResource, bool), ApiError> {
        Ok(match self.resolve(gvk).await? {
            Some((resource, caps)) => (resource, caps.scope == Scope::Namespaced),
            None => (ApiResource::from_gvk(gvk), true),
        })
    }

    /// True when the object `name` of `gvk` exists (in `namespace`, for namespaced kinds); false when the
    /// kind is not served.
    pub async fn exists(
        &self,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ApiError> {
        let Some((api, resource)) = self.api(gvk, namespace).await? else {
            return Ok(false);
        };
        let call = Call::for_resource("get", &resource, namespace, Some(name));
        Ok(self
            .api
            .call(&call, || api.get_metadata_opt(name))
            .await?
            .is_some())
    }

    /// An `Api<DynamicObject>` for `gvk` in `namespace` (ignored for cluster-scoped kinds), or `None` when
    /// the kind is not served.
    pub async fn api(
        &self,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
    ) -> Result<Option<(Api<DynamicObject>, ApiResource)>, ApiError> {
        let Some((resource, caps)) = self.resolve(gvk).await? else {
            return Ok(None);
        };
        let api = match (caps.scope, namespace) {
            (Scope::Namespaced, Some(namespace)) => {
                Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
            _ => Api::all_with(self.client.clone(), &resource),
        };
        Ok(Some((api, resource)))
    }
}

/// Applies objects with server-side apply.
#[derive(Debug, Clone)]
pub struct Applier {
    resolver: Resolver,
    force: bool,
}

/// Fields the server owns or that change on every write: dropped before comparing or diffing.
pub fn normalize(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "resourceVersion",
                "generation",
                "managedFields",
                "uid",
                "creationTimestamp",
                "selfLink",
            ] {
                metadata.remove(key);
            }
            if let Some(annotations) = metadata.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
                if annotations.is_empty() {
                    metadata.remove("annotations");
                }
            }
        }
    }
    value
}

/// Argo CD's tracking annotation (`APP:GROUP/KIND:NAMESPACE/NAME`, Argo CD 3's default tracking).
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// The Application a tracking annotation's value names.
pub fn tracked_by_application(tracking_id: &str) -> Option<&str> {
    tracking_id.split(':').next().filter(|app| !app.is_empty())
}

fn resource_version(value: &Value) -> Option<&str> {
    value.pointer("/metadata/resourceVersion").and_then(Value::as_str)
}

impl Applier {
    /// An applier using `resolver`; `force` takes over conflicting fields (`--force-conflicts`).
    pub fn new(resolver: Resolver, force: bool) -> Self {
        Applier { resolver, force }
    }

    /// The resolver.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Apply one object (or, with `dry_run`, send it with `dryRun=All` and report what would happen).
    pub async fn apply(&self, obj: &DynamicObject, dry_run: bool) -> Result<Applied, ApplyError> {
        let id = ObjectId::of(obj);
        if id.name.is_empty() || id.kind.is_empty() {
            return Err(ApplyError::Invalid {
                id,
                problem: "apiVersion, kind and metadata.name are required".into(),
            });
        }
        let gvk = id.gvk();
        let Some((api, resource)) = self.resolver.api(&gvk, id.namespace.as_deref()).await? else {
            return Err(ApplyError::NotServed {
                hint: not_served_hint(&gvk),
                id,
            });
        };
        let namespace = id.namespace.as_deref();
        let get = Call::for_resource("get", &resource, namespace, Some(&id.name));
        let before = self
            .resolver
            .api_client()
            .call(&get, || api.get_opt(&id.name))
            .await?;
        // An object Argo CD has taken over (the `<env>-secrets` Application keeps the SealedSecrets this
        // command seeded) is Argo CD's: applying it again would fight its sync over the same fields.
        if let Some(live) = &before
            && let Some(app) = live
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(TRACKING_ANNOTATION))
                .and_then(|t| tracked_by_application(t))
        {
            tracing::debug!("{id}: left to Argo CD (Application {app} manages it)");
            let left_to_argocd = Some(app.to_string());
            let live = serde_json::to_value(live).unwrap_or_default();
            return Ok(Applied {
                id,
                outcome: ApplyResult::Unchanged,
                before: Some(live.clone()),
                after: live,
                left_to_argocd,
            });
        }
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if self.force {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let patch = Call::for_resource("patch", &resource, namespace, Some(&id.name));
        let body = Patch::Apply(obj);
        // The API layer keeps a Status's message only; a conflict's fields and owners are in its details.
        let conflict = std::sync::Mutex::new(None);
        let attempt = || async {
            let result = api.patch(&id.name, &params, &body).await;
            if let Err(kube::Error::Api(status)) = &result
                && status.code == 409
            {
                *conflict.lock().unwrap_or_else(|e| e.into_inner()) = Some(status.clone());
            }
            result
        };
        let after = match self.resolver.api_client().call(&patch, attempt).await {
            Ok(after) => after,
            Err(err) => {
                let status = conflict.into_inner().unwrap_or_else(|e| e.into_inner());
                return Err(conflict_or(id, err, status.as_deref()));
            }
        };
        let before = before.map(|b| serde_json::to_value(b).unwrap_or_default());
        let after = serde_json::to_value(after).unwrap_or_default();
        let outcome = match &before {
            None => ApplyResult::Created,
            // A dry run never moves the resourceVersion, so compare content instead.
            Some(before) if dry_run => {
                if normalize(before) == normalize(&after) {
                    ApplyResult::Unchanged
                } else {
                    ApplyResult::Changed
                }
            }
            Some(before) => {
                if resource_version(before) == resource_version(&after) {
                    ApplyResult::Unchanged
                } else {
                    ApplyResult::Changed
                }
            }
        };
        tracing::debug!(
            "{} {id}",
            match (dry_run, outcome) {
                (true, ApplyResult::Created) => "would create",
                (true, ApplyResult::Changed) => "would change",
                (true, ApplyResult::Unchanged) => "would leave unchanged",
                (false, ApplyResult::Created) => "created",
                (false, ApplyResult::Changed) => "changed",
                (false, ApplyResult::Unchanged) => "unchanged",
            }
        );
        Ok(Applied {
            id,
            outcome,
            before,
            after,
            left_to_argocd: None,
        })
    }

    /// Apply independent objects concurrently; every failure is collected and reported together. Results
    /// come back in the input order.
    pub async fn apply_all(
        &self,
        objects: &[DynamicObject],
        dry_run: bool,
    ) -> Result<Vec<Applied>, ApplyErrors> {
        let results: Vec<(usize, Result<Applied, ApplyError>)> =
            futures::stream::iter(objects.iter().enumerate())
                .map(|(index, obj)| async move { (index, self.apply(obj, dry_run).await) })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut results = results;
        results.sort_by_key(|(index, _)| *index);
        let mut applied = Vec::new();
        let mut errors = Vec::new();
        for (_, result) in results {
            match result {
                Ok(done) => applied.push(done),
                Err(err) => errors.push(err),
            }
        }
        if errors.is_empty() {
            Ok(applied)
        } else {
            Err(ApplyErrors {
                errors,
                total: objects.len(),
            })
        }
    }
}

/// Tally outcomes.
pub fn count(applied: &[Applied]) -> Counts {
    let mut counts = Counts::default();
    for done in applied {
        counts.add(done.outcome);
    }
    counts
}

fn not_served_hint(gvk: &GroupVersionKind) -> String {
    let installer = match gvk.group.as_str() {
        "argoproj.io" => Some("Argo CD"),
        "bitnami.com" => Some("the sealed-secrets controller"),
        "cert-manager.io" => Some("cert-manager"),
        _ => None,
    };
    match installer {
        Some(installer) => format!(
            " (its CRD comes with {installer}, installed by the platform phase: run `up` without --only, or with --only platform)"
        ),
        None => " (install the operator that defines this kind first)".to_string(),
    }
}

/// A 409 from server-side apply is a field conflict: list the fields and who owns them.
fn conflict_or(id: ObjectId, err: ApiError, status: Option<&kube::core::Status>) -> ApplyError {
    if let Some(status) = status
        && err.code() == Some(409)
        && status.reason == "Conflict"
    {
        let causes: Vec<String> = status
            .details
            .as_ref()
            .map(|details| {
                details
                    .causes
                    .iter()
                    .map(|cause| {
                        if cause.field.is_empty() {
                            cause.message.clone()
                        } else {
                            format!("{} ({})", cause.field, cause.message)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let conflicts = if causes.is_empty() {
            vec![status.message.clone()]
        } else {
            causes
        };
        return ApplyError::Conflict { id, conflicts };
    }
    ApplyError::Api(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalize_drops_server_fields_only() {
        let live = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "staging", "resourceVersion": "7", "uid": "u", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [], "labels": {"tier": "x"}},
            "status": {"phase": "Active"}
        });
        assert_eq!(
            normalize(&live),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging", "labels": {"tier": "x"}}})
        );
    }

    #[test]
    fn ids_read_like_kubectl() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "staging-backend", "namespace": "argocd"}
        }))
        .unwrap();
        let id = ObjectId::of(&obj);
        assert_eq!(id.to_string(), "Application argocd/staging-backend");
        assert_eq!(id.gvk().group, "argoproj.io");
        let ns: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "staging"}}),
        )
        .unwrap();
        assert_eq!(ObjectId::of(&ns).gvk().group, "");
        assert_eq!(ObjectId::of(&ns).to_string(), "Namespace staging");
    }

    #[test]
    fn conflicts_list_fields_and_managers() {
        let status = kube::core::Status::failure("Apply failed with 1 conflict", "Conflict")
            .with_code(409)
            .with_details(kube::core::response::StatusDetails {
                causes: vec![kube::core::response::StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: "conflict with \"kubectl-edit\"".into(),
                    field: ".spec.source.targetRevision".into(),
                }],
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                retry_after_seconds: 0,
            });
        let call = Call::new("patch", "applications.argoproj.io", Some("argocd"), None);
        let id = ObjectId {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
            namespace: Some("argocd".into()),
            name: "x".into(),
        };
        let err = ApiError::from_kube("https://k", &call, &kube::Error::Api(status.clone().boxed()));
        let err = conflict_or(id, err, Some(&status));
        let message = err.to_string();
        assert!(
            message.contains(".spec.source.targetRevision (conflict with \"kubectl-edit\")"),
            "{message}"
        );
        assert!(message.contains("--force-conflicts"), "{message}");
    }
}

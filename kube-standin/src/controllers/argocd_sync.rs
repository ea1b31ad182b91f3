//! The sync half of `--argocd`: an [`ApplicationSource`] that applies what the repo-server
//! ([`super::argocd_repo`]) rendered, as Argo CD's application controller does.
//!
//! - Every kind must be served or defined by a CRD in the same render, else the comparison fails with Argo
//!   CD's "could not find … Make sure the CRD is installed" message and nothing is applied.
//! - `CreateNamespace=true` creates the destination namespace; without it a missing one fails the sync.
//! - Order: PreSync hooks, then the rest by sync wave (`argocd.argoproj.io/sync-wave`) and kind (Argo CD's
//!   kind order: namespaces, CRDs, RBAC, config, services, workloads, ingresses…), then PostSync hooks. Helm
//!   hooks map as Argo CD maps them (`pre-*` → PreSync, `post-*` → PostSync); helm test hooks are skipped.
//!   Waves are applied in order within one sync; the stand-in does not wait for a wave's health before the
//!   next (its controllers make the objects ready moments later either way).
//! - Each object is server-side applied (field manager `argocd-controller`, forced) with Argo CD's
//!   tracking annotation `argocd.argoproj.io/tracking-id: APP:GROUP/KIND:NAMESPACE/NAME`.
//! - With `syncPolicy.automated.prune`, objects tracked by the Application that the render no longer
//!   holds are deleted.
//! - Health is computed from the live objects ([`super::argocd_health`]).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Value, json};

use super::argocd::{
    ApplicationSource, ManagedResource, SyncOutcome, TRACKING_ANNOTATION, destination_namespace,
};
use super::argocd_health::{self, HealthStatus};
use super::argocd_repo::{
    RenderQueue, RenderRequest, RenderState, Rendered, RepoServerConfig, with_namespace,
};
use crate::store::{ObjKey, State, WriteCtx};
use crate::util::get_str;

const MANAGER: &str = "argocd-controller";

/// Renders Applications from served repositories and applies them.
pub struct RenderedSource {
    queue: RenderQueue,
    ready: HashMap<ObjKey, Result<Rendered, String>>,
}

impl RenderedSource {
    /// A source rendering with `config`.
    pub fn new(config: RepoServerConfig) -> std::io::Result<Self> {
        Ok(RenderedSource {
            queue: RenderQueue::new(config)?,
            ready: HashMap::new(),
        })
    }

    fn request(st: &State, app: &Value) -> RenderRequest {
        let mut api_versions = BTreeSet::new();
        for t in st.registry.types() {
            let gv = t.api_version();
            api_versions.insert(format!("{gv}/{}", t.kind));
            api_versions.insert(gv);
        }
        RenderRequest {
            source: app.pointer("/spec/source").cloned().unwrap_or(json!({})),
            namespace: destination_namespace(app),
            app: get_str(app, &["metadata", "name"]).unwrap_or("").to_string(),
            api_versions: api_versions.into_iter().collect(),
            kube_version: crate::discovery::version()["gitVersion"]
                .as_str()
                .unwrap_or("v1.32.0")
                .split('-')
                .next()
                .unwrap_or("v1.32.0")
                .to_string(),
        }
    }
}

fn app_key(app: &Value) -> ObjKey {
    super::key(
        "argoproj.io",
        "applications",
        get_str(app, &["metadata", "namespace"]).unwrap_or(""),
        get_str(app, &["metadata", "name"]).unwrap_or(""),
    )
}

/// Argo CD's hook phase of a manifest: `None` for a normal resource, `Some("Skip")` for one to leave out.
fn hook_phase(m: &Value) -> Option<&'static str> {
    let annotation = |k: &str| get_str(m, &["metadata", "annotations", k]);
    if let Some(hook) = annotation("argocd.argoproj.io/hook") {
        return Some(match hook.split(',').next().unwrap_or("").trim() {
            "PreSync" => "PreSync",
            "PostSync" => "PostSync",
            "SyncFail" | "Skip" => "Skip",
            _ => "Sync",
        });
    }
    let helm = annotation("helm.sh/hook")?;
    let kinds: Vec<&str> = helm.split(',').map(str::trim).collect();
    if kinds
        .iter()
        .any(|k| k.starts_with("pre-install") || k.starts_with("pre-upgrade"))
    {
        Some("PreSync")
    } else if kinds
        .iter()
        .any(|k| k.starts_with("post-install") || k.starts_with("post-upgrade"))
    {
        Some("PostSync")
    } else {
        Some("Skip") // test, delete and rollback hooks: Argo CD does not run them on sync
    }
}

/// Argo CD's (helm's) install order of kinds; others come after.
fn kind_rank(kind: &str) -> usize {
    const ORDER: &[&str] = &[
        "Namespace",
        "NetworkPolicy",
        "ResourceQuota",
        "LimitRange",
        "PodSecurityPolicy",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Secret",
        "SecretList",
        "ConfigMap",
        "StorageClass",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleList",
        "ClusterRoleBinding",
        "ClusterRoleBindingList",
        "Role",
        "RoleList",
        "RoleBinding",
        "RoleBindingList",
        "Service",
        "DaemonSet",
        "Pod",
        "ReplicationController",
        "ReplicaSet",
        "Deployment",
        "HorizontalPodAutoscaler",
        "StatefulSet",
        "Job",
        "CronJob",
        "IngressClass",
        "Ingress",
        "APIService",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

fn wave(m: &Value) -> i64 {
    get_str(m, &["metadata", "annotations", "argocd.argoproj.io/sync-wave"])
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn sync_options(app: &Value) -> Vec<String> {
    app.pointer("/spec/syncPolicy/syncOptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The tracking id Argo CD writes: `APP:GROUP/KIND:NAMESPACE/NAME`.
fn tracking_id(app: &str, group: &str, kind: &str, namespace: &str, name: &str) -> String {
    format!("{app}:{group}/{kind}:{namespace}/{name}")
}

impl ApplicationSource for RenderedSource {
    fn prepare(&mut self, st: &State, app: &Value) -> bool {
        let key = app_key(app);
        match self.queue.get(&key, &Self::request(st, app)) {
            RenderState::Pending => false,
            RenderState::Ready(result) => {
                self.ready.insert(key, result);
                true
            }
        }
    }

    fn current_revision(&mut self, app: &Value) -> Option<String> {
        let source = app.pointer("/spec/source")?;
        Some(
            self.queue
                .revision(source)
                .unwrap_or_else(|| "unavailable".into()),
        )
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(2))
    }

    fn forget(&mut self, app: &ObjKey) {
        self.ready.remove(app);
        self.queue.forget(app);
    }

    fn health(&self, st: &State, resource: &ManagedResource) -> Option<(HealthStatus, String)> {
        let api_version = match resource.group.as_str() {
            "" => resource.version.clone(),
            group => format!("{group}/{}", resource.version),
        };
        let live = st
            .type_for(&api_version, &resource.kind)
            .and_then(|rt| st.get(&rt, &resource.namespace, &resource.name));
        match live {
            Some(live) => argocd_health::of(live),
            None => Some((HealthStatus::Missing, String::new())),
        }
    }

    fn sync(&mut self, st: &mut State, app: &Value) -> Result<SyncOutcome, String> {
        let key = app_key(app);
        let rendered = self
            .ready
            .remove(&key)
            .unwrap_or_else(|| Err("the manifests are not rendered yet".into()))?;
        let app_name = key.name.clone();
        let dest = destination_namespace(app);

        // Every kind must be known, or defined by a CRD in this very render.
        let new_kinds: BTreeSet<(String, String)> = rendered
            .manifests
            .iter()
            .filter(|m| get_str(m, &["kind"]) == Some("CustomResourceDefinition"))
            .filter_map(|m| {
                Some((
                    get_str(m, &["spec", "group"])?.to_string(),
                    get_str(m, &["spec", "names", "kind"])?.to_string(),
                ))
            })
            .collect();
        for m in &rendered.manifests {
            let (api_version, kind) = (
                get_str(m, &["apiVersion"]).unwrap_or(""),
                get_str(m, &["kind"]).unwrap_or(""),
            );
            if st.type_for(api_version, kind).is_none()
                && !new_kinds.contains(&(group_of(api_version).to_string(), kind.to_string()))
            {
                let ns = get_str(m, &["metadata", "namespace"]).unwrap_or(&dest);
                let name = get_str(m, &["metadata", "name"]).unwrap_or("");
                return Err(format!(
                    "The Kubernetes API could not find {}/{kind} for requested resource {ns}/{name}. Make sure the \"{kind}\" CRD is installed on the destination cluster.",
                    group_of(api_version)
                ));
            }
        }

        let options = sync_options(app);
        let ns_type = st.type_for("v1", "Namespace").ok_or("no namespaces type")?;
        if !dest.is_empty() && st.get(&ns_type, "", &dest).is_none() {
            if !options.iter().any(|o| o == "CreateNamespace=true") {
                return Err(format!("namespaces \"{dest}\" not found"));
            }
            let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dest}});
            if let Some(meta) = app.pointer("/spec/syncPolicy/managedNamespaceMetadata") {
                for part in ["labels", "annotations"] {
                    if let Some(v) = meta.get(part) {
                        ns["metadata"][part] = v.clone();
                    }
                }
            }
            st.create(&ns_type, "", ns, &ctx()).map_err(|e| e.message)?;
        }

        let mut ordered: Vec<(usize, i64, usize, String, Value)> = Vec::new();
        for m in rendered.manifests {
            let phase = match hook_phase(&m) {
                Some("Skip") => continue,
                Some("PreSync") => 0,
                Some("PostSync") => 2,
                _ => 1,
            };
            let kind = get_str(&m, &["kind"]).unwrap_or("").to_string();
            let name = get_str(&m, &["metadata", "name"]).unwrap_or("").to_string();
            ordered.push((phase, wave(&m), kind_rank(&kind), name, m));
        }
        ordered.sort_by(|a, b| (a.0, a.1, a.2, &a.3).cmp(&(b.0, b.1, b.2, &b.3)));

        let mut resources = Vec::new();
        let mut failures = Vec::new();
        for (phase, _, _, name, manifest) in ordered {
            let api_version = get_str(&manifest, &["apiVersion"]).unwrap_or("").to_string();
            let kind = get_str(&manifest, &["kind"]).unwrap_or("").to_string();
            let Some(rt) = st.type_for(&api_version, &kind) else {
                failures.push(format!(
                    "{kind} {name}: the server could not find the requested resource"
                ));
                continue;
            };
            let mut manifest = if rt.namespaced {
                with_namespace(manifest, &dest)
            } else {
                let mut m = manifest;
                if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("namespace");
                }
                m
            };
            let ns = get_str(&manifest, &["metadata", "namespace"])
                .unwrap_or("")
                .to_string();
            let id = tracking_id(&app_name, &rt.group, &kind, &ns, &name);
            if manifest
                .pointer("/metadata/annotations")
                .is_none_or(|a| !a.is_object())
            {
                manifest["metadata"]["annotations"] = json!({});
            }
            manifest["metadata"]["annotations"][TRACKING_ANNOTATION] = json!(id);
            if let Err(e) = st.apply(&rt, &ns, &name, manifest, true, &ctx()) {
                failures.push(format!("error when applying {kind} {ns}/{name}: {}", e.message));
                continue;
            }
            if phase == 1 {
                resources.push(ManagedResource {
                    group: rt.group.clone(),
                    version: rt.version.clone(),
                    kind,
                    namespace: ns,
                    name,
                });
            }
        }
        if !failures.is_empty() {
            return Err(format!(
                "one or more objects failed to apply, reason: {}",
                failures.join("; ")
            ));
        }

        if app.pointer("/spec/syncPolicy/automated/prune") == Some(&json!(true)) {
            let keep: BTreeSet<(String, String, String, String)> = resources
                .iter()
                .map(|r| {
                    (
                        r.group.clone(),
                        r.kind.clone(),
                        r.namespace.clone(),
                        r.name.clone(),
                    )
                })
                .collect();
            let stale: Vec<ObjKey> = st
                .objects()
                .filter(|(_, o)| {
                    let Some(id) = get_str(o, &["metadata", "annotations", TRACKING_ANNOTATION]) else {
                        return false;
                    };
                    let kind = get_str(o, &["kind"]).unwrap_or("");
                    let group = group_of(get_str(o, &["apiVersion"]).unwrap_or(""));
                    let ns = get_str(o, &["metadata", "namespace"]).unwrap_or("");
                    let name = get_str(o, &["metadata", "name"]).unwrap_or("");
                    id == tracking_id(&app_name, group, kind, ns, name)
                        && hook_phase(o).is_none()
                        && !keep.contains(&(
                            group.to_string(),
                            kind.to_string(),
                            ns.to_string(),
                            name.to_string(),
                        ))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                super::warn(MANAGER, "pruning a resource", super::delete(st, &k, "Foreground"));
            }
        }
        resources.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
        Ok(SyncOutcome {
            revision: rendered.revision,
            resources,
        })
    }
}

fn ctx() -> WriteCtx {
    WriteCtx {
        manager: MANAGER.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_hooks_map_to_argo_cd_phases() {
        let hook = |h: &str| json!({"metadata": {"annotations": {"helm.sh/hook": h}}});
        assert_eq!(hook_phase(&hook("pre-install,pre-upgrade")), Some("PreSync"));
        assert_eq!(hook_phase(&hook("post-install")), Some("PostSync"));
        assert_eq!(hook_phase(&hook("test")), Some("Skip"));
        assert_eq!(hook_phase(&json!({"metadata": {}})), None);
        assert!(kind_rank("CustomResourceDefinition") < kind_rank("Deployment"));
        assert!(kind_rank("Namespace") < kind_rank("Cluster"));
    }
}

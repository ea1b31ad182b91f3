//! Which live objects make up a component, and how ready they are.
//!
//! A component is an Argo CD Application plus the objects it deploys. Argo CD's health already aggregates
//! those, but the person waiting wants the detailed reason ("2/3 instances ready"), so for the kinds with a
//! readiness rule in [`shared::readiness`] (CloudNativePG Cluster, RabbitmqCluster, redis, Keycloak,
//! Deployments and StatefulSets) the component's own objects are found and judged too. An object belongs
//! to a component when the Application's `status.resources` lists it (real Argo CD), or when it sits in the
//! destination namespace carrying `app.kubernetes.io/instance` = the Helm release or Application name (what
//! the charts and Argo CD's label tracking write), or Argo CD's tracking-id annotation names the Application.

use kube::api::{DynamicObject, ListParams};
use serde::Serialize;
use serde_json::Value;

use crate::apply::Resolver;
use crate::desired::Component;
use shared::api::{ApiError, Call};
use shared::readiness::{self, Readiness};

/// The kinds whose objects count as a component's own resources: (group, kind).
pub const INSTANCE_KINDS: [(&str, &str); 7] = [
    ("postgresql.cnpg.io", "Cluster"),
    ("rabbitmq.com", "RabbitmqCluster"),
    ("redis.redis.opstreelabs.in", "RedisReplication"),
    ("redis.redis.opstreelabs.in", "RedisSentinel"),
    ("k8s.keycloak.org", "Keycloak"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
];

/// The Argo CD Application kind.
pub fn application_gvk() -> kube::api::GroupVersionKind {
    kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application")
}

/// Argo CD's refresh annotation: set to `normal` (as `argocd app get --refresh` does), Argo CD compares
/// the Application with its repository now instead of at its next poll, and removes the annotation when done.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";

/// Asks Argo CD to refresh each component's Application, so that the wait judges the repository as it is
/// now (a changed values file does not change the Application). A merge patch of the annotation alone:
/// the server-side apply of the Application stays unchanged, and Argo CD's removal of the annotation is
/// no conflict.
pub async fn request_refresh(resolver: &Resolver, components: &[&Component]) -> Result<(), ApiError> {
    let patch = kube::api::Patch::Merge(
        serde_json::json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}),
    );
    for component in components {
        let namespace = component.object.metadata.namespace.as_deref().unwrap_or("argocd");
        let Some((api, resource)) = resolver.api(&application_gvk(), Some(namespace)).await? else {
            return Ok(()); // no Argo CD: the wait says so
        };
        let call = Call::for_resource("patch", &resource, Some(namespace), Some(&component.app));
        let params = kube::api::PatchParams::default();
        resolver
            .api_client()
            .call(&call, || api.patch(&component.app, &params, &patch))
            .await?;
    }
    Ok(())
}

/// One of a component's objects, judged.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// `Kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// The verdict.
    pub readiness: Readiness,
    /// `metadata.creationTimestamp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// The instance-kind objects of some namespaces, listed once and shared by every component.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    objects: Vec<Value>,
    pods: Vec<Value>,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

impl Snapshot {
    /// List every instance kind the cluster serves (and pods, for redis) in `namespace`.
    pub async fn take(resolver: &Resolver, namespace: &str) -> Result<Self, ApiError> {
        let mut kinds: Vec<(&str, &str, &str)> = INSTANCE_KINDS.iter().map(|(g, k)| (*g, "", *k)).collect();
        kinds.push(("", "v1", "Pod"));
        let lists = futures::future::join_all(
            kinds
                .iter()
                .map(|(group, _, kind)| list_kind(resolver, group, kind, namespace)),
        )
        .await;
        let mut snapshot = Snapshot::default();
        for ((_, _, kind), list) in kinds.iter().zip(lists) {
            let list = list?;
            if *kind == "Pod" {
                snapshot.pods = list;
            } else {
                snapshot.objects.extend(list);
            }
        }
        Ok(snapshot)
    }

    /// The objects belonging to `component`, judged; `app` is the live Application, if any.
    pub fn members(&self, component: &Component, app: Option<&Value>) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .objects
            .iter()
            .filter(|obj| owns(component, app, obj))
            .filter_map(|obj| {
                let readiness = self.judge(obj)?;
                Some(Member {
                    kind: str_at(obj, "/kind").unwrap_or_default().to_string(),
                    name: str_at(obj, "/metadata/name").unwrap_or_default().to_string(),
                    namespace: str_at(obj, "/metadata/namespace").unwrap_or_default().to_string(),
                    readiness,
                    created: str_at(obj, "/metadata/creationTimestamp").map(str::to_string),
                })
            })
            .collect();
        members.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
        members
    }

    /// The listed object of `kind` named `name` in `namespace`.
    pub fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.iter().find(|o| {
            str_at(o, "/kind") == Some(kind)
                && str_at(o, "/metadata/namespace") == Some(namespace)
                && str_at(o, "/metadata/name") == Some(name)
        })
    }

    /// Every listed object.
    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    fn statefulset(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.find("StatefulSet", namespace, name)
    }

    /// The readiness of one object (redis needs its StatefulSet and pods from the same snapshot).
    pub fn judge(&self, obj: &Value) -> Option<Readiness> {
        let namespace = str_at(obj, "/metadata/namespace").unwrap_or_default();
        let name = str_at(obj, "/metadata/name").unwrap_or_default();
        match str_at(obj, "/kind") {
            Some("RedisReplication") => {
                let pods: Vec<Value> = self
                    .pods
                    .iter()
                    .filter(|p| str_at(p, "/metadata/namespace") == Some(namespace))
                    .cloned()
                    .collect();
                Some(readiness::is_redis_replication_ready(
                    obj,
                    self.statefulset(namespace, name),
                    &pods,
                ))
            }
            Some("RedisSentinel") => {
                let sts = format!("{name}-sentinel");
                Some(readiness::is_statefulset_pods_ready(
                    self.statefulset(namespace, &sts),
                    &format!("StatefulSet {sts}"),
                ))
            }
            _ => readiness::for_object(obj),
        }
    }
}

async fn list_kind(
    resolver: &Resolver,
    group: &str,
    kind: &str,
    namespace: &str,
) -> Result<Vec<Value>, ApiError> {
    let Some((api, resource)) = resolve_kind(resolver, group, kind, namespace).await? else {
        return Ok(Vec::new());
    };
    let call = Call::for_resource("list", &resource, Some(namespace), None);
    let params = ListParams::default();
    let list = resolver.api_client().call(&call, || api.list(&params)).await?;
    Ok(list
        .items
        .into_iter()
        .map(|item| {
            // Lists leave apiVersion/kind off the items; the rules need them.
            let mut value = serde_json::to_value(item).unwrap_or_default();
            value["apiVersion"] = Value::String(resource.api_version.clone());
            value["kind"] = Value::String(resource.kind.clone());
            value
        })
        .collect())
}

/// The API for `group`/`kind` at the version the cluster prefers, in `namespace`; `None` when not served.
pub async fn resolve_kind(
    resolver: &Resolver,
    group: &str,
    kind: &str,
    namespace: &str,
) -> Result<Option<(kube::Api<DynamicObject>, kube::api::ApiResource)>, ApiError> {
    let version = match (group, kind) {
        ("", _) => "v1".to_string(),
        ("apps", _) => "v1".to_string(),
        _ => match preferred_version(resolver, group).await? {
            Some(version) => version,
            None => return Ok(None),
        },
    };
    let gvk = kube::api::GroupVersionKind::gvk(group, &version, kind);
    resolver.api(&gvk, Some(namespace)).await
}

async fn preferred_version(resolver: &Resolver, group: &str) -> Result<Option<String>, ApiError> {
    // Resolve a throw-away kind to make sure discovery ran, then ask it for the group.
    resolver
        .resolve(&kube::api::GroupVersionKind::gvk("", "v1", "Namespace"))
        .await?;
    Ok(resolver.preferred_version(group).await)
}

/// True when `obj` is one of `component`'s objects (see the module docs for the rule).
pub fn owns(component: &Component, app: Option<&Value>, obj: &Value) -> bool {
    let namespace = str_at(obj, "/metadata/namespace").unwrap_or_default();
    let name = str_at(obj, "/metadata/name").unwrap_or_default();
    let kind = str_at(obj, "/kind").unwrap_or_default();
    let listed = app
        .and_then(|app| app.pointer("/status/resources"))
        .and_then(Value::as_array)
        .is_some_and(|resources| {
            resources.iter().any(|r| {
                str_at(r, "/kind") == Some(kind)
                    && str_at(r, "/name") == Some(name)
                    && str_at(r, "/namespace").unwrap_or(namespace) == namespace
            })
        });
    if listed {
        return true;
    }
    if namespace != component.destination {
        return false;
    }
    let instance = str_at(obj, "/metadata/labels/app.kubernetes.io~1instance");
    let tracking = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(crate::apply::TRACKING_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(crate::apply::tracked_by_application);
    instance.is_some_and(|i| i == component.release || i == component.app)
        || tracking == Some(component.app.as_str())
}

/// The readiness of a live Application (`None`: it does not exist).
pub fn application_readiness(app: Option<&Value>) -> Readiness {
    match app {
        Some(app) => readiness::is_argocd_application_ready(app),
        None => Readiness::not_ready("Application does not exist"),
    }
}

/// `sync/health` of a live Application, for tables.
pub fn sync_health(app: &Value) -> String {
    format!(
        "{}/{}",
        str_at(app, "/status/sync/status").unwrap_or("Unknown"),
        str_at(app, "/status/health/status").unwrap_or("Unknown")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn component() -> Component {
        Component {
            name: "postgres-instance".into(),
            app: "staging-postgres-instance".into(),
            scope: crate::desired::Scope::Environment,
            wave: 3,
            destination: "staging".into(),
            release: "postgres-instance".into(),
            file: "x".into(),
            object: serde_json::from_value(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "staging-postgres-instance"}})).unwrap(),
        }
    }

    fn cluster(ns: &str, instance: &str) -> Value {
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
               "metadata": {"name": "database", "namespace": ns, "labels": {"app.kubernetes.io/instance": instance}},
               "spec": {"instances": 3}})
    }

    #[test]
    fn membership_by_release_label_in_the_destination_namespace() {
        let component = component();
        assert!(owns(&component, None, &cluster("staging", "postgres-instance")));
        assert!(owns(
            &component,
            None,
            &cluster("staging", "staging-postgres-instance")
        ));
        assert!(!owns(&component, None, &cluster("prod", "postgres-instance")));
        assert!(!owns(&component, None, &cluster("staging", "backend")));
    }

    #[test]
    fn membership_by_argocd_status_resources() {
        let app = json!({"status": {"resources": [{"kind": "Cluster", "name": "database", "namespace": "staging"}]}});
        assert!(owns(&component(), Some(&app), &cluster("staging", "unrelated")));
    }

    #[test]
    fn snapshot_judges_members_with_the_shared_rules() {
        let snapshot = Snapshot {
            objects: vec![cluster("staging", "postgres-instance")],
            pods: Vec::new(),
        };
        let members = snapshot.members(&component(), None);
        assert_eq!(members.len(), 1);
        assert!(!members[0].readiness.ready);
        assert!(
            members[0]
                .readiness
                .message
                .contains("operator has not reconciled"),
            "{:?}",
            members[0]
        );
    }
}

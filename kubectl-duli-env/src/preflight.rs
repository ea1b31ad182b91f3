//! Phase 1, preflight: everything `up` needs, checked before anything is changed, and every missing piece
//! listed at once with what to do about it.
//!
//! Checks: the cluster answers (and its version); a SelfSubjectAccessReview for every verb on every
//! resource and namespace the selected phases use; the environment's storage class exists (or a provider
//! chart of the platform phase will create it); helm is installed; the provider token Secret can be had;
//! the environment's SealedSecrets exist in the repository; every AppProject an Application names is
//! rendered or live.

use std::collections::BTreeSet;
use std::fmt;

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use serde::Serialize;

use crate::apply::{ObjectId, Resolver};
use crate::components::INSTANCE_KINDS;
use crate::desired::Desired;
use crate::helm::Helm;
use crate::platform;
use crate::provider::provider_secret;
use crate::{Context, Phase};
use shared::api::{self, Call};

/// Something `up` needs that is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is missing.
    pub what: String,
    /// What to do.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n      → {}", self.what, self.fix)
    }
}

/// Preflight found problems; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error(
    "preflight found {} problem(s); nothing was changed:\n  - {}",
    problems.len(),
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - ")
)]
pub struct PreflightFailed {
    /// Every problem found.
    pub problems: Vec<Problem>,
}

/// What preflight found when all is well.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    /// The API server's version.
    pub server_version: String,
    /// How many permissions were reviewed.
    pub permissions_checked: usize,
    /// Facts worth knowing that are not problems.
    pub notes: Vec<String>,
}

/// One permission to review.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    verb: &'static str,
    group: String,
    resource: String,
    namespace: Option<String>,
}

impl Access {
    fn call(&self) -> Call {
        let resource = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        Call::new(self.verb, &resource, self.namespace.as_deref(), None)
    }
}

/// Run every check for the selected `phases` (and `prune`: `up --prune`).
pub async fn run(
    ctx: &Context,
    desired: &Desired,
    resolver: &Resolver,
    phases: &[Phase],
    prune: bool,
) -> Result<PreflightReport, PreflightFailed> {
    let has = |phase: Phase| phases.contains(&phase);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let client = resolver.client().clone();
    let version_call = Call::raw(&http::Method::GET, "/version");
    let version = match resolver
        .api_client()
        .call(&version_call, || client.apiserver_version())
        .await
    {
        Ok(info) => info.git_version,
        Err(err) => {
            return Err(PreflightFailed {
                problems: vec![Problem {
                    what: format!("cannot reach the cluster at {} (context {}): {err}", ctx.cluster.server, ctx.cluster.context),
                    fix: "check --context/--kubeconfig and your network or VPN; `kubectl cluster-info` should answer".into(),
                }],
            });
        }
    };
    notes.push(format!(
        "cluster {} (context {}) runs Kubernetes {version}",
        ctx.cluster.server, ctx.cluster.context
    ));

    let accesses = match required_accesses(desired, resolver, phases, prune).await {
        Ok(accesses) => accesses,
        Err(err) => {
            problems.push(Problem {
                what: err.to_string(),
                fix: "see the message".into(),
            });
            Vec::new()
        }
    };
    let checked = accesses.len();
    let reviews: Vec<(Access, Result<bool, String>)> = futures::stream::iter(accesses)
        .map(|access| async move {
            let allowed = review(resolver.api_client(), &access).await;
            (access, allowed)
        })
        .buffer_unordered(crate::apply::CONCURRENCY)
        .collect()
        .await;
    let mut denied: Vec<Access> = Vec::new();
    for (access, allowed) in reviews {
        match allowed {
            Ok(true) => {}
            Ok(false) => denied.push(access),
            Err(message) => problems.push(Problem {
                what: format!("cannot review permission to {}: {message}", access.call()),
                fix: "make sure SelfSubjectAccessReview is allowed (it is for every authenticated user by default)".into(),
            }),
        }
    }
    denied.sort();
    for access in denied {
        let call = access.call();
        problems.push(Problem {
            what: format!("forbidden: you may not {call}"),
            fix: format!(
                "ask a cluster admin for that permission (check with `{}`)",
                call.can_i()
            ),
        });
    }

    let env = &desired.env;
    let provider_charts: Vec<&str> = desired
        .platform
        .iter()
        .filter(|c| c.is_provider_chart())
        .map(|c| c.name.as_str())
        .collect();
    if has(Phase::Platform) || has(Phase::Gitops) {
        match storage_class_exists(resolver, &env.storage_class).await {
            Ok(true) => {}
            Ok(false) if has(Phase::Platform) && !provider_charts.is_empty() => notes.push(format!(
                "storage class {} does not exist yet: the platform phase installs it ({})",
                env.storage_class,
                provider_charts.join(", ")
            )),
            Ok(false) => problems.push(Problem {
                what: format!(
                    "storage class `{}` (storage_class in {}) does not exist, so no volume can be provisioned",
                    env.storage_class,
                    env.source.display()
                ),
                fix: format!(
                    "install the CSI driver that provides it (provider `{}`: run the platform phase) or set storage_class to one of `kubectl get storageclass`",
                    env.provider
                ),
            }),
            Err(err) => problems.push(Problem { what: err.to_string(), fix: "see the message".into() }),
        }
    }
    if has(Phase::Platform) {
        match Helm::locate(&ctx.target, &ctx.cluster.context) {
            Ok(helm) => notes.push(format!("helm: {}", helm.bin().display())),
            Err(err) => problems.push(Problem {
                what: "helm is needed for the platform phase".into(),
                fix: err.to_string(),
            }),
        }
        if !provider_charts.is_empty()
            && let Some(secret) = provider_secret(&env.provider)
        {
            let applier = crate::apply::Applier::new(resolver.clone(), false);
            let live = platform::provider_secret_exists(&applier, &secret)
                .await
                .unwrap_or(false);
            if !live
                && let Err(err) = platform::provider_secret_source(&secret, &ctx.repo.shared_sealed_dir())
            {
                problems.push(Problem {
                    what: format!(
                        "the {} charts ({}) need their API token",
                        env.provider,
                        provider_charts.join(", ")
                    ),
                    fix: err.to_string(),
                });
            }
        }
    }
    if has(Phase::Secrets)
        && let Err(err) = &desired.secrets.objects
    {
        problems.push(Problem {
            what: format!("the secrets phase has nothing to apply for `{}`", env.name),
            fix: err.to_string(),
        });
    }
    if has(Phase::Gitops) {
        problems.extend(missing_projects(desired, resolver).await);
    }
    if problems.is_empty() {
        Ok(PreflightReport {
            server_version: version,
            permissions_checked: checked,
            notes,
        })
    } else {
        Err(PreflightFailed { problems })
    }
}

async fn review(api: &shared::api::ApiClient, access: &Access) -> Result<bool, String> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(access.verb.to_string()),
                group: Some(access.group.clone()),
                resource: Some(access.resource.clone()),
                namespace: access.namespace.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviews: Api<SelfSubjectAccessReview> = Api::all(api.client().clone());
    let call = Call::new(
        "create",
        "selfsubjectaccessreviews.authorization.k8s.io",
        None,
        None,
    );
    let params = PostParams::default();
    let answer = api
        .call(&call, || reviews.create(&params, &review))
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.status.map(|s| s.allowed).unwrap_or(false))
}

/// Every permission the selected phases use (with `prune`, listing and deleting what they apply).
async fn required_accesses(
    desired: &Desired,
    resolver: &Resolver,
    phases: &[Phase],
    prune: bool,
) -> Result<Vec<Access>, api::ApiError> {
    let has = |phase: Phase| phases.contains(&phase);
    let mut set: BTreeSet<Access> = BTreeSet::new();
    let mut objects: Vec<&DynamicObject> = Vec::new();
    if has(Phase::Namespaces) {
        objects.extend(&desired.namespaces);
    }
    if has(Phase::Secrets)
        && let Ok(secrets) = &desired.secrets.objects
    {
        objects.extend(secrets);
    }
    if has(Phase::Gitops) {
        objects.extend(&desired.projects);
        objects.extend(desired.components.iter().map(|c| &c.object));
    }
    for object in objects {
        let id = ObjectId::of(object);
        let (resource, namespaced) = resolver.resource_or_guess(&id.gvk()).await?;
        for verb in ["get", "create", "patch"] {
            set.insert(Access {
                verb,
                group: resource.group.clone(),
                resource: resource.plural.clone(),
                namespace: if namespaced { id.namespace.clone() } else { None },
            });
        }
    }
    if prune {
        let mut kinds: Vec<(&str, &str, String)> = Vec::new();
        if has(Phase::Secrets) {
            kinds.push(("bitnami.com", "SealedSecret", desired.env.namespace.clone()));
        }
        if has(Phase::Gitops) {
            let argocd = &desired.env.gitops.argocd_namespace;
            kinds.push(("argoproj.io", "Application", argocd.clone()));
            kinds.push(("argoproj.io", "AppProject", argocd.clone()));
        }
        for (group, kind, namespace) in kinds {
            let gvk = GroupVersionKind::gvk(group, "v1alpha1", kind);
            let (resource, _) = resolver.resource_or_guess(&gvk).await?;
            for verb in ["list", "delete"] {
                set.insert(Access {
                    verb,
                    group: group.to_string(),
                    resource: resource.plural.clone(),
                    namespace: Some(namespace.clone()),
                });
            }
        }
    }
    if has(Phase::Wait) {
        let app_namespaces: BTreeSet<String> = desired
            .components
            .iter()
            .filter_map(|c| c.object.metadata.namespace.clone())
            .collect();
        for namespace in app_namespaces {
            for verb in ["list", "watch"] {
                set.insert(Access {
                    verb,
                    group: "argoproj.io".into(),
                    resource: "applications".into(),
                    namespace: Some(namespace.clone()),
                });
            }
        }
        let destinations: BTreeSet<&str> = desired.env_components().map(|c| c.destination.as_str()).collect();
        for namespace in destinations {
            for (group, kind) in INSTANCE_KINDS {
                let version = resolver
                    .preferred_version(group)
                    .await
                    .unwrap_or_else(|| "v1".into());
                let (resource, _) = resolver
                    .resource_or_guess(&GroupVersionKind::gvk(group, &version, kind))
                    .await?;
                for verb in ["list", "watch"] {
                    set.insert(Access {
                        verb,
                        group: group.to_string(),
                        resource: resource.plural.clone(),
                        namespace: Some(namespace.to_string()),
                    });
                }
            }
            set.insert(Access {
                verb: "list",
                group: String::new(),
                resource: "pods".into(),
                namespace: Some(namespace.to_string()),
            });
        }
    }
    if has(Phase::Platform) && !desired.platform.is_empty() {
        // What helm needs for the upstream charts: release Secrets in each release namespace, and the
        // cluster-scoped kinds such charts ship (an approximation: charts may need more).
        for chart in &desired.platform {
            for verb in ["get", "list", "create", "update", "patch", "delete"] {
                set.insert(Access {
                    verb,
                    group: String::new(),
                    resource: "secrets".into(),
                    namespace: Some(chart.namespace.clone()),
                });
            }
        }
        for (group, resource) in [
            ("", "namespaces"),
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("rbac.authorization.k8s.io", "clusterroles"),
            ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ] {
            set.insert(Access {
                verb: "create",
                group: group.into(),
                resource: resource.into(),
                namespace: None,
            });
        }
    }
    Ok(set.into_iter().collect())
}

async fn storage_class_exists(resolver: &Resolver, name: &str) -> Result<bool, api::ApiError> {
    let gvk = GroupVersionKind::gvk("storage.k8s.io", "v1", "StorageClass");
    resolver.exists(&gvk, None, name).await
}

/// AppProjects named by Applications that neither `gitops/applications` renders nor the cluster has.
async fn missing_projects(desired: &Desired, resolver: &Resolver) -> Vec<Problem> {
    let rendered: BTreeSet<String> = desired
        .projects
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for component in &desired.components {
        if let Some(project) = component
            .object
            .data
            .pointer("/spec/project")
            .and_then(|v| v.as_str())
            && project != "default"
            && !rendered.contains(project)
        {
            let namespace = component
                .object
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "argocd".into());
            wanted.insert((namespace, project.to_string()));
        }
    }
    let mut problems = Vec::new();
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "AppProject");
    for (namespace, project) in wanted {
        let live = match resolver.api(&gvk, Some(&namespace)).await {
            Ok(Some((api, resource))) => {
                let call = Call::for_resource("get", &resource, Some(&namespace), Some(&project));
                resolver
                    .api_client()
                    .call(&call, || api.get_metadata_opt(&project))
                    .await
                    .map(|o| o.is_some())
                    .unwrap_or(false)
            }
            // Argo CD is not installed yet: the platform phase brings the kind, not the project.
            _ => false,
        };
        if !live {
            let users: Vec<&str> = desired
                .components
                .iter()
                .filter(|c| {
                    c.object.data.pointer("/spec/project").and_then(|v| v.as_str()) == Some(project.as_str())
                })
                .map(|c| c.app.as_str())
                .collect();
            problems.push(Problem {
                what: format!(
                    "AppProject {namespace}/{project} (used by {}) is neither in gitops/applications nor in the cluster; Argo CD refuses to sync Applications of a missing project",
                    users.join(", ")
                ),
                fix: format!("add an AppProject `{project}` template to gitops/applications (or create it in namespace {namespace})"),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_listed_with_their_fix() {
        let failed = PreflightFailed {
            problems: vec![
                Problem {
                    what: "forbidden: you may not patch namespaces staging (cluster-scoped)".into(),
                    fix: "ask".into(),
                },
                Problem {
                    what: "helm is needed".into(),
                    fix: "install helm".into(),
                },
            ],
        };
        let text = failed.to_string();
        assert!(
            text.starts_with("preflight found 2 problem(s); nothing was changed"),
            "{text}"
        );
        assert!(
            text.contains("\n  - helm is needed\n      → install helm"),
            "{text}"
        );
    }
}

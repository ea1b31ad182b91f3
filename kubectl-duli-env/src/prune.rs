//! Pruning: the objects `up` once applied for an environment that the repository no longer declares (a
//! removed `gitops/applications/*.yml.j2`, a dropped SealedSecret file). `plan` lists them as deletions;
//! `up --prune` deletes them once its apply waves succeeded.
//!
//! The rule is strict, so that nothing duli did not create is ever deleted. A live object is a candidate
//! for environment E when all of these hold:
//! - it is of a kind `up` applies for an environment: SealedSecret (in E's namespace), Application or
//!   AppProject (in Argo CD's namespace);
//! - it carries the labels that tie it to E: `app.kubernetes.io/managed-by: duli` and either
//!   `duli.one/scope: environment` with `environment: E`, or `duli.one/scope: shared`;
//! - its `metadata.managedFields` has an `Apply` entry of field manager `duli` (something labelled like
//!   duli's but written by another tool is not ours);
//! - this run does not declare it, and, for a shared object, no environment of the repository does.
//!
//! Namespaces are never pruned: taking an environment's namespace away is `down`'s job. Deleting an
//! Application with Argo CD's `resources-finalizer.argocd.argoproj.io` deletes what it deployed.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DynamicObject;
use serde_json::Value;

use crate::apply::{ObjectId, Resolver};
use crate::desired::{self, Desired, SCOPE_LABEL, Scope};
use crate::down::{self, Deleter};
use crate::{EnvError, Phase};
use shared::environment::Environment;
use shared::repo::Repo;

/// The label selector every candidate matches; the rest of the rule is checked on each object.
const SELECTOR: &str = "app.kubernetes.io/managed-by=duli";

/// Why an environment-scoped candidate goes.
pub const NOT_DECLARED: &str = "no longer declared by the repository";
/// Why a shared candidate goes.
pub const NOT_DECLARED_SHARED: &str = "shared, and no environment of the repository declares it any more";

/// One object `up --prune` would delete.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Which object.
    pub id: ObjectId,
    /// The phase that applies its kind (secrets or gitops).
    pub phase: Phase,
    /// `duli.one/component`, for Applications and AppProjects.
    pub component: Option<String>,
    /// The sync wave, for Applications.
    pub wave: Option<i32>,
    /// Why it goes.
    pub reason: &'static str,
    /// The live object.
    pub live: Value,
}

/// What identifies an object across API versions: group, kind, namespace, name.
type Key = (String, String, Option<String>, String);

fn key(id: &ObjectId) -> Key {
    (
        id.gvk().group,
        id.kind.clone(),
        id.namespace.clone(),
        id.name.clone(),
    )
}

fn keys<'a>(objects: impl IntoIterator<Item = &'a DynamicObject>) -> BTreeSet<Key> {
    objects.into_iter().map(|o| key(&ObjectId::of(o))).collect()
}

/// What the repository declares: for this environment, and (shared objects) for any environment.
#[derive(Debug, Default)]
pub struct Declared {
    env: BTreeSet<Key>,
    /// `None` when another environment could not be rendered: then no shared object is a candidate.
    anywhere: Option<BTreeSet<Key>>,
    /// False when the environment's SealedSecrets could not be read: then none is a candidate.
    secrets_known: bool,
}

impl Declared {
    /// What `desired` declares, and what every environment of `repo` declares.
    pub fn load(repo: &Repo, desired: &Desired) -> Self {
        let mut env: BTreeSet<Key> = keys(&desired.projects);
        env.extend(keys(desired.components.iter().map(|c| &c.object)));
        let secrets_known = match &desired.secrets.objects {
            Ok(objects) => {
                env.extend(keys(objects));
                true
            }
            Err(_) => false,
        };
        let anywhere = declared_by_every_environment(repo, &desired.env, &env);
        Declared {
            env,
            anywhere,
            secrets_known,
        }
    }
}

fn declared_by_every_environment(
    repo: &Repo,
    this: &Environment,
    own: &BTreeSet<Key>,
) -> Option<BTreeSet<Key>> {
    let mut all = own.clone();
    let others = match Environment::load_all(repo) {
        Ok(others) => others,
        Err(err) => {
            tracing::warn!("shared objects are not pruned: {err}");
            return None;
        }
    };
    for other in others.iter().filter(|o| o.name != this.name) {
        match desired::render(repo, other) {
            Ok((projects, components)) => {
                all.extend(keys(&projects));
                all.extend(keys(components.iter().map(|c| &c.object)));
            }
            Err(err) => {
                tracing::warn!(
                    "shared objects are not pruned: cannot tell whether `{}` declares them: {err}",
                    other.name
                );
                return None;
            }
        }
    }
    Some(all)
}

/// The candidates among `live` objects (as the API returns them, `apiVersion` and `kind` set), for the
/// environment `env`: see the module's rule.
pub fn select(env: &str, declared: &Declared, live: Vec<Value>) -> Vec<Candidate> {
    let mut found = Vec::new();
    for value in live {
        let Ok(object) = serde_json::from_value::<DynamicObject>(value.clone()) else {
            continue;
        };
        let id = ObjectId::of(&object);
        let labels = object.metadata.labels.clone().unwrap_or_default();
        let label = |name: &str| labels.get(name).map(String::as_str);
        if label(desired::MANAGED_BY_LABEL) != Some(crate::namespaces::MANAGED_BY) {
            continue;
        }
        let phase = match (id.gvk().group.as_str(), id.kind.as_str()) {
            ("bitnami.com", "SealedSecret") if declared.secrets_known => Phase::Secrets,
            ("argoproj.io", "Application" | "AppProject") => Phase::Gitops,
            _ => continue,
        };
        let (scope, declared_by) = match label(SCOPE_LABEL) {
            Some("environment") if label(desired::ENVIRONMENT_LABEL) == Some(env) => {
                (Scope::Environment, Some(&declared.env))
            }
            Some("shared") if phase == Phase::Gitops => (Scope::Shared, declared.anywhere.as_ref()),
            _ => continue,
        };
        let Some(declared_by) = declared_by else {
            continue;
        };
        if declared_by.contains(&key(&id)) || !applied_by_duli(&value) {
            continue;
        }
        let component = label(desired::COMPONENT_LABEL).map(str::to_string);
        let wave = (id.kind == "Application").then(|| {
            desired::component("(live)", object.clone())
                .map(|c| c.wave)
                .unwrap_or(0)
        });
        found.push(Candidate {
            id,
            phase,
            component,
            wave,
            reason: match scope {
                Scope::Environment => NOT_DECLARED,
                Scope::Shared => NOT_DECLARED_SHARED,
            },
            live: value,
        });
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// True when field manager `duli` server-side-applied the object (an `Apply` entry in its managedFields).
fn applied_by_duli(live: &Value) -> bool {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|fields| {
            fields.iter().any(|f| {
                f.get("manager").and_then(Value::as_str) == Some(crate::apply::FIELD_MANAGER)
                    && f.get("operation").and_then(Value::as_str) == Some("Apply")
            })
        })
}

/// The live candidates of `desired`'s environment, of the kinds the `phases` apply (secrets: SealedSecrets;
/// gitops: Applications and AppProjects). A kind the cluster does not serve has none.
pub async fn candidates(
    resolver: &Resolver,
    repo: &Repo,
    desired: &Desired,
    phases: &[Phase],
) -> Result<Vec<Candidate>, EnvError> {
    let env = &desired.env;
    let mut live = Vec::new();
    if phases.contains(&Phase::Secrets) {
        live.extend(
            down::list(
                resolver,
                "bitnami.com",
                "v1alpha1",
                "SealedSecret",
                Some(&env.namespace),
                SELECTOR,
            )
            .await?,
        );
    }
    if phases.contains(&Phase::Gitops) {
        let mut namespaces: BTreeSet<String> = desired
            .projects
            .iter()
            .chain(desired.components.iter().map(|c| &c.object))
            .filter_map(|o| o.metadata.namespace.clone())
            .collect();
        namespaces.insert(env.gitops.argocd_namespace.clone());
        for namespace in &namespaces {
            for kind in ["Application", "AppProject"] {
                live.extend(
                    down::list(
                        resolver,
                        "argoproj.io",
                        "v1alpha1",
                        kind,
                        Some(namespace),
                        SELECTOR,
                    )
                    .await?,
                );
            }
        }
    }
    if live.is_empty() {
        return Ok(Vec::new());
    }
    let declared = Declared::load(repo, desired);
    Ok(select(&env.name, &declared, live))
}

/// `Application argocd/staging-x, SealedSecret staging/y`.
pub fn names(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| c.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Delete the candidates and wait until they are gone (bounded by `deleter`'s deadline): Applications
/// first, highest wave first like `down`, then SealedSecrets and AppProjects (Argo CD releases a project
/// only when none of its Applications is left). Returns what was deleted.
pub async fn delete(deleter: &Deleter, candidates: &[Candidate]) -> Result<Vec<ObjectId>, EnvError> {
    let mut by_wave: BTreeMap<i32, Vec<Value>> = BTreeMap::new();
    let mut rest = Vec::new();
    for candidate in candidates {
        match candidate.wave {
            Some(wave) => by_wave.entry(wave).or_default().push(candidate.live.clone()),
            None => rest.push(candidate.live.clone()),
        }
    }
    let mut deleted = Vec::new();
    let batches = by_wave
        .into_iter()
        .rev()
        .map(|(wave, objects)| (format!("wave {wave}"), objects))
        .chain((!rest.is_empty()).then(|| ("secrets and projects".to_string(), rest)));
    for (what, objects) in batches {
        tracing::info!(
            target: crate::log::PROGRESS,
            "  prune {what}: deleting {} …",
            objects.len()
        );
        deleted.extend(deleter.delete_all(&objects).await?);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A live object labelled for `env` (`shared`: the shared scope), server-side-applied by duli.
    fn object(kind: &str, namespace: &str, name: &str, env: &str) -> Value {
        let api_version = if kind == "SealedSecret" {
            "bitnami.com/v1alpha1"
        } else {
            "argoproj.io/v1alpha1"
        };
        let scope = if env == "shared" { "shared" } else { "environment" };
        json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "duli", "duli.one/scope": scope,
                                    "environment": env, "duli.one/component": "backend"},
                         "managedFields": [{"manager": "duli", "operation": "Apply"}]},
        })
    }

    /// `object` with its managedFields replaced by one entry of `manager` and `operation`.
    fn written_by(mut object: Value, manager: &str, operation: &str) -> Value {
        object["metadata"]["managedFields"] = json!([{"manager": manager, "operation": operation}]);
        object
    }

    fn key_of(kind: &str, namespace: &str, name: &str) -> Key {
        key(&ObjectId::of(
            &serde_json::from_value(object(kind, namespace, name, "any")).unwrap(),
        ))
    }

    fn names_of(found: &[Candidate]) -> Vec<String> {
        found.iter().map(|c| c.id.to_string()).collect()
    }

    #[test]
    fn only_undeclared_objects_duli_applied_for_this_environment_are_candidates() {
        let redis = key_of("Application", "argocd", "staging-redis");
        let declared = Declared {
            env: [redis.clone()].into(),
            anywhere: Some([redis].into()),
            secrets_known: true,
        };
        let mut unlabelled = object("Application", "argocd", "unlabelled", "staging");
        unlabelled["metadata"]["labels"] = json!({"environment": "staging"});
        let live = vec![
            object("Application", "argocd", "staging-backend", "staging"),
            object("Application", "argocd", "staging-redis", "staging"),
            object("Application", "argocd", "prod-backend", "prod"),
            written_by(
                object("Application", "argocd", "staging-other", "staging"),
                "kubectl",
                "Apply",
            ),
            written_by(
                object("Application", "argocd", "staging-edited", "staging"),
                "duli",
                "Update",
            ),
            unlabelled,
            object("SealedSecret", "staging", "old-secret", "staging"),
        ];
        let found = select("staging", &declared, live);
        assert_eq!(
            names_of(&found),
            [
                "Application argocd/staging-backend",
                "SealedSecret staging/old-secret"
            ]
        );
        assert_eq!(found[0].phase, Phase::Gitops);
        assert_eq!(found[0].wave, Some(0));
        assert_eq!(found[0].component.as_deref(), Some("backend"));
        assert_eq!(found[1].phase, Phase::Secrets);
        assert_eq!(found[1].reason, NOT_DECLARED);
    }

    #[test]
    fn shared_objects_go_only_when_no_environment_declares_them() {
        let live = || {
            vec![
                object("Application", "argocd", "loki", "shared"),
                object("Application", "argocd", "gone", "shared"),
            ]
        };
        // This environment dropped `loki`, another one still declares it.
        let declared = Declared {
            env: BTreeSet::new(),
            anywhere: Some([key_of("Application", "argocd", "loki")].into()),
            secrets_known: true,
        };
        let found = select("staging", &declared, live());
        assert_eq!(names_of(&found), ["Application argocd/gone"]);
        assert_eq!(found[0].reason, NOT_DECLARED_SHARED);
        // Another environment could not be rendered: no shared object is a candidate.
        let unknown = Declared {
            anywhere: None,
            ..declared
        };
        assert!(select("staging", &unknown, live()).is_empty());
    }

    #[test]
    fn unreadable_sealed_secrets_and_namespaces_are_never_candidates() {
        let declared = Declared {
            env: BTreeSet::new(),
            anywhere: Some(BTreeSet::new()),
            secrets_known: false,
        };
        let mut namespace = object("Namespace", "", "staging", "staging");
        namespace["apiVersion"] = json!("v1");
        let live = vec![
            object("SealedSecret", "staging", "redis-secret", "staging"),
            namespace,
        ];
        assert!(select("staging", &declared, live).is_empty());
    }
}

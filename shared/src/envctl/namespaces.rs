//! Phase 3, namespaces: the environment namespace and the system namespaces, labelled.
//!
//! The environment namespace carries `environment`, `team` and `tier` from the environment file (the
//! labels the platform description asks for). System namespaces (the operators', Argo CD's, the platform
//! charts') are shared by every environment, so they are labelled `environment: shared`, `tier: platform`
//! — the same values whichever environment runs `up`, or two environments would keep relabelling them.
//! `kube-*` and `default` belong to Kubernetes and are left alone.

use std::collections::BTreeSet;

use kube::api::DynamicObject;
use serde_json::json;

use super::desired::{Component, Scope};
use super::platform::PlatformChart;
use crate::environment::Environment;

/// `app.kubernetes.io/managed-by` value on what `env` creates outside Argo CD.
pub const MANAGED_BY: &str = "duli";

/// The namespaces `up` applies for `env`: its own first, then the system namespaces, sorted.
pub fn desired(
    env: &Environment,
    components: &[Component],
    platform: &[PlatformChart],
) -> Vec<DynamicObject> {
    let mut system: BTreeSet<String> = BTreeSet::new();
    system.insert(env.gitops.argocd_namespace.clone());
    system.extend(platform.iter().map(|c| c.namespace.clone()));
    system.extend(
        components
            .iter()
            .filter(|c| c.scope == Scope::Shared)
            .map(|c| c.destination.clone()),
    );
    system.remove(&env.namespace);
    let mut namespaces = vec![namespace(
        &env.namespace,
        &env.name,
        &env.team,
        env.tier.as_label(),
    )];
    namespaces.extend(
        system
            .iter()
            .filter(|name| !is_kubernetes_owned(name))
            .map(|name| namespace(name, "shared", &env.team, "platform")),
    );
    namespaces
}

/// Namespaces Kubernetes itself creates and owns.
pub fn is_kubernetes_owned(name: &str) -> bool {
    name == "default" || name.starts_with("kube-")
}

fn namespace(name: &str, environment: &str, team: &str, tier: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "environment": environment,
                "team": team,
                "tier": tier,
                "app.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
    }))
    .expect("a namespace literal is a valid object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Repo;
    use std::path::Path;

    #[test]
    fn env_namespace_first_then_system_namespaces_without_kubernetes_ones() {
        let repo = Repo::at(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()).unwrap();
        let env = Environment::load(&repo, "staging").unwrap();
        let (_, components) = super::super::desired::render(&repo, &env).unwrap();
        let namespaces = desired(&env, &components, &[]);
        let names: Vec<_> = namespaces
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names[0], "staging");
        assert!(names.contains(&"argocd".to_string()));
        assert!(
            !names.iter().any(|n| n.starts_with("kube-") || n == "prod"),
            "{names:?}"
        );
        let labels = namespaces[0].metadata.labels.clone().unwrap();
        assert_eq!(labels["tier"], "non-production");
        assert_eq!(labels["environment"], "staging");
        let system = namespaces[1].metadata.labels.clone().unwrap();
        assert_eq!(system["environment"], "shared");
    }
}

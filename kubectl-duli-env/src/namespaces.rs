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

use shared::environment::Environment;

/// `app.kubernetes.io/managed-by` value on what `env` creates outside Argo CD.
pub const MANAGED_BY: &str = "duli";

/// The namespaces `up` applies for `env`: its own first, then the `system` namespaces (what the shared
/// components and platform charts deploy into, see [`crate::desired`]), sorted, without the environment's
/// own and without Kubernetes' ones.
pub fn desired(env: &Environment, mut system: BTreeSet<String>) -> Vec<DynamicObject> {
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

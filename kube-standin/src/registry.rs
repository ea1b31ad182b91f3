//! The resource registry: which kinds the stand-in serves, under which group/version/plural, with which
//! scope, verbs and subresources. Discovery, OpenAPI, routing and storage all read this one table.
//!
//! Built-in kinds are hard-coded (only what the plugins touch); custom resources come from
//! `CustomResourceDefinition` objects, whose `openAPIV3Schema` is kept for validation.

use std::sync::Arc;

use serde_json::Value;

use crate::util::{get_str, version_priority};

/// The standard verbs of a stored resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource entry in discovery (`pods/portforward`, `clusters/status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Subresource {
    /// `status`, `scale`, `portforward`, `proxy`.
    pub name: String,
    /// The kind answered by the subresource.
    pub kind: String,
    /// Group of that kind (`autoscaling` for Scale).
    pub group: String,
    /// Version of that kind.
    pub version: String,
    /// Verbs served.
    pub verbs: Vec<String>,
}

/// One served resource at one group/version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Cluster`.
    pub kind: String,
    /// Lowercase plural resource name, e.g. `clusters`.
    pub plural: String,
    /// Lowercase singular name, e.g. `cluster`.
    pub singular: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`rmq`, `kc`, `svc`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Verbs of the main resource.
    pub verbs: Vec<String>,
    /// Subresources listed in discovery.
    pub subresources: Vec<Subresource>,
    /// The CRD's `openAPIV3Schema` for this version, used to validate and prune.
    pub schema: Option<Arc<Value>>,
    /// The name of the CRD that defined this type, if any.
    pub crd_name: Option<String>,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (`clusters.postgresql.cnpg.io`), or just `plural` for the core group, as used in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the `status` subresource exists (then main-resource writes keep the stored status).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s.name == "status")
    }

    /// Whether a verb is served on the main resource.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The URL prefix: `/api/v1` or `/apis/G/V`.
    pub fn gv_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Whether `name` designates this type the way kubectl resolves it (plural, singular, kind, short name,
    /// optionally qualified with `.group`), case-insensitively.
    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let (base, group) = match name.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (name.clone(), None),
        };
        if let Some(g) = group {
            // `clusters.postgresql.cnpg.io` or `clusters.v1.postgresql.cnpg.io`
            let g_ok = g == self.group || g == format!("{}.{}", self.version, self.group);
            if !g_ok {
                return false;
            }
        }
        base == self.plural
            || base == self.singular
            || base == self.kind.to_ascii_lowercase()
            || self.short_names.contains(&base)
    }
}

fn sub(name: &str, kind: &str, group: &str, version: &str, verbs: &[&str]) -> Subresource {
    Subresource {
        name: name.into(),
        kind: kind.into(),
        group: group.into(),
        version: version.into(),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    }
}

fn status_sub(kind: &str, group: &str, version: &str) -> Subresource {
    sub("status", kind, group, version, &["get", "patch", "update"])
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    with_status: bool,
    extra: Vec<Subresource>,
) -> ResourceType {
    let mut subresources = Vec::new();
    if with_status {
        subresources.push(status_sub(kind, group, version));
    }
    subresources.extend(extra);
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        verbs: STANDARD_VERBS.iter().map(|v| v.to_string()).collect(),
        subresources,
        schema: None,
        crd_name: None,
    }
}

/// The table of served resource types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    /// Bumped on every change, feeds the OpenAPI hash so kubectl's HTTP cache never serves a stale document.
    pub generation: u64,
}

impl Registry {
    /// The built-in kinds: the core objects the plugins read and write, apps workloads, storage classes,
    /// access reviews and CRDs themselves.
    pub fn builtin() -> Self {
        let scale = |_kind: &str| sub("scale", "Scale", "autoscaling", "v1", &["get", "patch", "update"]);
        let proxy = |kind: &str| {
            sub(
                "proxy",
                kind,
                "",
                "v1",
                &["create", "delete", "get", "patch", "update"],
            )
        };
        let create_only = |mut review: ResourceType| {
            review.verbs = vec!["create".into()];
            review
        };
        let rbac = "rbac.authorization.k8s.io";
        let admission = "admissionregistration.k8s.io";
        // One line a type: group, version, kind, plural, namespaced, short names, status subresource, others.
        #[rustfmt::skip]
        let mut types = vec![
            builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true, vec![]),
            builtin("", "v1", "Node", "nodes", false, &["no"], true, vec![proxy("NodeProxyOptions")]),
            builtin("", "v1", "Secret", "secrets", true, &[], false, vec![]),
            builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false, vec![]),
            builtin("", "v1", "Service", "services", true, &["svc"], true, vec![proxy("ServiceProxyOptions")]),
            builtin("", "v1", "Endpoints", "endpoints", true, &["ep"], false, vec![]),
            builtin("", "v1", "Pod", "pods", true, &["po"], true, vec![
                sub("portforward", "PodPortForwardOptions", "", "v1", &["create", "get"]),
                proxy("PodProxyOptions"),
            ]),
            builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], true, vec![]),
            builtin("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false, vec![]),
            builtin("", "v1", "Event", "events", true, &["ev"], false, vec![]),
            builtin("apps", "v1", "Deployment", "deployments", true, &["deploy"], true, vec![scale("Deployment")]),
            builtin("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], true, vec![scale("StatefulSet")]),
            // Workload kinds the controllers write (see crate::controllers).
            builtin("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"], true, vec![scale("ReplicaSet")]),
            builtin("apps", "v1", "ControllerRevision", "controllerrevisions", true, &[], false, vec![]),
            builtin("batch", "v1", "Job", "jobs", true, &[], true, vec![]),
            builtin("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"], false, vec![]),
            builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"], true, vec![]),
            create_only(builtin("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", false, &[], false, vec![])),
            create_only(builtin("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", false, &[], false, vec![])),
            // What `kubectl create role|rolebinding|clusterrole|clusterrolebinding` writes (ReplicaSets, which
            // helm 4's `--wait` lists for a Deployment's status, and Jobs are registered with the workloads).
            builtin(rbac, "v1", "Role", "roles", true, &[], false, vec![]),
            builtin(rbac, "v1", "RoleBinding", "rolebindings", true, &[], false, vec![]),
            builtin(rbac, "v1", "ClusterRole", "clusterroles", false, &[], false, vec![]),
            builtin(rbac, "v1", "ClusterRoleBinding", "clusterrolebindings", false, &[], false, vec![]),
            // What the platform charts (cert-manager, sealed-secrets, argo-cd) install besides workloads: the
            // objects are stored and served; nothing calls the webhooks or enforces the policies (see README).
            builtin("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], true, vec![]),
            builtin("batch", "v1", "CronJob", "cronjobs", true, &["cj"], true, vec![]),
            builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], true, vec![]),
            builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], false, vec![]),
            builtin("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], true, vec![]),
            builtin("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], true, vec![]),
            builtin(admission, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false, &[], false, vec![]),
            builtin(admission, "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false, &[], false, vec![]),
            builtin("apiregistration.k8s.io", "v1", "APIService", "apiservices", false, &[], true, vec![]),
        ];
        for t in &mut types {
            if [
                "pods",
                "services",
                "deployments",
                "statefulsets",
                "replicasets",
                "jobs",
                "daemonsets",
                "cronjobs",
            ]
            .contains(&t.plural.as_str())
            {
                t.categories = vec!["all".into()];
            }
        }
        Registry {
            types: types.into_iter().map(Arc::new).collect(),
            generation: 1,
        }
    }

    /// All served types.
    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// The type served at `group/version` under `plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Whether a group/version is served at all.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// The preferred-version type for a kubectl-style name (`secrets`, `cluster`, `Cluster.postgresql.cnpg.io`,
    /// `rmq`). Ambiguous short forms resolve to the first group in discovery order.
    pub fn lookup(&self, name: &str) -> Option<Arc<ResourceType>> {
        let mut matches: Vec<&Arc<ResourceType>> =
            self.types.iter().filter(|t| t.matches_name(name)).collect();
        matches.sort_by_key(|t| (std::cmp::Reverse(version_priority(&t.version)),));
        // Prefer the core and built-in groups, as kubectl does.
        matches.sort_by_key(|t| t.crd_name.is_some());
        matches.first().map(|t| (*t).clone())
    }

    /// Groups in discovery order with their versions, preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        for (_, versions) in &mut out {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// Types served at one group/version, in registration order.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }

    /// Registers (or re-registers) the types of a CRD object; returns the types added.
    pub fn add_crd(&mut self, crd: &Value) -> Result<Vec<Arc<ResourceType>>, String> {
        let types = types_from_crd(crd)?;
        let name = types[0].crd_name.clone();
        let (group, plural) = (types[0].group.clone(), types[0].plural.clone());
        self.types
            .retain(|t| !(t.crd_name == name || (t.group == group && t.plural == plural)));
        let arcs: Vec<Arc<ResourceType>> = types.into_iter().map(Arc::new).collect();
        self.types.extend(arcs.iter().cloned());
        self.generation += 1;
        Ok(arcs)
    }

    /// Unregisters the types of a CRD by name.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.types.retain(|t| t.crd_name.as_deref() != Some(crd_name));
        self.generation += 1;
    }
}

/// Reads the served versions of a `CustomResourceDefinition` (apiextensions.k8s.io/v1) into types.
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let name = get_str(crd, &["metadata", "name"])
        .ok_or("metadata.name is missing")?
        .to_string();
    let spec = crd.get("spec").ok_or("spec is missing")?;
    let group = get_str(spec, &["group"])
        .ok_or("spec.group is missing")?
        .to_string();
    let names = spec.get("names").ok_or("spec.names is missing")?;
    let kind = get_str(names, &["kind"])
        .ok_or("spec.names.kind is missing")?
        .to_string();
    let plural = get_str(names, &["plural"])
        .ok_or("spec.names.plural is missing")?
        .to_string();
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name must be spec.names.plural+\".\"+spec.group ({plural}.{group})"
        ));
    }
    let singular = get_str(names, &["singular"])
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let namespaced = match get_str(spec, &["scope"]) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => return Err(format!("spec.scope must be Namespaced or Cluster, got {other:?}")),
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is missing")?;
    let mut out = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let version = get_str(v, &["name"])
            .ok_or("spec.versions[].name is missing")?
            .to_string();
        let mut subresources = Vec::new();
        if v.pointer("/subresources/status").is_some() {
            subresources.push(status_sub(&kind, &group, &version));
        }
        if v.pointer("/subresources/scale").is_some() {
            subresources.push(sub(
                "scale",
                "Scale",
                "autoscaling",
                "v1",
                &["get", "patch", "update"],
            ));
        }
        out.push(ResourceType {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: strings("shortNames"),
            categories: strings("categories"),
            verbs: STANDARD_VERBS.iter().map(|v| v.to_string()).collect(),
            subresources,
            schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
            crd_name: Some(name.clone()),
        });
    }
    if out.is_empty() {
        return Err("no served version".into());
    }
    out.sort_by_key(|t| std::cmp::Reverse(version_priority(&t.version)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "rabbitmqclusters.rabbitmq.com"},
            "spec": {"group": "rabbitmq.com", "scope": "Namespaced",
                "names": {"kind": "RabbitmqCluster", "plural": "rabbitmqclusters", "singular": "rabbitmqcluster",
                          "shortNames": ["rmq"], "categories": ["all", "rabbitmq"]},
                "versions": [{"name": "v1beta1", "served": true, "storage": true,
                              "subresources": {"status": {}},
                              "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        })
    }

    #[test]
    fn registers_crds_and_resolves_names() {
        let mut r = Registry::builtin();
        r.add_crd(&crd()).unwrap();
        for name in [
            "rmq",
            "rabbitmqclusters",
            "RabbitmqCluster",
            "rabbitmqclusters.rabbitmq.com",
            "rabbitmqcluster",
        ] {
            let t = r.lookup(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(t.plural, "rabbitmqclusters");
            assert!(t.has_status());
        }
        assert_eq!(r.lookup("svc").unwrap().plural, "services");
        assert_eq!(r.lookup("secret").unwrap().plural, "secrets");
        assert!(r.lookup("nothing").is_none());
        let gen_before = r.generation;
        r.remove_crd("rabbitmqclusters.rabbitmq.com");
        assert!(r.lookup("rmq").is_none());
        assert!(r.generation > gen_before);
    }

    #[test]
    fn rejects_malformed_crds() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("wrong");
        assert!(types_from_crd(&bad).is_err());
    }
}

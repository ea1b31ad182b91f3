//! The access policy: everything is allowed except the configured denials (`--deny VERB:RESOURCE[:NS]`),
//! and the same policy answers the requests themselves (403) and the access reviews that ask about
//! them (`SelfSubjectAccessReview` for `kubectl auth can-i` and the plugins' preflight,
//! `SelfSubjectRulesReview` for `kubectl auth can-i --list`).

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// One refused (verb, resource[, namespace]) combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// RBAC verb (`get`, `create`, ...) or `*`.
    pub verb: String,
    /// `plural`, `plural/subresource`, `plural.group` or `*`.
    pub resource: String,
    /// Only in this namespace; `None` everywhere (cluster scope included).
    pub namespace: Option<String>,
}

impl Denial {
    /// A denial everywhere.
    pub fn new(verb: &str, resource: &str) -> Denial {
        Denial {
            verb: verb.into(),
            resource: resource.into(),
            namespace: None,
        }
    }

    /// Parses `VERB:RESOURCE[:NAMESPACE]` (`get:secrets`, `create:deployments.apps:staging`, `*:*`).
    pub fn parse(spec: &str) -> Result<Denial, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = || {
            format!(
                "invalid --deny {spec:?}: expected VERB:RESOURCE[:NAMESPACE], e.g. get:secrets or create:deployments:staging"
            )
        };
        match parts.as_slice() {
            [verb, resource] | [verb, resource, _] if verb.is_empty() || resource.is_empty() => Err(bad()),
            [verb, resource] => Ok(Denial::new(verb, resource)),
            [verb, resource, namespace] if !namespace.is_empty() => Ok(Denial {
                namespace: Some(namespace.to_string()),
                ..Denial::new(verb, resource)
            }),
            _ => Err(bad()),
        }
    }

    /// Whether this denial covers `verb` on `resource` of `group` (with an optional subresource) in
    /// `namespace` (empty at cluster scope or for all namespaces).
    pub fn covers(&self, verb: &str, group: &str, resource: &str, sub: &str, namespace: &str) -> bool {
        let verb_ok = self.verb == "*" || self.verb == verb;
        let full = if sub.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{sub}")
        };
        let resource_ok = self.resource == "*"
            || self.resource == full
            || (sub.is_empty() && !group.is_empty() && self.resource == format!("{resource}.{group}"));
        let namespace_ok = match &self.namespace {
            None => true,
            Some(ns) => ns == namespace,
        };
        verb_ok && resource_ok && namespace_ok
    }
}

/// Whether any denial refuses the request.
pub fn is_denied(
    denials: &[Denial],
    verb: &str,
    group: &str,
    resource: &str,
    sub: &str,
    namespace: &str,
) -> bool {
    denials
        .iter()
        .any(|d| d.covers(verb, group, resource, sub, namespace))
}

/// Fills `status` of a `SelfSubjectAccessReview`: resource attributes through the policy, non-resource
/// URLs (`/healthz`, `/metrics`) always allowed.
pub fn access_review(denials: &[Denial], mut review: Value) -> Value {
    let attrs = review.pointer("/spec/resourceAttributes").cloned();
    let field = |k: &str| {
        attrs
            .as_ref()
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let denied = attrs.is_some()
        && is_denied(
            denials,
            &field("verb"),
            &field("group"),
            &field("resource"),
            &field("subresource"),
            &field("namespace"),
        );
    review["status"] = if denied {
        json!({"allowed": false, "denied": true, "reason": "denied by kube-standin's --deny policy"})
    } else {
        json!({"allowed": true, "reason": "kube-standin allows everything not denied"})
    };
    review
}

/// Fills `status` of a `SelfSubjectRulesReview` for `spec.namespace`: one wildcard rule when nothing is
/// denied there, else every served resource with the verbs left allowed (RBAC rules cannot say "deny").
pub fn rules_review(denials: &[Denial], types: &[std::sync::Arc<ResourceType>], mut review: Value) -> Value {
    let namespace = review
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let relevant: Vec<&Denial> = denials
        .iter()
        .filter(|d| d.namespace.as_ref().is_none_or(|ns| *ns == namespace))
        .collect();
    let resource_rules: Vec<Value> = if relevant.is_empty() {
        vec![json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})]
    } else {
        let owned: Vec<Denial> = relevant.into_iter().cloned().collect();
        let mut rules = Vec::new();
        for t in types {
            let verbs: Vec<&String> = t
                .verbs
                .iter()
                .filter(|v| !is_denied(&owned, v, &t.group, &t.plural, "", &namespace))
                .collect();
            if !verbs.is_empty() {
                rules.push(json!({"verbs": verbs, "apiGroups": [t.group], "resources": [t.plural]}));
            }
            for s in &t.subresources {
                let verbs: Vec<&String> = s
                    .verbs
                    .iter()
                    .filter(|v| !is_denied(&owned, v, &t.group, &t.plural, &s.name, &namespace))
                    .collect();
                if !verbs.is_empty() {
                    rules.push(json!({
                        "verbs": verbs, "apiGroups": [t.group], "resources": [format!("{}/{}", t.plural, s.name)]
                    }));
                }
            }
        }
        rules
    };
    review["status"] = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        "incomplete": false
    });
    review
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_deny_specs() {
        assert_eq!(
            Denial::parse("get:secrets").unwrap(),
            Denial::new("get", "secrets")
        );
        let d = Denial::parse("create:deployments.apps:staging").unwrap();
        assert_eq!(d.namespace.as_deref(), Some("staging"));
        for bad in ["get", ":secrets", "get:", "a:b:c:d", "get:secrets:"] {
            assert!(Denial::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_verbs_resources_groups_and_namespaces() {
        let d = Denial::parse("create:deployments.apps:staging").unwrap();
        assert!(d.covers("create", "apps", "deployments", "", "staging"));
        assert!(!d.covers("create", "apps", "deployments", "", "default"));
        assert!(!d.covers("get", "apps", "deployments", "", "staging"));
        let sub = Denial::new("get", "services/proxy");
        assert!(sub.covers("get", "", "services", "proxy", "x"));
        assert!(!sub.covers("get", "", "services", "", "x"));
        assert!(Denial::new("*", "*").covers("list", "", "pods", "", ""));
    }

    #[test]
    fn reviews_answer_from_the_policy() {
        let denials = [Denial::parse("get:secrets:prod").unwrap()];
        let ask = |ns: &str| json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": ns}}});
        assert_eq!(access_review(&denials, ask("prod"))["status"]["allowed"], false);
        assert_eq!(access_review(&denials, ask("dev"))["status"]["allowed"], true);
        let types = crate::registry::Registry::builtin().types().to_vec();
        let dev = rules_review(&denials, &types, json!({"spec": {"namespace": "dev"}}));
        assert_eq!(dev["status"]["resourceRules"][0]["verbs"], json!(["*"]));
        let prod = rules_review(&denials, &types, json!({"spec": {"namespace": "prod"}}));
        let secrets = prod["status"]["resourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resources"] == json!(["secrets"]))
            .unwrap();
        assert!(!secrets["verbs"].as_array().unwrap().contains(&json!("get")));
    }
}

//! Policy checks drawn from the platform description.
//!
//! Each rule has an id (for `--policy-skip`), a severity and a fix. Rules that the description states
//! for production only (`image-tag`, `resources`, `pdb`) apply when the environment pins image tags or
//! is of the production tier. Validation rules (`schema`, `crd-missing`, `core-type`, `api-unknown`) are
//! listed here too so that one `--policy-skip` covers every kind of finding.

use std::collections::BTreeMap;

use serde_json::Value;

use super::findings::{Finding, Severity};
use super::manifests::Object;
use shared::environment::{Environment, ImageTagPolicy};

/// A rule: id, severity and one line on what it checks.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The id used in findings and `--policy-skip`.
    pub id: &'static str,
    /// How serious a finding is.
    pub severity: Severity,
    /// What it checks.
    pub summary: &'static str,
}

/// Every rule, policy and validation.
pub const RULES: &[Rule] = &[
    Rule {
        id: "schema",
        severity: Severity::Error,
        summary: "custom resources match their CRD schema (unknown fields rejected)",
    },
    Rule {
        id: "crd-missing",
        severity: Severity::Error,
        summary: "every custom resource has a known CRD",
    },
    Rule {
        id: "core-type",
        severity: Severity::Error,
        summary: "built-in objects match their Kubernetes type (unknown fields rejected)",
    },
    Rule {
        id: "api-unknown",
        severity: Severity::Error,
        summary: "built-in API versions and kinds exist in Kubernetes 1.33",
    },
    Rule {
        id: "object-name",
        severity: Severity::Error,
        summary: "object names follow the API server's rules (DNS-1123 subdomain, or label for some kinds)",
    },
    Rule {
        id: "configmap-secret",
        severity: Severity::Error,
        summary: "no secret-looking keys or values in ConfigMaps",
    },
    Rule {
        id: "standard-labels",
        severity: Severity::Warning,
        summary: "app.kubernetes.io/*, environment, team and tier labels on every object",
    },
    Rule {
        id: "image-tag",
        severity: Severity::Error,
        summary: "pinned environments: every image has a version tag, never `latest`",
    },
    Rule {
        id: "resources",
        severity: Severity::Error,
        summary: "production: every container has resource requests and limits",
    },
    Rule {
        id: "pdb",
        severity: Severity::Error,
        summary: "production: multi-replica workloads have a PodDisruptionBudget",
    },
    Rule {
        id: "sealed-secret",
        severity: Severity::Error,
        summary: "Secrets are stored as SealedSecrets, never as plain Secrets",
    },
    Rule {
        id: "policy-skip",
        severity: Severity::Warning,
        summary: "a duli.one/policy-skip annotation names known rules and has a duli.one/policy-skip-reason",
    },
    Rule {
        id: "values-unknown",
        severity: Severity::Warning,
        summary: "every key in our values for an upstream chart is a value that chart has",
    },
];

/// The labels every object carries (platform description, "Kubernetes standard labels").
pub const STANDARD_LABELS: &[&str] = &[
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "environment",
    "team",
    "tier",
];

/// The annotation that exempts one object from rules: `duli.one/policy-skip: "image-tag,resources"`.
pub const SKIP_ANNOTATION: &str = "duli.one/policy-skip";
/// Why (required: an exemption without a reason is not applied).
pub const SKIP_REASON_ANNOTATION: &str = "duli.one/policy-skip-reason";

/// One object's exemption from rules, by its annotations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exemption {
    /// The chart (or `applications`).
    pub chart: String,
    /// The object, `Kind/namespace/name`.
    pub object: String,
    /// The rules it is exempt from.
    pub rules: Vec<String>,
    /// Why, from its `duli.one/policy-skip-reason`.
    pub reason: String,
}

/// The exemptions the objects' annotations ask for, and `policy-skip` findings for the ones that are not
/// applied (no reason given, or a rule that does not exist).
pub fn exemptions(objects: &[Located<'_>]) -> (Vec<Exemption>, Vec<Finding>) {
    let mut exemptions = Vec::new();
    let mut found = Vec::new();
    for &at in objects {
        let annotation = |name: &str| {
            at.object
                .value
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .map(str::to_string)
        };
        let Some(listed) = annotation(SKIP_ANNOTATION) else {
            continue;
        };
        let rules: Vec<String> = listed
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        let unknown: Vec<&String> = rules.iter().filter(|r| rule(r).is_none()).collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = RULES.iter().map(|r| r.id).collect();
            found.push(finding(
                "policy-skip",
                at,
                format!(
                    "annotation {SKIP_ANNOTATION} names unknown rules: {}",
                    unknown
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "use rule ids from `helm duli-render --list-rules`: {}",
                    known.join(", ")
                ),
            ));
        }
        match annotation(SKIP_REASON_ANNOTATION).filter(|r| !r.is_empty()) {
            Some(reason) => exemptions.push(Exemption {
                chart: at.chart.to_string(),
                object: at.object.id(),
                rules: rules.into_iter().filter(|r| rule(r).is_some()).collect(),
                reason,
            }),
            None => found.push(finding(
                "policy-skip",
                at,
                format!(
                    "annotation {SKIP_ANNOTATION} ({listed}) has no {SKIP_REASON_ANNOTATION}: the exemption is not applied"
                ),
                format!("say why in the annotation {SKIP_REASON_ANNOTATION}"),
            )),
        }
    }
    (exemptions, found)
}

/// Look up a rule by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.id == id)
}

/// An object with the chart it came from.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    /// The chart (or `applications`).
    pub chart: &'a str,
    /// The object.
    pub object: &'a Object,
}

/// A finding of rule `id` about `at`.
pub fn finding(id: &str, at: Located<'_>, message: String, fix: impl Into<String>) -> Finding {
    Finding {
        rule: id.to_string(),
        severity: rule(id).map(|r| r.severity).unwrap_or(Severity::Error),
        chart: at.chart.to_string(),
        object: at.object.id(),
        file: at.object.source.clone(),
        message,
        fix: fix.into(),
    }
}

/// Run every policy rule over all objects of an environment (rules like `pdb` look across charts).
///
/// `other_envs` are the names of the repository's other environments: an `environment` label naming one of
/// them is a copy-paste slip.
pub fn check(env: &Environment, other_envs: &[String], objects: &[Located<'_>]) -> Vec<Finding> {
    let mut found = Vec::new();
    let production = env.is_production();
    let pinned = env.image_tag_policy == ImageTagPolicy::Pinned;
    for &at in objects {
        object_name(at, &mut found);
        configmap_secret(at, &mut found);
        standard_labels(env, other_envs, at, &mut found);
        sealed_secret(at, &mut found);
        if pinned {
            image_tag(at, &mut found);
        }
        if production {
            resources(at, &mut found);
        }
    }
    if production {
        pdb(env, objects, &mut found);
    }
    found
}

/// `object-name`: a name the API server would refuse (empty, too long, uppercase, non-ASCII …). Objects
/// without a kind are `core-type`'s; a missing name with `generateName` is the API server's to fill.
fn object_name(at: Located<'_>, found: &mut Vec<Finding>) {
    let (kind, name) = (at.object.kind(), at.object.name());
    let generated = name.is_empty() && at.object.value.pointer("/metadata/generateName").is_some();
    if kind.is_empty() || generated {
        return;
    }
    if let Err(err) = shared::names::validate_object_name(kind, name) {
        found.push(finding(
            "object-name",
            at,
            err.to_string(),
            "fix metadata.name in the template (the API server refuses this object)",
        ));
    }
}

/// Words of a key name: split on non-alphanumerics and camelCase, lowercased.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Whether a configuration key names a secret (`DB_PASSWORD`, `apiKey`, `client-secret`, `jwtToken`,
/// `credentials`), but not a reference to one or a setting about one (`PASSWORD_FILE`, `SECRET_NAME`,
/// `TOKEN_TTL`). The one rule for render's `configmap-secret` policy and `secrets audit`.
pub fn is_secret_key(key: &str) -> bool {
    const SECRET: [&str; 11] = [
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
        "passphrase",
    ];
    const KEY_QUALIFIERS: [&str; 9] = [
        "api",
        "private",
        "access",
        "secret",
        "signing",
        "encryption",
        "master",
        "license",
        "client",
    ];
    // Words after the secret word that make it a reference or a setting, not the secret itself.
    const BENIGN_AFTER: [&str; 22] = [
        "file",
        "path",
        "url",
        "uri",
        "endpoint",
        "ttl",
        "expiry",
        "expiration",
        "lifetime",
        "length",
        "min",
        "max",
        "header",
        "name",
        "ref",
        "type",
        "policy",
        "enabled",
        "key",
        "dir",
        "mount",
        "audience",
    ];
    let words = words(key);
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        let benign_next = next.is_some_and(|next| BENIGN_AFTER.contains(&next));
        if SECRET.contains(&word.as_str()) && !benign_next {
            return true;
        }
        if word == "key" && i > 0 && KEY_QUALIFIERS.contains(&words[i - 1].as_str()) && !benign_next {
            return true;
        }
    }
    false
}

/// Why a value looks like a secret, if it does.
pub fn secret_value(value: &str) -> Option<&'static str> {
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if let Some((_, rest)) = value.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((credentials, _)) = authority.rsplit_once('@')
            && credentials
                .split_once(':')
                .is_some_and(|(_, password)| !password.is_empty() && !password.starts_with('$'))
        {
            return Some("a URL with a password");
        }
    }
    let bytes = value.as_bytes();
    if bytes.windows(20).any(|w| {
        w.starts_with(b"AKIA")
            && w[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }) {
        return Some("an AWS access key");
    }
    if value.starts_with("eyJ") && value.matches('.').count() == 2 && !value.contains(char::is_whitespace) {
        return Some("a JWT");
    }
    None
}

fn configmap_secret(at: Located<'_>, found: &mut Vec<Finding>) {
    if at.object.kind() != "ConfigMap" || at.object.api_version() != "v1" {
        return;
    }
    let Some(data) = at.object.value.get("data").and_then(Value::as_object) else {
        return;
    };
    let fix = "move the value into a SealedSecret and reference it with secretKeyRef/envFrom; keep only non-sensitive settings in the ConfigMap";
    for (key, value) in data {
        let text = value.as_str().unwrap_or_default();
        if is_secret_key(key) && !text.trim().is_empty() {
            found.push(finding(
                "configmap-secret",
                at,
                format!("ConfigMap key `{key}` looks like a secret"),
                fix,
            ));
        } else if let Some(why) = secret_value(text) {
            found.push(finding(
                "configmap-secret",
                at,
                format!("ConfigMap key `{key}` holds {why}"),
                fix,
            ));
        } else if let Some(line) = embedded_secret_line(text) {
            found.push(finding(
                "configmap-secret",
                at,
                format!("ConfigMap key `{key}` sets `{line}` in its embedded configuration"),
                fix,
            ));
        }
    }
}

/// `password: x` / `password=x` inside an embedded config file (values that reference the environment
/// or a template placeholder do not count).
fn embedded_secret_line(text: &str) -> Option<String> {
    text.lines().filter(|_| text.contains('\n')).find_map(|line| {
        let (key, value) = line.split_once([':', '='])?;
        let key = key.trim().trim_matches(['"', '\'', '-', ' ']);
        let value = value.trim().trim_matches(['"', '\'']);
        let placeholder =
            value.is_empty() || value.starts_with('$') || value.starts_with("{{") || value.starts_with('%');
        (is_secret_key(key) && !placeholder).then(|| key.to_string())
    })
}

fn standard_labels(env: &Environment, other_envs: &[String], at: Located<'_>, found: &mut Vec<Finding>) {
    let labels = at.object.labels();
    let missing: Vec<&str> = STANDARD_LABELS
        .iter()
        .copied()
        .filter(|label| {
            labels
                .get(*label)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() {
        found.push(finding(
            "standard-labels",
            at,
            format!("missing label{} {}", if missing.len() > 1 { "s" } else { "" }, missing.join(", ")),
            "add the labels to metadata.labels (a shared `labels` helper in _helpers.tpl keeps every object alike)",
        ));
    }
    if let Some(other) = labels
        .get("environment")
        .and_then(Value::as_str)
        .filter(|v| other_envs.iter().any(|o| o == v))
    {
        found.push(finding(
            "standard-labels",
            at,
            format!(
                "label environment={other} while rendering environment `{}`",
                env.name
            ),
            format!(
                "take the environment label from the environment being rendered ({})",
                env.name
            ),
        ));
    }
}

fn sealed_secret(at: Located<'_>, found: &mut Vec<Finding>) {
    if at.object.kind() != "Secret" || at.object.api_version() != "v1" {
        return;
    }
    let has_data = ["data", "stringData"].iter().any(|field| {
        at.object
            .value
            .get(field)
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    });
    if has_data {
        found.push(finding(
            "sealed-secret",
            at,
            "a plain Secret with data is rendered; its values would sit unencrypted in Git and in the render output".into(),
            "seal it (kubectl duli secrets seal) and ship a bitnami.com/v1alpha1 SealedSecret instead",
        ));
    }
}

/// The pod specs of a workload, with their JSON path.
fn pod_specs(object: &Object) -> Vec<(&'static str, &Value)> {
    let value = &object.value;
    let path = match (object.api_version(), object.kind()) {
        ("v1", "Pod") => "/spec",
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch/v1", "Job") => {
            "/spec/template/spec"
        }
        ("batch/v1", "CronJob") => "/spec/jobTemplate/spec/template/spec",
        _ => return Vec::new(),
    };
    value
        .pointer(path)
        .map(|spec| vec![(path, spec)])
        .unwrap_or_default()
}

fn containers(spec: &Value) -> Vec<(&'static str, &Value)> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|field| {
            spec.get(*field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |c| (*field, c))
        })
        .collect()
}

/// Where known custom resources keep their resource requirements.
const CR_RESOURCES: &[(&str, &str, &str)] = &[
    ("postgresql.cnpg.io", "Cluster", "/spec/resources"),
    ("rabbitmq.com", "RabbitmqCluster", "/spec/resources"),
    (
        "redis.redis.opstreelabs.in",
        "RedisReplication",
        "/spec/kubernetesConfig/resources",
    ),
    (
        "redis.redis.opstreelabs.in",
        "RedisSentinel",
        "/spec/kubernetesConfig/resources",
    ),
    (
        "redis.redis.opstreelabs.in",
        "Redis",
        "/spec/kubernetesConfig/resources",
    ),
    (
        "redis.redis.opstreelabs.in",
        "RedisCluster",
        "/spec/kubernetesConfig/resources",
    ),
    ("k8s.keycloak.org", "Keycloak", "/spec/resources"),
];

/// Whether an image reference carries a version: a digest, or a tag other than `latest`.
pub fn image_problem(image: &str) -> Option<&'static str> {
    if image.contains("@sha256:") {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("has no tag (it means `latest`)"),
        Some((_, "latest")) => Some("uses the `latest` tag"),
        Some((_, "")) => Some("has an empty tag"),
        Some(_) => None,
    }
}

fn image_tag(at: Located<'_>, found: &mut Vec<Finding>) {
    let fix = "pin a version tag (e.g. v1.0.0) or a digest in the environment's values file";
    let specs = pod_specs(at.object);
    if !specs.is_empty() {
        for (_, spec) in specs {
            for (_, container) in containers(spec) {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
                let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
                if let Some(problem) = image_problem(image) {
                    found.push(finding(
                        "image-tag",
                        at,
                        format!("container `{name}` image `{image}` {problem}"),
                        fix,
                    ));
                }
            }
        }
        return;
    }
    if matches!(at.object.kind(), "ConfigMap" | "Secret") || !at.object.api_version().contains('.') {
        return;
    }
    let mut images = Vec::new();
    collect_images(
        at.object.value.get("spec").unwrap_or(&Value::Null),
        "spec",
        &mut images,
    );
    for (path, image) in images {
        if let Some(problem) = image_problem(&image) {
            found.push(finding(
                "image-tag",
                at,
                format!("`{path}` image `{image}` {problem}"),
                fix,
            ));
        }
    }
}

fn collect_images(value: &Value, path: &str, images: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match (key.as_str(), child) {
                    ("image" | "imageName", Value::String(image)) if !image.is_empty() => {
                        images.push((child_path, image.clone()))
                    }
                    _ => collect_images(child, &child_path, images),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_images(item, &format!("{path}[{i}]"), images);
            }
        }
        _ => {}
    }
}

fn has_requests_and_limits(resources: Option<&Value>) -> (bool, bool) {
    let non_empty = |field: &str| {
        resources
            .and_then(|r| r.get(field))
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
    };
    (non_empty("requests"), non_empty("limits"))
}

fn resources(at: Located<'_>, found: &mut Vec<Finding>) {
    let fix = "set resources.requests and resources.limits (cpu and memory) in the chart's values for this environment";
    let describe = |requests: bool, limits: bool| match (requests, limits) {
        (false, false) => Some("no resource requests or limits"),
        (false, true) => Some("no resource requests"),
        (true, false) => Some("no resource limits"),
        (true, true) => None,
    };
    for (_, spec) in pod_specs(at.object) {
        for (field, container) in containers(spec) {
            let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
            let (requests, limits) = has_requests_and_limits(container.get("resources"));
            if let Some(problem) = describe(requests, limits) {
                let which = if field == "initContainers" {
                    "init container"
                } else {
                    "container"
                };
                found.push(finding(
                    "resources",
                    at,
                    format!("{which} `{name}` has {problem}"),
                    fix,
                ));
            }
        }
    }
    let group = at
        .object
        .api_version()
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default();
    for (cr_group, kind, path) in CR_RESOURCES {
        if group == *cr_group && at.object.kind() == *kind {
            let (requests, limits) = has_requests_and_limits(at.object.value.pointer(path));
            if let Some(problem) = describe(requests, limits) {
                let field = path.trim_start_matches('/').replace('/', ".");
                found.push(finding("resources", at, format!("{problem} at `{field}`"), fix));
            }
        }
    }
}

fn selector_matches(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && expressions.is_none_or(|e| e.is_empty()) {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_ok = expressions.into_iter().flatten().all(|expression| {
        let key = expression.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let have = labels.get(key).and_then(Value::as_str);
        match expression.get("operator").and_then(Value::as_str) {
            Some("In") => have.is_some_and(|h| values.contains(&h)),
            Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
            Some("Exists") => have.is_some(),
            Some("DoesNotExist") => have.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

fn pdb(env: &Environment, objects: &[Located<'_>], found: &mut Vec<Finding>) {
    let namespace_of = |object: &Object| object.namespace().unwrap_or(&env.namespace).to_string();
    let mut budgets: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for at in objects {
        if at.object.kind() == "PodDisruptionBudget"
            && let Some(selector) = at.object.value.pointer("/spec/selector")
        {
            budgets.entry(namespace_of(at.object)).or_default().push(selector);
        }
    }
    for &at in objects {
        let workload = matches!(
            (at.object.api_version(), at.object.kind()),
            ("apps/v1", "Deployment" | "StatefulSet" | "ReplicaSet")
        );
        if !workload {
            continue;
        }
        let replicas = at
            .object
            .value
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if replicas < 2 {
            continue;
        }
        let labels = at
            .object
            .value
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let covered = budgets.get(&namespace_of(at.object)).is_some_and(|selectors| {
            selectors
                .iter()
                .any(|selector| selector_matches(selector, &labels))
        });
        if !covered {
            found.push(finding(
                "pdb",
                at,
                format!("{replicas} replicas but no PodDisruptionBudget selects its pods"),
                "add a PodDisruptionBudget (policy/v1) whose selector matches the pod template labels, e.g. minAvailable: 1",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for key in [
            "DB_PASSWORD",
            "password",
            "apiKey",
            "API_KEY",
            "jwt-secret",
            "client_secret",
            "AUTH_TOKEN",
            "privateKey",
            "JWT_TOKEN",
            "aws_secret_access_key",
            "credentials",
            "private_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "DATABASE_HOST",
            "PASSWORD_FILE",
            "SECRET_NAME",
            "tokenUrl",
            "LOG_LEVEL",
            "key",
            "monkey",
            "secretary_name",
            "token_url",
            "cache_key",
            "TOKEN_TTL",
            "primary_key",
            "passwordMinLength",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn secret_values() {
        assert_eq!(
            secret_value("postgres://app:hunter2@db:5432/app"),
            Some("a URL with a password")
        );
        assert_eq!(secret_value("postgres://db:5432/app"), None);
        assert_eq!(secret_value("AKIAIOSFODNN7EXAMPLE"), Some("an AWS access key"));
        assert_eq!(
            secret_value("-----BEGIN RSA PRIVATE KEY-----\nabc"),
            Some("a private key")
        );
        assert_eq!(
            embedded_secret_line("db:\n  password: hunter2\n").as_deref(),
            Some("password")
        );
        assert_eq!(embedded_secret_line("db:\n  password: ${DB_PASSWORD}\n"), None);
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_problem("ghcr.io/duli/backend:v1.0.0"), None);
        assert_eq!(image_problem("registry:5000/duli/backend@sha256:abc"), None);
        assert!(image_problem("registry:5000/duli/backend").is_some());
        assert!(image_problem("duli/backend:latest").is_some());
    }

    #[test]
    fn selectors() {
        let labels: serde_json::Map<String, Value> =
            serde_json::from_value(serde_json::json!({"app": "a", "tier": "web"})).unwrap();
        assert!(selector_matches(
            &serde_json::json!({"matchLabels": {"app": "a"}}),
            &labels
        ));
        assert!(!selector_matches(
            &serde_json::json!({"matchLabels": {"app": "b"}}),
            &labels
        ));
        assert!(selector_matches(
            &serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}),
            &labels
        ));
        assert!(!selector_matches(&serde_json::json!({}), &labels));
    }

    #[test]
    fn names_the_api_server_refuses() {
        let object = |kind: &str, metadata: serde_json::Value| Object {
            source: "c/templates/x.yaml".into(),
            text: String::new(),
            value: serde_json::json!({"apiVersion": "v1", "kind": kind, "metadata": metadata}),
        };
        let rules = |object: &Object| {
            let mut found = Vec::new();
            object_name(Located { chart: "c", object }, &mut found);
            found.into_iter().map(|f| f.message).collect::<Vec<_>>()
        };
        for bad in [
            object("ConfigMap", serde_json::json!({"name": ""})),
            object("ConfigMap", serde_json::json!({})),
            object("ConfigMap", serde_json::json!({"name": "café"})),
            object("Service", serde_json::json!({"name": "a.b"})),
        ] {
            assert_eq!(rules(&bad).len(), 1, "{:?}", bad.value);
        }
        for good in [
            object("ConfigMap", serde_json::json!({"name": "a.b"})),
            object("ConfigMap", serde_json::json!({"name": "a".repeat(253)})),
            object("Pod", serde_json::json!({"generateName": "job-"})),
        ] {
            assert!(rules(&good).is_empty(), "{:?}", good.value);
        }
    }
}

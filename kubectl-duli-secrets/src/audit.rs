//! `audit [ENV]`: look for secrets where they do not belong — in the rendered environment (the same render
//! as `helm duli-render`) and, with cluster access, in the live ConfigMaps of the environment's namespace.
//!
//! The rules ([`scan_object`], pure, usable by the render code too):
//! - ConfigMap `data` and container `env[].value`/`args`: a secret-looking key (password, token, api key,
//!   private key, client secret, credentials…) with a literal value; inside multi-line values, each
//!   `key = value` / `key: value` line is checked the same way;
//! - any of those values: credentials inside a connection string (`scheme://user:password@host`), a PEM
//!   private key, a JWT, well-known token prefixes, and high-entropy strings;
//! - a plain `Secret` with data in the rendered manifests (it should be a SealedSecret).
//!
//! Findings name the source file or live object and the field; they never show the value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::Value;

use crate::cli::AuditOptions;
use helm_duli_render::policy::is_secret_key;
use helm_duli_render::{RenderError, RenderOptions};
use shared::cluster::ClusterTarget;
use shared::environment::{Environment, EnvironmentError};
use shared::repo::Repo;

/// Errors of `audit`.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Bad environment.
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// The render failed.
    #[error("cannot render environment `{env}` for the audit: {error}")]
    Render {
        /// The environment.
        env: String,
        /// Why.
        error: RenderError,
    },
}

/// One place that looks like it holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rendered file, or `live (context C)`.
    pub source: String,
    /// `Kind/namespace/name`.
    pub object: String,
    /// The field (`data.DB_URL`, `spec.template.spec.containers[app].env[PASSWORD]`).
    pub field: String,
    /// Rule id.
    pub rule: &'static str,
    /// What was found (never the value).
    pub reason: String,
}

/// Scan one object; `source` names where it came from.
pub fn scan_object(source: &str, object: &Value) -> Vec<Finding> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let meta = |field: &str| {
        object
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
    };
    let id = match meta("namespace") {
        Some(namespace) => format!("{kind}/{namespace}/{}", meta("name").unwrap_or_default()),
        None => format!("{kind}/{}", meta("name").unwrap_or_default()),
    };
    let mut findings = Vec::new();
    let mut push = |field: String, rule: &'static str, reason: String| {
        findings.push(Finding {
            source: source.to_string(),
            object: id.clone(),
            field,
            rule,
            reason,
        });
    };
    match kind {
        "ConfigMap" => {
            for (key, value) in object
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let text = value.as_str().unwrap_or_default();
                check_pair(key, text, &format!("data.{key}"), &mut push);
            }
            for key in object
                .get("binaryData")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if is_secret_key(key) {
                    push(
                        format!("binaryData.{key}"),
                        "secret-key",
                        "binary value under a secret-looking key".into(),
                    );
                }
            }
        }
        "Secret" => {
            let has_data = ["data", "stringData"].iter().any(|field| {
                object
                    .get(*field)
                    .and_then(Value::as_object)
                    .is_some_and(|map| !map.is_empty())
            });
            if has_data {
                push(
                    "data".into(),
                    "plain-secret",
                    "plain Secret in the rendered manifests: seal it (kubectl duli secrets seal) so git holds only ciphertext".into(),
                );
            }
        }
        _ => {}
    }
    for (path, spec) in pod_specs(object) {
        for list in ["initContainers", "containers"] {
            for container in spec.get(list).and_then(Value::as_array).into_iter().flatten() {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("?");
                let base = format!("{path}.{list}[{name}]");
                for env in container
                    .get("env")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let (Some(var), Some(value)) = (
                        env.get("name").and_then(Value::as_str),
                        env.get("value").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    check_pair(var, value, &format!("{base}.env[{var}]"), &mut push);
                }
                for (i, arg) in container
                    .get("args")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let Some(arg) = arg.as_str() else { continue };
                    let field = format!("{base}.args[{i}]");
                    if let Some((flag, value)) = arg.trim_start_matches('-').split_once('=')
                        && arg.starts_with("--")
                    {
                        check_pair(flag, value, &field, &mut push);
                    } else {
                        check_value(arg, &field, &mut push);
                    }
                }
            }
        }
    }
    findings
}

/// The pod specs inside an object, with their field paths.
fn pod_specs(object: &Value) -> Vec<(String, &Value)> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (path, pointer) = match kind {
        "Pod" => ("spec", "/spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            ("spec.template.spec", "/spec/template/spec")
        }
        "CronJob" => (
            "spec.jobTemplate.spec.template.spec",
            "/spec/jobTemplate/spec/template/spec",
        ),
        _ => return Vec::new(),
    };
    object
        .pointer(pointer)
        .map(|spec| vec![(path.to_string(), spec)])
        .unwrap_or_default()
}

/// A key/value pair: the key rule, then the value rules; multi-line values line by line.
fn check_pair(key: &str, value: &str, field: &str, push: &mut impl FnMut(String, &'static str, String)) {
    if value.contains('\n') {
        if let Some(reason) = private_key(value) {
            push(field.to_string(), "private-key", reason);
            return;
        }
        for (i, line) in value.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with("//") {
                continue;
            }
            let at = format!("{field} (line {})", i + 1);
            let pair = line
                .split_once('=')
                .or_else(|| line.split_once(": "))
                .map(|(k, v)| (k.trim(), v.trim()));
            match pair {
                Some((k, v)) if !k.is_empty() && !k.contains(' ') => {
                    check_pair(k.trim_matches('"'), v.trim_matches(['"', '\'', ',']), &at, push)
                }
                _ => check_value(line, &at, push),
            }
        }
        return;
    }
    if is_secret_key(key) && is_literal_secret(value) {
        push(
            field.to_string(),
            "secret-key",
            format!(
                "secret-looking key `{key}` holds a literal value ({} chars)",
                value.chars().count()
            ),
        );
        return;
    }
    check_value(value, field, push);
}

/// The value rules.
fn check_value(value: &str, field: &str, push: &mut impl FnMut(String, &'static str, String)) {
    if let Some(reason) = private_key(value) {
        push(field.to_string(), "private-key", reason);
    } else if let Some(scheme) = url_credentials(value) {
        push(
            field.to_string(),
            "url-credentials",
            format!("password inside a {scheme}:// connection string"),
        );
    } else if let Some(kind) = known_token(value) {
        push(field.to_string(), "token", format!("looks like {kind}"));
    } else if let Some(length) = high_entropy(value) {
        push(
            field.to_string(),
            "high-entropy",
            format!("high-entropy string ({length} chars) that looks like a key or token"),
        );
    }
}

fn private_key(value: &str) -> Option<String> {
    (value.contains("-----BEGIN") && value.contains("PRIVATE KEY-----"))
        .then(|| "PEM private key".to_string())
}

/// A value that is a literal secret, not empty, a reference, a placeholder, a path, a number or a flag.
fn is_literal_secret(value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() || value.starts_with('/') || value.starts_with("file:") {
        return false;
    }
    if value.contains("${")
        || value.contains("$(")
        || value.contains("{{")
        || (value.starts_with('<') && value.ends_with('>'))
    {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "none" | "~"
    ) {
        return false;
    }
    if value.parse::<f64>().is_ok() || value.chars().all(|c| c == '*' || c == 'x' || c == 'X') {
        return false;
    }
    true
}

/// `scheme://user:password@…` with a literal password: the scheme.
fn url_credentials(value: &str) -> Option<String> {
    let (scheme_end, _) = value.match_indices("://").next()?;
    let scheme: String = value[..scheme_end]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let rest = &value[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#', ' ']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (is_literal_secret(password) && !scheme.is_empty()).then_some(scheme)
}

fn known_token(value: &str) -> Option<&'static str> {
    let value = value.trim();
    let prefixes: [(&str, &str); 8] = [
        ("ghp_", "a GitHub token"),
        ("github_pat_", "a GitHub token"),
        ("glpat-", "a GitLab token"),
        ("xoxb-", "a Slack token"),
        ("xoxp-", "a Slack token"),
        ("sk_live_", "a Stripe secret key"),
        ("AKIA", "an AWS access key id"),
        ("AIza", "a Google API key"),
    ];
    for (prefix, kind) in prefixes {
        if value.starts_with(prefix) && value.len() >= prefix.len() + 16 && !value.contains(' ') {
            return Some(kind);
        }
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() == 3 && parts[0].starts_with("eyJ") && parts[1].starts_with("eyJ") && parts[2].len() >= 16
    {
        return Some("a JWT");
    }
    None
}

/// Length of a token that looks random (a key, not a word, hash, UUID or name).
fn high_entropy(value: &str) -> Option<usize> {
    if value.contains("-----BEGIN") {
        return None;
    }
    for token in
        value.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '&' | '(' | ')'))
    {
        let token = token.trim_end_matches('=');
        let token = token.rsplit_once('=').map(|(_, v)| v).unwrap_or(token);
        if token.len() < 24
            || token.contains("://")
            || token.starts_with("sha256:")
            || token.contains("@sha256")
        {
            continue;
        }
        if !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-'))
        {
            continue;
        }
        if token.matches('/').count() > 1 || token.matches('-').count() > 3 || token.matches('_').count() > 3
        {
            continue; // paths, UUIDs, identifiers
        }
        let hex = token.chars().all(|c| c.is_ascii_hexdigit());
        if hex && token.len() <= 40 {
            continue; // commit ids, short hashes
        }
        let lower = token.chars().any(|c| c.is_ascii_lowercase());
        let upper = token.chars().any(|c| c.is_ascii_uppercase());
        let digit = token.chars().any(|c| c.is_ascii_digit());
        let entropy = shannon(token);
        if (hex && entropy >= 3.5) || (lower && upper && digit && entropy >= 4.0) {
            return Some(token.len());
        }
    }
    None
}

fn shannon(text: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let total = text.chars().count() as f64;
    counts
        .values()
        .map(|&n| n as f64 / total)
        .map(|p| -p * p.log2())
        .sum()
}

/// What `audit` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Findings, in scan order.
    pub findings: Vec<Finding>,
    /// Objects scanned.
    pub scanned: usize,
    /// Things the user should know (a skipped live scan).
    pub notes: Vec<String>,
}

/// Run the audit: render each environment as `helm duli-render` does and scan it, then the live ConfigMaps.
pub async fn run(
    repo: &Repo,
    options: &AuditOptions,
    target: &ClusterTarget,
) -> Result<AuditReport, AuditError> {
    let envs = match &options.env {
        Some(name) => vec![Environment::load(repo, name)?],
        None => Environment::load_all(repo)?,
    };
    let mut report = AuditReport::default();
    for env in &envs {
        let render_options = RenderOptions {
            validate: false,
            ..RenderOptions::new(env.name.clone())
        };
        let rendered = helm_duli_render::render(repo, &render_options)
            .await
            .map_err(|error| AuditError::Render {
                env: env.name.clone(),
                error,
            })?;
        for (_, objects) in &rendered.groups {
            for object in objects.iter() {
                report.scanned += 1;
                report.findings.extend(scan_object(&object.source, &object.value));
            }
        }
    }
    if options.live {
        match live_configmaps(target, &envs).await {
            Ok((context, configmaps)) => {
                for configmap in configmaps {
                    report.scanned += 1;
                    report
                        .findings
                        .extend(scan_object(&format!("live (context {context})"), &configmap));
                }
            }
            Err(message) => report.notes.push(format!(
                "live ConfigMaps not scanned: {message} (--no-live skips this)"
            )),
        }
    }
    Ok(report)
}

async fn live_configmaps(
    target: &ClusterTarget,
    envs: &[Environment],
) -> Result<(String, Vec<Value>), String> {
    let cluster = target
        .connect(Some(std::time::Duration::from_secs(10)))
        .await
        .map_err(|err| err.to_string())?;
    let mut all = Vec::new();
    for env in envs {
        let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &env.namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|err| format!("listing ConfigMaps in `{}`: {err}", env.namespace))?;
        for configmap in list.items {
            let mut value = serde_json::to_value(&configmap).map_err(|err| err.to_string())?;
            value["kind"] = Value::from("ConfigMap");
            all.push(value);
        }
    }
    Ok((cluster.context, all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(object: Value) -> Vec<(String, &'static str)> {
        scan_object("x.yaml", &object)
            .into_iter()
            .map(|f| (f.field, f.rule))
            .collect()
    }

    #[test]
    fn configmap_rules() {
        let configmap = json!({
            "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "staging"},
            "data": {
                "DB_PASSWORD": "hunter2",
                "DB_PASSWORD_FILE": "/run/secrets/db",
                "REDIS_PASSWORD": "${REDIS_PASSWORD}",
                "DATABASE_URL": "postgres://app:s3cr3t@db:5432/app",
                "SAFE_URL": "postgres://app@db:5432/app",
                "SIGNING": "q8Zr4Kp2Lm9Xw3Vt7Ny6Bc1Hd5Fg0Js",
                "COMMIT": "3f786850e387550fdab836ed7e6dc881de23001b",
                "ID": "123e4567-e89b-12d3-a456-426614174000",
                "application.properties": "server.port=8080\nspring.datasource.password=topsecret\n",
                "LOG_LEVEL": "info",
            }
        });
        let found = fields(configmap);
        assert_eq!(
            found,
            [
                ("data.DB_PASSWORD".to_string(), "secret-key"),
                ("data.DATABASE_URL".to_string(), "url-credentials"),
                ("data.SIGNING".to_string(), "high-entropy"),
                ("data.application.properties (line 2)".to_string(), "secret-key"),
            ]
        );
    }

    #[test]
    fn workloads_and_plain_secrets() {
        let deployment = json!({
            "kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"template": {"spec": {"containers": [{"name": "api",
                "env": [{"name": "API_TOKEN", "value": "abc"}, {"name": "API_TOKEN2", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "args": ["--password=letmein", "--port=80"]}]}}}
        });
        assert_eq!(
            fields(deployment),
            [
                (
                    "spec.template.spec.containers[api].env[API_TOKEN]".to_string(),
                    "secret-key"
                ),
                (
                    "spec.template.spec.containers[api].args[0]".to_string(),
                    "secret-key"
                ),
            ]
        );
        let secret = json!({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}});
        assert_eq!(fields(secret), [("data".to_string(), "plain-secret")]);
    }

    #[test]
    fn findings_never_carry_the_value() {
        let configmap =
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"token": "hunter2hunter2"}});
        let text = serde_json::to_string(&scan_object("x", &configmap)).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }
}

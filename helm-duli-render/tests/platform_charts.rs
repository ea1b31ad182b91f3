//! The platform itself (issue #3): every chart under `helm/` and every Argo CD template under
//! `gitops/`, checked with the REAL helm binaries (helm 4.1.4 and helm 3.17.2) against the facts of
//! `../shared/reference/platform-description.md`, the environment files `gitops/environments/*.yml`
//! and the real CRD schemas in `../shared/crds/` (unknown fields rejected).
//!
//! Binaries: `DULI_HELM4_BIN` / `DULI_HELM3_BIN`, default `$HOME/.cache/duli/tools/helm-<v>/helm`;
//! a missing binary is a failure (run `bash .ci/install-tools`). CRDs: `DULI_CRDS_DIR`, default
//! `<repo>/../shared/crds`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Facts and layout
// ---------------------------------------------------------------------------------------------

const ENVS: [&str; 2] = ["staging", "prod"];

/// Charts that wrap an upstream chart declared (not vendored) in `Chart.yaml` `dependencies`.
const UPSTREAM_CHARTS: [&str; 6] = [
    "postgres-operator",
    "redis-operator",
    "rabbitmq-operator",
    "rabbitmq-topology-operator",
    "kube-prometheus-stack",
    "loki",
];

/// Charts rendered per environment into the environment namespace.
const ENV_CHARTS: [&str; 9] = [
    "backend",
    "ai-service",
    "scheduler",
    "postgres-instance",
    "redis-instance",
    "rabbitmq",
    "keycloak-db",
    "keycloak-instance",
    "secrets",
];

/// Shared charts without upstream dependency, with the namespace their Application deploys into.
const SHARED_LOCAL_CHARTS: [(&str, &str); 3] = [
    ("cert-manager-issuers", "cert-manager"),
    ("argocd-ingress", "argocd"),
    ("keycloak-operator", "keycloak-system"),
];

const APPS: [&str; 3] = ["backend", "ai-service", "scheduler"];

const STANDARD_LABELS: [&str; 9] = [
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

const SYSTEM_NAMESPACES: [&str; 4] = [
    "cnpg-system",
    "redis-operator-system",
    "rabbitmq-system",
    "keycloak-system",
];

fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("crate dir has a parent").to_path_buf()
}

fn helm_dir() -> PathBuf {
    repo_root().join("helm")
}

fn crds_dir() -> PathBuf {
    match std::env::var_os("DULI_CRDS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("../shared/crds"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Helm {
    V4,
    V3,
}

const HELMS: [Helm; 2] = [Helm::V4, Helm::V3];

fn helm_bin(helm: Helm) -> PathBuf {
    let (var, dir) = match helm {
        Helm::V4 => ("DULI_HELM4_BIN", "helm-4.1.4"),
        Helm::V3 => ("DULI_HELM3_BIN", "helm-3.17.2"),
    };
    let path = match std::env::var_os(var) {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home)
                .join(".cache/duli/tools")
                .join(dir)
                .join("helm")
        }
    };
    assert!(
        path.is_file(),
        "helm binary {} not found ({var}); run `bash .ci/install-tools` to fetch it",
        path.display()
    );
    path
}

fn run_helm(helm: Helm, args: &[&str]) -> Output {
    let bin = helm_bin(helm);
    let home = tempfile::tempdir().expect("temp dir");
    Command::new(&bin)
        .args(args)
        // Keep helm away from the user's repositories, caches and plugins.
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", bin.display()))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn yaml_docs(input: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(input)
        .unwrap_or_else(|err| panic!("invalid YAML: {err}\n{input}"))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

fn yaml_file(path: &Path) -> Value {
    let docs = yaml_docs(&read(path));
    docs.into_iter().next().unwrap_or(Value::Null)
}

fn env_file(env: &str) -> Value {
    yaml_file(&repo_root().join(format!("gitops/environments/{env}.yml")))
}

fn s<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

fn n(value: &Value, pointer: &str) -> i64 {
    value
        .pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer at {pointer} in {value}"))
}

fn chart_dirs() -> Vec<String> {
    let mut charts: Vec<String> = std::fs::read_dir(helm_dir())
        .expect("helm/ exists")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Chart.yaml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    charts.sort();
    charts
}

fn is_upstream(chart: &str) -> bool {
    UPSTREAM_CHARTS.contains(&chart)
}

/// Namespace a chart renders into for an environment (as its Argo CD Application does).
fn namespace_for(chart: &str, env: &str) -> String {
    if let Some((_, ns)) = SHARED_LOCAL_CHARTS.iter().find(|(name, _)| *name == chart) {
        return (*ns).to_string();
    }
    env.to_string()
}

// ---------------------------------------------------------------------------------------------
// Rendering (cached: every chart × environment × helm version, concurrently)
// ---------------------------------------------------------------------------------------------

type RenderKey = (String, String, Helm);

struct Renders {
    docs: BTreeMap<RenderKey, Vec<Value>>,
}

fn template_args(chart: &str, env: &str) -> Vec<String> {
    let dir = helm_dir().join(chart);
    vec![
        "template".into(),
        chart.into(),
        dir.display().to_string(),
        "--namespace".into(),
        namespace_for(chart, env),
        "--values".into(),
        dir.join(format!("values-{env}.yml")).display().to_string(),
    ]
}

fn renders() -> &'static Renders {
    static RENDERS: OnceLock<Renders> = OnceLock::new();
    RENDERS.get_or_init(|| {
        let mut jobs = Vec::new();
        for chart in chart_dirs().into_iter().filter(|c| !is_upstream(c)) {
            for env in ENVS {
                for helm in HELMS {
                    let chart = chart.clone();
                    jobs.push(thread::spawn(move || {
                        let args = template_args(&chart, env);
                        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                        let out = run_helm(helm, &refs);
                        assert!(
                            out.status.success(),
                            "helm {helm:?} template {chart} ({env}) failed:\n{}",
                            text(&out)
                        );
                        let docs = yaml_docs(&String::from_utf8_lossy(&out.stdout));
                        ((chart, env.to_string(), helm), docs)
                    }));
                }
            }
        }
        let docs = jobs
            .into_iter()
            .map(|job| job.join().expect("render thread"))
            .collect();
        Renders { docs }
    })
}

fn rendered(chart: &str, env: &str) -> &'static [Value] {
    renders()
        .docs
        .get(&(chart.to_string(), env.to_string(), Helm::V4))
        .unwrap_or_else(|| panic!("no render of {chart} for {env}"))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|doc| doc["kind"] == kind && doc["metadata"]["name"] == name)
}

fn get<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(docs, kind, name).unwrap_or_else(|| {
        let have: Vec<String> = docs
            .iter()
            .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
            .collect();
        panic!("no {kind} {name} rendered; have {have:?}")
    })
}

// ---------------------------------------------------------------------------------------------
// CRD schema validation (structural: types, enums, required, unknown fields rejected)
// ---------------------------------------------------------------------------------------------

fn crd_schemas() -> &'static BTreeMap<(String, String), Value> {
    static SCHEMAS: OnceLock<BTreeMap<(String, String), Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let root = crds_dir();
        assert!(root.is_dir(), "CRD directory {} missing", root.display());
        let mut schemas = BTreeMap::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)
                .expect("read crds dir")
                .filter_map(Result::ok)
            {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.to_string_lossy().into_owned();
                if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                    continue;
                }
                for doc in yaml_docs(&read(&path)) {
                    if doc["kind"] != "CustomResourceDefinition" {
                        continue;
                    }
                    let group = s(&doc, "/spec/group").to_string();
                    let kind = s(&doc, "/spec/names/kind").to_string();
                    for version in doc["spec"]["versions"].as_array().expect("versions") {
                        let api = format!("{group}/{}", s(version, "/name"));
                        let schema = version["schema"]["openAPIV3Schema"].clone();
                        schemas.insert((api, kind.clone()), schema);
                    }
                }
            }
        }
        schemas
    })
}

fn type_ok(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(format!("{path}: expected int-or-string, got {value}"));
        }
        return;
    }
    if let Some(expected) = schema["type"].as_str()
        && !type_ok(expected, value)
    {
        errors.push(format!("{path}: expected {expected}, got {value}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in {allowed:?}"));
    }
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if let Some(sub) = properties.and_then(|p| p.get(key)) {
                    validate(sub, child, &child_path, errors);
                } else if additional.is_object() {
                    validate(additional, child, &child_path, errors);
                } else if additional == true || preserve {
                    // free-form by declaration
                } else {
                    errors.push(format!("{child_path}: unknown field"));
                }
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let key = required.as_str().unwrap_or_default();
                if !map.contains_key(key) {
                    errors.push(format!("{path}: missing required field {key}"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                errors.push(format!("{path}: fewer than {min} items"));
            }
            for (index, item) in items.iter().enumerate() {
                validate(&schema["items"], item, &format!("{path}[{index}]"), errors);
            }
        }
        Value::String(text) => {
            if let Some(max) = schema["maxLength"].as_u64()
                && text.chars().count() as u64 > max
            {
                errors.push(format!("{path}: longer than {max}"));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && (text.chars().count() as u64) < min
            {
                errors.push(format!("{path}: shorter than {min}"));
            }
        }
        Value::Number(number) => {
            if let (Some(min), Some(v)) = (schema["minimum"].as_f64(), number.as_f64())
                && v < min
            {
                errors.push(format!("{path}: {v} < minimum {min}"));
            }
            if let (Some(max), Some(v)) = (schema["maximum"].as_f64(), number.as_f64())
                && v > max
            {
                errors.push(format!("{path}: {v} > maximum {max}"));
            }
        }
        _ => {}
    }
}

/// Validates a custom resource against its CRD; `None` when the object is not a known CR.
fn validate_cr(doc: &Value) -> Option<Vec<String>> {
    let api = doc["apiVersion"].as_str()?.to_string();
    let kind = doc["kind"].as_str()?.to_string();
    let schema = crd_schemas().get(&(api, kind))?;
    let mut errors = Vec::new();
    if !doc["metadata"]["name"].is_string() {
        errors.push("metadata.name missing".into());
    }
    // apiVersion/kind/metadata are the API server's (checked above); the CRD schema covers the rest.
    let envelope = ["apiVersion", "kind", "metadata"];
    let mut body = doc.clone();
    if let Some(map) = body.as_object_mut() {
        envelope.iter().for_each(|key| drop(map.remove(*key)));
    }
    let mut root = schema.clone();
    if let Some(props) = root["properties"].as_object_mut() {
        envelope.iter().for_each(|key| drop(props.remove(*key)));
    }
    if let Some(required) = root["required"].as_array_mut() {
        required.retain(|key| !envelope.iter().any(|e| key == e));
    }
    validate(&root, &body, doc["kind"].as_str().unwrap_or("?"), &mut errors);
    Some(errors)
}

/// Built-in kinds the local charts may render (anything else must be a custom resource with a CRD).
/// A k8s-openapi round trip of these needs `k8s-openapi` as a dev-dependency of this crate.
const CORE_KINDS: [(&str, &str); 10] = [
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "Ingress"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
];

// ---------------------------------------------------------------------------------------------
// helm lint / template on helm 4 and helm 3.17
// ---------------------------------------------------------------------------------------------

#[test]
fn every_chart_of_the_description_exists_with_its_files() {
    let expected: BTreeSet<String> = ENV_CHARTS
        .iter()
        .copied()
        .chain(SHARED_LOCAL_CHARTS.iter().map(|(c, _)| *c))
        .chain(UPSTREAM_CHARTS)
        .map(String::from)
        .collect();
    let actual: BTreeSet<String> = chart_dirs().into_iter().collect();
    assert_eq!(
        actual, expected,
        "helm/ must hold exactly the charts of the description"
    );
    for chart in &actual {
        let dir = helm_dir().join(chart);
        for file in [
            "Chart.yaml",
            "values.yaml",
            "values-staging.yml",
            "values-prod.yml",
        ] {
            assert!(dir.join(file).is_file(), "{chart}: {file} missing");
        }
        let helpers = dir.join("templates/_helpers.tpl");
        assert!(helpers.is_file(), "{chart}: templates/_helpers.tpl missing");
        assert_eq!(
            read(&helpers),
            read(&helm_dir().join("backend/templates/_helpers.tpl")),
            "{chart}: _helpers.tpl must be identical in every chart"
        );
    }
}

#[test]
fn helm_lint_and_template_pass_on_helm4_and_helm3() {
    let mut jobs = Vec::new();
    for chart in chart_dirs() {
        for env in ENVS {
            for helm in HELMS {
                let chart = chart.clone();
                jobs.push(thread::spawn(move || -> Vec<String> {
                    let mut failures = Vec::new();
                    let dir = helm_dir().join(&chart);
                    let values = dir.join(format!("values-{env}.yml"));
                    let (dir_s, values_s) = (dir.display().to_string(), values.display().to_string());
                    let upstream = is_upstream(&chart);
                    // Local charts lint strictly (warnings fail). Upstream wrappers: helm 3 and 4 lint
                    // a chart whose declared dependency is not in charts/ with exit 0 and the warning
                    // "chart directory is missing these dependencies"; `--strict` would turn that
                    // warning into a failure, so they lint non-strict and the warning is asserted.
                    let mut args = vec!["lint", dir_s.as_str(), "--values", values_s.as_str()];
                    if !upstream {
                        args.push("--strict");
                    }
                    let lint = run_helm(helm, &args);
                    let lint_text = text(&lint);
                    if !lint.status.success() {
                        failures.push(format!("helm {helm:?} lint {chart} ({env}):\n{lint_text}"));
                    }
                    if upstream && !lint_text.contains("chart directory is missing these dependencies") {
                        failures.push(format!(
                            "helm {helm:?} lint {chart}: expected the missing-dependency warning:\n{lint_text}"
                        ));
                    }
                    if upstream {
                        // `helm template` needs the dependency (`helm dependency build`, network):
                        // it must fail for exactly that reason, not for a broken chart.
                        let args = template_args(&chart, env);
                        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                        let out = run_helm(helm, &refs);
                        let out_text = text(&out);
                        if out.status.success() || !out_text.contains("missing in charts/ directory") {
                            failures.push(format!(
                                "helm {helm:?} template {chart}: expected the missing-dependency error:\n{out_text}"
                            ));
                        }
                    }
                    failures
                }));
            }
        }
    }
    let failures: Vec<String> = jobs
        .into_iter()
        .flat_map(|job| job.join().expect("lint thread"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Local charts: template on both helm versions (renders() asserts success) gives the same objects.
    for ((chart, env, helm), docs) in &renders().docs {
        if *helm == Helm::V3 {
            let v4 = &renders().docs[&(chart.clone(), env.clone(), Helm::V4)];
            assert_eq!(docs, v4, "{chart} ({env}): helm 3 and helm 4 render differently");
        }
    }
}

#[test]
fn upstream_charts_declare_pinned_dependencies_and_nest_their_values() {
    for chart in UPSTREAM_CHARTS {
        let dir = helm_dir().join(chart);
        let manifest = yaml_file(&dir.join("Chart.yaml"));
        let deps = manifest["dependencies"]
            .as_array()
            .unwrap_or_else(|| panic!("{chart}: no dependencies"));
        assert!(!deps.is_empty(), "{chart}: no dependencies");
        assert!(
            !dir.join("charts").exists(),
            "{chart}: upstream charts must not be vendored"
        );
        let values = yaml_file(&dir.join("values.yaml"));
        for dep in deps {
            let version = s(dep, "/version");
            assert!(
                version.split('.').count() == 3
                    && version
                        .trim_start_matches('v')
                        .split('.')
                        .all(|p| p.parse::<u32>().is_ok()),
                "{chart}: dependency version {version} is not pinned"
            );
            let repo = s(dep, "/repository");
            assert!(
                repo.starts_with("https://") || repo.starts_with("oci://"),
                "{chart}: repository {repo}"
            );
            let key = dep["alias"].as_str().unwrap_or_else(|| s(dep, "/name"));
            assert!(
                values[key].is_object(),
                "{chart}: values.yaml has no `{key}:` block for its dependency"
            );
        }
    }
    let cnpg = yaml_file(&helm_dir().join("postgres-operator/Chart.yaml"));
    assert_eq!(cnpg["dependencies"][0]["name"], "cloudnative-pg");
    assert!(
        s(&cnpg, "/dependencies/0/version").starts_with("0.26."),
        "CloudNativePG 1.27.x is chart 0.26.x"
    );
    assert_eq!(cnpg["appVersion"], "1.27.1");
}

// ---------------------------------------------------------------------------------------------
// Rendered objects: CRD schemas, labels, security
// ---------------------------------------------------------------------------------------------

#[test]
fn crd_validator_rejects_unknown_fields_and_wrong_types() {
    let bad = serde_json::json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "database"},
        "spec": {"instances": "3", "storage": {"size": "1Gi", "storageclass": "x"}}
    });
    let errors = validate_cr(&bad).expect("Cluster CRD is loaded");
    assert!(errors.iter().any(|e| e.contains("spec.instances")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("storageclass: unknown field")),
        "{errors:?}"
    );
    for kind in [
        "Cluster",
        "RedisReplication",
        "RedisSentinel",
        "RabbitmqCluster",
        "User",
        "Keycloak",
        "ClusterIssuer",
        "SealedSecret",
        "Application",
        "AppProject",
        "PodMonitor",
    ] {
        assert!(
            crd_schemas().keys().any(|(_, k)| k == kind),
            "CRD for {kind} not found"
        );
    }
}

#[test]
fn every_rendered_object_is_valid_and_labelled() {
    let mut failures = Vec::new();
    for ((chart, env, _), docs) in &renders().docs {
        for doc in docs {
            let id = format!("{chart} ({env}) {}/{}", doc["kind"], doc["metadata"]["name"]);
            match validate_cr(doc) {
                Some(errors) => failures.extend(errors.into_iter().map(|e| format!("{id}: {e}"))),
                None => {
                    let key = (
                        doc["apiVersion"].as_str().unwrap_or_default(),
                        doc["kind"].as_str().unwrap_or_default(),
                    );
                    if !CORE_KINDS.contains(&key) {
                        failures.push(format!("{id}: neither a known core kind nor a CRD"));
                    }
                }
            }
            if doc["kind"] == "Secret" {
                failures.push(format!("{id}: a plaintext Secret is rendered"));
            }
            let labels = &doc["metadata"]["labels"];
            let mut label_sets = vec![("metadata", labels)];
            if doc["spec"]["template"]["metadata"]["labels"].is_object() && doc["kind"] != "SealedSecret" {
                label_sets.push(("pod template", &doc["spec"]["template"]["metadata"]["labels"]));
            }
            for (place, set) in label_sets {
                for label in STANDARD_LABELS {
                    if !set[label].is_string() {
                        failures.push(format!("{id}: {place} label {label} missing"));
                    }
                }
            }
            let shared = SHARED_LOCAL_CHARTS.iter().any(|(c, _)| c == chart);
            let (want_env, want_tier) = if shared {
                ("shared".to_string(), "platform".to_string())
            } else {
                (env.clone(), s(&env_file(env), "/tier").to_string())
            };
            if labels["environment"] != want_env.as_str() || labels["tier"] != want_tier.as_str() {
                failures.push(format!("{id}: environment/tier labels {labels}"));
            }
            if labels["team"] != s(&env_file(env), "/team") || labels["app.kubernetes.io/part-of"] != "duli" {
                failures.push(format!("{id}: team/part-of labels {labels}"));
            }
            if labels["app.kubernetes.io/instance"] != chart.as_str() {
                failures.push(format!(
                    "{id}: instance label must be the release (component) name"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn pod_spec(doc: &Value) -> &Value {
    &doc["spec"]["template"]["spec"]
}

#[test]
fn every_container_has_resources_probes_and_a_restrictive_security_context() {
    let mut failures = Vec::new();
    for ((chart, env, _), docs) in &renders().docs {
        for doc in docs
            .iter()
            .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
        {
            let spec = pod_spec(doc);
            let id = format!("{chart} ({env}) {}", doc["metadata"]["name"]);
            if spec["securityContext"]["runAsNonRoot"] != true {
                failures.push(format!("{id}: pod runAsNonRoot"));
            }
            for container in spec["containers"].as_array().into_iter().flatten() {
                let cid = format!("{id}/{}", container["name"]);
                for res in [
                    "/resources/requests/cpu",
                    "/resources/requests/memory",
                    "/resources/limits/cpu",
                    "/resources/limits/memory",
                ] {
                    if container.pointer(res).is_none() {
                        failures.push(format!("{cid}: {res} missing"));
                    }
                }
                let sc = &container["securityContext"];
                let checks = [
                    sc["runAsNonRoot"] == true,
                    sc["allowPrivilegeEscalation"] == false,
                    sc["readOnlyRootFilesystem"] == true,
                    sc["capabilities"]["drop"] == serde_json::json!(["ALL"]),
                    sc["seccompProfile"]["type"] == "RuntimeDefault"
                        || spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault",
                    container["livenessProbe"].is_object(),
                    container["readinessProbe"].is_object(),
                ];
                if checks.iter().any(|ok| !ok) {
                    failures.push(format!("{cid}: securityContext/probes {checks:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Facts per environment
// ---------------------------------------------------------------------------------------------

fn memory_bytes(quantity: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().expect("memory number") * factor;
        }
    }
    quantity
        .parse()
        .unwrap_or_else(|_| panic!("memory quantity {quantity}"))
}

fn cpu_millis(quantity: &Value) -> u64 {
    let text = match quantity {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match text.strip_suffix('m') {
        Some(millis) => millis.parse().expect("cpu millis"),
        None => (text.parse::<f64>().expect("cpu cores") * 1000.0) as u64,
    }
}

fn config_map<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    &get(docs, "ConfigMap", name)["data"]
}

fn host_port(address: &str) -> (&str, &str) {
    address.rsplit_once(':').expect("host:port")
}

fn image_tag(container: &Value) -> String {
    let image = s(container, "/image");
    image
        .rsplit_once(':')
        .map(|(_, tag)| tag.to_string())
        .unwrap_or_default()
}

fn is_semver(tag: &str, v_prefix: bool) -> bool {
    let rest = if v_prefix {
        match tag.strip_prefix('v') {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        tag
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn pdb_selects(docs: &[Value], pod_labels: &Value) -> bool {
    docs.iter()
        .filter(|d| d["kind"] == "PodDisruptionBudget")
        .any(|pdb| {
            pdb["spec"]["selector"]["matchLabels"]
                .as_object()
                .is_some_and(|sel| sel.iter().all(|(k, v)| &pod_labels[k] == v))
        })
}

fn check_environment_facts(env: &str) {
    let facts = env_file(env);
    let ns = s(&facts, "/namespace");
    let prod = env == "prod";
    assert_eq!(s(&facts, "/storage_class"), "do-block-storage");
    assert_eq!(
        s(&facts, "/image_tag_policy"),
        if prod { "pinned" } else { "latest" }
    );
    assert_eq!(s(&facts, "/log_level"), if prod { "info" } else { "debug" });
    let size = |component: &str, field: &str| facts["sizes"][component][field].clone();

    // Applications: replicas, memory, tags, log level, endpoints, PDB/HPA.
    for app in APPS {
        let docs = rendered(app, env);
        let workload_kind = if app == "scheduler" {
            "StatefulSet"
        } else {
            "Deployment"
        };
        let workload = get(docs, workload_kind, app);
        let container = &pod_spec(workload)["containers"][0];
        let want_replicas = size(app, "replicas").as_i64().expect("replicas");
        let hpa = find(docs, "HorizontalPodAutoscaler", app);
        if app == "ai-service" && prod {
            let hpa = hpa.expect("ai-service has an HPA in prod");
            assert_eq!(
                n(hpa, "/spec/minReplicas"),
                want_replicas,
                "ai-service prod HPA minimum"
            );
            assert_eq!(s(hpa, "/spec/scaleTargetRef/name"), "ai-service");
            assert!(n(hpa, "/spec/maxReplicas") > want_replicas);
            assert!(
                workload["spec"]["replicas"].is_null(),
                "with an HPA the Deployment leaves replicas to it"
            );
        } else {
            assert!(hpa.is_none(), "{app} ({env}): unexpected HPA");
            assert_eq!(
                n(workload, "/spec/replicas"),
                want_replicas,
                "{app} ({env}) replicas"
            );
        }
        let memory = size(app, "memory");
        assert_eq!(
            container["resources"]["limits"]["memory"], memory,
            "{app} ({env}) memory limit"
        );
        assert_eq!(
            container["resources"]["requests"]["memory"], memory,
            "{app} ({env}) memory request"
        );
        let tag = image_tag(container);
        if prod {
            assert!(
                is_semver(&tag, app != "scheduler"),
                "{app} prod tag {tag} must be a pinned version"
            );
        } else {
            assert_eq!(tag, "latest", "{app} staging follows `latest`");
        }
        assert_eq!(
            container["envFrom"][0]["configMapRef"]["name"], app,
            "{app}: ConfigMap via envFrom"
        );
        assert!(
            container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|e| e["valueFrom"]["secretKeyRef"].is_object()),
            "{app}: env entries are only Secret references (settings live in the ConfigMap)"
        );
        let has_pdb = find(docs, "PodDisruptionBudget", app).is_some();
        assert_eq!(
            has_pdb, prod,
            "{app} ({env}): PodDisruptionBudget exactly in prod"
        );
        let multi = want_replicas > 1 || find(docs, "HorizontalPodAutoscaler", app).is_some();
        if prod && multi {
            assert!(
                pdb_selects(docs, &workload["spec"]["template"]["metadata"]["labels"]),
                "{app}: PDB selects its pods"
            );
        }
        get(docs, "Service", app);
        get(docs, "ServiceAccount", app);
    }
    for app in ["backend", "ai-service"] {
        let data = config_map(rendered(app, env), app);
        let (pg_host, pg_port) = host_port(s(&facts, "/endpoints/postgres/internal"));
        assert_eq!(
            data["DATABASE_HOST"],
            format!("database-rw.{ns}.svc.cluster.local")
        );
        assert_eq!(data["DATABASE_HOST"], pg_host);
        assert_eq!(data["DATABASE_PORT"], "5432");
        assert_eq!(data["DATABASE_PORT"], pg_port);
        assert_eq!(
            data["DATABASE_READONLY_HOST"],
            host_port(s(&facts, "/endpoints/postgres/read_only")).0
        );
        let (redis_host, redis_port) = host_port(s(&facts, "/endpoints/redis/internal"));
        assert_eq!(data["REDIS_HOST"], format!("redis-master.{ns}.svc.cluster.local"));
        assert_eq!(data["REDIS_HOST"], redis_host);
        assert_eq!(data["REDIS_PORT"], redis_port);
        let (mq_host, mq_port) = host_port(s(&facts, "/endpoints/rabbitmq/internal"));
        assert_eq!(data["RABBITMQ_HOST"], format!("queue.{ns}.svc.cluster.local"));
        assert_eq!(data["RABBITMQ_HOST"], mq_host);
        assert_eq!(data["RABBITMQ_PORT"], mq_port);
        assert_eq!(data["LOG_LEVEL"], s(&facts, "/log_level"));
        assert_eq!(data["APP_ENV"], env);
    }
    // ai-service (ML) gets more CPU and memory than backend.
    let backend =
        &pod_spec(get(rendered("backend", env), "Deployment", "backend"))["containers"][0]["resources"];
    let ai =
        &pod_spec(get(rendered("ai-service", env), "Deployment", "ai-service"))["containers"][0]["resources"];
    for kind in ["requests", "limits"] {
        assert!(
            cpu_millis(&ai[kind]["cpu"]) > cpu_millis(&backend[kind]["cpu"]),
            "ai-service {kind}.cpu > backend"
        );
        assert!(
            memory_bytes(s(ai, &format!("/{kind}/memory")))
                > memory_bytes(s(backend, &format!("/{kind}/memory"))),
            "ai-service {kind}.memory > backend"
        );
    }
    // Scheduler (n8n): per-replica RWO volume, PostgreSQL of the environment, log level.
    let docs = rendered("scheduler", env);
    let sts = get(docs, "StatefulSet", "scheduler");
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"],
        size("scheduler", "storage")
    );
    assert_eq!(claim["spec"]["storageClassName"], "do-block-storage");
    assert_eq!(claim["spec"]["accessModes"], serde_json::json!(["ReadWriteOnce"]));
    assert_eq!(s(sts, "/spec/serviceName"), "scheduler-headless");
    get(docs, "Service", "scheduler-headless");
    let data = config_map(docs, "scheduler");
    assert_eq!(data["DB_TYPE"], "postgresdb");
    assert_eq!(
        data["DB_POSTGRESDB_HOST"],
        host_port(s(&facts, "/endpoints/postgres/internal")).0
    );
    assert_eq!(data["DB_POSTGRESDB_PORT"], "5432");
    assert_eq!(
        data["QUEUE_BULL_REDIS_HOST"],
        format!("redis-master.{ns}.svc.cluster.local")
    );
    assert_eq!(data["N8N_LOG_LEVEL"], s(&facts, "/log_level"));
    assert_eq!(
        data["EXECUTIONS_MODE"],
        if size("scheduler", "replicas").as_i64() > Some(1) {
            "queue"
        } else {
            "regular"
        }
    );

    // PostgreSQL: Cluster `database`.
    let docs = rendered("postgres-instance", env);
    let cluster = get(docs, "Cluster", "database");
    assert_eq!(cluster["spec"]["instances"], size("postgres", "instances"));
    assert_eq!(n(cluster, "/spec/instances"), 3);
    assert_eq!(cluster["spec"]["storage"]["size"], size("postgres", "storage"));
    assert_eq!(cluster["spec"]["storage"]["storageClass"], "do-block-storage");
    assert_eq!(cluster["spec"]["monitoring"]["enablePodMonitor"], true);
    assert!(
        s(cluster, "/spec/backup/barmanObjectStore/destinationPath").starts_with("s3://"),
        "PITR object store"
    );
    assert!(s(cluster, "/spec/backup/barmanObjectStore/destinationPath").ends_with(env));
    assert_eq!(cluster["spec"]["enablePDB"], true);
    assert_eq!(
        get(docs, "ScheduledBackup", "database-daily")["spec"]["cluster"]["name"],
        "database"
    );
    assert_eq!(get(docs, "Database", "database-n8n")["spec"]["name"], "n8n");
    assert!(!image_tag(&serde_json::json!({"image": s(cluster, "/spec/imageName")})).contains("latest"));

    // Redis: RedisReplication + RedisSentinel `redis`.
    let docs = rendered("redis-instance", env);
    let replication = get(docs, "RedisReplication", "redis");
    assert_eq!(replication["spec"]["clusterSize"], size("redis", "replicas"));
    assert_eq!(n(replication, "/spec/clusterSize"), 3, "1 master + 2 replicas");
    let claim = &replication["spec"]["storage"]["volumeClaimTemplate"]["spec"];
    assert_eq!(
        claim["resources"]["requests"]["storage"],
        size("redis", "storage")
    );
    assert_eq!(claim["storageClassName"], "do-block-storage");
    assert_eq!(
        replication["spec"]["kubernetesConfig"]["redisSecret"]["name"],
        "redis-secret"
    );
    assert_eq!(replication["spec"]["redisExporter"]["enabled"], true);
    let sentinel = get(docs, "RedisSentinel", "redis");
    assert_eq!(sentinel["spec"]["clusterSize"], size("redis", "sentinels"));
    assert_eq!(
        sentinel["spec"]["redisSentinelConfig"]["redisReplicationName"],
        "redis"
    );
    assert_eq!(
        replication["spec"]["pdb"]["enabled"] == true,
        prod,
        "redis PDB in prod"
    );

    // RabbitMQ: RabbitmqCluster `queue` and topology.
    let docs = rendered("rabbitmq", env);
    let queue = get(docs, "RabbitmqCluster", "queue");
    assert_eq!(queue["spec"]["replicas"], size("rabbitmq", "replicas"));
    assert_eq!(
        queue["spec"]["persistence"]["storage"],
        size("rabbitmq", "storage")
    );
    assert_eq!(
        queue["spec"]["persistence"]["storageClassName"],
        "do-block-storage"
    );
    assert!(
        queue["spec"]["rabbitmq"]["additionalPlugins"]
            .as_array()
            .expect("plugins")
            .contains(&"rabbitmq_prometheus".into())
    );
    assert_eq!(
        queue["spec"]["resources"]["requests"]["memory"],
        queue["spec"]["resources"]["limits"]["memory"]
    );
    for doc in docs
        .iter()
        .filter(|d| d["apiVersion"] == "rabbitmq.com/v1beta1" && d["kind"] != "RabbitmqCluster")
    {
        assert_eq!(doc["spec"]["rabbitmqClusterReference"]["name"], "queue", "{doc}");
    }
    for user in ["backend", "ai-service"] {
        let object = get(docs, "User", &format!("queue-{user}"));
        assert_eq!(
            object["spec"]["importCredentialsSecret"]["name"],
            format!("rabbitmq-{user}-user")
        );
        get(docs, "Permission", &format!("queue-{user}-duli"));
    }
    assert_eq!(
        find(docs, "PodDisruptionBudget", "queue").is_some(),
        prod,
        "rabbitmq PDB in prod"
    );

    // Keycloak.
    let kc_db = get(rendered("keycloak-db", env), "Cluster", "keycloak-db");
    assert_eq!(kc_db["spec"]["storage"]["storageClass"], "do-block-storage");
    let docs = rendered("keycloak-instance", env);
    let keycloak = get(docs, "Keycloak", "keycloak");
    assert_eq!(keycloak["spec"]["db"]["host"], "keycloak-db-rw");
    assert_eq!(
        keycloak["spec"]["db"]["usernameSecret"]["name"],
        "keycloak-db-app"
    );
    assert_eq!(
        get(docs, "Ingress", "keycloak")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "keycloak-service"
    );
    if n(keycloak, "/spec/instances") > 1 || n(kc_db, "/spec/instances") > 1 {
        assert!(prod, "multi-instance keycloak only in prod");
        assert!(
            find(docs, "PodDisruptionBudget", "keycloak").is_some(),
            "keycloak PDB in prod"
        );
    }

    // The values files agree with the environment's sizes (the source, before rendering).
    let values = |chart: &str| yaml_file(&helm_dir().join(format!("{chart}/values-{env}.yml")));
    for app in APPS {
        assert_eq!(
            values(app)["replicaCount"],
            size(app, "replicas"),
            "{app} values-{env}.yml"
        );
        assert_eq!(values(app)["resources"]["limits"]["memory"], size(app, "memory"));
    }
    assert_eq!(
        values("scheduler")["persistence"]["size"],
        size("scheduler", "storage")
    );
    assert_eq!(
        values("postgres-instance")["instances"],
        size("postgres", "instances")
    );
    assert_eq!(
        values("postgres-instance")["storage"]["size"],
        size("postgres", "storage")
    );
    assert_eq!(values("redis-instance")["replicas"], size("redis", "replicas"));
    assert_eq!(values("redis-instance")["sentinels"], size("redis", "sentinels"));
    assert_eq!(
        values("redis-instance")["storage"]["size"],
        size("redis", "storage")
    );
    assert_eq!(values("rabbitmq")["replicas"], size("rabbitmq", "replicas"));
    assert_eq!(
        values("rabbitmq")["persistence"]["size"],
        size("rabbitmq", "storage")
    );
    for chart in ENV_CHARTS {
        assert_eq!(
            values(chart)["environment"],
            env,
            "{chart} values-{env}.yml environment"
        );
        assert_eq!(
            values(chart)["tier"],
            facts["tier"],
            "{chart} values-{env}.yml tier"
        );
    }
}

#[test]
fn staging_facts() {
    check_environment_facts("staging");
}

#[test]
fn prod_facts() {
    check_environment_facts("prod");
    // Policy: in prod every multi-replica workload has a PodDisruptionBudget.
    for ((chart, env, helm), docs) in &renders().docs {
        if env != "prod" || *helm != Helm::V4 {
            continue;
        }
        for doc in docs
            .iter()
            .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
        {
            let replicas = doc["spec"]["replicas"].as_i64().unwrap_or(2);
            if replicas > 1 {
                assert!(
                    pdb_selects(docs, &doc["spec"]["template"]["metadata"]["labels"]),
                    "{chart}: {} has no PDB",
                    doc["metadata"]["name"]
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials: ConfigMaps, plaintext Secrets, the secret catalog
// ---------------------------------------------------------------------------------------------

fn looks_like_credential(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "passw",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "credential",
        "private",
        "encryption_key",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

#[test]
fn no_configmap_holds_a_credential() {
    for ((chart, env, _), docs) in &renders().docs {
        for cm in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
            for (key, value) in cm["data"].as_object().into_iter().flatten() {
                let value = value.as_str().unwrap_or_default();
                assert!(
                    !looks_like_credential(key),
                    "{chart} ({env}): ConfigMap key {key} looks like a credential"
                );
                assert!(
                    !looks_like_credential(value) && (!value.contains("://") || !value.contains('@')),
                    "{chart} ({env}): ConfigMap value of {key} looks like a credential: {value}"
                );
            }
        }
    }
    // The chart itself refuses a credential put into its ConfigMap.
    for (chart, key) in [("backend", "DATABASE_PASSWORD"), ("ai-service", "MODEL_API_KEY")] {
        let dir = helm_dir().join(chart);
        let set = format!("config.{key}=x");
        let values = dir.join("values-staging.yml").display().to_string();
        let out = run_helm(
            Helm::V4,
            &[
                "template",
                chart,
                &dir.display().to_string(),
                "-f",
                &values,
                "--set",
                &set,
            ],
        );
        assert!(
            !out.status.success(),
            "{chart}: a ConfigMap credential must fail the render"
        );
        assert!(text(&out).contains("looks like a credential"), "{}", text(&out));
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_plaintext_secret_is_committed_under_helm_or_gitops() {
    let mut files = Vec::new();
    files_under(&helm_dir(), &mut files);
    files_under(&repo_root().join("gitops"), &mut files);
    assert!(files.len() > 50, "helm/ and gitops/ hold the platform");
    for path in files {
        let Ok(content) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (number, line) in content.lines().enumerate() {
            let line = line.trim();
            let is_secret_kind = line.trim_start_matches("- ").replace(['"', '\''], "") == "kind: Secret";
            assert!(
                !is_secret_kind && !line.starts_with("stringData:") && !line.starts_with("\"stringData\""),
                "{}:{}: plaintext Secret material (`{line}`); commit SealedSecrets only",
                path.display(),
                number + 1
            );
        }
    }
}

#[derive(Debug)]
struct CatalogEntry {
    namespace: String,
    keys: BTreeSet<String>,
}

fn secret_catalog() -> BTreeMap<String, CatalogEntry> {
    let catalog = yaml_file(&repo_root().join("gitops/secrets.yml"));
    let mut entries = BTreeMap::new();
    for item in catalog["secrets"].as_array().expect("secrets list") {
        let keys = item["keys"].as_object().expect("keys map");
        for (key, source) in keys {
            let kinds = ["generate", "value", "prompt"]
                .iter()
                .filter(|k| source.get(**k).is_some())
                .count();
            assert_eq!(
                kinds, 1,
                "secret {} key {key}: exactly one of generate/value/prompt",
                item["name"]
            );
            if source.get("generate").is_some() {
                assert_eq!(source["generate"], "password");
                assert!(n(source, "/length") >= 24, "generated secrets are long");
            }
        }
        let name = s(item, "/name").to_string();
        assert!(!entries.contains_key(&name), "secret {name} listed twice");
        entries.insert(
            name,
            CatalogEntry {
                namespace: s(item, "/namespace").into(),
                keys: keys.keys().cloned().collect(),
            },
        );
    }
    for item in catalog["operator_created"]
        .as_array()
        .expect("operator_created list")
    {
        assert!(item["by"].is_string());
        let keys = item["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().expect("key").to_string())
            .collect();
        let name = s(item, "/name").to_string();
        assert!(!entries.contains_key(&name), "secret {name} listed twice");
        entries.insert(
            name,
            CatalogEntry {
                namespace: s(item, "/namespace").into(),
                keys,
            },
        );
    }
    entries
}

/// Every (secret name, optional key) a rendered object references.
fn secret_refs(value: &Value, parent: &str, out: &mut BTreeSet<(String, Option<String>)>) {
    match value {
        Value::Object(map) => {
            let parent_lower = parent.to_ascii_lowercase();
            let is_ref_holder = parent_lower.contains("secret") && !parent_lower.contains("secrets");
            if is_ref_holder {
                if let Some(name) = map.get("name").and_then(Value::as_str) {
                    let key = map.get("key").and_then(Value::as_str).map(String::from);
                    out.insert((name.to_string(), key));
                } else if let Some(name) = map.get("secret").and_then(Value::as_str) {
                    out.insert((name.to_string(), None));
                }
            }
            for (key, child) in map {
                if key == "user" && child["secret"].is_string() {
                    // Keycloak bootstrapAdmin.user.secret: basic-auth username/password.
                    let name = s(child, "/secret");
                    out.insert((name.to_string(), Some("username".into())));
                    out.insert((name.to_string(), Some("password".into())));
                }
                if key == "importCredentialsSecret" {
                    let name = s(child, "/name");
                    out.insert((name.to_string(), Some("username".into())));
                    out.insert((name.to_string(), Some("password".into())));
                }
                secret_refs(child, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| secret_refs(item, parent, out)),
        _ => {}
    }
}

#[test]
fn the_secret_catalog_lists_every_secret_the_charts_reference() {
    let catalog = secret_catalog();
    let mut refs = BTreeSet::new();
    for docs in renders().docs.values() {
        for doc in docs.iter().filter(|d| d["kind"] != "SealedSecret") {
            secret_refs(&doc["spec"], "spec", &mut refs);
        }
    }
    // Upstream wrappers and the platform phase reference Secrets through their values.
    for chart in UPSTREAM_CHARTS {
        secret_refs(
            &yaml_file(&helm_dir().join(chart).join("values.yaml")),
            "",
            &mut refs,
        );
    }
    let grafana = yaml_file(&helm_dir().join("kube-prometheus-stack/values.yaml"));
    let admin = &grafana["kube-prometheus-stack"]["grafana"]["admin"];
    for key in ["userKey", "passwordKey"] {
        refs.insert((
            s(admin, "/existingSecret").into(),
            Some(s(admin, &format!("/{key}")).into()),
        ));
    }
    let platform = yaml_file(&repo_root().join("gitops/platform.yml"));
    secret_refs(&platform["charts"], "", &mut refs);
    let expected: BTreeSet<&str> = [
        "database-app",
        "redis-secret",
        "rabbitmq-backend-user",
        "rabbitmq-ai-service-user",
        "scheduler-db-credentials",
        "scheduler-secrets",
        "postgres-backup-credentials",
        "keycloak-db-app",
        "keycloak-bootstrap-admin",
        "cloudflare-api-token",
        "grafana-admin",
        "digitalocean-csi-secret",
        "backend-secrets",
        "ai-service-secrets",
    ]
    .into_iter()
    .collect();
    let found: BTreeSet<&str> = refs.iter().map(|(name, _)| name.as_str()).collect();
    for name in &expected {
        assert!(
            found.contains(name),
            "reference collector missed {name}; found {found:?}"
        );
    }
    for (name, key) in &refs {
        if name.ends_with("-tls") || name.ends_with("-account-key") {
            continue; // written by cert-manager (Certificate / ACME account), not consumed as input
        }
        let entry = catalog
            .get(name)
            .unwrap_or_else(|| panic!("secret {name} is referenced but not in gitops/secrets.yml"));
        if let Some(key) = key {
            assert!(
                entry.keys.contains(key),
                "secret {name}: key {key} not in gitops/secrets.yml ({entry:?})"
            );
        }
    }
    // Namespaces: env-scoped secrets are referenced by env charts, fixed ones by shared components.
    assert_eq!(catalog["cloudflare-api-token"].namespace, "cert-manager");
    assert_eq!(catalog["grafana-admin"].namespace, "monitoring");
    for name in [
        "redis-secret",
        "database-app",
        "queue-default-user",
        "scheduler-db-credentials",
    ] {
        assert_eq!(catalog[name].namespace, "env", "{name}");
    }
    // No stale entries: every catalogued secret is used by a chart or the platform phase.
    let mut corpus = String::new();
    let mut files = Vec::new();
    files_under(&helm_dir(), &mut files);
    for path in files
        .iter()
        .filter(|p| !p.starts_with(helm_dir().join("secrets")))
    {
        corpus.push_str(&std::fs::read_to_string(path).unwrap_or_default());
    }
    corpus.push_str(&read(&repo_root().join("gitops/platform.yml")));
    for name in catalog.keys() {
        if name == "queue-default-user" {
            continue; // the operator's admin user: for `kubectl duli db`, not for the charts
        }
        assert!(
            corpus.contains(name.as_str()),
            "gitops/secrets.yml lists {name}, which nothing references"
        );
    }
}

#[test]
fn the_secrets_chart_renders_sealed_files_only() {
    let empty_docs = rendered("secrets", "staging");
    assert!(empty_docs.is_empty(), "no sealed files committed → no objects");
    for env in ["staging", "prod", "shared"] {
        assert!(
            helm_dir()
                .join(format!("secrets/sealed/{env}/.gitkeep"))
                .is_file(),
            "sealed/{env}/.gitkeep"
        );
    }
    let work = tempfile::tempdir().expect("temp dir");
    let chart = work.path().join("secrets");
    copy_dir(&helm_dir().join("secrets"), &chart);
    let sealed = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: redis-secret\n  namespace: staging\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA==\n  template:\n    metadata:\n      name: redis-secret\n      namespace: staging\n    type: Opaque\n";
    std::fs::write(chart.join("sealed/staging/redis-secret.yml"), sealed).expect("write");
    let chart_s = chart.display().to_string();
    let values = chart.join("values-staging.yml").display().to_string();
    for helm in HELMS {
        let out = run_helm(
            helm,
            &["template", "secrets", &chart_s, "-n", "staging", "-f", &values],
        );
        assert!(out.status.success(), "{}", text(&out));
        let docs = yaml_docs(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(validate_cr(doc).expect("SealedSecret CRD"), Vec::<String>::new());
        assert_eq!(
            doc["spec"]["encryptedData"]["password"],
            "AgBy3i4OJSWK+PiTySYZZA=="
        );
        assert_eq!(doc["metadata"]["labels"]["environment"], "staging");
        assert_eq!(doc["metadata"]["labels"]["app.kubernetes.io/part-of"], "duli");
    }
    // A plaintext Secret, a wrong namespace or a wrong file name fail the render.
    let cases = [
        (
            "bad.yml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bad\n  namespace: staging\nstringData:\n  a: b\n",
            "never commit a plaintext Secret",
        ),
        (
            "other.yml",
            &sealed
                .replace("redis-secret", "other")
                .replace("namespace: staging", "namespace: prod"),
            "not the environment's namespace",
        ),
        ("renamed.yml", sealed, "must equal the file name"),
    ];
    for (file, content, message) in cases {
        std::fs::remove_file(chart.join("sealed/staging/redis-secret.yml")).ok();
        let path = chart.join("sealed/staging").join(file);
        std::fs::write(&path, content).expect("write");
        let out = run_helm(
            Helm::V4,
            &["template", "secrets", &chart_s, "-n", "staging", "-f", &values],
        );
        assert!(
            !out.status.success() && text(&out).contains(message),
            "{file}: {}",
            text(&out)
        );
        std::fs::remove_file(&path).expect("remove");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").filter_map(Result::ok) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GitOps: Argo CD Applications and AppProjects, platform.yml
// ---------------------------------------------------------------------------------------------

/// Renders the `{{ a.b['c'] }}` subset of Jinja2 the templates use (strict: unknown → panic).
/// The real renderer is minijinja; templates with `{% %}` blocks need it (then extend this test).
fn render_template(template: &str, context: &Value, file: &str) -> String {
    assert!(
        !template.contains("{%"),
        "{file}: block tags need the real minijinja renderer in this test"
    );
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("{file}: unclosed {{{{"))
            + start;
        let expr = rest[start + 2..end].trim();
        let mut value = context;
        for part in expr.split(['.', '[']) {
            let key = part.trim_end_matches(']').trim_matches(['\'', '"']);
            value = value
                .get(key)
                .unwrap_or_else(|| panic!("{file}: undefined `{expr}`"));
        }
        match value {
            Value::String(text) => out.push_str(text),
            Value::Number(number) => out.push_str(&number.to_string()),
            Value::Bool(flag) => out.push_str(&flag.to_string()),
            other => panic!("{file}: `{expr}` is not a scalar: {other}"),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn applications(env: &str) -> BTreeMap<String, Vec<Value>> {
    let context = env_file(env);
    let dir = repo_root().join("gitops/applications");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir)
        .expect("gitops/applications")
        .filter_map(Result::ok)
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".yml.j2") else {
            panic!("gitops/applications/{file}: templates are <component>.yml.j2");
        };
        let rendered = render_template(&read(&entry.path()), &context, &file);
        out.insert(stem.to_string(), yaml_docs(&rendered));
    }
    out
}

fn wave(doc: &Value) -> i64 {
    s(doc, "/metadata/annotations/argocd.argoproj.io~1sync-wave")
        .parse()
        .expect("sync-wave is an integer string")
}

/// Labels every Application and AppProject carries (the charts' objects carry the same set).
const STANDARD_APPLICATION_LABELS: [&str; 9] = [
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

#[test]
fn argocd_applications_and_projects() {
    let staging = applications("staging");
    let prod = applications("prod");
    let charts = chart_dirs();
    for env in ENVS {
        let facts = env_file(env);
        let apps = if env == "staging" { &staging } else { &prod };
        let mut waves = BTreeMap::new();
        for (component, docs) in apps {
            for doc in docs {
                let errors =
                    validate_cr(doc).unwrap_or_else(|| panic!("{component}: not an Argo CD resource"));
                assert!(errors.is_empty(), "{component} ({env}): {errors:?}");
                assert_eq!(doc["metadata"]["namespace"], facts["gitops"]["argocd_namespace"]);
                assert_eq!(doc["metadata"]["labels"]["app.kubernetes.io/part-of"], "duli");
                // The standard labels the platform description asks of every object, Applications included.
                for key in STANDARD_APPLICATION_LABELS {
                    let value = &doc["metadata"]["labels"][key];
                    assert!(value.as_str().is_some_and(|v| !v.is_empty()), "{component} ({env}): label {key} missing");
                }
            }
            if component == "project" {
                continue;
            }
            assert_eq!(docs.len(), 1, "{component}: one Application per file");
            let app = &docs[0];
            assert_eq!(app["kind"], "Application");
            let labels = &app["metadata"]["labels"];
            assert_eq!(labels["duli.one/component"], component.as_str());
            let shared = labels["duli.one/scope"] == "shared";
            if shared {
                assert_eq!(app["metadata"]["name"], component.as_str());
                assert_eq!(app["spec"]["project"], "platform");
                // Shared objects carry `environment: shared`, like the shared charts' objects.
                assert_eq!(labels["environment"], "shared");
            } else {
                assert_eq!(labels["duli.one/scope"], "environment");
                assert_eq!(app["metadata"]["name"], format!("{env}-{component}"));
                assert_eq!(labels["environment"], env);
                assert_eq!(app["spec"]["project"], facts["gitops"]["project"]);
                assert_eq!(app["spec"]["destination"]["namespace"], facts["namespace"]);
            }
            let sync = &app["spec"]["syncPolicy"];
            assert_eq!(sync["automated"]["prune"], true, "{component}");
            assert_eq!(sync["automated"]["selfHeal"], true, "{component}");
            let options: Vec<&str> = sync["syncOptions"]
                .as_array()
                .expect("syncOptions")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(options.contains(&"CreateNamespace=true"), "{component}");
            if component.ends_with("operator") || component == "kube-prometheus-stack" {
                assert!(
                    options.contains(&"ServerSideApply=true"),
                    "{component}: large CRDs need ServerSideApply"
                );
            }
            // Sources: our chart from this repository, releaseName = component, values files exist.
            let sources: Vec<&Value> = match app["spec"]["sources"].as_array() {
                Some(list) => list.iter().collect(),
                None => vec![&app["spec"]["source"]],
            };
            let ours: Vec<&&Value> = sources
                .iter()
                .filter(|src| src["repoURL"] == facts["gitops"]["repo_url"])
                .collect();
            assert_eq!(ours.len(), 1, "{component}: one source from this repository");
            let ours = ours[0];
            assert_eq!(ours["targetRevision"], facts["gitops"]["target_revision"]);
            let path = s(ours, "/path");
            let chart = path.strip_prefix("helm/").expect("charts live in helm/");
            assert!(
                charts.iter().any(|c| c == chart),
                "{component}: chart {chart} missing"
            );
            assert_eq!(
                ours["helm"]["releaseName"],
                component.as_str(),
                "{component}: releaseName"
            );
            for file in ours["helm"]["valueFiles"].as_array().into_iter().flatten() {
                let file = file.as_str().expect("value file");
                assert!(
                    helm_dir().join(chart).join(file).is_file(),
                    "{component}: {path}/{file} missing"
                );
            }
            waves.insert(component.clone(), wave(app));
        }
        // Every chart is deployed by an Application.
        for chart in &charts {
            assert!(
                apps.values().flatten().any(|doc| {
                    let sources = doc["spec"]["sources"]
                        .as_array()
                        .cloned()
                        .unwrap_or_else(|| vec![doc["spec"]["source"].clone()]);
                    sources.iter().any(|src| src["path"] == format!("helm/{chart}"))
                }),
                "no Application deploys helm/{chart}"
            );
        }
        // Sync waves: operators < instances < applications.
        let max = |names: &[&str]| names.iter().map(|n| waves[*n]).max().expect("waves");
        let min = |names: &[&str]| names.iter().map(|n| waves[*n]).min().expect("waves");
        let operators = [
            "postgres-operator",
            "redis-operator",
            "rabbitmq-operator",
            "rabbitmq-topology-operator",
            "keycloak-operator",
        ];
        let instances = [
            "secrets",
            "postgres-instance",
            "redis-instance",
            "rabbitmq",
            "keycloak-db",
            "keycloak-instance",
        ];
        assert!(
            max(&operators) < min(&instances),
            "operators before instances: {waves:?}"
        );
        assert!(
            max(&instances) < min(&APPS),
            "instances before applications: {waves:?}"
        );
        assert!(
            waves["kube-prometheus-stack"] < waves["postgres-instance"],
            "PodMonitor CRD before instances"
        );
        assert!(waves["keycloak-db"] < waves["keycloak-instance"]);
        // Operators into their system namespaces.
        for (component, ns) in [
            ("postgres-operator", "cnpg-system"),
            ("redis-operator", "redis-operator-system"),
            ("rabbitmq-operator", "rabbitmq-system"),
            ("rabbitmq-topology-operator", "rabbitmq-system"),
            ("keycloak-operator", "keycloak-system"),
        ] {
            assert_eq!(apps[component][0]["spec"]["destination"]["namespace"], ns);
        }
        // AppProjects.
        let projects = &apps["project"];
        let env_project = projects
            .iter()
            .find(|p| p["metadata"]["name"] == facts["gitops"]["project"])
            .expect("env AppProject");
        let destinations: BTreeSet<&str> = env_project["spec"]["destinations"]
            .as_array()
            .expect("destinations")
            .iter()
            .map(|d| s(d, "/namespace"))
            .collect();
        let mut want: BTreeSet<&str> = SYSTEM_NAMESPACES.into_iter().collect();
        want.insert(s(&facts, "/namespace"));
        assert_eq!(destinations, want, "env AppProject destinations");
        assert_eq!(
            env_project["spec"]["sourceRepos"],
            serde_json::json!([facts["gitops"]["repo_url"]])
        );
        assert!(
            projects.iter().any(|p| p["metadata"]["name"] == "platform"),
            "platform AppProject"
        );
    }
    // Shared resources render identically for both environments.
    for (component, docs) in &staging {
        for (index, doc) in docs.iter().enumerate() {
            if doc["metadata"]["labels"]["duli.one/scope"] == "shared" {
                assert_eq!(
                    doc, &prod[component][index],
                    "{component}: shared resources differ between environments"
                );
            }
        }
    }
}

#[test]
fn platform_phase_charts_are_pinned() {
    let platform = yaml_file(&repo_root().join("gitops/platform.yml"));
    let charts = platform["charts"].as_array().expect("charts list");
    let names: Vec<&str> = charts.iter().map(|c| s(c, "/name")).collect();
    for required in [
        "cert-manager",
        "argocd",
        "sealed-secrets-controller",
        "csi-digitalocean",
        "digitalocean-cloud-controller-manager",
    ] {
        assert!(names.contains(&required), "platform.yml lacks {required}");
    }
    for chart in charts {
        let fields: BTreeSet<&str> = chart
            .as_object()
            .expect("entry")
            .keys()
            .map(String::as_str)
            .collect();
        let allowed: BTreeSet<&str> = [
            "name",
            "repo",
            "chart",
            "version",
            "namespace",
            "providers",
            "values",
        ]
        .into_iter()
        .collect();
        assert!(fields.is_subset(&allowed), "unknown fields in {chart}");
        let version = s(chart, "/version");
        assert!(
            is_semver(version, version.starts_with('v')),
            "{}: version {version} not pinned",
            chart["name"]
        );
        let repo = s(chart, "/repo");
        assert!(
            repo.starts_with("https://") || repo.starts_with("oci://"),
            "{repo}"
        );
        for provider in chart["providers"].as_array().into_iter().flatten() {
            assert_eq!(provider, "digitalocean");
        }
    }
    let sealed = charts
        .iter()
        .find(|c| c["name"] == "sealed-secrets-controller")
        .expect("sealed-secrets");
    assert_eq!(sealed["namespace"], "kube-system");
    assert_eq!(sealed["values"]["fullnameOverride"], "sealed-secrets-controller");
    for name in ["csi-digitalocean", "digitalocean-cloud-controller-manager"] {
        let entry = charts
            .iter()
            .find(|c| c["name"] == name)
            .expect("DigitalOcean entry");
        assert_eq!(entry["providers"], serde_json::json!(["digitalocean"]), "{name}");
    }
}

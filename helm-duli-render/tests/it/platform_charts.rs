//! The platform itself (issue #3): every chart under `helm/` and every Argo CD template under
//! `gitops/applications/`, rendered by the real pipeline (`helm_duli_render::render_many`: `helm template`,
//! minijinja for the templates, CRDs from `../shared/crds` and k8s-openapi for built-in kinds, policy
//! rules) on helm 4.1.4 and on helm 3.17.2, and checked against the facts of
//! `../shared/reference/platform-description.md` and the environment files `gitops/environments/*.yml`.
//!
//! The pipeline takes helm from `HELM_BIN` (there is no helm field in `RenderOptions`, and this crate
//! forbids the `unsafe` that setting a variable in-process needs), so it runs as the built plugin with
//! `HELM_BIN` set per helm version, `--no-cache`, and `--out`/`--report` in a temporary directory.
//! Binaries: `DULI_HELM4_BIN` / `DULI_HELM3_BIN`, default `$HOME/.cache/duli/tools/helm-<v>/helm`;
//! a missing binary is a failure (run `bash .ci/install-tools`).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;

use helm_duli_render::crds::{self, CrdStore};
use helm_duli_render::policy::STANDARD_LABELS;
use helm_duli_render::{APPLICATIONS, Finding, charts, manifests, output};
use serde_json::{Value, json};

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

const SYSTEM_NAMESPACES: [&str; 4] = [
    "cnpg-system",
    "redis-operator-system",
    "rabbitmq-system",
    "keycloak-system",
];

/// The custom resources of the platform, with the CRD each is validated against.
const CUSTOM_KINDS: [(&str, &str); 16] = [
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("postgresql.cnpg.io/v1", "Database"),
    ("redis.redis.opstreelabs.in/v1beta2", "RedisReplication"),
    ("redis.redis.opstreelabs.in/v1beta2", "RedisSentinel"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
    ("rabbitmq.com/v1beta1", "User"),
    ("rabbitmq.com/v1beta1", "Permission"),
    ("rabbitmq.com/v1beta1", "Vhost"),
    ("rabbitmq.com/v1beta1", "Queue"),
    ("k8s.keycloak.org/v2alpha1", "Keycloak"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("bitnami.com/v1alpha1", "SealedSecret"),
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "AppProject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
];

fn repo_root() -> PathBuf {
    common::workspace()
}

fn helm_dir() -> PathBuf {
    repo_root().join("helm")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn yaml_file(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
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

/// The charts under `helm/`, as the pipeline discovers them (external = unvendored dependencies).
fn charts() -> Vec<charts::Chart> {
    charts::discover(&helm_dir()).expect("helm/ holds readable charts")
}

/// The two helm versions every chart renders and lints with.
fn helms() -> [(&'static str, PathBuf); 2] {
    [("helm 4.1.4", common::helm4()), ("helm 3.17.2", common::helm3())]
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// helm itself (for `helm lint`, which the pipeline does not run).
fn run_helm(helm: &Path, args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(helm);
    common::isolate(&mut cmd, helm);
    cmd.envs(testkit::tools::helm_home_env(home.path()));
    cmd.args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", helm.display()))
}

/// `helm duli-render … --repo REPO --crds ../shared/crds --no-cache` on `helm`; returns its output.
fn plugin(helm: &Path, repo: &Path, args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(common::binary());
    common::isolate(&mut cmd, helm);
    cmd.envs(testkit::tools::helm_home_env(home.path()));
    cmd.args(args)
        .arg("--repo")
        .arg(repo)
        .arg("--crds")
        .arg(common::crds())
        .arg("--no-cache")
        // An empty chart cache: the wrappers stay external whatever the user's cache holds.
        .arg("--cache-dir")
        .arg(home.path().join("cache"))
        .output()
        .expect("run helm-duli-render")
}

// ---------------------------------------------------------------------------------------------
// Rendering: one pipeline run per helm version, both environments
// ---------------------------------------------------------------------------------------------

/// One `helm duli-render staging prod` run.
#[derive(Debug)]
struct Render {
    /// `--report`, per environment.
    reports: BTreeMap<String, Value>,
    /// Validation and policy findings, per environment.
    findings: BTreeMap<String, Vec<Finding>>,
    /// Objects per (environment, chart), from `--out DIR/<env>/<chart>/*.yml`.
    charts: BTreeMap<(String, String), Vec<Value>>,
    /// Objects per (environment, component), from `--out DIR/<env>/applications/<component>.yml`.
    applications: BTreeMap<(String, String), Vec<Value>>,
}

fn render(helm: &Path) -> Render {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("report.json"));
    let (out_s, report_s) = (out.display().to_string(), report.display().to_string());
    let mut args = ENVS.to_vec();
    args.extend(["--out", &out_s, "--report", &report_s]);
    let run = plugin(helm, &repo_root(), &args);
    // 0: clean; 1: findings (every_rendered_object_is_valid_and_labelled shows them); 2: an error.
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "helm duli-render with {} failed:\n{}",
        helm.display(),
        text(&run)
    );
    let mut render = Render {
        reports: BTreeMap::new(),
        findings: BTreeMap::new(),
        charts: BTreeMap::new(),
        applications: BTreeMap::new(),
    };
    for report in common::read_json(&report)["environments"]
        .as_array()
        .expect("one report per environment")
    {
        let env = s(report, "/env").to_string();
        let findings = serde_json::from_value(report["findings"].clone()).expect("findings");
        render.findings.insert(env.clone(), findings);
        render.reports.insert(env.clone(), report.clone());
        for (path, text) in output::read(&out.join(&env)).expect("the --out tree") {
            let objects = manifests::split(&text, &path).expect("rendered YAML");
            let values = objects.into_iter().map(|object| object.value);
            let (group, file) = path.split_once('/').expect("<chart>/<file>");
            let entry = if group == APPLICATIONS {
                let component = file.strip_suffix(".yml").expect("<component>.yml");
                render.applications.entry((env.clone(), component.to_string()))
            } else {
                render.charts.entry((env.clone(), group.to_string()))
            };
            entry.or_default().extend(values);
        }
    }
    render
}

/// The renders with helm 4 (first) and helm 3.17, run concurrently once per test binary.
fn renders() -> &'static [(&'static str, Render)] {
    static RENDERS: OnceLock<Vec<(&'static str, Render)>> = OnceLock::new();
    RENDERS.get_or_init(|| {
        thread::scope(|scope| {
            let jobs: Vec<_> = helms()
                .into_iter()
                .map(|(name, helm)| scope.spawn(move || (name, render(&helm))))
                .collect();
            jobs.into_iter()
                .map(|job| job.join().expect("render thread"))
                .collect()
        })
    })
}

/// The helm 4 render (helm 3.17 renders the same: helm_lint_and_template_pass_on_helm4_and_helm3).
fn main_render() -> &'static Render {
    &renders()[0].1
}

/// Every chart's objects, per (environment, chart).
fn chart_renders() -> impl Iterator<Item = (&'static str, &'static str, &'static [Value])> {
    main_render()
        .charts
        .iter()
        .map(|((env, chart), docs)| (env.as_str(), chart.as_str(), docs.as_slice()))
}

fn rendered(chart: &str, env: &str) -> &'static [Value] {
    assert!(
        helm_dir().join(chart).join("Chart.yaml").is_file(),
        "no chart {chart}"
    );
    main_render()
        .charts
        .get(&(env.to_string(), chart.to_string()))
        .map_or(&[], Vec::as_slice)
}

fn applications(env: &str) -> BTreeMap<&'static str, &'static [Value]> {
    main_render()
        .applications
        .iter()
        .filter(|((e, _), _)| e == env)
        .map(|((_, component), docs)| (component.as_str(), docs.as_slice()))
        .collect()
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

fn show(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("{f}\n")).collect()
}

// ---------------------------------------------------------------------------------------------
// Charts, helm lint and helm template on helm 4 and helm 3.17, CRDs
// ---------------------------------------------------------------------------------------------

#[test]
fn every_chart_of_the_description_exists_with_its_files() {
    let expected: BTreeSet<&str> = ENV_CHARTS
        .iter()
        .copied()
        .chain(SHARED_LOCAL_CHARTS.iter().map(|(c, _)| *c))
        .chain(UPSTREAM_CHARTS)
        .collect();
    let charts = charts();
    let actual: BTreeSet<&str> = charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        actual, expected,
        "helm/ must hold exactly the charts of the description"
    );
    let external: BTreeSet<&str> = charts
        .iter()
        .filter(|c| c.is_external())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        external,
        UPSTREAM_CHARTS.into_iter().collect(),
        "exactly the upstream wrappers have unvendored dependencies"
    );
    for chart in &charts {
        for file in [
            "Chart.yaml",
            "values.yaml",
            "values-staging.yml",
            "values-prod.yml",
        ] {
            assert!(chart.dir.join(file).is_file(), "{}: {file} missing", chart.name);
        }
        let helpers = chart.dir.join("templates/_helpers.tpl");
        assert!(
            helpers.is_file(),
            "{}: templates/_helpers.tpl missing",
            chart.name
        );
        assert_eq!(
            read(&helpers),
            read(&helm_dir().join("backend/templates/_helpers.tpl")),
            "{}: _helpers.tpl must be identical in every chart",
            chart.name
        );
    }
}

/// `helm lint` of one chart (and, for an upstream wrapper, its failing `helm template`): the failures.
fn lint(chart: &charts::Chart, env: &str, name: &str, helm: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let dir = chart.dir.display().to_string();
    let values = chart.dir.join(format!("values-{env}.yml")).display().to_string();
    // Local charts lint strictly (warnings fail). Upstream wrappers: helm 3 and 4 lint a chart whose
    // declared dependency is not in charts/ with exit 0 and the warning "chart directory is missing
    // these dependencies"; `--strict` would turn that warning into a failure, so they lint non-strict
    // and the warning is asserted.
    let mut args = vec!["lint", &dir, "--values", &values];
    if !chart.is_external() {
        args.push("--strict");
    }
    let lint = run_helm(helm, &args);
    let lint_text = text(&lint);
    if !lint.status.success() {
        failures.push(format!("{name} lint {} ({env}):\n{lint_text}", chart.name));
    }
    if chart.is_external() {
        if !lint_text.contains("chart directory is missing these dependencies") {
            failures.push(format!(
                "{name} lint {}: expected the missing-dependency warning:\n{lint_text}",
                chart.name
            ));
        }
        // `helm template` needs the dependency (`helm dependency build`, network): it must fail for
        // exactly that reason, not for a broken chart.
        let args = [
            "template",
            &chart.name,
            &dir,
            "--namespace",
            env,
            "--values",
            &values,
        ];
        let out = run_helm(helm, &args);
        let out_text = text(&out);
        if out.status.success() || !out_text.contains("missing in charts/ directory") {
            failures.push(format!(
                "{name} template {}: expected the missing-dependency error:\n{out_text}",
                chart.name
            ));
        }
    }
    failures
}

#[test]
fn helm_lint_and_template_pass_on_helm4_and_helm3() {
    let charts = charts();
    let helms = helms();
    let failures: Vec<String> = thread::scope(|scope| {
        let mut jobs = Vec::new();
        for chart in &charts {
            for env in ENVS {
                for (name, helm) in &helms {
                    jobs.push(scope.spawn(move || lint(chart, env, name, helm)));
                }
            }
        }
        jobs.into_iter()
            .flat_map(|job| job.join().expect("lint thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // helm duli-render ran `helm template` with each helm (and left the upstream wrappers out).
    for ((name, render), (_, helm)) in renders().iter().zip(&helms) {
        for (env, report) in &render.reports {
            let used = PathBuf::from(s(report, "/helm_bin")).canonicalize().ok();
            assert_eq!(used, helm.canonicalize().ok(), "{name} ({env}): helm used");
            assert_eq!(
                n(report, "/totals/external"),
                UPSTREAM_CHARTS.len() as i64,
                "{name} ({env})"
            );
        }
    }
    // Both helm versions render the same objects and Applications.
    let [(_, v4), (_, v3)] = renders() else {
        panic!("two renders")
    };
    assert_eq!(
        v3.charts.keys().collect::<Vec<_>>(),
        v4.charts.keys().collect::<Vec<_>>()
    );
    for (key, docs) in &v3.charts {
        assert_eq!(
            docs, &v4.charts[key],
            "{key:?}: helm 3 and helm 4 render differently"
        );
    }
    assert_eq!(v3.applications, v4.applications);
}

#[test]
fn upstream_charts_declare_pinned_dependencies_and_nest_their_values() {
    for chart in charts().iter().filter(|c| c.is_external()) {
        let name = &chart.name;
        assert!(
            !chart.dir.join("charts").exists(),
            "{name}: upstream charts must not be vendored"
        );
        let values = yaml_file(&chart.dir.join("values.yaml"));
        for dep in &chart.missing_dependencies {
            let version = &dep.version;
            assert!(
                version.split('.').count() == 3
                    && version
                        .trim_start_matches('v')
                        .split('.')
                        .all(|p| p.parse::<u32>().is_ok()),
                "{name}: dependency version {version} is not pinned"
            );
            let repo = &dep.repository;
            assert!(
                repo.starts_with("https://") || repo.starts_with("oci://"),
                "{name}: repository {repo}"
            );
            let key = dep.alias.as_ref().unwrap_or(&dep.name);
            assert!(
                values[key].is_object(),
                "{name}: values.yaml has no `{key}:` block for its dependency"
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

#[test]
fn the_crds_know_every_custom_kind_and_reject_unknown_fields() {
    let files = crds::files(&[common::crds()]).expect("../shared/crds");
    let store = CrdStore::load(&files, 2).expect("the CRDs parse");
    for (api_version, kind) in CUSTOM_KINDS {
        assert!(
            store.knows(api_version, kind),
            "no CRD for {api_version} {kind} in ../shared/crds"
        );
    }
    // The schemas are structural: wrong types and unknown fields are violations.
    let bad = json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "database"},
        "spec": {"instances": "3", "storage": {"size": "1Gi", "storageclass": "x"}}
    });
    let found = store.validate(&bad).expect("Cluster CRD is loaded");
    assert!(found.iter().any(|v| v.path == "spec.instances"), "{found:?}");
    assert!(
        found
            .iter()
            .any(|v| v.message.contains("unknown field `spec.storage.storageclass`")),
        "{found:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rendered objects: validation, labels, security
// ---------------------------------------------------------------------------------------------

#[test]
fn every_rendered_object_is_valid_and_labelled() {
    // Custom resources against ../shared/crds, built-in objects against k8s-openapi, and the
    // policy rules: no findings, on either helm.
    for (name, render) in renders() {
        for (env, report) in &render.reports {
            assert_eq!(report["validated"], true, "{name} ({env}): validation ran");
            let findings = &render.findings[env];
            assert!(findings.is_empty(), "{name} ({env}):\n{}", show(findings));
        }
    }
    let mut failures = Vec::new();
    for (env, chart, docs) in chart_renders() {
        let facts = env_file(env);
        for doc in docs {
            let id = format!("{chart} ({env}) {}/{}", doc["kind"], doc["metadata"]["name"]);
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
            let shared = SHARED_LOCAL_CHARTS.iter().any(|(c, _)| *c == chart);
            let (want_env, want_tier) = if shared {
                ("shared", "platform")
            } else {
                (env, s(&facts, "/tier"))
            };
            if labels["environment"] != want_env || labels["tier"] != want_tier {
                failures.push(format!("{id}: environment/tier labels {labels}"));
            }
            if labels["team"] != s(&facts, "/team") || labels["app.kubernetes.io/part-of"] != "duli" {
                failures.push(format!("{id}: team/part-of labels {labels}"));
            }
            if labels["app.kubernetes.io/instance"] != chart {
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
    for (env, chart, docs) in chart_renders() {
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
                    sc["capabilities"]["drop"] == json!(["ALL"]),
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

/// The fact that `doc` holds `want` at `pointer` (a JSON pointer: `~1` stands for `/` in a key).
#[track_caller]
fn is(doc: &Value, pointer: &str, want: impl Into<Value>) {
    let field = |pointer: &str| doc.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let id = format!("{} {}", field("/kind"), field("/metadata/name"));
    assert_eq!(doc.pointer(pointer), Some(&want.into()), "{id} {pointer}");
}

/// The fact that `helm/<chart>/values-<env>.yml` holds `want` at `pointer`.
#[track_caller]
fn values_have(chart: &str, env: &str, pointer: &str, want: impl Into<Value>) {
    let values = yaml_file(&helm_dir().join(format!("{chart}/values-{env}.yml")));
    let file = format!("{chart}/values-{env}.yml");
    assert_eq!(values.pointer(pointer), Some(&want.into()), "{file} {pointer}");
}

fn host_port(address: &str) -> (&str, &str) {
    address.rsplit_once(':').expect("host:port")
}

fn image_tag(image: &str) -> &str {
    image.rsplit_once(':').map_or("", |(_, tag)| tag)
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
    is(&facts, "/storage_class", "do-block-storage");
    is(
        &facts,
        "/image_tag_policy",
        if prod { "pinned" } else { "latest" },
    );
    is(&facts, "/log_level", if prod { "info" } else { "debug" });
    let log_level = s(&facts, "/log_level");
    let size = |component: &str, field: &str| facts["sizes"][component][field].clone();

    // Applications: replicas, memory, tags, PDB/HPA.
    for app in APPS {
        let docs = rendered(app, env);
        let kind = if app == "scheduler" {
            "StatefulSet"
        } else {
            "Deployment"
        };
        let workload = get(docs, kind, app);
        let container = &pod_spec(workload)["containers"][0];
        let c = |pointer: &str| format!("/spec/template/spec/containers/0/{pointer}");
        let replicas = size(app, "replicas").as_i64().expect("replicas");
        let hpa = find(docs, "HorizontalPodAutoscaler", app);
        if app == "ai-service" && prod {
            let hpa = hpa.expect("ai-service has an HPA in prod");
            is(hpa, "/spec/minReplicas", replicas);
            is(hpa, "/spec/scaleTargetRef/name", "ai-service");
            assert!(n(hpa, "/spec/maxReplicas") > replicas);
            assert!(
                workload["spec"]["replicas"].is_null(),
                "with an HPA the Deployment leaves replicas to it"
            );
        } else {
            assert!(hpa.is_none(), "{app} ({env}): unexpected HPA");
            is(workload, "/spec/replicas", replicas);
        }
        is(workload, &c("resources/limits/memory"), size(app, "memory"));
        is(workload, &c("resources/requests/memory"), size(app, "memory"));
        let tag = image_tag(s(container, "/image"));
        if prod {
            let pinned = is_semver(tag, app != "scheduler");
            assert!(pinned, "{app} prod tag {tag} must be a pinned version");
        } else {
            assert_eq!(tag, "latest", "{app} staging follows `latest`");
        }
        is(workload, &c("envFrom/0/configMapRef/name"), app);
        let mut env_vars = container["env"].as_array().into_iter().flatten();
        assert!(
            env_vars.all(|e| e["valueFrom"]["secretKeyRef"].is_object()),
            "{app}: env entries are only Secret references (settings live in the ConfigMap)"
        );
        let pdb = find(docs, "PodDisruptionBudget", app);
        assert_eq!(
            pdb.is_some(),
            prod,
            "{app} ({env}): PodDisruptionBudget exactly in prod"
        );
        let pod_labels = &workload["spec"]["template"]["metadata"]["labels"];
        if prod && (replicas > 1 || hpa.is_some()) {
            assert!(pdb_selects(docs, pod_labels), "{app}: PDB selects its pods");
        }
        get(docs, "Service", app);
        get(docs, "ServiceAccount", app);
    }

    // Endpoints: the ConfigMaps name the environment's Services, as the environment file does.
    let endpoint = |service: &str| host_port(s(&facts, &format!("/endpoints/{service}")));
    let (pg_host, pg_port) = endpoint("postgres/internal");
    let (pg_read_only, _) = endpoint("postgres/read_only");
    let (redis_host, redis_port) = endpoint("redis/internal");
    let (mq_host, mq_port) = endpoint("rabbitmq/internal");
    assert_eq!(pg_host, format!("database-rw.{ns}.svc.cluster.local"));
    assert_eq!(pg_port, "5432");
    assert_eq!(redis_host, format!("redis-master.{ns}.svc.cluster.local"));
    assert_eq!(mq_host, format!("queue.{ns}.svc.cluster.local"));
    for app in ["backend", "ai-service"] {
        let config = get(rendered(app, env), "ConfigMap", app);
        for (key, want) in [
            ("DATABASE_HOST", pg_host),
            ("DATABASE_PORT", pg_port),
            ("DATABASE_READONLY_HOST", pg_read_only),
            ("REDIS_HOST", redis_host),
            ("REDIS_PORT", redis_port),
            ("RABBITMQ_HOST", mq_host),
            ("RABBITMQ_PORT", mq_port),
            ("LOG_LEVEL", log_level),
            ("APP_ENV", env),
        ] {
            is(config, &format!("/data/{key}"), want);
        }
    }

    // ai-service (ML) gets more CPU and memory than backend.
    let resources =
        |app: &str| &pod_spec(get(rendered(app, env), "Deployment", app))["containers"][0]["resources"];
    let (ai, backend) = (resources("ai-service"), resources("backend"));
    for kind in ["requests", "limits"] {
        assert!(
            cpu_millis(&ai[kind]["cpu"]) > cpu_millis(&backend[kind]["cpu"]),
            "ai-service {kind}.cpu > backend"
        );
        let memory = |resources: &Value| memory_bytes(s(resources, &format!("/{kind}/memory")));
        assert!(memory(ai) > memory(backend), "ai-service {kind}.memory > backend");
    }

    // Scheduler (n8n): per-replica RWO volume, PostgreSQL of the environment, log level.
    let docs = rendered("scheduler", env);
    let sts = get(docs, "StatefulSet", "scheduler");
    let claim = |pointer: &str| format!("/spec/volumeClaimTemplates/0/spec/{pointer}");
    is(
        sts,
        &claim("resources/requests/storage"),
        size("scheduler", "storage"),
    );
    is(sts, &claim("storageClassName"), "do-block-storage");
    is(sts, &claim("accessModes"), json!(["ReadWriteOnce"]));
    is(sts, "/spec/serviceName", "scheduler-headless");
    get(docs, "Service", "scheduler-headless");
    let queue_mode = size("scheduler", "replicas").as_i64() > Some(1);
    let config = get(docs, "ConfigMap", "scheduler");
    for (key, want) in [
        ("DB_TYPE", "postgresdb"),
        ("DB_POSTGRESDB_HOST", pg_host),
        ("DB_POSTGRESDB_PORT", "5432"),
        ("QUEUE_BULL_REDIS_HOST", redis_host),
        ("N8N_LOG_LEVEL", log_level),
        ("EXECUTIONS_MODE", if queue_mode { "queue" } else { "regular" }),
    ] {
        is(config, &format!("/data/{key}"), want);
    }

    // PostgreSQL: Cluster `database`, 3 instances, PITR backups.
    let docs = rendered("postgres-instance", env);
    let cluster = get(docs, "Cluster", "database");
    is(cluster, "/spec/instances", size("postgres", "instances"));
    is(cluster, "/spec/instances", 3);
    is(cluster, "/spec/storage/size", size("postgres", "storage"));
    is(cluster, "/spec/storage/storageClass", "do-block-storage");
    is(cluster, "/spec/monitoring/enablePodMonitor", true);
    is(cluster, "/spec/enablePDB", true);
    let backups = s(cluster, "/spec/backup/barmanObjectStore/destinationPath");
    assert!(backups.starts_with("s3://"), "PITR object store: {backups}");
    assert!(backups.ends_with(env), "{backups}");
    is(
        get(docs, "ScheduledBackup", "database-daily"),
        "/spec/cluster/name",
        "database",
    );
    is(get(docs, "Database", "database-n8n"), "/spec/name", "n8n");
    assert!(!image_tag(s(cluster, "/spec/imageName")).contains("latest"));

    // Redis: RedisReplication (1 master + 2 replicas) + RedisSentinel `redis`.
    let docs = rendered("redis-instance", env);
    let replication = get(docs, "RedisReplication", "redis");
    let claim = |pointer: &str| format!("/spec/storage/volumeClaimTemplate/spec/{pointer}");
    is(replication, "/spec/clusterSize", size("redis", "replicas"));
    is(replication, "/spec/clusterSize", 3);
    is(
        replication,
        &claim("resources/requests/storage"),
        size("redis", "storage"),
    );
    is(replication, &claim("storageClassName"), "do-block-storage");
    is(
        replication,
        "/spec/kubernetesConfig/redisSecret/name",
        "redis-secret",
    );
    is(replication, "/spec/redisExporter/enabled", true);
    assert_eq!(
        replication["spec"]["pdb"]["enabled"] == true,
        prod,
        "redis PDB in prod"
    );
    let sentinel = get(docs, "RedisSentinel", "redis");
    is(sentinel, "/spec/clusterSize", size("redis", "sentinels"));
    is(
        sentinel,
        "/spec/redisSentinelConfig/redisReplicationName",
        "redis",
    );

    // RabbitMQ: RabbitmqCluster `queue` and its topology.
    let docs = rendered("rabbitmq", env);
    let queue = get(docs, "RabbitmqCluster", "queue");
    is(queue, "/spec/replicas", size("rabbitmq", "replicas"));
    is(queue, "/spec/persistence/storage", size("rabbitmq", "storage"));
    is(queue, "/spec/persistence/storageClassName", "do-block-storage");
    let plugins = queue["spec"]["rabbitmq"]["additionalPlugins"].as_array();
    assert!(plugins.expect("plugins").contains(&"rabbitmq_prometheus".into()));
    is(
        queue,
        "/spec/resources/requests/memory",
        queue["spec"]["resources"]["limits"]["memory"].clone(),
    );
    for doc in docs
        .iter()
        .filter(|d| d["apiVersion"] == "rabbitmq.com/v1beta1" && d["kind"] != "RabbitmqCluster")
    {
        is(doc, "/spec/rabbitmqClusterReference/name", "queue");
    }
    for user in ["backend", "ai-service"] {
        let object = get(docs, "User", &format!("queue-{user}"));
        is(
            object,
            "/spec/importCredentialsSecret/name",
            format!("rabbitmq-{user}-user"),
        );
        get(docs, "Permission", &format!("queue-{user}-duli"));
    }
    let pdb = find(docs, "PodDisruptionBudget", "queue");
    assert_eq!(pdb.is_some(), prod, "rabbitmq PDB in prod");

    // Keycloak.
    let kc_db = get(rendered("keycloak-db", env), "Cluster", "keycloak-db");
    is(kc_db, "/spec/storage/storageClass", "do-block-storage");
    let docs = rendered("keycloak-instance", env);
    let keycloak = get(docs, "Keycloak", "keycloak");
    is(keycloak, "/spec/db/host", "keycloak-db-rw");
    is(keycloak, "/spec/db/usernameSecret/name", "keycloak-db-app");
    let ingress = get(docs, "Ingress", "keycloak");
    is(
        ingress,
        "/spec/rules/0/http/paths/0/backend/service/name",
        "keycloak-service",
    );
    if n(keycloak, "/spec/instances") > 1 || n(kc_db, "/spec/instances") > 1 {
        assert!(prod, "multi-instance keycloak only in prod");
        let pdb = find(docs, "PodDisruptionBudget", "keycloak");
        assert!(pdb.is_some(), "keycloak PDB in prod");
    }

    // The values files agree with the environment's sizes (the source, before rendering).
    for app in APPS {
        values_have(app, env, "/replicaCount", size(app, "replicas"));
        values_have(app, env, "/resources/limits/memory", size(app, "memory"));
    }
    for (chart, pointer, component, field) in [
        ("scheduler", "/persistence/size", "scheduler", "storage"),
        ("postgres-instance", "/instances", "postgres", "instances"),
        ("postgres-instance", "/storage/size", "postgres", "storage"),
        ("redis-instance", "/replicas", "redis", "replicas"),
        ("redis-instance", "/sentinels", "redis", "sentinels"),
        ("redis-instance", "/storage/size", "redis", "storage"),
        ("rabbitmq", "/replicas", "rabbitmq", "replicas"),
        ("rabbitmq", "/persistence/size", "rabbitmq", "storage"),
    ] {
        values_have(chart, env, pointer, size(component, field));
    }
    for chart in ENV_CHARTS {
        values_have(chart, env, "/environment", env);
        values_have(chart, env, "/tier", facts["tier"].clone());
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
    for (env, chart, docs) in chart_renders() {
        if env != "prod" {
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
    for (env, chart, docs) in chart_renders() {
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
        let set = format!("config.{key}=x");
        let args = ["staging", "--chart", chart, "--set", &set];
        let out = plugin(&common::helm4(), &repo_root(), &args);
        assert_eq!(
            out.status.code(),
            Some(2),
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
    // Each name once, across the plugin-managed and the operator-created lists.
    let add = |entries: &mut BTreeMap<String, CatalogEntry>, item: &Value, keys: BTreeSet<String>| {
        let name = s(item, "/name").to_string();
        assert!(!entries.contains_key(&name), "secret {name} listed twice");
        let namespace = s(item, "/namespace").into();
        entries.insert(name, CatalogEntry { namespace, keys });
    };
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
        add(&mut entries, item, keys.keys().cloned().collect());
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
        add(&mut entries, item, keys);
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
    for (_, _, docs) in chart_renders() {
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
    for env in ENVS {
        assert!(
            rendered("secrets", env).is_empty(),
            "no sealed files committed → no objects"
        );
    }
    for env in ["staging", "prod", "shared"] {
        assert!(
            helm_dir()
                .join(format!("secrets/sealed/{env}/.gitkeep"))
                .is_file(),
            "sealed/{env}/.gitkeep"
        );
    }
    // A repository holding the secrets chart with one sealed file.
    let work = tempfile::tempdir().expect("temp dir");
    let repo = work.path();
    common::copy_dir(&helm_dir().join("secrets"), &repo.join("helm/secrets"));
    common::copy_dir(
        &repo_root().join("gitops/environments"),
        &repo.join("gitops/environments"),
    );
    let sealed_dir = repo.join("helm/secrets/sealed/staging");
    let sealed = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: redis-secret\n  namespace: staging\nspec:\n  encryptedData:\n    password: AgBy3i4OJSWK+PiTySYZZA==\n  template:\n    metadata:\n      name: redis-secret\n      namespace: staging\n    type: Opaque\n";
    std::fs::write(sealed_dir.join("redis-secret.yml"), sealed).expect("write");
    let args = ["staging", "--chart", "secrets"];
    for (name, helm) in helms() {
        let out = plugin(&helm, repo, &args);
        // Exit 0: rendered, the SealedSecret matches its CRD, no policy finding.
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        let docs = manifests::split(&String::from_utf8_lossy(&out.stdout), "stream").expect("YAML");
        assert_eq!(docs.len(), 1, "{name}");
        let doc = &docs[0].value;
        assert_eq!(doc["kind"], "SealedSecret");
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
        std::fs::remove_file(sealed_dir.join("redis-secret.yml")).ok();
        let path = sealed_dir.join(file);
        std::fs::write(&path, content).expect("write");
        let out = plugin(&common::helm4(), repo, &args);
        assert!(
            out.status.code() == Some(2) && text(&out).contains(message),
            "{file}: {}",
            text(&out)
        );
        std::fs::remove_file(&path).expect("remove");
    }
}

// ---------------------------------------------------------------------------------------------
// GitOps: Argo CD Applications and AppProjects, platform.yml
// ---------------------------------------------------------------------------------------------

fn wave(doc: &Value) -> i64 {
    s(doc, "/metadata/annotations/argocd.argoproj.io~1sync-wave")
        .parse()
        .expect("sync-wave is an integer string")
}

#[test]
fn argocd_applications_and_projects() {
    let staging = applications("staging");
    let prod = applications("prod");
    let charts: Vec<String> = charts().into_iter().map(|c| c.name).collect();
    for env in ENVS {
        let facts = env_file(env);
        let apps = if env == "staging" { &staging } else { &prod };
        let mut waves = BTreeMap::new();
        for (&component, &docs) in apps {
            for doc in docs {
                assert_eq!(doc["apiVersion"], "argoproj.io/v1alpha1", "{component}");
                assert_eq!(doc["metadata"]["namespace"], facts["gitops"]["argocd_namespace"]);
                assert_eq!(doc["metadata"]["labels"]["app.kubernetes.io/part-of"], "duli");
                // The standard labels the platform description asks of every object, Applications included.
                for key in STANDARD_LABELS {
                    let value = &doc["metadata"]["labels"][key];
                    assert!(
                        value.as_str().is_some_and(|v| !v.is_empty()),
                        "{component} ({env}): label {key} missing"
                    );
                }
            }
            if component == "project" {
                continue;
            }
            assert_eq!(docs.len(), 1, "{component}: one Application per file");
            let app = &docs[0];
            assert_eq!(app["kind"], "Application");
            let labels = &app["metadata"]["labels"];
            assert_eq!(labels["duli.one/component"], component);
            let shared = labels["duli.one/scope"] == "shared";
            if shared {
                assert_eq!(app["metadata"]["name"], component);
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
            // One source: our chart from this repository (CRDs ship in the chart's crds/, so nothing needs
            // a second source and the platform installs without GitHub access), releaseName = component,
            // values files exist.
            assert!(
                app["spec"]["sources"].is_null(),
                "{component}: one `source`, not `sources`"
            );
            let ours = &app["spec"]["source"];
            assert_eq!(
                ours["repoURL"], facts["gitops"]["repo_url"],
                "{component}: the source is this repository"
            );
            assert_eq!(ours["targetRevision"], facts["gitops"]["target_revision"]);
            let path = s(ours, "/path");
            let chart = path.strip_prefix("helm/").expect("charts live in helm/");
            assert!(
                charts.iter().any(|c| c == chart),
                "{component}: chart {chart} missing"
            );
            assert_eq!(ours["helm"]["releaseName"], component, "{component}: releaseName");
            for file in ours["helm"]["valueFiles"].as_array().into_iter().flatten() {
                let file = file.as_str().expect("value file");
                assert!(
                    helm_dir().join(chart).join(file).is_file(),
                    "{component}: {path}/{file} missing"
                );
            }
            waves.insert(component, wave(app));
        }
        // Every chart is deployed by an Application.
        for chart in &charts {
            assert!(
                apps.values()
                    .flat_map(|docs| docs.iter())
                    .any(|doc| doc["spec"]["source"]["path"] == format!("helm/{chart}")),
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
        // Shared charts into their namespaces.
        for (chart, ns) in SHARED_LOCAL_CHARTS {
            assert_eq!(apps[chart][0]["spec"]["destination"]["namespace"], ns, "{chart}");
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
            json!([facts["gitops"]["repo_url"]])
        );
        // The platform project: this repository and the chart repositories the wrapper charts depend on
        // (Argo CD spells OCI ones without `oci://`), nothing else (no git repository for CRDs).
        let platform = projects
            .iter()
            .find(|p| p["metadata"]["name"] == "platform")
            .expect("platform AppProject");
        let repos: BTreeSet<&str> = platform["spec"]["sourceRepos"]
            .as_array()
            .expect("sourceRepos")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut want: BTreeSet<String> = charts
            .iter()
            .flat_map(|chart| {
                let meta = yaml_file(&helm_dir().join(chart).join("Chart.yaml"));
                let deps = meta["dependencies"].as_array().cloned().unwrap_or_default();
                deps.iter()
                    .map(|d| s(d, "/repository").trim_start_matches("oci://").to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        want.insert(s(&facts, "/gitops/repo_url").to_string());
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        assert_eq!(repos, want, "platform AppProject sourceRepos");
        // Validated against the Argo CD CRDs (and the policies) by the render.
        let findings: Vec<Finding> = main_render().findings[env]
            .iter()
            .filter(|f| f.chart == APPLICATIONS)
            .cloned()
            .collect();
        assert!(findings.is_empty(), "{env}:\n{}", show(&findings));
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
        assert_eq!(entry["providers"], json!(["digitalocean"]), "{name}");
    }
}

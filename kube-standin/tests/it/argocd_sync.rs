//! `--argocd REPO_URL=DIR`: Applications rendered from a served directory with real helm 4 and applied —
//! health from the live objects, a broken chart or path as Argo CD's `ComparisonError`, repository changes
//! picked up, pruning, an upstream dependency pulled through a chart mirror, cascade deletion.

use std::path::Path;
use std::time::{Duration, Instant};

use kube_standin::StandIn;
use kube_standin::controllers::argocd_repo::{ChartMirror, ServedRepo};
use serde_json::Value;
use testkit::chartrepo::{ChartRepoServer, shared_chart_repo};

use crate::common::crds;

const REPO_URL: &str = "https://git.example/acme/infra.git";

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A chart `helm/web`: a Deployment (replicas from values), a Service and, while `config` is on, a ConfigMap.
fn web_chart(repo: &Path) {
    write(
        repo,
        "helm/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    write(repo, "helm/web/values.yaml", "replicas: 1\nconfig: true\n");
    write(repo, "helm/web/values-staging.yml", "replicas: 2\n");
    write(
        repo,
        "helm/web/templates/app.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: web}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: web}
  ports: [{port: 80}]
{{- if .Values.config }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data: {level: debug}
{{- end }}
",
    );
}

fn application(name: &str, path: &str, value_files: &[&str]) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: default
  source:
    repoURL: {REPO_URL}
    targetRevision: main
    path: {path}
    helm:
      releaseName: web
      valueFiles: {value_files:?}
  destination: {{server: https://kubernetes.default.svc, namespace: staging}}
  syncPolicy:
    automated: {{prune: true, selfHeal: true}}
    syncOptions: [CreateNamespace=true, ServerSideApply=true]
"
    )
}

async fn standin(repo: &Path, mirror: Option<&str>) -> StandIn {
    let mut builder = StandIn::builder()
        .crd_dir(crds("argocd-application"))
        .crd_dir(crds("argocd-appproject"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n")
        .simulate_ready(Duration::from_millis(100))
        .helm_binary(testkit::tools::helm4())
        .argocd_repo(ServedRepo::parse(&format!("{REPO_URL}={}", repo.display())).unwrap());
    if let Some(url) = mirror {
        builder = builder.chart_mirror(ChartMirror::parse(&format!("*={url}")).unwrap());
    }
    builder.start().await.expect("stand-in starts")
}

/// Waits until `check` on the Application returns `Some`, failing with its last status after 60 s.
async fn wait_app<T>(api: &StandIn, name: &str, mut check: impl FnMut(&Value) -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let app = api
            .store()
            .get("applications.argoproj.io", "argocd", name)
            .unwrap_or(Value::Null);
        if let Some(found) = check(&app) {
            return found;
        }
        assert!(
            Instant::now() < until,
            "Application {name} never got there: {:#}",
            app["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn synced_healthy(app: &Value) -> Option<String> {
    (app.pointer("/status/sync/status") == Some(&"Synced".into())
        && app.pointer("/status/health/status") == Some(&"Healthy".into()))
    .then(|| {
        app.pointer("/status/sync/revision")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    })
}

fn comparison_error(app: &Value) -> Option<String> {
    app.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ComparisonError")
        .and_then(|c| c["message"].as_str().map(str::to_string))
}

#[tokio::test]
async fn an_application_is_rendered_applied_and_follows_the_repository() {
    let repo = tempfile::tempdir().unwrap();
    web_chart(repo.path());
    let api = standin(repo.path(), None).await;
    api.store()
        .insert_yaml(&application("staging-web", "helm/web", &["values-staging.yml"]))
        .unwrap();

    // Synced and, once the Deployment controller made both replicas available, Healthy.
    let first = wait_app(&api, "staging-web", synced_healthy).await;
    assert_eq!(first.len(), 40, "the revision is a digest: {first}");
    let deployment = api
        .store()
        .get("deployments", "staging", "web")
        .expect("applied into the destination");
    assert_eq!(deployment["spec"]["replicas"], 2, "values-staging.yml was read");
    assert_eq!(
        deployment["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        "staging-web:apps/Deployment:staging/web"
    );
    assert!(
        api.store().get("namespaces", "", "staging").is_some(),
        "CreateNamespace=true"
    );
    assert!(api.store().get("configmaps", "staging", "web-config").is_some());

    // A template error in the repository: ComparisonError with helm's message, nothing else changes.
    write(
        repo.path(),
        "helm/web/templates/broken.yaml",
        "{{ .Values.missing.field }}\n",
    );
    let message = wait_app(&api, "staging-web", comparison_error).await;
    assert!(
        message.starts_with("Failed to load target state: failed to generate manifest for source 1 of 1")
            && message.contains("helm template . --name-template web --namespace staging")
            && message.contains("nil pointer evaluating interface {}.field"),
        "{message}"
    );
    assert_eq!(
        wait_app(&api, "staging-web", |a| a.pointer("/status/sync/status").cloned()).await,
        "Unknown"
    );

    // Fixed, with the ConfigMap turned off: synced again at a new revision and the ConfigMap pruned.
    std::fs::remove_file(repo.path().join("helm/web/templates/broken.yaml")).unwrap();
    write(
        repo.path(),
        "helm/web/values-staging.yml",
        "replicas: 2\nconfig: false\n",
    );
    let second = wait_app(&api, "staging-web", |a| synced_healthy(a).filter(|r| *r != first)).await;
    assert_ne!(second, first);
    assert!(
        api.store().get("configmaps", "staging", "web-config").is_none(),
        "pruned"
    );

    // selfHeal: a managed object deleted behind Argo CD's back comes back.
    api.store().delete("services", "staging", "web").unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while api.store().get("services", "staging", "web").is_none() {
        assert!(Instant::now() < until, "the Service was not synced back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A wrong path, then back to the last good spec: synced again (the failure is not remembered as done).
    let gvk = kube::api::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let apps: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(api.client(), "argocd", &kube::api::ApiResource::from_gvk(&gvk));
    let set_path = |path: &str| {
        let patch = serde_json::json!({"spec": {"source": {"path": path}}});
        let apps = apps.clone();
        async move {
            apps.patch(
                "staging-web",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch),
            )
            .await
            .expect("the Application is patched")
        }
    };
    set_path("helm/typo").await;
    let message = wait_app(&api, "staging-web", comparison_error).await;
    assert!(
        message.ends_with("helm/typo: app path does not exist"),
        "{message}"
    );
    set_path("helm/web").await;
    wait_app(&api, "staging-web", |a| {
        synced_healthy(a)
            .filter(|_| a.pointer("/status/sync/comparedTo/source/path") == Some(&"helm/web".into()))
    })
    .await;

    // A refresh asked for is done, and its annotation removed, as Argo CD does.
    let refresh = serde_json::json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}});
    apps.patch(
        "staging-web",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(refresh),
    )
    .await
    .unwrap();
    wait_app(&api, "staging-web", |a| {
        a.pointer("/metadata/annotations/argocd.argoproj.io~1refresh")
            .is_none()
            .then_some(())
    })
    .await;
    wait_app(&api, "staging-web", synced_healthy).await;

    // Cascade deletion removes what the sync applied, then the Application.
    api.store()
        .delete("applications.argoproj.io", "argocd", "staging-web")
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while api
        .store()
        .get("applications.argoproj.io", "argocd", "staging-web")
        .is_some()
        || api.store().get("deployments", "staging", "web").is_some()
    {
        assert!(Instant::now() < until, "the cascade did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_wrong_path_or_missing_values_file_is_argo_cds_comparison_error() {
    let repo = tempfile::tempdir().unwrap();
    web_chart(repo.path());
    let api = standin(repo.path(), None).await;
    api.store()
        .insert_yaml(&application("wrong-path", "helm/nope", &[]))
        .unwrap();
    api.store()
        .insert_yaml(&application("wrong-values", "helm/web", &["values-nope.yml"]))
        .unwrap();
    let message = wait_app(&api, "wrong-path", comparison_error).await;
    assert!(
        message.ends_with("helm/nope: app path does not exist"),
        "{message}"
    );
    let message = wait_app(&api, "wrong-values", comparison_error).await;
    assert!(
        message.ends_with("open helm/web/values-nope.yml: no such file or directory"),
        "{message}"
    );
    let app = api
        .store()
        .get("applications.argoproj.io", "argocd", "wrong-path")
        .unwrap();
    assert_eq!(app["status"]["health"]["status"], "Missing");
    assert!(api.store().get("deployments", "staging", "web").is_none());
}

#[tokio::test]
async fn an_upstream_dependency_comes_through_the_chart_mirror_with_its_crds() {
    let charts = ChartRepoServer::serve(&shared_chart_repo());
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "helm/sealed-secrets/Chart.yaml",
        "apiVersion: v2\nname: sealed-secrets\nversion: 0.1.0\ndependencies:
  - name: sealed-secrets
    repository: https://bitnami-labs.github.io/sealed-secrets
    version: 2.18.5\n",
    );
    write(
        repo.path(),
        "helm/sealed-secrets/values.yaml",
        "sealed-secrets:\n  fullnameOverride: sealed-secrets-controller\n",
    );
    let api = standin(repo.path(), Some(&charts.url)).await;
    let app = application("sealed-secrets", "helm/sealed-secrets", &[])
        .replace("releaseName: web", "releaseName: sealed-secrets");
    api.store().insert_yaml(&app).unwrap();
    wait_app(&api, "sealed-secrets", synced_healthy).await;
    assert!(
        api.store()
            .get("customresourcedefinitions", "", "sealedsecrets.bitnami.com")
            .is_some(),
        "the chart's CRD is applied (and served)"
    );
    assert!(api.store().resolve("sealedsecrets.bitnami.com").is_some());
    assert!(
        api.store()
            .get("deployments", "staging", "sealed-secrets-controller")
            .is_some()
    );
    assert!(charts.requests() > 0, "the chart came from the mirror");
}

//! OpenAPI with the real kubectl 1.32 and 1.35: `kubectl explain` for a built-in field and a CRD field,
//! client-side `kubectl apply` twice with a containers change (strategic merge by container name keeps
//! a field added out of band; ports merge by `containerPort`), and `kubectl diff`. Raw checks of `/openapi/v2` (upstream plus CRD
//! definitions) and of the process-wide document cache.

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use kube_standin::StandIn;
use kube_standin::openapi::{Upstream, shared_openapi_file};
use serde_json::Value;

use crate::common::{Kubectl, crds, spawn_per_kubectl};

const V1: &str = "apiVersion: v1
kind: Namespace
metadata: {name: staging}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: staging}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: app
        image: app:1
        env: [{name: A, value: \"1\"}]
        ports: [{containerPort: 80}, {containerPort: 9090}]
      - name: side
        image: side:1
";

async fn start() -> StandIn {
    StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .simulate_ready(Duration::from_millis(200))
        .start()
        .await
        .expect("stand-in starts")
}

async fn scenario(label: &'static str, bin: std::path::PathBuf) {
    let api = start().await;
    let k = Kubectl::new(label, bin, &api);

    let out = k.ok(&["explain", "deployment.spec.replicas"]).await;
    assert!(out.contains("KIND:       Deployment"), "{label}: {out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{label}: {out}");
    assert!(out.contains("Number of desired pods."), "{label}: {out}");
    let out = k
        .ok(&[
            "explain",
            "clusters.spec.instances",
            "--api-version=postgresql.cnpg.io/v1",
        ])
        .await;
    assert!(out.contains("GROUP:      postgresql.cnpg.io"), "{label}: {out}");
    assert!(out.contains("FIELD: instances <integer>"), "{label}: {out}");
    assert!(
        out.contains("Number of instances required in the cluster"),
        "{label}: {out}"
    );
    let out = k.ok(&["explain", "pods.spec.containers"]).await;
    assert!(out.contains("FIELD: containers <[]Container>"), "{label}: {out}");

    // Client-side apply, an out-of-band change, then apply with one container changed and one removed.
    let v1 = k.file("v1.yaml", V1);
    k.ok(&["apply", "-f", v1.to_str().unwrap()]).await;
    k.patch("deployment", "api", "staging", "json", r#"[{"op":"add","path":"/spec/template/spec/containers/0/env/-","value":{"name":"B","value":"kept"}}]"#)
    .await;
    let v2_text = V1
        .replace("image: app:1", "image: app:2")
        .replace(", {containerPort: 9090}", "")
        .replace("      - name: side\n        image: side:1\n", "");
    let v2 = k.file("v2.yaml", &v2_text);
    let v2 = v2.to_str().unwrap();

    let diff = k.run(&["diff", "-f", v2]).await;
    assert!(!diff.ok, "{label}: diff reports changes with exit 1: {diff:?}");
    assert!(
        diff.stdout.contains("+        image: app:2"),
        "{label}: {}",
        diff.stdout
    );
    assert!(
        diff.stdout.contains("-      - image: side:1"),
        "{label}: {}",
        diff.stdout
    );
    assert!(
        !diff.stdout.contains("-        - name: B"),
        "{label}: B survives: {}",
        diff.stdout
    );

    api.clear_requests();
    k.ok(&["apply", "-f", v2]).await;
    let patches: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/api"))
        .collect();
    assert_eq!(patches.len(), 1, "{label}: {patches:?}");
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/strategic-merge-patch+json"),
        "{label}"
    );
    let d = api.store().get("deployments", "staging", "api").unwrap();
    let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{label}: {d}");
    assert_eq!(containers[0]["image"], "app:2");
    let env: Vec<&str> = containers[0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["A", "B"], "{label}: merged by container name, B kept");
    // Ports merge by containerPort (the upstream schema's merge key): 9090 deleted, 80 kept.
    assert_eq!(
        containers[0]["ports"],
        serde_json::json!([{"containerPort": 80}]),
        "{label}: {d}"
    );

    // Nothing left to change.
    let diff = k.run(&["diff", "-f", v2]).await;
    assert!(diff.ok && diff.stdout.is_empty(), "{label}: {diff:?}");

    // A custom resource has no strategic merge: kubectl falls back to a JSON merge patch.
    let cluster = k.file("cluster.yaml", crate::common::CNPG_CLUSTER);
    k.ok(&["apply", "-f", cluster.to_str().unwrap()]).await;
    let bigger = k.file(
        "bigger.yaml",
        &crate::common::CNPG_CLUSTER.replace("instances: 1", "instances: 3"),
    );
    api.clear_requests();
    k.ok(&["apply", "-f", bigger.to_str().unwrap()]).await;
    let patch = api
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/clusters/database"))
        .unwrap_or_else(|| panic!("{label}: no PATCH"));
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json"),
        "{label}"
    );
    assert_eq!(
        api.store().get("clusters", "staging", "database").unwrap()["spec"]["instances"],
        3
    );
    // `kubectl patch` defaults to strategic merge, which a real server refuses for custom resources.
    let err = k
        .fails(&[
            "-n",
            "staging",
            "patch",
            "cluster",
            "database",
            "-p",
            r#"{"spec":{"instances":2}}"#,
        ])
        .await;
    assert!(
        err.contains("the body of the request was in an unknown format"),
        "{label}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_apply_and_diff_use_openapi() {
    spawn_per_kubectl(scenario).await;
}

async fn get_json(api: &StandIn, path: &str) -> Value {
    let req = Request::builder().uri(path).body(Vec::new()).unwrap();
    let text = api.client().request_text(req).await.expect("GET");
    serde_json::from_str(&text).expect("JSON")
}

fn widget_crd(plural: &str, kind: &str) -> serde_json::Value {
    serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.example.com")},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": kind, "plural": plural},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                    "properties": {"size": {"type": "integer", "description": "How big."}}}}}}}]}})
}

#[tokio::test]
async fn openapi_documents_carry_builtins_and_crds() {
    // One small CRD keeps the 4 MB round trip of /openapi/v2 as cheap as it gets in a debug build.
    let api = StandIn::builder()
        .crd_yaml(&widget_crd("widgets", "Widget").to_string())
        .start()
        .await
        .unwrap();
    let v2 = get_json(&api, "/openapi/v2").await;
    assert_eq!(v2["swagger"], "2.0");
    let defs = &v2["definitions"];
    let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let widget = &defs["com.example.v1.Widget"];
    assert_eq!(widget["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
    assert_eq!(
        widget["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let patch = &v2["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert!(!patch["consumes"].to_string().contains("strategic"), "{patch}");

    let index = get_json(&api, "/openapi/v3").await;
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let apps = get_json(&api, &url).await;
    let deployment = &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some()
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    // A CRD created at run time appears in the index.
    assert!(index["paths"].get("apis/example.com/v1").is_some());
    assert!(
        apps["components"]["schemas"]
            .get("com.example.v1.Gadget")
            .is_none()
    );
    api.store().insert(widget_crd("gadgets", "Gadget")).unwrap();
    let index = get_json(&api, "/openapi/v3").await;
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let example = get_json(&api, &url).await;
    let schemas = &example["components"]["schemas"];
    assert_eq!(
        schemas["com.example.v1.Gadget"]["properties"]["spec"]["properties"]["size"]["description"],
        "How big."
    );
    assert!(schemas.get("com.example.v1.Widget").is_some());
    assert!(
        schemas
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .is_some()
    );

    // The protobuf encoding client-go's OpenAPISchema() asks for is a named gap (404, which client-go
    // treats as "no v2 document" rather than failing helm's upgrade validation).
    let req = Request::builder()
        .uri("/openapi/v2")
        .header(
            "Accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let resp = api.client().send(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body = resp.into_body().collect_bytes().await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("protobuf (gnostic) encoding of /openapi/v2"));

    // Parsed once per process: every server shares the document.
    let a = Upstream::load(&shared_openapi_file()).unwrap();
    let b = Upstream::load(&shared_openapi_file()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let err = StandIn::builder()
        .openapi_file("/nonexistent/swagger.json")
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/swagger.json"), "{err}");
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "{\"swagger\": \"2.0\"}").unwrap();
    let err = StandIn::builder()
        .openapi_file(bad.path())
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not an OpenAPI v2 document"), "{err}");
}

#[tokio::test]
async fn serve_refuses_a_missing_openapi_file() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["serve", "--openapi", "/nonexistent/swagger.json"])
        .output()
        .await
        .expect("kube-standin runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/swagger.json"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no URL printed for a server that did not start"
    );
}

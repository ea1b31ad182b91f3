//! Server-side printing and the scale subresource with the real kubectl 1.32 and 1.35: `kubectl get`
//! shows the columns a real API server sends (headers in the real order, `-o wide`, `--show-labels`,
//! a CRD's printer columns), `get -w` prints rows as they change, and `kubectl scale` works on
//! Deployments, StatefulSets and a CRD that declares `subresources.scale`. Raw requests check the
//! Table protocol itself (`includeObject`, `v1beta1`, 406).

use std::time::Duration;

use http::Request;
use kube_standin::StandIn;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{CNPG_CLUSTER, Kubectl, STATEFULSET_DB, crds, header, row, spawn_per_kubectl};

const SEED: &str = "apiVersion: v1
kind: Namespace
metadata: {name: staging}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: staging, labels: {app: web}}
data: {mode: fast, level: \"3\"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: staging}
type: Opaque
stringData: {password: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: staging, labels: {tier: front}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}, {name: side, image: envoy}]}
";

async fn start() -> StandIn {
    StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .seed_yaml(&format!("{SEED}---\n{STATEFULSET_DB}"))
        .simulate_ready(Duration::from_millis(200))
        .start()
        .await
        .expect("stand-in starts")
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn get_columns(label: &'static str, k: &Kubectl) {
    let out = k.ok(&["get", "configmaps", "-n", "staging"]).await;
    assert_eq!(header(&out), strs(&["NAME", "DATA", "AGE"]), "{label}: {out}");
    let settings = row(&out, "settings").unwrap_or_else(|| panic!("{label}: {out}"));
    assert_eq!(settings[1], "2", "{label}: {out}");

    let out = k.ok(&["get", "secrets", "-n", "staging"]).await;
    assert_eq!(
        header(&out),
        strs(&["NAME", "TYPE", "DATA", "AGE"]),
        "{label}: {out}"
    );
    assert_eq!(
        row(&out, "creds").unwrap()[1..3],
        strs(&["Opaque", "1"]),
        "{label}: {out}"
    );

    let out = k.ok(&["get", "namespaces"]).await;
    assert_eq!(header(&out), strs(&["NAME", "STATUS", "AGE"]), "{label}: {out}");
    assert_eq!(row(&out, "staging").unwrap()[1], "Active", "{label}: {out}");

    k.rollout_status("deployment/web", "staging", "20s").await;
    let out = k.ok(&["get", "deploy", "-n", "staging"]).await;
    assert_eq!(
        header(&out),
        strs(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
        "{label}: {out}"
    );
    let out = k
        .ok(&["get", "deploy", "-n", "staging", "-o", "wide", "--show-labels"])
        .await;
    assert_eq!(
        header(&out),
        strs(&[
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
            "LABELS"
        ]),
        "{label}: {out}"
    );
    let web = row(&out, "web").unwrap_or_else(|| panic!("{label}: {out}"));
    assert_eq!(web[1..4], strs(&["2/2", "2", "2"]), "{label}: {out}");
    assert_eq!(
        web[5..],
        strs(&["c,side", "nginx,envoy", "app=web", "tier=front"]),
        "{label}: {out}"
    );

    // All namespaces: kubectl adds NAMESPACE from the rows' object metadata.
    let out = k.ok(&["get", "statefulsets", "-A", "-o", "wide"]).await;
    assert_eq!(
        header(&out),
        strs(&["NAMESPACE", "NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]),
        "{label}: {out}"
    );
    assert_eq!(row(&out, "db").unwrap()[0], "staging", "{label}: {out}");

    // A CRD's additionalPrinterColumns, in the CRD's order, after NAME.
    let cluster = k.file("cluster.yaml", CNPG_CLUSTER);
    k.ok(&["apply", "-f", cluster.to_str().unwrap()]).await;
    k.wait_for("Ready", "cluster/database", "staging", "20s").await;
    let out = k
        .ok(&["get", "clusters.postgresql.cnpg.io", "-n", "staging"])
        .await;
    assert_eq!(
        header(&out),
        strs(&["NAME", "AGE", "INSTANCES", "READY", "STATUS", "PRIMARY"]),
        "{label}: {out}"
    );
    let db = row(&out, "database").unwrap_or_else(|| panic!("{label}: {out}"));
    assert_eq!(
        db[2..],
        strs(&["1", "1", "Cluster in healthy state", "database-1"]),
        "{label}: {out}"
    );
    // The pod and services the simulated operator created.
    let out = k.ok(&["get", "pods", "-n", "staging", "-o", "wide"]).await;
    assert_eq!(
        header(&out),
        strs(&[
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]),
        "{label}: {out}"
    );
    let pod = row(&out, "database-1").unwrap_or_else(|| panic!("{label}: {out}"));
    assert_eq!(pod[1..4], strs(&["1/1", "Running", "0"]), "{label}: {out}");
    let out = k.ok(&["get", "services", "-n", "staging", "-o", "wide"]).await;
    assert_eq!(
        header(&out),
        strs(&[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]),
        "{label}: {out}"
    );
    let rw = row(&out, "database-rw").unwrap_or_else(|| panic!("{label}: {out}"));
    assert_eq!(
        (rw[1].as_str(), rw[3].as_str(), rw[4].as_str()),
        ("ClusterIP", "<none>", "5432/TCP"),
        "{label}: {out}"
    );
    // A kind without a server printer gets the default NAME / CREATED AT table.
    let out = k.ok(&["get", "crds"]).await;
    assert_eq!(header(&out), strs(&["NAME", "CREATED AT"]), "{label}: {out}");
}

async fn watch_rows(label: &'static str, api: &StandIn, k: &Kubectl) {
    let mut child = k
        .command(&["get", "configmaps", "-n", "staging", "-w"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl get -w starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut created = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, lines.next_line()).await {
        seen.push(line.clone());
        if line.starts_with("settings") && !created {
            created = true;
            api.store()
                .insert(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "later", "namespace": "staging"}, "data": {"a": "1", "b": "2", "c": "3"}}))
                .unwrap();
        }
        if line.starts_with("later") {
            break;
        }
    }
    let _ = child.kill().await;
    assert_eq!(
        header(&seen.join("\n")),
        strs(&["NAME", "DATA", "AGE"]),
        "{label}: {seen:?}"
    );
    let later = row(&seen.join("\n"), "later").unwrap_or_else(|| panic!("{label}: {seen:?}"));
    assert_eq!(later[1], "3", "{label}: {seen:?}");
}

async fn scale(label: &'static str, api: &StandIn, k: &Kubectl) {
    let out = k
        .ok(&["-n", "staging", "scale", "deployment", "web", "--replicas=3"])
        .await;
    assert!(out.contains("deployment.apps/web scaled"), "{label}: {out}");
    let web = api.store().get("deployments", "staging", "web").unwrap();
    assert_eq!(web["spec"]["replicas"], 3, "{label}");
    k.ok(&[
        "-n",
        "staging",
        "scale",
        "statefulset/db",
        "--replicas=2",
        "--current-replicas=1",
    ])
    .await;
    assert_eq!(
        api.store().get("statefulsets", "staging", "db").unwrap()["spec"]["replicas"],
        2
    );
    // A precondition that does not hold is refused.
    let err = k
        .fails(&[
            "-n",
            "staging",
            "scale",
            "statefulset/db",
            "--replicas=5",
            "--current-replicas=7",
        ])
        .await;
    assert!(err.contains("Expected replicas to be 7"), "{label}: {err}");
    // CNPG's Cluster declares scale at .spec.instances.
    let out = k
        .ok(&["-n", "staging", "scale", "cluster", "database", "--replicas=3"])
        .await;
    assert!(out.contains("scaled"), "{label}: {out}");
    let db = api.store().get("clusters", "staging", "database").unwrap();
    assert_eq!(db["spec"]["instances"], 3, "{label}");
}

async fn scenario(label: &'static str, bin: std::path::PathBuf) {
    let api = start().await;
    let k = Kubectl::new(label, bin, &api);
    get_columns(label, &k).await;
    watch_rows(label, &api, &k).await;
    scale(label, &api, &k).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_server_columns_and_scales() {
    spawn_per_kubectl(scenario).await;
}

async fn raw(api: &StandIn, method: &str, path: &str, accept: &str, body: Option<Value>) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Accept", accept)
        .header("Content-Type", "application/json")
        .body(kube::client::Body::from(
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        ))
        .unwrap();
    let resp = api.client().send(req).await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const TABLE_V1: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

#[tokio::test]
async fn table_protocol_include_object_and_scale() {
    let api = start().await;
    let list = "/apis/apps/v1/namespaces/staging/deployments";
    let (code, t) = raw(&api, "GET", list, TABLE_V1, None).await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let wide: Vec<(&str, i64)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["priority"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        wide,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
    );
    let row = &t["rows"][0];
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "web");
    assert!(row["object"].get("spec").is_none());

    let (_, t) = raw(&api, "GET", &format!("{list}?includeObject=None"), TABLE_V1, None).await;
    assert!(t["rows"][0].get("object").is_none(), "{t}");
    let (_, t) = raw(
        &api,
        "GET",
        &format!("{list}/web?includeObject=Object"),
        TABLE_V1,
        None,
    )
    .await;
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);
    assert_eq!(t["rows"][0]["object"]["spec"]["replicas"], 2, "{t}");
    let (code, t) = raw(
        &api,
        "GET",
        &format!("{list}?includeObject=Everything"),
        TABLE_V1,
        None,
    )
    .await;
    assert_eq!(code, 400, "{t}");
    let beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
    let (_, t) = raw(&api, "GET", "/api/v1/namespaces/staging/configmaps", beta, None).await;
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(t["rows"][0]["cells"][1], 2, "{t}");
    let (code, t) = raw(
        &api,
        "GET",
        list,
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
        None,
    )
    .await;
    assert_eq!((code, t["reason"].as_str()), (406, Some("NotAcceptable")), "{t}");
    // Without a Table in Accept, the plain list.
    let (_, t) = raw(&api, "GET", list, "application/json", None).await;
    assert_eq!(t["kind"], "DeploymentList");

    // The scale subresource: GET, PUT with a stale resourceVersion (409), PATCH, bad replicas (422).
    let scale = "/apis/apps/v1/namespaces/staging/deployments/web/scale";
    let (code, s) = raw(&api, "GET", scale, "application/json", None).await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(
        (s["kind"].as_str(), s["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(
        (s["spec"]["replicas"].as_i64(), s["status"]["selector"].as_str()),
        (Some(2), Some("app=web"))
    );
    let mut stale = s.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["replicas"] = json!(9);
    let (code, _) = raw(&api, "PUT", scale, "application/json", Some(stale)).await;
    assert_eq!(code, 409);
    // Without a resourceVersion the PUT is unconditional (the simulated controller may have written the
    // Deployment's status since the GET).
    let mut put = s.clone();
    put["spec"]["replicas"] = json!(4);
    put["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    let (code, s2) = raw(&api, "PUT", scale, "application/json", Some(put)).await;
    assert_eq!((code, s2["spec"]["replicas"].as_i64()), (200, Some(4)), "{s2}");
    let (code, s3) = raw(
        &api,
        "PUT",
        scale,
        "application/json",
        Some(json!({"spec": {"replicas": -1}})),
    )
    .await;
    assert_eq!(code, 422, "{s3}");
    assert_eq!(
        api.store().get("deployments", "staging", "web").unwrap()["spec"]["replicas"],
        4
    );
    let (code, _) = raw(
        &api,
        "GET",
        "/api/v1/namespaces/staging/configmaps/settings/scale",
        "application/json",
        None,
    )
    .await;
    assert_eq!(code, 404);
}

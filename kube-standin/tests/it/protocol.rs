//! Protocol details checked over raw HTTP: watch semantics, error `Status` bodies, access reviews,
//! the admin endpoints, and the operator simulation of every simulated kind.

use std::net::SocketAddr;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube_standin::{Fault, StandIn};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::crds;

/// One HTTP/1.1 exchange with `Connection: close`; returns status and the de-chunked body.
async fn raw(addr: SocketAddr, method: &str, path: &str, body: Option<(&str, &str)>) -> (u16, String) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ct, payload) = body.unwrap_or(("application/json", ""));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n{payload}",
        payload.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), sock.read_to_end(&mut buf))
        .await
        .expect("response ends")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn events(body: &str) -> Vec<(String, Value)> {
    body.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}"));
            (v["type"].as_str().unwrap().to_string(), v["object"].clone())
        })
        .collect()
}

fn summary(evs: &[(String, Value)]) -> Vec<String> {
    evs.iter()
        .map(|(t, o)| format!("{t} {}", o["metadata"]["name"].as_str().unwrap_or("-")))
        .collect()
}

#[tokio::test]
async fn watch_resumes_filters_expires_and_times_out() {
    let api = StandIn::builder()
        .seed_yaml(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default, labels: {app: x}}\n",
        )
        .start()
        .await
        .unwrap();
    let start_rv = api.store().resource_version();
    let store = api.store().clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default", "labels": {"app": "y"}}})).unwrap();
        store.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "default", "labels": {"app": "x"}}})).unwrap();
    });
    let began = std::time::Instant::now();
    let (code, body) = raw(
        api.addr(),
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=app%3Dx&timeoutSeconds=1",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        began.elapsed() >= Duration::from_millis(900),
        "ended at timeoutSeconds, not before"
    );
    writer.await.unwrap();
    // `a` leaving the selector is a DELETED for this watcher.
    assert_eq!(summary(&events(&body)), ["ADDED a", "DELETED a", "ADDED b"]);

    // Resuming from a resourceVersion replays only what came after it.
    let path =
        format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={start_rv}&timeoutSeconds=1");
    let (_, body) = raw(api.addr(), "GET", &path, None).await;
    assert_eq!(summary(&events(&body)), ["MODIFIED a", "ADDED b"]);

    // sendInitialEvents: the current state, then the initial-events-end bookmark.
    let (_, body) = raw(api.addr(), "GET", "/api/v1/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&labelSelector=app&timeoutSeconds=1", None).await;
    let evs = events(&body);
    assert_eq!(summary(&evs)[..2], ["ADDED a", "ADDED b"]);
    assert_eq!(evs[2].0, "BOOKMARK");
    assert_eq!(
        evs[2].1["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );

    // After compaction the old version is gone: one ERROR 410 Expired.
    api.store().compact();
    let (_, body) = raw(api.addr(), "GET", &path, None).await;
    let evs = events(&body);
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].0, "ERROR");
    assert_eq!(evs[0].1["code"], 410);
    assert_eq!(evs[0].1["reason"], "Expired");

    // A list carries the current resourceVersion.
    let (_, list) = raw(api.addr(), "GET", "/api/v1/namespaces/default/configmaps", None).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        list["metadata"]["resourceVersion"],
        api.store().resource_version().to_string()
    );
}

#[tokio::test]
async fn errors_are_status_objects() {
    let api = StandIn::builder()
        .seed_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec: {containers: [{name: c, image: i}]}\n")
        .start()
        .await
        .unwrap();
    let a = api.addr();
    let check = |code: u16, body: &str, want_code: u16, want_reason: &str, want_msg: &str| {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
        assert_eq!(
            (code, v["kind"].as_str(), v["code"].as_u64()),
            (want_code, Some("Status"), Some(want_code as u64)),
            "{body}"
        );
        assert_eq!(v["reason"], want_reason, "{body}");
        assert!(v["message"].as_str().unwrap().contains(want_msg), "{body}");
    };
    // One request a line: method, path, body; then the Status code, reason and a part of the message.
    #[rustfmt::skip]
    let cases = [
        ("GET", "/api/v1/namespaces/default/pods/nope", None, 404, "NotFound", "pods \"nope\" not found"),
        ("GET", "/apis/nothing.example.com/v1/widgets", None, 404, "NotFound", "the server could not find the requested resource"),
        ("GET", "/api/v1/namespaces/default/pods/p/log", None, 501, "NotImplemented", "log subresource"),
        ("POST", "/api/v1/namespaces/default/pods/p", Some(("application/json", "{}")), 405, "MethodNotAllowed", "does not allow"),
        ("PATCH", "/api/v1/namespaces/default/pods/p", Some(("text/plain", "{}")), 415, "UnsupportedMediaType", "text/plain"),
        ("GET", "/api/v1/pods?fieldSelector=spec.containers%3Dx", None, 400, "BadRequest", "field label not supported: spec.containers"),
        ("POST", "/api/v1/namespaces/missing/configmaps", Some(("application/json", r#"{"metadata":{"name":"x"}}"#)), 404, "NotFound", "namespaces \"missing\" not found"),
        ("POST", "/api/v1/namespaces/default/configmaps", Some(("application/json", r#"{"metadata":{"name":"Bad_Name"}}"#)), 422, "Invalid", "metadata.name: Invalid value: \"Bad_Name\""),
        ("GET", "/api/v1/namespaces/default/pods/p/portforward?ports=1", None, 400, "BadRequest", "WebSocket"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/new", Some(("application/apply-patch+yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n")), 422, "Invalid", "fieldManager: Required value"),
    ];
    for (method, path, body, code, reason, message) in cases {
        let (c, b) = raw(a, method, path, body).await;
        check(c, &b, code, reason, message);
    }
    // SSA accepts YAML bodies too and creates with 201.
    let (c, b) = raw(
        a,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/new?fieldManager=t",
        Some((
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\ndata: {k: v}\n",
        )),
    )
    .await;
    assert_eq!(c, 201, "{b}");

    // Finalizers hold a deletion until the last one is removed; namespace deletion empties it.
    api.store().insert_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: team, finalizers: [example.com/x]}\n").unwrap();
    let (c, b) = raw(
        a,
        "DELETE",
        "/api/v1/namespaces/team/configmaps/held",
        Some(("application/json", r#"{"propagationPolicy":"Background"}"#)),
    )
    .await;
    assert_eq!(c, 200);
    assert!(b.contains("deletionTimestamp"));
    assert!(api.store().get("configmaps", "team", "held").is_some());
    let (c, _) = raw(
        a,
        "PATCH",
        "/api/v1/namespaces/team/configmaps/held",
        Some((
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )),
    )
    .await;
    assert_eq!(c, 200);
    assert!(api.store().get("configmaps", "team", "held").is_none());
    api.store()
        .insert_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: team}\n")
        .unwrap();
    let (c, _) = raw(a, "DELETE", "/api/v1/namespaces/team", None).await;
    assert_eq!(c, 200);
    assert!(
        api.store().get("secrets", "team", "s").is_none()
            && api.store().get("namespaces", "", "team").is_none()
    );
}

#[tokio::test]
async fn access_reviews_and_denials() {
    let api = StandIn::builder().deny("get", "secrets").start().await.unwrap();
    let review = |verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": "default"}}})
        .to_string()
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (c, b) = raw(
        api.addr(),
        "POST",
        path,
        Some(("application/json", &review("list", "pods"))),
    )
    .await;
    assert_eq!(c, 201);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["status"]["allowed"],
        true
    );
    let (_, b) = raw(
        api.addr(),
        "POST",
        path,
        Some(("application/json", &review("get", "secrets"))),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["status"]["allowed"],
        false
    );
    let (c, b) = raw(api.addr(), "GET", "/api/v1/namespaces/default/secrets/x", None).await;
    assert_eq!(c, 403, "{b}");
    assert!(b.contains("secrets \\\"x\\\" is forbidden: User \\\"system:anonymous\\\" cannot get resource \\\"secrets\\\""), "{b}");
    let (c, _) = raw(api.addr(), "GET", "/api/v1/namespaces/default/secrets", None).await;
    assert_eq!(c, 200, "list is still allowed");
}

#[tokio::test]
async fn admin_endpoints_drive_faults_and_overrides() {
    let api = StandIn::builder().start().await.unwrap();
    let fault = r#"{"method":"GET","path":"/configmaps","action":{"type":"error","code":503,"retryAfterSeconds":2},"times":1}"#;
    let (c, _) = raw(
        api.addr(),
        "POST",
        "/_standin/faults",
        Some(("application/json", fault)),
    )
    .await;
    assert_eq!(c, 200);
    let (c, _) = raw(api.addr(), "GET", "/api/v1/namespaces/default/configmaps", None).await;
    assert_eq!(c, 503);
    let (c, _) = raw(api.addr(), "GET", "/api/v1/namespaces/default/configmaps", None).await;
    assert_eq!(c, 200, "the fault fired once");
    let (_, log) = raw(api.addr(), "GET", "/_standin/requests", None).await;
    let log: Vec<Value> = serde_json::from_str(&log).unwrap();
    assert_eq!(
        log.iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [503, 200]
    );

    api.add_fault(Fault::latency(Duration::from_millis(300)).on_path("/version"));
    let t = std::time::Instant::now();
    let (c, _) = raw(api.addr(), "GET", "/version", None).await;
    assert_eq!(c, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    api.clear_faults();
}

fn dynamic(
    api: &StandIn,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    ns: &str,
) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(api.client(), ns, &ar)
}

#[tokio::test]
async fn simulation_makes_operator_kinds_ready() {
    let api = StandIn::builder()
        .crd_dir(crds("rabbitmq-cluster-operator"))
        .crd_dir(crds("keycloak-operator"))
        .crd_dir(crds("redis-operator"))
        .crd_dir(crds("argocd-application"))
        .seed_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---
apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: seeded, namespace: prod}
spec: {replicas: 2, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}
status: {replicas: 2, readyReplicas: 0}\n",
        )
        .simulate_ready(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let pp = PatchParams::apply("test");
    let apply = |api: Api<DynamicObject>, body: Value| async move {
        let name = body["metadata"]["name"].as_str().unwrap().to_string();
        api.patch(&name, &PatchParams::apply("test"), &Patch::Apply(&body))
            .await
            .unwrap()
    };
    apply(dynamic(&api, "rabbitmq.com", "v1beta1", "RabbitmqCluster", "rabbitmqclusters", "prod"),
        json!({"apiVersion": "rabbitmq.com/v1beta1", "kind": "RabbitmqCluster", "metadata": {"name": "queue"}, "spec": {"replicas": 1}})).await;
    apply(dynamic(&api, "k8s.keycloak.org", "v2alpha1", "Keycloak", "keycloaks", "prod"),
        json!({"apiVersion": "k8s.keycloak.org/v2alpha1", "kind": "Keycloak", "metadata": {"name": "kc"}, "spec": {"instances": 1}})).await;
    apply(dynamic(&api, "redis.redis.opstreelabs.in", "v1beta2", "RedisReplication", "redisreplications", "prod"),
        json!({"apiVersion": "redis.redis.opstreelabs.in/v1beta2", "kind": "RedisReplication", "metadata": {"name": "redis"},
               "spec": {"clusterSize": 2, "kubernetesConfig": {"image": "quay.io/opstree/redis:v7.0.15"}}})).await;
    let apps = dynamic(
        &api,
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        "prod",
    );
    apply(
        apps.clone(),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "app",
               "annotations": {"kube-standin/unready": "waiting for sync"}},
               "spec": {"project": "default", "source": {"repoURL": "https://example.com/r.git", "path": "."},
                        "destination": {"server": "https://kubernetes.default.svc", "namespace": "prod"}}}),
    )
    .await;
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let deployments: Api<DynamicObject> = dynamic(&api, "apps", "v1", "Deployment", "deployments", "prod");
    deployments
        .patch("web", &pp, &Patch::Apply(&deploy))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    let s = api.store();
    let status = |res: &str, name: &str| {
        s.get(res, "prod", name)
            .map(|o| o["status"].clone())
            .unwrap_or(Value::Null)
    };
    let cond = |st: &Value, ty: &str| {
        st["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .map(|c| c["status"].clone())
            .unwrap_or(Value::Null)
    };
    let rmq = status("rabbitmqclusters", "queue");
    assert_eq!(
        (cond(&rmq, "AllReplicasReady"), cond(&rmq, "ClusterAvailable")),
        (json!("True"), json!("True")),
        "{rmq}"
    );
    assert_eq!(rmq["observedGeneration"], 1);
    assert!(
        s.get("secrets", "prod", "queue-default-user").is_some()
            && s.get("services", "prod", "queue-nodes").is_some()
    );
    let kc = status("keycloaks", "kc");
    assert_eq!(
        (cond(&kc, "Ready"), cond(&kc, "HasErrors")),
        (json!("True"), json!("False")),
        "{kc}"
    );
    assert!(
        s.get("secrets", "prod", "kc-initial-admin").is_some()
            && s.get("services", "prod", "kc-service").is_some()
    );
    assert_eq!(status("redisreplications", "redis")["masterNode"], "redis-0");
    assert_eq!(status("statefulsets", "redis")["readyReplicas"], 2);
    assert_eq!(
        s.get("pods", "prod", "redis-0").unwrap()["metadata"]["labels"]["redis-role"],
        "master"
    );
    assert_eq!(
        s.get("pods", "prod", "redis-1").unwrap()["metadata"]["labels"]["redis-role"],
        "slave"
    );
    let app = status("applications", "app");
    assert_eq!(
        (
            app["health"]["status"].as_str(),
            app["health"]["message"].as_str()
        ),
        (Some("Progressing"), Some("waiting for sync")),
        "{app}"
    );
    let web = status("deployments", "web");
    assert_eq!(
        (web["readyReplicas"].as_i64(), web["observedGeneration"].as_i64()),
        (Some(3), Some(1)),
        "{web}"
    );
    assert_eq!(cond(&web, "Available"), json!("True"));
    // A seeded status is kept until the spec changes.
    assert_eq!(status("deployments", "seeded")["readyReplicas"], 0);

    // Removing the unready annotation lets the Application become Synced + Healthy.
    apps.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"kube-standin/unready": null}}})),
    )
    .await
    .unwrap();
    // A spec change moves generation; the rollout follows with the new observedGeneration.
    let mut scaled = deploy.clone();
    scaled["spec"]["replicas"] = json!(1);
    deployments
        .patch("web", &pp, &Patch::Apply(&scaled))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let app = status("applications", "app");
    assert_eq!(
        (app["sync"]["status"].as_str(), app["health"]["status"].as_str()),
        (Some("Synced"), Some("Healthy")),
        "{app}"
    );
    let web = status("deployments", "web");
    assert_eq!(
        (web["readyReplicas"].as_i64(), web["observedGeneration"].as_i64()),
        (Some(1), Some(2)),
        "{web}"
    );
}

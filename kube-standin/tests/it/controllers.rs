//! The controllers a real cluster runs, driven by the real kubectl (1.32 and 1.35, one stand-in each,
//! concurrently) and kube-rs: Deployment rollouts, undo and scaling, StatefulSet pods, Jobs to completion,
//! garbage collection (background, foreground, orphan), namespace finalization and Argo CD's cascade.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube_standin::StandIn;
use serde_json::{Value, json};

use crate::common::{Kubectl, crds, kubectls};

const DELAY: Duration = Duration::from_millis(100);

async fn start() -> StandIn {
    StandIn::builder()
        .crd_dir(crds("argocd-application"))
        .crd_dir(crds("argocd-appproject"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n")
        .simulate_ready(DELAY)
        .start()
        .await
        .expect("stand-in starts")
}

/// Runs `check` once per kubectl build, each against a fresh stand-in of its own, concurrently.
async fn on_each_kubectl(check: impl AsyncFn(Kubectl, StandIn)) {
    let check = &check;
    let runs = kubectls().into_iter().map(|(label, bin)| async move {
        let api = start().await;
        check(Kubectl::new(label, bin, &api), api).await;
    });
    futures::future::join_all(runs).await;
}

/// Runs kubectl and parses its JSON output.
async fn json_of(k: &Kubectl, args: &[&str]) -> Value {
    let out = k.ok(args).await;
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kubectl {} {args:?}: not JSON ({e}): {out}", k.label))
}

/// Waits (at most 10 s) until `check` holds on the store.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

/// The Deployment revision a Deployment or ReplicaSet is annotated with.
fn revision(o: &Value) -> &Value {
    &o["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
}

fn condition<'a>(o: &'a Value, ty: &str) -> &'a Value {
    o["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "apps", "annotations": {"kubernetes.io/change-cause": "first"}},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
                 "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}"#;

async fn deployment_lifecycle(k: Kubectl, api: StandIn) {
    let file = k.file("deploy.json", DEPLOYMENT);
    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    let done = k.rollout_status("deployment/web", "apps", "30s").await;
    assert!(done.contains("successfully rolled out"), "{}: {done}", k.label);

    let rs = items(&json_of(&k, &["get", "replicasets", "-n", "apps", "-o", "json"]).await);
    assert_eq!(rs.len(), 1, "{}: {rs:?}", k.label);
    let first = rs[0].clone();
    let hash = first["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(name(&first), format!("web-{hash}"));
    assert_eq!(revision(&first), "1");
    assert_eq!(
        first["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "first"
    );
    assert_eq!(first["metadata"]["ownerReferences"][0]["kind"], "Deployment");
    assert_eq!(first["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        first["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        (
            first["status"]["replicas"].as_i64(),
            first["status"]["readyReplicas"].as_i64()
        ),
        (Some(2), Some(2))
    );

    let pods = items(&json_of(&k, &["get", "pods", "-n", "apps", "-l", "app=web", "-o", "json"]).await);
    assert_eq!(pods.len(), 2, "{}", k.label);
    for p in &pods {
        let suffix = name(p)
            .strip_prefix(&format!("web-{hash}-"))
            .expect("pod named after its ReplicaSet");
        assert_eq!(suffix.len(), 5, "{}", name(p));
        assert_eq!(p["metadata"]["labels"]["tier"], "front");
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash.as_str());
        assert_eq!(p["metadata"]["ownerReferences"][0]["name"], name(&first));
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(condition(p, "Ready")["status"], "True");
    }
    let dep = json_of(&k, &["get", "deployment", "web", "-n", "apps", "-o", "json"]).await;
    assert_eq!(dep["status"]["observedGeneration"], dep["metadata"]["generation"]);
    for f in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        assert_eq!(dep["status"][f], 2, "{}: {f} in {}", k.label, dep["status"]);
    }
    assert_eq!(condition(&dep, "Available")["reason"], "MinimumReplicasAvailable");
    assert_eq!(condition(&dep, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(
        condition(&dep, "Progressing")["message"],
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );
    assert_eq!(revision(&dep), "1");
    // The controllers' events, as `kubectl describe` lists them.
    let described = k.ok(&["describe", "deployment", "web", "-n", "apps"]).await;
    assert!(
        described.contains(&format!("Scaled up replica set web-{hash} from 0 to 2")),
        "{}: {described}",
        k.label
    );
    let described = k
        .ok(&["describe", "replicaset", name(&first), "-n", "apps"])
        .await;
    assert!(
        described.contains("Created pod: web-"),
        "{}: {described}",
        k.label
    );

    // A new image: a new ReplicaSet at revision 2, the old one scaled to 0.
    k.ok(&["set", "image", "deployment/web", "web=nginx:1.28", "-n", "apps"])
        .await;
    k.ok(&[
        "annotate",
        "deployment/web",
        "-n",
        "apps",
        "--overwrite",
        "kubernetes.io/change-cause=second",
    ])
    .await;
    let done = k.rollout_status("deployment/web", "apps", "30s").await;
    assert!(done.contains("successfully rolled out"), "{}: {done}", k.label);
    let rs = items(&json_of(&k, &["get", "replicasets", "-n", "apps", "-o", "json"]).await);
    assert_eq!(rs.len(), 2, "{}", k.label);
    let second = rs.iter().find(|r| name(r) != name(&first)).unwrap().clone();
    assert_eq!(revision(&second), "2");
    assert_eq!(
        second["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    let old = rs.iter().find(|r| name(r) == name(&first)).unwrap();
    assert_eq!(old["spec"]["replicas"], 0, "{}", k.label);
    let pods = items(&json_of(&k, &["get", "pods", "-n", "apps", "-l", "app=web", "-o", "json"]).await);
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| name(p).starts_with(&format!("{}-", name(&second))))
    );

    let history = k
        .ok(&["rollout", "history", "deployment/web", "-n", "apps"])
        .await;
    assert!(
        history.contains("REVISION") && history.contains("CHANGE-CAUSE"),
        "{history}"
    );
    assert!(
        history.lines().any(|l| l.starts_with('1') && l.contains("first")),
        "{}: {history}",
        k.label
    );
    assert!(
        history.lines().any(|l| l.starts_with('2')),
        "{}: {history}",
        k.label
    );

    // Undo: the first ReplicaSet comes back as revision 3.
    let undo = k.ok(&["rollout", "undo", "deployment/web", "-n", "apps"]).await;
    assert!(undo.contains("rolled back"), "{}: {undo}", k.label);
    k.rollout_status("deployment/web", "apps", "30s").await;
    let back = json_of(
        &k,
        &["get", "replicaset", name(&first), "-n", "apps", "-o", "json"],
    )
    .await;
    assert_eq!(revision(&back), "3");
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(back["spec"]["replicas"], 2);
    let dep = json_of(&k, &["get", "deployment", "web", "-n", "apps", "-o", "json"]).await;
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(revision(&dep), "3");
    let history = k
        .ok(&["rollout", "history", "deployment/web", "-n", "apps"])
        .await;
    assert!(
        history.lines().any(|l| l.starts_with('3')),
        "{}: {history}",
        k.label
    );
    assert!(
        !history.lines().any(|l| l.starts_with("1 ")),
        "{}: {history}",
        k.label
    );

    // Scaling through spec.replicas.
    k.patch("deployment", "web", "apps", "merge", r#"{"spec":{"replicas":3}}"#)
        .await;
    k.rollout_status("deployment/web", "apps", "30s").await;
    let store = api.store();
    eventually("3 pods", || store.list("pods", Some("apps")).len() == 3).await;
    k.patch("deployment", "web", "apps", "merge", r#"{"spec":{"replicas":1}}"#)
        .await;
    eventually("1 pod", || store.list("pods", Some("apps")).len() == 1).await;
    eventually("status of 1 replica", || {
        store.get("deployments", "apps", "web").is_some_and(|d| {
            d["status"]["replicas"] == 1
                && d["status"]["availableReplicas"] == 1
                && d["status"]["observedGeneration"] == d["metadata"]["generation"]
        })
    })
    .await;

    // Background deletion (kubectl's default): ReplicaSets and pods follow.
    k.ok(&["delete", "deployment", "web", "-n", "apps"]).await;
    eventually("ReplicaSets and pods collected", || {
        store.list("replicasets", Some("apps")).is_empty() && store.list("pods", Some("apps")).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deployments_roll_out_undo_and_scale() {
    on_each_kubectl(deployment_lifecycle).await;
}

const STATEFULSET: &str = r#"{"apiVersion": "apps/v1", "kind": "StatefulSet",
  "metadata": {"name": "db", "namespace": "apps"},
  "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}"#;

async fn statefulset_lifecycle(k: Kubectl, api: StandIn) {
    let file = k.file("sts.json", STATEFULSET);
    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    let done = k.rollout_status("statefulset/db", "apps", "30s").await;
    assert!(
        done.contains("roll out complete") || done.contains("rolling update complete"),
        "{}: {done}",
        k.label
    );
    let sts = json_of(&k, &["get", "statefulset", "db", "-n", "apps", "-o", "json"]).await;
    let s = &sts["status"];
    let revision = s["updateRevision"].as_str().unwrap().to_string();
    assert!(revision.starts_with("db-"), "{s}");
    assert_eq!(s["currentRevision"], revision.as_str());
    for f in [
        "replicas",
        "readyReplicas",
        "currentReplicas",
        "updatedReplicas",
        "availableReplicas",
    ] {
        assert_eq!(s[f], 3, "{}: {f} in {s}", k.label);
    }
    assert_eq!(s["observedGeneration"], sts["metadata"]["generation"]);
    for i in 0..3 {
        let pod = json_of(
            &k,
            &["get", "pod", &format!("db-{i}"), "-n", "apps", "-o", "json"],
        )
        .await;
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], format!("db-{i}"));
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert_eq!(labels["controller-revision-hash"], revision.as_str());
        assert_eq!(pod["spec"]["hostname"], format!("db-{i}"));
        assert_eq!(pod["spec"]["subdomain"], "db");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert_eq!(pod["status"]["phase"], "Running");
        let pvc = json_of(
            &k,
            &["get", "pvc", &format!("data-db-{i}"), "-n", "apps", "-o", "json"],
        )
        .await;
        assert_eq!(pvc["status"]["phase"], "Bound", "{}", k.label);
    }
    let described = k.ok(&["describe", "statefulset", "db", "-n", "apps"]).await;
    assert!(
        described.contains("create Pod db-2 in StatefulSet db successful"),
        "{}: {described}",
        k.label
    );
    let revisions = items(&json_of(&k, &["get", "controllerrevisions", "-n", "apps", "-o", "json"]).await);
    assert_eq!(
        revisions.iter().map(name).collect::<Vec<_>>(),
        [revision.as_str()]
    );

    // A new image rolls the pods over to a new revision.
    k.patch(
        "statefulset",
        "db",
        "apps",
        "json",
        r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"postgres:17"}]"#,
    )
    .await;
    k.rollout_status("statefulset/db", "apps", "30s").await;
    let store = api.store();
    eventually("every pod on the new revision", || {
        let sts = store.get("statefulsets", "apps", "db").unwrap();
        let new = sts["status"]["updateRevision"].as_str().unwrap_or("").to_string();
        new != revision
            && sts["status"]["currentRevision"] == new.as_str()
            && store.list("pods", Some("apps")).iter().all(|p| {
                p["metadata"]["labels"]["controller-revision-hash"] == new.as_str()
                    && p["spec"]["containers"][0]["image"] == "postgres:17"
            })
    })
    .await;

    // Scale down from the highest ordinal.
    k.patch("statefulset", "db", "apps", "merge", r#"{"spec":{"replicas":1}}"#)
        .await;
    eventually("only db-0 left", || {
        let pods = store.list("pods", Some("apps"));
        pods.len() == 1 && name(&pods[0]) == "db-0"
    })
    .await;
    eventually("status of 1 replica", || {
        store
            .get("statefulsets", "apps", "db")
            .is_some_and(|s| s["status"]["replicas"] == 1 && s["status"]["readyReplicas"] == 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statefulsets_make_ordinal_pods() {
    on_each_kubectl(statefulset_lifecycle).await;
}

const JOB: &str = r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "apps"},
  "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox", "command": ["false"]}]}}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_complete_for_kubectl_wait_and_kube_rs() {
    on_each_kubectl(async |k, _api| {
        let label = k.label;
        let file = k.file("job.json", JOB);
        k.ok(&["create", "-f", file.to_str().unwrap()]).await;
        let waited = k.wait_for("complete", "job/migrate", "apps", "30s").await;
        assert!(waited.contains("condition met"), "{label}: {waited}");
        let job = json_of(&k, &["get", "job", "migrate", "-n", "apps", "-o", "json"]).await;
        let s = &job["status"];
        assert_eq!(s["succeeded"], 1, "{s}");
        assert!(
            s["completionTime"].is_string() && s["startTime"].is_string(),
            "{s}"
        );
        assert_eq!(condition(&job, "Complete")["reason"], "CompletionsReached");
        assert_eq!(condition(&job, "SuccessCriteriaMet")["status"], "True");
        let uid = job["metadata"]["uid"].as_str().unwrap();
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            uid
        );
        assert_eq!(job["metadata"]["labels"]["job-name"], "migrate");
        let pods = items(
            &json_of(
                &k,
                &[
                    "get",
                    "pods",
                    "-n",
                    "apps",
                    "-l",
                    "job-name=migrate",
                    "-o",
                    "json",
                ],
            )
            .await,
        );
        assert_eq!(pods.len(), 1);
        assert!(name(&pods[0]).starts_with("migrate-") && name(&pods[0]).len() == "migrate-".len() + 5);
        assert_eq!(pods[0]["status"]["phase"], "Succeeded");
        assert_eq!(
            pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    })
    .await;

    // kube-rs: a typed Job through to its completion condition.
    let api = start().await;
    let jobs: Api<Job> = Api::namespaced(api.client(), "apps");
    let mut job: Job = serde_json::from_str(JOB).unwrap();
    job.metadata.name = Some("seed".into());
    jobs.create(&PostParams::default(), &job).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(jobs, "seed", conditions::is_job_completed()),
    )
    .await
    .expect("the Job completes")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_collection_background_foreground_orphan() {
    on_each_kubectl(async |k, api| {
        let label = k.label;
        let store = api.store();
        let file = k.file("deploy.json", DEPLOYMENT);

        // Orphan: the ReplicaSet and pods stay, without their owner reference.
        k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
        k.rollout_status("deployment/web", "apps", "30s").await;
        k.ok(&["delete", "deployment", "web", "-n", "apps", "--cascade=orphan"]).await;
        assert!(store.get("deployments", "apps", "web").is_none(), "{label}");
        let rs = store.list("replicasets", Some("apps"));
        assert_eq!(rs.len(), 1, "{label}");
        assert!(rs[0]["metadata"]["ownerReferences"].is_null(), "{label}: {}", rs[0]["metadata"]);
        assert_eq!(store.list("pods", Some("apps")).len(), 2);
        // The same Deployment again adopts the orphaned ReplicaSet instead of making another.
        k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
        k.rollout_status("deployment/web", "apps", "30s").await;
        let new_uid = store.get("deployments", "apps", "web").unwrap()["metadata"]["uid"].clone();
        eventually("the orphan adopted", || {
            let now = store.list("replicasets", Some("apps"));
            now.len() == 1 && name(&now[0]) == name(&rs[0]) && now[0]["metadata"]["ownerReferences"][0]["uid"] == new_uid
        })
        .await;
        assert_eq!(store.list("pods", Some("apps")).len(), 2);

        // Foreground: kubectl waits until the dependents are gone, then the Deployment goes.
        k.ok(&["delete", "deployment", "web", "-n", "apps", "--cascade=foreground"]).await;
        assert!(store.get("deployments", "apps", "web").is_none(), "{label}");
        assert!(store.list("replicasets", Some("apps")).is_empty(), "{label}");
        assert!(store.list("pods", Some("apps")).is_empty(), "{label}");

        // Foreground with a dependent held by a finalizer: the owner waits with `foregroundDeletion`.
        let owner = k.file("owner.json", r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": "apps"}}"#);
        k.ok(&["create", "-f", owner.to_str().unwrap()]).await;
        let owner_uid = store.get("configmaps", "apps", "owner").unwrap()["metadata"]["uid"].clone();
        let dependent = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dependent", "namespace": "apps",
            "finalizers": ["example.com/hold"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid, "blockOwnerDeletion": true}]}});
        let file = k.file("dependent.json", &dependent.to_string());
        k.ok(&["create", "-f", file.to_str().unwrap()]).await;
        k.ok(&["delete", "configmap", "owner", "-n", "apps", "--cascade=foreground", "--wait=false"]).await;
        eventually("the dependent marked for deletion", || {
            store.get("configmaps", "apps", "dependent").is_some_and(|d| d["metadata"]["deletionTimestamp"].is_string())
        })
        .await;
        let owner = json_of(&k, &["get", "configmap", "owner", "-n", "apps", "-o", "json"]).await;
        assert!(owner["metadata"]["deletionTimestamp"].is_string(), "{label}: {owner}");
        assert_eq!(owner["metadata"]["finalizers"], json!(["foregroundDeletion"]), "{label}");
        k.patch("configmap", "dependent", "apps", "merge", r#"{"metadata":{"finalizers":null}}"#).await;
        k.ok(&["wait", "--for=delete", "configmap/owner", "-n", "apps", "--timeout=10s"]).await;
        assert!(store.get("configmaps", "apps", "dependent").is_none());
    })
    .await;

    // kube-rs: DeleteParams::foreground on a typed Deployment.
    let api = start().await;
    let deployments: Api<Deployment> = Api::namespaced(api.client(), "apps");
    let dep: Deployment = serde_json::from_str(DEPLOYMENT).unwrap();
    deployments.create(&PostParams::default(), &dep).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deployments.clone(), "web", conditions::is_deployment_completed()),
    )
    .await
    .expect("the Deployment completes")
    .unwrap();
    let uid = deployments.get("web").await.unwrap().metadata.uid.unwrap();
    let store = api.store();
    deployments
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deployments, "web", conditions::is_deleted(&uid)),
    )
    .await
    .expect("the Deployment goes")
    .unwrap();
    assert!(
        store.list("replicasets", Some("apps")).is_empty() && store.list("pods", Some("apps")).is_empty()
    );

    // An unknown policy is refused as the API server refuses it, and nothing is deleted.
    store
        .insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "apps"}}))
        .unwrap();
    let request = http::Request::delete("/api/v1/namespaces/apps/configmaps/kept")
        .header("content-type", "application/json")
        .body(br#"{"propagationPolicy":"Sideways"}"#.to_vec())
        .unwrap();
    match api.client().request_text(request).await {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 422, "{e:?}");
            assert!(
                e.message.contains("Unsupported value: \"Sideways\""),
                "{}",
                e.message
            );
        }
        other => panic!("an unknown propagationPolicy was not refused: {other:?}"),
    }
    assert!(store.get("configmaps", "apps", "kept").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespace_deletion_terminates_then_removes() {
    on_each_kubectl(async |k, api| {
        let label = k.label;
        let store = api.store();
        // JSON bodies: `kubectl create namespace|configmap` send protobuf, which is another change's work.
        let team = k.file("team.json", r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}"#);
        k.ok(&["create", "-f", team.to_str().unwrap()]).await;
        let ns = json_of(&k, &["get", "namespace", "team", "-o", "json"]).await;
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]), "{label}");
        let held = k.file("held.json", r#"{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "namespace": "team", "finalizers": ["example.com/hold"]}}"#);
        k.ok(&["create", "-f", held.to_str().unwrap()]).await;
        let plain = k.file("plain.json", r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": "team"}}"#);
        k.ok(&["create", "-f", plain.to_str().unwrap()]).await;
        let deploy = k.file("deploy.json", &DEPLOYMENT.replace("\"apps\"", "\"team\""));
        k.ok(&["apply", "-f", deploy.to_str().unwrap()]).await;
        k.rollout_status("deployment/web", "team", "30s").await;

        k.ok(&["delete", "namespace", "team", "--wait=false"]).await;
        eventually("only the held ConfigMap left", || {
            store.list("configmaps", Some("team")).len() == 1
                && store.list("pods", Some("team")).is_empty()
                && store.list("deployments", Some("team")).is_empty()
        })
        .await;
        let ns = json_of(&k, &["get", "namespace", "team", "-o", "json"]).await;
        assert_eq!(ns["status"]["phase"], "Terminating", "{label}");
        assert!(ns["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(condition(&ns, "NamespaceFinalizersRemaining")["status"], "True", "{label}: {}", ns["status"]);
        assert_eq!(
            condition(&ns, "NamespaceFinalizersRemaining")["message"],
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        );
        assert_eq!(condition(&ns, "NamespaceContentRemaining")["reason"], "SomeResourcesRemain");
        // New content is refused while the namespace terminates.
        let late = k.file("late.json", r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "team"}}"#);
        let refused = k.fails(&["create", "-f", late.to_str().unwrap()]).await;
        assert!(refused.contains("because it is being terminated"), "{label}: {refused}");

        k.patch("configmap", "held", "team", "merge", r#"{"metadata":{"finalizers":null}}"#).await;
        k.ok(&["wait", "--for=delete", "namespace/team", "--timeout=10s"]).await;
        assert!(store.get("namespaces", "", "team").is_none());

        // A namespace stuck on content with a finalizer is let go through its `finalize` subresource.
        k.ok(&["create", "-f", team.to_str().unwrap()]).await;
        k.ok(&["create", "-f", held.to_str().unwrap()]).await;
        k.ok(&["delete", "namespace", "team", "--wait=false"]).await;
        let ns = json_of(&k, &["get", "namespace", "team", "-o", "json"]).await;
        assert_eq!(ns["status"]["phase"], "Terminating");
        let mut finalized = ns.clone();
        finalized["spec"]["finalizers"] = json!([]);
        let finalized = k.file("finalized.json", &finalized.to_string());
        k.ok(&["replace", "--raw", "/api/v1/namespaces/team/finalize", "-f", finalized.to_str().unwrap()]).await;
        k.ok(&["wait", "--for=delete", "namespace/team", "--timeout=10s"]).await;
    })
    .await;
}

fn application(name: &str, finalizer: &str) -> String {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "finalizers": [finalizer]},
        "spec": {"project": "team", "source": {"repoURL": "https://example.com/gitops.git", "path": "apps/web", "targetRevision": "HEAD"},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"},
                 "syncPolicy": {"automated": {"prune": true}}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn argocd_applications_sync_and_cascade_on_deletion() {
    on_each_kubectl(async |k, api| {
        let label = k.label;
        let store = api.store();
        // What the Application manages (by tracking label and by tracking annotation), and what it does not.
        let mut deployment: Value = serde_json::from_str(DEPLOYMENT).unwrap();
        deployment["metadata"]["labels"] = json!({"app.kubernetes.io/instance": "web"});
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("web");
        let managed = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-label", "namespace": "apps", "labels": {"app.kubernetes.io/instance": "web"}}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "by-annotation", "namespace": "apps", "annotations": {"argocd.argoproj.io/tracking-id": "web:/Secret:apps/by-annotation"}}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "someone-else", "namespace": "apps", "labels": {"app.kubernetes.io/instance": "other"}}}),
            deployment,
        ];
        for (i, object) in managed.iter().enumerate() {
            let file = k.file(&format!("managed-{i}.json"), &object.to_string());
            k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
        }
        let project = k.file("project.json", r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "team", "namespace": "argocd", "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
            "spec": {"destinations": [{"namespace": "*", "server": "*"}], "sourceRepos": ["*"]}}"#);
        k.ok(&["apply", "-f", project.to_str().unwrap()]).await;
        let app = k.file("app.json", &application("web", "resources-finalizer.argocd.argoproj.io"));
        k.ok(&["apply", "-f", app.to_str().unwrap()]).await;
        k.ok(&["wait", "--for=jsonpath={.status.health.status}=Healthy", "application/web", "-n", "argocd", "--timeout=30s"]).await;
        let app = json_of(&k, &["get", "application", "web", "-n", "argocd", "-o", "json"]).await;
        let s = &app["status"];
        assert_eq!(s["sync"]["status"], "Synced", "{label}: {s}");
        assert_eq!(s["sync"]["comparedTo"]["destination"]["namespace"], "apps");
        assert_eq!(s["sync"]["comparedTo"]["source"]["path"], "apps/web");
        assert_eq!(s["operationState"]["phase"], "Succeeded");
        assert_eq!(s["operationState"]["message"], "successfully synced (all tasks run)");
        assert_eq!(s["operationState"]["operation"]["initiatedBy"]["automated"], true);
        assert_eq!(s["history"][0]["id"], 0);
        assert_eq!(s["controllerNamespace"], "argocd");
        let mut tracked: Vec<String> = s["resources"].as_array().unwrap().iter()
            .map(|r| format!("{}/{}", r["kind"].as_str().unwrap(), r["name"].as_str().unwrap())).collect();
        tracked.sort();
        assert_eq!(tracked, ["ConfigMap/by-label", "Deployment/web", "Secret/by-annotation"], "{label}");

        // The project cannot go while the Application uses it.
        k.ok(&["delete", "appproject", "team", "-n", "argocd", "--wait=false"]).await;
        assert!(store.get("appprojects", "argocd", "team").is_some(), "{label}");

        // Deleting the Application cascades to what it manages, then it goes; the project follows.
        k.ok(&["delete", "application", "web", "-n", "argocd", "--timeout=20s"]).await;
        assert!(store.get("applications", "argocd", "web").is_none());
        for (resource, n) in [("configmaps", "by-label"), ("secrets", "by-annotation"), ("deployments", "web")] {
            assert!(store.get(resource, "apps", n).is_none(), "{label}: {resource}/{n} survived the cascade");
        }
        assert!(store.get("configmaps", "apps", "someone-else").is_some(), "{label}: an untracked object was deleted");
        eventually("the Deployment's pods collected", || store.list("pods", Some("apps")).is_empty()).await;
        k.ok(&["wait", "--for=delete", "appproject/team", "-n", "argocd", "--timeout=10s"]).await;
    })
    .await;

    // kube-rs: the background variant, and an Application without the finalizer leaving its resources.
    let api = start().await;
    let client = api.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "apps");
    for n in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": n, "labels": {"app.kubernetes.io/instance": n}}}),
        )
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let ar = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "Application",
    ));
    let apps: Api<kube::api::DynamicObject> = Api::namespaced_with(client, "argocd", &ar);
    for (n, finalizer) in [
        ("a", "resources-finalizer.argocd.argoproj.io/background"),
        ("b", "example.com/other"),
    ] {
        let body: Value = serde_json::from_str(&application(n, finalizer)).unwrap();
        apps.patch(n, &PatchParams::apply("test"), &Patch::Apply(&body))
            .await
            .unwrap();
    }
    let store = api.store();
    eventually("both Applications synced", || {
        ["a", "b"].iter().all(|n| {
            store
                .get("applications", "argocd", n)
                .is_some_and(|a| a["status"]["sync"]["status"] == "Synced")
        })
    })
    .await;
    apps.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("Application a and its ConfigMap gone", || {
        store.get("applications", "argocd", "a").is_none() && store.get("configmaps", "apps", "a").is_none()
    })
    .await;
    // Without Argo CD's finalizer nothing cascades (another finalizer just holds the Application).
    apps.delete("b", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(DELAY * 3).await;
    assert!(store.get("configmaps", "apps", "b").is_some());
    assert!(
        store
            .get("applications", "argocd", "b")
            .is_some_and(|a| a["metadata"]["deletionTimestamp"].is_string())
    );
}

#[tokio::test]
async fn an_unready_deployment_keeps_its_pods_unready() {
    let api = start().await;
    let store = api.store();
    let mut dep: Value = serde_json::from_str(DEPLOYMENT).unwrap();
    dep["metadata"]["annotations"]["kube-standin/unready"] = json!("readiness probe failed");
    dep["spec"]["progressDeadlineSeconds"] = json!(1);
    let deployments: Api<Deployment> = Api::namespaced(api.client(), "apps");
    deployments
        .create(&PostParams::default(), &serde_json::from_value(dep).unwrap())
        .await
        .unwrap();
    eventually("two unready pods", || {
        let pods = store.list("pods", Some("apps"));
        pods.len() == 2
            && pods.iter().all(|p| {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == "readiness probe failed"
            })
    })
    .await;
    let d = store.get("deployments", "apps", "web").unwrap();
    assert_eq!(condition(&d, "Available")["status"], "False", "{}", d["status"]);
    assert_eq!(condition(&d, "Available")["reason"], "MinimumReplicasUnavailable");
    assert!(d["status"]["availableReplicas"].is_null() && d["status"]["unavailableReplicas"] == 2);
    // No progress for progressDeadlineSeconds: the rollout has failed, and kubectl says so.
    eventually("ProgressDeadlineExceeded", || {
        store.get("deployments", "apps", "web").is_some_and(|d| {
            condition(&d, "Progressing")["reason"] == "ProgressDeadlineExceeded"
                && condition(&d, "Progressing")["status"] == "False"
        })
    })
    .await;
    for (label, bin) in kubectls() {
        let k = Kubectl::new(label, bin, &api);
        let stuck = k
            .fails(&[
                "rollout",
                "status",
                "deployment/web",
                "-n",
                "apps",
                "--timeout=10s",
            ])
            .await;
        assert!(
            stuck.contains("exceeded its progress deadline"),
            "{label}: {stuck}"
        );
    }

    // Lifting the hold lets the rollout finish.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"kube-standin/unready": null}}})),
        )
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(deployments, "web", conditions::is_deployment_completed()),
    )
    .await
    .expect("the Deployment completes once its pods are ready")
    .unwrap();
}

#[tokio::test]
async fn a_daemonset_runs_one_pod_per_node_and_none_without_nodes() {
    let api = start().await;
    let ds = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: exporter, namespace: apps}
spec:
  selector: {matchLabels: {app: exporter}}
  template:
    metadata: {labels: {app: exporter}}
    spec: {containers: [{name: e, image: node-exporter}]}
";
    api.store().insert_yaml(ds).unwrap();
    eventually("rolled out on no node", || {
        let ds = api.store().get("daemonsets", "apps", "exporter").unwrap();
        ds["status"]["observedGeneration"] == 1 && ds["status"]["desiredNumberScheduled"] == 0
    })
    .await;
    api.store()
        .insert_yaml("apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: node-b}\n")
        .unwrap();
    eventually("one ready pod per node", || {
        let ds = api.store().get("daemonsets", "apps", "exporter").unwrap();
        ds["status"]["desiredNumberScheduled"] == 2 && ds["status"]["numberAvailable"] == 2
    })
    .await;
    let mut nodes: Vec<String> = api
        .store()
        .list("pods", Some("apps"))
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["node-a", "node-b"]);
    api.store().delete("nodes", "", "node-b").unwrap();
    eventually("the gone node's pod removed", || {
        api.store().list("pods", Some("apps")).len() == 1
            && api.store().get("daemonsets", "apps", "exporter").unwrap()["status"]["desiredNumberScheduled"]
                == 1
    })
    .await;
}

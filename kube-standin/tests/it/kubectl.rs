//! The real kubectl (1.32 through the PATH dispatcher, and 1.35) against the stand-in. Each build gets
//! its own server; both scenarios run concurrently.

use std::time::Duration;

use kube_standin::StandIn;
use serde_json::Value;

use crate::common::{CNPG_CLUSTER, Kubectl, STATEFULSET_DB, crds, kubectls, spawn_per_kubectl};

const MANIFEST: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: staging
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: staging
stringData:
  password: s3cret
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: staging
  labels:
    app: web
data:
  mode: fast
  extra: gone-later
";

/// Deployed beside [`STATEFULSET_DB`].
const DEPLOYMENT_WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: staging}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
";

async fn start() -> StandIn {
    StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .crd_dir(crds("rabbitmq-cluster-operator"))
        .simulate_ready(Duration::from_millis(300))
        .start()
        .await
        .expect("stand-in starts")
}

fn rv(api: &StandIn, resource: &str, ns: &str, name: &str) -> String {
    let obj = api
        .store()
        .get(resource, ns, name)
        .unwrap_or_else(|| panic!("{resource}/{name} stored"));
    obj["metadata"]["resourceVersion"].as_str().unwrap().to_string()
}

async fn scenario(label: &'static str, bin: std::path::PathBuf) {
    let api = start().await;
    let k = Kubectl::new(label, bin, &api);

    // The dispatcher must have picked 1.32 from /version; 1.35 talks to a 1.32 server too.
    let version = k.ok(&["version", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "32", "{label}");
    let git = v["clientVersion"]["gitVersion"].as_str().unwrap_or("");
    assert!(git.starts_with(&format!("v{label}.")), "{label}: {version}");

    // Discovery lists the loaded CRDs.
    let resources = k.ok(&["api-resources"]).await;
    assert!(
        resources.contains("clusters") && resources.contains("postgresql.cnpg.io/v1"),
        "{label}: {resources}"
    );
    assert!(
        resources.contains("rabbitmqclusters") && resources.contains("rmq"),
        "{label}"
    );
    assert!(
        resources.contains("secrets") && resources.contains("deployments"),
        "{label}"
    );

    // Server-side apply, twice: the second leaves the resourceVersion alone.
    let manifest = k.file("manifest.yaml", MANIFEST);
    let m = manifest.to_str().unwrap();
    let out = k.ok(&["apply", "--server-side", "-f", m]).await;
    assert!(
        out.contains("namespace/staging serverside-applied")
            && out.contains("secret/creds serverside-applied"),
        "{label}: {out}"
    );
    let rv1 = rv(&api, "configmaps", "staging", "settings");
    k.ok(&["apply", "--server-side", "-f", m]).await;
    assert_eq!(
        rv(&api, "configmaps", "staging", "settings"),
        rv1,
        "{label}: re-apply must be a no-op"
    );

    // A field dropped from the manifest disappears on re-apply.
    let trimmed = k.file("trimmed.yaml", &MANIFEST.replace("  extra: gone-later\n", ""));
    k.ok(&["apply", "--server-side", "-f", trimmed.to_str().unwrap()])
        .await;
    let cm = api.store().get("configmaps", "staging", "settings").unwrap();
    assert!(cm["data"].get("extra").is_none(), "{label}: {cm}");
    assert_eq!(cm["data"]["mode"], "fast");

    // stringData was folded into data.
    let pw = k
        .ok(&[
            "get",
            "secret",
            "creds",
            "-n",
            "staging",
            "-o",
            "jsonpath={.data.password}",
        ])
        .await;
    assert_eq!(pw, "czNjcmV0", "{label}");

    // Dry run stores nothing.
    let cluster = k.file("cluster.yaml", CNPG_CLUSTER);
    let c = cluster.to_str().unwrap();
    let out = k
        .ok(&["apply", "--server-side", "--dry-run=server", "-f", c])
        .await;
    assert!(
        out.contains("serverside-applied (server dry run)"),
        "{label}: {out}"
    );
    assert!(
        api.store().get("clusters", "staging", "database").is_none(),
        "{label}: dry run persisted"
    );

    // Apply for real, then wait for the simulated operator.
    k.ok(&["apply", "--server-side", "-f", c]).await;
    let waited = k.wait_for("Ready", "cluster/database", "staging", "20s").await;
    assert!(waited.contains("condition met"), "{label}: {waited}");
    let phase = k
        .ok(&[
            "get",
            "clusters.postgresql.cnpg.io",
            "database",
            "-n",
            "staging",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await;
    assert_eq!(phase, "Cluster in healthy state", "{label}");

    // Workload rollouts complete through the simulated controllers.
    let workloads = k.file(
        "workloads.yaml",
        &format!("{DEPLOYMENT_WEB}---\n{STATEFULSET_DB}"),
    );
    k.ok(&["apply", "--server-side", "-f", workloads.to_str().unwrap()])
        .await;
    let rolled = k.rollout_status("deployment/web", "staging", "20s").await;
    assert!(rolled.contains("successfully rolled out"), "{label}: {rolled}");
    let rolled = k.rollout_status("statefulset/db", "staging", "20s").await;
    assert!(
        rolled.contains("roll out complete") || rolled.contains("rolled out"),
        "{label}: {rolled}"
    );

    // get, get -o json, selectors, all namespaces.
    let listed = k
        .ok(&["get", "configmaps", "-n", "staging", "-l", "app in (web,api)"])
        .await;
    assert!(listed.contains("settings"), "{label}: {listed}");
    let none = k
        .ok(&[
            "get",
            "configmaps",
            "-n",
            "staging",
            "-l",
            "app!=web",
            "-o",
            "name",
        ])
        .await;
    assert!(!none.contains("settings"), "{label}: {none}");
    let json = k
        .ok(&["get", "cluster", "database", "-n", "staging", "-o", "json"])
        .await;
    let obj: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(obj["kind"], "Cluster");
    assert_eq!(obj["status"]["readyInstances"], 1);
    let all = k
        .ok(&[
            "get",
            "secrets",
            "-A",
            "--field-selector",
            "metadata.name=creds",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(all.trim(), "secret/creds", "{label}");

    // Errors as the real server words them.
    let nf = k.fails(&["get", "pod", "nope"]).await;
    assert!(
        nf.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{label}: {nf}"
    );
    let cm2 = k.file(
        "cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: once, namespace: default}\n",
    );
    k.ok(&["create", "-f", cm2.to_str().unwrap()]).await;
    let dup = k.fails(&["create", "-f", cm2.to_str().unwrap()]).await;
    assert!(
        dup.contains("(AlreadyExists)") && dup.contains("configmaps \"once\" already exists"),
        "{label}: {dup}"
    );
    let stale = k.file(
        "stale.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: once, namespace: default, resourceVersion: \"1\"}\ndata: {a: b}\n",
    );
    let conflict = k.fails(&["replace", "-f", stale.to_str().unwrap()]).await;
    assert!(
        conflict.contains("(Conflict)") && conflict.contains("the object has been modified"),
        "{label}: {conflict}"
    );

    // A custom resource that violates the CRD schema.
    let bad = k.file(
        "bad.yaml",
        &CNPG_CLUSTER
            .replace("name: database", "name: bad")
            .replace("instances: 1", "instances: three"),
    );
    let invalid = k.fails(&["create", "-f", bad.to_str().unwrap()]).await;
    assert!(
        invalid.contains("spec.instances: Invalid value: \"string\": spec.instances in body must be of type integer: \"string\""),
        "{label}: {invalid}"
    );
    assert!(api.store().get("clusters", "staging", "bad").is_none());

    // Watch: ended by the client's request timeout, after printing the current object.
    let watched = k
        .run(&[
            "get",
            "configmaps",
            "-n",
            "staging",
            "--watch",
            "--request-timeout=2s",
        ])
        .await;
    assert!(watched.stdout.contains("settings"), "{label}: {watched:?}");

    // Delete.
    let deleted = k.ok(&["delete", "configmap", "once"]).await;
    assert!(
        deleted.contains("configmap \"once\" deleted"),
        "{label}: {deleted}"
    );
    assert!(api.store().get("configmaps", "default", "once").is_none());
    let gone = k.fails(&["delete", "configmap", "once"]).await;
    assert!(gone.contains("not found"), "{label}: {gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_132_and_135_against_the_stand_in() {
    spawn_per_kubectl(scenario).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_crds_applied_at_run_time() {
    let api = StandIn::builder().start().await.unwrap();
    for (label, bin) in kubectls() {
        let k = Kubectl::new(label, bin, &api);
        let before = k.ok(&["api-resources"]).await;
        assert!(!before.contains("rabbitmqclusters"));
        let crd = crds("rabbitmq-cluster-operator").join("rabbitmq.com_rabbitmqclusters.yaml");
        k.ok(&["apply", "--server-side", "-f", crd.to_str().unwrap()])
            .await;
        k.ok(&[
            "wait",
            "--for",
            "condition=established",
            "crd/rabbitmqclusters.rabbitmq.com",
            "--timeout=10s",
        ])
        .await;
        let after = k.ok(&["api-resources"]).await;
        assert!(after.contains("rabbitmqclusters"), "{label}: {after}");
        k.ok(&["delete", "crd", "rabbitmqclusters.rabbitmq.com"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patches_finalizers_namespaces_and_faults() {
    for (label, bin) in kubectls() {
        let api = StandIn::builder()
            .crd_dir(crds("cloudnative-pg"))
            .seed_yaml(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team}}\n---\n{CNPG_CLUSTER}---
apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: team}}\ndata: {{a: \"1\"}}\n"
            ))
            .start()
            .await
            .unwrap();
        let k = Kubectl::new(label, bin, &api);
        let cm = |field: &str| api.store().get("configmaps", "team", "c").unwrap()["data"][field].clone();

        k.patch("configmap", "c", "team", "merge", r#"{"data":{"b":"2"}}"#)
            .await;
        assert_eq!(cm("b"), "2", "{label}");
        k.patch(
            "configmap",
            "c",
            "team",
            "json",
            r#"[{"op":"remove","path":"/data/a"}]"#,
        )
        .await;
        assert!(cm("a").is_null(), "{label}");
        k.ok(&["-n", "team", "label", "configmap", "c", "tier=db"]).await;
        k.ok(&["-n", "team", "annotate", "configmap", "c", "note=x"])
            .await;
        let obj = api.store().get("configmaps", "team", "c").unwrap();
        assert_eq!(
            (
                obj["metadata"]["labels"]["tier"].as_str(),
                obj["metadata"]["annotations"]["note"].as_str()
            ),
            (Some("db"), Some("x"))
        );

        // The status subresource: kubectl patch --subresource=status changes status only.
        k.ok(&[
            "-n",
            "staging",
            "patch",
            "cluster",
            "database",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Setting up primary"},"spec":{"instances":5}}"#,
        ])
        .await;
        let cluster = api.store().get("clusters", "staging", "database").unwrap();
        assert_eq!(
            (
                cluster["status"]["phase"].as_str(),
                cluster["spec"]["instances"].as_i64()
            ),
            (Some("Setting up primary"), Some(1))
        );
        k.patch(
            "cluster",
            "database",
            "staging",
            "merge",
            r#"{"status":{"phase":"x"},"spec":{"instances":2}}"#,
        )
        .await;
        let cluster = api.store().get("clusters", "staging", "database").unwrap();
        assert_eq!(
            (
                cluster["status"]["phase"].as_str(),
                cluster["spec"]["instances"].as_i64()
            ),
            (Some("Setting up primary"), Some(2))
        );
        assert_eq!(cluster["metadata"]["generation"], 2);

        // A finalizer holds deletion until it is removed.
        k.patch(
            "configmap",
            "c",
            "team",
            "merge",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        )
        .await;
        k.ok(&["-n", "team", "delete", "configmap", "c", "--wait=false"])
            .await;
        assert!(
            api.store().get("configmaps", "team", "c").unwrap()["metadata"]["deletionTimestamp"].is_string()
        );
        k.patch(
            "configmap",
            "c",
            "team",
            "merge",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
        assert!(api.store().get("configmaps", "team", "c").is_none(), "{label}");

        // Faults: a 500 fails the command with the server's message; a 429 with Retry-After is retried.
        api.add_fault(kube_standin::Fault::error(500).on_method("PATCH").times(1));
        let err = k
            .fails(&["-n", "team", "label", "namespace", "team", "x=y"])
            .await;
        assert!(
            err.contains("InternalError") && err.contains("injected by kube-standin"),
            "{label}: {err}"
        );
        api.add_fault(
            kube_standin::Fault::too_many_requests(1)
                .on_method("PATCH")
                .times(1),
        );
        k.ok(&["label", "namespace", "team", "x=y"]).await;
        let codes: Vec<u16> = api
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == "/api/v1/namespaces/team")
            .map(|r| r.status)
            .collect();
        assert_eq!(codes, [500, 429, 200], "{label}");

        // kubectl port-forward needs SPDY, which is not served: it must fail fast and say so.
        api.store()
            .insert_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: team}\nspec: {containers: [{name: c, image: i}]}\nstatus: {phase: Running}\n")
            .unwrap();
        let err = k.fails(&["-n", "team", "port-forward", "pod/p", ":5432"]).await;
        assert!(
            err.contains("does not implement SPDY port-forward"),
            "{label}: {err}"
        );

        // Deleting a namespace removes what it holds.
        let out = k.ok(&["delete", "namespace", "team"]).await;
        assert!(out.contains("namespace \"team\" deleted"), "{label}: {out}");
        assert!(
            api.store().list("configmaps", Some("team")).is_empty()
                && api.store().get("namespaces", "", "team").is_none()
        );
    }
}

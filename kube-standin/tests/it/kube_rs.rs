//! kube-rs 5 against the stand-in: discovery, server-side apply, conditions, retries, watchers.

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use kube::runtime::{WatchStreamExt, watcher};
use kube_standin::{Fault, StandIn};
use serde_json::json;

use crate::common::crds;

fn cluster_api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster");
    Api::namespaced_with(client, ns, &ApiResource::from_gvk_with_plural(&gvk, "clusters"))
}

#[tokio::test]
async fn discovery_plain_and_aggregated_see_crd_groups() {
    let api = StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .crd_dir(crds("argocd-application"))
        .start()
        .await
        .unwrap();
    let client = api.client();
    for aggregated in [false, true] {
        let d = Discovery::new(client.clone());
        let d = if aggregated {
            d.run_aggregated().await.unwrap()
        } else {
            d.run().await.unwrap()
        };
        let groups: Vec<String> = d.groups().map(|g| g.name().to_string()).collect();
        for want in ["", "apps", "postgresql.cnpg.io", "argoproj.io"] {
            assert!(
                groups.iter().any(|g| g == want),
                "aggregated={aggregated}: {groups:?}"
            );
        }
        let (ar, caps) = d
            .resolve_gvk(&GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster"))
            .unwrap();
        assert_eq!(ar.plural, "clusters");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(s, _)| s.plural == "clusters/status" || s.plural == "status"),
            "{caps:?}"
        );
    }
    let (ar, _) = kube::discovery::pinned_kind(&client, &GroupVersionKind::gvk("", "v1", "Pod"))
        .await
        .unwrap();
    assert_eq!(ar.plural, "pods");
    assert_eq!(client.apiserver_version().await.unwrap().minor, "32");
}

#[tokio::test]
async fn server_side_apply_with_dynamic_objects() {
    let api = StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
        .start()
        .await
        .unwrap();
    let clusters = cluster_api(api.client(), "staging");
    let body = json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "database", "labels": {"team": "a"}},
        "spec": {"instances": 1, "storage": {"size": "1Gi"}}
    });
    let pp = PatchParams::apply("duli-env");
    let first = clusters
        .patch("database", &pp, &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    let again = clusters
        .patch("database", &pp, &Patch::Apply(&body))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version, first.metadata.resource_version,
        "no-op re-apply"
    );
    assert!(
        again
            .metadata
            .managed_fields
            .as_ref()
            .is_some_and(|m| m[0].manager.as_deref() == Some("duli-env"))
    );

    // Another manager changing an owned field conflicts, unless forced.
    let other = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "database"},
                       "spec": {"instances": 3}});
    let err = clusters
        .patch(
            "database",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&other),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("conflict with \"duli-env\"") && s.message.contains(".spec.instances"),
                "{}",
                s.message
            );
        }
        e => panic!("expected a conflict, got {e}"),
    }
    let forced = clusters
        .patch(
            "database",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["instances"], 3);
    assert_eq!(forced.metadata.generation, Some(2));

    // Status in a main-resource write is dropped; the status subresource takes it, generation stays.
    let main = clusters
        .patch(
            "database",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Setting up primary"}})),
        )
        .await
        .unwrap();
    assert!(main.data.get("status").is_none(), "{:?}", main.data);
    let status = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "database"},
                        "status": {"phase": "Setting up primary"}});
    let st = clusters
        .patch_status("database", &PatchParams::apply("op"), &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Setting up primary");
    assert_eq!(st.data["spec"]["instances"], 3);
    assert_eq!(
        st.metadata.generation, main.metadata.generation,
        "status writes keep generation"
    );

    // A manager that stops applying a field it alone owned prunes it.
    let trimmed = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "database"},
                         "spec": {"instances": 3, "storage": {"size": "1Gi"}}});
    let pruned = clusters
        .patch(
            "database",
            &PatchParams::apply("duli-env"),
            &Patch::Apply(&trimmed),
        )
        .await
        .unwrap();
    assert!(
        pruned
            .metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key("team")),
        "{:?}",
        pruned.metadata.labels
    );

    // Dry run leaves storage unchanged.
    let rv = api.store().resource_version();
    let mut dry = PatchParams::apply("duli-env");
    dry.dry_run = true;
    clusters
        .patch(
            "other",
            &dry,
            &Patch::Apply(&json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "other"}, "spec": {"instances": 1, "storage": {"size": "1Gi"}}})),
        )
        .await
        .unwrap();
    assert_eq!(api.store().resource_version(), rv);
    assert!(api.store().get("clusters", "staging", "other").is_none());

    // Schema errors surface as 422 Invalid.
    let bad = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "bad"}, "spec": {"instances": "x"}});
    match clusters.patch("bad", &pp, &Patch::Apply(&bad)).await.unwrap_err() {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{}", s.message),
        e => panic!("{e}"),
    }
}

#[tokio::test]
async fn await_condition_on_a_simulated_cluster_and_unready_override() {
    let api = StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
        .simulate_ready(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let clusters = cluster_api(api.client(), "staging");
    let cluster = serde_saphyr::from_str::<DynamicObject>(crate::common::CNPG_CLUSTER).unwrap();
    clusters.create(&PostParams::default(), &cluster).await.unwrap();
    let ready = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.data["status"]["conditions"].as_array().cloned())
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::wait::await_condition(clusters.clone(), "database", ready),
    )
    .await
    .expect("ready in time")
    .unwrap()
    .unwrap();
    assert_eq!(done.data["status"]["currentPrimary"], "database-1");
    // Side objects as the operator creates them.
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    let app = secrets.get("database-app").await.unwrap();
    assert!(app.data.unwrap().contains_key("password"));
    assert!(api.store().get("services", "staging", "database-rw").is_some());

    // An override makes it report unready with the message.
    api.set_unready("clusters", "staging", "database", "disk full")
        .unwrap();
    let unready = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.data["status"]["conditions"].as_array().cloned())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "False" && c["message"] == "disk full")
            })
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        kube::runtime::wait::await_condition(clusters.clone(), "database", unready),
    )
    .await
    .expect("unready in time")
    .unwrap();
}

#[tokio::test]
async fn retries_429_and_reports_500() {
    let api = StandIn::builder()
        .seed_yaml(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\nstringData: {k: v}\n",
        )
        .fault(
            Fault::too_many_requests(1)
                .on_method("GET")
                .on_path("/secrets/s")
                .times(1),
        )
        .start()
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(api.client());
    let s = secrets.get("s").await.expect("kube retries a 429 by default");
    assert_eq!(s.data.unwrap()["k"].0, b"v");
    let codes: Vec<u16> = api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/secrets/s"))
        .map(|r| r.status)
        .collect();
    assert_eq!(codes, vec![429, 200]);

    api.add_fault(Fault::error(500).on_method("PATCH").times(1));
    let err = secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 500), "{err}");
    secrets
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn watcher_survives_dropped_streams_and_expired_versions() {
    let api = StandIn::builder()
        .fault(Fault::drop_watch_after(1).on_path("watch=true").times(2))
        .start()
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(api.client());
    let mut names = std::pin::pin!(
        watcher(cms.clone(), watcher::Config::default())
            .applied_objects()
            .map_ok(|c| c.metadata.name.unwrap_or_default())
    );
    let store = api.store().clone();
    let writer = tokio::spawn(async move {
        for i in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            store.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm{i}"), "namespace": "default"}})).unwrap();
            if i == 2 {
                store.compact(); // the next resume gets 410 Expired and must relist
            }
        }
    });
    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < 4 {
            let name = names.try_next().await.unwrap().unwrap();
            seen.insert(name);
        }
    })
    .await
    .expect("all four objects seen despite dropped watches");
    writer.await.unwrap();
    let watches = api
        .requests()
        .iter()
        .filter(|r| r.query.contains("watch=true"))
        .count();
    assert!(
        watches >= 2,
        "the watcher had to re-watch ({watches} watch requests)"
    );
}

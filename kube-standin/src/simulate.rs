//! Operator simulation (`--simulate-ready`): after a delay, objects get the status their real operator or
//! kubelet would write (workload controllers and Argo CD live in [`crate::controllers`]), with `observedGeneration` set, plus the side objects clients look up
//! (CloudNativePG's `<name>-app` Secret and `-rw/-ro/-r` Services, RabbitMQ's `<name>-default-user`,
//! Keycloak's `<name>-initial-admin`, redis-operator's StatefulSet, pods and Services, ...).
//!
//! Rules: an object is (re)simulated when it appears without a seeded status, when its generation moves,
//! or when its unready override changes. An override — the annotation `kube-standin/unready: "message"`
//! or [`crate::StandIn::set_unready`] — makes the object report not-ready with that message instead.
//! Objects seeded with a status keep it until their spec changes. Side objects are created only when
//! absent, owned by the object (deleting it cascades).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::store::{EventType, ObjKey, Store, WriteCtx};
use crate::util::{get_str, now_rfc3339, random_suffix};

/// The annotation that keeps an object unready, with its value as the message.
pub const UNREADY_ANNOTATION: &str = "kube-standin/unready";

/// Whether a group/resource is simulated.
pub fn is_simulated(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("postgresql.cnpg.io", "clusters")
            | ("rabbitmq.com", _)
            | (
                "redis.redis.opstreelabs.in",
                "redisreplications" | "redisclusters"
            )
            | ("k8s.keycloak.org", "keycloaks" | "keycloakrealmimports")
            | ("cert-manager.io", "certificates" | "issuers" | "clusterissuers")
            | ("", "pods" | "persistentvolumeclaims")
    )
}

/// Sets or clears (`None`) the unready override of one object and re-evaluates it.
pub fn set_unready(
    store: &Store,
    resource: &str,
    namespace: &str,
    name: &str,
    message: Option<String>,
) -> Result<(), Error> {
    let mut st = store.lock();
    let rt = st
        .registry
        .lookup(resource)
        .ok_or_else(|| Error::UnknownResource(resource.into()))?;
    let key = ObjKey::new(&rt, namespace, name);
    match message {
        Some(m) => st.overrides.unready.insert(key.clone(), m),
        None => st.overrides.unready.remove(&key),
    };
    if let Some(tx) = &st.overrides.controller_pokes {
        let _ = tx.send(key.clone());
    }
    if let Some(tx) = &st.overrides.pokes {
        let _ = tx.send(key);
    }
    Ok(())
}

/// What an object's simulated status depends on.
#[derive(Debug, Clone, PartialEq)]
struct Signature {
    uid: String,
    generation: i64,
    unready: Option<String>,
}

fn signature(store: &Store, key: &ObjKey, obj: &Value) -> Signature {
    let st = store.lock();
    let unready = st
        .overrides
        .unready
        .get(key)
        .cloned()
        .or_else(|| get_str(obj, &["metadata", "annotations", UNREADY_ANNOTATION]).map(str::to_string));
    Signature {
        uid: get_str(obj, &["metadata", "uid"]).unwrap_or("").to_string(),
        generation: obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        unready,
    }
}

fn read(store: &Store, key: &ObjKey) -> Option<Value> {
    let st = store.lock();
    let rt = st
        .registry
        .types()
        .iter()
        .find(|t| t.group == key.group && t.plural == key.plural)?
        .clone();
    st.get(&rt, &key.namespace, &key.name).cloned()
}

/// Starts the simulation task.
pub fn spawn(store: Store, delay: Duration) -> JoinHandle<()> {
    let mut events = store.subscribe();
    let (poke_tx, mut pokes) = mpsc::unbounded_channel();
    let initial: Vec<(ObjKey, Value)> = {
        let mut st = store.lock();
        st.overrides.pokes = Some(poke_tx);
        st.all_objects()
    };
    tokio::spawn(async move {
        let mut handled: HashMap<ObjKey, Signature> = HashMap::new();
        let sim = Arc::new(store.clone());
        let consider =
            |key: ObjKey, obj: Option<Value>, fresh: bool, handled: &mut HashMap<ObjKey, Signature>| {
                if !is_simulated(&key.group, &key.plural) {
                    return;
                }
                let Some(obj) = obj.or_else(|| read(&store, &key)) else {
                    handled.remove(&key);
                    return;
                };
                let sig = signature(&store, &key, &obj);
                if handled.get(&key) == Some(&sig) {
                    return;
                }
                handled.insert(key.clone(), sig.clone());
                if fresh && store.lock().overrides.seeded_status.contains(&key) && sig.unready.is_none() {
                    return; // seeded with a status: keep it until the spec changes
                }
                let store = sim.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    reconcile(&store, &key, &sig);
                });
            };
        for (key, obj) in initial {
            consider(key, Some(obj), true, &mut handled);
        }
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(e) => match e.kind {
                        EventType::Deleted => { handled.remove(&e.key); }
                        EventType::Added => consider(e.key.clone(), Some(e.object.clone()), true, &mut handled),
                        EventType::Modified => consider(e.key.clone(), Some(e.object.clone()), false, &mut handled),
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let all = store.lock().all_objects();
                        for (key, obj) in all {
                            consider(key, Some(obj), false, &mut handled);
                        }
                    }
                    Err(_) => return,
                },
                poke = pokes.recv() => match poke {
                    Some(key) => consider(key, None, false, &mut handled),
                    None => return,
                },
            }
        }
    })
}

/// Writes the simulated status (and side objects) if the object still has the signature it was
/// scheduled for.
fn reconcile(store: &Store, key: &ObjKey, sig: &Signature) {
    let Some(obj) = read(store, key) else { return };
    let now_sig = signature(store, key, &obj);
    if now_sig.uid != sig.uid || now_sig.generation != sig.generation || now_sig.unready != sig.unready {
        return; // a newer change has its own timer
    }
    let unready = sig.unready.as_deref();
    let status = desired_status(key, &obj, unready);
    if let Some(status) = status
        && !same_ignoring_times(obj.get("status"), &status)
    {
        let mut st = store.lock();
        let Some(rt) = st
            .registry
            .types()
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
            .cloned()
        else {
            return;
        };
        let mut body = obj.clone();
        body["status"] = status;
        let sub = if rt.has_status() { "status" } else { "" };
        let ctx = WriteCtx {
            manager: manager_for(key).into(),
            subresource: sub.into(),
            seed: sub.is_empty(),
            ..Default::default()
        };
        if let Err(e) = st.replace(&rt, &key.namespace, &key.name, body, &ctx) {
            tracing::warn!(
                "simulation could not write the status of {}/{}: {e}",
                key.plural,
                key.name
            );
        }
    }
    if unready.is_none() {
        for side in side_objects(key, &obj) {
            let kind = get_str(&side, &["kind"]).unwrap_or("").to_string();
            let api_version = get_str(&side, &["apiVersion"]).unwrap_or("").to_string();
            let name = get_str(&side, &["metadata", "name"]).unwrap_or("").to_string();
            let exists = {
                let st = store.lock();
                st.type_for(&api_version, &kind)
                    .is_some_and(|rt| st.get(&rt, &key.namespace, &name).is_some())
            };
            if !exists && let Err(e) = store.insert(side) {
                tracing::warn!("simulation could not create {kind}/{name}: {e}");
            }
        }
    }
}

fn manager_for(key: &ObjKey) -> &'static str {
    match key.group.as_str() {
        "postgresql.cnpg.io" => "cloudnative-pg",
        "rabbitmq.com" => "rabbitmq-operator",
        "redis.redis.opstreelabs.in" => "redis-operator",
        "k8s.keycloak.org" => "keycloak-operator",
        "cert-manager.io" => "cert-manager",
        _ => "kube-controller-manager",
    }
}

/// Compares statuses with every `lastTransitionTime`-like timestamp blanked.
fn same_ignoring_times(current: Option<&Value>, desired: &Value) -> bool {
    fn blank(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let timeish = k.ends_with("Time")
                            || k.ends_with("At")
                            || k == "reconciledAt"
                            || k == "startedAt";
                        (k.clone(), if timeish { Value::Null } else { blank(v) })
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(blank).collect()),
            other => other.clone(),
        }
    }
    current.is_some_and(|c| blank(c) == blank(desired))
}

fn condition(ty: &str, ok: bool, reason: &str, message: &str, generation: i64, now: &str) -> Value {
    json!({
        "type": ty, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message,
        "lastTransitionTime": now, "observedGeneration": generation
    })
}

fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

/// The status the operator would write, or `None` for kinds without one.
fn desired_status(key: &ObjKey, obj: &Value, unready: Option<&str>) -> Option<Value> {
    let name = key.name.as_str();
    let generation = int_at(obj, "/metadata/generation", 1);
    let now = now_rfc3339();
    let ready = unready.is_none();
    let msg = unready.unwrap_or("");
    let status = match (key.group.as_str(), key.plural.as_str()) {
        ("postgresql.cnpg.io", "clusters") => {
            let n = int_at(obj, "/spec/instances", 1);
            let names: Vec<String> = (1..=n).map(|i| format!("{name}-{i}")).collect();
            if ready {
                json!({
                    "phase": "Cluster in healthy state",
                    "instances": n, "readyInstances": n,
                    "currentPrimary": format!("{name}-1"), "targetPrimary": format!("{name}-1"),
                    "currentPrimaryTimestamp": now,
                    "instanceNames": names, "instancesStatus": {"healthy": names},
                    "writeService": format!("{name}-rw"), "readService": format!("{name}-r"),
                    "latestGeneratedNode": n, "timelineID": 1,
                    "conditions": [condition("Ready", true, "ClusterIsReady", "Cluster is Ready", generation, &now)]
                })
            } else {
                json!({
                    "phase": "Setting up primary", "phaseReason": msg,
                    "instances": n, "readyInstances": 0,
                    "targetPrimary": format!("{name}-1"),
                    "conditions": [condition("Ready", false, "ClusterIsNotReady", msg, generation, &now)]
                })
            }
        }
        ("rabbitmq.com", "rabbitmqclusters") => {
            let n = int_at(obj, "/spec/replicas", 1);
            let ns = key.namespace.as_str();
            let mut s = json!({
                "observedGeneration": generation,
                "conditions": [
                    condition("AllReplicasReady", ready, if ready { "AllPodsAreReady" } else { "NotAllPodsReady" },
                              if ready { "" } else { msg }, generation, &now),
                    condition("ClusterAvailable", ready, if ready { "AtLeastOneEndpointAvailable" } else { "NoEndpointsAvailable" },
                              if ready { "" } else { msg }, generation, &now),
                    condition("NoWarnings", true, "NoWarnings", "", generation, &now),
                    condition("ReconcileSuccess", true, "Success", "Finish reconciling", generation, &now)
                ]
            });
            if ready {
                s["defaultUser"] = json!({
                    "secretReference": {"name": format!("{name}-default-user"), "namespace": ns,
                                         "keys": {"username": "username", "password": "password"}},
                    "serviceReference": {"name": name, "namespace": ns}
                });
                s["binding"] = json!({"name": format!("{name}-default-user")});
                s["quorumStatus"] = json!("ok");
                let _ = n;
            }
            s
        }
        ("rabbitmq.com", _) => json!({
            "observedGeneration": generation,
            "conditions": [condition("Ready", ready, if ready { "SuccessfulCreateOrUpdate" } else { "FailedCreateOrUpdate" }, msg, generation, &now)]
        }),
        ("redis.redis.opstreelabs.in", "redisreplications") => {
            if ready {
                json!({
                    "masterNode": format!("{name}-0"),
                    "connectionInfo": {"host": format!("{name}-master.{}.svc.cluster.local", key.namespace), "port": 6379}
                })
            } else {
                json!({})
            }
        }
        ("redis.redis.opstreelabs.in", "redisclusters") => {
            let leaders = int_at(obj, "/spec/clusterSize", 3);
            if ready {
                json!({"state": "Ready", "reason": "RedisCluster is ready", "readyLeaderReplicas": leaders, "readyFollowerReplicas": leaders})
            } else {
                json!({"state": "Initializing", "reason": msg, "readyLeaderReplicas": 0, "readyFollowerReplicas": 0})
            }
        }
        ("k8s.keycloak.org", "keycloaks") => {
            let n = int_at(obj, "/spec/instances", 1);
            json!({
                "observedGeneration": generation,
                "instances": if ready { n } else { 0 },
                "selector": format!("app=keycloak,app.kubernetes.io/managed-by=keycloak-operator,app.kubernetes.io/instance={name}"),
                "conditions": [
                    condition("Ready", ready, "", if ready { "" } else { msg }, generation, &now),
                    condition("HasErrors", false, "", "", generation, &now),
                    condition("RollingUpdate", false, "", "", generation, &now)
                ]
            })
        }
        ("k8s.keycloak.org", "keycloakrealmimports") => json!({
            "conditions": [
                condition("Done", ready, "", if ready { "" } else { msg }, generation, &now),
                condition("Started", !ready, "", "", generation, &now),
                condition("HasErrors", false, "", "", generation, &now)
            ]
        }),
        ("cert-manager.io", _) => json!({
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": if ready { "Ready" } else { "NotReady" }, "message": if ready { "ready" } else { msg },
                            "lastTransitionTime": now, "observedGeneration": generation}]
        }),
        ("", "pods") if ready && run_to_completion(obj) => {
            // A Job's pod: its containers run and exit 0.
            let containers = container_statuses(obj, |c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
                })
            });
            let cond = |t: &str, ok: bool| {
                let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
                if t != "PodScheduled" {
                    c["reason"] = json!("PodCompleted");
                }
                c
            };
            json!({
                "phase": "Succeeded",
                "conditions": [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", false), cond("Ready", false)],
                "hostIP": "10.0.0.1", "podIP": "10.244.0.10", "podIPs": [{"ip": "10.244.0.10"}],
                "startTime": now, "qosClass": "BestEffort",
                "containerStatuses": containers
            })
        }
        ("", "pods") => {
            let containers = container_statuses(obj, |c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "started": ready,
                    "restartCount": 0,
                    "state": if ready { json!({"running": {"startedAt": now}}) } else { json!({"waiting": {"reason": "ContainerCreating", "message": msg}}) }
                })
            });
            let cond = |t: &str, ok: bool| {
                let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
                if !ok {
                    c["reason"] = json!("ContainersNotReady");
                    c["message"] = json!(msg);
                }
                c
            };
            json!({
                "phase": if ready { "Running" } else { "Pending" },
                "conditions": [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", ready), cond("Ready", ready)],
                "hostIP": "10.0.0.1", "podIP": "10.244.0.10", "podIPs": [{"ip": "10.244.0.10"}],
                "startTime": now, "qosClass": "BestEffort",
                "containerStatuses": containers
            })
        }
        ("", "persistentvolumeclaims") => {
            if ready {
                json!({
                    "phase": "Bound",
                    "accessModes": obj.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "capacity": {"storage": obj.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"))}
                })
            } else {
                json!({"phase": "Pending"})
            }
        }
        _ => return None,
    };
    Some(status)
}

/// One status per container of the pod's spec, each built by `status`.
fn container_statuses(pod: &Value, status: impl Fn(&Value) -> Value) -> Vec<Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(status).collect())
        .unwrap_or_default()
}

/// Whether a pod runs to completion instead of serving: a Job's pod.
fn run_to_completion(pod: &Value) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["kind"] == "Job" && r["controller"] == json!(true))
        })
}

fn owner_ref(obj: &Value) -> Value {
    json!([{
        "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
    }])
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(ns: &str, name: &str, owner: &Value, ty: &str, labels: Value, data: &[(&str, String)]) -> Value {
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": ty,
           "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner_ref(owner)},
           "data": data})
}

fn service(ns: &str, name: &str, owner: &Value, selector: Value, ports: Value, headless: bool) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "ownerReferences": owner_ref(owner)},
           "spec": {"type": "ClusterIP", "selector": selector, "ports": ports}});
    if headless {
        s["spec"]["clusterIP"] = json!("None");
    }
    s
}

fn ready_pod(ns: &str, name: &str, owner: &Value, labels: Value, container: &str, image: &str) -> Value {
    let now = now_rfc3339();
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner_ref(owner)},
        "spec": {"containers": [{"name": container, "image": image}]},
        "status": {"phase": "Running", "podIP": "10.244.0.10", "hostIP": "10.0.0.1", "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": [{"name": container, "image": image, "imageID": "", "ready": true, "started": true,
                                   "restartCount": 0, "state": {"running": {"startedAt": now}}}]}})
}

fn ready_statefulset(ns: &str, name: &str, owner: &Value, replicas: i64, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns, "labels": labels.clone(), "ownerReferences": owner_ref(owner)},
        "spec": {"replicas": replicas, "serviceName": format!("{name}-headless"), "selector": {"matchLabels": labels.clone()},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": "standin"}]}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "currentReplicas": replicas, "updatedReplicas": replicas,
                   "currentRevision": format!("{name}-standin"), "updateRevision": format!("{name}-standin")}})
}

fn password(n: usize) -> String {
    let mut p = random_suffix(n);
    p.make_ascii_uppercase();
    format!("{}{}", random_suffix(n / 2), &p[..n - n / 2])
}

/// Objects the operator creates next to a ready object (created only when absent).
fn side_objects(key: &ObjKey, obj: &Value) -> Vec<Value> {
    let ns = key.namespace.as_str();
    let name = key.name.as_str();
    match (key.group.as_str(), key.plural.as_str()) {
        ("postgresql.cnpg.io", "clusters") => {
            let mut out = Vec::new();
            let n = int_at(obj, "/spec/instances", 1);
            let sel = |role: &str| json!({"cnpg.io/cluster": name, role.split('=').next().unwrap(): role.split('=').nth(1).unwrap()});
            let port = json!([{"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432}]);
            out.push(service(
                ns,
                &format!("{name}-rw"),
                obj,
                sel("cnpg.io/instanceRole=primary"),
                port.clone(),
                false,
            ));
            out.push(service(
                ns,
                &format!("{name}-ro"),
                obj,
                sel("cnpg.io/instanceRole=replica"),
                port.clone(),
                false,
            ));
            out.push(service(
                ns,
                &format!("{name}-r"),
                obj,
                sel("cnpg.io/podRole=instance"),
                port,
                false,
            ));
            if obj.pointer("/spec/bootstrap/initdb/secret/name").is_none() {
                let user = get_str(obj, &["spec", "bootstrap", "initdb", "owner"])
                    .unwrap_or("app")
                    .to_string();
                let db = get_str(obj, &["spec", "bootstrap", "initdb", "database"])
                    .unwrap_or("app")
                    .to_string();
                let pass = password(64);
                let host = format!("{name}-rw");
                out.push(secret(
                    ns,
                    &format!("{name}-app"),
                    obj,
                    "kubernetes.io/basic-auth",
                    json!({"cnpg.io/cluster": name, "cnpg.io/userType": "app", "cnpg.io/reload": "true"}),
                    &[
                        ("username", user.clone()),
                        ("user", user.clone()),
                        ("password", pass.clone()),
                        ("dbname", db.clone()),
                        ("host", host.clone()),
                        ("port", "5432".into()),
                        ("pgpass", format!("{host}:5432:{db}:{user}:{pass}\n")),
                        ("uri", format!("postgresql://{user}:{pass}@{host}.{ns}:5432/{db}")),
                        ("jdbc-uri", format!("jdbc:postgresql://{host}.{ns}:5432/{db}?password={pass}&user={user}")),
                        ("fqdn-uri", format!("postgresql://{user}:{pass}@{host}.{ns}.svc.cluster.local:5432/{db}")),
                        ("fqdn-jdbc-uri", format!("jdbc:postgresql://{host}.{ns}.svc.cluster.local:5432/{db}?password={pass}&user={user}")),
                    ],
                ));
            }
            for i in 1..=n {
                let pod = format!("{name}-{i}");
                let role = if i == 1 { "primary" } else { "replica" };
                out.push(ready_pod(
                    ns,
                    &pod,
                    obj,
                    json!({"cnpg.io/cluster": name, "cnpg.io/instanceName": pod, "cnpg.io/podRole": "instance",
                           "cnpg.io/instanceRole": role, "role": role}),
                    "postgres",
                    "ghcr.io/cloudnative-pg/postgresql:17",
                ));
            }
            out
        }
        ("rabbitmq.com", "rabbitmqclusters") => {
            let n = int_at(obj, "/spec/replicas", 1);
            let user = format!("default_user_{}", random_suffix(20));
            let pass = password(32);
            let host = format!("{name}.{ns}.svc");
            let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/component": "rabbitmq", "app.kubernetes.io/part-of": "rabbitmq"});
            let mut out = vec![
                secret(
                    ns,
                    &format!("{name}-default-user"),
                    obj,
                    "Opaque",
                    labels.clone(),
                    &[
                        ("username", user.clone()),
                        ("password", pass.clone()),
                        (
                            "default_user.conf",
                            format!("default_user = {user}\ndefault_pass = {pass}\n"),
                        ),
                        ("provider", "rabbitmq".into()),
                        ("type", "rabbitmq".into()),
                        ("host", host.clone()),
                        ("port", "5672".into()),
                        ("connection_string", format!("amqp://{user}:{pass}@{host}:5672/")),
                    ],
                ),
                service(
                    ns,
                    name,
                    obj,
                    json!({"app.kubernetes.io/name": name}),
                    json!([{"name": "amqp", "port": 5672, "targetPort": 5672}, {"name": "management", "port": 15672, "targetPort": 15672},
                           {"name": "prometheus", "port": 15692, "targetPort": 15692}]),
                    false,
                ),
                service(
                    ns,
                    &format!("{name}-nodes"),
                    obj,
                    json!({"app.kubernetes.io/name": name}),
                    json!([{"name": "epmd", "port": 4369}, {"name": "cluster-rpc", "port": 25672}]),
                    true,
                ),
                ready_statefulset(ns, &format!("{name}-server"), obj, n, labels.clone()),
            ];
            for i in 0..n {
                out.push(ready_pod(
                    ns,
                    &format!("{name}-server-{i}"),
                    obj,
                    labels.clone(),
                    "rabbitmq",
                    "rabbitmq:4",
                ));
            }
            out
        }
        ("redis.redis.opstreelabs.in", "redisreplications") => {
            let n = int_at(obj, "/spec/clusterSize", 1);
            let labels = json!({"app": name, "redis_setup_type": "replication", "role": "replication"});
            let port = json!([{"name": "redis-client", "port": 6379, "targetPort": 6379}]);
            let with_role = |role: &str| {
                let mut l = labels.clone();
                l["redis-role"] = json!(role);
                l
            };
            let mut out = vec![
                ready_statefulset(ns, name, obj, n, labels.clone()),
                service(ns, name, obj, labels.clone(), port.clone(), false),
                service(
                    ns,
                    &format!("{name}-headless"),
                    obj,
                    labels.clone(),
                    port.clone(),
                    true,
                ),
                service(
                    ns,
                    &format!("{name}-master"),
                    obj,
                    with_role("master"),
                    port.clone(),
                    false,
                ),
                service(
                    ns,
                    &format!("{name}-replica"),
                    obj,
                    with_role("slave"),
                    port,
                    false,
                ),
            ];
            for i in 0..n {
                let role = if i == 0 { "master" } else { "slave" };
                out.push(ready_pod(
                    ns,
                    &format!("{name}-{i}"),
                    obj,
                    with_role(role),
                    name,
                    "quay.io/opstree/redis:v7.0.15",
                ));
            }
            out
        }
        ("k8s.keycloak.org", "keycloaks") => {
            let labels = json!({"app": "keycloak", "app.kubernetes.io/managed-by": "keycloak-operator", "app.kubernetes.io/instance": name});
            let n = int_at(obj, "/spec/instances", 1);
            let mut out = vec![
                service(
                    ns,
                    &format!("{name}-service"),
                    obj,
                    labels.clone(),
                    json!([{"name": "http", "port": 8080, "targetPort": 8080}, {"name": "management", "port": 9000, "targetPort": 9000}]),
                    false,
                ),
                service(
                    ns,
                    &format!("{name}-discovery"),
                    obj,
                    labels.clone(),
                    json!([{"name": "tcp", "port": 7800}]),
                    true,
                ),
                ready_statefulset(ns, name, obj, n, labels.clone()),
            ];
            if obj.pointer("/spec/bootstrapAdmin/user/secret").is_none() {
                let pass: String = (0..32)
                    .map(|_| format!("{:x}", rand::random::<u8>() % 16))
                    .collect();
                out.push(secret(
                    ns,
                    &format!("{name}-initial-admin"),
                    obj,
                    "kubernetes.io/basic-auth",
                    labels,
                    &[("username", "temp-admin".into()), ("password", pass)],
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, plural: &str) -> ObjKey {
        ObjKey {
            group: group.into(),
            plural: plural.into(),
            namespace: "staging".into(),
            name: "database".into(),
        }
    }

    #[test]
    fn cnpg_ready_and_unready() {
        let obj = json!({"metadata": {"name": "database", "generation": 3}, "spec": {"instances": 2}});
        let s = desired_status(&key("postgresql.cnpg.io", "clusters"), &obj, None).unwrap();
        assert_eq!(s["phase"], "Cluster in healthy state");
        assert_eq!(s["readyInstances"], 2);
        assert_eq!(s["currentPrimary"], "database-1");
        assert_eq!(s["conditions"][0]["observedGeneration"], 3);
        let u = desired_status(&key("postgresql.cnpg.io", "clusters"), &obj, Some("disk full")).unwrap();
        assert_eq!(u["conditions"][0]["status"], "False");
        assert_eq!(u["conditions"][0]["message"], "disk full");
        let sides = side_objects(&key("postgresql.cnpg.io", "clusters"), &obj);
        let names: Vec<&str> = sides
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "database-rw",
                "database-ro",
                "database-r",
                "database-app",
                "database-1",
                "database-2"
            ]
        );
    }

    #[test]
    fn time_fields_do_not_count() {
        let a = json!({"conditions": [{"type": "Ready", "lastTransitionTime": "1"}], "reconciledAt": "x"});
        let b = json!({"conditions": [{"type": "Ready", "lastTransitionTime": "2"}], "reconciledAt": "y"});
        assert!(same_ignoring_times(Some(&a), &b));
        assert!(!same_ignoring_times(None, &b));
    }
}

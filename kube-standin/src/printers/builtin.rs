//! The built-in kinds' columns and cells, following the API server's own printers
//! (`pkg/printers/internalversion/printers.go`): the same column names, types and priorities
//! (priority 1 = `-o wide` only), the same cell formats (`1/2`, `<none>`, `80/TCP`, ages). The server
//! always generates the wide cells; kubectl drops priority-1 columns itself.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::human_age;

/// One column definition.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// Header as the server names it (`Up-to-date`); kubectl upper-cases it.
    pub name: &'static str,
    /// `string`, `integer`, `boolean`, `date`, `number`.
    pub ty: &'static str,
    /// `name` for the name column, else empty.
    pub format: &'static str,
    /// 0 = always shown, 1 = `-o wide`.
    pub priority: u8,
    /// What the column shows.
    pub description: &'static str,
}

/// Builds the cells of one object's row; `now` makes ages testable.
pub type RowFn = fn(&Value, Timestamp) -> Vec<Value>;

pub(super) const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub(super) const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

const fn col(name: &'static str, ty: &'static str, priority: u8, description: &'static str) -> Col {
    Col {
        name,
        ty,
        format: "",
        priority,
        description,
    }
}

pub(super) const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
    description: NAME_DOC,
};
const AGE: Col = col("Age", "string", 0, AGE_DOC);
const CONTAINERS: Col = col(
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Col = col(
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);
const SELECTOR: Col = col("Selector", "string", 1, "A label query over pods.");

/// The columns and row builder of a built-in kind, `None` when the real server has no printer for it
/// (then the default `Name`/`Created At` table applies).
pub fn for_kind(group: &str, kind: &str) -> Option<(Vec<Col>, RowFn)> {
    let cols = |c: &[Col]| c.to_vec();
    Some(match (group, kind) {
        ("", "Namespace") => (
            cols(&[
                NAME,
                col("Status", "string", 0, "The status of the namespace"),
                AGE,
            ]),
            namespace,
        ),
        ("", "ConfigMap") => (
            cols(&[
                NAME,
                col("Data", "string", 0, "Data contains the configuration data."),
                AGE,
            ]),
            config_map,
        ),
        ("", "Secret") => (
            cols(&[
                NAME,
                col(
                    "Type",
                    "string",
                    0,
                    "Used to facilitate programmatic handling of secret data.",
                ),
                col("Data", "string", 0, "Data contains the secret data."),
                AGE,
            ]),
            secret,
        ),
        ("", "ServiceAccount") => (
            cols(&[
                NAME,
                col("Secrets", "string", 0, "Secrets of this service account."),
                AGE,
            ]),
            service_account,
        ),
        ("", "Service") => (
            cols(&[
                NAME,
                col("Type", "string", 0, "type determines how the Service is exposed."),
                col(
                    "Cluster-IP",
                    "string",
                    0,
                    "clusterIP is the IP address of the service.",
                ),
                col(
                    "External-IP",
                    "string",
                    0,
                    "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
                ),
                col(
                    "Port(s)",
                    "string",
                    0,
                    "The list of ports that are exposed by this service.",
                ),
                AGE,
                col(
                    "Selector",
                    "string",
                    1,
                    "Route service traffic to pods with label keys and values matching this selector.",
                ),
            ]),
            service,
        ),
        ("", "Endpoints") => (
            cols(&[
                NAME,
                col(
                    "Endpoints",
                    "string",
                    0,
                    "The set of all endpoints is the union of all subsets.",
                ),
                AGE,
            ]),
            endpoints,
        ),
        ("", "Pod") => (
            cols(&[
                NAME,
                col(
                    "Ready",
                    "string",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                col(
                    "Status",
                    "string",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                col(
                    "Restarts",
                    "string",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                ),
                AGE,
                col("IP", "string", 1, "podIP address allocated to the pod."),
                col(
                    "Node",
                    "string",
                    1,
                    "NodeName indicates in which node this pod is scheduled.",
                ),
                col(
                    "Nominated Node",
                    "string",
                    1,
                    "nominatedNodeName is set only when this pod preempts other pods on the node.",
                ),
                col(
                    "Readiness Gates",
                    "string",
                    1,
                    "If specified, all readiness gates will be evaluated for pod readiness.",
                ),
            ]),
            pod,
        ),
        ("", "PersistentVolumeClaim") => (
            cols(&[
                NAME,
                col(
                    "Status",
                    "string",
                    0,
                    "phase represents the current phase of PersistentVolumeClaim.",
                ),
                col(
                    "Volume",
                    "string",
                    0,
                    "volumeName is the binding reference to the PersistentVolume backing this claim.",
                ),
                col(
                    "Capacity",
                    "string",
                    0,
                    "capacity represents the actual resources of the underlying volume.",
                ),
                col(
                    "Access Modes",
                    "string",
                    0,
                    "accessModes contains the actual access modes the volume backing the PVC has.",
                ),
                col("StorageClass", "string", 0, "StorageClass of the pvc"),
                col(
                    "VolumeAttributesClass",
                    "string",
                    0,
                    "VolumeAttributesClass of the pvc",
                ),
                AGE,
                col(
                    "VolumeMode",
                    "string",
                    1,
                    "volumeMode defines what type of volume is required by the claim.",
                ),
            ]),
            pvc,
        ),
        ("", "Event") => (
            cols(&[
                col(
                    "Last Seen",
                    "string",
                    0,
                    "The time at which the most recent occurrence of this event was recorded.",
                ),
                col(
                    "Type",
                    "string",
                    0,
                    "Type of this event (Normal, Warning), new types could be added in the future",
                ),
                col(
                    "Reason",
                    "string",
                    0,
                    "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                ),
                col("Object", "string", 0, "The object that this event is about."),
                col(
                    "Subobject",
                    "string",
                    1,
                    "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.",
                ),
                col("Source", "string", 1, "The component reporting this event."),
                col(
                    "Message",
                    "string",
                    0,
                    "A human-readable description of the status of this operation.",
                ),
                col(
                    "First Seen",
                    "string",
                    1,
                    "The time at which the event was first recorded.",
                ),
                col(
                    "Count",
                    "string",
                    1,
                    "The number of times this event has occurred.",
                ),
                Col { priority: 1, ..NAME },
            ]),
            event,
        ),
        ("apps", "Deployment") => (
            cols(&[
                NAME,
                col("Ready", "string", 0, "Number of the pod with ready state"),
                col(
                    "Up-to-date",
                    "string",
                    0,
                    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                ),
                col(
                    "Available",
                    "string",
                    0,
                    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                ),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ]),
            deployment,
        ),
        ("apps", "StatefulSet") => (
            cols(&[
                NAME,
                col("Ready", "string", 0, "Number of the pod with ready state"),
                AGE,
                CONTAINERS,
                IMAGES,
            ]),
            stateful_set,
        ),
        ("apps", "ReplicaSet") => (
            cols(&[
                NAME,
                col(
                    "Desired",
                    "integer",
                    0,
                    "Replicas is the number of desired replicas.",
                ),
                col(
                    "Current",
                    "integer",
                    0,
                    "Replicas is the most recently observed number of replicas.",
                ),
                col(
                    "Ready",
                    "integer",
                    0,
                    "The number of ready replicas for this replica set.",
                ),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ]),
            replica_set,
        ),
        ("apps", "DaemonSet") => (
            cols(&[
                NAME,
                col(
                    "Desired",
                    "integer",
                    0,
                    "The total number of nodes that should be running the daemon pod.",
                ),
                col(
                    "Current",
                    "integer",
                    0,
                    "The number of nodes that are running at least 1 daemon pod.",
                ),
                col(
                    "Ready",
                    "integer",
                    0,
                    "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
                ),
                col(
                    "Up-to-date",
                    "integer",
                    0,
                    "The total number of nodes that are running updated daemon pod",
                ),
                col(
                    "Available",
                    "integer",
                    0,
                    "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
                ),
                col(
                    "Node Selector",
                    "string",
                    0,
                    "NodeSelector is a selector which must be true for the pod to fit on a node.",
                ),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ]),
            daemon_set,
        ),
        ("batch", "Job") => (
            cols(&[
                NAME,
                col("Status", "string", 0, "Status of the job."),
                col(
                    "Completions",
                    "string",
                    0,
                    "The number of pods which reached phase Succeeded.",
                ),
                col("Duration", "string", 0, "Time required to complete the job."),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ]),
            job,
        ),
        ("batch", "CronJob") => (
            cols(&[
                NAME,
                col("Schedule", "string", 0, "The schedule in Cron format."),
                col(
                    "Timezone",
                    "string",
                    0,
                    "The time zone name for the given schedule.",
                ),
                col(
                    "Suspend",
                    "boolean",
                    0,
                    "This flag tells the controller to suspend subsequent executions.",
                ),
                col(
                    "Active",
                    "integer",
                    0,
                    "A list of pointers to currently running jobs.",
                ),
                col(
                    "Last Schedule",
                    "string",
                    0,
                    "Information when was the last time the job was successfully scheduled.",
                ),
                AGE,
                CONTAINERS,
                IMAGES,
                SELECTOR,
            ]),
            cron_job,
        ),
        ("networking.k8s.io", "Ingress") => (
            cols(&[
                NAME,
                col(
                    "Class",
                    "string",
                    0,
                    "The name of the IngressClass resource that should be used for additional configuration",
                ),
                col(
                    "Hosts",
                    "string",
                    0,
                    "Hosts that incoming requests are matched against before the ingress rule",
                ),
                col(
                    "Address",
                    "string",
                    0,
                    "Address is a list containing ingress points for the load-balancer",
                ),
                col("Ports", "string", 0, "Ports of TLS configurations that open"),
                AGE,
            ]),
            ingress,
        ),
        ("policy", "PodDisruptionBudget") => (
            cols(&[
                NAME,
                col(
                    "Min Available",
                    "string",
                    0,
                    "The minimum number of pods that must be available.",
                ),
                col(
                    "Max Unavailable",
                    "string",
                    0,
                    "The maximum number of pods that may be unavailable.",
                ),
                col(
                    "Allowed Disruptions",
                    "integer",
                    0,
                    "Calculated number of pods that may be disrupted at this time.",
                ),
                AGE,
            ]),
            pdb,
        ),
        ("autoscaling", "HorizontalPodAutoscaler") => (
            cols(&[
                NAME,
                col(
                    "Reference",
                    "string",
                    0,
                    "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource.",
                ),
                col(
                    "Targets",
                    "string",
                    0,
                    "metrics contains the specifications for which to use to calculate the desired replica count.",
                ),
                col(
                    "MinPods",
                    "string",
                    0,
                    "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
                ),
                col(
                    "MaxPods",
                    "string",
                    0,
                    "maxReplicas is the upper limit for the number of pods that can be set by the autoscaler.",
                ),
                col(
                    "Replicas",
                    "string",
                    0,
                    "current number of replicas of pods managed by this autoscaler.",
                ),
                AGE,
            ]),
            hpa,
        ),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => (
            cols(&[
                NAME,
                col(
                    "Role",
                    "string",
                    0,
                    "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
                ),
                AGE,
                col("Users", "string", 1, "Users in the roleBinding"),
                col("Groups", "string", 1, "Groups in the roleBinding"),
                col(
                    "ServiceAccounts",
                    "string",
                    1,
                    "ServiceAccounts in the roleBinding",
                ),
            ]),
            role_binding,
        ),
        ("storage.k8s.io", "StorageClass") => (
            cols(&[
                NAME,
                col(
                    "Provisioner",
                    "string",
                    0,
                    "provisioner indicates the type of the provisioner.",
                ),
                col(
                    "ReclaimPolicy",
                    "string",
                    0,
                    "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
                ),
                col(
                    "VolumeBindingMode",
                    "string",
                    0,
                    "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
                ),
                col(
                    "AllowVolumeExpansion",
                    "string",
                    0,
                    "allowVolumeExpansion shows whether the storage class allow volume expand.",
                ),
                AGE,
            ]),
            storage_class,
        ),
        _ => return None,
    })
}

fn s<'a>(o: &'a Value, path: &str) -> &'a str {
    o.pointer(path).and_then(Value::as_str).unwrap_or("")
}

fn i(o: &Value, path: &str) -> i64 {
    o.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

fn len(o: &Value, path: &str) -> i64 {
    match o.pointer(path) {
        Some(Value::Array(a)) => a.len() as i64,
        Some(Value::Object(m)) => m.len() as i64,
        _ => 0,
    }
}

fn name(o: &Value) -> Value {
    json!(s(o, "/metadata/name"))
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

/// `translateTimestampSince`: a human age, `<unknown>` when the timestamp is missing.
pub(super) fn since(ts: &str, now: Timestamp) -> String {
    match ts.parse::<Timestamp>() {
        Ok(t) => human_age(now.duration_since(t)),
        Err(_) => "<unknown>".into(),
    }
}

fn age(o: &Value, now: Timestamp) -> Value {
    json!(since(s(o, "/metadata/creationTimestamp"), now))
}

fn strings(o: &Value, path: &str, field: &str) -> Vec<String> {
    o.pointer(path)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| c.get(field).and_then(Value::as_str).unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `layoutContainerCells`: container names and images, comma-joined.
fn containers(o: &Value, spec: &str) -> [Value; 2] {
    let path = format!("{spec}/containers");
    [
        json!(strings(o, &path, "name").join(",")),
        json!(strings(o, &path, "image").join(",")),
    ]
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
fn format_labels(m: Option<&Value>) -> String {
    let Some(Value::Object(m)) = m else {
        return "<none>".into();
    };
    if m.is_empty() {
        return "<none>".into();
    }
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key.
pub fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else { return String::new() };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(m)) = sel.get("matchLabels") {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        values.sort();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort();
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

/// `metav1.FormatLabelSelector`: like [`selector_string`] but `<none>` when empty.
fn format_selector(sel: Option<&Value>) -> String {
    or_none(&selector_string(sel))
}

fn namespace(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(o), json!(s(o, "/status/phase")), age(o, now)]
}

fn config_map(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(o),
        json!(len(o, "/data") + len(o, "/binaryData")),
        age(o, now),
    ]
}

fn secret(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(o), json!(s(o, "/type")), json!(len(o, "/data")), age(o, now)]
}

fn service_account(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(o), json!(len(o, "/secrets")), age(o, now)]
}

/// Load-balancer IPs (else hostnames), sorted and without duplicates as the server's string sets are.
fn load_balancer_ingress(o: &Value, path: &str) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = o
        .pointer(path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.get("ip")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| i.get("hostname").and_then(Value::as_str))
                .map(str::to_string)
        })
        .collect();
    set.into_iter().collect()
}

fn service(o: &Value, now: Timestamp) -> Vec<Value> {
    let ty = match s(o, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    let cluster_ip = o
        .pointer("/spec/clusterIPs/0")
        .and_then(Value::as_str)
        .unwrap_or_else(|| s(o, "/spec/clusterIP"));
    let external_ips: Vec<String> = o
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let external = match ty {
        "ClusterIP" | "NodePort" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            let mut all = external_ips.clone();
            all.extend(load_balancer_ingress(o, "/status/loadBalancer/ingress"));
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(o, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64).filter(|n| *n != 0) {
                Some(np) => format!("{port}:{np}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        name(o),
        json!(ty),
        json!(or_none(cluster_ip)),
        json!(external),
        json!(or_none(&ports.join(","))),
        age(o, now),
        json!(format_labels(o.pointer("/spec/selector"))),
    ]
}

fn endpoints(o: &Value, now: Timestamp) -> Vec<Value> {
    let mut list = Vec::new();
    for subset in o
        .pointer("/subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ports: Vec<i64> = subset
            .get("ports")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.get("port").and_then(Value::as_i64))
                    .collect()
            })
            .unwrap_or_default();
        for addr in subset
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ip = addr.get("ip").and_then(Value::as_str).unwrap_or("");
            if ports.is_empty() {
                list.push(ip.to_string());
            }
            list.extend(ports.iter().map(|p| format!("{ip}:{p}")));
        }
    }
    let text = match list.len() {
        0 => "<none>".to_string(),
        n if n > 3 => format!("{} + {} more...", list[..3].join(","), n - 3),
        _ => list.join(","),
    };
    vec![name(o), json!(text), age(o, now)]
}

/// `printPod`: readiness, the status reason kubectl shows (init progress, waiting/terminated reasons,
/// sidecars counted as containers), restarts with the last restart's age.
fn pod(o: &Value, now: Timestamp) -> Vec<Value> {
    let finished_at = |c: &Value| {
        c.pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let later = |a: Option<Timestamp>, b: Option<Timestamp>| a.max(b);
    let condition = |ty: &str| {
        o.pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(ty))
    };
    let condition_true =
        |ty: &str| condition(ty).is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"));
    let phase = s(o, "/status/phase");
    let mut reason = match s(o, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if condition("PodScheduled")
        .is_some_and(|c| c.get("reason").and_then(Value::as_str) == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".into();
    }
    let init_specs = o.pointer("/spec/initContainers").and_then(Value::as_array);
    let is_sidecar = |name: &str| {
        init_specs.into_iter().flatten().any(|c| {
            c.get("name").and_then(Value::as_str) == Some(name)
                && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
        })
    };
    let init_total = init_specs.map_or(0, Vec::len);
    let total = len(o, "/spec/containers")
        + init_specs
            .into_iter()
            .flatten()
            .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
            .count() as i64;
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;
    let mut initializing = false;
    let init_statuses = o
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array);
    for (idx, c) in init_statuses.into_iter().flatten().enumerate() {
        let count = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        let sidecar = is_sidecar(c.get("name").and_then(Value::as_str).unwrap_or(""));
        restarts += count;
        last_restart = later(last_restart, finished_at(c));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, finished_at(c));
        }
        let terminated = c.pointer("/state/terminated");
        if terminated.is_some_and(|t| t.get("exitCode").and_then(Value::as_i64) == Some(0)) {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = t.get("reason").and_then(Value::as_str).unwrap_or("");
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if let Some(sig) = t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                format!("Init:Signal:{sig}")
            } else {
                format!(
                    "Init:ExitCode:{}",
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                )
            };
        } else if let Some(w) = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{idx}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing || condition_true("Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        let statuses = o.pointer("/status/containerStatuses").and_then(Value::as_array);
        for c in statuses.into_iter().flatten().rev() {
            restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            last_restart = later(last_restart, finished_at(c));
            let waiting = c
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            let terminated = c.pointer("/state/terminated");
            let term_reason = terminated
                .and_then(|t| t.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if !term_reason.is_empty() {
                reason = term_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                    Some(sig) => format!("Signal:{sig}"),
                    None => format!(
                        "ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    ),
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true("Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .into();
        }
    }
    if o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        if s(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_age(now.duration_since(t))),
        _ => restarts.to_string(),
    };
    let gates = o.pointer("/spec/readinessGates").and_then(Value::as_array);
    let gates_text = match gates {
        Some(g) if !g.is_empty() => {
            let ok = g
                .iter()
                .filter(|gate| {
                    gate.get("conditionType")
                        .and_then(Value::as_str)
                        .is_some_and(condition_true)
                })
                .count();
            format!("{ok}/{}", g.len())
        }
        _ => "<none>".into(),
    };
    // A real server always fills podIPs next to podIP; objects seeded by hand may carry podIP only.
    let ip = o
        .pointer("/status/podIPs/0/ip")
        .and_then(Value::as_str)
        .unwrap_or_else(|| s(o, "/status/podIP"));
    vec![
        name(o),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        age(o, now),
        json!(or_none(ip)),
        json!(or_none(s(o, "/spec/nodeName"))),
        json!(or_none(s(o, "/status/nominatedNodeName"))),
        json!(gates_text),
    ]
}

fn access_modes(o: &Value, path: &str) -> String {
    let modes: Vec<&str> = o
        .pointer(path)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    modes.join(",")
}

fn pvc(o: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        s(o, "/status/phase")
    };
    let volume = s(o, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            s(o, "/status/capacity/storage").to_string(),
            access_modes(o, "/status/accessModes"),
        )
    };
    let class = o
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .unwrap_or_else(|| {
            s(
                o,
                "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
            )
        });
    let unset = |v: &str| {
        if v.is_empty() {
            "<unset>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        name(o),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(unset(s(o, "/spec/volumeAttributesClassName"))),
        age(o, now),
        json!(unset(s(o, "/spec/volumeMode"))),
    ]
}

fn event(o: &Value, now: Timestamp) -> Vec<Value> {
    let mut first = since(s(o, "/firstTimestamp"), now);
    if s(o, "/firstTimestamp").is_empty() {
        first = since(s(o, "/eventTime"), now);
    }
    let mut last = if s(o, "/lastTimestamp").is_empty() {
        first.clone()
    } else {
        since(s(o, "/lastTimestamp"), now)
    };
    let mut count = i(o, "/count");
    if o.pointer("/series").is_some_and(|v| !v.is_null()) {
        last = since(s(o, "/series/lastObservedTime"), now);
        count = i(o, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = s(o, "/involvedObject/kind").to_ascii_lowercase();
    let target = match s(o, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &'static str, b: &'static str| match s(o, a) {
        "" => s(o, b),
        v => v,
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let source = match first_non_empty("/source/host", "/reportingInstance") {
        "" => component.to_string(),
        host => format!("{component}, {host}"),
    };
    vec![
        json!(last),
        json!(s(o, "/type")),
        json!(s(o, "/reason")),
        json!(target),
        json!(s(o, "/involvedObject/fieldPath")),
        json!(source),
        json!(s(o, "/message").trim()),
        json!(first),
        json!(count),
        name(o),
    ]
}

fn deployment(o: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = containers(o, "/spec/template/spec");
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            i(o, "/status/readyReplicas"),
            i(o, "/spec/replicas")
        )),
        json!(i(o, "/status/updatedReplicas")),
        json!(i(o, "/status/availableReplicas")),
        age(o, now),
        names,
        images,
        json!(selector_string(o.pointer("/spec/selector"))),
    ]
}

fn stateful_set(o: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = containers(o, "/spec/template/spec");
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            i(o, "/status/readyReplicas"),
            i(o, "/spec/replicas")
        )),
        age(o, now),
        names,
        images,
    ]
}

fn replica_set(o: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = containers(o, "/spec/template/spec");
    vec![
        name(o),
        json!(i(o, "/spec/replicas")),
        json!(i(o, "/status/replicas")),
        json!(i(o, "/status/readyReplicas")),
        age(o, now),
        names,
        images,
        json!(format_selector(o.pointer("/spec/selector"))),
    ]
}

fn daemon_set(o: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = containers(o, "/spec/template/spec");
    vec![
        name(o),
        json!(i(o, "/status/desiredNumberScheduled")),
        json!(i(o, "/status/currentNumberScheduled")),
        json!(i(o, "/status/numberReady")),
        json!(i(o, "/status/updatedNumberScheduled")),
        json!(i(o, "/status/numberAvailable")),
        json!(format_labels(o.pointer("/spec/template/spec/nodeSelector"))),
        age(o, now),
        names,
        images,
        json!(format_selector(o.pointer("/spec/selector"))),
    ]
}

fn has_condition(o: &Value, ty: &str) -> bool {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some(ty)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

fn job(o: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = i(o, "/status/succeeded");
    let completions = match o.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match i(o, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = s(o, "/status/startTime").parse::<Timestamp>().ok();
    let end = s(o, "/status/completionTime").parse::<Timestamp>().ok();
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(st), None) => human_age(now.duration_since(st)),
        (Some(st), Some(en)) => human_age(en.duration_since(st)),
    };
    let status = if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if o.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let [names, images] = containers(o, "/spec/template/spec");
    vec![
        name(o),
        json!(status),
        json!(completions),
        json!(duration),
        age(o, now),
        names,
        images,
        json!(format_selector(o.pointer("/spec/selector"))),
    ]
}

fn cron_job(o: &Value, now: Timestamp) -> Vec<Value> {
    let last = match s(o, "/status/lastScheduleTime") {
        "" => "<none>".to_string(),
        t => since(t, now),
    };
    let suspend = match o.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let [names, images] = containers(o, "/spec/jobTemplate/spec/template/spec");
    vec![
        name(o),
        json!(s(o, "/spec/schedule")),
        json!(or_none(s(o, "/spec/timeZone"))),
        json!(suspend),
        json!(len(o, "/status/active")),
        json!(last),
        age(o, now),
        names,
        images,
        json!(format_selector(o.pointer("/spec/jobTemplate/spec/selector"))),
    ]
}

fn ingress(o: &Value, now: Timestamp) -> Vec<Value> {
    let hosts: Vec<&str> = o
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("host").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .collect();
    let hosts_text = match hosts.len() {
        0 => "*".to_string(),
        n if n > 4 => format!("{} + {} more...", hosts[..4].join(","), n - 4),
        _ => hosts.join(","),
    };
    let ports = if len(o, "/spec/tls") > 0 { "80, 443" } else { "80" };
    vec![
        name(o),
        json!(or_none(s(o, "/spec/ingressClassName"))),
        json!(hosts_text),
        json!(load_balancer_ingress(o, "/status/loadBalancer/ingress").join(",")),
        json!(ports),
        age(o, now),
    ]
}

fn int_or_string(o: &Value, path: &str) -> String {
    match o.pointer(path) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "N/A".into(),
    }
}

fn pdb(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(o),
        json!(int_or_string(o, "/spec/minAvailable")),
        json!(int_or_string(o, "/spec/maxUnavailable")),
        json!(i(o, "/status/disruptionsAllowed")),
        age(o, now),
    ]
}

fn quantity(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `formatHPAMetrics`: at most two metrics, then `+ N more...`.
fn hpa_targets(o: &Value) -> String {
    let specs = o.pointer("/spec/metrics").and_then(Value::as_array);
    let statuses = o.pointer("/status/currentMetrics").and_then(Value::as_array);
    let specs = match specs {
        Some(s) if !s.is_empty() => s.clone(),
        // autoscaling/v1 objects carry a single CPU utilisation target (converted the same way).
        _ => match o.pointer("/spec/targetCPUUtilizationPercentage") {
            Some(t) => vec![json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": t}}})],
            None => return "<none>".into(),
        },
    };
    let unknown = || "<unknown>".to_string();
    let mut list = Vec::new();
    for (idx, spec) in specs.iter().enumerate() {
        let ty = spec.get("type").and_then(Value::as_str).unwrap_or("");
        let key = match ty {
            "Resource" => "resource",
            "ContainerResource" => "containerResource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            _ => {
                list.push("<unknown type>".to_string());
                continue;
            }
        };
        let target = spec.pointer(&format!("/{key}/target"));
        let status = statuses.and_then(|s| s.get(idx)).and_then(|st| st.get(key));
        let current = |field: &str| quantity(status.and_then(|s| s.pointer(&format!("/current/{field}"))));
        let target_of = |field: &str| quantity(target.and_then(|t| t.get(field)));
        let name = spec
            .pointer(&format!("/{key}/name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        list.push(match ty {
            "External" | "Object" => match target_of("averageValue") {
                Some(avg) => format!("{}/{avg} (avg)", current("averageValue").unwrap_or_else(unknown)),
                None => format!(
                    "{}/{}",
                    current("value").unwrap_or_else(unknown),
                    target_of("value").unwrap_or_default()
                ),
            },
            "Pods" => format!(
                "{}/{}",
                current("averageValue").unwrap_or_else(unknown),
                target_of("averageValue").unwrap_or_default()
            ),
            _ => match target_of("averageValue") {
                Some(avg) => format!(
                    "{name}: {}/{avg}",
                    current("averageValue").unwrap_or_else(unknown)
                ),
                None => format!(
                    "{name}: {}/{}",
                    current("averageUtilization").map_or_else(unknown, |c| format!("{c}%")),
                    target_of("averageUtilization").map_or("<auto>".to_string(), |t| format!("{t}%"))
                ),
            },
        });
    }
    if list.len() > 2 {
        format!("{} + {} more...", list[..2].join(", "), list.len() - 2)
    } else {
        list.join(", ")
    }
}

fn hpa(o: &Value, now: Timestamp) -> Vec<Value> {
    let min = o
        .pointer("/spec/minReplicas")
        .and_then(Value::as_i64)
        .map_or("<unset>".to_string(), |m| m.to_string());
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            s(o, "/spec/scaleTargetRef/kind"),
            s(o, "/spec/scaleTargetRef/name")
        )),
        json!(hpa_targets(o)),
        json!(min),
        json!(i(o, "/spec/maxReplicas")),
        json!(i(o, "/status/currentReplicas")),
        age(o, now),
    ]
}

fn role_binding(o: &Value, now: Timestamp) -> Vec<Value> {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subj in o
        .pointer("/subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = subj.get("name").and_then(Value::as_str).unwrap_or("");
        match subj.get("kind").and_then(Value::as_str).unwrap_or("") {
            "User" => users.push(n.to_string()),
            "Group" => groups.push(n.to_string()),
            "ServiceAccount" => sas.push(format!(
                "{}/{n}",
                subj.get("namespace").and_then(Value::as_str).unwrap_or("")
            )),
            _ => {}
        }
    }
    vec![
        name(o),
        json!(format!("{}/{}", s(o, "/roleRef/kind"), s(o, "/roleRef/name"))),
        age(o, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

fn storage_class(o: &Value, now: Timestamp) -> Vec<Value> {
    let mut n = s(o, "/metadata/name").to_string();
    let default_anno = |k: &str| s(o, &format!("/metadata/annotations/{k}")) == "true";
    if default_anno("storageclass.kubernetes.io~1is-default-class")
        || default_anno("storageclass.beta.kubernetes.io~1is-default-class")
    {
        n.push_str(" (default)");
    }
    let reclaim = match s(o, "/reclaimPolicy") {
        "" => "Delete",
        r => r,
    };
    let binding = match s(o, "/volumeBindingMode") {
        "" => "Immediate",
        b => b,
    };
    let expansion = o.pointer("/allowVolumeExpansion").and_then(Value::as_bool) == Some(true);
    vec![
        json!(n),
        json!(s(o, "/provisioner")),
        json!(reclaim),
        json!(binding),
        json!(expansion),
        age(o, now),
    ]
}

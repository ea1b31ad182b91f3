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

/// A `string` column shown in every table.
const fn text(name: &'static str, description: &'static str) -> Col {
    col(name, "string", 0, description)
}

/// A `string` column shown only with `-o wide`.
const fn wide(name: &'static str, description: &'static str) -> Col {
    col(name, "string", 1, description)
}

/// An `integer` column shown in every table.
const fn int(name: &'static str, description: &'static str) -> Col {
    col(name, "integer", 0, description)
}

/// A `boolean` column shown in every table.
const fn boolean(name: &'static str, description: &'static str) -> Col {
    col(name, "boolean", 0, description)
}

pub(super) const NAME: Col = Col {
    name: "Name",
    ty: "string",
    format: "name",
    priority: 0,
    description: NAME_DOC,
};
const AGE: Col = text("Age", AGE_DOC);
const CONTAINERS: Col = wide("Containers", "Names of each container in the template.");
const IMAGES: Col = wide("Images", "Images referenced by each container in the template.");
const SELECTOR: Col = wide("Selector", "A label query over pods.");

/// One built-in kind's printer, as the real server registers it.
struct Printer {
    group: &'static str,
    kinds: &'static [&'static str],
    row: RowFn,
    cols: &'static [Col],
}

/// Every built-in kind the real server prints as a table: its group, kind(s), row builder and columns.
#[rustfmt::skip]
const PRINTERS: &[Printer] = &[
    Printer { group: "", kinds: &["Namespace"], row: namespace, cols: &[
        NAME,
        text("Status", "The status of the namespace"),
        AGE,
    ] },
    Printer { group: "", kinds: &["ConfigMap"], row: config_map, cols: &[
        NAME,
        text("Data", "Data contains the configuration data."),
        AGE,
    ] },
    Printer { group: "", kinds: &["Secret"], row: secret, cols: &[
        NAME,
        text("Type", "Used to facilitate programmatic handling of secret data."),
        text("Data", "Data contains the secret data."),
        AGE,
    ] },
    Printer { group: "", kinds: &["ServiceAccount"], row: service_account, cols: &[
        NAME,
        text("Secrets", "Secrets of this service account."),
        AGE,
    ] },
    Printer { group: "", kinds: &["Service"], row: service, cols: &[
        NAME,
        text("Type", "type determines how the Service is exposed."),
        text("Cluster-IP", "clusterIP is the IP address of the service."),
        text("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
        text("Port(s)", "The list of ports that are exposed by this service."),
        AGE,
        wide("Selector", "Route service traffic to pods with label keys and values matching this selector."),
    ] },
    Printer { group: "", kinds: &["Endpoints"], row: endpoints, cols: &[
        NAME,
        text("Endpoints", "The set of all endpoints is the union of all subsets."),
        AGE,
    ] },
    Printer { group: "", kinds: &["Pod"], row: pod, cols: &[
        NAME,
        text("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        text("Status", "The aggregate status of the containers in this pod."),
        text("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
        AGE,
        wide("IP", "podIP address allocated to the pod."),
        wide("Node", "NodeName indicates in which node this pod is scheduled."),
        wide("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node."),
        wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness."),
    ] },
    Printer { group: "", kinds: &["PersistentVolumeClaim"], row: pvc, cols: &[
        NAME,
        text("Status", "phase represents the current phase of PersistentVolumeClaim."),
        text("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
        text("Capacity", "capacity represents the actual resources of the underlying volume."),
        text("Access Modes", "accessModes contains the actual access modes the volume backing the PVC has."),
        text("StorageClass", "StorageClass of the pvc"),
        text("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
        AGE,
        wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
    ] },
    Printer { group: "", kinds: &["Event"], row: event, cols: &[
        text("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        text("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        text("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        text("Object", "The object that this event is about."),
        wide("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement."),
        wide("Source", "The component reporting this event."),
        text("Message", "A human-readable description of the status of this operation."),
        wide("First Seen", "The time at which the event was first recorded."),
        wide("Count", "The number of times this event has occurred."),
        Col { priority: 1, ..NAME },
    ] },
    Printer { group: "apps", kinds: &["Deployment"], row: deployment, cols: &[
        NAME,
        text("Ready", "Number of the pod with ready state"),
        text("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        text("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ] },
    Printer { group: "apps", kinds: &["StatefulSet"], row: stateful_set, cols: &[
        NAME,
        text("Ready", "Number of the pod with ready state"),
        AGE, CONTAINERS, IMAGES,
    ] },
    Printer { group: "apps", kinds: &["ReplicaSet"], row: replica_set, cols: &[
        NAME,
        int("Desired", "Replicas is the number of desired replicas."),
        int("Current", "Replicas is the most recently observed number of replicas."),
        int("Ready", "The number of ready replicas for this replica set."),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ] },
    Printer { group: "apps", kinds: &["DaemonSet"], row: daemon_set, cols: &[
        NAME,
        int("Desired", "The total number of nodes that should be running the daemon pod."),
        int("Current", "The number of nodes that are running at least 1 daemon pod."),
        int("Ready", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
        int("Up-to-date", "The total number of nodes that are running updated daemon pod"),
        int("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."),
        text("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ] },
    Printer { group: "batch", kinds: &["Job"], row: job, cols: &[
        NAME,
        text("Status", "Status of the job."),
        text("Completions", "The number of pods which reached phase Succeeded."),
        text("Duration", "Time required to complete the job."),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ] },
    Printer { group: "batch", kinds: &["CronJob"], row: cron_job, cols: &[
        NAME,
        text("Schedule", "The schedule in Cron format."),
        text("Timezone", "The time zone name for the given schedule."),
        boolean("Suspend", "This flag tells the controller to suspend subsequent executions."),
        int("Active", "A list of pointers to currently running jobs."),
        text("Last Schedule", "Information when was the last time the job was successfully scheduled."),
        AGE, CONTAINERS, IMAGES, SELECTOR,
    ] },
    Printer { group: "networking.k8s.io", kinds: &["Ingress"], row: ingress, cols: &[
        NAME,
        text("Class", "The name of the IngressClass resource that should be used for additional configuration"),
        text("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
        text("Address", "Address is a list containing ingress points for the load-balancer"),
        text("Ports", "Ports of TLS configurations that open"),
        AGE,
    ] },
    Printer { group: "policy", kinds: &["PodDisruptionBudget"], row: pdb, cols: &[
        NAME,
        text("Min Available", "The minimum number of pods that must be available."),
        text("Max Unavailable", "The maximum number of pods that may be unavailable."),
        int("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time."),
        AGE,
    ] },
    Printer { group: "autoscaling", kinds: &["HorizontalPodAutoscaler"], row: hpa, cols: &[
        NAME,
        text("Reference", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
        text("Targets", "metrics contains the specifications for which to use to calculate the desired replica count."),
        text("MinPods", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
        text("MaxPods", "maxReplicas is the upper limit for the number of pods that can be set by the autoscaler."),
        text("Replicas", "current number of replicas of pods managed by this autoscaler."),
        AGE,
    ] },
    Printer { group: "rbac.authorization.k8s.io", kinds: &["RoleBinding", "ClusterRoleBinding"], row: role_binding, cols: &[
        NAME,
        text("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
        AGE,
        wide("Users", "Users in the roleBinding"),
        wide("Groups", "Groups in the roleBinding"),
        wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
    ] },
    Printer { group: "storage.k8s.io", kinds: &["StorageClass"], row: storage_class, cols: &[
        NAME,
        text("Provisioner", "provisioner indicates the type of the provisioner."),
        text("ReclaimPolicy", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class."),
        text("VolumeBindingMode", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound."),
        text("AllowVolumeExpansion", "allowVolumeExpansion shows whether the storage class allow volume expand."),
        AGE,
    ] },
];

/// The columns and row builder of a built-in kind, `None` when the real server has no printer for it
/// (then the default `Name`/`Created At` table applies).
pub fn for_kind(group: &str, kind: &str) -> Option<(Vec<Col>, RowFn)> {
    PRINTERS
        .iter()
        .find(|p| p.group == group && p.kinds.contains(&kind))
        .map(|p| (p.cols.to_vec(), p.row))
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

/// The `Ready` cell of a workload: ready replicas over wanted ones (`1/2`).
fn ready_of_wanted(o: &Value) -> Value {
    json!(format!(
        "{}/{}",
        i(o, "/status/readyReplicas"),
        i(o, "/spec/replicas")
    ))
}

fn deployment(o: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = containers(o, "/spec/template/spec");
    vec![
        name(o),
        ready_of_wanted(o),
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
    vec![name(o), ready_of_wanted(o), age(o, now), names, images]
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

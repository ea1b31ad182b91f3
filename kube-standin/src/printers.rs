//! Server-side printing: `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` (or `v1beta1`) answers
//! a `meta.k8s.io` `Table` instead of the object or list, as the real API server does for `kubectl get`.
//!
//! Columns come from [`builtin`] for the kinds the real server has printers for, from a CRD version's
//! `additionalPrinterColumns` (evaluated with [`jsonpath`]) for custom resources (`Age` alone when it
//! declares none), and otherwise from the server's default table (`Name`, `Created At`). Every column is
//! sent, `-o wide` ones with priority 1; kubectl picks. `includeObject` (`None`, `Metadata` — the
//! default —, `Object`) decides what each row carries besides its cells.

pub mod builtin;
pub mod jsonpath;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::store::{State, present};

use builtin::{AGE_DOC, Col, NAME, RowFn};
use jsonpath::JsonPath;

/// What a row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Cells only.
    None,
    /// A `PartialObjectMetadata` (the default): enough for kubectl's namespace and label columns.
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// Parses the `includeObject` query parameter.
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Metadata") => Ok(Include::Metadata),
            Some("None") => Ok(Include::None),
            Some("Object") => Ok(Include::Object),
            Some(other) => Err(ApiError::bad_request(format!(
                "includeObject must be one of None, Metadata or Object, got {other:?}"
            ))),
        }
    }
}

/// A request for a Table: which `meta.k8s.io` version and what rows include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRequest {
    /// `v1` or `v1beta1`.
    pub version: &'static str,
    /// What each row carries.
    pub include: Include,
}

/// The Table version the `Accept` header asks for first, if it asks for a JSON Table at all (media types
/// are taken in order: a plain `application/json` before any Table means no Table).
pub fn wants_table(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let media = params.first().copied().unwrap_or("");
        if media != "application/json" && media != "*/*" {
            continue;
        }
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if !params.iter().any(|p| p.starts_with("as=")) {
            return None;
        }
        if has("as=Table") && has("g=meta.k8s.io") {
            if has("v=v1") {
                return Some("v1");
            }
            if has("v=v1beta1") {
                return Some("v1beta1");
            }
        }
    }
    None
}

/// Whether `Accept` lists only Tables the server cannot produce (e.g. protobuf Tables, an unknown version)
/// with no plain fallback: the real server answers 406 then.
pub fn unsatisfiable_table(accept: &str) -> bool {
    let parts: Vec<&str> = accept
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    !parts.is_empty() && parts.iter().all(|p| p.contains("as=Table")) && wants_table(accept).is_none()
}

/// `duration.HumanDuration`: `45s`, `5m12s`, `3h4m`, `5d`, `2y10d` as kubectl shows ages.
pub fn human_age(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[derive(Debug, Clone)]
struct CrdColumn {
    path: Option<JsonPath>,
    ty: String,
}

#[derive(Debug, Clone)]
enum Rows {
    Builtin(RowFn),
    Crd(Vec<CrdColumn>),
    /// The apiserver's default table: name and `Created At` (RFC 3339).
    Default,
}

/// How one resource type prints: column definitions and a row builder.
#[derive(Debug, Clone)]
pub struct TablePrinter {
    columns: Vec<Value>,
    rows: Rows,
}

fn column_json(c: &Col) -> Value {
    json!({"name": c.name, "type": c.ty, "format": c.format, "description": c.description, "priority": c.priority})
}

impl TablePrinter {
    /// The printer for a type; for a custom resource, read from its CRD in the store.
    pub fn for_type(st: &State, rt: &ResourceType) -> Self {
        if let Some(crd_name) = &rt.crd_name {
            let crd = st
                .registry
                .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .and_then(|crd_rt| st.get(&crd_rt, "", crd_name).cloned());
            let declared = crd
                .as_ref()
                .and_then(|c| c.pointer("/spec/versions"))
                .and_then(Value::as_array)
                .and_then(|vs| {
                    vs.iter()
                        .find(|v| v.get("name").and_then(Value::as_str) == Some(rt.version.as_str()))
                })
                .and_then(|v| v.get("additionalPrinterColumns"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            return Self::for_crd_columns(&declared);
        }
        match builtin::for_kind(&rt.group, &rt.kind) {
            Some((cols, f)) => TablePrinter {
                columns: cols.iter().map(column_json).collect(),
                rows: Rows::Builtin(f),
            },
            None => TablePrinter {
                columns: vec![
                    column_json(&NAME),
                    column_json(&Col {
                        name: "Created At",
                        ty: "date",
                        format: "",
                        priority: 0,
                        description: AGE_DOC,
                    }),
                ],
                rows: Rows::Default,
            },
        }
    }

    /// A printer from `additionalPrinterColumns`; none declared means a single `Age` column, as the
    /// apiextensions server does.
    pub fn for_crd_columns(declared: &[Value]) -> Self {
        let age;
        let declared = if declared.is_empty() {
            age = [json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})];
            &age[..]
        } else {
            declared
        };
        let mut columns = vec![column_json(&NAME)];
        let mut crd_cols = Vec::new();
        for c in declared {
            let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            columns.push(json!({
                "name": field("name"),
                "type": field("type"),
                "format": field("format"),
                "description": field("description"),
                "priority": c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            }));
            crd_cols.push(CrdColumn {
                path: JsonPath::parse(&field("jsonPath")).ok(),
                ty: field("type"),
            });
        }
        TablePrinter {
            columns,
            rows: Rows::Crd(crd_cols),
        }
    }

    /// The cells of one object.
    pub fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        match &self.rows {
            Rows::Builtin(f) => f(obj, now),
            Rows::Default => vec![
                obj.pointer("/metadata/name").cloned().unwrap_or(json!("")),
                obj.pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or(Value::Null),
            ],
            Rows::Crd(cols) => {
                let mut cells = vec![obj.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
                for c in cols {
                    let found = c.path.as_ref().and_then(|p| p.find(obj).first().copied());
                    cells.push(match found {
                        None | Some(Value::Null) => Value::Null,
                        Some(v) => crd_cell(&c.ty, v, now),
                    });
                }
                cells
            }
        }
    }

    fn row(&self, rt: &ResourceType, obj: &Value, req: &TableRequest, now: Timestamp) -> Value {
        let mut row = Map::new();
        row.insert("cells".into(), Value::Array(self.cells(obj, now)));
        match req.include {
            Include::None => {}
            Include::Metadata => {
                row.insert(
                    "object".into(),
                    json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": format!("meta.k8s.io/{}", req.version),
                        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
                    }),
                );
            }
            Include::Object => {
                row.insert("object".into(), present(rt, obj));
            }
        }
        Value::Object(row)
    }

    /// A Table of `objects` with the given list metadata (`resourceVersion`, `continue`).
    pub fn table(&self, rt: &ResourceType, objects: &[Value], list_meta: Value, req: &TableRequest) -> Value {
        let now = Timestamp::now();
        let rows: Vec<Value> = objects.iter().map(|o| self.row(rt, o, req, now)).collect();
        json!({
            "kind": "Table",
            "apiVersion": format!("meta.k8s.io/{}", req.version),
            "metadata": list_meta,
            "columnDefinitions": self.columns,
            "rows": rows,
        })
    }
}

/// `cellForJSONValue` of the apiextensions server: typed cells, dates as ages, `string` columns as the
/// JSONPath printer renders the value.
fn crd_cell(ty: &str, v: &Value, now: Timestamp) -> Value {
    match ty {
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, |b| json!(b)),
        "date" => match v.as_str() {
            Some(t) => match t.parse::<Timestamp>() {
                Ok(ts) => json!(human_age(now.duration_since(ts))),
                Err(_) => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => json!(jsonpath::to_text(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        let s = SignedDuration::from_secs;
        assert_eq!(human_age(s(-5)), "<invalid>");
        assert_eq!(human_age(s(0)), "0s");
        assert_eq!(human_age(s(119)), "119s");
        assert_eq!(human_age(s(5 * 60 + 12)), "5m12s");
        assert_eq!(human_age(s(6 * 60)), "6m");
        assert_eq!(human_age(s(90 * 60)), "90m");
        assert_eq!(human_age(s(3 * 3600 + 4 * 60)), "3h4m");
        assert_eq!(human_age(s(30 * 3600)), "30h");
        assert_eq!(human_age(s(3 * 86400 + 3600)), "3d1h");
        assert_eq!(human_age(s(20 * 86400)), "20d");
        assert_eq!(human_age(s((2 * 365 + 10) * 86400)), "2y10d");
        assert_eq!(human_age(s(9 * 365 * 86400)), "9y");
    }

    #[test]
    fn accept_headers() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(wants_table(kubectl), Some("v1"));
        assert_eq!(
            wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            Some("v1beta1")
        );
        assert_eq!(wants_table("application/json"), None);
        assert_eq!(
            wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io"),
            None
        );
        assert!(unsatisfiable_table(
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
        ));
        assert!(!unsatisfiable_table(kubectl));
        assert_eq!(Include::parse(None).unwrap(), Include::Metadata);
        assert!(Include::parse(Some("All")).is_err());
    }

    #[test]
    fn builtin_rows() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let deploy = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}]},
                "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}, {"name": "s", "image": "envoy"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let (cols, f) = builtin::for_kind("apps", "Deployment").unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            f(&deploy, now),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("60m"),
                json!("c,s"),
                json!("nginx,envoy"),
                json!("app=web,env in (a,b),tier=fe")
            ]
        );
        let svc = json!({"metadata": {"name": "db"}, "spec": {"type": "NodePort", "clusterIP": "10.0.0.1",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        let (_, f) = builtin::for_kind("", "Service").unwrap();
        let cells = f(&svc, now);
        assert_eq!(
            cells[1..5],
            [
                json!("NodePort"),
                json!("10.0.0.1"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP")
            ]
        );
        assert_eq!(cells[5], json!("<unknown>"));
        assert_eq!(cells[6], json!("<none>"));
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": "2026-01-01T00:58:00Z"}}},
                {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let (_, f) = builtin::for_kind("", "Pod").unwrap();
        let cells = f(&pod, now);
        assert_eq!(
            cells[1..4],
            [json!("1/2"), json!("CrashLoopBackOff"), json!("1 (2m ago)")]
        );
        let sidecar = json!({"metadata": {"name": "s", "deletionTimestamp": "2026-01-01T00:59:00Z"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.1.0.7"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let cells = f(&sidecar, now);
        assert_eq!(cells[1..4], [json!("2/2"), json!("Terminating"), json!("0")]);
        assert_eq!(cells[5], json!("10.1.0.7"));
    }

    fn cells(group: &str, kind: &str, obj: Value) -> Vec<Value> {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let (cols, f) = builtin::for_kind(group, kind).unwrap();
        let cells = f(&obj, now);
        assert_eq!(cols.len(), cells.len(), "{kind}: one cell per column");
        cells
    }

    #[test]
    fn more_builtin_rows() {
        let t0 = "2026-01-01T00:00:00Z";
        let job = json!({"metadata": {"name": "migrate", "creationTimestamp": t0},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "m", "image": "tool"}]}},
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}}},
            "status": {"succeeded": 1, "startTime": t0, "completionTime": "2026-01-01T00:00:42Z",
                "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            cells("batch", "Job", job)[1..4],
            [json!("Complete"), json!("1/1"), json!("42s")]
        );
        let cron = json!({"metadata": {"name": "nightly"}, "spec": {"schedule": "0 3 * * *", "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "backup"}]}}}}}});
        assert_eq!(
            cells("batch", "CronJob", cron)[1..6],
            [
                json!("0 3 * * *"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("<none>")
            ]
        );
        let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "storageClassName": "standard"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        assert_eq!(
            cells("", "PersistentVolumeClaim", pvc)[1..7],
            [
                json!("Bound"),
                json!("pv-1"),
                json!("1Gi"),
                json!("RWO"),
                json!("standard"),
                json!("<unset>")
            ]
        );
        let ev = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "Scaled",
            "involvedObject": {"kind": "Deployment", "name": "web"}, "message": " up ",
            "source": {"component": "deployment-controller"}, "lastTimestamp": "2026-01-01T00:59:00Z", "firstTimestamp": t0});
        assert_eq!(
            cells("", "Event", ev),
            [
                json!("60s"),
                json!("Normal"),
                json!("Scaled"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller"),
                json!("up"),
                json!("60m"),
                json!(1),
                json!("web.1")
            ]
        );
        let ing = json!({"metadata": {"name": "site"}, "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}],
            "tls": [{}]}, "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}]}}});
        assert_eq!(
            cells("networking.k8s.io", "Ingress", ing)[1..5],
            [
                json!("nginx"),
                json!("a.example"),
                json!("10.0.0.1,10.0.0.2"),
                json!("80, 443")
            ]
        );
        let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1}, "status": {"disruptionsAllowed": 0}});
        assert_eq!(
            cells("policy", "PodDisruptionBudget", pdb)[1..4],
            [json!("1"), json!("N/A"), json!(0)]
        );
        let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}});
        assert_eq!(
            cells("autoscaling", "HorizontalPodAutoscaler", hpa)[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 12%/80%"),
                json!("<unset>"),
                json!(5),
                json!(2)
            ]
        );
        let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "ann"}, {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]});
        let c = cells("rbac.authorization.k8s.io", "RoleBinding", rb);
        assert_eq!(
            (c[1].clone(), c[3].clone(), c[5].clone()),
            (json!("ClusterRole/view"), json!("ann"), json!("tools/ci"))
        );
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(cells("", "ServiceAccount", sa)[1], json!(0));
        let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        assert_eq!(
            cells("storage.k8s.io", "StorageClass", sc)[..5],
            [
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("Immediate"),
                json!(false)
            ]
        );
        assert!(
            builtin::for_kind("rbac.authorization.k8s.io", "Role").is_none(),
            "default table"
        );
    }

    #[test]
    fn crd_columns_evaluate_paths_and_types() {
        let p = TablePrinter::for_crd_columns(&[
            json!({"name": "Instances", "type": "integer", "jsonPath": ".status.instances"}),
            json!({"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type == \"Ready\")].status"}),
            json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
            json!({"name": "Missing", "type": "string", "jsonPath": ".status.nothing", "priority": 1}),
        ]);
        assert_eq!(p.columns.len(), 5);
        assert_eq!(p.columns[4]["priority"], 1);
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let obj = json!({"metadata": {"name": "db", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"instances": 3, "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            p.cells(&obj, now),
            vec![json!("db"), json!(3), json!("True"), json!("30s"), Value::Null]
        );
        let none = TablePrinter::for_crd_columns(&[]);
        assert_eq!(none.columns[1]["name"], "Age");
    }
}

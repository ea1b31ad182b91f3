//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded into the JSON the server
//! stores, as the real API server does for built-in kinds.
//!
//! client-go's typed clients (kubectl `create`, helm's release Secrets, `auth can-i`) send protobuf and
//! never fall back to JSON. A body is the magic `k8s\0` followed by a `runtime.Unknown` whose `typeMeta`
//! names the kind and whose `raw` is that kind's message. The wire schemas are the real Kubernetes
//! `.proto` files, compiled when the server starts with protox (pure Rust) and read through
//! prost-reflect; nothing is generated into the repository. The JSON mapping follows Go's
//! `encoding/json` on the Kubernetes types: `IntOrString`, `Quantity`, `Time`/`MicroTime` (RFC 3339),
//! `Duration` (Go's `1m30s`), `RawExtension`/`FieldsV1`/`JSON` (embedded JSON), `bytes` (base64), and
//! `omitempty` (zero scalars and empty lists/maps are left out).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

mod encode;
pub use encode::parse_rfc3339;

/// The Content-Type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Raw payloads nest (a `RawExtension` holding another protobuf object); real objects nest a few
/// levels at most, so deeper bodies are refused rather than followed.
const MAX_NESTING: usize = 8;

/// Scalar fields that are pointers in the Go types, where a zero value is meaningful and therefore
/// kept in JSON (`replicas: 0`, `immutable: false`, `gracePeriodSeconds: 0`), as `field` (a pointer in
/// every message) or `Message.field`. Every other zero scalar is left out, as `omitempty` does for
/// value fields (which protobuf always writes).
const ZERO_KEPT: &[&str] = &[
    "DeploymentSpec.replicas",
    "ReplicaSetSpec.replicas",
    "ReplicationControllerSpec.replicas",
    "StatefulSetSpec.replicas",
    "activeDeadlineSeconds",
    "allowPrivilegeEscalation",
    "allowVolumeExpansion",
    "automountServiceAccountToken",
    "backoffLimit",
    "backoffLimitPerIndex",
    "blockOwnerDeletion",
    "completions",
    "controller",
    "defaultMode",
    "enableServiceLinks",
    "expirationSeconds",
    "failedJobsHistoryLimit",
    "fsGroup",
    "gracePeriodSeconds",
    "hostUsers",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "immutable",
    "maxFailedIndexes",
    "mode",
    "optional",
    "orphanDependents",
    "parallelism",
    "minReplicas",
    "priority",
    "privileged",
    "progressDeadlineSeconds",
    "readOnlyRootFilesystem",
    "revisionHistoryLimit",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "suspend",
    "terminationGracePeriodSeconds",
    "ttlSecondsAfterFinished",
];

/// The compiled wire schemas, indexed by `(short group, version, kind)`, e.g. `("apps", "v1", "Deployment")`.
#[derive(Debug)]
pub struct Schemas {
    kinds: HashMap<(String, String, String), MessageDescriptor>,
    unknown: MessageDescriptor,
}

/// The default schema folder: `shared/reference/k8s-protos` beside the repository, found like the CRDs.
pub fn shared_protos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("reference")
        .join("k8s-protos")
}

fn proto_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            proto_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

impl Schemas {
    /// Compiles every `.proto` file under `dir` (imports resolved relative to `dir`).
    pub fn compile(dir: &Path) -> Result<Schemas, String> {
        let mut files = Vec::new();
        proto_files(dir, dir, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(format!(
                "no .proto files under {}: pass --protos with the Kubernetes protobuf schemas",
                dir.display()
            ));
        }
        let mut compiler = protox::Compiler::new([dir])
            .map_err(|e| format!("cannot read protobuf schemas in {}: {e}", dir.display()))?;
        compiler.include_imports(true);
        compiler
            .open_files(&files)
            .map_err(|e| format!("invalid protobuf schema in {}: {e}", dir.display()))?;
        Schemas::from_pool(compiler.descriptor_pool())
    }

    fn from_pool(pool: DescriptorPool) -> Result<Schemas, String> {
        let unknown = pool
            .get_message_by_name("apimachinery.pkg.runtime.Unknown")
            .ok_or("the protobuf schemas lack apimachinery.pkg.runtime.Unknown")?;
        let mut kinds = HashMap::new();
        for message in pool.all_messages() {
            let package: Vec<&str> = message.package_name().split('.').collect();
            if let [.., group, version] = package.as_slice()
                && version.starts_with('v')
                && message.parent_message().is_none()
            {
                kinds.insert(
                    (group.to_string(), version.to_string(), message.name().to_string()),
                    message,
                );
            }
        }
        Ok(Schemas { kinds, unknown })
    }

    /// The message of `apiVersion` + `kind`; the `meta.k8s.io` kinds (`DeleteOptions`, ...) are
    /// accepted under every group, as the API server registers them everywhere.
    pub fn message_for(&self, api_version: &str, kind: &str) -> Option<&MessageDescriptor> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let short = short_group(group);
        self.kinds
            .get(&(short.to_string(), version.to_string(), kind.to_string()))
            .or_else(|| {
                self.kinds
                    .get(&("meta".to_string(), "v1".to_string(), kind.to_string()))
                    .filter(|_| matches!(kind, "DeleteOptions" | "Status"))
            })
    }

    /// Decodes a whole body (magic + `runtime.Unknown`) into the object's JSON, with `apiVersion` and
    /// `kind` from the envelope. Garbage is a 400, a kind without a protobuf schema a 415.
    pub fn decode_body(&self, body: &[u8]) -> Result<Value, ApiError> {
        self.decode_envelope(body, 0)
    }

    fn decode_envelope(&self, body: &[u8], depth: usize) -> Result<Value, ApiError> {
        let Some(rest) = body.strip_prefix(MAGIC) else {
            return Err(ApiError::bad_request(
                "the protobuf body does not start with the Kubernetes magic bytes \"k8s\\x00\"",
            ));
        };
        let envelope = DynamicMessage::decode(self.unknown.clone(), rest).map_err(|e| {
            ApiError::bad_request(format!(
                "the protobuf body is not a runtime.Unknown envelope: {e}"
            ))
        })?;
        let type_meta = message_field(&envelope, "typeMeta");
        let api_version = type_meta
            .as_ref()
            .map(|t| string_field(t, "apiVersion"))
            .unwrap_or_default();
        let kind = type_meta
            .as_ref()
            .map(|t| string_field(t, "kind"))
            .unwrap_or_default();
        if kind.is_empty() || api_version.is_empty() {
            return Err(ApiError::bad_request(
                "the protobuf envelope has no typeMeta apiVersion/kind: cannot tell which object it holds",
            ));
        }
        let encoding = string_field(&envelope, "contentEncoding");
        if !encoding.is_empty() {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the protobuf body uses contentEncoding {encoding:?}: kube-standin reads unencoded bodies only"
                ),
            ));
        }
        let Some(descriptor) = self.message_for(&api_version, &kind) else {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of content type {CONTENT_TYPE} is not supported for {api_version}, Kind={kind}: \
                     it has no protobuf schema; send it as application/json"
                ),
            ));
        };
        let raw = bytes_field(&envelope, "raw");
        let message = DynamicMessage::decode(descriptor.clone(), raw.as_slice()).map_err(|e| {
            ApiError::bad_request(format!(
                "the protobuf body is not a valid {api_version}, Kind={kind}: {e}"
            ))
        })?;
        let mut object = Map::new();
        object.insert("kind".into(), json!(kind));
        object.insert("apiVersion".into(), json!(api_version));
        let decoder = JsonMapper { schemas: self, depth };
        if let Value::Object(fields) = decoder.message(&message)? {
            for (k, v) in fields {
                if k != "kind" && k != "apiVersion" {
                    object.insert(k, v);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// The last package component before the version for an API group (`apps`, `rbac`, `core`).
fn short_group(group: &str) -> &str {
    match group {
        "" => "core",
        "internal.apiserver.k8s.io" => "apiserverinternal",
        g => g.split('.').next().unwrap_or(g),
    }
}

fn field_value(message: &DynamicMessage, name: &str) -> Option<prost_reflect::Value> {
    let field = message.descriptor().get_field_by_name(name)?;
    message
        .has_field(&field)
        .then(|| message.get_field(&field).into_owned())
}

fn message_field(message: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    field_value(message, name).and_then(|v| v.as_message().cloned())
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    field_value(message, name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn bytes_field(message: &DynamicMessage, name: &str) -> Vec<u8> {
    field_value(message, name)
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default()
}

fn int_field(message: &DynamicMessage, name: &str) -> i64 {
    match field_value(message, name) {
        Some(prost_reflect::Value::I64(v)) => v,
        Some(prost_reflect::Value::I32(v)) => i64::from(v),
        _ => 0,
    }
}

/// Turns decoded messages into Kubernetes JSON.
struct JsonMapper<'a> {
    schemas: &'a Schemas,
    depth: usize,
}

impl JsonMapper<'_> {
    /// A message as JSON; `None` where Go would write nothing useful (a zero `Time`).
    fn message(&self, message: &DynamicMessage) -> Result<Value, ApiError> {
        Ok(self.special(message)?.unwrap_or_else(|| Value::Null))
    }

    /// The JSON of one message: a Kubernetes special type, or an object of its set fields.
    fn special(&self, message: &DynamicMessage) -> Result<Option<Value>, ApiError> {
        let descriptor = message.descriptor();
        let full_name = descriptor.full_name();
        let value = match full_name {
            "apimachinery.pkg.apis.meta.v1.Time" => {
                time_json(int_field(message, "seconds"), int_field(message, "nanos"), false)
            }
            "apimachinery.pkg.apis.meta.v1.MicroTime" => {
                time_json(int_field(message, "seconds"), int_field(message, "nanos"), true)
            }
            "apimachinery.pkg.apis.meta.v1.Duration" => {
                Some(json!(go_duration(int_field(message, "duration"))))
            }
            "apimachinery.pkg.api.resource.Quantity" => Some(json!(string_field(message, "string"))),
            "apimachinery.pkg.util.intstr.IntOrString" => Some(if int_field(message, "type") == 1 {
                json!(string_field(message, "strVal"))
            } else {
                json!(int_field(message, "intVal"))
            }),
            "apimachinery.pkg.runtime.RawExtension" => self.embedded(&bytes_field(message, "raw"))?,
            "apimachinery.pkg.apis.meta.v1.FieldsV1" => self.embedded(&bytes_field(message, "Raw"))?,
            n if n.starts_with("apiextensions_apiserver.") && n.ends_with(".JSON") => {
                self.embedded(&bytes_field(message, "raw"))?
            }
            n if n.starts_with("apiextensions_apiserver.") && n.ends_with(".JSONSchemaPropsOrBool") => {
                match message_field(message, "schema") {
                    Some(schema) => Some(self.message(&schema)?),
                    None => Some(json!(
                        field_value(message, "allows")
                            .and_then(|v| v.as_bool())
                            .unwrap_or(false)
                    )),
                }
            }
            n if n.starts_with("apiextensions_apiserver.")
                && (n.ends_with(".JSONSchemaPropsOrArray")
                    || n.ends_with(".JSONSchemaPropsOrStringArray")) =>
            {
                let list_name = if n.ends_with("OrArray") {
                    "jSONSchemas"
                } else {
                    "property"
                };
                match field_value(message, list_name) {
                    Some(list) => Some(self.value(&list)?),
                    None => match message_field(message, "schema") {
                        Some(schema) => Some(self.message(&schema)?),
                        None => None,
                    },
                }
            }
            // Named string slices (`Verbs`, `ExtraValue`) are plain arrays in JSON.
            _ if descriptor.fields().len() == 1
                && descriptor.get_field_by_name("items").is_some_and(|f| f.is_list())
                && !descriptor.name().ends_with("List") =>
            {
                let items = field_value(message, "items");
                Some(match items {
                    Some(v) => self.value(&v)?,
                    None => json!([]),
                })
            }
            _ => Some(self.object(message, &descriptor)?),
        };
        Ok(value)
    }

    fn object(&self, message: &DynamicMessage, descriptor: &MessageDescriptor) -> Result<Value, ApiError> {
        let schema_props = descriptor.name() == "JSONSchemaProps";
        let mut out = Map::new();
        for field in descriptor.fields() {
            if !message.has_field(&field) {
                continue;
            }
            let value = message.get_field(&field);
            let json = if field.is_map() || field.is_list() {
                let v = self.value(&value)?;
                if v.as_array().is_some_and(Vec::is_empty) || v.as_object().is_some_and(Map::is_empty) {
                    continue;
                }
                v
            } else if let Some(inner) = value.as_message() {
                match self.special(inner)? {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                if is_zero(&value) && !zero_kept(descriptor.name(), field.name()) {
                    continue;
                }
                self.scalar(&value)
            };
            let name = if schema_props {
                schema_props_json_name(field.name())
            } else {
                field.name().to_string()
            };
            out.insert(name, json);
        }
        Ok(Value::Object(out))
    }

    /// A field's value: lists, maps (keys sorted, as Go writes them), messages and scalars.
    fn value(&self, value: &prost_reflect::Value) -> Result<Value, ApiError> {
        Ok(match value {
            prost_reflect::Value::List(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.value(item))
                    .collect::<Result<_, _>>()?,
            ),
            prost_reflect::Value::Map(entries) => {
                let mut sorted = BTreeMap::new();
                for (key, v) in entries {
                    sorted.insert(map_key(key), self.value(v)?);
                }
                Value::Object(sorted.into_iter().collect())
            }
            prost_reflect::Value::Message(m) => self.message(m)?,
            scalar => self.scalar(scalar),
        })
    }

    fn scalar(&self, value: &prost_reflect::Value) -> Value {
        use prost_reflect::Value as V;
        match value {
            V::Bool(b) => json!(b),
            V::I32(v) => json!(v),
            V::I64(v) => json!(v),
            V::U32(v) => json!(v),
            V::U64(v) => json!(v),
            V::F32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number),
            V::F64(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
            V::String(s) => json!(s),
            V::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
            V::EnumNumber(n) => json!(n),
            V::Message(_) | V::List(_) | V::Map(_) => Value::Null,
        }
    }

    /// Embedded raw bytes (`RawExtension`, `FieldsV1`, `JSON`): JSON as is, or a nested protobuf object.
    fn embedded(&self, raw: &[u8]) -> Result<Option<Value>, ApiError> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.starts_with(MAGIC) {
            if self.depth >= MAX_NESTING {
                return Err(ApiError::bad_request(
                    "the protobuf body nests objects too deeply",
                ));
            }
            return self.schemas.decode_envelope(raw, self.depth + 1).map(Some);
        }
        serde_json::from_slice(raw).map(Some).map_err(|e| {
            ApiError::bad_request(format!(
                "an embedded object in the protobuf body is not JSON: {e}"
            ))
        })
    }
}

fn map_key(key: &prost_reflect::MapKey) -> String {
    use prost_reflect::MapKey as K;
    match key {
        K::Bool(b) => b.to_string(),
        K::I32(v) => v.to_string(),
        K::I64(v) => v.to_string(),
        K::U32(v) => v.to_string(),
        K::U64(v) => v.to_string(),
        K::String(s) => s.clone(),
    }
}

fn zero_kept(message: &str, field: &str) -> bool {
    ZERO_KEPT.iter().any(|k| match k.split_once('.') {
        Some((m, f)) => m == message && f == field,
        None => *k == field,
    })
}

fn is_zero(value: &prost_reflect::Value) -> bool {
    use prost_reflect::Value as V;
    match value {
        V::Bool(b) => !b,
        V::I32(v) => *v == 0,
        V::I64(v) => *v == 0,
        V::U32(v) => *v == 0,
        V::U64(v) => *v == 0,
        V::F32(v) => *v == 0.0,
        V::F64(v) => *v == 0.0,
        V::String(s) => s.is_empty(),
        V::Bytes(b) => b.is_empty(),
        V::EnumNumber(n) => *n == 0,
        V::Message(_) | V::List(_) | V::Map(_) => false,
    }
}

/// `JSONSchemaProps` field names differ from their JSON keys (`ref` is `$ref`, `xKubernetesEmbeddedResource`
/// is `x-kubernetes-embedded-resource`).
fn schema_props_json_name(name: &str) -> String {
    match name {
        "ref" => "$ref".into(),
        "schema" => "$schema".into(),
        n if n.starts_with("xKubernetes") => {
            let mut out = String::from("x-kubernetes");
            for c in n["xKubernetes".len()..].chars() {
                if c.is_ascii_uppercase() {
                    out.push('-');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
            out
        }
        n => n.to_string(),
    }
}

/// `metav1.Time` (whole seconds) or `MicroTime` (microseconds) as RFC 3339 UTC; the zero time is left
/// out (Go writes `null`).
fn time_json(seconds: i64, nanos: i64, micro: bool) -> Option<Value> {
    if seconds == 0 && nanos == 0 {
        return None;
    }
    let base = crate::util::format_rfc3339(u64::try_from(seconds).unwrap_or(0));
    Some(json!(if micro {
        format!(
            "{}.{:06}Z",
            base.trim_end_matches('Z'),
            nanos.clamp(0, 999_999_999) / 1000
        )
    } else {
        base
    }))
}

/// A duration in nanoseconds as Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let fraction = |value: u64, digits: u32| -> String {
        let scale = 10u64.pow(digits);
        let (whole, frac) = (value / scale, value % scale);
        if frac == 0 {
            whole.to_string()
        } else {
            let f = format!("{frac:0width$}", width = digits as usize);
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}µs", fraction(n, 3));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}ms", fraction(n, 6));
    }
    let secs_part = n % 60_000_000_000;
    let minutes = n / 60_000_000_000;
    let seconds = fraction(secs_part, 9);
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// With `KUBE_STANDIN_CAPTURE_DIR` set, every protobuf request body is written there
/// (`NNNN-METHOD-resource.pb`), to turn real clients' requests into test fixtures.
pub fn capture(method: &str, path: &str, body: &[u8]) {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = DIR.get_or_init(|| std::env::var_os("KUBE_STANDIN_CAPTURE_DIR").map(PathBuf::from))
    else {
        return;
    };
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let resource: String = path
        .rsplit('/')
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let file = dir.join(format!("{n:04}-{method}-{resource}.pb"));
    if let Err(e) = std::fs::write(&file, body) {
        tracing::warn!("cannot capture a request body to {}: {e}", file.display());
    }
}

/// Whether the client's first `Accept` type is plain protobuf (client-go's typed clients send
/// `application/vnd.kubernetes.protobuf, */*`; discovery and Table requests carry parameters and stay JSON).
pub fn prefers_protobuf(accept: &str) -> bool {
    accept.split(',').next().map(str::trim) == Some(CONTENT_TYPE)
}

/// Middleware: JSON answers to clients that prefer protobuf are re-encoded as protobuf when the kind has
/// a schema (objects, lists, `Status`); watches, proxies and anything not encodable stay JSON.
pub async fn answer_in_protobuf(
    axum::extract::State(decoder): axum::extract::State<Decoder>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header;
    let path = request.uri().path();
    let query = crate::util::parse_query(request.uri().query());
    let wants = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_protobuf)
        && (path.starts_with("/api/") || path.starts_with("/apis/"))
        && !path.contains("/watch/")
        && !path.ends_with("/proxy")
        && !path.contains("/proxy/")
        && !path.ends_with("/portforward")
        && !query
            .iter()
            .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let Some(Ok(schemas)) = decoder.loaded.get().cloned().filter(|_| wants && json) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return axum::response::IntoResponse::into_response(ApiError::internal("could not buffer an answer"));
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| schemas.encode_object(&v));
    let body = match encoded {
        Ok(protobuf) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            axum::body::Body::from(protobuf)
        }
        Err(why) => {
            tracing::debug!("answering JSON to a protobuf client: {why}");
            axum::body::Body::from(bytes)
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, body)
}

type Loaded = Arc<OnceLock<Result<Arc<Schemas>, String>>>;

/// The schemas a server decodes with: compiled once per folder and process (test suites start many
/// servers), in the background from server start, waited for by the first protobuf body.
#[derive(Clone, Debug)]
pub struct Decoder {
    dir: PathBuf,
    loaded: Loaded,
}

impl Decoder {
    /// A decoder for the schemas in `dir`; nothing is read until [`Decoder::warm_up`] or the first body.
    pub fn new(dir: PathBuf) -> Decoder {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Loaded>>> = OnceLock::new();
        let loaded = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(dir.clone())
            .or_default()
            .clone();
        Decoder { dir, loaded }
    }

    /// The schema folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compiles the schemas (blocking) unless that is done; the result is shared by every clone.
    pub fn schemas(&self) -> Result<Arc<Schemas>, String> {
        self.loaded
            .get_or_init(|| Schemas::compile(&self.dir).map(Arc::new))
            .clone()
    }

    /// Starts compiling on a blocking thread so the first protobuf request does not wait.
    pub fn warm_up(&self) {
        if self.loaded.get().is_none() {
            let me = self.clone();
            tokio::task::spawn_blocking(move || {
                let _ = me.schemas();
            });
        }
    }

    /// Decodes a request body, compiling the schemas first if needed (off the async threads).
    pub async fn decode(&self, body: &[u8]) -> Result<Value, ApiError> {
        let schemas = match self.loaded.get() {
            Some(done) => done.clone(),
            None => {
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.schemas())
                    .await
                    .map_err(|e| {
                        ApiError::new(500, "InternalError", format!("loading protobuf schemas: {e}"))
                    })?
            }
        };
        let schemas = schemas.map_err(|e| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "{CONTENT_TYPE} bodies cannot be read: the protobuf schemas did not load ({e}); send JSON"
                ),
            )
        })?;
        schemas.decode_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(2_000), "2µs");
        assert_eq!(go_duration(-5_000_000_000), "-5s");
    }

    #[test]
    fn names_schema_props_fields_like_json() {
        assert_eq!(schema_props_json_name("ref"), "$ref");
        assert_eq!(
            schema_props_json_name("xKubernetesPreserveUnknownFields"),
            "x-kubernetes-preserve-unknown-fields"
        );
        assert_eq!(schema_props_json_name("type"), "type");
    }

    #[test]
    fn only_plain_protobuf_first_is_answered_in_protobuf() {
        assert!(prefers_protobuf("application/vnd.kubernetes.protobuf, */*"));
        assert!(prefers_protobuf(
            "application/vnd.kubernetes.protobuf,application/json"
        ));
        assert!(!prefers_protobuf(
            "application/json, application/vnd.kubernetes.protobuf"
        ));
        assert!(!prefers_protobuf(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
    }

    #[test]
    fn maps_groups_to_packages() {
        assert_eq!(short_group(""), "core");
        assert_eq!(short_group("rbac.authorization.k8s.io"), "rbac");
        assert_eq!(short_group("apps"), "apps");
    }
}

#[cfg(test)]
mod captured {
    //! Bodies captured from the real clients (`KUBE_STANDIN_CAPTURE_DIR`) and the JSON they must become.

    use super::*;

    fn schemas() -> Arc<Schemas> {
        static SCHEMAS: OnceLock<Arc<Schemas>> = OnceLock::new();
        SCHEMAS
            .get_or_init(|| {
                let dir = shared_protos_dir();
                Arc::new(Schemas::compile(&dir).unwrap_or_else(|e| {
                    panic!(
                        "the k8s protos must sit beside the repository ({}): {e}",
                        dir.display()
                    )
                }))
            })
            .clone()
    }

    fn decode(fixture: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/protobuf")
            .join(fixture);
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        schemas()
            .decode_body(&body)
            .unwrap_or_else(|e| panic!("{fixture}: {e}"))
    }

    #[test]
    fn kubectl_create_bodies_become_the_json_kubectl_would_send() {
        assert_eq!(
            decode("kubectl-1.32-create-namespace.pb"),
            json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team"}, "spec": {}, "status": {}})
        );
        // An empty value stays: map entries are kept whatever their value.
        assert_eq!(
            decode("kubectl-1.32-create-configmap.pb"),
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "settings", "namespace": "team"},
                   "data": {"empty": "", "mode": "fast"}})
        );
        // `bytes` map values are base64, as in JSON.
        for fixture in ["kubectl-1.32-create-secret.pb", "kubectl-1.35-create-secret.pb"] {
            assert_eq!(
                decode(fixture),
                json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "creds", "namespace": "team"},
                       "data": {"password": "czNjcmV0"}}),
                "{fixture}"
            );
        }
        assert_eq!(
            decode("kubectl-1.35-create-serviceaccount.pb"),
            json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "bot", "namespace": "team"}})
        );
    }

    #[test]
    fn binary_data_and_int_or_string_ports_decode() {
        assert_eq!(
            decode("kubectl-1.32-create-configmap-binary.pb"),
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "bin"},
                   "data": {"text": "x"}, "binaryData": {"blob": "AAH+/w=="}})
        );
        let service = decode("kubectl-1.32-create-service.pb");
        assert_eq!(
            service["spec"]["ports"],
            json!([
                {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https"}
            ])
        );
        assert_eq!(service["spec"]["type"], "ClusterIP");
    }

    #[test]
    fn workloads_keep_structs_and_drop_zero_values() {
        // The zero `status.replicas` (a value field) goes, `spec.replicas` (a pointer) stays, empty
        // structs stay as `{}` as Go writes them, the zero creationTimestamp goes.
        let expected = json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}]}
                },
                "strategy": {}
            },
            "status": {}
        });
        assert_eq!(decode("kubectl-1.32-create-deployment.pb"), expected);
        assert_eq!(decode("kubectl-1.35-create-deployment.pb"), expected);
        assert_eq!(
            decode("kubectl-1.32-create-job.pb"),
            json!({"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "once", "namespace": "team"},
                   "spec": {"template": {"metadata": {}, "spec": {
                       "containers": [{"name": "once", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                       "restartPolicy": "Never"}}},
                   "status": {}})
        );
    }

    #[test]
    fn rbac_bodies_keep_the_core_group_as_an_empty_string() {
        assert_eq!(
            decode("kubectl-1.32-create-role.pb"),
            json!({"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1",
                   "metadata": {"name": "reader", "namespace": "team"},
                   "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "configmaps"]}]})
        );
        assert_eq!(
            decode("kubectl-1.32-create-rolebinding.pb"),
            json!({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                   "metadata": {"name": "reader", "namespace": "team"},
                   "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}})
        );
    }

    #[test]
    fn access_reviews_decode() {
        assert_eq!(
            decode("kubectl-1.32-create-selfsubjectaccessreview.pb")["spec"],
            json!({"resourceAttributes": {"namespace": "team", "verb": "create", "group": "apps", "resource": "deployments"}})
        );
        assert_eq!(
            decode("kubectl-1.35-auth-can-i-list.pb")["spec"],
            json!({"namespace": "team"})
        );
    }

    #[test]
    fn helm_release_secrets_and_delete_options_decode() {
        for (fixture, release) in [
            ("helm-4.1.4-release-secret.pb", "tiny"),
            ("helm-3.17.2-release-secret.pb", "tiny3"),
        ] {
            let secret = decode(fixture);
            assert_eq!(secret["type"], "helm.sh/release.v1", "{fixture}");
            assert_eq!(
                secret["metadata"]["name"],
                format!("sh.helm.release.v1.{release}.v1")
            );
            assert_eq!(secret["metadata"]["labels"]["owner"], "helm");
            assert_eq!(secret["metadata"]["labels"]["status"], "pending-install");
            // helm's payload is base64(gzip(JSON)) inside the base64 of the bytes field.
            let outer = secret["data"]["release"].as_str().unwrap();
            let inner = base64::engine::general_purpose::STANDARD.decode(outer).unwrap();
            let gzip = base64::engine::general_purpose::STANDARD.decode(inner).unwrap();
            assert_eq!(&gzip[..2], &[0x1f, 0x8b], "{fixture}: a gzip stream");
        }
        for fixture in ["helm-4.1.4-deleteoptions.pb", "helm-3.17.2-deleteoptions.pb"] {
            assert_eq!(
                decode(fixture),
                json!({"kind": "DeleteOptions", "apiVersion": "v1"}),
                "{fixture}"
            );
        }
    }

    /// Encodes `fields` (name → value) as the message of `kind` in an envelope, as client-go would.
    fn envelope(api_version: &str, kind: &str, build: impl FnOnce(&mut DynamicMessage)) -> Vec<u8> {
        use prost_reflect::prost::Message as _;
        let schemas = schemas();
        let mut message = DynamicMessage::new(schemas.message_for(api_version, kind).unwrap().clone());
        build(&mut message);
        let mut unknown = DynamicMessage::new(schemas.unknown.clone());
        let mut type_meta = DynamicMessage::new(
            schemas
                .unknown
                .get_field_by_name("typeMeta")
                .unwrap()
                .kind()
                .as_message()
                .unwrap()
                .clone(),
        );
        type_meta.set_field_by_name("apiVersion", prost_reflect::Value::String(api_version.into()));
        type_meta.set_field_by_name("kind", prost_reflect::Value::String(kind.into()));
        unknown.set_field_by_name("typeMeta", prost_reflect::Value::Message(type_meta));
        unknown.set_field_by_name("raw", prost_reflect::Value::Bytes(message.encode_to_vec().into()));
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    #[test]
    fn pointer_zeros_are_kept_and_kinds_without_schema_are_415() {
        let body = envelope("v1", "DeleteOptions", |m| {
            m.set_field_by_name("gracePeriodSeconds", prost_reflect::Value::I64(0));
            m.set_field_by_name(
                "propagationPolicy",
                prost_reflect::Value::String("Foreground".into()),
            );
        });
        assert_eq!(
            schemas().decode_body(&body).unwrap(),
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "propagationPolicy": "Foreground"})
        );
        let unknown = envelope("v1", "ConfigMap", |_| {});
        let relabelled: Vec<u8> = String::from_utf8_lossy(&unknown)
            .replace("ConfigMap", "Clusters1")
            .replace("\u{2}v1", "\u{2}x1")
            .into_bytes();
        let err = schemas().decode_body(&relabelled).unwrap_err();
        assert_eq!(err.code, 415, "{err}");
        assert!(err.message.contains("Kind=Clusters1"), "{err}");
    }

    /// Sets `value` at a dotted path of nested messages (created on the way).
    fn set(message: &mut DynamicMessage, path: &str, value: prost_reflect::Value) {
        let (parents, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
        let mut current = message;
        for name in parents.split('.').filter(|n| !n.is_empty()) {
            current = current
                .get_field_by_name_mut(name)
                .unwrap()
                .as_message_mut()
                .unwrap();
        }
        current.set_field_by_name(last, value);
    }

    #[test]
    fn micro_time_quantity_and_raw_extension_map_like_json() {
        use prost_reflect::Value as V;
        let event = envelope("v1", "Event", |m| {
            set(m, "eventTime.seconds", V::I64(951_782_400));
            set(m, "eventTime.nanos", V::I32(123_456_789));
            set(m, "count", V::I32(0));
        });
        let event = schemas().decode_body(&event).unwrap();
        assert_eq!(event["eventTime"], "2000-02-29T00:00:00.123456Z");
        assert!(
            event.get("count").is_none(),
            "a zero value field is omitted: {event}"
        );

        let quota = envelope("v1", "ResourceQuota", |m| {
            let quantity = m
                .descriptor()
                .get_field_by_name("spec")
                .and_then(|f| f.kind().as_message()?.get_field_by_name("hard"))
                .and_then(|f| {
                    f.kind()
                        .as_message()?
                        .map_entry_value_field()
                        .kind()
                        .as_message()
                        .cloned()
                })
                .unwrap();
            let mut cpu = DynamicMessage::new(quantity);
            cpu.set_field_by_name("string", V::String("500m".into()));
            let hard = [(prost_reflect::MapKey::String("cpu".into()), V::Message(cpu))].into();
            set(m, "spec.hard", V::Map(hard));
        });
        assert_eq!(
            schemas().decode_body(&quota).unwrap()["spec"],
            json!({"hard": {"cpu": "500m"}})
        );

        let revision = envelope("apps/v1", "ControllerRevision", |m| {
            set(
                m,
                "data.raw",
                V::Bytes(br#"{"spec":{"replicas":1}}"#.to_vec().into()),
            );
            set(m, "revision", V::I64(2));
        });
        let revision = schemas().decode_body(&revision).unwrap();
        assert_eq!(revision["data"], json!({"spec": {"replicas": 1}}));
        assert_eq!(revision["revision"], 2);
        let broken = envelope("apps/v1", "ControllerRevision", |m| {
            set(m, "data.raw", V::Bytes(b"{not json".to_vec().into()));
        });
        assert_eq!(schemas().decode_body(&broken).unwrap_err().code, 400);
    }

    #[test]
    fn every_captured_body_round_trips_through_the_encoder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let json = decode(&name);
            let encoded = schemas()
                .encode_object(&json)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(schemas().decode_body(&encoded).unwrap(), json, "{name}");
        }
        let stored = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "creationTimestamp": "2026-12-06T22:56:35Z", "resourceVersion": "7",
                         "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:data": {}},
                                            "time": "2026-12-06T22:56:35Z"}]},
            "data": {"a": "1"}, "notInTheSchema": true});
        let back = schemas()
            .decode_body(&schemas().encode_object(&stored).unwrap())
            .unwrap();
        let mut expected = stored.clone();
        expected.as_object_mut().unwrap().remove("notInTheSchema");
        assert_eq!(back, expected);
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "configmaps \"c\" not found", "reason": "NotFound", "code": 404,
                            "details": {"name": "c", "kind": "configmaps"}});
        let back = schemas()
            .decode_body(&schemas().encode_object(&status).unwrap())
            .unwrap();
        assert_eq!(back["code"], 404);
        assert_eq!(back["details"], json!({"name": "c", "kind": "configmaps"}));
        let custom = json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster"});
        assert!(
            schemas().encode_object(&custom).is_err(),
            "custom resources stay JSON"
        );
    }

    #[test]
    fn parses_the_times_it_formats() {
        for secs in [0u64, 951_782_400, 1_767_225_599, 1_796_597_894] {
            assert_eq!(
                parse_rfc3339(&crate::util::format_rfc3339(secs)),
                Some((secs as i64, 0))
            );
        }
        assert_eq!(
            parse_rfc3339("2000-02-29T01:00:00.5+01:00"),
            Some((951_782_400, 500_000_000))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2000-02-29T01:00:00"), None, "no offset");
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59.25Z"),
            Some((-1, 250_000_000)),
            "nanoseconds stay positive before the epoch"
        );
    }

    #[test]
    fn garbage_is_a_400() {
        for body in [
            &b""[..],
            b"{}",
            b"k8s\0\xff\xff\xff",
            b"k8s\0\x0a\x02\x0a\x00",
            b"k8s\0",
        ] {
            let err = schemas().decode_body(body).unwrap_err();
            assert_eq!(err.code, 400, "{body:?}: {err}");
        }
    }

    #[test]
    fn kubernetes_special_types_map_like_json() {
        use prost_reflect::Value as V;
        let body = envelope("apps/v1", "Deployment", |m| {
            set(m, "spec.strategy.rollingUpdate.maxSurge.type", V::I64(1));
            set(
                m,
                "spec.strategy.rollingUpdate.maxSurge.strVal",
                V::String("25%".into()),
            );
            set(m, "spec.strategy.rollingUpdate.maxUnavailable.type", V::I64(0));
            set(m, "spec.strategy.rollingUpdate.maxUnavailable.intVal", V::I32(0));
            set(m, "spec.replicas", V::I32(0));
            set(m, "metadata.deletionTimestamp.seconds", V::I64(951_782_400));
        });
        let json = schemas().decode_body(&body).unwrap();
        assert_eq!(
            json["metadata"],
            json!({"deletionTimestamp": "2000-02-29T00:00:00Z"})
        );
        assert_eq!(
            json["spec"],
            json!({"replicas": 0, "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}})
        );
    }
}

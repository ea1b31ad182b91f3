//! `/openapi/v2` and `/openapi/v3` built from the upstream Kubernetes OpenAPI v2 document (loaded once
//! per process from `../shared/reference/k8s-openapi-v2-1.36.json`, see [`Upstream::load`]) plus each
//! registered CRD's schema with its `x-kubernetes-group-version-kind`.
//!
//! The v3 documents are derived per group/version the way the API server publishes them: the paths
//! under `/api/v1` or `/apis/G/V`, body parameters turned into `requestBody`, `#/definitions/` refs into
//! `#/components/schemas/`, a `$ref` with siblings wrapped in `allOf`, and only the schemas the
//! paths reach. kubectl needs them for `explain`, for the `fieldValidation` check, and for client-side
//! apply (the patch media types say whether strategic merge applies; the schemas' patch strategies and
//! merge keys say how lists merge). Without the upstream file, built-in group/versions get a minimal
//! document (patch operations declaring `fieldValidation`) and `/openapi/v2` answers 404.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::error::Error;
use crate::registry::{Registry, ResourceType};

/// The gap a client asking for protobuf OpenAPI v2 is told about (in a 501).
pub const V2_PROTOBUF_GAP: &str = "the protobuf (gnostic) encoding of /openapi/v2 that client-go's OpenAPISchema() and `kubectl explain --output=plaintext-openapiv2` ask for (/openapi/v2 is served as JSON, /openapi/v3 completely)";

const SCHEMA_PREFIX_V2: &str = "#/definitions/";
const SCHEMA_PREFIX_V3: &str = "#/components/schemas/";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";

/// The upstream v2 document and the v3 documents derived from it, shared by every server in the
/// process: the 4 MB file is read at start and parsed once, when first needed (an OpenAPI request or a
/// strategic merge patch; a debug build takes a few hundred milliseconds), so test processes that
/// never need it pay nothing.
pub struct Upstream {
    origin: String,
    v2_bytes: Bytes,
    parsed: OnceLock<Result<Map<String, Value>, String>>,
    v3: Mutex<HashMap<String, Bytes>>,
    by_gvk: OnceLock<HashMap<(String, String, String), String>>,
    /// `/openapi/v2` with a set of CRDs added, by a hash of those additions.
    v2_with_crds: Mutex<HashMap<u64, Bytes>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("bytes", &self.v2_bytes.len())
            .finish()
    }
}

/// `../shared/reference/k8s-openapi-v2-1.36.json` beside the repository, found like the CRDs.
pub fn shared_openapi_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("reference")
        .join("k8s-openapi-v2-1.36.json")
}

fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

impl Upstream {
    /// Reads and parses an OpenAPI v2 document, once per path per process.
    pub fn load(path: &Path) -> Result<Arc<Upstream>, Error> {
        type Cache = Mutex<HashMap<PathBuf, Arc<Upstream>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = guard.get(path) {
            return Ok(hit.clone());
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        })?;
        let up = Arc::new(Upstream {
            origin: path.display().to_string(),
            v2_bytes: Bytes::from(bytes),
            parsed: OnceLock::new(),
            v3: Mutex::new(HashMap::new()),
            by_gvk: OnceLock::new(),
            v2_with_crds: Mutex::new(HashMap::new()),
        });
        guard.insert(path.to_path_buf(), up.clone());
        Ok(up)
    }

    /// Parses a v2 document given as bytes now; `origin` names it in errors.
    pub fn from_slice(bytes: &[u8], origin: &str) -> Result<Upstream, Error> {
        let up = Upstream {
            origin: origin.to_string(),
            v2_bytes: Bytes::copy_from_slice(bytes),
            parsed: OnceLock::new(),
            v3: Mutex::new(HashMap::new()),
            by_gvk: OnceLock::new(),
            v2_with_crds: Mutex::new(HashMap::new()),
        };
        up.parsed().map_err(Error::Start)?;
        Ok(up)
    }

    /// The parsed document, or why it is unusable.
    pub fn parsed(&self) -> Result<&Map<String, Value>, String> {
        self.parsed
            .get_or_init(|| {
                let bad = |what: String| {
                    format!(
                        "{} is not an OpenAPI v2 document ({what}); pass --openapi with the Kubernetes swagger.json",
                        self.origin
                    )
                };
                let v2: Value = serde_json::from_slice(&self.v2_bytes).map_err(|e| bad(e.to_string()))?;
                let Value::Object(v2) = v2 else {
                    return Err(bad("not a JSON object".into()));
                };
                if !v2.get("definitions").is_some_and(Value::is_object)
                    || !v2.get("paths").is_some_and(Value::is_object)
                {
                    return Err(bad("no definitions or paths".into()));
                }
                Ok(v2)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The schema of a built-in kind, for strategic merge patches; `None` for custom resources and
    /// kinds the document does not define.
    pub fn schema_for(&self, rt: &ResourceType) -> Option<crate::strategic::Schema<'_>> {
        if rt.crd_name.is_some() {
            return None;
        }
        let definitions = self.section("definitions");
        let index = self.by_gvk.get_or_init(|| {
            let mut index = HashMap::new();
            for (name, def) in definitions {
                for gvk in def
                    .get("x-kubernetes-group-version-kind")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let field = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    index.insert((field("group"), field("version"), field("kind")), name.clone());
                }
            }
            index
        });
        let name = index.get(&(rt.group.clone(), rt.version.clone(), rt.kind.clone()))?;
        Some(crate::strategic::Schema {
            definitions,
            root: definitions.get(name)?,
        })
    }

    fn section(&self, key: &str) -> &Map<String, Value> {
        self.parsed()
            .ok()
            .and_then(|m| m.get(key))
            .and_then(Value::as_object)
            .unwrap_or(empty_map())
    }

    /// Whether the upstream document has paths for a group/version.
    fn has_group_version(&self, group: &str, version: &str) -> bool {
        let prefix = format!("/{}/", gv_key(group, version));
        self.section("paths").keys().any(|p| p.starts_with(&prefix))
    }

    /// The v3 document of a built-in group/version (cached serialized).
    fn builtin_v3(&self, group: &str, version: &str) -> Option<Bytes> {
        let key = gv_key(group, version);
        if let Some(hit) = self.v3.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Some(hit.clone());
        }
        if !self.has_group_version(group, version) {
            return None;
        }
        let prefix = format!("/{key}/");
        let params = self.section("parameters");
        let mut paths = Map::new();
        for (p, item) in self.section("paths") {
            if p.starts_with(&prefix) {
                let mut item = convert_path_item(item, params);
                if p.ends_with("/proxy") || p.ends_with("/proxy/{path}") {
                    proxy_options_gvk(&mut item);
                }
                paths.insert(p.clone(), item);
            }
        }
        let doc = self.v3_document(paths, Map::new());
        let bytes = Bytes::from(doc.to_string());
        self.v3
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, bytes.clone());
        Some(bytes)
    }

    /// Completes a v3 document: every schema the paths and `extra` schemas reach, converted.
    fn v3_document(&self, paths: Map<String, Value>, extra: Map<String, Value>) -> Value {
        let defs = self.section("definitions");
        let mut wanted = BTreeSet::new();
        collect_refs(&Value::Object(paths.clone()), &mut wanted);
        collect_refs(&Value::Object(extra.clone()), &mut wanted);
        let mut schemas = extra;
        let mut queue: Vec<String> = wanted.into_iter().collect();
        while let Some(name) = queue.pop() {
            if schemas.contains_key(&name) {
                continue;
            }
            let Some(def) = defs.get(&name) else { continue };
            let converted = convert_schema(def);
            let mut more = BTreeSet::new();
            collect_refs(&converted, &mut more);
            queue.extend(more.into_iter().filter(|n| !schemas.contains_key(n)));
            schemas.insert(name, converted);
        }
        json!({
            "openapi": "3.0.0",
            "info": self.parsed().ok().and_then(|m| m.get("info")).cloned().unwrap_or(json!({"title": "Kubernetes", "version": "unversioned"})),
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}}
            }
        })
    }
}

/// Rewrites a v2 schema for v3: refs into `#/components/schemas/`, a `$ref` with siblings into `allOf`.
fn convert_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                if k == "$ref" {
                    continue;
                }
                out.insert(k.clone(), convert_schema(val));
            }
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let r = r.replacen(SCHEMA_PREFIX_V2, SCHEMA_PREFIX_V3, 1);
                if out.is_empty() {
                    out.insert("$ref".into(), json!(r));
                } else {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(convert_schema).collect()),
        other => other.clone(),
    }
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(SCHEMA_PREFIX_V3))
            {
                out.insert(name.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn resolve_param<'a>(p: &'a Value, params: &'a Map<String, Value>) -> &'a Value {
    p.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/parameters/"))
        .and_then(|name| params.get(name))
        .unwrap_or(p)
}

/// A v2 non-body parameter as v3 writes it (`type` etc. move into `schema`).
fn convert_param(p: &Value) -> Value {
    let mut out = Map::new();
    let mut schema = Map::new();
    for (k, v) in p.as_object().into_iter().flatten() {
        match k.as_str() {
            "name" | "in" | "description" | "required" => {
                out.insert(k.clone(), v.clone());
            }
            _ => {
                schema.insert(k.clone(), convert_schema(v));
            }
        }
    }
    out.insert("schema".into(), Value::Object(schema));
    Value::Object(out)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn convert_operation(op: &Value, params: &Map<String, Value>) -> Value {
    let Some(m) = op.as_object() else {
        return op.clone();
    };
    let consumes = strings(m.get("consumes"));
    let produces = strings(m.get("produces"));
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                let mut list = Vec::new();
                for p in v.as_array().into_iter().flatten() {
                    let p = resolve_param(p, params);
                    if p.get("in").and_then(Value::as_str) == Some("body") {
                        let schema = convert_schema(p.get("schema").unwrap_or(&json!({})));
                        let content: Map<String, Value> = consumes
                            .iter()
                            .map(|ct| (ct.clone(), json!({"schema": schema})))
                            .collect();
                        let mut body = json!({"content": content});
                        if p.get("required").and_then(Value::as_bool) == Some(true) {
                            body["required"] = json!(true);
                        }
                        out.insert("requestBody".into(), body);
                    } else {
                        list.push(convert_param(p));
                    }
                }
                if !list.is_empty() {
                    out.insert("parameters".into(), Value::Array(list));
                }
            }
            "responses" => {
                let mut responses = Map::new();
                for (code, r) in v.as_object().into_iter().flatten() {
                    let mut resp = json!({"description": r.get("description").cloned().unwrap_or(json!(""))});
                    if let Some(schema) = r.get("schema") {
                        let schema = convert_schema(schema);
                        let content: Map<String, Value> = produces
                            .iter()
                            .map(|ct| (ct.clone(), json!({"schema": schema})))
                            .collect();
                        resp["content"] = Value::Object(content);
                    }
                    responses.insert(code.clone(), resp);
                }
                out.insert("responses".into(), Value::Object(responses));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The API server's v3 documents give a connect (proxy) operation the kind of its options
/// (`PodProxyOptions`, `ServiceProxyOptions`, `NodeProxyOptions`), not the kind of the object. client-go's
/// field-validation check walks every PATCH operation carrying an object's GVK and gives up on the first
/// one without a `fieldValidation` parameter: a proxy PATCH labelled `Service` made helm fall back to
/// OpenAPI v2 and fail its upgrade.
fn proxy_options_gvk(item: &mut Value) {
    for op in item.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
        if let Some(kind) = op
            .pointer_mut("/x-kubernetes-group-version-kind/kind")
            .filter(|k| k.as_str().is_some_and(|k| !k.ends_with("ProxyOptions")))
        {
            *kind = Value::String(format!("{}ProxyOptions", kind.as_str().unwrap_or_default()));
        }
    }
}

fn convert_path_item(item: &Value, params: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in item.as_object().into_iter().flatten() {
        if k == "parameters" {
            let list: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| convert_param(resolve_param(p, params)))
                .collect();
            out.insert(k.clone(), Value::Array(list));
        } else {
            out.insert(k.clone(), convert_operation(v, params));
        }
    }
    Value::Object(out)
}

/// The schema name the API server gives a custom resource: the group reversed, then version and kind
/// (`io.cnpg.postgresql.v1.Cluster`).
pub fn crd_schema_name(rt: &ResourceType, kind: &str) -> String {
    let mut parts: Vec<&str> = rt.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{kind}", parts.join("."), rt.version)
}

/// A custom resource's schema and list schema, with refs written with `prefix` (`#/definitions/` for
/// v2, `#/components/schemas/` for v3).
fn crd_schemas(rt: &ResourceType, v3: bool) -> Vec<(String, Value)> {
    let prefix = if v3 { SCHEMA_PREFIX_V3 } else { SCHEMA_PREFIX_V2 };
    let reference = |name: &str, description: &str| {
        if v3 {
            json!({"allOf": [{"$ref": format!("{prefix}{name}")}], "description": description})
        } else {
            json!({"$ref": format!("{prefix}{name}"), "description": description})
        }
    };
    let api_version = json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"});
    let kind = json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"});
    let mut schema = rt
        .schema
        .as_deref()
        .cloned()
        .unwrap_or(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    let props = crate::util::ensure_object(&mut schema, &["properties"]);
    props.insert("apiVersion".into(), api_version.clone());
    props.insert("kind".into(), kind.clone());
    props.insert(
        "metadata".into(),
        reference(OBJECT_META, "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
    );
    schema["x-kubernetes-group-version-kind"] =
        json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
    let item_name = crd_schema_name(rt, &rt.kind);
    let list_kind = format!("{}List", rt.kind);
    let list = json!({
        "description": format!("{list_kind} is a list of {}", rt.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": api_version,
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", rt.plural),
                "type": "array",
                "items": {"$ref": format!("{prefix}{item_name}")}
            },
            "kind": kind,
            "metadata": reference(LIST_META, "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
        },
        "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": list_kind}]
    });
    vec![(item_name, schema), (crd_schema_name(rt, &list_kind), list)]
}

/// The REST paths of a custom resource, as v2 or v3 operations.
fn crd_paths(rt: &ResourceType, v3: bool) -> Vec<(String, Value)> {
    let prefix = if v3 { SCHEMA_PREFIX_V3 } else { SCHEMA_PREFIX_V2 };
    let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let item = format!("{prefix}{}", crd_schema_name(rt, &rt.kind));
    let list = format!("{prefix}{}", crd_schema_name(rt, &format!("{}List", rt.kind)));
    let query = |name: &str, description: &str| {
        if v3 {
            json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": "query", "description": description, "type": "string", "uniqueItems": true})
        }
    };
    let path_param = |name: &str| {
        if v3 {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true})
        }
    };
    let write_params = vec![
        query(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        query(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
    ];
    let op = |action: &str, verb: &str, body: Option<(&str, &[&str])>, response: &str, params: &[Value]| {
        let mut o = json!({
            "operationId": format!("{verb}{}", rt.kind),
            "description": format!("{verb} {}", rt.kind),
            "tags": [rt.api_version().replace(['/', '.'], "_")],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        });
        let mut params = params.to_vec();
        if v3 {
            o["responses"] = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": response}}}}});
            if let Some((schema, types)) = body {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": {"$ref": schema}})))
                    .collect();
                o["requestBody"] = json!({"content": content, "required": true});
            }
        } else {
            o["responses"] = json!({"200": {"description": "OK", "schema": {"$ref": response}}});
            o["produces"] = json!(["application/json", "application/yaml"]);
            if let Some((schema, types)) = body {
                o["consumes"] = json!(types);
                params.insert(
                    0,
                    json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": schema}}),
                );
            }
        }
        if !params.is_empty() {
            o["parameters"] = Value::Array(params);
        }
        o
    };
    let patch_types: &[&str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        "application/apply-patch+cbor",
    ];
    let json_body: &[&str] = &["application/json", "application/yaml"];
    let patch_schema = format!("{prefix}{PATCH}");
    let status = format!("{prefix}{STATUS}");
    let delete_options = format!("{prefix}{DELETE_OPTIONS}");
    let ns = if rt.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let base = format!("{}{ns}/{}", rt.gv_path(), rt.plural);
    let mut common = vec![];
    if rt.namespaced {
        common.push(path_param("namespace"));
    }
    let mut named = common.clone();
    named.insert(0, path_param("name"));
    let mut patch_params = write_params.clone();
    patch_params.push(query("force", "Force is going to \"force\" Apply requests."));
    let mut out = vec![
        (
            base.clone(),
            json!({
                "parameters": common,
                "get": op("list", "list", None, &list, &[query("labelSelector", "A selector to restrict the list of returned objects by their labels."), query("watch", "Watch for changes to the described resources.")]),
                "post": op("post", "create", Some((&item, json_body)), &item, &write_params),
                "delete": op("deletecollection", "deletecollection", Some((&delete_options, json_body)), &status, &[]),
            }),
        ),
        (
            format!("{base}/{{name}}"),
            json!({
                "parameters": named,
                "get": op("get", "read", None, &item, &[]),
                "put": op("put", "replace", Some((&item, json_body)), &item, &write_params),
                "patch": op("patch", "patch", Some((&patch_schema, patch_types)), &item, &patch_params),
                "delete": op("delete", "delete", Some((&delete_options, json_body)), &status, &[]),
            }),
        ),
    ];
    if rt.has_status() {
        out.push((
            format!("{base}/{{name}}/status"),
            json!({
                "parameters": named,
                "get": op("get", "read", None, &item, &[]),
                "put": op("put", "replace", Some((&item, json_body)), &item, &write_params),
                "patch": op("patch", "patch", Some((&patch_schema, patch_types)), &item, &patch_params),
            }),
        ));
    }
    out
}

fn hash_of(reg: &Registry, group: &str, version: &str) -> String {
    let mut h = DefaultHasher::new();
    reg.generation.hash(&mut h);
    for t in reg.in_group_version(group, version) {
        (&t.kind, &t.plural, t.namespaced).hash(&mut h);
    }
    format!("{:016X}", h.finish())
}

/// `GET /openapi/v3`: the served group/versions.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let key = gv_key(&group, &v);
            let url = format!("/openapi/v3/{key}?hash={}", hash_of(reg, &group, &v));
            paths.insert(key, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/G/V`; `None` for a group/version not served.
pub fn group_version_doc(
    reg: &Registry,
    upstream: Option<&Upstream>,
    group: &str,
    version: &str,
) -> Option<Bytes> {
    let types = reg.in_group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let upstream = upstream.filter(|u| u.parsed().is_ok());
    let crds: Vec<&Arc<ResourceType>> = types.iter().filter(|t| t.crd_name.is_some()).collect();
    if crds.is_empty() {
        if let Some(bytes) = upstream.and_then(|u| u.builtin_v3(group, version)) {
            return Some(bytes);
        }
        return Some(Bytes::from(minimal_doc(&types).to_string()));
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in crds {
        paths.extend(crd_paths(t, true));
        schemas.extend(crd_schemas(t, true));
    }
    let doc = match upstream {
        Some(u) => u.v3_document(paths, schemas),
        None => json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths,
            "components": {"schemas": schemas}
        }),
    };
    Some(Bytes::from(doc.to_string()))
}

/// A map serialized as two maps' entries, the second overriding: the upstream document plus the CRDs'
/// additions without deep-copying 4 MB per request.
struct Merged<'a>(&'a Map<String, Value>, &'a Map<String, Value>);

impl Serialize for Merged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !self.1.contains_key(k) {
                m.serialize_entry(k, v)?;
            }
        }
        for (k, v) in self.1 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// `GET /openapi/v2`: the upstream document plus every CRD's schema and paths; `None` without upstream.
pub fn v2_doc(reg: &Registry, upstream: Option<&Upstream>) -> Result<Bytes, String> {
    let up = upstream.ok_or(
        "/openapi/v2 needs the upstream document: pass --openapi FILE (shared/reference/k8s-openapi-v2-1.36.json)",
    )?;
    let v2 = up.parsed()?;
    let crds: Vec<&Arc<ResourceType>> = reg.types().iter().filter(|t| t.crd_name.is_some()).collect();
    if crds.is_empty() {
        return Ok(up.v2_bytes.clone());
    }
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for t in crds {
        paths.extend(crd_paths(t, false));
        definitions.extend(crd_schemas(t, false));
    }
    struct Doc<'a> {
        v2: &'a Map<String, Value>,
        paths: Merged<'a>,
        definitions: Merged<'a>,
    }
    impl Serialize for Doc<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            for (k, v) in self.v2 {
                match k.as_str() {
                    "paths" => m.serialize_entry(k, &self.paths)?,
                    "definitions" => m.serialize_entry(k, &self.definitions)?,
                    _ => m.serialize_entry(k, v)?,
                }
            }
            m.end()
        }
    }
    // Serializing 4 MB takes a while in a debug build: keep the result per set of CRD additions.
    let key = {
        let mut h = DefaultHasher::new();
        Value::Object(paths.clone()).to_string().hash(&mut h);
        Value::Object(definitions.clone()).to_string().hash(&mut h);
        h.finish()
    };
    if let Some(hit) = up
        .v2_with_crds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return Ok(hit.clone());
    }
    let doc = Doc {
        v2,
        paths: Merged(up.section("paths"), &paths),
        definitions: Merged(up.section("definitions"), &definitions),
    };
    let bytes = serde_json::to_vec(&doc)
        .map(Bytes::from)
        .map_err(|e| format!("serializing /openapi/v2: {e}"))?;
    let mut cache = up.v2_with_crds.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= 16 {
        cache.clear();
    }
    cache.insert(key, bytes.clone());
    Ok(bytes)
}

/// Without the upstream document: one PATCH/PUT/GET/DELETE per kind declaring `fieldValidation`, which
/// is all kubectl's field-validation check needs.
fn minimal_doc(types: &[Arc<ResourceType>]) -> Value {
    let mut paths = Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}
                ],
                "responses": {"200": {"description": "OK"}}
            })
        };
        let prefix = t.gv_path();
        let ns = if t.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        paths.insert(
            format!("{prefix}{ns}/{}/{{name}}", t.plural),
            json!({"patch": op("patch"), "put": op("replace"), "get": op("read"), "delete": op("delete")}),
        );
        paths.insert(
            format!("{prefix}{ns}/{}", t.plural),
            json!({"post": op("create"), "get": op("list")}),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": {}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(bytes: Bytes) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn minimal_docs_without_upstream() {
        let reg = Registry::builtin();
        let idx = index(&reg);
        assert!(
            idx["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        let d = doc(group_version_doc(&reg, None, "apps", "v1").unwrap());
        let p = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert_eq!(p["parameters"][0]["name"], "fieldValidation");
        assert!(group_version_doc(&reg, None, "nope", "v1").is_none());
        assert!(v2_doc(&reg, None).is_err());
    }

    #[test]
    fn v3_is_derived_from_v2() {
        let v2 = json!({
            "swagger": "2.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "parameters": {"body-x": {"in": "body", "name": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}},
            "paths": {"/apis/apps/v1/namespaces/{namespace}/deployments/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "type": "string"}],
                "patch": {"consumes": ["application/strategic-merge-patch+json"], "produces": ["application/json"],
                    "parameters": [{"$ref": "#/parameters/body-x"}, {"name": "fieldValidation", "in": "query", "type": "string"}],
                    "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}}},
                    "x-kubernetes-group-version-kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}}},
            "definitions": {
                "io.k8s.api.apps.v1.Deployment": {"properties": {"spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec", "description": "Spec."}},
                    "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}]},
                "io.k8s.api.apps.v1.DeploymentSpec": {"properties": {"replicas": {"type": "integer", "description": "Number of desired pods."}}},
                "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": {"type": "object"},
                "io.k8s.api.core.v1.Unrelated": {"type": "object"}
            }
        });
        let up = Upstream::from_slice(v2.to_string().as_bytes(), "test").unwrap();
        let reg = Registry::builtin();
        let d = doc(group_version_doc(&reg, Some(&up), "apps", "v1").unwrap());
        let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
        );
        assert_eq!(
            patch["parameters"][0],
            json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string"}})
        );
        let schemas = d["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("io.k8s.api.apps.v1.DeploymentSpec"));
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Unrelated"));
        assert_eq!(
            schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"],
            json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}], "description": "Spec."})
        );
        assert!(Upstream::from_slice(b"[]", "x").is_err());
    }

    #[test]
    fn crd_schema_names_reverse_the_group() {
        let mut reg = Registry::builtin();
        let crd = json!({"metadata": {"name": "clusters.postgresql.cnpg.io"}, "spec": {"group": "postgresql.cnpg.io",
            "scope": "Namespaced", "names": {"kind": "Cluster", "plural": "clusters"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                    "properties": {"instances": {"type": "integer", "description": "Number of instances"}}}}}}}]}});
        reg.add_crd(&crd).unwrap();
        let d = doc(group_version_doc(&reg, None, "postgresql.cnpg.io", "v1").unwrap());
        let s = &d["components"]["schemas"]["io.cnpg.postgresql.v1.Cluster"];
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "Cluster");
        assert_eq!(
            s["properties"]["spec"]["properties"]["instances"]["type"],
            "integer"
        );
        let patch =
            &d["paths"]["/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters/{name}"]["patch"];
        assert!(
            patch["requestBody"]["content"]
                .get("application/merge-patch+json")
                .is_some()
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        assert!(
            d["paths"]
                .get("/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters/{name}/status")
                .is_some()
        );
    }
}

//! A loopback proxy between helm and kube-standin that turns protobuf request bodies into JSON.
//!
//! Why: helm 3.17 and 4.1 write their release records (core/v1 Secrets `sh.helm.release.v1.NAME.vN`) through
//! client-go's typed client with `Content-Type: application/vnd.kubernetes.protobuf`; the stand-in speaks
//! JSON only and answers 415. Everything else helm sends (server-side apply, discovery, watches) is JSON and
//! passes through untouched, streamed. helm is pointed here with `HELM_KUBEAPISERVER`; the plugin itself
//! talks to the stand-in directly. Remove once the stand-in accepts protobuf Secret bodies.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A running proxy.
pub struct HelmProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HelmProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a proxy in front of `upstream`.
pub async fn start(upstream: SocketAddr) -> HelmProxy {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let app = axum::Router::new()
        .fallback(forward)
        .with_state((client, upstream));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    HelmProxy { url, task }
}

async fn forward(State((client, upstream)): State<(HttpClient, SocketAddr)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (bytes, content_type) = if content_type.contains("protobuf") {
        if parts.method == "DELETE" {
            // DeleteOptions: the defaults are what helm asks for.
            (Bytes::new(), "application/json".to_string())
        } else {
            match protobuf_to_json(&bytes) {
                Some(value) => (
                    Bytes::from(serde_json::to_vec(&value).unwrap()),
                    "application/json".to_string(),
                ),
                None => (bytes, content_type),
            }
        }
    } else {
        (bytes, content_type)
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{upstream}{path}"));
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "content-type" | "transfer-encoding"
        ) {
            builder = builder.header(name, value);
        }
    }
    if !content_type.is_empty() {
        builder = builder.header("content-type", content_type);
    }
    let upstream_request = builder.body(Full::new(bytes)).unwrap();
    match client.request(upstream_request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(err) => Response::builder()
            .status(502)
            .body(Body::from(format!("helm proxy: {err}")))
            .unwrap(),
    }
}

/// Decode a `k8s\0`-framed protobuf object (Secret or ConfigMap) into its JSON form.
pub fn protobuf_to_json(bytes: &[u8]) -> Option<Value> {
    let body = bytes.strip_prefix(b"k8s\0")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (field, value) in fields(body)? {
        match (field, value) {
            (1, Wire::Bytes(type_meta)) => {
                for (f, v) in fields(type_meta)? {
                    match (f, v) {
                        (1, Wire::Bytes(s)) => api_version = text(s),
                        (2, Wire::Bytes(s)) => kind = text(s),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (field, value) in fields(raw)? {
        let Wire::Bytes(bytes) = value else {
            if kind == "Secret" && field == 5 || kind == "ConfigMap" && field == 4 {
                object.insert("immutable".into(), json!(matches!(value, Wire::Varint(1))));
            }
            continue;
        };
        match (kind.as_str(), field) {
            (_, 1) => {
                object.insert("metadata".into(), metadata(bytes)?);
            }
            ("Secret", 2) => map_entry(&mut object, "data", bytes, |v| json!(b64(v)))?,
            ("Secret", 3) => {
                object.insert("type".into(), json!(text(bytes)));
            }
            ("Secret", 4) | ("ConfigMap", 2) => map_entry(
                &mut object,
                if kind == "Secret" { "stringData" } else { "data" },
                bytes,
                |v| json!(text(v)),
            )?,
            ("ConfigMap", 3) => map_entry(&mut object, "binaryData", bytes, |v| json!(b64(v)))?,
            _ => {}
        }
    }
    Some(Value::Object(object))
}

fn metadata(bytes: &[u8]) -> Option<Value> {
    let mut meta = Map::new();
    for (field, value) in fields(bytes)? {
        match (field, value) {
            (1, Wire::Bytes(s)) => drop(meta.insert("name".into(), json!(text(s)))),
            (2, Wire::Bytes(s)) => drop(meta.insert("generateName".into(), json!(text(s)))),
            (3, Wire::Bytes(s)) => drop(meta.insert("namespace".into(), json!(text(s)))),
            (5, Wire::Bytes(s)) => drop(meta.insert("uid".into(), json!(text(s)))),
            (6, Wire::Bytes(s)) => drop(meta.insert("resourceVersion".into(), json!(text(s)))),
            (11, Wire::Bytes(entry)) => map_entry(&mut meta, "labels", entry, |v| json!(text(v)))?,
            (12, Wire::Bytes(entry)) => map_entry(&mut meta, "annotations", entry, |v| json!(text(v)))?,
            (14, Wire::Bytes(s)) => {
                let list = meta.entry("finalizers").or_insert_with(|| json!([]));
                list.as_array_mut()?.push(json!(text(s)));
            }
            _ => {}
        }
    }
    Some(Value::Object(meta))
}

/// A map field is a repeated message {1: key, 2: value}.
fn map_entry(
    object: &mut Map<String, Value>,
    name: &str,
    entry: &[u8],
    value: impl Fn(&[u8]) -> Value,
) -> Option<()> {
    let (mut key, mut val): (String, &[u8]) = (String::new(), &[]);
    for (field, wire) in fields(entry)? {
        match (field, wire) {
            (1, Wire::Bytes(k)) => key = text(k),
            (2, Wire::Bytes(v)) => val = v,
            _ => {}
        }
    }
    object
        .entry(name)
        .or_insert_with(|| json!({}))
        .as_object_mut()?
        .insert(key, value(val));
    Some(())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn fields(bytes: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let tag = varint(bytes, &mut at)?;
        let wire = match tag & 7 {
            0 => Wire::Varint(varint(bytes, &mut at)?),
            1 => {
                at += 8;
                Wire::Fixed
            }
            2 => {
                let len = varint(bytes, &mut at)? as usize;
                let slice = bytes.get(at..at + len)?;
                at += len;
                Wire::Bytes(slice)
            }
            5 => {
                at += 4;
                Wire::Fixed
            }
            _ => return None,
        };
        out.push((tag >> 3, wire));
    }
    Some(out)
}

#[test]
fn decodes_a_protobuf_secret() {
    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }
    let entry = [field(1, b"owner"), field(2, b"helm")].concat();
    let meta = [
        field(1, b"sh.helm.release.v1.x.v1"),
        field(3, b"ns"),
        field(11, &entry),
    ]
    .concat();
    let data = [field(1, b"release"), field(2, b"abc")].concat();
    let secret = [field(1, &meta), field(2, &data), field(3, b"helm.sh/release.v1")].concat();
    let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
    let unknown = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &secret)].concat();
    let value = protobuf_to_json(&unknown).unwrap();
    assert_eq!(value["kind"], "Secret");
    assert_eq!(value["metadata"]["name"], "sh.helm.release.v1.x.v1");
    assert_eq!(value["metadata"]["labels"]["owner"], "helm");
    assert_eq!(value["data"]["release"], "YWJj");
    assert_eq!(value["type"], "helm.sh/release.v1");
}

//! The service (and pod) proxy: `/api/v1/namespaces/NS/services/[scheme:]NAME[:PORT]/proxy/PATH`,
//! relayed to a real local HTTP server named by [`crate::Builder::proxy`] or by the object's annotation
//! `kube-standin/proxy: "http://127.0.0.1:PORT"`. The upstream's own status, headers and body come back
//! unchanged (kubeseal fetches `/v1/cert.pem` this way); a missing object is a 404 `Status`, a missing
//! target a 503 like the real "no endpoints available". Without a target, the Service
//! `kube-system/sealed-secrets-controller` is answered by the stand-in's own sealed-secrets controller
//! when it runs ([`crate::sealing::serve`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::server::AppState;
use crate::util::get_str;

/// The annotation naming the upstream base URL.
pub const PROXY_ANNOTATION: &str = "kube-standin/proxy";

/// Splits a proxy ID: `name`, `name:port`, `scheme:name:port` (port may be empty or a name).
pub fn parse_id(id: &str) -> (Option<&str>, &str, Option<&str>) {
    let parts: Vec<&str> = id.split(':').collect();
    match parts.as_slice() {
        [name] => (None, name, None),
        [name, port] => (None, name, Some(port).filter(|p| !p.is_empty()).copied()),
        [scheme, name, port, ..] => (Some(*scheme), name, Some(*port).filter(|p| !p.is_empty())),
        [] => (None, "", None),
    }
}

/// Relays one request.
pub async fn handle(
    app: &AppState,
    rt: &ResourceType,
    ns: &str,
    id: &str,
    rest: &str,
    req: Request,
) -> Response {
    let (_, name, _) = parse_id(id);
    let base = {
        let st = app.store.lock();
        let Some(obj) = st.get(rt, ns, name) else {
            return ApiError::not_found(rt, name).into_response();
        };
        let configured = if rt.plural == "services" {
            st.overrides
                .proxies
                .get(&(ns.to_string(), name.to_string()))
                .cloned()
        } else {
            None
        };
        configured
            .or_else(|| get_str(obj, &["metadata", "annotations", PROXY_ANNOTATION]).map(str::to_string))
    };
    let Some(base) = base else {
        if let Some(ring) = own_controller(app, rt, ns, name) {
            let method = req.method().clone();
            let body = match axum::body::to_bytes(req.into_body(), 4 << 20).await {
                Ok(body) => body,
                Err(e) => return ApiError::new(400, "BadRequest", e.to_string()).into_response(),
            };
            return crate::sealing::serve(&ring, &method, rest, &body).await;
        }
        let kind = if rt.plural == "services" { "service" } else { "pod" };
        return ApiError::new(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for {kind} \"{name}\""),
        )
        .into_response();
    };
    match relay(&base, rest, req).await {
        Ok(resp) => resp,
        Err(message) => ApiError::new(
            503,
            "ServiceUnavailable",
            format!("error trying to reach {name}: {message}"),
        )
        .into_response(),
    }
}

/// The stand-in's own sealed-secrets controller, when `ns/name` is its Service and it runs.
fn own_controller(
    app: &AppState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Option<std::sync::Arc<crate::sealing::KeyRing>> {
    if rt.plural != "services" || (ns, name) != crate::controllers::sealed_secrets::SERVICE {
        return None;
    }
    app.store.lock().overrides.sealing.clone()
}

async fn relay(base: &str, rest: &str, req: Request) -> Result<Response, String> {
    let Some(without_scheme) = base.strip_prefix("http://") else {
        return Err(format!(
            "kube-standin proxies to http:// targets only, got {base:?}"
        ));
    };
    let (authority, base_path) = match without_scheme.split_once('/') {
        Some((a, p)) => (a.to_string(), format!("/{}", p.trim_end_matches('/'))),
        None => (without_scheme.to_string(), String::new()),
    };
    let mut path = format!("{base_path}/{rest}");
    if let Some(q) = req.uri().query() {
        path.push('?');
        path.push_str(q);
    }
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("dial tcp {authority}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);

    let (parts, body) = req.into_parts();
    let mut upstream = hyper::Request::builder().method(parts.method).uri(&path);
    for (k, v) in parts.headers.iter() {
        // Hop-by-hop and credential headers stay here, as the real proxy strips them.
        if [
            header::HOST,
            header::CONNECTION,
            header::UPGRADE,
            header::AUTHORIZATION,
            header::TRANSFER_ENCODING,
        ]
        .contains(k)
        {
            continue;
        }
        upstream = upstream.header(k, v);
    }
    upstream = upstream.header(
        header::HOST,
        HeaderValue::from_str(&authority).map_err(|e| e.to_string())?,
    );
    let upstream = upstream.body(body).map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(upstream)
        .await
        .map_err(|e| format!("upstream: {e}"))?;
    let (parts, incoming) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::new(incoming)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(parse_id("svc"), (None, "svc", None));
        assert_eq!(parse_id("svc:8080"), (None, "svc", Some("8080")));
        assert_eq!(
            parse_id("http:sealed-secrets-controller:http"),
            (Some("http"), "sealed-secrets-controller", Some("http"))
        );
        assert_eq!(parse_id("http:svc:"), (Some("http"), "svc", None));
    }
}

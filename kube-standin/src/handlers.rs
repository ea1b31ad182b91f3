//! The REST surface: URL parsing into (type, namespace, name, subresource), verb dispatch, request
//! bodies, and the JSON answers. Discovery/OpenAPI answers and the admin endpoints live here too, as
//! thin wrappers over their modules.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use crate::discovery;
use crate::error::ApiError;
use crate::faults::{Fault, Identity, RequestRecord, WatchFault};
use crate::openapi;
use crate::patch::PatchKind;
use crate::printers::{Include, TablePrinter, TableRequest};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::server::AppState;
use crate::store::{WriteCtx, present};
use crate::util::{get_str, parse_query, percent_decode};
use crate::watch::{self, WatchParams, WatchScope};

type App = State<Arc<AppState>>;

/// The full router with the fault/logging middleware.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/version", get(|| async { json_ok(discovery::version()) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/api", get(api_root))
        .route("/apis", get(apis_root))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*rest}", get(openapi_doc))
        .route("/openapi/v2", any(openapi_v2))
        .route(
            "/swagger-2.0.0.pb-v1",
            any(|| async { ApiError::not_implemented(openapi::V2_PROTOBUF_GAP) }),
        )
        .route(
            "/_standin/faults",
            post(add_faults).get(list_faults).delete(clear_faults),
        )
        .route("/_standin/requests", get(list_requests).delete(clear_requests))
        .route("/_standin/unready", post(set_unready).delete(clear_unready))
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(
            state.protobuf.clone(),
            crate::protobuf::answer_in_protobuf,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), faults_and_log))
        .with_state(state)
}

/// A JSON 200.
pub fn json_ok(v: Value) -> Response {
    json_with(StatusCode::OK, v)
}

fn json_with(code: StatusCode, v: Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn faults_and_log(State(app): App, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    // Extracted in a block: a closure borrowing the (non-Sync) request must not live across an await.
    let (content_type, user_agent, identity) = {
        let header_str = |h: header::HeaderName| {
            req.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let all = |name: &str| -> Vec<String> {
            req.headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect()
        };
        // What an API server's audit log records of the caller: the credential's kind and the impersonation.
        let identity = Identity {
            bearer_token: header_str(header::AUTHORIZATION)
                .and_then(|v| v.strip_prefix("Bearer ").map(str::to_string)),
            impersonate_user: all("impersonate-user").into_iter().next(),
            impersonate_groups: all("impersonate-group"),
            impersonate_uid: all("impersonate-uid").into_iter().next(),
        };
        (
            header_str(header::CONTENT_TYPE),
            header_str(header::USER_AGENT),
            identity,
        )
    };
    if path.starts_with("/_standin") {
        return next.run(req).await;
    }
    let is_watch = parse_query(Some(&query))
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let target = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let decision = app.faults.decide(&method, &target, is_watch);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let response = match decision.error {
        Some(err) => err.into_response(),
        None => {
            let mut req = req;
            req.extensions_mut().insert(decision.watch);
            next.run(req).await
        }
    };
    app.log.push(RequestRecord {
        method,
        path,
        query,
        content_type,
        user_agent,
        identity,
        status: response.status().as_u16(),
    });
    response
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn api_root(State(app): App, headers: HeaderMap) -> Response {
    let st = app.store.lock();
    if discovery::wants_aggregated(accept(&headers)) {
        return aggregated(discovery::aggregated(&st.registry, true));
    }
    json_ok(discovery::core_versions(&app.addr.to_string()))
}

async fn apis_root(State(app): App, headers: HeaderMap) -> Response {
    let st = app.store.lock();
    if discovery::wants_aggregated(accept(&headers)) {
        return aggregated(discovery::aggregated(&st.registry, false));
    }
    json_ok(discovery::group_list(&st.registry))
}

fn aggregated(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)],
        v.to_string(),
    )
        .into_response()
}

/// Parses the upstream document if not done yet, off the runtime and without the store lock.
async fn openapi_ready(app: &AppState) {
    if let Some(up) = app.openapi.clone() {
        let _ = tokio::task::spawn_blocking(move || up.parsed().is_ok()).await;
    }
}

async fn openapi_v2(State(app): App, headers: HeaderMap) -> Response {
    let accept = accept(&headers);
    // client-go's OpenAPISchema() asks for the gnostic protobuf encoding only.
    if !accept.is_empty() && !accept.contains("json") && !accept.contains("*/*") {
        // 404, not 406: client-go (helm's upgrade validation, kubectl) reads 404 as "this server has no
        // OpenAPI v2" and goes on with v3 or without it, while 406 fails the whole command. The body names
        // the gap for anyone reading it.
        let message = format!("kube-standin does not implement {}", openapi::V2_PROTOBUF_GAP);
        return ApiError::new(404, "NotFound", message).into_response();
    }
    openapi_ready(&app).await;
    let doc = openapi::v2_doc(&app.store.lock().registry, app.openapi.as_deref());
    match doc {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(message) => ApiError::no_such_path(&message).into_response(),
    }
}

async fn openapi_index(State(app): App) -> Response {
    json_ok(openapi::index(&app.store.lock().registry))
}

async fn openapi_doc(State(app): App, req: Request) -> Response {
    openapi_ready(&app).await;
    let path = req.uri().path().trim_start_matches("/openapi/v3/").to_string();
    let parts: Vec<&str> = path.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => {
            return ApiError::no_such_path(&format!("no OpenAPI document at /openapi/v3/{path}"))
                .into_response();
        }
    };
    let doc = openapi::group_version_doc(&app.store.lock().registry, app.openapi.as_deref(), group, version);
    match doc {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        None => ApiError::no_such_path(&format!("no OpenAPI document for {path}")).into_response(),
    }
}

async fn add_faults(State(app): App, body: Bytes) -> Response {
    let parsed: Result<Vec<Fault>, _> = serde_json::from_slice::<Vec<Fault>>(&body)
        .or_else(|_| serde_json::from_slice::<Fault>(&body).map(|f| vec![f]));
    match parsed {
        Ok(faults) => {
            let n = faults.len();
            faults.into_iter().for_each(|f| app.faults.add(f));
            json_ok(json!({"added": n}))
        }
        Err(e) => ApiError::bad_request(format!("invalid fault: {e}")).into_response(),
    }
}

async fn list_faults(State(app): App) -> Response {
    json_ok(serde_json::to_value(app.faults.list()).unwrap_or_default())
}

async fn clear_faults(State(app): App) -> Response {
    app.faults.clear();
    json_ok(json!({"cleared": true}))
}

async fn list_requests(State(app): App) -> Response {
    json_ok(serde_json::to_value(app.log.all()).unwrap_or_default())
}

async fn clear_requests(State(app): App) -> Response {
    app.log.clear();
    json_ok(json!({"cleared": true}))
}

/// Body: `{"resource": "clusters", "namespace": "staging", "name": "database", "message": "..."}`.
async fn set_unready(State(app): App, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return ApiError::bad_request("expected JSON {resource, namespace, name, message}").into_response();
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match crate::simulate::set_unready(
        &app.store,
        &s("resource"),
        &s("namespace"),
        &s("name"),
        Some(s("message")),
    ) {
        Ok(()) => json_ok(json!({"unready": true})),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

async fn clear_unready(State(app): App, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match crate::simulate::set_unready(&app.store, &s("resource"), &s("namespace"), &s("name"), None) {
        Ok(()) => json_ok(json!({"unready": false})),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

/// A resolved resource URL.
#[derive(Debug, Clone)]
pub struct Target {
    /// The type at the URL's group/version.
    pub rt: Arc<ResourceType>,
    /// The namespace segment, if any.
    pub namespace: Option<String>,
    /// The object name, if any.
    pub name: Option<String>,
    /// The subresource (`status`, `portforward`, `proxy`, ...).
    pub sub: Option<String>,
    /// What follows a `proxy` subresource, without the leading slash.
    pub rest: String,
}

/// Parses the part after `/api/v1` or `/apis/G/V`.
fn resolve(app: &AppState, group: &str, version: &str, segs: &[String]) -> Result<Target, ApiError> {
    let st = app.store.lock();
    let reg = &st.registry;
    let namespaced_form = segs.len() >= 3
        && segs[0] == "namespaces"
        && reg.find(group, version, &segs[2]).is_some_and(|t| t.namespaced)
        && !(group.is_empty() && segs.len() == 3 && (segs[2] == "status" || segs[2] == "finalize"));
    let (namespace, rest) = if namespaced_form {
        (Some(segs[1].clone()), &segs[2..])
    } else {
        (None, segs)
    };
    let plural = &rest[0];
    let rt = reg.find(group, version, plural).ok_or_else(|| {
        ApiError::no_such_path(&format!("no resource {plural:?} in {}", gv(group, version)))
    })?;
    if rt.namespaced != namespace.is_some() && rest.len() > 1 {
        return Err(ApiError::no_such_path(&format!(
            "{} is {}namespaced",
            rt.group_resource(),
            if rt.namespaced { "" } else { "not " }
        )));
    }
    Ok(Target {
        rt,
        namespace,
        name: rest.get(1).cloned(),
        sub: rest.get(2).cloned(),
        rest: rest.get(3..).map(|r| r.join("/")).unwrap_or_default(),
    })
}

fn gv(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Everything under `/api/...` and `/apis/...` that is not a fixed route.
async fn dispatch(State(app): App, req: Request) -> Response {
    match dispatch_inner(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch_inner(app: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let raw_path = req.uri().path().to_string();
    let segs: Vec<String> = raw_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let (group, version, rest): (String, String, &[String]) = match segs.as_slice() {
        [a, v, rest @ ..] if a == "api" => (String::new(), v.clone(), rest),
        [a, g] if a == "apis" => {
            let st = app.store.lock();
            return match st.registry.groups().into_iter().find(|(name, _)| name == g) {
                Some((name, versions)) => Ok(json_ok(discovery::api_group(&name, &versions))),
                None => Err(ApiError::no_such_path(&format!("no API group {g:?}"))),
            };
        }
        [a, g, v, rest @ ..] if a == "apis" => (g.clone(), v.clone(), rest),
        _ => return Err(ApiError::no_such_path(&format!("no route for {raw_path}"))),
    };
    if rest.is_empty() {
        let st = app.store.lock();
        if !st.registry.has_group_version(&group, &version) {
            return Err(ApiError::no_such_path(&format!(
                "no API group/version {}",
                gv(&group, &version)
            )));
        }
        return Ok(json_ok(discovery::resource_list(&st.registry, &group, &version)));
    }
    let target = resolve(&app, &group, &version, rest)?;
    let query = parse_query(req.uri().query());
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let method = req.method().clone();
    let verb = verb_of(&method, &target, q("watch"));
    check_denied(&app, &target, verb)?;

    let ns = target.namespace.clone().unwrap_or_default();
    let rt = target.rt.clone();
    match (target.sub.as_deref(), &target.name) {
        (Some("portforward"), Some(name)) if rt.group.is_empty() && rt.plural == "pods" => {
            let ports: Vec<String> = query
                .iter()
                .filter(|(k, _)| k == "ports")
                .map(|(_, v)| v.clone())
                .collect();
            return Ok(crate::portforward::handle(&app, &ns, name, &ports, req).await);
        }
        (Some("proxy"), Some(id))
            if rt.group.is_empty() && (rt.plural == "services" || rt.plural == "pods") =>
        {
            return Ok(crate::proxy::handle(&app, &rt, &ns, id, &target.rest, req).await);
        }
        // A namespace's spec.finalizers change through `PUT .../finalize` (see crate::controllers::namespace).
        (Some("finalize"), Some(_))
            if rt.group.is_empty() && rt.plural == "namespaces" && method == Method::PUT => {}
        (Some("scale"), Some(_)) if rt.subresources.iter().any(|s| s.name == "scale") => {
            return crate::scale::handle(&app, &rt, &ns, &target, &query, req).await;
        }
        (Some(sub), Some(_)) if sub != "status" => {
            // Real subresources the stand-in does not serve get a 501 naming them, never a hang.
            let real_pod_sub = rt.group.is_empty()
                && rt.plural == "pods"
                && [
                    "log",
                    "exec",
                    "attach",
                    "eviction",
                    "binding",
                    "ephemeralcontainers",
                    "resize",
                ]
                .contains(&sub);
            let known = real_pod_sub || rt.subresources.iter().any(|s| s.name == sub);
            return Err(if known {
                ApiError::not_implemented(&format!("the {sub} subresource of {}", rt.group_resource()))
            } else {
                ApiError::no_such_path(&format!("{} has no subresource {sub:?}", rt.group_resource()))
            });
        }
        (Some(_), None) => unreachable!("a subresource always follows a name"),
        _ => {}
    }
    if target.sub.as_deref() == Some("status") && !rt.has_status() {
        return Err(ApiError::no_such_path(&format!(
            "{} has no status subresource",
            rt.group_resource()
        )));
    }

    let headers = req.headers().clone();
    let table = table_request(&headers, q("includeObject"))?;
    let watch_fault = req.extensions().get::<WatchFault>().copied().unwrap_or_default();
    let body = axum::body::to_bytes(req.into_body(), 64 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
    if is_protobuf(&headers) {
        crate::protobuf::capture(method.as_str(), &raw_path, &body);
    }
    let ctx = WriteCtx {
        dry_run: q("dryRun").is_some_and(|v| v == "All"),
        seed: false,
        manager: q("fieldManager")
            .map(str::to_string)
            .unwrap_or_else(|| default_manager(&headers, &method)),
        strict: q("fieldValidation") == Some("Strict"),
        subresource: target.sub.clone().unwrap_or_default(),
    };
    let name = target.name.clone();

    match (method.clone(), name) {
        (Method::GET, None) => {
            let selectors = Selectors {
                labels: LabelSelector::parse(q("labelSelector").unwrap_or(""))?,
                fields: FieldSelector::parse_for(q("fieldSelector").unwrap_or(""), &rt.group, &rt.plural)?,
            };
            let namespace = target.namespace.clone();
            if verb == "watch" {
                let timeout = q("timeoutSeconds")
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(1800)
                    .min(1800);
                let params = WatchParams {
                    resource_version: q("resourceVersion")
                        .and_then(|s| s.parse::<u64>().ok())
                        .filter(|rv| *rv > 0),
                    timeout: Duration::from_secs(timeout),
                    send_initial_events: q("sendInitialEvents") == Some("true"),
                };
                let table = table.map(|t| {
                    let printer = TablePrinter::for_type(&app.store.lock(), &rt);
                    (Arc::new(printer), t)
                });
                let scope = WatchScope {
                    rt,
                    namespace,
                    selectors,
                    table,
                };
                return Ok(watch::start(
                    &app.store,
                    scope,
                    params,
                    watch_fault,
                    app.shutdown.clone(),
                ));
            }
            let st = app.store.lock();
            let items = st.list(&rt, namespace.as_deref(), &selectors);
            if let Some(t) = table {
                let meta = json!({"resourceVersion": st.rv().to_string()});
                return Ok(json_ok(
                    TablePrinter::for_type(&st, &rt).table(&rt, &items, meta, &t),
                ));
            }
            Ok(json_ok(json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": st.rv().to_string()},
                "items": items
            })))
        }
        (Method::GET, Some(name)) => {
            let st = app.store.lock();
            let obj = st
                .get(&rt, &ns, &name)
                .ok_or_else(|| ApiError::not_found(&rt, &name))?;
            if let Some(t) = table {
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
                let printer = TablePrinter::for_type(&st, &rt);
                return Ok(json_ok(printer.table(&rt, std::slice::from_ref(obj), meta, &t)));
            }
            Ok(json_ok(present(&rt, obj)))
        }
        (Method::POST, None) => {
            let obj = parse_body(&app, &headers, &body).await?;
            if rt.group == "authorization.k8s.io" && rt.plural == "selfsubjectaccessreviews" {
                let denials = app.store.lock().overrides.denials.clone();
                return Ok(json_with(
                    StatusCode::CREATED,
                    crate::authz::access_review(&denials, obj),
                ));
            }
            if rt.group == "authorization.k8s.io" && rt.plural == "selfsubjectrulesreviews" {
                let st = app.store.lock();
                let review = crate::authz::rules_review(&st.overrides.denials, st.registry.types(), obj);
                return Ok(json_with(StatusCode::CREATED, review));
            }
            let created = app.store.lock().create(&rt, &ns, obj, &ctx)?;
            Ok(json_with(StatusCode::CREATED, created))
        }
        (Method::PUT, Some(name)) => {
            let obj = parse_body(&app, &headers, &body).await?;
            let updated = app.store.lock().replace(&rt, &ns, &name, obj, &ctx)?;
            Ok(json_ok(updated))
        }
        (Method::PATCH, Some(name)) => {
            let (kind, ct) = PatchKind::of_request(&headers)?;
            // Custom resources have no patch strategies: the real server refuses strategic merge.
            if kind == PatchKind::Strategic && rt.crd_name.is_some() {
                return Err(ApiError::unsupported_media_type(ct));
            }
            if kind == PatchKind::Strategic {
                // The merge keys come from the OpenAPI document: parse it before taking the store lock.
                openapi_ready(&app).await;
            }
            if kind == PatchKind::Apply {
                let config = parse_apply_body(&body)?;
                let force = q("force") == Some("true");
                let (obj, created) = app.store.lock().apply(&rt, &ns, &name, config, force, &ctx)?;
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok(json_with(code, obj));
            }
            let patched = app.store.lock().patch(&rt, &ns, &name, kind, &body, &ctx)?;
            Ok(json_ok(patched))
        }
        (Method::DELETE, Some(name)) => {
            let options: Option<Value> = if body.is_empty() {
                None
            } else if is_protobuf(&headers) {
                Some(app.protobuf.decode(&body).await?)
            } else {
                serde_json::from_slice(&body).ok()
            };
            let deleted = app.store.lock().delete(&rt, &ns, &name, &ctx, options.as_ref())?;
            Ok(json_ok(deleted))
        }
        (Method::DELETE, None) => {
            let selectors = Selectors {
                labels: LabelSelector::parse(q("labelSelector").unwrap_or(""))?,
                fields: FieldSelector::parse_for(q("fieldSelector").unwrap_or(""), &rt.group, &rt.plural)?,
            };
            let mut st = app.store.lock();
            let victims = st.list(&rt, target.namespace.as_deref(), &selectors);
            let mut items = Vec::new();
            for v in victims {
                let vns = get_str(&v, &["metadata", "namespace"]).unwrap_or("").to_string();
                let vname = get_str(&v, &["metadata", "name"]).unwrap_or("").to_string();
                items.push(st.delete(&rt, &vns, &vname, &ctx, None)?);
            }
            Ok(json_ok(json!({
                "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": st.rv().to_string()}, "items": items
            })))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m} {raw_path})"
        ))),
    }
}

/// The Table a GET asks for through `Accept`, or a 406 when it asks only for Tables the server cannot
/// produce.
fn table_request(headers: &HeaderMap, include: Option<&str>) -> Result<Option<TableRequest>, ApiError> {
    let accept = accept(headers);
    if crate::printers::unsatisfiable_table(accept) {
        return Err(ApiError::new(
            406,
            "NotAcceptable",
            format!("only application/json Tables (meta.k8s.io v1 or v1beta1) are served, not {accept:?}"),
        ));
    }
    match crate::printers::wants_table(accept) {
        Some(version) => Ok(Some(TableRequest {
            version,
            include: Include::parse(include)?,
        })),
        None => Ok(None),
    }
}

/// The RBAC verb of a request.
fn verb_of(method: &Method, target: &Target, watch: Option<&str>) -> &'static str {
    let collection = target.name.is_none();
    match *method {
        Method::GET if collection && matches!(watch, Some("true" | "1")) => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

fn check_denied(app: &AppState, target: &Target, verb: &str) -> Result<(), ApiError> {
    let denied = crate::authz::is_denied(
        &app.store.lock().overrides.denials,
        verb,
        &target.rt.group,
        &target.rt.plural,
        target.sub.as_deref().unwrap_or(""),
        target.namespace.as_deref().unwrap_or(""),
    );
    if denied {
        return Err(ApiError::forbidden(
            &target.rt,
            target.name.as_deref().unwrap_or(""),
            verb,
            target.namespace.as_deref().unwrap_or(""),
        ));
    }
    Ok(())
}

/// The field manager the API server derives when the client sends none: the user agent's first word.
pub fn default_manager(headers: &HeaderMap, method: &Method) -> String {
    if *method == Method::PATCH
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/apply-patch"))
    {
        return String::new(); // SSA requires an explicit manager.
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(crate::protobuf::CONTENT_TYPE))
}

async fn parse_body(app: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    if is_protobuf(headers) {
        return app.protobuf.decode(body).await;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    if ct.contains("yaml") {
        return serde_saphyr::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn parse_apply_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_saphyr::from_slice::<Value>(body))
        .map_err(|e| ApiError::bad_request(format!("invalid apply configuration: {e}")))
}

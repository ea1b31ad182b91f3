//! The one API-call layer of every slice: a per-request timeout, retries with backoff on throttling, server
//! errors and broken connections, all bounded by the command's deadline, and one error type whose messages
//! say what failed and where (verb, resource, namespace, name or method and path, status, reason) — never a
//! response body, never a header, never a Secret's value.
//!
//! ```no_run
//! # async fn demo(cluster: &shared::cluster::Cluster) -> Result<(), shared::api::ApiError> {
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::Secret;
//! use shared::api::{ApiClient, Call};
//!
//! let api = ApiClient::new(cluster, Duration::from_secs(10)); // deadline: the command's --timeout
//! let secrets: kube::Api<Secret> = kube::Api::namespaced(api.client().clone(), "staging");
//! let call = Call::get("secrets", Some("staging"), "database-app");
//! let secret = api.get_opt(&call, || secrets.get("database-app")).await?;
//! # let _ = secret; Ok(()) }
//! ```
//!
//! What was unified (the three layers it replaces, step B):
//! - `envctl::api::call` retried 429/5xx/transport with backon but had no deadline and no per-request
//!   timeout; its `Call` (verb, resource, namespace, name, `kubectl auth can-i` hint) is kept as is.
//! - `db::fetch` + `db::within` had a deadline and "404 is data" but no retries; `get_opt` keeps the latter.
//! - `secrets::controller` retried 429 three times with fixed pauses and put the first line of a response
//!   body into errors; [`ApiClient::send_raw`] honours `Retry-After`, retries 5xx too, bounds the body it
//!   reads, and reports only method, path and status.
//! - `cluster::describe_api_error`'s advice per status (401, 403, 429, 5xx) is the wording here; transport
//!   failures and missed deadlines all read "the API server at URL is unreachable (…): check …" (exit 2).
//!
//! kube's own client already retries 429/503/504 honouring `Retry-After` inside one attempt; the per-request
//! timeout bounds that too, and the deadline bounds everything.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use crate::duration::human;

/// Default bound of one request (each attempt), below the command's deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest part of a response body [`ApiClient::send_raw`] reads.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Longest `Retry-After` honoured; longer asks are capped (the deadline still bounds the wait).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Longest a server `Status` message may be inside an error.
const MAX_MESSAGE: usize = 300;

/// What an API call was doing, for error messages and `kubectl auth can-i` hints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    /// The Kubernetes verb (get, list, watch, create, patch, delete) or, for a raw request, the HTTP method.
    pub verb: String,
    /// `plural.group`, or the plural alone for the core group (`namespaces`); for a raw request, the path.
    pub resource: String,
    /// The namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// The object's name, when the call is about one object.
    pub name: Option<String>,
    /// True for a raw request (`resource` is a path): displayed as `METHOD /path`.
    pub raw: bool,
}

impl Call {
    /// A call on a resource: `verb` (`get`, `list`, `patch`…), `resource` as RBAC spells it (`secrets`,
    /// `clusters.postgresql.cnpg.io`).
    pub fn new(verb: &str, resource: &str, namespace: Option<&str>, name: Option<&str>) -> Self {
        Call {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            raw: false,
        }
    }

    /// `get` one object.
    pub fn get(resource: &str, namespace: Option<&str>, name: &str) -> Self {
        Self::new("get", resource, namespace, Some(name))
    }

    /// `list` a resource.
    pub fn list(resource: &str, namespace: Option<&str>) -> Self {
        Self::new("list", resource, namespace, None)
    }

    /// A call on a resource as discovery resolved it.
    pub fn for_resource(
        verb: &str,
        resource: &kube::api::ApiResource,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Self::new(verb, &resource_name(resource), namespace, name)
    }

    /// A raw request (`GET /api/v1/namespaces/x/services/y/proxy/v1/cert.pem`).
    pub fn raw(method: &http::Method, path: &str) -> Self {
        Call {
            verb: method.as_str().to_string(),
            resource: path.to_string(),
            namespace: None,
            name: None,
            raw: true,
        }
    }

    /// The `kubectl auth can-i` command that checks this permission.
    pub fn can_i(&self) -> String {
        if self.raw {
            return format!(
                "kubectl auth can-i {} {}",
                self.verb.to_ascii_lowercase(),
                self.resource
            );
        }
        match &self.namespace {
            Some(namespace) => format!(
                "kubectl auth can-i {} {} -n {namespace}",
                self.verb, self.resource
            ),
            None => format!("kubectl auth can-i {} {}", self.verb, self.resource),
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.raw {
            return write!(f, "{} {}", self.verb, self.resource);
        }
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(name) = &self.name {
            write!(f, " {name}")?;
        }
        match &self.namespace {
            Some(namespace) => write!(f, " in namespace {namespace}"),
            None => write!(f, " (cluster-scoped)"),
        }
    }
}

/// `plural.group` as RBAC and `kubectl auth can-i` spell it.
pub fn resource_name(resource: &kube::api::ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// A failed API call. Every variant names the call or the server; none holds a response body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer: refused, reset, dropped, timed out, or the deadline passed while retrying. Exit 2.
    #[error(
        "the API server at {server} is unreachable ({cause}): check that the cluster is up and that the \
         kubeconfig's server address is right (`kubectl cluster-info`)"
    )]
    Unreachable {
        /// The server URL.
        server: String,
        /// What happened, for which call: `get secrets x in namespace y: connection refused`.
        cause: String,
    },
    /// 401: the credentials were refused.
    #[error(
        "the API server at {server} rejected the credentials for {call} (401 Unauthorized: {message}); log \
         in again or refresh the kubeconfig user's token or certificate"
    )]
    Unauthorized {
        /// The server URL.
        server: String,
        /// The call.
        call: Box<Call>,
        /// The server's message (one line, bounded).
        message: String,
    },
    /// 403: RBAC refused the call.
    #[error(
        "forbidden: you may not {call}: {message}; ask a cluster admin for that permission (check with `{}`)",
        call.can_i()
    )]
    Forbidden {
        /// The call.
        call: Box<Call>,
        /// The server's message (one line, bounded).
        message: String,
    },
    /// Any other error status, after retries where it was transient.
    #[error("cannot {call}: {}", status_sentence(*.code, reason, message))]
    Status {
        /// The call.
        call: Box<Call>,
        /// HTTP status code.
        code: u16,
        /// The status reason (`NotFound`, `Conflict`, `Internal Server Error`).
        reason: String,
        /// The server's message (one line, bounded; empty for a raw response that is not a `Status`).
        message: String,
    },
    /// The answer could not be read as what was asked for (never shows the answer itself).
    #[error("cannot {call}: {what}")]
    BadResponse {
        /// The call.
        call: Box<Call>,
        /// What was wrong: `the answer is not JSON (line 1, column 2)`, `the answer is larger than 4 MiB`.
        what: String,
    },
    /// The client could not even build or authenticate the request (exec plugin failed, bad request).
    #[error("cannot {call}: {what}")]
    Client {
        /// The call.
        call: Box<Call>,
        /// The innermost cause, first line.
        what: String,
    },
}

fn status_sentence(code: u16, reason: &str, message: &str) -> String {
    let said = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    match code {
        429 => format!("the API server kept throttling the requests (429 {reason}{said}); try again later"),
        500..=599 => format!(
            "the API server failed ({code} {reason}{said}); try again, and check the cluster's health if it persists"
        ),
        _ if message.is_empty() => format!("{code} {reason}"),
        _ => format!("{message} ({code} {reason})"),
    }
}

impl ApiError {
    /// True when the API server could not be reached or did not answer in time.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ApiError::Unreachable { .. })
    }

    /// The HTTP status code, when the server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// Classify a client error for `call` against `server`.
    pub fn from_kube(server: &str, call: &Call, err: &kube::Error) -> Self {
        let call_box = || Box::new(call.clone());
        match err {
            kube::Error::Api(status) => {
                let message = one_line(if status.message.is_empty() {
                    &status.reason
                } else {
                    &status.message
                });
                match status.code {
                    401 => ApiError::Unauthorized {
                        server: server.to_string(),
                        call: call_box(),
                        message,
                    },
                    403 => ApiError::Forbidden {
                        call: call_box(),
                        message,
                    },
                    code => ApiError::Status {
                        call: call_box(),
                        code,
                        reason: one_line(&status.reason),
                        message,
                    },
                }
            }
            // serde_json's message may quote the answer (a Secret's value): keep only where it broke.
            kube::Error::SerdeError(json) => ApiError::BadResponse {
                call: call_box(),
                what: format!(
                    "the answer is not the expected JSON ({:?} error at line {}, column {})",
                    json.classify(),
                    json.line(),
                    json.column()
                )
                .to_lowercase(),
            },
            kube::Error::FromUtf8(_) | kube::Error::LinesCodecMaxLineLengthExceeded => {
                ApiError::BadResponse {
                    call: call_box(),
                    what: "the answer could not be read".to_string(),
                }
            }
            other if is_transport(other) => ApiError::Unreachable {
                server: server.to_string(),
                cause: format!("{call}: {}", crate::cluster::innermost_cause(other)),
            },
            other => ApiError::Client {
                call: call_box(),
                what: crate::cluster::innermost_cause(other),
            },
        }
    }
}

/// The first line of `text`, control characters dropped, at most [`MAX_MESSAGE`] characters.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut clean: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect();
    if line.chars().count() > MAX_MESSAGE {
        clean.push('…');
    }
    clean
}

/// Failures of the connection itself (refused, reset, dropped, TLS, timed out).
fn is_transport(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_)
            | kube::Error::Service(_)
            | kube::Error::ReadEvents(_)
            | kube::Error::RustlsTls(_)
    )
}

/// A connection that timed out inside the client (its read or connect timeout), not an answer.
fn is_timeout(err: &kube::Error) -> bool {
    is_transport(err)
        && crate::cluster::innermost_cause(err)
            .to_ascii_lowercase()
            .contains("timed out")
}

/// True for failures worth retrying: throttling, server errors, broken connections.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => is_transient_status(status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// 429 and the 5xx a busy or restarting API server answers.
pub fn is_transient_status(code: u16) -> bool {
    matches!(code, 429 | 500 | 502 | 503 | 504)
}

/// How calls are retried and bounded.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Bound of one attempt.
    pub request_timeout: Duration,
    /// First pause between attempts (doubling, with jitter).
    pub min_delay: Duration,
    /// Longest pause between attempts.
    pub max_delay: Duration,
    /// Most retries after the first attempt.
    pub max_retries: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retries: 8,
        }
    }
}

impl Policy {
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }
}

/// A raw response: status and a bounded body (for the caller to interpret, never to log).
#[derive(Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: http::StatusCode,
    /// The body, at most the limit given.
    pub body: Vec<u8>,
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may be a Secret or a private key: never printed.
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A client bound to one server and one deadline: every call through it ends by the deadline.
#[derive(Clone)]
pub struct ApiClient {
    client: kube::Client,
    server: String,
    deadline: Instant,
    budget: Duration,
    policy: Policy,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient").field("server", &self.server).finish()
    }
}

impl ApiClient {
    /// Calls to `cluster`, all ending within `deadline` from now (the command's `--timeout`).
    pub fn new(cluster: &crate::cluster::Cluster, deadline: Duration) -> Self {
        // A `--timeout` of centuries is "no deadline", not an overflow.
        let now = Instant::now();
        let until = now
            .checked_add(deadline)
            .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        // The budget as given (`2s`), not as measured a moment later (`1.99…s`, which reads "1s").
        let mut client = Self::with_client(cluster.client.clone(), &cluster.server, until);
        client.budget = deadline;
        client
    }

    /// Calls through `client` to `server` (its URL, for messages), ending by `deadline`.
    pub fn with_client(client: kube::Client, server: &str, deadline: Instant) -> Self {
        ApiClient {
            client,
            server: server.trim_end_matches('/').to_string(),
            deadline,
            budget: deadline.saturating_duration_since(Instant::now()),
            policy: Policy::default(),
        }
    }

    /// The same client with another retry policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The kube client, to build `kube::Api`s from.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// When every call must have ended.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Run `request` with a per-attempt timeout and retries on transient failures, until the deadline.
    pub async fn call<T, F, Fut>(&self, call: &Call, mut request: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut backoff = self.policy.backoff();
        loop {
            let failure = match self.attempt(request()).await {
                Some(Ok(value)) => return Ok(value),
                // The client's own read timeout and ours race when they are about as long: either way
                // the server gave no answer, and the message must not depend on which timer won.
                Some(Err(err)) if is_timeout(&err) => Failure::TimedOut,
                Some(Err(err)) if is_transient(&err) => Failure::Kube(err),
                Some(Err(err)) => return Err(ApiError::from_kube(&self.server, call, &err)),
                None => Failure::TimedOut,
            };
            self.pause_or_give_up(call, &failure, backoff.next(), None)
                .await?;
        }
    }

    /// Like [`ApiClient::call`], with 404 as `None` (a missing object, or a missing CRD for a list).
    pub async fn get_opt<T, F, Fut>(&self, call: &Call, request: F) -> Result<Option<T>, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        match self.call(call, request).await {
            Ok(value) => Ok(Some(value)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// A raw request (the service proxy), retried on 429 (honouring `Retry-After`), 5xx and transport
    /// failures; the body is read up to `body_limit` bytes. Any status the server settles on is returned:
    /// the caller decides what 409 or 404 mean, and reports them with [`ApiError::Status`] without the body.
    pub async fn send_raw<F>(
        &self,
        call: &Call,
        mut request: F,
        body_limit: usize,
    ) -> Result<RawResponse, ApiError>
    where
        F: FnMut() -> http::Request<Vec<u8>>,
    {
        let mut backoff = self.policy.backoff();
        loop {
            let exchange = async {
                let response = self.client.send(request().map(kube::client::Body::from)).await?;
                let status = response.status();
                let retry_after = retry_after(response.headers());
                let body = crate::fsio::read_body_bounded(
                    response.into_body(),
                    body_limit,
                    self.policy.request_timeout,
                    None,
                    &call.to_string(),
                )
                .await;
                Ok::<_, kube::Error>((status, retry_after, body))
            };
            let failure = match self.attempt(exchange).await {
                Some(Ok((status, retry_after, _))) if is_transient_status(status.as_u16()) => {
                    Failure::Raw(status, retry_after)
                }
                Some(Ok((status, _, Ok(body)))) => return Ok(RawResponse { status, body }),
                Some(Ok((_, _, Err(err)))) => {
                    return Err(match err {
                        crate::fsio::BodyError::Stalled { .. } => ApiError::Unreachable {
                            server: self.server.clone(),
                            cause: err.to_string(),
                        },
                        err => ApiError::BadResponse {
                            call: Box::new(call.clone()),
                            what: err.to_string(),
                        },
                    });
                }
                Some(Err(err)) if is_transient(&err) => Failure::Kube(err),
                Some(Err(err)) => return Err(ApiError::from_kube(&self.server, call, &err)),
                None => Failure::TimedOut,
            };
            let wait = match &failure {
                Failure::Raw(_, Some(after)) => Some((*after).min(MAX_RETRY_AFTER)),
                _ => None,
            };
            self.pause_or_give_up(call, &failure, backoff.next(), wait)
                .await?;
        }
    }

    /// One attempt under the per-request timeout and the deadline; `None` when either passed.
    async fn attempt<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        let until = self.deadline.min(Instant::now() + self.policy.request_timeout);
        tokio::time::timeout_at(until, future).await.ok()
    }

    /// Sleep before the next attempt, or fail when there is none or it would start after the deadline.
    async fn pause_or_give_up(
        &self,
        call: &Call,
        failure: &Failure,
        next: Option<Duration>,
        server_asked: Option<Duration>,
    ) -> Result<(), ApiError> {
        let pause = server_asked.or(next);
        match pause {
            Some(pause) if Instant::now() + pause < self.deadline => {
                tracing::debug!("retrying {call} in {pause:?} after {}", failure.describe());
                tokio::time::sleep(pause).await;
                Ok(())
            }
            _ => Err(self.give_up(call, failure)),
        }
    }

    fn give_up(&self, call: &Call, failure: &Failure) -> ApiError {
        match failure {
            Failure::Kube(kube::Error::Api(_)) | Failure::Raw(..) => {
                let (code, reason, message) = match failure {
                    Failure::Kube(kube::Error::Api(status)) => {
                        (status.code, one_line(&status.reason), one_line(&status.message))
                    }
                    Failure::Raw(status, _) => (
                        status.as_u16(),
                        status.canonical_reason().unwrap_or_default().to_string(),
                        String::new(),
                    ),
                    _ => unreachable!("matched above"),
                };
                ApiError::Status {
                    call: Box::new(call.clone()),
                    code,
                    reason,
                    message,
                }
            }
            Failure::Kube(err) => ApiError::from_kube(&self.server, call, err),
            Failure::TimedOut => ApiError::Unreachable {
                server: self.server.clone(),
                cause: if Instant::now() + Duration::from_millis(50) >= self.deadline {
                    format!("{call}: no answer within the {} deadline", human(self.budget))
                } else {
                    format!("{call}: no answer within {}", human(self.policy.request_timeout))
                },
            },
        }
    }
}

/// Why an attempt failed, kept for the message when no attempt is left.
enum Failure {
    Kube(kube::Error),
    Raw(http::StatusCode, Option<Duration>),
    TimedOut,
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Kube(kube::Error::Api(status)) => {
                format!("{} {}", status.code, one_line(&status.reason))
            }
            Failure::Kube(err) => crate::cluster::innermost_cause(err),
            Failure::Raw(status, _) => status.to_string(),
            Failure::TimedOut => "no answer".to_string(),
        }
    }
}

/// `Retry-After` in seconds (the form the API server sends).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use kube_standin::{Fault, StandIn};

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("denied by policy", "Forbidden")
                .with_code(code)
                .boxed(),
        )
    }

    const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n";

    async fn standin() -> StandIn {
        StandIn::builder().seed_yaml(NAMESPACE).start().await.unwrap()
    }

    fn fast(api: &StandIn, deadline: Duration, request_timeout: Duration) -> ApiClient {
        ApiClient::with_client(api.client(), &api.url(), Instant::now() + deadline).with_policy(Policy {
            request_timeout,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_retries: 50,
        })
    }

    fn get_namespace(api: &ApiClient) -> impl Future<Output = Result<Namespace, ApiError>> + '_ {
        let namespaces: kube::Api<Namespace> = kube::Api::all(api.client().clone());
        let call = Call::get("namespaces", None, "staging");
        async move {
            let namespaces = &namespaces;
            api.call(&call, || namespaces.get("staging")).await
        }
    }

    /// `get_namespace` fails, and within `bound`: its error.
    async fn get_namespace_fails_within(api: &ApiClient, bound: Duration) -> ApiError {
        let started = std::time::Instant::now();
        let err = get_namespace(api).await.unwrap_err();
        assert!(started.elapsed() < bound, "{:?}", started.elapsed());
        err
    }

    #[test]
    fn forbidden_names_verb_resource_and_namespace() {
        let resource = kube::api::ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        };
        let call = Call::for_resource("patch", &resource, Some("argocd"), Some("staging-backend"));
        let message = ApiError::from_kube("https://k", &call, &status(403)).to_string();
        assert!(
            message.contains("patch applications.argoproj.io staging-backend in namespace argocd"),
            "{message}"
        );
        assert!(
            message.contains("kubectl auth can-i patch applications.argoproj.io -n argocd"),
            "{message}"
        );
    }

    #[test]
    fn statuses_read_with_advice_and_without_debug_dumps() {
        let call = Call::list("secrets", Some("staging"));
        let message = |code| ApiError::from_kube("https://k", &call, &status(code)).to_string();
        assert!(message(401).contains("log in again"), "{}", message(401));
        assert!(message(500).contains("try again"), "{}", message(500));
        assert!(message(429).contains("throttling"), "{}", message(429));
        assert_eq!(
            message(409),
            "cannot list secrets in namespace staging: denied by policy (409 Forbidden)"
        );
        assert!(!message(500).contains("Status {"), "{}", message(500));
    }

    #[test]
    fn a_json_error_never_quotes_the_answer() {
        let json = serde_json::from_str::<u32>("\"cGFzc3dvcmQ=\"").unwrap_err();
        let call = Call::get("secrets", Some("staging"), "database-app");
        let message = ApiError::from_kube("https://k", &call, &kube::Error::SerdeError(json)).to_string();
        assert!(
            message.contains("get secrets database-app in namespace staging"),
            "{message}"
        );
        assert!(message.contains("line 1"), "{message}");
        assert!(!message.contains("cGFzc3dvcmQ"), "{message}");
    }

    #[test]
    fn server_messages_are_one_bounded_line() {
        let long = format!("first\u{1b}[31m {}\nsecond line", "x".repeat(1000));
        let line = one_line(&long);
        assert!(!line.contains('\n') && !line.contains('\u{1b}') && line.chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        assert!(is_transient(&status(429)));
        assert!(is_transient(&status(500)));
        assert!(is_transient(&status(502)));
        assert!(!is_transient(&status(404)));
        assert!(!is_transient(&status(409)));
    }

    #[tokio::test]
    async fn a_burst_of_server_errors_is_retried() {
        let server = standin().await;
        server.add_fault(Fault::error(500).on_path("/namespaces/staging").times(3));
        let api = fast(&server, Duration::from_secs(10), Duration::from_secs(2));
        let namespace = get_namespace(&api).await.unwrap();
        assert_eq!(namespace.metadata.name.as_deref(), Some("staging"));
        let tries = server
            .requests()
            .iter()
            .filter(|r| format!("{r:?}").contains("/namespaces/staging"))
            .count();
        assert!(tries >= 4, "{tries} requests");
    }

    #[tokio::test]
    async fn raw_requests_honour_retry_after() {
        let server = standin().await;
        server.add_fault(Fault::too_many_requests(1).on_path("/version").times(1));
        let api = fast(&server, Duration::from_secs(10), Duration::from_secs(5));
        let started = std::time::Instant::now();
        let call = Call::raw(&http::Method::GET, "/version");
        let response = api
            .send_raw(
                &call,
                || http::Request::get("/version").body(Vec::new()).unwrap(),
                DEFAULT_BODY_LIMIT,
            )
            .await
            .unwrap();
        assert_eq!(response.status, http::StatusCode::OK);
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert!(!format!("{response:?}").contains("gitVersion"));
    }

    #[tokio::test]
    async fn a_raw_body_over_the_limit_is_refused_without_quoting_it() {
        let server = standin().await;
        let api = fast(&server, Duration::from_secs(5), Duration::from_secs(2));
        let call = Call::raw(&http::Method::GET, "/version");
        let err = api
            .send_raw(
                &call,
                || http::Request::get("/version").body(Vec::new()).unwrap(),
                8,
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("GET /version") && err.contains("larger than 8 bytes"),
            "{err}"
        );
        assert!(!err.contains("gitVersion"), "{err}");
    }

    #[tokio::test]
    async fn persistent_errors_give_up_within_the_deadline() {
        let server = standin().await;
        server.add_fault(Fault::error(503).on_path("/namespaces/staging"));
        let api = fast(&server, Duration::from_millis(1500), Duration::from_millis(500));
        let err = get_namespace_fails_within(&api, Duration::from_millis(2500)).await;
        let message = err.to_string();
        assert!(
            message.contains("get namespaces staging") && (message.contains("503") || err.is_unreachable()),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_unreachable_by_the_deadline() {
        let server = standin().await;
        server.add_fault(Fault::latency(Duration::from_secs(30)).on_path("/namespaces/staging"));
        let api = fast(&server, Duration::from_millis(1200), Duration::from_millis(400));
        let err = get_namespace_fails_within(&api, Duration::from_millis(2000)).await;
        assert!(err.is_unreachable(), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("the API server at {} is unreachable (", api.server())),
            "{message}"
        );
        assert!(message.contains("no answer"), "{message}");
    }

    #[tokio::test]
    async fn a_lost_server_is_unreachable_in_one_sentence() {
        let server = standin().await;
        let api = fast(&server, Duration::from_millis(1500), Duration::from_millis(500));
        server.shutdown();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let err = get_namespace_fails_within(&api, Duration::from_millis(2500)).await;
        assert!(err.is_unreachable(), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("is unreachable (get namespaces staging"),
            "{message}"
        );
        assert!(message.contains("kubectl cluster-info"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[tokio::test]
    async fn not_found_is_data_for_get_opt() {
        let server = standin().await;
        let api = fast(&server, Duration::from_secs(5), Duration::from_secs(2));
        let namespaces: kube::Api<Namespace> = kube::Api::all(api.client().clone());
        let call = Call::get("namespaces", None, "nope");
        let found = api.get_opt(&call, || namespaces.get("nope")).await.unwrap();
        assert!(found.is_none());
    }
}

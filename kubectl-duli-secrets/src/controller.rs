//! The sealed-secrets controller, reached as kubeseal reaches it: through the API server's service proxy
//! (`/api/v1/namespaces/NS/services/http:NAME:PORT/proxy/…`) with the user's own credentials.
//!
//! `GET /v1/cert.pem` for the certificate, `POST /v1/verify` (200 decrypts, 409 does not) and
//! `POST /v1/rotate` (the re-encrypted SealedSecret). A missing Service is the most common kubeseal failure,
//! so the error looks for sealed-secrets Services elsewhere and names the flags to use.

use std::time::Duration;

use http::{Method, Request, StatusCode};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use serde_json::Value;

use shared::api::{ApiClient, ApiError, Call, DEFAULT_BODY_LIMIT, Policy, RawResponse};
use shared::cluster::Cluster;

use crate::cli::Controller;

/// Default Service name (env `SEALED_SECRETS_CONTROLLER_NAME`).
pub const DEFAULT_NAME: &str = "sealed-secrets-controller";
/// Default Service namespace (env `SEALED_SECRETS_CONTROLLER_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "kube-system";

/// Errors talking to the controller.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The Service does not exist.
    #[error("cannot get sealed secret service `{name}` in namespace `{namespace}`: not found. {hint}")]
    ServiceNotFound {
        /// Service name.
        name: String,
        /// Service namespace.
        namespace: String,
        /// What to do (names discovered Services when there are any).
        hint: String,
    },
    /// RBAC said no.
    #[error(
        "{action}: forbidden ({message}); the controller is reached through the API server's service proxy, \
         which needs `get services` and `get`/`create services/proxy` in namespace `{namespace}`"
    )]
    Forbidden {
        /// What was attempted.
        action: String,
        /// Controller namespace.
        namespace: String,
        /// The API server's message (only from a Kubernetes `Status`; never a raw body).
        message: String,
    },
    /// The API server could not be reached, kept failing, or its answer could not be read.
    #[error("{action}: {error}")]
    Api {
        /// What was attempted.
        action: String,
        /// Why (names the call or the server, never a body).
        error: ApiError,
    },
    /// The controller answered with an unexpected status.
    #[error("{action}: the controller answered HTTP {status} {reason}")]
    Status {
        /// What was attempted.
        action: String,
        /// HTTP status.
        status: u16,
        /// The status's reason phrase (the body is never shown: it may hold anything).
        reason: String,
    },
}

/// Default deadline for one exchange with the controller (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Controller {
    fn default() -> Self {
        Controller {
            name: DEFAULT_NAME.to_string(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Verdict of `/v1/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The controller can decrypt every value.
    Decrypts,
    /// It cannot (wrong key, scope, name or namespace).
    DoesNotDecrypt,
}

/// Retries for the controller's endpoints: fewer than the default, because a failure falls back to the
/// cached certificate (and verify/rotate report it) — waiting out a dead cluster helps no one.
const POLICY: Policy = Policy {
    request_timeout: shared::api::DEFAULT_REQUEST_TIMEOUT,
    min_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(2),
    max_retries: 4,
};

impl Controller {
    /// A client for one exchange: every call through it ends within `--timeout`.
    pub fn api_client(&self, cluster: &Cluster) -> ApiClient {
        ApiClient::new(cluster, self.timeout).with_policy(POLICY)
    }

    /// The Service's proxy path for `path` (e.g. `v1/cert.pem`), with the port looked up by name.
    async fn proxy_path(&self, api: &ApiClient, path: &str, action: &str) -> Result<String, ControllerError> {
        let services: Api<Service> = Api::namespaced(api.client().clone(), &self.namespace);
        let call = Call::get("services", Some(&self.namespace), &self.name);
        let service = api
            .get_opt(&call, || services.get(&self.name))
            .await
            .map_err(|error| self.api_error(action, error))?;
        let Some(service) = service else {
            return Err(ControllerError::ServiceNotFound {
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                hint: self.discover(api).await,
            });
        };
        let ports = service.spec.and_then(|spec| spec.ports).unwrap_or_default();
        let port = ports
            .iter()
            .find(|port| port.name.as_deref() == Some("http"))
            .or(ports.first())
            .and_then(|port| port.name.clone())
            .unwrap_or_default();
        Ok(format!(
            "/api/v1/namespaces/{}/services/http:{}:{port}/proxy/{path}",
            self.namespace, self.name
        ))
    }

    /// Sealed-secrets Services elsewhere in the cluster, as a hint sentence.
    async fn discover(&self, api: &ApiClient) -> String {
        let all: Api<Service> = Api::all(api.client().clone());
        let params = ListParams::default();
        let found: Vec<(String, String)> = match api
            .call(&Call::list("services", None), || all.list(&params))
            .await
        {
            Ok(list) => list
                .items
                .into_iter()
                .filter(|svc| {
                    let name = svc.metadata.name.as_deref().unwrap_or_default();
                    let labelled = svc.metadata.labels.as_ref().is_some_and(|labels| {
                        labels.get("app.kubernetes.io/name").map(String::as_str) == Some("sealed-secrets")
                    });
                    (labelled || name.contains("sealed-secrets")) && !name.ends_with("-metrics")
                })
                .map(|svc| {
                    (
                        svc.metadata.name.unwrap_or_default(),
                        svc.metadata.namespace.unwrap_or_default(),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        match found.first() {
            Some((name, namespace)) => format!(
                "Found Service `{name}` in namespace `{namespace}` (Helm names it after the release): pass \
                 --controller-name {name} --controller-namespace {namespace}, or set \
                 SEALED_SECRETS_CONTROLLER_NAME/SEALED_SECRETS_CONTROLLER_NAMESPACE"
            ),
            None => "No sealed-secrets Service found in the cluster: is the controller installed? Pass \
                     --controller-name/--controller-namespace, or --cert FILE to seal offline"
                .to_string(),
        }
    }

    fn api_error(&self, action: &str, error: ApiError) -> ControllerError {
        match error {
            ApiError::Forbidden { message, .. } => ControllerError::Forbidden {
                action: action.to_string(),
                namespace: self.namespace.clone(),
                message,
            },
            error => ControllerError::Api {
                action: action.to_string(),
                error,
            },
        }
    }

    /// One exchange through the service proxy; 429/5xx and transport failures are retried by `api`.
    async fn exchange(
        &self,
        api: &ApiClient,
        method: Method,
        path: &str,
        body: Vec<u8>,
        action: &str,
    ) -> Result<RawResponse, ControllerError> {
        let uri = self.proxy_path(api, path, action).await?;
        let request = || {
            let builder = Request::builder().method(method.clone()).uri(&uri);
            let builder = if method == Method::GET {
                builder.header("Accept", "application/x-pem-file, */*")
            } else {
                builder
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/json")
            };
            builder
                .body(body.clone())
                .expect("a method, a path from a Service and fixed headers make a valid request")
        };
        let response = api
            .send_raw(&Call::raw(&method, &uri), request, DEFAULT_BODY_LIMIT)
            .await
            .map_err(|error| self.api_error(action, error))?;
        if response.status == StatusCode::FORBIDDEN {
            return Err(ControllerError::Forbidden {
                action: action.to_string(),
                namespace: self.namespace.clone(),
                message: status_message(&response.body),
            });
        }
        Ok(response)
    }

    fn unexpected(action: &str, status: StatusCode) -> ControllerError {
        ControllerError::Status {
            action: action.to_string(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or_default().to_string(),
        }
    }

    /// The controller's certificate (PEM bytes, unchanged).
    pub async fn fetch_cert(&self, api: &ApiClient) -> Result<Vec<u8>, ControllerError> {
        let action = "cannot fetch certificate";
        let response = self
            .exchange(api, Method::GET, "v1/cert.pem", Vec::new(), action)
            .await?;
        if response.status != StatusCode::OK {
            return Err(Self::unexpected(action, response.status));
        }
        Ok(response.body)
    }

    /// Ask the controller whether it can decrypt `sealed` (a SealedSecret document).
    pub async fn verify(&self, api: &ApiClient, sealed: &Value) -> Result<Verdict, ControllerError> {
        let action = "cannot verify with the controller";
        let body = serde_json::to_vec(sealed).unwrap_or_default();
        let response = self
            .exchange(api, Method::POST, "v1/verify", body, action)
            .await?;
        match response.status {
            StatusCode::OK => Ok(Verdict::Decrypts),
            StatusCode::CONFLICT => Ok(Verdict::DoesNotDecrypt),
            other => Err(Self::unexpected(action, other)),
        }
    }

    /// Have the controller re-encrypt `sealed` with its newest key; returns the new SealedSecret.
    pub async fn rotate(&self, api: &ApiClient, sealed: &Value) -> Result<Value, ControllerError> {
        let action = "cannot re-encrypt with the controller";
        let body = serde_json::to_vec(sealed).unwrap_or_default();
        let response = self
            .exchange(api, Method::POST, "v1/rotate", body, action)
            .await?;
        if response.status != StatusCode::OK {
            return Err(Self::unexpected(action, response.status));
        }
        // serde's message can quote the answer: only where it broke.
        serde_json::from_slice(&response.body).map_err(|err| ControllerError::Status {
            action: action.to_string(),
            status: response.status.as_u16(),
            reason: format!(
                "but its answer is not a SealedSecret JSON document (line {}, column {})",
                err.line(),
                err.column()
            ),
        })
    }
}

/// The message of a Kubernetes `Status` body (one line, bounded); empty for anything else, which is never
/// shown.
fn status_message(bytes: &[u8]) -> String {
    if let Ok(Value::Object(status)) = serde_json::from_slice::<Value>(bytes)
        && status.get("kind").and_then(Value::as_str) == Some("Status")
        && let Some(message) = status.get("message").and_then(Value::as_str)
    {
        return message
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
    }
    "the API server gave no reason".to_string()
}

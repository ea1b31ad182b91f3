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
        /// The API server's message.
        message: String,
    },
    /// Any other API or transport failure.
    #[error("{action}: {message}")]
    Request {
        /// What was attempted.
        action: String,
        /// Why.
        message: String,
    },
    /// The controller answered with an unexpected status.
    #[error("{action}: the controller answered HTTP {status}: {body}")]
    Status {
        /// What was attempted.
        action: String,
        /// HTTP status.
        status: u16,
        /// The first line of the body.
        body: String,
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

impl Controller {
    /// The Service's proxy path for `path` (e.g. `v1/cert.pem`), with the port looked up by name.
    async fn proxy_path(
        &self,
        client: &kube::Client,
        path: &str,
        action: &str,
    ) -> Result<String, ControllerError> {
        let services: Api<Service> = Api::namespaced(client.clone(), &self.namespace);
        let service = services.get(&self.name).await.map_err(|err| match err {
            kube::Error::Api(status) if status.code == 404 => ControllerError::ServiceNotFound {
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                hint: String::new(),
            },
            other => self.api_error(action, other),
        });
        let service = match service {
            Err(ControllerError::ServiceNotFound { name, namespace, .. }) => {
                let hint = self.discover(client).await;
                return Err(ControllerError::ServiceNotFound {
                    name,
                    namespace,
                    hint,
                });
            }
            other => other?,
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
    async fn discover(&self, client: &kube::Client) -> String {
        let all: Api<Service> = Api::all(client.clone());
        let found: Vec<(String, String)> = match all.list(&ListParams::default()).await {
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

    fn api_error(&self, action: &str, err: kube::Error) -> ControllerError {
        match err {
            kube::Error::Api(status) if status.code == 403 => ControllerError::Forbidden {
                action: action.to_string(),
                namespace: self.namespace.clone(),
                message: status.message,
            },
            other => ControllerError::Request {
                action: action.to_string(),
                message: shared::cluster::describe_api_error(&other),
            },
        }
    }

    async fn call(
        &self,
        client: &kube::Client,
        method: Method,
        path: &str,
        body: Vec<u8>,
        action: &str,
    ) -> Result<(StatusCode, Vec<u8>), ControllerError> {
        let exchange = self.exchange(client, method, path, body, action);
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ControllerError::Request {
                    action: action.to_string(),
                    message: format!(
                        "no answer within {:?}: the API server or the controller is unreachable, overloaded or \
                         throttling requests (try again later, or raise --timeout)",
                        self.timeout
                    ),
                })
            })
    }

    async fn exchange(
        &self,
        client: &kube::Client,
        method: Method,
        path: &str,
        body: Vec<u8>,
        action: &str,
    ) -> Result<(StatusCode, Vec<u8>), ControllerError> {
        let uri = self.proxy_path(client, path, action).await?;
        // The controller rate-limits verify to 2/s: retry a few 429s.
        for attempt in 0..4u32 {
            let mut request = Request::builder().method(method.clone()).uri(&uri);
            request = if method == Method::GET {
                request.header("Accept", "application/x-pem-file, */*")
            } else {
                request
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/json")
            };
            let request = request
                .body(kube::client::Body::from(body.clone()))
                .map_err(|err| ControllerError::Request {
                    action: action.to_string(),
                    message: err.to_string(),
                })?;
            let response = client
                .send(request)
                .await
                .map_err(|err| self.api_error(action, err))?;
            let status = response.status();
            let bytes =
                response
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(|err| ControllerError::Request {
                        action: action.to_string(),
                        message: err.to_string(),
                    })?;
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < 3 {
                tokio::time::sleep(Duration::from_millis(600 * u64::from(attempt + 1))).await;
                continue;
            }
            if status == StatusCode::FORBIDDEN {
                return Err(ControllerError::Forbidden {
                    action: action.to_string(),
                    namespace: self.namespace.clone(),
                    message: first_line(&bytes),
                });
            }
            return Ok((status, bytes.to_vec()));
        }
        unreachable!("the last attempt returns")
    }

    /// The controller's certificate (PEM bytes, unchanged).
    pub async fn fetch_cert(&self, client: &kube::Client) -> Result<Vec<u8>, ControllerError> {
        let action = "cannot fetch certificate";
        let (status, body) = self
            .call(client, Method::GET, "v1/cert.pem", Vec::new(), action)
            .await?;
        if status != StatusCode::OK {
            return Err(ControllerError::Status {
                action: action.into(),
                status: status.as_u16(),
                body: first_line(&body),
            });
        }
        Ok(body)
    }

    /// Ask the controller whether it can decrypt `sealed` (a SealedSecret document).
    pub async fn verify(&self, client: &kube::Client, sealed: &Value) -> Result<Verdict, ControllerError> {
        let action = "cannot verify with the controller";
        let body = serde_json::to_vec(sealed).unwrap_or_default();
        let (status, body) = self.call(client, Method::POST, "v1/verify", body, action).await?;
        match status {
            StatusCode::OK => Ok(Verdict::Decrypts),
            StatusCode::CONFLICT => Ok(Verdict::DoesNotDecrypt),
            other => Err(ControllerError::Status {
                action: action.into(),
                status: other.as_u16(),
                body: first_line(&body),
            }),
        }
    }

    /// Have the controller re-encrypt `sealed` with its newest key; returns the new SealedSecret.
    pub async fn rotate(&self, client: &kube::Client, sealed: &Value) -> Result<Value, ControllerError> {
        let action = "cannot re-encrypt with the controller";
        let body = serde_json::to_vec(sealed).unwrap_or_default();
        let (status, body) = self.call(client, Method::POST, "v1/rotate", body, action).await?;
        if status != StatusCode::OK {
            return Err(ControllerError::Status {
                action: action.into(),
                status: status.as_u16(),
                body: first_line(&body),
            });
        }
        serde_json::from_slice(&body).map_err(|err| ControllerError::Request {
            action: action.to_string(),
            message: format!("the controller's answer is not a SealedSecret JSON document: {err}"),
        })
    }
}

/// A one-line summary of a response body: a Kubernetes `Status` message, else the first line.
fn first_line(bytes: &[u8]) -> String {
    if let Ok(Value::Object(status)) = serde_json::from_slice::<Value>(bytes)
        && let Some(message) = status.get("message").and_then(Value::as_str)
    {
        return message.chars().take(300).collect();
    }
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("(empty body)");
    line.chars().take(300).collect()
}

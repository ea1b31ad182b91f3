//! Errors: [`ApiError`] is what the HTTP side answers (always a Kubernetes `Status` body), [`Error`] is
//! what the library API returns when building or seeding fails.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// One entry of `details.causes` in an Invalid `Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Machine-readable reason, e.g. `FieldValueRequired`, `FieldValueTypeInvalid`.
    pub reason: String,
    /// Human-readable message without the field prefix, e.g. `Required value`.
    pub message: String,
    /// The field path, e.g. `spec.instances`.
    pub field: String,
}

/// A failed API call, rendered as a Kubernetes `Status` object with the matching HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code (404, 409, 422, ...).
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: String,
    /// `Status.message`, printed by kubectl after `Error from server (Reason): `.
    pub message: String,
    /// `Status.details`, if any (boxed: keeps `Result<_, ApiError>` small).
    pub details: Option<Box<Value>>,
    /// Seconds for the `Retry-After` header and `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(rt: &ResourceType, name: &str) -> Value {
    json!({"name": name, "group": rt.group, "kind": rt.plural})
}

impl ApiError {
    /// A bare error with code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 404 for a named object: `pods "x" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(rt, name))),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", rt.group_resource()),
            )
        }
    }

    /// 404 for a path that names no resource.
    pub fn no_such_path(what: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({what})"),
        )
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(rt, name))),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", rt.group_resource()),
            )
        }
    }

    /// 409 `Conflict` for a stale `resourceVersion`.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(rt, name))),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    rt.group_resource()
                ),
            )
        }
    }

    /// 422 `Invalid` with causes, formatted as the API server does.
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let kind_group = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        ApiError {
            details: Some(Box::new(
                json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes_json}),
            )),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind_group} \"{name}\" is invalid: {joined}"),
            )
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 `Forbidden`, as RBAC would answer an anonymous user.
    pub fn forbidden(rt: &ResourceType, name: &str, verb: &str, namespace: &str) -> Self {
        let what = if name.is_empty() {
            rt.group_resource()
        } else {
            format!("{} \"{name}\"", rt.group_resource())
        };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        ApiError {
            details: Some(Box::new(details(rt, name))),
            ..Self::new(
                403,
                "Forbidden",
                format!(
                    "{what} is forbidden: User \"system:anonymous\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                    rt.plural, rt.group
                ),
            )
        }
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 415 `UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// 501: a documented gap of the stand-in.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            501,
            "NotImplemented",
            format!("kube-standin does not implement {what}"),
        )
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// 410 `Expired` for a watch from a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The `Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = self.details.as_deref().cloned();
        if let Some(secs) = self.retry_after {
            let d = details.get_or_insert_with(|| json!({}));
            d["retryAfterSeconds"] = json!(secs);
        }
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            self.to_status().to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Errors of the library API (building, seeding, starting).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("failed to {action} {path}")]
    Io {
        /// What was attempted ("read", "write", "list").
        action: &'static str,
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A YAML or JSON document did not parse.
    #[error("invalid YAML in {origin}: {message}")]
    Yaml {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A CustomResourceDefinition was unusable.
    #[error("invalid CustomResourceDefinition {name}: {message}")]
    Crd {
        /// The CRD name (or `?`).
        name: String,
        /// What was wrong.
        message: String,
    },
    /// A seeded or inserted object was rejected like the API would reject it.
    #[error("object {what} rejected: {source}")]
    Rejected {
        /// `kind/namespace/name` of the object.
        what: String,
        /// The API error.
        #[source]
        source: ApiError,
    },
    /// A kind or resource name did not resolve.
    #[error("unknown resource type {0:?}")]
    UnknownResource(String),
    /// The server could not start.
    #[error("failed to start the server: {0}")]
    Start(String),
}

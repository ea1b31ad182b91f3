//! API calls that survive transient faults and fail with messages a person can act on.
//!
//! Every call is described by a [`Call`] (verb, resource, namespace, name) so that a 403 says exactly which
//! permission is missing, and wrapped in [`call`], which retries with exponential backoff on 429, 5xx and
//! broken connections. kube's own client already retries 429/503/504 honouring `Retry-After`; this layer adds
//! 500/502 and transport errors, which a busy or restarting API server produces too, and which are safe to
//! retry because everything `env` sends is idempotent (GET, server-side apply, DELETE).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::api::ApiResource;

/// What an API call was doing, for error messages and `kubectl auth can-i` hints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    /// The Kubernetes verb: get, list, watch, create, patch, delete.
    pub verb: &'static str,
    /// `plural.group`, or the plural alone for the core group (`namespaces`).
    pub resource: String,
    /// The namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// The object's name, when the call is about one object.
    pub name: Option<String>,
}

impl Call {
    /// A call on `resource` (as discovery resolved it).
    pub fn new(
        verb: &'static str,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        Call {
            verb,
            resource: resource_name(resource),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
        }
    }

    /// The `kubectl auth can-i` command that checks this permission.
    pub fn can_i(&self) -> String {
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
pub fn resource_name(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// RBAC refused the call.
    #[error(
        "forbidden: you may not {call}: {message}; ask a cluster admin for that permission (check with `{}`)",
        call.can_i()
    )]
    Forbidden {
        /// The call.
        call: Box<Call>,
        /// The API server's message.
        message: String,
    },
    /// The API server answered with an error status.
    #[error("cannot {call}: {} ({} {})", status.message, status.code, status.reason)]
    Status {
        /// The call.
        call: Box<Call>,
        /// The server's Status.
        status: Box<kube::core::Status>,
    },
    /// The call did not get an answer (after retries).
    #[error("cannot {call}: {source}")]
    Transport {
        /// The call.
        call: Box<Call>,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
}

impl ApiError {
    /// Classify a client error for `call`.
    pub fn new(call: Call, err: kube::Error) -> Self {
        let call = Box::new(call);
        match err {
            kube::Error::Api(status) if status.code == 403 => ApiError::Forbidden {
                call,
                message: status.message,
            },
            kube::Error::Api(status) => ApiError::Status { call, status },
            source => ApiError::Transport {
                call,
                source: Box::new(source),
            },
        }
    }

    /// The HTTP status code, when the server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Forbidden { .. } => Some(403),
            ApiError::Status { status, .. } => Some(status.code),
            ApiError::Transport { .. } => None,
        }
    }

    /// The server's Status, when it answered with one.
    pub fn status(&self) -> Option<&kube::core::Status> {
        match self {
            ApiError::Status { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// True for failures worth retrying: throttling, server errors, broken connections.
pub fn is_transient(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// The backoff used for every retried call: 100 ms doubling to 5 s, 8 tries, with jitter (≈ 20 s in all).
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(8)
        .with_jitter()
}

/// Run `request` with retries on transient failures; errors are described by `call`.
pub async fn call<T, F, Fut>(call: &Call, request: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    request
        .retry(backoff())
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .notify(|err, after| tracing::debug!("retrying {call} in {after:?} after: {err}"))
        .await
        .map_err(|err| ApiError::new(call.clone(), err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("denied by policy", "Forbidden")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn forbidden_names_verb_resource_and_namespace() {
        let resource = ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        };
        let call = Call::new("patch", &resource, Some("argocd"), Some("staging-backend"));
        let message = ApiError::new(call, status(403)).to_string();
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
    fn throttling_and_server_errors_are_transient() {
        assert!(is_transient(&status(429)));
        assert!(is_transient(&status(500)));
        assert!(!is_transient(&status(404)));
        assert!(!is_transient(&status(409)));
    }

    #[tokio::test]
    async fn retries_until_success() {
        let call_ = Call {
            verb: "get",
            resource: "namespaces".into(),
            namespace: None,
            name: Some("x".into()),
        };
        let mut left = 2;
        let value = call(&call_, || {
            let fail = left > 0;
            left -= 1;
            async move { if fail { Err(status(500)) } else { Ok(7) } }
        })
        .await
        .unwrap();
        assert_eq!(value, 7);
    }
}

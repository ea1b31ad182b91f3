//! Where the sealing certificate comes from: `--cert FILE|URL`, else the cluster's controller (cached per
//! context on success), else — offline, or when the cluster cannot be reached — that cache.

use std::time::Duration;

use http::Request;

use crate::cert::{CertCache, CertError, Certificate};
use crate::cli::{CertOptions, Controller};
use crate::controller::ControllerError;
use shared::cluster::{ClusterError, ClusterTarget};

/// How long connecting to the API server may take before falling back to the cache.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors finding a certificate.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `--offline` and nothing cached.
    #[error(
        "no cached certificate for context `{context}` (looked for {path}); run once with cluster access \
         (kubectl duli secrets fetch-cert) or pass --cert FILE|URL"
    )]
    NoCache {
        /// The context.
        context: String,
        /// The cache file.
        path: String,
    },
    /// No context to key the cache with, and no `--cert`.
    #[error("no certificate: {message}; pass --cert FILE|URL to seal without a cluster")]
    NoCluster {
        /// Why the kubeconfig gave no context.
        message: String,
    },
    /// The cluster failed and nothing is cached.
    #[error("{error}; no cached certificate for context `{context}` either — pass --cert FILE|URL")]
    Unreachable {
        /// The context.
        context: String,
        /// The fetch error.
        error: ControllerError,
    },
    /// `--cert URL` could not be fetched.
    #[error("cannot fetch {url:?}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The certificate itself is unusable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The controller refused or is missing.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// The kubeconfig is broken.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl CertOptions {
    fn cache(&self) -> Option<CertCache> {
        self.cache.clone().or_else(CertCache::user)
    }
}

/// Find the certificate as described in the module docs. Expiry is not checked here (see
/// [`Certificate::usable`]).
pub async fn load(options: &CertOptions, target: &ClusterTarget) -> Result<Certificate, SourceError> {
    if let Some(cert) = &options.cert {
        return read_cert_flag(cert, options.controller.timeout).await;
    }
    let context = target.context_name().map_err(|err| match err {
        ClusterError::Kubeconfig { .. } | ClusterError::NoContext { .. } => SourceError::NoCluster {
            message: err.to_string(),
        },
        other => SourceError::Cluster(other),
    })?;
    let cache = options.cache();
    let cached = || -> Result<Option<Certificate>, SourceError> {
        match &cache {
            Some(cache) => Ok(cache.load(&context)?),
            None => Ok(None),
        }
    };
    if options.offline {
        return cached()?.ok_or_else(|| SourceError::NoCache {
            context: context.clone(),
            path: cache
                .as_ref()
                .map(|c| c.path(&context).display().to_string())
                .unwrap_or_else(|| "(no cache dir)".into()),
        });
    }
    match fetch_from_cluster(&options.controller, target, &context).await {
        Ok(cert) => {
            // An expired certificate is never cached: it would replace a cached one that still works.
            let expired = cert.check_expiry(std::time::SystemTime::now()).is_err();
            if let Some(cache) = cache.as_ref().filter(|_| !expired)
                && let Err(err) = cache.store(&context, &cert)
            {
                tracing::warn!("could not cache the certificate: {err}");
            }
            Ok(cert)
        }
        Err(SourceError::Controller(
            err @ (ControllerError::Api { .. } | ControllerError::Status { .. }),
        )) => match cached()? {
            Some(cert) => {
                tracing::warn!("{err}; using the certificate cached for context `{context}`");
                Ok(cert)
            }
            None => Err(SourceError::Unreachable { context, error: err }),
        },
        Err(other) => Err(other),
    }
}

async fn fetch_from_cluster(
    controller: &Controller,
    target: &ClusterTarget,
    context: &str,
) -> Result<Certificate, SourceError> {
    let cluster = target.connect(Some(CONNECT_TIMEOUT)).await?;
    let pem = controller.fetch_cert(&controller.api_client(&cluster)).await?;
    let desc = format!(
        "from controller {}/{} (context `{context}`)",
        controller.namespace, controller.name
    );
    Ok(Certificate::parse(&pem, &desc)?)
}

/// `--cert` as kubeseal reads it: no scheme or a one-letter one (a drive) is a file; `file://`, `http://`
/// and `https://` are URLs.
async fn read_cert_flag(cert: &str, timeout: Duration) -> Result<Certificate, SourceError> {
    let scheme = cert.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        None => Ok(Certificate::read_file(std::path::Path::new(cert))?),
        Some(scheme) if scheme.len() == 1 => Ok(Certificate::read_file(std::path::Path::new(cert))?),
        Some("file") => Ok(Certificate::read_file(std::path::Path::new(
            &cert["file://".len()..],
        ))?),
        Some("http" | "https") => {
            let bytes = fetch_url(cert, timeout).await?;
            Ok(Certificate::parse(&bytes, cert)?)
        }
        Some(other) => Err(SourceError::Fetch {
            url: cert.to_string(),
            message: format!("unsupported scheme `{other}`; use a file path, file://, http:// or https://"),
        }),
    }
}

/// The most a certificate URL may answer.
const CERT_BODY_LIMIT: usize = 1024 * 1024;

/// GET a URL with kube's HTTP stack (rustls, the platform's trust store): at most [`CERT_BODY_LIMIT`]
/// bytes, all within `timeout` (a server that drip-feeds a byte a second never passes a read timeout).
pub async fn fetch_url(url: &str, timeout: Duration) -> Result<Vec<u8>, SourceError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let fail = |message: String| SourceError::Fetch {
        url: url.to_string(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|err: http::uri::InvalidUri| fail(err.to_string()))?;
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or("")
    );
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut config = kube::Config::new(
        origin
            .parse()
            .map_err(|err: http::uri::InvalidUri| fail(err.to_string()))?,
    );
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(CONNECT_TIMEOUT);
    let client = kube::Client::try_from(config).map_err(|err| fail(err.to_string()))?;
    let request = Request::get(path)
        .header("Accept", "application/x-pem-file, */*")
        .body(kube::client::Body::empty())
        .map_err(|err| fail(err.to_string()))?;
    let response = tokio::time::timeout_at(deadline, client.send(request))
        .await
        .map_err(|_| fail(format!("no answer within {}", shared::duration::human(timeout))))?
        .map_err(|err| match err {
            kube::Error::Api(_) => fail(err.to_string()),
            other => fail(shared::cluster::innermost_cause(&other)),
        })?;
    let status = response.status();
    if status != http::StatusCode::OK {
        return Err(fail(status.to_string()));
    }
    shared::fsio::read_body_bounded(
        response.into_body(),
        CERT_BODY_LIMIT,
        CONNECT_TIMEOUT,
        Some(deadline),
        &format!("GET {url}"),
    )
    .await
    .map_err(|err| match err {
        // Bytes kept coming, just too slowly to finish: say so, not "nothing arrived".
        shared::fsio::BodyError::Stalled { .. } if tokio::time::Instant::now() >= deadline => fail(format!(
            "the answer did not complete within {} (--timeout); the server sends too slowly or never ends",
            shared::duration::human(timeout)
        )),
        other => fail(other.to_string()),
    })
}

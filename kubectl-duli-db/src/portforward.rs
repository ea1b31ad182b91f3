//! A local TCP listener on 127.0.0.1 bridged to one port of one pod through the API server's
//! `pods/portforward` subresource (WebSocket), as kube-rs' `pod_portforward_bind` example does: every
//! accepted connection gets a **new** port-forward, joined with `copy_bidirectional`.
//!
//! Failures on the pod side (the kubelet's "connection refused" on the error channel, a refused upgrade) are
//! kept as the forward's last error, so a client that only saw its connection close can say why.
//! Reusable by `env` for anything that needs to reach a pod port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Errors starting a port-forward.
#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    /// The local port could not be bound.
    #[error(
        "cannot listen on {addr} for the port-forward to pod `{pod}`: {source}; pick another --local-port"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The pod.
        pod: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A running port-forward; dropping it stops the listener (open connections finish on their own).
#[derive(Debug)]
pub struct PortForward {
    local: SocketAddr,
    pod: String,
    port: u16,
    errors: watch::Receiver<Option<String>>,
    task: JoinHandle<()>,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PortForward {
    /// Listen on `bind` (use port 0 for a free port) and forward each connection to `pod`:`port`.
    pub async fn start(
        pods: Api<Pod>,
        pod: &str,
        port: u16,
        bind: SocketAddr,
    ) -> Result<Self, PortForwardError> {
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| PortForwardError::Bind {
                addr: bind,
                pod: pod.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| PortForwardError::Bind {
            addr: bind,
            pod: pod.to_string(),
            source,
        })?;
        let (sender, errors) = watch::channel(None);
        let sender = Arc::new(sender);
        let target = pod.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((connection, peer)) = listener.accept().await else {
                    continue;
                };
                tracing::debug!(%peer, pod = %target, port, "port-forward: new connection");
                tokio::spawn(forward_one(
                    pods.clone(),
                    target.clone(),
                    port,
                    connection,
                    sender.clone(),
                ));
            }
        });
        tracing::debug!(%local, pod, port, "port-forward listening");
        Ok(PortForward {
            local,
            pod: pod.to_string(),
            port,
            errors,
            task,
        })
    }

    /// The local address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// `pod/NAME:PORT`, for messages.
    pub fn target(&self) -> String {
        format!("pod/{}:{}", self.pod, self.port)
    }

    /// The pod's name.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// The most recent failure reported for any connection, if any.
    pub fn last_error(&self) -> Option<String> {
        self.errors.borrow().clone()
    }

    /// The most recent failure, waiting up to `within` for one to arrive (the pod side's message can trail
    /// the connection's close by a moment).
    pub async fn wait_error(&self, within: Duration) -> Option<String> {
        let mut errors = self.errors.clone();
        let _ = tokio::time::timeout(within, errors.wait_for(Option::is_some)).await;
        self.last_error()
    }
}

async fn forward_one(
    pods: Api<Pod>,
    pod: String,
    port: u16,
    mut connection: TcpStream,
    errors: Arc<watch::Sender<Option<String>>>,
) {
    let record = |message: String| {
        tracing::debug!(pod = %pod, port, "port-forward failed: {message}");
        errors.send_replace(Some(message));
    };
    let mut forwarder = match pods.portforward(&pod, &[port]).await {
        Ok(forwarder) => forwarder,
        Err(err) => {
            record(format!(
                "cannot open a port-forward to pod `{pod}` port {port}: {err}"
            ));
            return;
        }
    };
    let Some(mut upstream) = forwarder.take_stream(port) else {
        record(format!(
            "port-forward to pod `{pod}` gave no stream for port {port}"
        ));
        return;
    };
    // The pod side reports failures (e.g. "connection refused") on the error channel and leaves the data
    // stream open: close the local connection then, so the client sees the end at once.
    let error = forwarder.take_error(port);
    let mut pod_error = std::pin::pin!(
        async {
            match error {
                Some(error) => error.await,
                None => std::future::pending().await,
            }
        }
        .fuse()
    );
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut connection, &mut upstream) => {
            if let Err(err) = copied {
                tracing::debug!(pod = %pod, port, "port-forward connection ended: {err}");
            }
            // An error message may trail the end of the stream by a moment.
            if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(100), &mut pod_error).await {
                record(message);
            }
        }
        Some(message) = &mut pod_error => record(message),
    }
    drop(upstream);
    if let Err(err) = forwarder.join().await {
        tracing::debug!(pod = %pod, port, "port-forward closed uncleanly: {err}");
    }
}

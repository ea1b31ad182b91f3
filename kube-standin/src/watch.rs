//! Watch streams: newline-delimited `WatchEvent` JSON over a chunked 200 response.
//!
//! Without a resourceVersion (or `0`) the stream starts with ADDED for every current match; with one it
//! replays the retained history after it, or answers a single `ERROR` 410 `Expired` when that version
//! was compacted away (kube-runtime then relists). Objects leaving the label selector appear as DELETED.
//! The stream ends at `timeoutSeconds`, on server shutdown, or when a fault says so.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::error::ApiError;
use crate::faults::WatchFault;
use crate::printers::{TablePrinter, TableRequest};
use crate::registry::ResourceType;
use crate::selector::Selectors;
use crate::store::{Event, EventType, Store, present};

/// The parameters of one watch request.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Resume point; `None` when absent or `0` (start with the current state).
    pub resource_version: Option<u64>,
    /// When the server ends the stream.
    pub timeout: Duration,
    /// `sendInitialEvents=true`: ADDED for the current state, then an initial-events-end BOOKMARK.
    pub send_initial_events: bool,
}

/// What one watcher filters on.
#[derive(Debug, Clone)]
pub struct WatchScope {
    /// The type watched (and the version objects are presented at).
    pub rt: Arc<ResourceType>,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub selectors: Selectors,
    /// `as=Table` watches: each event carries a one-row Table instead of the object.
    pub table: Option<(Arc<TablePrinter>, TableRequest)>,
}

impl WatchScope {
    fn translate(&self, e: &Event) -> Option<(&'static str, Value)> {
        if e.key.group != self.rt.group || e.key.plural != self.rt.plural {
            return None;
        }
        if let Some(ns) = &self.namespace
            && self.rt.namespaced
            && e.key.namespace != *ns
        {
            return None;
        }
        let now = self.selectors.matches(&e.object);
        let kind = match e.kind {
            EventType::Added if now => "ADDED",
            EventType::Deleted if now => "DELETED",
            EventType::Modified => {
                let before = e.prev.as_ref().is_some_and(|p| self.selectors.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        Some((kind, self.render(&e.object)))
    }

    fn render(&self, obj: &Value) -> Value {
        match &self.table {
            Some((printer, req)) => {
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
                printer.table(&self.rt, std::slice::from_ref(obj), meta, req)
            }
            None => present(&self.rt, obj),
        }
    }
}

fn line(kind: &str, object: Value) -> String {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    s
}

fn error_line(err: &ApiError) -> String {
    line("ERROR", err.to_status())
}

fn stream_response(rx: mpsc::Receiver<String>) -> Response {
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    }));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        body,
    )
        .into_response()
}

/// Starts a watch and returns the streaming response.
pub fn start(
    store: &Store,
    scope: WatchScope,
    params: WatchParams,
    fault: WatchFault,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Response {
    let (tx, rx) = mpsc::channel::<String>(256);
    let mut initial: Vec<String> = Vec::new();
    let mut live: broadcast::Receiver<Arc<Event>>;
    {
        let st = store.lock();
        if fault.expire {
            let err = ApiError::expired(format!(
                "too old resource version: {} ({})",
                params.resource_version.unwrap_or(0),
                st.rv()
            ));
            let _ = tx.try_send(error_line(&err));
            return stream_response(rx);
        }
        live = st.subscribe();
        match params.resource_version {
            Some(rv) if !params.send_initial_events => match st.events_since(rv) {
                Ok(events) => {
                    initial.extend(
                        events
                            .iter()
                            .filter_map(|e| scope.translate(e))
                            .map(|(k, o)| line(k, o)),
                    );
                }
                Err(oldest) => {
                    let err = ApiError::expired(format!("too old resource version: {rv} ({oldest})"));
                    let _ = tx.try_send(error_line(&err));
                    return stream_response(rx);
                }
            },
            _ => {
                let objs = st.list(&scope.rt, scope.namespace.as_deref(), &scope.selectors);
                initial.extend(objs.iter().map(|o| line("ADDED", scope.render(o))));
                if params.send_initial_events {
                    initial.push(line(
                        "BOOKMARK",
                        json!({
                            "kind": scope.rt.kind, "apiVersion": scope.rt.api_version(),
                            "metadata": {"resourceVersion": st.rv().to_string(),
                                         "annotations": {"k8s.io/initial-events-end": "true"}}
                        }),
                    ));
                }
            }
        }
    }
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(params.timeout);
        tokio::pin!(deadline);
        let mut sent = 0usize;
        let limit = fault.drop_after.unwrap_or(usize::MAX);
        for chunk in initial {
            if sent >= limit || tx.send(chunk).await.is_err() {
                return;
            }
            sent += 1;
        }
        loop {
            if sent >= limit {
                return;
            }
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                received = live.recv() => match received {
                    Ok(event) => {
                        if let Some((kind, obj)) = scope.translate(&event) {
                            if tx.send(line(kind, obj)).await.is_err() {
                                return;
                            }
                            sent += 1;
                        }
                    }
                    // A slow reader: end the stream, the client resumes from its last resourceVersion.
                    Err(_) => return,
                },
            }
        }
    });
    stream_response(rx)
}

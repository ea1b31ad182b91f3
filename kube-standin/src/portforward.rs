//! `pods/NAME/portforward` over WebSocket (`v4.channel.k8s.io`), bridged to real TCP addresses.
//!
//! Framing as the kubelet does it: binary messages whose first byte is the channel; port index `i` uses
//! data channel `2i` and error channel `2i+1`; right after the upgrade each channel carries the port as
//! two little-endian bytes (kube-rs checks that). A failed connect is reported as text on the error
//! channel. v4 has no half-close: when the TCP side ends the server sends a Close and completes the
//! handshake; when the client sends Close the TCP write halves are shut and the handshake completed.
//!
//! Targets come from [`crate::Builder::port_forward`] or the pod annotation
//! `kube-standin/forward: "5432=127.0.0.1:5432,9187=127.0.0.1:9187"`, which the operator simulation puts
//! on the pods it creates when given bridges (`--bridge`, [`crate::Builder::bridge`]). SPDY (kubectl port-forward) is
//! not implemented: kubectl gets a clear 400.

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::server::AppState;
use crate::util::get_str;

/// The pod annotation naming forward targets.
pub const FORWARD_ANNOTATION: &str = "kube-standin/forward";

/// The WebSocket subprotocol spoken.
pub const PROTOCOL: &str = "v4.channel.k8s.io";

/// Parses `5432=127.0.0.1:5432,9187=127.0.0.1:9187`.
pub fn parse_forward_annotation(value: &str) -> Vec<(u16, String)> {
    value
        .split(',')
        .filter_map(|pair| {
            let (port, addr) = pair.trim().split_once('=')?;
            Some((port.trim().parse().ok()?, addr.trim().to_string()))
        })
        .collect()
}

/// Handles the upgrade request.
pub async fn handle(app: &AppState, ns: &str, pod: &str, ports: &[String], req: Request) -> Response {
    // kubectl port-forward speaks SPDY (directly or tunnelled in a WebSocket): refuse it by name.
    // (A block, so no borrow of the non-Sync request lives across an await.)
    let (upgrade, protocols) = {
        let header = |h: axum::http::HeaderName| {
            req.headers()
                .get_all(h)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",")
        };
        (
            header(axum::http::header::UPGRADE),
            header(axum::http::header::SEC_WEBSOCKET_PROTOCOL),
        )
    };
    if upgrade.to_ascii_lowercase().contains("spdy")
        || (protocols.contains("SPDY") && !protocols.contains(PROTOCOL))
    {
        return ApiError::bad_request(format!(
            "kube-standin does not implement SPDY port-forward (kubectl port-forward); use a WebSocket client with subprotocol {PROTOCOL} such as kube-rs Api::portforward"
        ))
        .into_response();
    }
    let targets = {
        let st = app.store.lock();
        let rt = st.registry.lookup("pods").expect("builtin");
        let Some(obj) = st.get(&rt, ns, pod) else {
            return ApiError::not_found(&rt, pod).into_response();
        };
        let annotated = get_str(obj, &["metadata", "annotations", FORWARD_ANNOTATION])
            .map(parse_forward_annotation)
            .unwrap_or_default();
        let mut targets = Vec::new();
        for p in ports.iter().flat_map(|p| p.split(',')).filter(|p| !p.is_empty()) {
            let Ok(port) = p.trim().parse::<u16>() else {
                return ApiError::bad_request(format!("invalid port {p:?}")).into_response();
            };
            let target = st
                .overrides
                .forwards
                .get(&(ns.to_string(), pod.to_string(), port))
                .cloned()
                .or_else(|| annotated.iter().find(|(p, _)| *p == port).map(|(_, a)| a.clone()));
            targets.push((port, target));
        }
        targets
    };
    if targets.is_empty() {
        return ApiError::bad_request("query parameter \"ports\" is required").into_response();
    }
    let (mut parts, _body) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws.protocols([PROTOCOL]),
        Err(rejection) => {
            return ApiError::bad_request(format!(
                "kube-standin serves port-forward only as a WebSocket upgrade with subprotocol {PROTOCOL} (SPDY is not supported): {rejection}"
            ))
            .into_response();
        }
    };
    if ws.selected_protocol().is_none() {
        return ApiError::bad_request(format!(
            "port-forward requires the WebSocket subprotocol {PROTOCOL}"
        ))
        .into_response();
    }
    let pod = pod.to_string();
    ws.on_upgrade(move |socket| bridge(socket, pod, targets))
}

async fn bridge(socket: WebSocket, pod: String, targets: Vec<(u16, Option<String>)>) {
    let (mut sink, mut stream) = socket.split();
    for (i, (port, _)) in targets.iter().enumerate() {
        let [lo, hi] = port.to_le_bytes();
        let ch = (2 * i) as u8;
        for frame in [[ch, lo, hi], [ch + 1, lo, hi]] {
            if sink
                .send(Message::Binary(Bytes::copy_from_slice(&frame)))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    // (data channel, bytes) from the TCP readers; `None` bytes = that connection ended.
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Option<Bytes>)>(64);
    let mut writers: Vec<Option<OwnedWriteHalf>> = Vec::new();
    let mut open = 0usize;
    for (i, (port, target)) in targets.iter().enumerate() {
        let ch = (2 * i) as u8;
        let failure = match target {
            None => Some(format!(
                "error forwarding port {port} to pod {pod}: kube-standin has no target for this port (annotation {FORWARD_ANNOTATION} or Builder::port_forward)"
            )),
            Some(addr) => match TcpStream::connect(addr.as_str()).await {
                Ok(conn) => {
                    let (mut read, write) = conn.into_split();
                    writers.push(Some(write));
                    open += 1;
                    let tx = out_tx.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 32 * 1024];
                        loop {
                            match read.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if tx
                                        .send((ch, Some(Bytes::copy_from_slice(&buf[..n]))))
                                        .await
                                        .is_err()
                                    {
                                        return;
                                    }
                                }
                            }
                        }
                        let _ = tx.send((ch, None)).await;
                    });
                    None
                }
                Err(e) => Some(format!(
                    "error forwarding port {port} to pod {pod}: dial tcp {addr}: {e}"
                )),
            },
        };
        if let Some(text) = failure {
            writers.push(None);
            let mut frame = vec![ch + 1];
            frame.extend_from_slice(text.as_bytes());
            let _ = sink.send(Message::Binary(frame.into())).await;
        }
    }
    drop(out_tx);
    if open == 0 {
        // Nothing to bridge: end the socket so clients see EOF instead of waiting forever.
        close_and_drain(&mut sink, &mut stream).await;
        return;
    }

    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(data))) if data.len() > 1 => {
                    let ch = data[0];
                    let idx = usize::from(ch / 2);
                    if ch % 2 == 0
                        && let Some(Some(w)) = writers.get_mut(idx)
                        && w.write_all(&data[1..]).await.is_err()
                    {
                        writers[idx] = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client is done: end the TCP side, then complete the close handshake.
                    for w in writers.iter_mut().flatten() {
                        let _ = w.shutdown().await;
                    }
                    let _ = sink.close().await;
                    return;
                }
                Some(Ok(_)) => {}
            },
            outgoing = out_rx.recv(), if open > 0 => match outgoing {
                Some((ch, Some(data))) => {
                    let mut frame = Vec::with_capacity(data.len() + 1);
                    frame.push(ch);
                    frame.extend_from_slice(&data);
                    if sink.send(Message::Binary(frame.into())).await.is_err() {
                        return;
                    }
                }
                Some((_, None)) | None => {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        // Every connection ended; v4 cannot half-close, so the socket must close. The
                        // kubelet closes it from its side; a short grace first lets a client that is
                        // already closing (the usual case: it hung up, so the target did) do it, which
                        // keeps kube-rs's `join()` clean.
                        let grace = tokio::time::sleep(std::time::Duration::from_millis(250));
                        tokio::pin!(grace);
                        loop {
                            tokio::select! {
                                msg = stream.next() => match msg {
                                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                                        let _ = sink.close().await;
                                        return;
                                    }
                                    Some(Ok(_)) => {}
                                },
                                _ = &mut grace => {
                                    close_and_drain(&mut sink, &mut stream).await;
                                    return;
                                }
                            }
                        }
                    }
                }
            },
        }
    }
}

/// Sends Close and reads until the client's Close, completing the handshake.
async fn close_and_drain(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    stream: &mut futures::stream::SplitStream<WebSocket>,
) {
    let _ = sink.send(Message::Close(None)).await;
    let drain = async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_annotation() {
        assert_eq!(
            parse_forward_annotation("5432=127.0.0.1:5432, 9187=127.0.0.1:9187,bad,x=y"),
            vec![
                (5432, "127.0.0.1:5432".to_string()),
                (9187, "127.0.0.1:9187".to_string())
            ]
        );
    }
}

//! Stand-ins for an API server that is not working: one that accepts connections and never answers, one
//! that answers every request with the same error `Status`, and ports nobody listens on.

use std::net::TcpListener;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A port free right now on 127.0.0.1 (another process may take it before it is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on ("the service is down", "connection refused").
pub fn closed_port() -> u16 {
    free_port()
}

/// True when something listens on `port` of 127.0.0.1 (binding it fails).
pub fn port_in_use(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// A server that accepts connections and never reads or answers; keep the listener alive while it is used.
pub fn silent_server() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// A server that answers every request with `code` and a Kubernetes `Status` (reason and message
/// `reason`); its URL, and the task to keep (it serves until aborted or the runtime ends).
pub async fn status_server(code: u16, reason: &'static str) -> (tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let body = format!(
                            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"{reason}\",\"reason\":\"{reason}\",\"code\":{code}}}"
                        );
                        let response = format!(
                            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (task, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_status_server_answers_every_request_with_its_code() {
        let (_task, url) = status_server(401, "Unauthorized").await;
        let mut socket = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        let request = "GET /api HTTP/1.1\r\nhost: x\r\n\r\n";
        let mut answers = String::new();
        for answered in 1..=2 {
            socket.write_all(request.as_bytes()).await.unwrap();
            let mut chunk = [0u8; 4096];
            while answers.matches("\"code\":401}").count() < answered {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed after {answers}");
                answers.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        }
        assert_eq!(
            answers.matches("HTTP/1.1 401 Unauthorized").count(),
            2,
            "{answers}"
        );
        assert!(answers.contains("\"code\":401"), "{answers}");
    }

    #[test]
    fn a_closed_port_refuses_and_a_silent_server_accepts() {
        let port = closed_port();
        assert!(!port_in_use(port));
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        let (listener, url) = silent_server();
        assert!(port_in_use(listener.local_addr().unwrap().port()));
        assert!(std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok());
    }
}

//! Port-forward over WebSocket to the machine's real PostgreSQL (127.0.0.1:5432, trust auth), and the
//! service proxy to a small local HTTP server.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube_standin::StandIn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PODS: &str = "apiVersion: v1
kind: Namespace
metadata: {name: staging}
---
apiVersion: v1
kind: Pod
metadata:
  name: database-1
  namespace: staging
  annotations:
    kube-standin/forward: \"5432=127.0.0.1:5432\"
spec:
  containers: [{name: postgres, image: postgres}]
status:
  phase: Running
---
apiVersion: v1
kind: Pod
metadata: {name: lonely, namespace: staging}
spec:
  containers: [{name: x, image: x}]
";

#[tokio::test]
async fn port_forward_carries_a_real_select_1() {
    let api = StandIn::builder().seed_yaml(PODS).start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");

    let mut pf = pods
        .portforward("database-1", &[5432])
        .await
        .expect("upgrade accepted");
    let stream = pf.take_stream(5432).unwrap();
    let mut config = tokio_postgres::Config::new();
    config.user("postgres").dbname("postgres");
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .expect("postgres over the forward");
    let conn = tokio::spawn(connection);
    let row = client.query_one("SELECT 1::int4 AS one", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>("one"), 1);
    drop(client);
    let _ = conn.await;
    tokio::time::timeout(Duration::from_secs(5), pf.join())
        .await
        .expect("join in time")
        .expect("clean close handshake");

    // A port with no target reports on the error channel.
    let mut pf = pods.portforward("lonely", &[80]).await.unwrap();
    let err = pf.take_error(80).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), err)
        .await
        .unwrap()
        .expect("an error message");
    assert!(msg.contains("error forwarding port 80 to pod lonely"), "{msg}");
    pf.abort();

    // A refused connection: the error channel says why and the stream ends instead of hanging.
    api.port_forward("staging", "lonely", 81, "127.0.0.1:1");
    let mut pf = pods.portforward("lonely", &[81]).await.unwrap();
    let mut stream = pf.take_stream(81).unwrap();
    let err = pf.take_error(81).unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .expect("EOF, not a hang")
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), err)
        .await
        .unwrap()
        .expect("an error message");
    assert!(msg.contains("dial tcp 127.0.0.1:1"), "{msg}");
    drop(stream);
    // The server closed first (as the kubelet does); kube-rs then reports its own late Close as an
    // error from join(), so only its completion is checked.
    let _ = tokio::time::timeout(Duration::from_secs(5), pf.join())
        .await
        .expect("join in time");

    // A missing pod is refused before the upgrade.
    match pods.portforward("nope", &[5432]).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        Err(e) => panic!("expected a 404 Status, got {e}"),
        Ok(_) => panic!("expected a 404 Status"),
    }
}

/// A one-route HTTP server: `GET /v1/cert.pem` → a PEM, `POST /v1/verify` → echo of the body.
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers (and a small body when Content-Length says so).
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                            let first = text.lines().next().unwrap_or("").to_string();
                            let (status, reply) = if first.starts_with("GET /v1/cert.pem") {
                                (
                                    "200 OK",
                                    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                                        .to_string(),
                                )
                            } else if first.starts_with("POST /v1/verify") {
                                ("200 OK", format!("verified:{body}"))
                            } else {
                                ("404 Not Found", format!("no route {first}"))
                            };
                            let resp = format!(
                                "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                                reply.len()
                            );
                            let _ = sock.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn service_proxy_relays_to_a_local_http_server() {
    let addr = upstream().await;
    let seed = format!(
        "apiVersion: v1
kind: Service
metadata:
  name: sealed-secrets-controller
  namespace: kube-system
  annotations:
    kube-standin/proxy: \"http://{addr}\"
spec:
  ports: [{{name: http, port: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: no-target, namespace: kube-system}}
spec:
  ports: [{{name: http, port: 8080}}]
"
    );
    let api = StandIn::builder().seed_yaml(&seed).start().await.unwrap();
    let client = api.client();
    let get = |path: &str| http::Request::get(path).body(Vec::new()).unwrap();
    for id in [
        "http:sealed-secrets-controller:http",
        "sealed-secrets-controller",
        "sealed-secrets-controller:8080",
        "http%3Asealed-secrets-controller%3A",
    ] {
        let pem = client
            .request_text(get(&format!(
                "/api/v1/namespaces/kube-system/services/{id}/proxy/v1/cert.pem"
            )))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{id}: {pem}");
    }
    let post = http::Request::post(
        "/api/v1/namespaces/kube-system/services/sealed-secrets-controller/proxy/v1/verify",
    )
    .body(b"sealed".to_vec())
    .unwrap();
    assert_eq!(client.request_text(post).await.unwrap(), "verified:sealed");

    match client
        .request_text(get("/api/v1/namespaces/kube-system/services/missing/proxy/"))
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    // 503 is retried by kube by default; ask once.
    let mut config = api.client_config();
    config.default_retry = false;
    let once = kube::Client::try_from(config).unwrap();
    match once
        .request_text(get("/api/v1/namespaces/kube-system/services/no-target/proxy/"))
        .await
    {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 503);
            assert!(
                s.message
                    .contains("no endpoints available for service \"no-target\"")
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

//! Port-forward over WebSocket to the machine's real PostgreSQL (127.0.0.1:5432, trust auth), Redis
//! (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672, guest/guest) — directly and through the simulated
//! operators' pods with `Builder::bridge` — and the service proxy to a small local HTTP server.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::await_condition;
use kube_standin::StandIn;
use kube_standin::simulate::Bridge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::crds;

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

/// A stand-in running the operator simulation with the three bridges to the machine's real servers.
async fn bridged_standin() -> StandIn {
    StandIn::builder()
        .crd_dir(crds("cloudnative-pg"))
        .crd_dir(crds("redis-operator"))
        .crd_dir(crds("rabbitmq-cluster-operator"))
        .crd_dir(crds("rabbitmq-topology-operator"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
        .simulate_ready(Duration::from_millis(100))
        .bridge(Bridge::Postgres("127.0.0.1:5432".into()))
        .bridge(Bridge::Redis("127.0.0.1:6379".into()))
        .bridge(Bridge::parse("rabbitmq=guest:guest@127.0.0.1:5672").unwrap())
        .start()
        .await
        .expect("stand-in starts")
}

/// Creates a custom object from YAML through the API, as a user would.
async fn create(api: &StandIn, plural: &str, yaml: &str) -> Api<DynamicObject> {
    let obj: DynamicObject = serde_saphyr::from_str(yaml).unwrap();
    let types = obj.types.clone().unwrap();
    let (group, version) = types.api_version.split_once('/').unwrap();
    let gvk = GroupVersionKind::gvk(group, version, &types.kind);
    let objects: Api<DynamicObject> = Api::namespaced_with(
        api.client(),
        "staging",
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    objects.create(&PostParams::default(), &obj).await.unwrap();
    objects
}

/// Waits until a pod exists and returns it.
async fn pod(api: &StandIn, name: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(pods, name, |p: Option<&Pod>| p.is_some()),
    )
    .await
    .unwrap_or_else(|_| panic!("pod {name} in time"))
    .unwrap()
    .unwrap()
}

/// Waits until a custom object's status satisfies `ok`.
async fn status_where(
    objects: Api<DynamicObject>,
    name: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(objects, name, move |o: Option<&DynamicObject>| {
            o.is_some_and(|o| ok(&o.data["status"]))
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{name}: status in time"))
    .unwrap()
    .unwrap();
    done.data["status"].clone()
}

fn forward_annotation(pod: &Pod) -> Option<String> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kube-standin/forward").cloned())
}

#[tokio::test]
async fn bridged_cnpg_cluster_pod_reaches_real_postgres() {
    let api = bridged_standin().await;
    let clusters = create(
        &api,
        "clusters",
        "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: database, namespace: staging}
spec:
  instances: 2
  enableSuperuserAccess: true
  storage: {size: 1Gi}
",
    )
    .await;
    let status = status_where(clusters, "database", |s| s["phase"] == "Cluster in healthy state").await;
    assert_eq!(status["readyInstances"], 2);
    assert_eq!(status["currentPrimary"], "database-1");
    assert_eq!(status["conditions"][0]["reason"], "ClusterIsReady");
    assert_eq!(status["systemID"].as_str().map(str::len), Some(19), "{status}");

    let primary = pod(&api, "database-1").await;
    let labels = primary.metadata.labels.clone().unwrap();
    assert_eq!(labels["cnpg.io/cluster"], "database");
    assert_eq!(labels["cnpg.io/instanceRole"], "primary");
    assert_eq!(
        forward_annotation(&primary).as_deref(),
        Some("5432=127.0.0.1:5432")
    );
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    let superuser = secrets.get("database-superuser").await.unwrap().data.unwrap();
    assert_eq!(superuser["username"].0, b"postgres");

    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");
    let mut pf = pods.portforward("database-1", &[5432]).await.unwrap();
    let stream = pf.take_stream(5432).unwrap();
    let mut config = tokio_postgres::Config::new();
    config.user("postgres").dbname("postgres");
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .expect("postgres through the simulated pod");
    let conn = tokio::spawn(connection);
    let row = client.query_one("SELECT 1::int4 AS one", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>("one"), 1);
    drop(client);
    let _ = conn.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), pf.join()).await;
}

#[tokio::test]
async fn bridged_redis_replication_pod_answers_ping() {
    let api = bridged_standin().await;
    let replications = create(
        &api,
        "redisreplications",
        "apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisReplication
metadata: {name: redis, namespace: staging}
spec:
  clusterSize: 2
  kubernetesConfig:
    image: quay.io/opstree/redis:v7.0.15
    redisSecret: {name: redis-secret, key: password}
",
    )
    .await;
    let status = status_where(replications, "redis", |s| s["masterNode"].is_string()).await;
    assert_eq!(status["masterNode"], "redis-0");
    assert_eq!(
        status["connectionInfo"]["host"],
        "redis-master.staging.svc.cluster.local"
    );

    let master = pod(&api, "redis-0").await;
    let labels = master.metadata.labels.clone().unwrap();
    assert_eq!(labels["redis-role"], "master");
    assert_eq!(labels["redis_setup_type"], "replication");
    assert_eq!(
        forward_annotation(&master).as_deref(),
        Some("6379=127.0.0.1:6379")
    );
    // The operator generates no Redis password Secret.
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    assert!(secrets.get_opt("redis-secret").await.unwrap().is_none());

    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");
    let mut pf = pods.portforward("redis-0", &[6379]).await.unwrap();
    let mut stream = pf.take_stream(6379).unwrap();
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while !reply.ends_with(b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a reply in time")
            .unwrap();
        assert!(n > 0, "EOF before a reply: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&buf[..n]);
    }
    assert_eq!(reply, b"+PONG\r\n");
    drop(stream);
    let _ = tokio::time::timeout(Duration::from_secs(5), pf.join()).await;

    // A standalone RedisSentinel gets its StatefulSet and Services (no status: the CRD's is empty).
    create(
        &api,
        "redissentinels",
        "apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisSentinel
metadata: {name: cache, namespace: staging}
spec:
  clusterSize: 1
  kubernetesConfig: {image: quay.io/opstree/redis-sentinel:v7.0.15}
  redisSentinelConfig: {redisReplicationName: redis}
",
    )
    .await;
    let sentinel = pod(&api, "cache-sentinel-0").await;
    assert_eq!(sentinel.metadata.labels.unwrap()["role"], "sentinel");
    let sets: Api<StatefulSet> = Api::namespaced(api.client(), "staging");
    assert_eq!(
        sets.get("cache-sentinel")
            .await
            .unwrap()
            .status
            .unwrap()
            .ready_replicas,
        Some(1)
    );
}

#[tokio::test]
async fn bridged_rabbitmq_cluster_has_the_bridge_user_and_speaks_amqp() {
    let api = bridged_standin().await;
    let clusters = create(
        &api,
        "rabbitmqclusters",
        "apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata: {name: queue, namespace: staging}
spec: {replicas: 1}
",
    )
    .await;
    status_where(clusters, "queue", |s| {
        s["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "AllReplicasReady" && c["status"] == "True")
        })
    })
    .await;
    let server = pod(&api, "queue-server-0").await;
    assert_eq!(
        forward_annotation(&server).as_deref(),
        Some("5672=127.0.0.1:5672")
    );
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    let user = secrets.get("queue-default-user").await.unwrap().data.unwrap();
    assert_eq!(user["username"].0, b"guest");
    assert_eq!(user["password"].0, b"guest");
    assert_eq!(
        user["connection_string"].0,
        b"amqp://guest:guest@queue.staging.svc:5672/"
    );

    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");
    let mut pf = pods.portforward("queue-server-0", &[5672]).await.unwrap();
    let mut stream = pf.take_stream(5672).unwrap();
    stream.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    // Frame header (type 1 = method, channel 0, size) then class 10 / method 10: Connection.Start.
    let mut head = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("Connection.Start in time")
        .unwrap();
    assert_eq!(head[0], 1, "a method frame: {head:?}");
    assert_eq!(&head[1..3], &[0, 0], "channel 0: {head:?}");
    assert_eq!(&head[7..11], &[0, 10, 0, 10], "Connection.Start: {head:?}");
    drop(stream);
    pf.abort();

    // Topology objects become Ready as the topology operator reports it.
    let queues = create(
        &api,
        "queues",
        "apiVersion: rabbitmq.com/v1beta1
kind: Queue
metadata: {name: orders, namespace: staging}
spec: {name: orders, rabbitmqClusterReference: {name: queue}}
",
    )
    .await;
    let status = status_where(queues, "orders", |s| s["conditions"][0]["status"] == "True").await;
    assert_eq!(status["conditions"][0]["reason"], "SuccessfulCreateOrUpdate");
    let users = create(
        &api,
        "users",
        "apiVersion: rabbitmq.com/v1beta1
kind: User
metadata: {name: app, namespace: staging}
spec: {rabbitmqClusterReference: {name: queue}}
",
    )
    .await;
    let status = status_where(users, "app", |s| s["credentials"]["name"].is_string()).await;
    assert_eq!(status["credentials"]["name"], "app-user-credentials");
    let creds = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(s) = secrets.get_opt("app-user-credentials").await.unwrap() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("credentials Secret in time");
    assert_eq!(
        creds.data.unwrap()["username"].0,
        status["username"].as_str().unwrap().as_bytes()
    );
}

#[tokio::test]
async fn bridges_need_the_simulation() {
    let err = StandIn::builder()
        .bridge(Bridge::Redis("127.0.0.1:6379".into()))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("simulate_ready"), "{err}");
}

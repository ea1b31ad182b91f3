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

/// The platform chart's RedisReplication: two pods, the password from `redis-secret`.
const REDIS_REPLICATION: &str = "apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisReplication
metadata: {name: redis, namespace: staging}
spec:
  clusterSize: 2
  kubernetesConfig:
    image: quay.io/opstree/redis:v7.0.15
    redisSecret: {name: redis-secret, key: password}
";

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
        .bridge(Bridge::parse("postgres=127.0.0.1:5432").unwrap())
        .bridge(Bridge::Redis(vec!["127.0.0.1:6379".into()]))
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

/// The machine's PostgreSQL as its superuser (trust auth): checks and cleanup.
async fn pg_superuser() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("the machine's PostgreSQL on 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(connection);
    client
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Whether `password` is the one a PostgreSQL SCRAM verifier
/// (`SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY`, `pg_authid.rolpassword`) was made from (RFC 5802:
/// PBKDF2-HMAC-SHA-256, then the stored and server keys). The machine's server trusts local logins, so a
/// login would not prove the password.
fn scram_verifies(verifier: &str, password: &str) -> bool {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let b64 = base64::engine::general_purpose::STANDARD;
    let parse = || -> Option<bool> {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok()?;
        let salt = b64.decode(salt).ok()?;
        let mut u = hmac_sha256(password.as_bytes(), &[salt.as_slice(), &[0, 0, 0, 1]].concat());
        let mut salted = u;
        for _ in 1..iterations {
            u = hmac_sha256(password.as_bytes(), &u);
            salted.iter_mut().zip(u).for_each(|(s, x)| *s ^= x);
        }
        let stored_key = Sha256::digest(hmac_sha256(&salted, b"Client Key"));
        let server_key = hmac_sha256(&salted, b"Server Key");
        Some(b64.encode(stored_key) == stored && b64.encode(server_key) == server)
    };
    parse().unwrap_or(false)
}

#[test]
fn scram_check_can_fail() {
    // A verifier PostgreSQL 15 made for `pencil` (password_encryption = scram-sha-256).
    let v = "SCRAM-SHA-256$4096:d6ZicK+7o5GNlpeSFx/MbQ==$Iw+gVyGiByrmLCFAy1aHkGSkBrafUy/QJfVd3RDzlas=:Stn1f7iGMRcnEiLDgXznDduRLhZWc6VNG0sZOMpoFWc=";
    assert!(scram_verifies(v, "pencil"));
    assert!(!scram_verifies(v, "pencil2"));
    assert!(!scram_verifies("SCRAM-SHA-256$4096:c2FsdA==$eA==:eA==", "pencil"));
    assert!(!scram_verifies("md5abc", "pencil"));
}

/// Waits until `check` holds (polling), panicking with `what` after 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `rolcanlogin`, `rolpassword` of a role and the owner of a database, as the superuser sees them.
async fn role_and_database(
    admin: &tokio_postgres::Client,
    role: &str,
    db: &str,
) -> Result<(bool, String, String), String> {
    let row = admin
        .query_opt(
            "SELECT r.rolcanlogin, coalesce(r.rolpassword, ''), d.datdba::regrole::text \
             FROM pg_authid r, pg_database d WHERE r.rolname = $1 AND d.datname = $2",
            &[&role, &db],
        )
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no role {role} or no database {db} yet"))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// A PostgreSQL error with the server's message (`db error` alone says nothing).
fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn secret_text(secret: &Secret, key: &str) -> String {
    let data = secret.data.as_ref().expect("data");
    String::from_utf8(data[key].0.clone()).unwrap()
}

/// A CloudNativePG Cluster with a postgres bridge: the simulated operator runs initdb on the real server,
/// so the owner in `NAME-app` logs in through a port-forward to `NAME-1`, with its password, into its
/// database; a second stand-in with the same owner changes the password (ALTER ROLE) and finds the
/// database there. The role and database (unique per run) are dropped at the end.
#[tokio::test]
async fn bridged_cnpg_cluster_pod_reaches_real_postgres() {
    use futures::FutureExt;
    let suffix = format!("{:08x}", rand::random::<u32>());
    let (cluster, owner, database, reader) = (
        format!("pg-{suffix}"),
        format!("own_{suffix}"),
        format!("db_{suffix}"),
        format!("ro_{suffix}"),
    );
    let admin = pg_superuser().await;
    let outcome =
        std::panic::AssertUnwindSafe(cnpg_initdb_checks(&admin, &cluster, &owner, &database, &reader))
            .catch_unwind()
            .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))
        .await
        .expect("drop the test database");
    for role in [&owner, &reader] {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""))
            .await
            .expect("drop the test roles");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Creates the basic-auth Secret `reader-password` for the managed role `reader`.
async fn reader_secret(api: &StandIn, reader: &str, password: &str) {
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    let mut secret = Secret::default();
    secret.metadata.name = Some("reader-password".into());
    secret.type_ = Some("kubernetes.io/basic-auth".into());
    secret.string_data = Some(
        [
            ("username".to_string(), reader.to_string()),
            ("password".to_string(), password.to_string()),
        ]
        .into(),
    );
    secrets.create(&PostParams::default(), &secret).await.unwrap();
}

async fn cnpg_initdb_checks(
    admin: &tokio_postgres::Client,
    cluster: &str,
    owner: &str,
    database: &str,
    reader: &str,
) {
    let yaml = format!(
        "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {{name: {cluster}, namespace: staging}}
spec:
  instances: 2
  enableSuperuserAccess: true
  storage: {{size: 1Gi}}
  bootstrap:
    initdb: {{database: {database}, owner: {owner}}}
  managed:
    roles:
    - {{name: {reader}, login: true, passwordSecret: {{name: reader-password}}, inRoles: [pg_monitor]}}
"
    );
    let reader_password = format!("r{:016x}", rand::random::<u64>());
    let api = bridged_standin().await;
    reader_secret(&api, reader, &reader_password).await;
    let clusters = create(&api, "clusters", &yaml).await;
    let status = status_where(clusters, cluster, |s| s["phase"] == "Cluster in healthy state").await;
    assert_eq!(status["readyInstances"], 2);
    assert_eq!(status["currentPrimary"], format!("{cluster}-1"));
    assert_eq!(status["conditions"][0]["reason"], "ClusterIsReady");
    assert_eq!(status["systemID"].as_str().map(str::len), Some(19), "{status}");

    let primary = pod(&api, &format!("{cluster}-1")).await;
    let labels = primary.metadata.labels.clone().unwrap();
    assert_eq!(labels["cnpg.io/cluster"], cluster);
    assert_eq!(labels["cnpg.io/instanceRole"], "primary");
    assert_eq!(
        forward_annotation(&primary).as_deref(),
        Some("5432=127.0.0.1:5432")
    );
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    let superuser = secrets.get(&format!("{cluster}-superuser")).await.unwrap();
    assert_eq!(secret_text(&superuser, "username"), "postgres");
    let app = secrets.get(&format!("{cluster}-app")).await.unwrap();
    assert_eq!(secret_text(&app, "username"), owner);
    assert_eq!(secret_text(&app, "dbname"), database);
    let password = secret_text(&app, "password");

    // What `kubectl duli db status` does: log in as the Secret's user through a port-forward.
    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");
    let primary_pod = format!("{cluster}-1");
    eventually("the owner logs in through the port-forward", || async {
        let mut pf = pods
            .portforward(&primary_pod, &[5432])
            .await
            .map_err(|e| e.to_string())?;
        let stream = pf.take_stream(5432).ok_or("no stream")?;
        let mut config = tokio_postgres::Config::new();
        config.user(owner).password(&password).dbname(database);
        let (client, connection) = config
            .connect_raw(stream, tokio_postgres::NoTls)
            .await
            .map_err(pg_error)?;
        let conn = tokio::spawn(connection);
        let row = client
            .query_one("SELECT current_user::text, current_database()::text", &[])
            .await
            .map_err(pg_error)?;
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1)),
            (owner.to_string(), database.to_string())
        );
        drop(client);
        let _ = conn.await;
        let _ = tokio::time::timeout(Duration::from_secs(5), pf.join()).await;
        Ok(())
    })
    .await;
    let (login, verifier, db_owner) = role_and_database(admin, owner, database).await.unwrap();
    assert!(login, "the owner has LOGIN");
    assert_eq!(db_owner, owner, "the database belongs to the owner");
    assert!(
        scram_verifies(&verifier, &password),
        "the role's password is the one in {cluster}-app"
    );
    // spec.managed.roles (done after initdb): LOGIN, the password of its Secret, member of pg_monitor.
    eventually("the managed role", || async {
        let row = admin
            .query_opt(
                "SELECT rolcanlogin, coalesce(rolpassword, ''), pg_has_role(rolname, 'pg_monitor', 'member') \
                 FROM pg_authid WHERE rolname = $1",
                &[&reader],
            )
            .await
            .map_err(pg_error)?
            .ok_or("no role yet")?;
        let (login, verifier, monitor) = (
            row.get::<_, bool>(0),
            row.get::<_, String>(1),
            row.get::<_, bool>(2),
        );
        (login && scram_verifies(&verifier, &reader_password) && monitor)
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "login {login}, password set {}, in pg_monitor {monitor}",
                    !verifier.is_empty()
                )
            })
    })
    .await;

    // Another stand-in (as a parallel test would be) with the same owner: its new password replaces the
    // old one, the existing database is no error.
    let again = bridged_standin().await;
    reader_secret(&again, reader, &reader_password).await;
    create(&again, "clusters", &yaml).await;
    let secrets: Api<Secret> = Api::namespaced(again.client(), "staging");
    let second = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(s) = secrets.get_opt(&format!("{cluster}-app")).await.unwrap() {
                return secret_text(&s, "password");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the second stand-in's app Secret in time");
    assert_ne!(second, password, "a newly generated password");
    eventually("ALTER ROLE to the second password", || async {
        let (_, verifier, _) = role_and_database(admin, owner, database).await?;
        scram_verifies(&verifier, &second)
            .then_some(())
            .ok_or_else(|| "still the old password".to_string())
    })
    .await;
}

#[tokio::test]
async fn bridged_redis_replication_pod_answers_ping() {
    let api = bridged_standin().await;
    let replications = create(&api, "redisreplications", REDIS_REPLICATION).await;
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

/// A real `redis-server` (or Sentinel) of this test, killed when dropped.
struct RedisProcess(std::process::Child);

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `redis-server` with `config` given on stdin (no password in argv), or, for a Sentinel, from a
/// 0600 file in `dir` (Sentinel rewrites its configuration file), and waits until it accepts connections.
async fn redis_process(config: &str, port: u16, sentinel_dir: Option<&std::path::Path>) -> RedisProcess {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let binary = which::which("redis-server").expect("redis-server on PATH");
    let mut command = Command::new(binary);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let child = match sentinel_dir {
        Some(dir) => {
            use std::os::unix::fs::OpenOptionsExt;
            let path = dir.join("sentinel.conf");
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(config.as_bytes()))
                .unwrap();
            command.arg(&path).arg("--sentinel").spawn().unwrap()
        }
        None => {
            let mut child = command.arg("-").stdin(Stdio::piped()).spawn().unwrap();
            child.stdin.take().unwrap().write_all(config.as_bytes()).unwrap();
            child
        }
    };
    let process = RedisProcess(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on port {port} did not start");
}

/// Sends one command (RESP array of bulk strings) and reads `lines` CRLF-terminated reply lines.
async fn redis_command<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    args: &[&str],
    lines: usize,
) -> Vec<String> {
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while reply.windows(2).filter(|w| w == b"\r\n").count() < lines {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a reply in time")
            .unwrap();
        assert!(n > 0, "EOF before a reply: {:?}", String::from_utf8_lossy(&reply));
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(reply)
        .unwrap()
        .split_terminator("\r\n")
        .map(str::to_string)
        .collect()
}

/// A password-protected `redis-server` and a Sentinel monitoring it (as the platform's redis-instance
/// chart deploys them: a RedisReplication and a RedisSentinel; here the Sentinel also has its own password,
/// `kubernetesConfig.redisSecret`, which the operator makes its `requirepass`), bridged: the data pods report the server's
/// host as `status.podIP`, so the Sentinel, reached through a port-forward to its pod, names the master pod's
/// IP as the master's address. Also the embedded Sentinel (`spec.sentinel`) pods.
#[tokio::test]
async fn bridged_redis_sentinel_reports_the_master_pods_ip() {
    let dir = tempfile::tempdir().unwrap();
    let password = format!("pw{:016x}", rand::random::<u64>());
    let (redis_port, sentinel_port) = (free_port(), free_port());
    let base = |port: u16| {
        format!(
            "port {port}\nbind 127.0.0.1\nrequirepass {password}\nsave \"\"\nappendonly no\ndir {}\n",
            dir.path().display()
        )
    };
    let _redis = redis_process(&base(redis_port), redis_port, None).await;
    let sentinel_config = format!(
        "{}sentinel monitor mymaster 127.0.0.1 {redis_port} 1\nsentinel auth-pass mymaster {password}\n",
        base(sentinel_port)
    );
    let _sentinel = redis_process(&sentinel_config, sentinel_port, Some(dir.path())).await;

    let api = StandIn::builder()
        .crd_dir(crds("redis-operator"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
        .simulate_ready(Duration::from_millis(100))
        .bridge(Bridge::parse(&format!("redis=127.0.0.1:{redis_port}")).unwrap())
        .bridge(Bridge::parse(&format!("redis-sentinel=127.0.0.1:{sentinel_port}")).unwrap())
        .start()
        .await
        .expect("stand-in starts");
    let secrets: Api<Secret> = Api::namespaced(api.client(), "staging");
    let mut secret = Secret::default();
    secret.metadata.name = Some("redis-secret".into());
    secret.string_data = Some([("password".to_string(), password.clone())].into());
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    create(&api, "redisreplications", REDIS_REPLICATION).await;
    create(
        &api,
        "redissentinels",
        "apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisSentinel
metadata: {name: redis, namespace: staging}
spec:
  clusterSize: 1
  kubernetesConfig:
    image: quay.io/opstree/redis-sentinel:v7.0.15
    redisSecret: {name: redis-secret, key: password}
  redisSentinelConfig:
    redisReplicationName: redis
    masterGroupName: mymaster
    redisReplicationPassword: {secretKeyRef: {name: redis-secret, key: password}}
",
    )
    .await;

    let master = pod(&api, "redis-0").await;
    let master_ip = master.status.unwrap().pod_ip.expect("a podIP");
    assert_eq!(master_ip, "127.0.0.1", "the bridged host");
    let sentinel_pod = pod(&api, "redis-sentinel-0").await;
    assert_eq!(
        forward_annotation(&sentinel_pod),
        Some(format!("26379=127.0.0.1:{sentinel_port}"))
    );

    let pods: Api<Pod> = Api::namespaced(api.client(), "staging");
    // The data pod is the password-protected server.
    let mut pf = pods.portforward("redis-0", &[6379]).await.unwrap();
    let mut stream = pf.take_stream(6379).unwrap();
    assert_eq!(
        redis_command(&mut stream, &["PING"], 1).await[0],
        "-NOAUTH Authentication required."
    );
    assert_eq!(redis_command(&mut stream, &["AUTH", &password], 1).await, ["+OK"]);
    assert_eq!(redis_command(&mut stream, &["PING"], 1).await, ["+PONG"]);
    drop(stream);
    pf.abort();

    // The Sentinel pods (standalone and embedded) are the real Sentinel: it names the master pod's IP.
    create(
        &api,
        "redisreplications",
        "apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisReplication
metadata: {name: cache, namespace: staging}
spec:
  clusterSize: 1
  kubernetesConfig: {image: quay.io/opstree/redis:v7.0.15, redisSecret: {name: redis-secret, key: password}}
  sentinel: {size: 1, image: quay.io/opstree/redis-sentinel:v7.0.15}
",
    )
    .await;
    pod(&api, "cache-s-0").await;
    for sentinel in ["redis-sentinel-0", "cache-s-0"] {
        let mut pf = pods.portforward(sentinel, &[26379]).await.unwrap();
        let mut stream = pf.take_stream(26379).unwrap();
        assert_eq!(
            redis_command(&mut stream, &["AUTH", &password], 1).await,
            ["+OK"],
            "{sentinel}"
        );
        let reply = redis_command(
            &mut stream,
            &["SENTINEL", "get-master-addr-by-name", "mymaster"],
            5,
        )
        .await;
        assert_eq!(reply[0], "*2", "{sentinel}: {reply:?}");
        assert_eq!(reply[2], master_ip, "{sentinel}: {reply:?}");
        assert_eq!(reply[4], redis_port.to_string(), "{sentinel}: {reply:?}");
        drop(stream);
        pf.abort();
    }
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
        .bridge(Bridge::Redis(vec!["127.0.0.1:6379".into()]))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("simulate_ready"), "{err}");
}

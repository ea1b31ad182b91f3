//! Live protocol checks, each against a `host:port` (in `status`, the local end of a port-forward to the
//! primary/master pod): PostgreSQL version, `pg_is_in_recovery()` and `pg_stat_replication`; Redis `PING`,
//! `INFO replication` and Sentinel's view of the master; RabbitMQ AMQP login, a channel, and the node alarms.
//!
//! Every check runs under a deadline ([`run_check`]) and reports `{ok, latency_ms, detail}`; a refused,
//! reset or silent connection becomes `ok: false` with the reason, never a hang.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::secrets::Password;

/// The outcome of a live check, as shown in `status` and its JSON (`live`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// The service answered and its answers look healthy.
    pub ok: bool,
    /// Wall time of the whole check (connect, log in, queries), in milliseconds.
    pub latency_ms: u64,
    /// What was seen, or why it failed.
    pub detail: String,
}

/// What a probe found when it got answers: healthy or not, and the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Healthy.
    pub ok: bool,
    /// Summary.
    pub detail: String,
}

impl Probe {
    fn new(ok: bool, detail: impl Into<String>) -> Self {
        Probe {
            ok,
            detail: detail.into(),
        }
    }
}

/// Run `check` with a deadline, timing it. `Err(reason)` and a missed deadline are `ok: false`.
pub async fn run_check<F>(timeout: Duration, check: F) -> LiveStatus
where
    F: Future<Output = Result<Probe, String>>,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, check).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(Ok(probe)) => LiveStatus {
            ok: probe.ok,
            latency_ms,
            detail: probe.detail,
        },
        Ok(Err(reason)) => LiveStatus {
            ok: false,
            latency_ms,
            detail: reason,
        },
        Err(_) => LiveStatus {
            ok: false,
            latency_ms,
            detail: format!("no answer within {} (timeout)", shared::duration::human(timeout)),
        },
    }
}

/// Login and expectations for the PostgreSQL check.
#[derive(Debug, Clone)]
pub struct PostgresProbe {
    /// User (the superuser when the Cluster enables it, else the app owner).
    pub user: String,
    /// Password.
    pub password: Option<Password>,
    /// Database.
    pub database: String,
    /// Pod names of the replicas that should stream from the primary.
    pub expected_replicas: Vec<String>,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaState {
    /// `application_name` (CNPG: the standby's pod name).
    pub name: String,
    /// `state` (`streaming`, `catchup`, …); `None` when the user may not see it.
    pub state: Option<String>,
    /// Bytes between the primary's current WAL position and the standby's replay position.
    pub lag_bytes: Option<i64>,
    /// `replay_lag` in seconds.
    pub replay_lag_s: Option<f64>,
}

/// Judge the primary's answers: not in recovery, every expected replica streaming.
pub fn judge_postgres(
    version: &str,
    in_recovery: bool,
    replicas: &[ReplicaState],
    expected: &[String],
) -> Probe {
    let mut ok = true;
    let mut parts = vec![format!("PostgreSQL {version}")];
    if in_recovery {
        ok = false;
        parts.push(
            "pg_is_in_recovery() is true: this is a standby, not the primary (failover in progress?)"
                .to_string(),
        );
    } else {
        parts.push("primary (not in recovery)".to_string());
    }
    let mut names: Vec<&str> = expected.iter().map(String::as_str).collect();
    for replica in replicas {
        if !names.contains(&replica.name.as_str()) {
            names.push(&replica.name);
        }
    }
    for name in names {
        match replicas.iter().find(|r| r.name == name) {
            None => {
                ok = false;
                parts.push(format!("replica {name} not connected"));
            }
            Some(ReplicaState { state: None, .. }) => {
                parts.push(format!(
                    "replica {name} connected (state hidden: the user lacks pg_monitor)"
                ));
            }
            Some(replica) => {
                let state = replica.state.as_deref().unwrap_or("?");
                if state != "streaming" {
                    ok = false;
                }
                let mut text = format!("replica {name} {state}");
                if let Some(bytes) = replica.lag_bytes {
                    text.push_str(&format!(" lag {bytes} B"));
                }
                if let Some(seconds) = replica.replay_lag_s {
                    text.push_str(&format!(" ({seconds:.3}s)"));
                }
                parts.push(text);
            }
        }
    }
    if expected.is_empty() && replicas.is_empty() {
        parts.push("no replicas".to_string());
    }
    Probe::new(ok, parts.join("; "))
}

/// Check PostgreSQL at `addr`: log in, read version and recovery state, and `pg_stat_replication`.
pub async fn check_postgres(addr: SocketAddr, probe: &PostgresProbe) -> Result<Probe, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    let mut config = tokio_postgres::Config::new();
    config
        .user(&probe.user)
        .dbname(&probe.database)
        .application_name("kubectl-duli-db");
    if let Some(password) = &probe.password {
        config.password(password.expose());
    }
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .map_err(|err| postgres_error("log in", &err))?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "select current_setting('server_version'), pg_is_in_recovery()",
            &[],
        )
        .await
        .map_err(|err| postgres_error("query", &err))?;
    let version: String = row.get(0);
    let in_recovery: bool = row.get(1);
    let rows = client
        .query(
            "select coalesce(application_name, ''), state, \
             case when pg_is_in_recovery() then null else pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint end, \
             extract(epoch from replay_lag)::float8 \
             from pg_stat_replication order by application_name",
            &[],
        )
        .await
        .map_err(|err| postgres_error("read pg_stat_replication", &err))?;
    let replicas: Vec<ReplicaState> = rows
        .iter()
        .map(|row| ReplicaState {
            name: row.get(0),
            state: row.get(1),
            lag_bytes: row.get(2),
            replay_lag_s: row.get(3),
        })
        .collect();
    drop(client);
    driver.abort();
    Ok(judge_postgres(
        &version,
        in_recovery,
        &replicas,
        &probe.expected_replicas,
    ))
}

fn postgres_error(what: &str, err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("cannot {what}: {} ({})", db.message(), db.code().code()),
        None => format!("cannot {what}: {err}"),
    }
}

/// Parsed `INFO replication`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisReplicationInfo {
    /// `role` (`master` / `slave`).
    pub role: String,
    /// `connected_slaves`.
    pub connected_replicas: u32,
    /// `master_link_status` on a replica.
    pub master_link_status: Option<String>,
    /// `slaveN:` lines' `state` values.
    pub replica_states: Vec<String>,
}

/// Parse the text of `INFO replication`.
pub fn parse_info_replication(text: &str) -> RedisReplicationInfo {
    let mut info = RedisReplicationInfo::default();
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key {
            "role" => info.role = value.to_string(),
            "connected_slaves" => info.connected_replicas = value.parse().unwrap_or(0),
            "master_link_status" => info.master_link_status = Some(value.to_string()),
            key if key.starts_with("slave") && key[5..].chars().all(|c| c.is_ascii_digit()) => {
                let state = value
                    .split(',')
                    .find_map(|field| field.strip_prefix("state="))
                    .unwrap_or("?");
                info.replica_states.push(state.to_string());
            }
            _ => {}
        }
    }
    info
}

/// Judge a master's `INFO replication` against the number of replicas it should have.
pub fn judge_redis(pong: &str, info: &RedisReplicationInfo, expected_replicas: u32) -> Probe {
    let online = info
        .replica_states
        .iter()
        .filter(|state| *state == "online")
        .count();
    let mut ok = pong == "PONG";
    let mut text = format!("{pong}, role {}", info.role);
    if info.role != "master" {
        ok = false;
        text.push_str(" (expected master: the pod labelled master is not the master; failover in progress?)");
    }
    text.push_str(&format!(
        ", {}/{expected_replicas} replicas connected",
        info.connected_replicas
    ));
    if online < info.replica_states.len() {
        text.push_str(&format!(" ({online} online)"));
    }
    if info.connected_replicas < expected_replicas {
        ok = false;
    }
    Probe::new(ok, text)
}

async fn redis_connection(
    addr: SocketAddr,
    password: Option<&Password>,
) -> Result<redis::aio::MultiplexedConnection, String> {
    use redis::IntoConnectionInfo;
    let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(password) = password {
        settings = settings.set_password(password.expose());
    }
    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()
        .map_err(|err| err.to_string())?
        .set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(|err| err.to_string())?;
    // redis-rs gives up after 1 s connecting and 0.5 s per reply by default; through a port-forward the
    // first bytes wait for the API server's upgrade, so only the check's own --timeout bounds it.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(None)
        .set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|err| format!("cannot connect or log in: {err}"))
}

/// Check a Redis master at `addr`: `PING` and `INFO replication`.
pub async fn check_redis(
    addr: SocketAddr,
    password: Option<&Password>,
    expected_replicas: u32,
) -> Result<Probe, String> {
    let mut connection = redis_connection(addr, password).await?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(|err| format!("PING failed: {err}"))?;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut connection)
        .await
        .map_err(|err| format!("INFO replication failed: {err}"))?;
    Ok(judge_redis(
        &pong,
        &parse_info_replication(&info),
        expected_replicas,
    ))
}

/// Check a Sentinel at `addr`: which address it gives for `group`, whether that is `expected_master`
/// (the master pod's IP), and `SENTINEL CKQUORUM`.
pub async fn check_sentinel(
    addr: SocketAddr,
    password: Option<&Password>,
    group: &str,
    expected_master: Option<&str>,
) -> Result<Probe, String> {
    let mut connection = redis_connection(addr, password).await?;
    let master: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(group)
        .query_async(&mut connection)
        .await
        .map_err(|err| format!("SENTINEL get-master-addr-by-name failed: {err}"))?;
    let Some((host, port)) = master else {
        return Ok(Probe::new(
            false,
            format!("sentinel does not monitor master group `{group}`"),
        ));
    };
    let quorum: Result<String, _> = redis::cmd("SENTINEL")
        .arg("ckquorum")
        .arg(group)
        .query_async(&mut connection)
        .await;
    let mut ok = true;
    let mut text = format!("sentinel: master of `{group}` is {host}:{port}");
    if let Some(expected) = expected_master
        && expected != host
    {
        ok = false;
        text.push_str(&format!(" but the master pod's IP is {expected}"));
    }
    match quorum {
        Ok(reply) => text.push_str(&format!(", quorum {}", reply.trim_start_matches('+'))),
        Err(err) => {
            ok = false;
            text.push_str(&format!(", quorum not reachable: {err}"));
        }
    }
    Ok(Probe::new(ok, text))
}

/// Check RabbitMQ at `addr`: AMQP login as `user`, a channel, and the node alarms: an unroutable empty
/// message is published to the default exchange (dropped by the broker), and a broker under a memory or
/// disk alarm answers that with `connection.blocked` instead of serving the next request.
pub async fn check_rabbitmq(addr: SocketAddr, user: &str, password: &Password) -> Result<Probe, String> {
    use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::uri::{AMQPAuthority, AMQPScheme, AMQPUri, AMQPUserInfo};

    let uri = AMQPUri {
        scheme: AMQPScheme::AMQP,
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: user.to_string(),
                password: password.expose().to_string(),
            },
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        vhost: "/".to_string(),
        query: Default::default(),
    };
    let properties =
        lapin::ConnectionProperties::default().with_connection_name("kubectl-duli-db status".into());
    let connection = lapin::Connection::connect_uri(uri, properties)
        .await
        .map_err(|err| format!("AMQP login as {user} failed: {err}"))?;
    let mut events = connection.events_listener();
    let channel = connection
        .create_channel()
        .await
        .map_err(|err| format!("cannot open a channel: {err}"))?;
    let result = async {
        channel
            .basic_publish("".into(), "kubectl-duli-db.alarm-probe".into(), BasicPublishOptions::default(), b"", Default::default())
            .await
            .map_err(|err| format!("cannot publish the alarm probe: {err}"))?;
        let round_trip = channel.exchange_declare(
            "amq.direct".into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        );
        let blocked = async {
            while let Some(event) = events.next().await {
                if let lapin::Event::ConnectionBlocked(reason) = event {
                    return reason;
                }
            }
            std::future::pending().await
        };
        tokio::select! {
            done = round_trip => {
                done.map_err(|err| format!("AMQP request failed: {err}"))?;
                Ok(Probe::new(true, format!("AMQP login as {user}, channel open, no alarms")))
            }
            reason = blocked => Ok(Probe::new(false, format!("node alarm in effect: connection blocked ({reason})"))),
        }
    }
    .await;
    if !connection.status().blocked() {
        let close = async {
            let _ = channel.close(200, "OK".into()).await;
            let _ = connection.close(200, "OK".into()).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_judgement() {
        let streaming = ReplicaState {
            name: "database-2".into(),
            state: Some("streaming".into()),
            lag_bytes: Some(0),
            replay_lag_s: None,
        };
        let probe = judge_postgres(
            "16.4",
            false,
            std::slice::from_ref(&streaming),
            &["database-2".into()],
        );
        assert!(probe.ok, "{}", probe.detail);
        assert_eq!(
            probe.detail,
            "PostgreSQL 16.4; primary (not in recovery); replica database-2 streaming lag 0 B"
        );
        let probe = judge_postgres(
            "16.4",
            false,
            std::slice::from_ref(&streaming),
            &["database-2".into(), "database-3".into()],
        );
        assert!(!probe.ok);
        assert!(probe.detail.contains("replica database-3 not connected"));
        let catchup = ReplicaState {
            state: Some("catchup".into()),
            ..streaming.clone()
        };
        assert!(!judge_postgres("16.4", false, &[catchup], &["database-2".into()]).ok);
        assert!(!judge_postgres("16.4", true, &[], &[]).ok);
        let hidden = ReplicaState {
            state: None,
            lag_bytes: None,
            ..streaming
        };
        let probe = judge_postgres("16.4", false, &[hidden], &["database-2".into()]);
        assert!(
            probe.ok && probe.detail.contains("pg_monitor"),
            "{}",
            probe.detail
        );
    }

    #[test]
    fn redis_info_parsing_and_judgement() {
        let text = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=42,lag=0\r\nslave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0,lag=1\r\nmaster_replid:abc\r\n";
        let info = parse_info_replication(text);
        assert_eq!(info.role, "master");
        assert_eq!(info.connected_replicas, 2);
        assert_eq!(info.replica_states, ["online", "wait_bgsave"]);
        let probe = judge_redis("PONG", &info, 2);
        assert!(probe.ok);
        assert_eq!(
            probe.detail,
            "PONG, role master, 2/2 replicas connected (1 online)"
        );
        assert!(!judge_redis("PONG", &info, 3).ok);
        let replica = parse_info_replication("role:slave\nmaster_link_status:up\nconnected_slaves:0\n");
        assert!(!judge_redis("PONG", &replica, 0).ok);
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_with_a_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let probe = PostgresProbe {
            user: "x".into(),
            password: None,
            database: "x".into(),
            expected_replicas: vec![],
        };
        let status = run_check(Duration::from_millis(300), check_postgres(addr, &probe)).await;
        assert!(!status.ok);
        assert!(status.detail.contains("timeout"), "{}", status.detail);
        assert!(status.latency_ms >= 300);
        drop(listener);
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_quickly() {
        let addr = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let status = run_check(Duration::from_secs(5), check_redis(addr, None, 0)).await;
        assert!(!status.ok);
        assert!(status.latency_ms < 5000);
        assert!(status.detail.contains("refused"), "{}", status.detail);
    }

    // The machine's own services (started by .ci/services): PostgreSQL trust auth, Redis without a
    // password, RabbitMQ guest/guest. The stand-in's port-forward tests run the same checks through a pod.
    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test]
    async fn local_postgres_primary_answers() {
        let probe = PostgresProbe {
            user: "postgres".into(),
            password: None,
            database: "postgres".into(),
            expected_replicas: vec![],
        };
        let status = run_check(Duration::from_secs(10), check_postgres(local(5432), &probe)).await;
        assert!(status.ok, "{}", status.detail);
        assert!(status.detail.starts_with("PostgreSQL "), "{}", status.detail);
        assert!(
            status.detail.contains("primary (not in recovery)"),
            "{}",
            status.detail
        );
        let missing = PostgresProbe {
            expected_replicas: vec!["database-2".into()],
            ..probe
        };
        let status = run_check(Duration::from_secs(10), check_postgres(local(5432), &missing)).await;
        assert!(
            !status.ok && status.detail.contains("replica database-2 not connected"),
            "{}",
            status.detail
        );
    }

    #[tokio::test]
    async fn local_redis_master_answers() {
        let status = run_check(Duration::from_secs(10), check_redis(local(6379), None, 0)).await;
        assert!(status.ok, "{}", status.detail);
        assert!(
            status.detail.starts_with("PONG, role master"),
            "{}",
            status.detail
        );
    }

    #[tokio::test]
    async fn local_rabbitmq_login_and_alarms() {
        let status = run_check(
            Duration::from_secs(10),
            check_rabbitmq(local(5672), "guest", &Password::new("guest")),
        )
        .await;
        assert!(status.ok, "{}", status.detail);
        assert_eq!(status.detail, "AMQP login as guest, channel open, no alarms");
        let wrong = run_check(
            Duration::from_secs(10),
            check_rabbitmq(local(5672), "guest", &Password::new("nope")),
        )
        .await;
        assert!(!wrong.ok);
        assert!(
            wrong.detail.contains("AMQP login as guest failed"),
            "{}",
            wrong.detail
        );
        assert!(!wrong.detail.contains("nope"), "{}", wrong.detail);
    }
}

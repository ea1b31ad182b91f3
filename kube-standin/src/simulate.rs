//! Operator simulation (`--simulate-ready`): after a delay, objects get the status their real operator or
//! kubelet would write (workload controllers and Argo CD live in [`crate::controllers`]), with `observedGeneration` set, plus the side objects clients look up
//! (CloudNativePG's `<name>-app` Secret and `-rw/-ro/-r` Services, RabbitMQ's `<name>-default-user`,
//! Keycloak's `<name>-initial-admin`, redis-operator's StatefulSet, pods and Services, ...).
//!
//! Rules: an object is (re)simulated when it appears without a seeded status, when its generation moves,
//! or when its unready override changes. An override — the annotation `kube-standin/unready: "message"`
//! or [`crate::StandIn::set_unready`] — makes the object report not-ready with that message instead.
//! Objects seeded with a status keep it until their spec changes. Side objects are created only when
//! absent, owned by the object (deleting it cascades). Names, labels and fields follow the operators'
//! sources as summarized in `shared/reference/operators.md` (CloudNativePG, redis-operator incl.
//! `RedisSentinel` and embedded Sentinel, RabbitMQ cluster and topology operators, Keycloak).
//!
//! [`Bridge`]s (`--bridge`, [`crate::Builder::bridge`]) point the pods created here at real local servers
//! through [`crate::portforward::FORWARD_ANNOTATION`]; a RabbitMQ bridge's credentials fill
//! `<name>-default-user`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::store::{EventType, ObjKey, Store, WriteCtx};
use crate::util::{get_str, now_rfc3339, random_suffix};

/// The annotation that keeps an object unready, with its value as the message.
pub const UNREADY_ANNOTATION: &str = "kube-standin/unready";

/// The environment variable `--bridge rabbitmq=USER@HOST:PORT` reads the password from.
pub const RABBITMQ_PASSWORD_ENV: &str = "KUBE_STANDIN_RABBITMQ_PASSWORD";

/// The forms `--bridge` accepts, for error messages and help.
pub const BRIDGE_FORMS: &str = "postgres=[USER@]HOST:PORT[,STANDBY_HOST:PORT…], redis=HOST:PORT[,HOST:PORT…] (by pod ordinal), redis-sentinel=HOST:PORT, \
     rabbitmq=USER@HOST:PORT (password from $KUBE_STANDIN_RABBITMQ_PASSWORD), rabbitmq=USER:PASSWORD@HOST:PORT \
     (puts the password in argv) or rabbitmq-management=HOST:PORT";

/// One real local server the simulated operators' pods forward to (`kube-standin serve --bridge`,
/// [`crate::Builder::bridge`]). Pods the simulation creates carry the annotation
/// [`crate::portforward::FORWARD_ANNOTATION`] pointing at it, so a port-forward reaches the real server.
#[derive(Clone, PartialEq, Eq)]
pub enum Bridge {
    /// CloudNativePG `Cluster` pods: port 5432. The simulated operator also runs initdb against the server
    /// as `user` (a superuser, `postgres` unless `postgres=USER@HOST:PORT`; no password: the server must
    /// trust it): the owner role with the password of `NAME-app` (or `spec.bootstrap.initdb.secret`) and
    /// the database.
    Postgres {
        /// The superuser the simulation connects as.
        user: String,
        /// `HOST:PORT` of the server (the primary, `NAME-1`; initdb runs here).
        addr: String,
        /// Streaming standbys of that server for `NAME-2..N` by ordinal (`postgres=PRIMARY,STANDBY,…`):
        /// the primary's `pg_stat_replication` then lists them, as CloudNativePG's replicas. Empty: every
        /// pod is the primary's server.
        standbys: Vec<String>,
    },
    /// redis-operator data pods (`RedisReplication`, `RedisCluster`): port 6379, and their `status.podIP`
    /// is the bridged host (so a real Sentinel monitoring it names the master pod's IP). The password stays
    /// the one in the user's Secret (`spec.kubernetesConfig.redisSecret`), as with the real operator.
    /// Several addresses (`redis=A,B,C`) go to the pods by ordinal (pod `i` → address `i mod n`): a real
    /// master and its replicas, so the master reports its replicas connected.
    Redis(Vec<String>),
    /// redis-operator Sentinel pods (`RedisSentinel` `X-sentinel-*`, embedded `NAME-s-*`): port 26379.
    RedisSentinel(String),
    /// `RabbitmqCluster` server pods: port 5672; the `NAME-default-user` Secret carries these credentials
    /// instead of generated ones.
    Rabbitmq {
        /// The user the real server accepts.
        user: String,
        /// Its password.
        password: String,
        /// `HOST:PORT` of the AMQP listener.
        addr: String,
    },
    /// `RabbitmqCluster` server pods: port 15672 (the management HTTP API/UI).
    RabbitmqManagement(String),
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bridge::Postgres { user, addr, standbys } => {
                write!(f, "postgres={user}@{addr}")?;
                standbys.iter().try_for_each(|a| write!(f, ",{a}"))
            }
            Bridge::Redis(a) => write!(f, "redis={}", a.join(",")),
            Bridge::RedisSentinel(a) => write!(f, "redis-sentinel={a}"),
            Bridge::Rabbitmq { user, addr, .. } => write!(f, "rabbitmq={user}:<redacted>@{addr}"),
            Bridge::RabbitmqManagement(a) => write!(f, "rabbitmq-management={a}"),
        }
    }
}

/// Checks `HOST:PORT` (a non-empty host, a port 1..=65535).
fn host_port(service: &str, addr: &str) -> Result<String, String> {
    let ok = addr.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('@') && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if ok {
        Ok(addr.to_string())
    } else {
        Err(format!(
            "the address of {service} must be HOST:PORT with a port from 1 to 65535 (e.g. {service}=127.0.0.1:{})",
            match service {
                "postgres" => 5432,
                "redis" => 6379,
                "redis-sentinel" => 26379,
                "rabbitmq-management" => 15672,
                _ => 5672,
            }
        ))
    }
}

impl Bridge {
    /// Parses `SERVICE=ADDRESS` (see [`BRIDGE_FORMS`]), reading the RabbitMQ password from
    /// [`RABBITMQ_PASSWORD_ENV`] when the address has no `:PASSWORD`. Errors never repeat a password.
    pub fn parse(value: &str) -> Result<Bridge, String> {
        Self::parse_with(value, |k| std::env::var(k).ok())
    }

    /// [`Bridge::parse`] with the environment given as a lookup function.
    pub fn parse_with(value: &str, env: impl Fn(&str) -> Option<String>) -> Result<Bridge, String> {
        let Some((service, addr)) = value.split_once('=') else {
            return Err(format!("expected SERVICE=ADDRESS, one of: {BRIDGE_FORMS}"));
        };
        match service.trim() {
            "postgres" => {
                let (user, hostport) = match addr.trim().rsplit_once('@') {
                    Some((user, hostport)) => (user.trim(), hostport),
                    None => ("postgres", addr.trim()),
                };
                if user.is_empty() || user.contains(':') {
                    return Err(
                        "postgres takes postgres=HOST:PORT or postgres=USER@HOST:PORT (a superuser the server \
                         trusts; no password)"
                            .to_string(),
                    );
                }
                let mut addrs = hostport.split(',').map(|a| host_port("postgres", a.trim()));
                Ok(Bridge::Postgres {
                    user: user.to_string(),
                    addr: addrs.next().expect("split yields one item")?,
                    standbys: addrs.collect::<Result<_, _>>()?,
                })
            }
            "redis" => Ok(Bridge::Redis(
                addr.split(',')
                    .map(|a| host_port("redis", a.trim()))
                    .collect::<Result<_, _>>()?,
            )),
            "redis-sentinel" => Ok(Bridge::RedisSentinel(host_port("redis-sentinel", addr.trim())?)),
            "rabbitmq-management" => Ok(Bridge::RabbitmqManagement(host_port(
                "rabbitmq-management",
                addr.trim(),
            )?)),
            "rabbitmq" => {
                let form = "rabbitmq=USER@HOST:PORT (password from $KUBE_STANDIN_RABBITMQ_PASSWORD) or \
                            rabbitmq=USER:PASSWORD@HOST:PORT";
                let Some((creds, hostport)) = addr.rsplit_once('@') else {
                    return Err(format!("rabbitmq needs a user: {form}"));
                };
                let addr = host_port("rabbitmq", hostport.trim())?;
                let (user, password) = match creds.split_once(':') {
                    Some((user, password)) => (user.to_string(), password.to_string()),
                    None => {
                        let password = env(RABBITMQ_PASSWORD_ENV).filter(|p| !p.is_empty()).ok_or_else(
                            || {
                                format!(
                                    "rabbitmq={creds}@{addr} has no password: set {RABBITMQ_PASSWORD_ENV} \
                                     (or give rabbitmq=USER:PASSWORD@HOST:PORT, which puts it in argv)"
                                )
                            },
                        )?;
                        (creds.to_string(), password)
                    }
                };
                if user.is_empty() {
                    return Err(format!("rabbitmq needs a non-empty user: {form}"));
                }
                if password.is_empty() {
                    return Err(format!("rabbitmq needs a non-empty password: {form}"));
                }
                Ok(Bridge::Rabbitmq { user, password, addr })
            }
            other => Err(format!(
                "unknown service {other:?}: expected one of: {BRIDGE_FORMS}"
            )),
        }
    }
}

/// The bridges in effect (the last one given per service wins).
#[derive(Clone, Default)]
pub struct Bridges {
    /// `(superuser, HOST:PORT)`.
    postgres: Option<(String, String, Vec<String>)>,
    redis: Option<Vec<String>>,
    redis_sentinel: Option<String>,
    rabbitmq: Option<(String, String, String)>,
    rabbitmq_management: Option<String>,
}

impl std::fmt::Debug for Bridges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridges")
            .field("postgres", &self.postgres)
            .field("redis", &self.redis)
            .field("redis_sentinel", &self.redis_sentinel)
            .field(
                "rabbitmq",
                &self
                    .rabbitmq
                    .as_ref()
                    .map(|(u, _, a)| format!("{u}:<redacted>@{a}")),
            )
            .field("rabbitmq_management", &self.rabbitmq_management)
            .finish()
    }
}

impl Bridges {
    /// Whether no bridge is set.
    pub fn is_empty(&self) -> bool {
        self.postgres.is_none()
            && self.redis.is_none()
            && self.redis_sentinel.is_none()
            && self.rabbitmq.is_none()
            && self.rabbitmq_management.is_none()
    }

    /// Adds one bridge.
    pub fn add(&mut self, bridge: Bridge) {
        match bridge {
            Bridge::Postgres { user, addr, standbys } => self.postgres = Some((user, addr, standbys)),
            Bridge::Redis(a) => self.redis = Some(a),
            Bridge::RedisSentinel(a) => self.redis_sentinel = Some(a),
            Bridge::Rabbitmq { user, password, addr } => self.rabbitmq = Some((user, password, addr)),
            Bridge::RabbitmqManagement(a) => self.rabbitmq_management = Some(a),
        }
    }

    /// The forward annotation and `status.podIP` of the redis-operator data pod with `ordinal`, if bridged.
    fn redis_data(&self, ordinal: i64) -> Option<(String, String)> {
        let addrs = self.redis.as_ref().filter(|a| !a.is_empty())?;
        let a = &addrs[ordinal.rem_euclid(addrs.len() as i64) as usize];
        Some((format!("6379={a}"), host_ip(a)))
    }

    /// The forward annotation of a redis-operator Sentinel pod, if bridged.
    fn redis_sentinel_forward(&self) -> Option<String> {
        self.redis_sentinel.as_ref().map(|a| format!("26379={a}"))
    }

    /// The forward annotation value for a RabbitMQ server pod, if any bridge applies.
    fn rabbitmq_forward(&self) -> Option<String> {
        let parts: Vec<String> = [
            self.rabbitmq.as_ref().map(|(_, _, a)| format!("5672={a}")),
            self.rabbitmq_management.as_ref().map(|a| format!("15672={a}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

/// The IP a pod bridged to `HOST:PORT` reports as `status.podIP`: the host (the pod "is" that server),
/// resolved when it is a name.
fn host_ip(addr: &str) -> String {
    use std::net::ToSocketAddrs;
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    (host, port.parse::<u16>().unwrap_or(0))
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map_or_else(|| host.to_string(), |a| a.ip().to_string())
}

/// Whether a group/resource is simulated.
pub fn is_simulated(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        ("postgresql.cnpg.io", "clusters")
            | ("rabbitmq.com", _)
            | (
                "redis.redis.opstreelabs.in",
                "redisreplications" | "redisclusters" | "redissentinels"
            )
            | ("k8s.keycloak.org", "keycloaks" | "keycloakrealmimports")
            | ("cert-manager.io", "certificates" | "issuers" | "clusterissuers")
            | ("", "pods" | "persistentvolumeclaims")
    )
}

/// Sets or clears (`None`) the unready override of one object and re-evaluates it.
pub fn set_unready(
    store: &Store,
    resource: &str,
    namespace: &str,
    name: &str,
    message: Option<String>,
) -> Result<(), Error> {
    let mut st = store.lock();
    let rt = st
        .registry
        .lookup(resource)
        .ok_or_else(|| Error::UnknownResource(resource.into()))?;
    let key = ObjKey::new(&rt, namespace, name);
    match message {
        Some(m) => st.overrides.unready.insert(key.clone(), m),
        None => st.overrides.unready.remove(&key),
    };
    if let Some(tx) = &st.overrides.controller_pokes {
        let _ = tx.send(key.clone());
    }
    if let Some(tx) = &st.overrides.pokes {
        let _ = tx.send(key);
    }
    Ok(())
}

/// What an object's simulated status depends on.
#[derive(Debug, Clone, PartialEq)]
struct Signature {
    uid: String,
    generation: i64,
    unready: Option<String>,
}

fn signature(store: &Store, key: &ObjKey, obj: &Value) -> Signature {
    let st = store.lock();
    let unready = st
        .overrides
        .unready
        .get(key)
        .cloned()
        .or_else(|| get_str(obj, &["metadata", "annotations", UNREADY_ANNOTATION]).map(str::to_string));
    Signature {
        uid: get_str(obj, &["metadata", "uid"]).unwrap_or("").to_string(),
        generation: obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        unready,
    }
}

fn read(store: &Store, key: &ObjKey) -> Option<Value> {
    let st = store.lock();
    let rt = st
        .registry
        .types()
        .iter()
        .find(|t| t.group == key.group && t.plural == key.plural)?
        .clone();
    st.get(&rt, &key.namespace, &key.name).cloned()
}

/// Starts the simulation task; pods it creates forward to `bridges`.
pub fn spawn(store: Store, delay: Duration, bridges: Bridges) -> JoinHandle<()> {
    let bridges = Arc::new(bridges);
    let mut events = store.subscribe();
    let (poke_tx, mut pokes) = mpsc::unbounded_channel();
    let initial: Vec<(ObjKey, Value)> = {
        let mut st = store.lock();
        st.overrides.pokes = Some(poke_tx);
        st.all_objects()
    };
    tokio::spawn(async move {
        let mut handled: HashMap<ObjKey, Signature> = HashMap::new();
        let sim = Arc::new(store.clone());
        let consider =
            |key: ObjKey, obj: Option<Value>, fresh: bool, handled: &mut HashMap<ObjKey, Signature>| {
                if !is_simulated(&key.group, &key.plural) {
                    return;
                }
                let Some(obj) = obj.or_else(|| read(&store, &key)) else {
                    handled.remove(&key);
                    return;
                };
                let sig = signature(&store, &key, &obj);
                if handled.get(&key) == Some(&sig) {
                    return;
                }
                handled.insert(key.clone(), sig.clone());
                if fresh && store.lock().overrides.seeded_status.contains(&key) && sig.unready.is_none() {
                    return; // seeded with a status: keep it until the spec changes
                }
                let store = sim.clone();
                let bridges = bridges.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    reconcile(&store, &key, &sig, &bridges);
                });
            };
        for (key, obj) in initial {
            consider(key, Some(obj), true, &mut handled);
        }
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(e) => match e.kind {
                        EventType::Deleted => { handled.remove(&e.key); }
                        EventType::Added => consider(e.key.clone(), Some(e.object.clone()), true, &mut handled),
                        EventType::Modified => consider(e.key.clone(), Some(e.object.clone()), false, &mut handled),
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let all = store.lock().all_objects();
                        for (key, obj) in all {
                            consider(key, Some(obj), false, &mut handled);
                        }
                    }
                    Err(_) => return,
                },
                poke = pokes.recv() => match poke {
                    Some(key) => consider(key, None, false, &mut handled),
                    None => return,
                },
            }
        }
    })
}

/// Writes the simulated status (and side objects) if the object still has the signature it was
/// scheduled for.
fn reconcile(store: &Store, key: &ObjKey, sig: &Signature, bridges: &Bridges) {
    let Some(obj) = read(store, key) else { return };
    let now_sig = signature(store, key, &obj);
    if now_sig.uid != sig.uid || now_sig.generation != sig.generation || now_sig.unready != sig.unready {
        return; // a newer change has its own timer
    }
    let unready = sig.unready.as_deref();
    let mut status = desired_status(key, &obj, unready);
    if let Some(status) = status.as_mut() {
        imported_user_credentials(store, key, &obj, status);
    }
    if let Some(status) = status
        && !same_ignoring_times(obj.get("status"), &status)
    {
        let mut st = store.lock();
        let Some(rt) = st
            .registry
            .types()
            .iter()
            .find(|t| t.group == key.group && t.plural == key.plural)
            .cloned()
        else {
            return;
        };
        let mut body = obj.clone();
        body["status"] = status;
        let sub = if rt.has_status() { "status" } else { "" };
        let ctx = WriteCtx {
            manager: manager_for(key).into(),
            subresource: sub.into(),
            seed: sub.is_empty(),
            ..Default::default()
        };
        if let Err(e) = st.replace(&rt, &key.namespace, &key.name, body, &ctx) {
            tracing::warn!(
                "simulation could not write the status of {}/{}: {e}",
                key.plural,
                key.name
            );
        }
    }
    if unready.is_none() {
        for side in side_objects(key, &obj, bridges) {
            let kind = get_str(&side, &["kind"]).unwrap_or("").to_string();
            let api_version = get_str(&side, &["apiVersion"]).unwrap_or("").to_string();
            let name = get_str(&side, &["metadata", "name"]).unwrap_or("").to_string();
            let exists = {
                let st = store.lock();
                st.type_for(&api_version, &kind)
                    .is_some_and(|rt| st.get(&rt, &key.namespace, &name).is_some())
            };
            if !exists && let Err(e) = store.insert(side) {
                tracing::warn!("simulation could not create {kind}/{name}: {e}");
            }
        }
        // With a postgres bridge, CloudNativePG's initdb (and managed roles) on the real server, off the
        // store lock; the pods' readiness does not wait for it.
        if let Some((user, addr, _)) = &bridges.postgres
            && let Some(plan) = PostgresBootstrap::of(key, &obj)
        {
            let (store, user, addr) = (store.clone(), user.clone(), addr.clone());
            tokio::spawn(async move { plan.run(&store, &user, &addr).await });
        }
    }
}

/// A `spec.managed.roles` entry of a CloudNativePG `Cluster`.
#[derive(Debug, Clone)]
struct ManagedRole {
    name: String,
    present: bool,
    /// Attribute keywords (`LOGIN`/`NOLOGIN`, `SUPERUSER`/`NOSUPERUSER`, ...).
    attributes: Vec<&'static str>,
    password_secret: Option<String>,
    disable_password: bool,
    in_roles: Vec<String>,
}

/// What CloudNativePG creates in a new cluster's database (initdb: the owner role with the password of
/// its Secret and the database it owns; then `spec.managed.roles`), done on a bridged server.
#[derive(Debug, Clone)]
struct PostgresBootstrap {
    namespace: String,
    cluster: String,
    /// The owner's basic-auth Secret (`NAME-app` or `spec.bootstrap.initdb.secret`), `None` without initdb.
    secret: Option<String>,
    /// `spec.bootstrap.initdb.owner` (default `app`; the Secret's `username` wins).
    owner: String,
    /// `spec.bootstrap.initdb.database` (default `app`).
    database: String,
    roles: Vec<ManagedRole>,
}

/// Reads one key of a Secret in the store, decoded.
fn secret_value(store: &Store, ns: &str, name: &str, key: &str) -> Option<String> {
    let secret = store.get("secrets", ns, name)?;
    if let Some(v) = secret
        .pointer(&format!("/stringData/{key}"))
        .and_then(Value::as_str)
    {
        return Some(v.to_string());
    }
    let b = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether a PostgreSQL error says the object is already there (also the unique-index error two
/// concurrent creators can get).
fn duplicate(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        [
            SqlState::DUPLICATE_OBJECT,
            SqlState::DUPLICATE_DATABASE,
            SqlState::UNIQUE_VIOLATION,
        ]
        .contains(c)
    })
}

impl PostgresBootstrap {
    /// The plan for a Cluster: initdb unless it bootstraps from a backup or another cluster (then only
    /// the managed roles); `None` when there is nothing to do.
    fn of(key: &ObjKey, obj: &Value) -> Option<PostgresBootstrap> {
        if key.group != "postgresql.cnpg.io" || key.plural != "clusters" {
            return None;
        }
        let initdb = obj
            .pointer("/spec/bootstrap")
            .and_then(Value::as_object)
            .is_none_or(|b| {
                b.contains_key("initdb") || !(b.contains_key("recovery") || b.contains_key("pg_basebackup"))
            });
        let field = |f: &str| get_str(obj, &["spec", "bootstrap", "initdb", f]).filter(|v| !v.is_empty());
        let secret = initdb.then(|| {
            get_str(obj, &["spec", "bootstrap", "initdb", "secret", "name"])
                .map_or_else(|| format!("{}-app", key.name), str::to_string)
        });
        let roles: Vec<ManagedRole> = obj
            .pointer("/spec/managed/roles")
            .and_then(Value::as_array)
            .map(|roles| roles.iter().filter_map(ManagedRole::of).collect())
            .unwrap_or_default();
        if secret.is_none() && roles.is_empty() {
            return None;
        }
        Some(PostgresBootstrap {
            namespace: key.namespace.clone(),
            cluster: key.name.clone(),
            secret,
            owner: field("owner").unwrap_or("app").to_string(),
            database: field("database").unwrap_or("app").to_string(),
            roles,
        })
    }

    /// Runs the plan against `addr` as `user`, retrying a little (the owner's Secret may appear later,
    /// a concurrent stand-in may be altering the same role); failures are logged with the Cluster's
    /// name, never with a password.
    async fn run(&self, store: &Store, user: &str, addr: &str) {
        let mut last = String::new();
        for attempt in 0..60 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            match self.apply(store, user, addr).await {
                Ok(()) => {
                    tracing::info!(
                        "simulated CloudNativePG bootstrap of Cluster {}/{} done on the postgres bridge {addr}",
                        self.namespace,
                        self.cluster
                    );
                    return;
                }
                Err(e) => last = e,
            }
        }
        tracing::warn!(
            "simulated CloudNativePG bootstrap of Cluster {}/{} on the postgres bridge {addr} failed: {last}",
            self.namespace,
            self.cluster
        );
    }

    async fn apply(&self, store: &Store, user: &str, addr: &str) -> Result<(), String> {
        let ns = self.namespace.as_str();
        // Read the Secrets first: nothing is done on the server until they exist.
        let owner = match &self.secret {
            Some(secret) => {
                let password = secret_value(store, ns, secret, "password").ok_or_else(|| {
                    format!("Secret {ns}/{secret} (the owner's password) is missing or has no `password` key")
                })?;
                let owner = secret_value(store, ns, secret, "username").unwrap_or_else(|| self.owner.clone());
                Some((owner, password))
            }
            None => None,
        };
        let mut role_passwords = Vec::new();
        for role in &self.roles {
            let password = match (&role.password_secret, role.present && !role.disable_password) {
                (Some(secret), true) => Some(secret_value(store, ns, secret, "password").ok_or_else(|| {
                    format!(
                        "Secret {ns}/{secret} (password of managed role {}) is missing or has no `password` key",
                        role.name
                    )
                })?),
                _ => None,
            };
            role_passwords.push(password);
        }

        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
        let mut config = tokio_postgres::Config::new();
        config
            .host(host.trim_start_matches('[').trim_end_matches(']'))
            .port(port.parse().unwrap_or(5432))
            .user(user)
            .dbname("postgres")
            .application_name("kube-standin")
            .connect_timeout(Duration::from_secs(5));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect as {user}: {e}"))?;
        let driver = tokio::spawn(connection);
        let result = async {
            if let Some((owner, password)) = &owner {
                let login = ["LOGIN"];
                ensure_role(&client, owner, &login, Some(password)).await?;
                let exists = client
                    .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&self.database])
                    .await
                    .map_err(|e| format!("cannot look up database {}: {e}", self.database))?
                    .is_some();
                if !exists {
                    let sql =
                        format_sql(&client, "CREATE DATABASE %I OWNER %I", &[&self.database, owner]).await?;
                    match client.batch_execute(&sql).await {
                        Err(e) if !duplicate(&e) => {
                            return Err(format!("cannot create database {}: {e}", self.database));
                        }
                        _ => {}
                    }
                }
            }
            for (role, password) in self.roles.iter().zip(&role_passwords) {
                if !role.present {
                    let sql = format_sql(&client, "DROP ROLE IF EXISTS %I", &[&role.name]).await?;
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| format!("cannot drop managed role {}: {e}", role.name))?;
                    continue;
                }
                let mut attributes = role.attributes.clone();
                if role.disable_password {
                    attributes.push("PASSWORD NULL");
                }
                ensure_role(&client, &role.name, &attributes, password.as_ref()).await?;
                for parent in &role.in_roles {
                    let sql = format_sql(&client, "GRANT %I TO %I", &[parent, &role.name]).await?;
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| format!("cannot grant {parent} to managed role {}: {e}", role.name))?;
                }
            }
            Ok(())
        }
        .await;
        drop(client);
        driver.abort();
        result
    }
}

/// `format(template, args...)` on the server: identifiers (`%I`) and literals (`%L`) quoted by
/// PostgreSQL itself.
async fn format_sql(
    client: &tokio_postgres::Client,
    template: &str,
    args: &[&String],
) -> Result<String, String> {
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    client
        .query_one(
            "SELECT format($1::text, VARIADIC $2::text[])",
            &[&template, &args],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|e| format!("cannot build a statement: {e}"))
}

/// `CREATE ROLE name attributes [PASSWORD ...]`, or `ALTER ROLE` with the same when it exists.
async fn ensure_role(
    client: &tokio_postgres::Client,
    name: &String,
    attributes: &[&str],
    password: Option<&String>,
) -> Result<(), String> {
    let mut options = attributes.join(" ");
    let mut args = vec![name];
    if let Some(password) = password {
        options.push_str(" PASSWORD %L");
        args.push(password);
    }
    let create = format_sql(client, &format!("CREATE ROLE %I {options}"), &args).await?;
    match client.batch_execute(&create).await {
        Ok(()) => return Ok(()),
        Err(e) if !duplicate(&e) => return Err(format!("cannot create role {name}: {e}")),
        Err(_) => {}
    }
    if options.trim().is_empty() {
        return Ok(());
    }
    let alter = format_sql(client, &format!("ALTER ROLE %I {options}"), &args).await?;
    client
        .batch_execute(&alter)
        .await
        .map_err(|e| format!("cannot alter role {name}: {e}"))
}

impl ManagedRole {
    /// One `spec.managed.roles` entry (CloudNativePG `RoleConfiguration`; its defaults: `ensure: present`,
    /// `inherit: true`, every other flag false).
    fn of(role: &Value) -> Option<ManagedRole> {
        let name = role.get("name")?.as_str()?.to_string();
        let flag = |f: &str, default: bool| role.get(f).and_then(Value::as_bool).unwrap_or(default);
        let pick = |on: bool, yes: &'static str, no: &'static str| if on { yes } else { no };
        let attributes = vec![
            pick(flag("login", false), "LOGIN", "NOLOGIN"),
            pick(flag("superuser", false), "SUPERUSER", "NOSUPERUSER"),
            pick(flag("createdb", false), "CREATEDB", "NOCREATEDB"),
            pick(flag("createrole", false), "CREATEROLE", "NOCREATEROLE"),
            pick(flag("inherit", true), "INHERIT", "NOINHERIT"),
            pick(flag("replication", false), "REPLICATION", "NOREPLICATION"),
            pick(flag("bypassrls", false), "BYPASSRLS", "NOBYPASSRLS"),
        ];
        Some(ManagedRole {
            name,
            present: role.get("ensure").and_then(Value::as_str) != Some("absent"),
            attributes,
            password_secret: get_str(role, &["passwordSecret", "name"]).map(str::to_string),
            disable_password: flag("disablePassword", false),
            in_roles: role
                .get("inRoles")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }
}

/// A topology `User` with `spec.importCredentialsSecret`: the operator takes the user name from that
/// Secret's `username` key (`status.username` is required by the CRD); without the Secret it fails as the
/// operator does.
fn imported_user_credentials(store: &Store, key: &ObjKey, obj: &Value, status: &mut Value) {
    let (true, Some(secret)) = (
        key.group == "rabbitmq.com" && key.plural == "users",
        get_str(obj, &["spec", "importCredentialsSecret", "name"]),
    ) else {
        return;
    };
    let username = store
        .get("secrets", &key.namespace, secret)
        .and_then(|s| {
            s.pointer("/data/username")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match username {
        Some(user) => status["username"] = json!(user),
        None => {
            status["username"] = json!("");
            if let Some(conditions) = status["conditions"].as_array_mut() {
                for c in conditions.iter_mut() {
                    c["status"] = json!("False");
                    c["reason"] = json!("FailedCreateOrUpdate");
                    c["message"] = json!(format!("Secret \"{secret}\" not found"));
                }
            }
        }
    }
}

fn manager_for(key: &ObjKey) -> &'static str {
    match key.group.as_str() {
        "postgresql.cnpg.io" => "cloudnative-pg",
        "rabbitmq.com" => "rabbitmq-operator",
        "redis.redis.opstreelabs.in" => "redis-operator",
        "k8s.keycloak.org" => "keycloak-operator",
        "cert-manager.io" => "cert-manager",
        _ => "kube-controller-manager",
    }
}

/// Compares statuses with every `lastTransitionTime`-like timestamp blanked.
fn same_ignoring_times(current: Option<&Value>, desired: &Value) -> bool {
    fn blank(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let timeish = k.ends_with("Time")
                            || k.ends_with("At")
                            || k == "reconciledAt"
                            || k == "startedAt";
                        (k.clone(), if timeish { Value::Null } else { blank(v) })
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(blank).collect()),
            other => other.clone(),
        }
    }
    current.is_some_and(|c| blank(c) == blank(desired))
}

fn condition(ty: &str, ok: bool, reason: &str, message: &str, generation: i64, now: &str) -> Value {
    json!({
        "type": ty, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message,
        "lastTransitionTime": now, "observedGeneration": generation
    })
}

fn int_at(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

/// The image a CloudNativePG 1.27 cluster runs: `spec.imageName`, else the operator's default.
fn cnpg_image(obj: &Value) -> String {
    get_str(obj, &["spec", "imageName"])
        .unwrap_or("ghcr.io/cloudnative-pg/postgresql:17.6")
        .to_string()
}

/// A stable 64-bit FNV-1a hash of an object's uid (simulated ids must not change between reconciles,
/// or every reconcile would rewrite the status).
fn uid_hash(obj: &Value) -> u64 {
    get_str(obj, &["metadata", "uid"])
        .unwrap_or("")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// PostgreSQL's system identifier: a 19-digit number.
fn system_id(obj: &Value) -> String {
    (7_000_000_000_000_000_000 + uid_hash(obj) % 1_000_000_000_000_000_000).to_string()
}

/// The user name the topology operator generates for a `User` (stable per object); `None` with
/// `spec.importCredentialsSecret`, whose Secret the simulation does not read.
fn topology_username(obj: &Value) -> Option<String> {
    if obj.pointer("/spec/importCredentialsSecret").is_some() {
        return None;
    }
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = uid_hash(obj);
    (0..24)
        .map(|_| {
            let c = alphabet[(h % alphabet.len() as u64) as usize] as char;
            h = h.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
            c
        })
        .collect::<String>()
        .into()
}

/// `RedisReplication.spec.sentinel.size` (0 without an embedded Sentinel).
fn embedded_sentinel(obj: &Value) -> i64 {
    int_at(obj, "/spec/sentinel/size", 0).max(0)
}

/// The status the operator would write, or `None` for kinds without one.
fn desired_status(key: &ObjKey, obj: &Value, unready: Option<&str>) -> Option<Value> {
    let name = key.name.as_str();
    let generation = int_at(obj, "/metadata/generation", 1);
    let now = now_rfc3339();
    let ready = unready.is_none();
    let msg = unready.unwrap_or("");
    let status = match (key.group.as_str(), key.plural.as_str()) {
        ("postgresql.cnpg.io", "clusters") => {
            let n = int_at(obj, "/spec/instances", 1);
            let names: Vec<String> = (1..=n).map(|i| format!("{name}-{i}")).collect();
            if ready {
                let reported: serde_json::Map<String, Value> = names
                    .iter()
                    .map(|p| {
                        (
                            p.clone(),
                            json!({"isPrimary": *p == format!("{name}-1"), "timeLineID": 1}),
                        )
                    })
                    .collect();
                json!({
                    "phase": "Cluster in healthy state",
                    "instances": n, "readyInstances": n,
                    "currentPrimary": format!("{name}-1"), "targetPrimary": format!("{name}-1"),
                    "currentPrimaryTimestamp": now, "targetPrimaryTimestamp": now,
                    "instanceNames": names, "instancesStatus": {"healthy": names},
                    "instancesReportedState": reported,
                    "healthyPVC": names, "pvcCount": n,
                    "writeService": format!("{name}-rw"), "readService": format!("{name}-r"),
                    "latestGeneratedNode": n, "timelineID": 1,
                    "image": cnpg_image(obj), "systemID": system_id(obj),
                    "conditions": [
                        condition("Ready", true, "ClusterIsReady", "Cluster is Ready", generation, &now),
                        condition("ConsistentSystemID", true, "Unique",
                                  "A single, unique system ID was found across reporting instances.", generation, &now)
                    ]
                })
            } else {
                json!({
                    "phase": "Setting up primary", "phaseReason": msg,
                    "instances": n, "readyInstances": 0,
                    "targetPrimary": format!("{name}-1"),
                    "conditions": [condition("Ready", false, "ClusterIsNotReady", msg, generation, &now)]
                })
            }
        }
        ("rabbitmq.com", "rabbitmqclusters") => {
            let n = int_at(obj, "/spec/replicas", 1);
            let ns = key.namespace.as_str();
            let mut s = json!({
                "observedGeneration": generation,
                "conditions": [
                    condition("AllReplicasReady", ready, if ready { "AllPodsAreReady" } else { "NotAllPodsReady" },
                              if ready { "" } else { msg }, generation, &now),
                    condition("ClusterAvailable", ready, if ready { "AtLeastOneEndpointAvailable" } else { "NoEndpointsAvailable" },
                              if ready { "" } else { msg }, generation, &now),
                    condition("NoWarnings", true, "NoWarnings", "", generation, &now),
                    condition("ReconcileSuccess", true, "Success", "Finish reconciling", generation, &now)
                ]
            });
            if ready {
                s["defaultUser"] = json!({
                    "secretReference": {"name": format!("{name}-default-user"), "namespace": ns,
                                         "keys": {"username": "username", "password": "password"}},
                    "serviceReference": {"name": name, "namespace": ns}
                });
                s["binding"] = json!({"name": format!("{name}-default-user")});
                s["quorumStatus"] = json!("ok");
                let _ = n;
            }
            s
        }
        ("rabbitmq.com", plural) => {
            // The topology operator's conditions (api/v1beta1/conditions.go): no observedGeneration, a
            // message only when failing.
            let topo = |ty: &str, ok_reason: &str, failed_reason: &str| {
                let mut c = json!({"type": ty, "status": if ready { "True" } else { "False" },
                                   "reason": if ready { ok_reason } else { failed_reason }, "lastTransitionTime": now});
                if !ready {
                    c["message"] = json!(msg);
                }
                c
            };
            let mut s = json!({
                "observedGeneration": generation,
                "conditions": [topo("Ready", "SuccessfulCreateOrUpdate", "FailedCreateOrUpdate")]
            });
            if plural == "users" && ready {
                s["conditions"].as_array_mut().expect("an array").push(topo(
                    "PasswordSynced",
                    "SuccessfulPasswordSync",
                    "FailedPasswordSync",
                ));
                if let Some(user) = topology_username(obj) {
                    s["username"] = json!(user);
                    s["credentials"] = json!({"name": format!("{name}-user-credentials")});
                }
            }
            s
        }
        ("redis.redis.opstreelabs.in", "redisreplications") => {
            // GetConnectionInfo (api/redisreplication/v1beta2/redisreplication_types_helper.go).
            let ns = key.namespace.as_str();
            let connection = if embedded_sentinel(obj) > 0 {
                json!({"host": format!("{name}-s-hl.{ns}.svc.cluster.local"), "port": 26379, "masterName": "mymaster"})
            } else {
                json!({"host": format!("{name}-master.{ns}.svc.cluster.local"), "port": 6379})
            };
            if ready {
                json!({"masterNode": format!("{name}-0"), "connectionInfo": connection})
            } else {
                json!({})
            }
        }
        // RedisSentinel has an empty status struct.
        ("redis.redis.opstreelabs.in", "redissentinels") => return None,
        ("redis.redis.opstreelabs.in", "redisclusters") => {
            let leaders = redis_cluster_replicas(obj, "leader");
            let followers = redis_cluster_replicas(obj, "follower");
            if ready {
                json!({"state": "Ready", "reason": "RedisCluster is ready", "readyLeaderReplicas": leaders, "readyFollowerReplicas": followers})
            } else {
                json!({"state": "Initializing", "reason": msg, "readyLeaderReplicas": 0, "readyFollowerReplicas": 0})
            }
        }
        ("k8s.keycloak.org", "keycloaks") => {
            let n = int_at(obj, "/spec/instances", 1);
            json!({
                "observedGeneration": generation,
                "instances": if ready { n } else { 0 },
                "selector": format!("app=keycloak,app.kubernetes.io/managed-by=keycloak-operator,app.kubernetes.io/instance={name}"),
                "conditions": [
                    condition("Ready", ready, "", if ready { "" } else { msg }, generation, &now),
                    condition("HasErrors", false, "", "", generation, &now),
                    condition("RollingUpdate", false, "", "", generation, &now)
                ]
            })
        }
        ("k8s.keycloak.org", "keycloakrealmimports") => json!({
            "conditions": [
                condition("Done", ready, "", if ready { "" } else { msg }, generation, &now),
                condition("Started", !ready, "", "", generation, &now),
                condition("HasErrors", false, "", "", generation, &now)
            ]
        }),
        ("cert-manager.io", _) => json!({
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": if ready { "Ready" } else { "NotReady" }, "message": if ready { "ready" } else { msg },
                            "lastTransitionTime": now, "observedGeneration": generation}]
        }),
        ("", "pods") if ready && run_to_completion(obj) => {
            let pod_ip = pod_ip(obj);
            // A Job's pod: its containers run and exit 0.
            let containers = container_statuses(obj, |c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}
                })
            });
            let cond = |t: &str, ok: bool| {
                let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
                if t != "PodScheduled" {
                    c["reason"] = json!("PodCompleted");
                }
                c
            };
            json!({
                "phase": "Succeeded",
                "conditions": [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", false), cond("Ready", false)],
                "hostIP": "10.0.0.1", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                "startTime": now, "qosClass": "BestEffort",
                "containerStatuses": containers
            })
        }
        ("", "pods") => {
            let pod_ip = pod_ip(obj);
            let containers = container_statuses(obj, |c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": ready, "started": ready,
                    "restartCount": 0,
                    "state": if ready { json!({"running": {"startedAt": now}}) } else { json!({"waiting": {"reason": "ContainerCreating", "message": msg}}) }
                })
            });
            let cond = |t: &str, ok: bool| {
                let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now});
                if !ok {
                    c["reason"] = json!("ContainersNotReady");
                    c["message"] = json!(msg);
                }
                c
            };
            json!({
                "phase": if ready { "Running" } else { "Pending" },
                "conditions": [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", ready), cond("Ready", ready)],
                "hostIP": "10.0.0.1", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                "startTime": now, "qosClass": "BestEffort",
                "containerStatuses": containers
            })
        }
        ("", "persistentvolumeclaims") => {
            if ready {
                json!({
                    "phase": "Bound",
                    "accessModes": obj.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "capacity": {"storage": obj.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"))}
                })
            } else {
                json!({"phase": "Pending"})
            }
        }
        _ => return None,
    };
    Some(status)
}

/// A pod's IP: the one it has (a pod keeps its IP, and a bridged pod's is its server's), else the
/// simulation's default.
fn pod_ip(pod: &Value) -> String {
    get_str(pod, &["status", "podIP"])
        .unwrap_or("10.244.0.10")
        .to_string()
}

/// One status per container of the pod's spec, each built by `status`.
fn container_statuses(pod: &Value, status: impl Fn(&Value) -> Value) -> Vec<Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(status).collect())
        .unwrap_or_default()
}

/// Whether a pod runs to completion instead of serving: a Job's pod.
fn run_to_completion(pod: &Value) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["kind"] == "Job" && r["controller"] == json!(true))
        })
}

fn owner_ref(obj: &Value) -> Value {
    json!([{
        "apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
    }])
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(ns: &str, name: &str, owner: &Value, ty: &str, labels: Value, data: &[(&str, String)]) -> Value {
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": ty,
           "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner_ref(owner)},
           "data": data})
}

fn service(ns: &str, name: &str, owner: &Value, selector: Value, ports: Value, headless: bool) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": ns, "ownerReferences": owner_ref(owner)},
           "spec": {"type": "ClusterIP", "selector": selector, "ports": ports}});
    if headless {
        s["spec"]["clusterIP"] = json!("None");
    }
    s
}

fn ready_pod(ns: &str, name: &str, owner: &Value, labels: Value, container: &str, image: &str) -> Value {
    let now = now_rfc3339();
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner_ref(owner)},
        "spec": {"containers": [{"name": container, "image": image}]},
        "status": {"phase": "Running", "podIP": "10.244.0.10", "hostIP": "10.0.0.1", "startTime": now,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
            "containerStatuses": [{"name": container, "image": image, "imageID": "", "ready": true, "started": true,
                                   "restartCount": 0, "state": {"running": {"startedAt": now}}}]}})
}

/// Points a simulated pod's port-forwards at a bridge (`PORT=HOST:PORT[,...]`), if there is one.
fn forwarded(mut pod: Value, forward: Option<&str>) -> Value {
    if let Some(f) = forward {
        pod["metadata"]["annotations"] = json!({crate::portforward::FORWARD_ANNOTATION: f});
    }
    pod
}

/// A redis-operator data pod bridged to a server (`(annotation, IP)` from [`Bridges::redis_data`]): it
/// forwards there and reports the server's host as its `status.podIP`.
fn redis_bridged(pod: Value, bridge: Option<&(String, String)>) -> Value {
    let Some((forward, ip)) = bridge else {
        return pod;
    };
    let mut pod = forwarded(pod, Some(forward));
    pod["status"]["podIP"] = json!(ip);
    pod["status"]["podIPs"] = json!([{"ip": ip}]);
    pod
}

fn ready_statefulset(ns: &str, name: &str, owner: &Value, replicas: i64, labels: Value) -> Value {
    ready_statefulset_in(ns, name, &format!("{name}-headless"), owner, replicas, labels)
}

fn ready_statefulset_in(
    ns: &str,
    name: &str,
    service_name: &str,
    owner: &Value,
    replicas: i64,
    labels: Value,
) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns, "labels": labels.clone(), "ownerReferences": owner_ref(owner)},
        "spec": {"replicas": replicas, "serviceName": service_name, "selector": {"matchLabels": labels.clone()},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": "standin"}]}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                   "currentReplicas": replicas, "updatedReplicas": replicas,
                   "currentRevision": format!("{name}-standin"), "updateRevision": format!("{name}-standin")}})
}

fn password(n: usize) -> String {
    let mut p = random_suffix(n);
    p.make_ascii_uppercase();
    format!("{}{}", random_suffix(n / 2), &p[..n - n / 2])
}

/// redis-operator's labels (`internal/controller/common/labels.go`): `app`, `redis_setup_type`, `role`.
fn redis_labels(app: &str, setup: &str, role: &str) -> Value {
    json!({"app": app, "redis_setup_type": setup, "role": role})
}

fn with_label(labels: &Value, key: &str, value: &str) -> Value {
    let mut l = labels.clone();
    l[key] = json!(value);
    l
}

/// A CloudNativePG user Secret (`pkg/specs/secrets.go`): the same keys for `app` and `superuser`.
fn cnpg_secret(ns: &str, cluster: &str, owner: &Value, user_type: &str, user: &str, db: &str) -> Value {
    let pass = password(64);
    let host = format!("{cluster}-rw");
    let suffix = if user_type == "superuser" {
        "superuser"
    } else {
        "app"
    };
    secret(
        ns,
        &format!("{cluster}-{suffix}"),
        owner,
        "kubernetes.io/basic-auth",
        json!({"cnpg.io/cluster": cluster, "cnpg.io/userType": user_type, "cnpg.io/reload": "true"}),
        &[
            ("username", user.to_string()),
            ("user", user.to_string()),
            ("password", pass.clone()),
            ("dbname", db.to_string()),
            ("host", host.clone()),
            ("port", "5432".into()),
            ("pgpass", format!("{host}:5432:{db}:{user}:{pass}\n")),
            ("uri", format!("postgresql://{user}:{pass}@{host}.{ns}:5432/{db}")),
            (
                "jdbc-uri",
                format!("jdbc:postgresql://{host}.{ns}:5432/{db}?password={pass}&user={user}"),
            ),
            (
                "fqdn-uri",
                format!("postgresql://{user}:{pass}@{host}.{ns}.svc.cluster.local:5432/{db}"),
            ),
            (
                "fqdn-jdbc-uri",
                format!(
                    "jdbc:postgresql://{host}.{ns}.svc.cluster.local:5432/{db}?password={pass}&user={user}"
                ),
            ),
        ],
    )
}

fn cnpg_objects(ns: &str, name: &str, obj: &Value, bridges: &Bridges) -> Vec<Value> {
    let mut out = Vec::new();
    let n = int_at(obj, "/spec/instances", 1);
    let port = json!([{"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432}]);
    let disabled: Vec<&str> = obj
        .pointer("/spec/managed/services/disabledDefaultServices")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // pkg/specs/services.go: -rw always, -ro and -r unless disabled, -any internal.
    for (suffix, key, value) in [
        ("rw", "cnpg.io/instanceRole", "primary"),
        ("ro", "cnpg.io/instanceRole", "replica"),
        ("r", "cnpg.io/podRole", "instance"),
    ] {
        if suffix != "rw" && disabled.contains(&suffix) {
            continue;
        }
        let selector = json!({"cnpg.io/cluster": name, key: value});
        out.push(service(
            ns,
            &format!("{name}-{suffix}"),
            obj,
            selector,
            port.clone(),
            false,
        ));
    }
    let mut any = service(
        ns,
        &format!("{name}-any"),
        obj,
        json!({"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"}),
        port,
        false,
    );
    any["spec"]["publishNotReadyAddresses"] = json!(true);
    out.push(any);
    // The app Secret, unless the bootstrap names its own (initdb, recovery or pg_basebackup).
    let own_secret = ["initdb", "recovery", "pg_basebackup"]
        .iter()
        .any(|m| obj.pointer(&format!("/spec/bootstrap/{m}/secret/name")).is_some());
    if !own_secret {
        let method = ["initdb", "recovery", "pg_basebackup"]
            .into_iter()
            .find(|m| obj.pointer(&format!("/spec/bootstrap/{m}")).is_some())
            .unwrap_or("initdb");
        let user = get_str(obj, &["spec", "bootstrap", method, "owner"]).unwrap_or("app");
        let db = get_str(obj, &["spec", "bootstrap", method, "database"]).unwrap_or("app");
        out.push(cnpg_secret(ns, name, obj, "app", user, db));
    }
    // The superuser Secret only with enableSuperuserAccess (default false) and no superuserSecret.
    if obj.pointer("/spec/enableSuperuserAccess") == Some(&json!(true))
        && obj.pointer("/spec/superuserSecret/name").is_none()
    {
        out.push(cnpg_secret(ns, name, obj, "superuser", "postgres", "*"));
    }
    let image = cnpg_image(obj);
    for i in 1..=n {
        let forward = bridges.postgres.as_ref().map(|(_, primary, standbys)| {
            let addr = match usize::try_from(i - 2) {
                Ok(k) if !standbys.is_empty() => &standbys[k % standbys.len()],
                _ => primary,
            };
            format!("5432={addr}")
        });
        let pod = format!("{name}-{i}");
        let role = if i == 1 { "primary" } else { "replica" };
        let labels = json!({"cnpg.io/cluster": name, "cnpg.io/instanceName": pod, "cnpg.io/podRole": "instance",
                            "cnpg.io/instanceRole": role, "role": role});
        out.push(forwarded(
            ready_pod(ns, &pod, obj, labels, "postgres", &image),
            forward.as_deref(),
        ));
    }
    out
}

fn rabbitmq_objects(ns: &str, name: &str, obj: &Value, bridges: &Bridges) -> Vec<Value> {
    let n = int_at(obj, "/spec/replicas", 1);
    // Bridged: the real server's credentials, as if the operator had generated them.
    let (user, pass) = match &bridges.rabbitmq {
        Some((user, pass, _)) => (user.clone(), pass.clone()),
        None => (format!("default_user_{}", random_suffix(20)), password(32)),
    };
    let host = format!("{name}.{ns}.svc");
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/component": "rabbitmq", "app.kubernetes.io/part-of": "rabbitmq"});
    let mut client = service(
        ns,
        name,
        obj,
        json!({"app.kubernetes.io/name": name}),
        json!([{"name": "amqp", "port": 5672, "targetPort": 5672}, {"name": "management", "port": 15672, "targetPort": 15672},
               {"name": "prometheus", "port": 15692, "targetPort": 15692}]),
        false,
    );
    if let Some(ty) = get_str(obj, &["spec", "service", "type"]) {
        client["spec"]["type"] = json!(ty);
    }
    let mut out = vec![
        secret(
            ns,
            &format!("{name}-default-user"),
            obj,
            "Opaque",
            labels.clone(),
            &[
                ("username", user.clone()),
                ("password", pass.clone()),
                (
                    "default_user.conf",
                    format!("default_user = {user}\ndefault_pass = {pass}\n"),
                ),
                ("provider", "rabbitmq".into()),
                ("type", "rabbitmq".into()),
                ("host", host.clone()),
                ("port", "5672".into()),
                ("connection_string", format!("amqp://{user}:{pass}@{host}:5672/")),
            ],
        ),
        client,
        service(
            ns,
            &format!("{name}-nodes"),
            obj,
            json!({"app.kubernetes.io/name": name}),
            json!([{"name": "epmd", "port": 4369}, {"name": "cluster-rpc", "port": 25672}]),
            true,
        ),
        ready_statefulset_in(
            ns,
            &format!("{name}-server"),
            &format!("{name}-nodes"),
            obj,
            n,
            labels.clone(),
        ),
    ];
    let forward = bridges.rabbitmq_forward();
    for i in 0..n {
        out.push(forwarded(
            ready_pod(
                ns,
                &format!("{name}-server-{i}"),
                obj,
                labels.clone(),
                "rabbitmq",
                "rabbitmq:4",
            ),
            forward.as_deref(),
        ));
    }
    out
}

/// A redis-operator set: StatefulSet `app`, its ready pods and the Services `app`, `app-headless` and,
/// when `additional`, `app-additional` (all selecting `labels`).
fn redis_set(
    ns: &str,
    app: &str,
    obj: &Value,
    replicas: i64,
    labels: &Value,
    port: (&str, u16),
    additional: bool,
) -> Vec<Value> {
    let ports = json!([{"name": port.0, "port": port.1, "protocol": "TCP", "targetPort": port.1}]);
    let mut out = vec![
        ready_statefulset(ns, app, obj, replicas, labels.clone()),
        service(ns, app, obj, labels.clone(), ports.clone(), false),
        service(
            ns,
            &format!("{app}-headless"),
            obj,
            labels.clone(),
            ports.clone(),
            true,
        ),
    ];
    if additional {
        out.push(service(
            ns,
            &format!("{app}-additional"),
            obj,
            labels.clone(),
            ports,
            false,
        ));
    }
    out
}

/// Whether `kubernetesConfig.service.additional.enabled` is on (the CRD default: on).
fn redis_additional(obj: &Value) -> bool {
    obj.pointer("/spec/kubernetesConfig/service/additional/enabled") != Some(&json!(false))
}

fn redis_replication_objects(ns: &str, name: &str, obj: &Value, bridges: &Bridges) -> Vec<Value> {
    let n = int_at(obj, "/spec/clusterSize", 1);
    let labels = redis_labels(name, "replication", "replication");
    let port = json!([{"name": "redis-client", "port": 6379, "protocol": "TCP", "targetPort": 6379}]);
    let mut out = redis_set(
        ns,
        name,
        obj,
        n,
        &labels,
        ("redis-client", 6379),
        redis_additional(obj),
    );
    out.push(service(
        ns,
        &format!("{name}-master"),
        obj,
        with_label(&labels, "redis-role", "master"),
        port.clone(),
        false,
    ));
    out.push(service(
        ns,
        &format!("{name}-replica"),
        obj,
        with_label(&labels, "redis-role", "slave"),
        port,
        false,
    ));
    for i in 0..n {
        let role = if i == 0 { "master" } else { "slave" };
        let bridge = bridges.redis_data(i);
        out.push(redis_bridged(
            ready_pod(
                ns,
                &format!("{name}-{i}"),
                obj,
                with_label(&labels, "redis-role", role),
                name,
                "quay.io/opstree/redis:v7.0.15",
            ),
            bridge.as_ref(),
        ));
    }
    // Embedded Sentinel (redisreplication_sentinel.go): StatefulSet NAME-s, headless Service NAME-s-hl.
    let sentinels = embedded_sentinel(obj);
    if sentinels > 0 {
        let app = format!("{name}-s");
        let labels = redis_labels(&app, "sentinel", "sentinel");
        out.push(ready_statefulset_in(
            ns,
            &app,
            &format!("{name}-s-hl"),
            obj,
            sentinels,
            labels.clone(),
        ));
        out.push(service(
            ns,
            &format!("{name}-s-hl"),
            obj,
            labels.clone(),
            json!([{"name": "sentinel", "port": 26379, "protocol": "TCP", "targetPort": 26379}]),
            true,
        ));
        let image =
            get_str(obj, &["spec", "sentinel", "image"]).unwrap_or("quay.io/opstree/redis-sentinel:v7.0.15");
        let forward = bridges.redis_sentinel_forward();
        for i in 0..sentinels {
            out.push(forwarded(
                ready_pod(ns, &format!("{app}-{i}"), obj, labels.clone(), "sentinel", image),
                forward.as_deref(),
            ));
        }
    }
    out
}

/// A standalone `RedisSentinel` X (`internal/k8sutils/redis-sentinel.go`): StatefulSet `X-sentinel`,
/// Services `X-sentinel`, `X-sentinel-headless`, `X-sentinel-additional` (and `X-sentinel-metrics` with
/// the exporter), port 26379 `sentinel-client`.
fn redis_sentinel_objects(ns: &str, name: &str, obj: &Value, bridges: &Bridges) -> Vec<Value> {
    let n = int_at(obj, "/spec/clusterSize", 3);
    let app = format!("{name}-sentinel");
    let labels = redis_labels(&app, "sentinel", "sentinel");
    let mut out = redis_set(ns, &app, obj, n, &labels, ("sentinel-client", 26379), true);
    if obj.pointer("/spec/redisExporter/enabled") == Some(&json!(true)) {
        out.push(service(
            ns,
            &format!("{app}-metrics"),
            obj,
            labels.clone(),
            json!([{"name": "redis-exporter", "port": 9121, "protocol": "TCP", "targetPort": 9121}]),
            false,
        ));
    }
    let image = get_str(obj, &["spec", "kubernetesConfig", "image"])
        .unwrap_or("quay.io/opstree/redis-sentinel:v7.0.15");
    let forward = bridges.redis_sentinel_forward();
    for i in 0..n {
        out.push(forwarded(
            ready_pod(ns, &format!("{app}-{i}"), obj, labels.clone(), &app, image),
            forward.as_deref(),
        ));
    }
    out
}

/// A `RedisCluster` X (`internal/k8sutils/redis-cluster.go`): StatefulSets `X-leader` and `X-follower`
/// with their Services, labels `redis_setup_type=cluster`, `role=leader|follower`.
fn redis_cluster_objects(ns: &str, name: &str, obj: &Value, bridges: &Bridges) -> Vec<Value> {
    let image =
        get_str(obj, &["spec", "kubernetesConfig", "image"]).unwrap_or("quay.io/opstree/redis:v7.0.15");
    let mut out = Vec::new();
    for role in ["leader", "follower"] {
        let replicas = redis_cluster_replicas(obj, role);
        let app = format!("{name}-{role}");
        let labels = redis_labels(&app, "cluster", role);
        out.extend(redis_set(
            ns,
            &app,
            obj,
            replicas,
            &labels,
            ("redis-client", 6379),
            redis_additional(obj),
        ));
        for i in 0..replicas {
            out.push(redis_bridged(
                ready_pod(ns, &format!("{app}-{i}"), obj, labels.clone(), &app, image),
                bridges.redis_data(i).as_ref(),
            ));
        }
    }
    out
}

/// `spec.redisLeader.replicas` / `spec.redisFollower.replicas`, else `spec.clusterSize` (GetReplicaCounts).
fn redis_cluster_replicas(obj: &Value, role: &str) -> i64 {
    let size = int_at(obj, "/spec/clusterSize", 3);
    let field = if role == "leader" {
        "redisLeader"
    } else {
        "redisFollower"
    };
    int_at(obj, &format!("/spec/{field}/replicas"), size)
}

fn keycloak_objects(ns: &str, name: &str, obj: &Value) -> Vec<Value> {
    let labels = json!({"app": "keycloak", "app.kubernetes.io/managed-by": "keycloak-operator", "app.kubernetes.io/instance": name});
    let n = int_at(obj, "/spec/instances", 1);
    // KeycloakServiceDependentResource: http 8080 unless disabled with TLS, https 8443 with TLS,
    // management 9000.
    let tls = obj.pointer("/spec/http/tlsSecret").is_some();
    let http = !tls || obj.pointer("/spec/http/httpEnabled") == Some(&json!(true));
    let mut ports = Vec::new();
    if http {
        ports.push(json!({"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080}));
    }
    if tls {
        ports.push(json!({"name": "https", "port": 8443, "protocol": "TCP", "targetPort": 8443}));
    }
    ports.push(json!({"name": "management", "port": 9000, "protocol": "TCP", "targetPort": 9000}));
    let mut out = vec![
        service(
            ns,
            &format!("{name}-service"),
            obj,
            labels.clone(),
            json!(ports),
            false,
        ),
        service(
            ns,
            &format!("{name}-discovery"),
            obj,
            labels.clone(),
            json!([{"name": "tcp", "port": 7800, "protocol": "TCP", "targetPort": 7800}]),
            true,
        ),
        ready_statefulset_in(ns, name, &format!("{name}-discovery"), obj, n, labels.clone()),
    ];
    for i in 0..n {
        out.push(ready_pod(
            ns,
            &format!("{name}-{i}"),
            obj,
            labels.clone(),
            "keycloak",
            "quay.io/keycloak/keycloak:26.0.0",
        ));
    }
    if obj.pointer("/spec/bootstrapAdmin/user/secret").is_none() {
        let pass: String = (0..32)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        out.push(secret(
            ns,
            &format!("{name}-initial-admin"),
            obj,
            "kubernetes.io/basic-auth",
            labels,
            &[("username", "temp-admin".into()), ("password", pass)],
        ));
    }
    out
}

/// Objects the operator creates next to a ready object (created only when absent); pods forward to
/// `bridges`.
fn side_objects(key: &ObjKey, obj: &Value, bridges: &Bridges) -> Vec<Value> {
    let ns = key.namespace.as_str();
    let name = key.name.as_str();
    match (key.group.as_str(), key.plural.as_str()) {
        ("postgresql.cnpg.io", "clusters") => cnpg_objects(ns, name, obj, bridges),
        ("rabbitmq.com", "rabbitmqclusters") => rabbitmq_objects(ns, name, obj, bridges),
        ("rabbitmq.com", "users") => match topology_username(obj) {
            // user_controller.go: the generated credentials in NAME-user-credentials.
            Some(user) => vec![secret(
                ns,
                &format!("{name}-user-credentials"),
                obj,
                "Opaque",
                json!({}),
                &[("username", user), ("password", password(32))],
            )],
            None => Vec::new(),
        },
        ("redis.redis.opstreelabs.in", "redisreplications") => {
            redis_replication_objects(ns, name, obj, bridges)
        }
        ("redis.redis.opstreelabs.in", "redissentinels") => redis_sentinel_objects(ns, name, obj, bridges),
        ("redis.redis.opstreelabs.in", "redisclusters") => redis_cluster_objects(ns, name, obj, bridges),
        ("k8s.keycloak.org", "keycloaks") => keycloak_objects(ns, name, obj),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: &str, plural: &str) -> ObjKey {
        ObjKey {
            group: group.into(),
            plural: plural.into(),
            namespace: "staging".into(),
            name: "database".into(),
        }
    }

    #[test]
    fn cnpg_ready_and_unready() {
        let obj = json!({"metadata": {"name": "database", "generation": 3}, "spec": {"instances": 2}});
        let s = desired_status(&key("postgresql.cnpg.io", "clusters"), &obj, None).unwrap();
        assert_eq!(s["phase"], "Cluster in healthy state");
        assert_eq!(s["readyInstances"], 2);
        assert_eq!(s["currentPrimary"], "database-1");
        assert_eq!(s["conditions"][0]["observedGeneration"], 3);
        let u = desired_status(&key("postgresql.cnpg.io", "clusters"), &obj, Some("disk full")).unwrap();
        assert_eq!(u["conditions"][0]["status"], "False");
        assert_eq!(u["conditions"][0]["message"], "disk full");
        let sides = side_objects(&key("postgresql.cnpg.io", "clusters"), &obj, &Bridges::default());
        assert_eq!(
            names(&sides),
            [
                "database-rw",
                "database-ro",
                "database-r",
                "database-any",
                "database-app",
                "database-1",
                "database-2"
            ]
        );
        assert!(
            sides.iter().all(|o| o.pointer("/metadata/annotations").is_none()),
            "no bridge, no forward annotation"
        );
    }

    fn names(objs: &[Value]) -> Vec<String> {
        objs.iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objs.iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", names(objs)))
    }

    fn decoded(secret: &Value, key: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap();
        String::from_utf8(b).unwrap()
    }

    fn bridges(list: &[&str]) -> Bridges {
        let mut b = Bridges::default();
        for v in list {
            b.add(Bridge::parse_with(v, |_| Some("from-env".into())).unwrap());
        }
        b
    }

    #[test]
    fn cnpg_superuser_secret_status_fields_and_bridge() {
        let k = key("postgresql.cnpg.io", "clusters");
        let obj = json!({"metadata": {"name": "database", "uid": "u-1"},
                         "spec": {"instances": 2, "enableSuperuserAccess": true,
                                  "managed": {"services": {"disabledDefaultServices": ["ro"]}}}});
        let sides = side_objects(&k, &obj, &bridges(&["postgres=127.0.0.1:5432"]));
        assert!(!names(&sides).contains(&"database-ro".to_string()));
        let su = find(&sides, "Secret", "database-superuser");
        assert_eq!(su["type"], "kubernetes.io/basic-auth");
        assert_eq!(su["metadata"]["labels"]["cnpg.io/userType"], "superuser");
        assert_eq!(decoded(su, "username"), "postgres");
        assert_eq!(decoded(su, "dbname"), "*");
        let pass = decoded(su, "password");
        assert_eq!(pass.len(), 64);
        assert_eq!(
            decoded(su, "pgpass"),
            format!("database-rw:5432:*:postgres:{pass}\n")
        );
        for pod in ["database-1", "database-2"] {
            assert_eq!(
                find(&sides, "Pod", pod)["metadata"]["annotations"]["kube-standin/forward"],
                "5432=127.0.0.1:5432"
            );
        }
        // With standbys, the replicas are the standbys by ordinal.
        let three = json!({"metadata": {"name": "database", "uid": "u-1"}, "spec": {"instances": 3}});
        let sides = side_objects(&k, &three, &bridges(&["postgres=127.0.0.1:5432,127.0.0.1:5433"]));
        let forward =
            |pod: &str| find(&sides, "Pod", pod)["metadata"]["annotations"]["kube-standin/forward"].clone();
        assert_eq!(
            [
                forward("database-1"),
                forward("database-2"),
                forward("database-3")
            ],
            [
                json!("5432=127.0.0.1:5432"),
                json!("5432=127.0.0.1:5433"),
                json!("5432=127.0.0.1:5433")
            ]
        );
        // Disabled (the default) or with a user-given superuserSecret: none.
        let off = json!({"metadata": {"name": "database"}, "spec": {"instances": 1}});
        assert!(!names(&side_objects(&k, &off, &Bridges::default())).contains(&"database-superuser".into()));
        let given = json!({"metadata": {"name": "database"},
                           "spec": {"enableSuperuserAccess": true, "superuserSecret": {"name": "mine"}}});
        assert!(
            !names(&side_objects(&k, &given, &Bridges::default())).contains(&"database-superuser".into())
        );
        // A bootstrap Secret of the user's: no database-app.
        let own = json!({"metadata": {"name": "database"},
                         "spec": {"bootstrap": {"initdb": {"secret": {"name": "mine"}}}}});
        assert!(!names(&side_objects(&k, &own, &Bridges::default())).contains(&"database-app".into()));

        let s = desired_status(&k, &obj, None).unwrap();
        assert_eq!(s["image"], "ghcr.io/cloudnative-pg/postgresql:17.6");
        assert_eq!(s["systemID"].as_str().unwrap().len(), 19);
        assert_eq!(
            s["systemID"],
            desired_status(&k, &obj, None).unwrap()["systemID"],
            "stable"
        );
        assert_eq!(s["instancesReportedState"]["database-1"]["isPrimary"], true);
        assert_eq!(s["instancesReportedState"]["database-2"]["isPrimary"], false);
        assert_eq!(s["conditions"][1]["type"], "ConsistentSystemID");
    }

    #[test]
    fn redis_sentinel_names_and_labels() {
        let k = ObjKey {
            name: "cache".into(),
            ..key("redis.redis.opstreelabs.in", "redissentinels")
        };
        assert!(is_simulated("redis.redis.opstreelabs.in", "redissentinels"));
        let obj = json!({"metadata": {"name": "cache"},
                         "spec": {"clusterSize": 3, "redisSentinelConfig": {"redisReplicationName": "redis"}}});
        assert_eq!(
            desired_status(&k, &obj, None),
            None,
            "RedisSentinel has an empty status"
        );
        let sides = side_objects(&k, &obj, &bridges(&["redis=127.0.0.1:6379"]));
        assert_eq!(
            names(&sides),
            [
                "cache-sentinel",
                "cache-sentinel",
                "cache-sentinel-headless",
                "cache-sentinel-additional",
                "cache-sentinel-0",
                "cache-sentinel-1",
                "cache-sentinel-2"
            ]
        );
        let labels = json!({"app": "cache-sentinel", "redis_setup_type": "sentinel", "role": "sentinel"});
        assert_eq!(
            find(&sides, "StatefulSet", "cache-sentinel")["spec"]["replicas"],
            3
        );
        for o in &sides {
            let l = if o["kind"] == "Service" {
                &o["spec"]["selector"]
            } else {
                &o["metadata"]["labels"]
            };
            assert_eq!(l, &labels, "{}", o["metadata"]["name"]);
        }
        let svc = find(&sides, "Service", "cache-sentinel");
        assert_eq!(svc["spec"]["ports"][0]["name"], "sentinel-client");
        assert_eq!(svc["spec"]["ports"][0]["port"], 26379);
        assert_eq!(
            find(&sides, "Service", "cache-sentinel-headless")["spec"]["clusterIP"],
            "None"
        );
        // Sentinel pods are not data pods: no redis bridge.
        assert!(
            find(&sides, "Pod", "cache-sentinel-0")
                .pointer("/metadata/annotations")
                .is_none()
        );
        let sides = side_objects(&k, &obj, &bridges(&["redis-sentinel=127.0.0.1:26379"]));
        assert_eq!(
            find(&sides, "Pod", "cache-sentinel-1")["metadata"]["annotations"]["kube-standin/forward"],
            "26379=127.0.0.1:26379"
        );
    }

    #[test]
    fn redis_replication_with_embedded_sentinel_and_bridge() {
        let k = ObjKey {
            name: "redis".into(),
            ..key("redis.redis.opstreelabs.in", "redisreplications")
        };
        let plain = json!({"metadata": {"name": "redis"}, "spec": {"clusterSize": 2}});
        let s = desired_status(&k, &plain, None).unwrap();
        assert_eq!(s["masterNode"], "redis-0");
        assert_eq!(
            s["connectionInfo"],
            json!({"host": "redis-master.staging.svc.cluster.local", "port": 6379})
        );
        assert_eq!(desired_status(&k, &plain, Some("down")).unwrap(), json!({}));
        let sides = side_objects(&k, &plain, &bridges(&["redis=127.0.0.1:6379"]));
        let master = find(&sides, "Pod", "redis-0");
        assert_eq!(master["metadata"]["labels"]["redis-role"], "master");
        assert_eq!(master["metadata"]["labels"]["redis_setup_type"], "replication");
        assert_eq!(
            master["metadata"]["annotations"]["kube-standin/forward"],
            "6379=127.0.0.1:6379"
        );
        // A bridged pod is its server: its IP is the bridged host, and re-simulating keeps it.
        assert_eq!(master["status"]["podIP"], "127.0.0.1");
        assert_eq!(master["status"]["podIPs"], json!([{"ip": "127.0.0.1"}]));
        let pod_key = ObjKey {
            name: "redis-0".into(),
            ..key("", "pods")
        };
        assert_eq!(
            desired_status(&pod_key, master, None).unwrap()["podIP"],
            "127.0.0.1"
        );
        assert_eq!(
            desired_status(&pod_key, &json!({"metadata": {"name": "p"}}), None).unwrap()["podIP"],
            "10.244.0.10"
        );
        assert_eq!(
            find(&sides, "Pod", "redis-1")["metadata"]["labels"]["redis-role"],
            "slave"
        );
        assert_eq!(
            find(&sides, "Service", "redis-master")["spec"]["selector"]["redis-role"],
            "master"
        );
        assert!(!names(&sides).iter().any(|n| n.starts_with("redis-s")));

        let with = json!({"metadata": {"name": "redis"},
                          "spec": {"clusterSize": 2, "sentinel": {"size": 3, "image": "sentinel:1"}}});
        let s = desired_status(&k, &with, None).unwrap();
        assert_eq!(
            s["connectionInfo"],
            json!({"host": "redis-s-hl.staging.svc.cluster.local", "port": 26379, "masterName": "mymaster"})
        );
        let unbridged = side_objects(&k, &with, &Bridges::default());
        assert_eq!(
            find(&unbridged, "Pod", "redis-0")["status"]["podIP"],
            "10.244.0.10"
        );
        assert!(
            find(&unbridged, "Pod", "redis-s-0")
                .pointer("/metadata/annotations")
                .is_none()
        );
        let sides = side_objects(
            &k,
            &with,
            &bridges(&["redis=localhost:6380", "redis-sentinel=127.0.0.1:26380"]),
        );
        let ip = find(&sides, "Pod", "redis-0")["status"]["podIP"].clone();
        assert!(ip == "127.0.0.1" || ip == "::1", "localhost resolved: {ip}");
        for pod in ["redis-s-0", "redis-s-2"] {
            let p = find(&sides, "Pod", pod);
            assert_eq!(
                p["metadata"]["annotations"]["kube-standin/forward"],
                "26379=127.0.0.1:26380"
            );
            assert_eq!(p["status"]["podIP"], "10.244.0.10", "not a data pod");
        }
        let sts = find(&sides, "StatefulSet", "redis-s");
        assert_eq!(sts["spec"]["replicas"], 3);
        assert_eq!(sts["spec"]["serviceName"], "redis-s-hl");
        assert_eq!(
            sts["metadata"]["labels"],
            json!({"app": "redis-s", "redis_setup_type": "sentinel", "role": "sentinel"})
        );
        let hl = find(&sides, "Service", "redis-s-hl");
        assert_eq!(hl["spec"]["clusterIP"], "None");
        assert_eq!(
            hl["spec"]["ports"][0],
            json!({"name": "sentinel", "port": 26379, "protocol": "TCP", "targetPort": 26379})
        );
        assert_eq!(
            find(&sides, "Pod", "redis-s-2")["spec"]["containers"][0]["image"],
            "sentinel:1"
        );
    }

    #[test]
    fn redis_cluster_leaders_and_followers() {
        let k = ObjKey {
            name: "rc".into(),
            ..key("redis.redis.opstreelabs.in", "redisclusters")
        };
        let obj =
            json!({"metadata": {"name": "rc"}, "spec": {"clusterSize": 3, "redisFollower": {"replicas": 1}}});
        let sides = side_objects(&k, &obj, &bridges(&["redis=127.0.0.1:6379"]));
        let by_ordinal = side_objects(&k, &obj, &bridges(&["redis=127.0.0.1:7000,127.0.0.1:7001"]));
        let forward = |name: &str| {
            find(&by_ordinal, "Pod", name)["metadata"]["annotations"]["kube-standin/forward"].clone()
        };
        assert_eq!(
            [
                forward("rc-leader-0"),
                forward("rc-leader-1"),
                forward("rc-leader-2")
            ],
            [
                json!("6379=127.0.0.1:7000"),
                json!("6379=127.0.0.1:7001"),
                json!("6379=127.0.0.1:7000")
            ]
        );
        assert_eq!(find(&sides, "StatefulSet", "rc-leader")["spec"]["replicas"], 3);
        assert_eq!(find(&sides, "StatefulSet", "rc-follower")["spec"]["replicas"], 1);
        let leader = find(&sides, "Pod", "rc-leader-2");
        assert_eq!(
            leader["metadata"]["labels"],
            json!({"app": "rc-leader", "redis_setup_type": "cluster", "role": "leader"})
        );
        assert_eq!(
            leader["metadata"]["annotations"]["kube-standin/forward"],
            "6379=127.0.0.1:6379"
        );
        assert!(names(&sides).contains(&"rc-follower-headless".to_string()));
        assert!(!names(&sides).contains(&"rc-follower-1".to_string()));
        let s = desired_status(&k, &obj, None).unwrap();
        assert_eq!(
            (
                s["readyLeaderReplicas"].as_i64(),
                s["readyFollowerReplicas"].as_i64()
            ),
            (Some(3), Some(1))
        );
    }

    #[test]
    fn topology_objects_get_the_topology_operators_conditions() {
        for plural in [
            "queues",
            "exchanges",
            "bindings",
            "vhosts",
            "permissions",
            "policies",
            "users",
        ] {
            let k = ObjKey {
                name: "orders".into(),
                ..key("rabbitmq.com", plural)
            };
            let obj = json!({"metadata": {"name": "orders", "generation": 2, "uid": "u-2"},
                             "spec": {"rabbitmqClusterReference": {"name": "queue"}}});
            let s = desired_status(&k, &obj, None).unwrap();
            assert_eq!(s["observedGeneration"], 2, "{plural}");
            let ready = &s["conditions"][0];
            assert_eq!(ready["type"], "Ready");
            assert_eq!(ready["status"], "True");
            assert_eq!(ready["reason"], "SuccessfulCreateOrUpdate");
            assert!(
                ready.get("message").is_none() && ready.get("observedGeneration").is_none(),
                "{ready}"
            );
            let failed = desired_status(&k, &obj, Some("vhost missing")).unwrap();
            assert_eq!(failed["conditions"][0]["status"], "False");
            assert_eq!(failed["conditions"][0]["reason"], "FailedCreateOrUpdate");
            assert_eq!(failed["conditions"][0]["message"], "vhost missing");
        }
        let k = ObjKey {
            name: "orders".into(),
            ..key("rabbitmq.com", "users")
        };
        let obj = json!({"metadata": {"name": "orders", "uid": "u-3"}, "spec": {}});
        let s = desired_status(&k, &obj, None).unwrap();
        assert_eq!(s["conditions"][1]["type"], "PasswordSynced");
        assert_eq!(s["conditions"][1]["reason"], "SuccessfulPasswordSync");
        assert_eq!(s["credentials"]["name"], "orders-user-credentials");
        let sides = side_objects(&k, &obj, &Bridges::default());
        let creds = find(&sides, "Secret", "orders-user-credentials");
        assert_eq!(decoded(creds, "username"), s["username"].as_str().unwrap());
        assert_eq!(s["username"].as_str().unwrap().len(), 24);
    }

    #[test]
    fn rabbitmq_bridge_fills_the_default_user() {
        let k = ObjKey {
            name: "queue".into(),
            ..key("rabbitmq.com", "rabbitmqclusters")
        };
        let obj = json!({"metadata": {"name": "queue"}, "spec": {"replicas": 1}});
        let b = bridges(&[
            "rabbitmq=guest:guest@127.0.0.1:5672",
            "rabbitmq-management=127.0.0.1:15672",
        ]);
        let sides = side_objects(&k, &obj, &b);
        let user = find(&sides, "Secret", "queue-default-user");
        assert_eq!(decoded(user, "username"), "guest");
        assert_eq!(decoded(user, "password"), "guest");
        assert_eq!(
            decoded(user, "default_user.conf"),
            "default_user = guest\ndefault_pass = guest\n"
        );
        assert_eq!(
            decoded(user, "connection_string"),
            "amqp://guest:guest@queue.staging.svc:5672/"
        );
        assert_eq!(
            find(&sides, "Pod", "queue-server-0")["metadata"]["annotations"]["kube-standin/forward"],
            "5672=127.0.0.1:5672,15672=127.0.0.1:15672"
        );
        assert_eq!(
            find(&sides, "StatefulSet", "queue-server")["spec"]["serviceName"],
            "queue-nodes"
        );
        assert_eq!(find(&sides, "Service", "queue")["spec"]["type"], "ClusterIP");
        let lb = json!({"metadata": {"name": "queue"}, "spec": {"service": {"type": "LoadBalancer"}}});
        assert_eq!(
            find(&side_objects(&k, &lb, &b), "Service", "queue")["spec"]["type"],
            "LoadBalancer"
        );
        // Without a bridge: a generated default_user_… name.
        let sides = side_objects(&k, &obj, &Bridges::default());
        assert!(
            decoded(find(&sides, "Secret", "queue-default-user"), "username").starts_with("default_user_")
        );
    }

    #[test]
    fn bridge_values_parse_and_errors_keep_passwords_out() {
        let no_env = |_: &str| None;
        assert_eq!(
            Bridge::parse_with("postgres=127.0.0.1:5432", no_env),
            Ok(Bridge::Postgres {
                user: "postgres".into(),
                addr: "127.0.0.1:5432".into(),
                standbys: vec![]
            })
        );
        assert_eq!(
            Bridge::parse_with("postgres=admin@db.local:6432,db.local:6433", no_env),
            Ok(Bridge::Postgres {
                user: "admin".into(),
                addr: "db.local:6432".into(),
                standbys: vec!["db.local:6433".into()]
            })
        );
        for bad in ["postgres=@127.0.0.1:5432", "postgres=a:pw@127.0.0.1:5432"] {
            let e = Bridge::parse_with(bad, no_env).unwrap_err();
            assert!(e.contains("USER@HOST:PORT") && !e.contains("pw"), "{bad}: {e}");
        }
        assert_eq!(
            Bridge::parse_with("redis-sentinel=127.0.0.1:26379", no_env),
            Ok(Bridge::RedisSentinel("127.0.0.1:26379".into()))
        );
        assert!(
            Bridge::parse_with("redis-sentinel=127.0.0.1", no_env)
                .unwrap_err()
                .contains("redis-sentinel=127.0.0.1:26379")
        );
        assert_eq!(
            Bridge::parse_with("rabbitmq=guest:p@ss@localhost:5672", no_env),
            Ok(Bridge::Rabbitmq {
                user: "guest".into(),
                password: "p@ss".into(),
                addr: "localhost:5672".into()
            })
        );
        let env = |k: &str| (k == RABBITMQ_PASSWORD_ENV).then(|| "s3cret".to_string());
        let b = Bridge::parse_with("rabbitmq=app@127.0.0.1:5672", env).unwrap();
        assert_eq!(
            b,
            Bridge::Rabbitmq {
                user: "app".into(),
                password: "s3cret".into(),
                addr: "127.0.0.1:5672".into()
            }
        );
        assert!(!format!("{b:?}").contains("s3cret"), "{b:?}");
        let mut all = Bridges::default();
        all.add(b);
        assert!(!format!("{all:?}").contains("s3cret"), "{all:?}");

        let e = Bridge::parse_with("rabbitmq=app@127.0.0.1:5672", no_env).unwrap_err();
        assert!(e.contains(RABBITMQ_PASSWORD_ENV), "{e}");
        let e = Bridge::parse_with("rabbitmq=app:hunter2@127.0.0.1", no_env).unwrap_err();
        assert!(e.contains("HOST:PORT") && !e.contains("hunter2"), "{e}");
        let e = Bridge::parse_with("rabbitmq=127.0.0.1:5672", no_env).unwrap_err();
        assert!(e.contains("USER@HOST:PORT"), "{e}");
        let e = Bridge::parse_with("mysql=127.0.0.1:3306", no_env).unwrap_err();
        assert!(
            e.contains("unknown service \"mysql\"") && e.contains("postgres=[USER@]HOST:PORT"),
            "{e}"
        );
        assert!(
            Bridge::parse_with("postgres", no_env)
                .unwrap_err()
                .contains("SERVICE=ADDRESS")
        );
        for bad in [
            "redis=127.0.0.1",
            "redis=:6379",
            "redis=host:0",
            "redis=host:99999",
        ] {
            assert!(Bridge::parse_with(bad, no_env).is_err(), "{bad}");
        }
    }

    #[test]
    fn cnpg_bootstrap_plan_follows_initdb_and_managed_roles() {
        let k = key("postgresql.cnpg.io", "clusters");
        let plain = json!({"metadata": {"name": "database"}, "spec": {"instances": 1}});
        let p = PostgresBootstrap::of(&k, &plain).unwrap();
        assert_eq!(
            (p.secret.as_deref(), p.owner.as_str(), p.database.as_str()),
            (Some("database-app"), "app", "app")
        );
        assert!(p.roles.is_empty());
        let own = json!({"metadata": {"name": "database"},
                         "spec": {"bootstrap": {"initdb": {"database": "orders", "owner": "shop",
                                                           "secret": {"name": "shop-creds"}}}}});
        let p = PostgresBootstrap::of(&k, &own).unwrap();
        assert_eq!(
            (p.secret.as_deref(), p.owner.as_str(), p.database.as_str()),
            (Some("shop-creds"), "shop", "orders")
        );
        // Restored from a backup: no initdb, nothing to do unless roles are managed.
        let restored = json!({"metadata": {"name": "database"},
                              "spec": {"bootstrap": {"recovery": {"source": "old"}}}});
        assert!(PostgresBootstrap::of(&k, &restored).is_none());
        let managed = json!({"metadata": {"name": "database"},
                             "spec": {"bootstrap": {"pg_basebackup": {"source": "old"}},
                                      "managed": {"roles": [
                                          {"name": "reader", "login": true, "passwordSecret": {"name": "reader-pw"},
                                           "inRoles": ["pg_monitor"]},
                                          {"name": "gone", "ensure": "absent"}]}}});
        let p = PostgresBootstrap::of(&k, &managed).unwrap();
        assert_eq!(p.secret, None);
        assert_eq!(p.roles.len(), 2);
        assert_eq!(
            p.roles[0].attributes,
            [
                "LOGIN",
                "NOSUPERUSER",
                "NOCREATEDB",
                "NOCREATEROLE",
                "INHERIT",
                "NOREPLICATION",
                "NOBYPASSRLS"
            ]
        );
        assert_eq!(p.roles[0].password_secret.as_deref(), Some("reader-pw"));
        assert_eq!(p.roles[0].in_roles, ["pg_monitor"]);
        assert!(p.roles[0].present && !p.roles[1].present);
        assert!(PostgresBootstrap::of(&key("rabbitmq.com", "rabbitmqclusters"), &plain).is_none());
    }

    #[test]
    fn time_fields_do_not_count() {
        let a = json!({"conditions": [{"type": "Ready", "lastTransitionTime": "1"}], "reconciledAt": "x"});
        let b = json!({"conditions": [{"type": "Ready", "lastTransitionTime": "2"}], "reconciledAt": "y"});
        assert!(same_ignoring_times(Some(&a), &b));
        assert!(!same_ignoring_times(None, &b));
    }
}

//! `db status`: the model (`-o json|yaml` schema), its evaluation from fetched objects, the live checks
//! through port-forwards, and the tables.
//!
//! Evaluation is pure ([`evaluate`]: objects in, rows out) and uses the rules in [`shared::readiness`]; the
//! only I/O is [`collect`]: one concurrent round of API reads for all environments (`fetch`), then
//! all live checks concurrently in what the reads left of the `--timeout` deadline.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::api::ApiClient;

use crate::DbError;
use crate::catalog::{self, Service};
use crate::cli::StatusOptions;
use crate::fetch::{self, EnvObjects};
use crate::live::{self, LiveStatus, Probe};
use crate::portforward::PortForward;
use crate::secrets::{self, Password};
use shared::environment::Environment;
use shared::readiness::{self, Readiness};

/// How long before the command's deadline the live checks end, so the table is still printed.
const LIVE_MARGIN: Duration = Duration::from_millis(300);

/// The whole `status` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// One entry per environment, in the order asked for.
    pub environments: Vec<EnvironmentStatus>,
}

impl StatusReport {
    /// True when every service of every environment is healthy.
    pub fn healthy(&self) -> bool {
        self.environments.iter().all(|env| env.healthy)
    }
}

/// One environment's data services.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvironmentStatus {
    /// Environment name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// All services healthy.
    pub healthy: bool,
    /// One entry per service: postgres, redis, rabbitmq.
    pub services: Vec<ServiceStatus>,
}

/// Desired and ready instance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instances {
    /// Wanted by the spec.
    pub desired: i64,
    /// Ready now.
    pub ready: i64,
}

/// Where applications and developers reach a service (from the environment file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusEndpoints {
    /// In-cluster `host:port`.
    pub internal: String,
    /// Outside `host:port`.
    pub external: String,
}

/// Redis Sentinel's own state (Redis rows only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentinelStatus {
    /// The `RedisSentinel` name.
    pub name: String,
    /// Its StatefulSet is fully ready.
    pub ready: bool,
    /// Sentinel pods.
    pub instances: Instances,
    /// The master group it watches.
    pub master_group: String,
    /// Readiness message.
    pub message: String,
}

/// One data service of one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `postgres`, `redis` or `rabbitmq`.
    pub service: Service,
    /// The custom resource judged, as `plural.group/name`.
    pub resource: String,
    /// The operator's view: ready by the rules in `readiness`.
    pub ready: bool,
    /// `ready` and, when live checks ran, `live.ok`.
    pub healthy: bool,
    /// Instance counts.
    pub instances: Instances,
    /// Current primary / master pod (`null` for RabbitMQ, or when none is elected).
    pub primary: Option<String>,
    /// The phase or failing condition's message.
    pub message: String,
    /// Internal and external endpoints.
    pub endpoints: StatusEndpoints,
    /// Age of the custom resource, kubectl style (`3d`); `null` when it is missing.
    pub age: Option<String>,
    /// Creation time of the custom resource (RFC 3339).
    pub created: Option<String>,
    /// Redis only: the Sentinel watching the replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelStatus>,
    /// The live check; `null` with `--no-live`.
    pub live: Option<LiveStatus>,
}

/// A Sentinel pod to ask about the master.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelTarget {
    /// The pod.
    pub pod: String,
    /// The master group it watches.
    pub group: String,
    /// Its own password Secret `(name, key)`, if it has one.
    pub secret: Option<(String, String)>,
}

/// What a live check of one service needs to know, derived from the fetched objects.
#[derive(Debug, Clone, PartialEq)]
pub enum LivePlan {
    /// Nothing to connect to, and why.
    Skip(String),
    /// PostgreSQL: the primary pod and the replicas expected to stream from it.
    Postgres {
        /// The primary's pod.
        pod: String,
        /// Replica pod names.
        replicas: Vec<String>,
    },
    /// Redis: the master pod, replica count, and the Sentinel to ask.
    Redis {
        /// The master's pod.
        pod: String,
        /// Replicas the master should have.
        replicas: u32,
        /// Password Secret `(name, key)`, if the replication has one.
        secret: Option<(String, String)>,
        /// The master pod's IP, to compare with Sentinel's answer.
        master_ip: Option<String>,
        /// The Sentinel to ask, if one watches the replication.
        sentinel: Option<SentinelTarget>,
    },
    /// RabbitMQ: a ready node pod.
    Rabbitmq {
        /// The pod.
        pod: String,
    },
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// The count fields an operator writes, checked: a present field that is not a whole number ≥ 0 (`-5`,
/// `"three"`) is named, instead of being read as 0 and shown as a misleading `0/-5`.
fn malformed_count(object: &Value, pointers: &[&str]) -> Option<(String, String)> {
    pointers.iter().find_map(|pointer| {
        let value = object.pointer(pointer).filter(|v| !v.is_null())?;
        if value.as_u64().is_some() {
            return None;
        }
        let field = pointer.trim_start_matches('/').replace('/', ".");
        let mut shown = value.to_string();
        if shown.chars().count() > 40 {
            shown = format!("{}…", shown.chars().take(40).collect::<String>());
        }
        Some((field, format!("is {shown}, not a count (a whole number from 0)")))
    })
}

/// Mark `status` not ready with a message naming the resource and the malformed field, if any.
fn check_counts(status: &mut ServiceStatus, object: &Value, namespace: &str, pointers: &[&str]) {
    if let Some((field, problem)) = malformed_count(object, pointers) {
        status.ready = false;
        status.healthy = false;
        status.message = DbError::MalformedStatus {
            resource: status.resource.clone(),
            namespace: namespace.to_string(),
            field,
            problem,
        }
        .to_string();
    }
}

fn created_and_age(obj: Option<&Value>, now: Timestamp) -> (Option<String>, Option<String>) {
    let Some(created) = obj.and_then(|o| str_at(o, "/metadata/creationTimestamp")) else {
        return (None, None);
    };
    let age = created
        .parse::<Timestamp>()
        .ok()
        .map(|t| shared::output::human_age(now.as_second() - t.as_second()));
    (Some(created.to_string()), age)
}

fn is_ready_pod(pod: &Value) -> bool {
    readiness::is_pod_ready(pod).ready
}

fn pod_name(pod: &Value) -> Option<&str> {
    str_at(pod, "/metadata/name")
}

fn label<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/labels")
        .and_then(|labels| labels.get(key))
        .and_then(Value::as_str)
}

fn missing(service: Service, namespace: &str) -> String {
    let (what, chart, operator) = match service {
        Service::Postgres => ("Cluster `database`", "postgres-instance", "CloudNativePG"),
        Service::Redis => ("RedisReplication `redis`", "redis-instance", "redis-operator"),
        Service::Rabbitmq => ("RabbitmqCluster `queue`", "rabbitmq", "RabbitMQ cluster operator"),
    };
    format!(
        "{what} not found in namespace {namespace}: deploy the {chart} chart (`kubectl duli env up`) and check that the {operator} is installed"
    )
}

fn row(
    service: Service,
    env: &Environment,
    resource: String,
    object: Option<&Value>,
    now: Timestamp,
) -> ServiceStatus {
    let endpoints = service.endpoints(env);
    let (created, age) = created_and_age(object, now);
    ServiceStatus {
        service,
        resource,
        ready: false,
        healthy: false,
        instances: Instances { desired: 0, ready: 0 },
        primary: None,
        message: missing(service, &env.namespace),
        endpoints: StatusEndpoints {
            internal: endpoints.internal.clone(),
            external: endpoints.external.clone(),
        },
        age,
        created,
        sentinel: None,
        live: None,
    }
}

fn apply(row: &mut ServiceStatus, verdict: Readiness) {
    row.ready = verdict.ready;
    row.healthy = verdict.ready;
    row.message = verdict.message;
}

/// The PostgreSQL row and its live plan.
pub fn evaluate_postgres(
    env: &Environment,
    objects: &EnvObjects,
    now: Timestamp,
) -> (ServiceStatus, LivePlan) {
    let cluster = objects.cluster.as_ref();
    let mut status = row(
        Service::Postgres,
        env,
        catalog::CNPG_CLUSTER.describe(catalog::PG_CLUSTER),
        cluster,
        now,
    );
    let Some(cluster) = cluster else {
        return (status, LivePlan::Skip("no Cluster to check".into()));
    };
    apply(&mut status, readiness::is_cnpg_cluster_ready(cluster));
    status.instances = Instances {
        desired: int_at(cluster, "/spec/instances")
            .or_else(|| int_at(cluster, "/status/instances"))
            .unwrap_or(0),
        ready: int_at(cluster, "/status/readyInstances").unwrap_or(0),
    };
    status.primary = str_at(cluster, "/status/currentPrimary").map(str::to_string);
    check_counts(
        &mut status,
        cluster,
        &env.namespace,
        &["/spec/instances", "/status/instances", "/status/readyInstances"],
    );
    let plan = match &status.primary {
        None => LivePlan::Skip("no current primary to check".into()),
        Some(primary) => {
            let names: Vec<String> = cluster
                .pointer("/status/instanceNames")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let replicas = names.into_iter().filter(|name| name != primary).collect();
            LivePlan::Postgres {
                pod: primary.clone(),
                replicas,
            }
        }
    };
    (status, plan)
}

/// The Redis row (with its Sentinel) and its live plan.
pub fn evaluate_redis(env: &Environment, objects: &EnvObjects, now: Timestamp) -> (ServiceStatus, LivePlan) {
    let name = catalog::REDIS_REPLICATION_NAME;
    let replication = objects.replication.as_ref();
    let mut status = row(
        Service::Redis,
        env,
        catalog::REDIS_REPLICATION.describe(name),
        replication,
        now,
    );
    let Some(replication) = replication else {
        return (status, LivePlan::Skip("no RedisReplication to check".into()));
    };
    let statefulset = objects.statefulset(name);
    let data_pods: Vec<Value> = objects
        .redis_pods
        .iter()
        .filter(|pod| label(pod, "redis_setup_type") == Some("replication"))
        .cloned()
        .collect();
    let mut verdict = readiness::is_redis_replication_ready(replication, statefulset, &data_pods);
    let (ready, desired) = statefulset.map(readiness::statefulset_counts).unwrap_or((0, 0));
    status.instances = Instances {
        desired: int_at(replication, "/spec/clusterSize").unwrap_or(desired),
        ready,
    };
    status.primary = str_at(replication, "/status/masterNode").map(str::to_string);

    let sentinel = objects
        .sentinels
        .iter()
        .find(|s| str_at(s, "/spec/redisSentinelConfig/redisReplicationName") == Some(name));
    let mut sentinel_target = None;
    if let Some(sentinel) = sentinel {
        let sentinel_name = str_at(sentinel, "/metadata/name")
            .unwrap_or("redis-sentinel")
            .to_string();
        let sts_name = catalog::sentinel_statefulset(&sentinel_name);
        let sts = objects.statefulset(&sts_name);
        let sentinel_verdict =
            readiness::is_statefulset_pods_ready(sts, &format!("Sentinel StatefulSet {sts_name}"));
        let (s_ready, s_desired) = sts.map(readiness::statefulset_counts).unwrap_or((0, 0));
        let group = str_at(sentinel, "/spec/redisSentinelConfig/masterGroupName")
            .unwrap_or(catalog::SENTINEL_DEFAULT_GROUP)
            .to_string();
        if verdict.ready && !sentinel_verdict.ready {
            verdict = Readiness::not_ready(sentinel_verdict.message.clone());
        } else if verdict.ready {
            verdict = Readiness::ready(format!(
                "{}; sentinel {sentinel_name} {}",
                verdict.message, sentinel_verdict.message
            ));
        }
        let pod = objects
            .redis_pods
            .iter()
            .filter(|pod| label(pod, "app") == Some(sts_name.as_str()))
            .find(|pod| is_ready_pod(pod))
            .and_then(pod_name)
            .map(str::to_string);
        let sentinel_secret = sentinel
            .pointer("/spec/kubernetesConfig/redisSecret")
            .and_then(|secret| {
                let name = str_at(secret, "/name")?;
                Some((
                    name.to_string(),
                    str_at(secret, "/key").unwrap_or("password").to_string(),
                ))
            });
        sentinel_target = pod.map(|pod| SentinelTarget {
            pod,
            group: group.clone(),
            secret: sentinel_secret,
        });
        status.sentinel = Some(SentinelStatus {
            name: sentinel_name,
            ready: sentinel_verdict.ready,
            instances: Instances {
                desired: int_at(sentinel, "/spec/clusterSize").unwrap_or(s_desired),
                ready: s_ready,
            },
            master_group: group,
            message: sentinel_verdict.message,
        });
    }
    apply(&mut status, verdict);
    check_counts(&mut status, replication, &env.namespace, &["/spec/clusterSize"]);
    if let Some(sentinel) = sentinel {
        check_counts(&mut status, sentinel, &env.namespace, &["/spec/clusterSize"]);
    }
    let master_pod = status.primary.clone().or_else(|| {
        data_pods
            .iter()
            .find(|pod| label(pod, readiness::REDIS_ROLE_LABEL) == Some("master"))
            .and_then(pod_name)
            .map(str::to_string)
    });
    let plan = match master_pod {
        None => LivePlan::Skip("no master pod to check".into()),
        Some(pod) => {
            let master_ip = data_pods
                .iter()
                .find(|p| pod_name(p) == Some(pod.as_str()))
                .and_then(|p| str_at(p, "/status/podIP"))
                .map(str::to_string);
            LivePlan::Redis {
                pod,
                replicas: u32::try_from((status.instances.desired - 1).max(0)).unwrap_or(0),
                secret: secrets::redis_secret_ref(Some(replication)),
                master_ip,
                sentinel: sentinel_target,
            }
        }
    };
    (status, plan)
}

/// The RabbitMQ row and its live plan.
pub fn evaluate_rabbitmq(
    env: &Environment,
    objects: &EnvObjects,
    now: Timestamp,
) -> (ServiceStatus, LivePlan) {
    let name = catalog::RABBITMQ_CLUSTER_NAME;
    let cluster = objects.rabbitmq.as_ref();
    let mut status = row(
        Service::Rabbitmq,
        env,
        catalog::RABBITMQ_CLUSTER.describe(name),
        cluster,
        now,
    );
    let Some(cluster) = cluster else {
        return (status, LivePlan::Skip("no RabbitmqCluster to check".into()));
    };
    apply(&mut status, readiness::is_rabbitmq_cluster_ready(cluster));
    let sts = objects.statefulset(&format!("{name}-server"));
    let ready = sts
        .map(|sts| readiness::statefulset_counts(sts).0)
        .unwrap_or_else(|| {
            // Without the StatefulSet, AllReplicasReady=True still means all of spec.replicas.
            if readiness::is_condition_true(cluster, "AllReplicasReady") {
                int_at(cluster, "/spec/replicas").unwrap_or(1)
            } else {
                0
            }
        });
    status.instances = Instances {
        desired: int_at(cluster, "/spec/replicas").unwrap_or(1),
        ready,
    };
    check_counts(&mut status, cluster, &env.namespace, &["/spec/replicas"]);
    let pod = objects
        .rabbitmq_pods
        .iter()
        .find(|pod| is_ready_pod(pod))
        .or_else(|| objects.rabbitmq_pods.first())
        .and_then(pod_name)
        .map(str::to_string);
    let plan = match pod {
        Some(pod) => LivePlan::Rabbitmq { pod },
        None => LivePlan::Skip(format!(
            "no pod of RabbitmqCluster {name} (label {})",
            catalog::RABBITMQ_POD_SELECTOR
        )),
    };
    (status, plan)
}

/// Rows and live plans for one environment, in service order.
pub fn evaluate(env: &Environment, objects: &EnvObjects, now: Timestamp) -> Vec<(ServiceStatus, LivePlan)> {
    vec![
        evaluate_postgres(env, objects, now),
        evaluate_redis(env, objects, now),
        evaluate_rabbitmq(env, objects, now),
    ]
}

/// Read everything, evaluate, and run the live checks: one concurrent round of API reads for all
/// environments, then all live checks concurrently.
pub async fn collect(
    api: &ApiClient,
    environments: &[Environment],
    options: &StatusOptions,
) -> Result<StatusReport, DbError> {
    let reads = futures::future::try_join_all(
        environments
            .iter()
            .map(|env| fetch::fetch_env(api, &env.namespace, !options.no_live)),
    );
    let fetched = reads.await?;
    let now = Timestamp::now();
    let mut planned: Vec<(EnvironmentStatus, Vec<LivePlan>)> = environments
        .iter()
        .zip(&fetched)
        .map(|(env, objects)| {
            let (services, plans): (Vec<_>, Vec<_>) = evaluate(env, objects, now).into_iter().unzip();
            (
                EnvironmentStatus {
                    name: env.name.clone(),
                    namespace: env.namespace.clone(),
                    healthy: false,
                    services,
                },
                plans,
            )
        })
        .collect();
    if !options.no_live {
        // One deadline for the whole command: the live checks get what the reads left of it, ending a
        // little before it so their results are still printed.
        let left = api
            .deadline()
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(LIVE_MARGIN);
        let budget = options.timeout.min(left).max(Duration::from_millis(100));
        // Their API reads give up a little before the check's own timeout, so a failing server is reported
        // by its answer (`500 InternalError`) rather than as a silent check.
        let live_api = ApiClient::with_client(
            api.client().clone(),
            api.server(),
            tokio::time::Instant::now() + budget.saturating_sub(LIVE_MARGIN / 3),
        );
        let live_api = &live_api;
        let checks = planned.iter().flat_map(|(env, plans)| {
            plans
                .iter()
                .map(move |plan| live_check(live_api.clone(), env.namespace.clone(), plan.clone(), budget))
        });
        let mut results = futures::future::join_all(checks).await.into_iter();
        for (env, _) in &mut planned {
            for service in &mut env.services {
                let status = results.next().expect("one live result per service");
                service.healthy = service.ready && status.ok;
                service.live = Some(status);
            }
        }
    }
    let environments = planned
        .into_iter()
        .map(|(mut env, _)| {
            env.healthy = env.services.iter().all(|s| s.healthy);
            env
        })
        .collect();
    Ok(StatusReport { environments })
}

async fn read_password(
    api: &ApiClient,
    namespace: &str,
    secret: &Option<(String, String)>,
) -> Result<Option<Password>, String> {
    let Some((name, key)) = secret else {
        return Ok(None);
    };
    let data = secrets::read_secret(api, namespace, name, secrets::missing_secret_hint(Service::Redis))
        .await
        .map_err(|err| err.to_string())?;
    Ok(Some(Password::new(
        data.require(key).map_err(|err| err.to_string())?,
    )))
}

async fn forward(api: &ApiClient, namespace: &str, pod: &str, port: u16) -> Result<PortForward, String> {
    let pods: Api<Pod> = Api::namespaced(api.client().clone(), namespace);
    PortForward::start(pods, pod, port, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|err| err.to_string())
}

/// Add the port-forward's own failure (e.g. the pod refusing the connection) to a failed probe's reason.
async fn explain(result: Result<Probe, String>, forward: &PortForward) -> Result<Probe, String> {
    match result {
        Ok(probe) => Ok(probe),
        Err(reason) => match forward.wait_error(Duration::from_millis(150)).await {
            Some(cause) => Err(format!(
                "{reason} (port-forward to {}: {cause})",
                forward.target()
            )),
            None => Err(format!("{reason} (through port-forward to {})", forward.target())),
        },
    }
}

async fn live_check(api: ApiClient, namespace: String, plan: LivePlan, timeout: Duration) -> LiveStatus {
    if let LivePlan::Skip(reason) = &plan {
        return LiveStatus {
            ok: false,
            latency_ms: 0,
            detail: format!("not checked: {reason}"),
        };
    }
    live::run_check(timeout, async move {
        match plan {
            LivePlan::Skip(reason) => Err(reason),
            LivePlan::Postgres { pod, replicas } => {
                // The superuser sees pg_stat_replication in full; the app owner only sees that replicas exist.
                let superuser =
                    secrets::read_secret(&api, &namespace, catalog::PG_SECRET_SUPERUSER, "").await;
                let data = match superuser {
                    Ok(data) => data,
                    Err(DbError::NotFound { .. }) => secrets::read_secret(
                        &api,
                        &namespace,
                        catalog::PG_SECRET_APP,
                        secrets::missing_secret_hint(Service::Postgres),
                    )
                    .await
                    .map_err(|e| e.to_string())?,
                    Err(err) => return Err(err.to_string()),
                };
                let credentials =
                    secrets::credentials_from(Service::Postgres, &data, "").map_err(|e| e.to_string())?;
                let probe = live::PostgresProbe {
                    user: credentials.user.unwrap_or_default(),
                    password: credentials.password,
                    database: credentials.database.unwrap_or_else(|| "app".into()),
                    expected_replicas: replicas,
                };
                let forward = forward(&api, &namespace, &pod, catalog::PG_PORT).await?;
                explain(live::check_postgres(forward.local_addr(), &probe).await, &forward).await
            }
            LivePlan::Redis {
                pod,
                replicas,
                secret,
                master_ip,
                sentinel,
            } => {
                let password = read_password(&api, &namespace, &secret).await?;
                let forward = forward(&api, &namespace, &pod, catalog::REDIS_PORT).await?;
                let data = async {
                    explain(
                        live::check_redis(forward.local_addr(), password.as_ref(), replicas).await,
                        &forward,
                    )
                    .await
                };
                let watcher = async {
                    let Some(SentinelTarget { pod, group, secret }) = &sentinel else {
                        return Ok(None);
                    };
                    let password = read_password(&api, &namespace, secret).await?;
                    let forward = self::forward(&api, &namespace, pod, catalog::SENTINEL_PORT).await?;
                    let result = live::check_sentinel(
                        forward.local_addr(),
                        password.as_ref(),
                        group,
                        master_ip.as_deref(),
                    )
                    .await;
                    explain(result, &forward)
                        .await
                        .map(Some)
                        .map_err(|reason| format!("sentinel {pod}: {reason}"))
                };
                let (data, watcher) = tokio::join!(data, watcher);
                let data = data.unwrap_or_else(|reason| Probe {
                    ok: false,
                    detail: reason,
                });
                match watcher {
                    Ok(None) => Ok(data),
                    Ok(Some(seen)) => Ok(Probe {
                        ok: data.ok && seen.ok,
                        detail: format!("{}; {}", data.detail, seen.detail),
                    }),
                    Err(reason) => Ok(Probe {
                        ok: false,
                        detail: format!("{}; {reason}", data.detail),
                    }),
                }
            }
            LivePlan::Rabbitmq { pod } => {
                let credentials = secrets::read_credentials(&api, &namespace, Service::Rabbitmq)
                    .await
                    .map_err(|e| e.to_string())?;
                let forward = forward(&api, &namespace, &pod, catalog::AMQP_PORT).await?;
                let user = credentials.user.unwrap_or_default();
                let password = credentials.password.unwrap_or_else(|| Password::new(""));
                explain(
                    live::check_rabbitmq(forward.local_addr(), &user, &password).await,
                    &forward,
                )
                .await
            }
        }
    })
    .await
}

/// Collect the report and write it to `out` in `format`; findings when any service is unhealthy.
pub async fn run(
    api: &ApiClient,
    environments: &[Environment],
    options: &StatusOptions,
    format: shared::output::OutputFormat,
    out: &mut impl std::io::Write,
) -> anyhow::Result<shared::error::Outcome> {
    let report = collect(api, environments, options).await?;
    let text = match format {
        shared::output::OutputFormat::Table => render_tables(&report, false),
        shared::output::OutputFormat::Wide => render_tables(&report, true),
        other => shared::output::to_document(&report, other)?,
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(if report.healthy() {
        shared::error::Outcome::Clean
    } else {
        shared::error::Outcome::Findings
    })
}

/// `--watch`: a round of [`collect`] every `--interval`, each bounded by `--timeout`, until Ctrl-C (the
/// runner ends the process with 130, quietly: Ctrl-C is how a watch ends). On a terminal with a table format the screen is redrawn in place (as
/// `watch` does); otherwise one compact JSON line is printed per change of the report — its first round,
/// then whenever what it says changes (the live checks' latencies and the ages do not count). A round
/// that fails (the API server went away) is a line `{"error": …}` and the watch goes on.
pub async fn watch(
    cluster: &shared::cluster::Cluster,
    environments: &[Environment],
    options: &StatusOptions,
    format: shared::output::OutputFormat,
    terminal: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<shared::error::Outcome> {
    use shared::output::OutputFormat;
    shared::runner::set_interrupt_ends_quietly();
    let redraw = terminal && matches!(format, OutputFormat::Table | OutputFormat::Wide);
    let names: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
    let mut last: Option<Value> = None;
    loop {
        let api = ApiClient::new(cluster, options.timeout);
        let round = collect(&api, environments, options).await;
        if redraw {
            let body = match &round {
                Ok(report) => render_tables(report, format == OutputFormat::Wide),
                Err(err) => format!("error: {err:#}\n"),
            };
            let now = Timestamp::now().strftime("%H:%M:%S");
            write!(
                out,
                "\x1b[H\x1b[2JEvery {}: kubectl duli db status {}   {now}\n\n{body}",
                shared::duration::human(options.interval),
                names.join(" ")
            )?;
        } else {
            let line = match &round {
                Ok(report) => serde_json::to_value(report)?,
                Err(err) => serde_json::json!({ "error": format!("{err:#}") }),
            };
            let seen = without_timings(&line);
            if last.as_ref() != Some(&seen) {
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
                last = Some(seen);
            }
        }
        out.flush()?;
        tokio::time::sleep(options.interval).await;
    }
}

/// The report without what changes every round whatever happens (latencies, ages).
fn without_timings(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !matches!(key.as_str(), "latency_ms" | "age"))
                .map(|(key, value)| (key.clone(), without_timings(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_timings).collect()),
        other => other.clone(),
    }
}

/// Print the report as one table per environment plus a verdict line; `wide` (`-o wide`) adds the
/// endpoints and the live checks' detail.
pub fn render_tables(report: &StatusReport, wide: bool) -> String {
    let mut out = String::new();
    for env in &report.environments {
        let mut header = vec![
            "SERVICE",
            "READY",
            "INSTANCES",
            "PRIMARY",
            "MESSAGE",
            "AGE",
            "LIVE",
        ];
        if wide {
            header.extend(["INTERNAL", "EXTERNAL", "LIVE DETAIL"]);
        }
        let mut table = shared::output::table(header);
        for service in &env.services {
            // A failed check says why in the default table too; a passing one's detail is for -o wide.
            let (live, detail) = match &service.live {
                None => ("-".to_string(), "-".to_string()),
                Some(live) if live.ok => (format!("ok {}ms", live.latency_ms), live.detail.clone()),
                Some(live) if wide => (format!("DOWN {}ms", live.latency_ms), live.detail.clone()),
                Some(live) => (
                    format!("DOWN {}ms: {}", live.latency_ms, live.detail),
                    live.detail.clone(),
                ),
            };
            let mut row = vec![
                service.service.as_str().to_string(),
                if service.ready { "yes".into() } else { "NO".into() },
                format!("{}/{}", service.instances.ready, service.instances.desired),
                service.primary.clone().unwrap_or_else(|| "-".into()),
                service.message.clone(),
                service.age.clone().unwrap_or_else(|| "-".into()),
                live,
            ];
            if wide {
                row.extend([
                    service.endpoints.internal.clone(),
                    service.endpoints.external.clone(),
                    detail,
                ]);
            }
            table.add_row(crate::printable_row(row));
        }
        let unhealthy: Vec<&str> = env
            .services
            .iter()
            .filter(|s| !s.healthy)
            .map(|s| s.service.as_str())
            .collect();
        let verdict = if unhealthy.is_empty() {
            "all healthy".to_string()
        } else {
            format!("UNHEALTHY: {}", unhealthy.join(", "))
        };
        out.push_str(&format!(
            "Environment {} (namespace {}): {verdict}\n{table}\n\n",
            crate::printable(&env.name),
            crate::printable(&env.namespace)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        Environment::load(&shared::repo::Repo::at(root).unwrap(), "staging").unwrap()
    }

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap()
    }

    fn now() -> Timestamp {
        "2026-01-04T00:00:00Z".parse().unwrap()
    }

    fn healthy_objects() -> EnvObjects {
        EnvObjects {
            cluster: Some(yaml(
                r#"
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: database, namespace: staging, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {instances: 2}
status:
  instances: 2
  readyInstances: 2
  phase: Cluster in healthy state
  currentPrimary: database-1
  targetPrimary: database-1
  instanceNames: [database-1, database-2]
  conditions: [{type: Ready, status: "True", reason: ClusterIsReady, message: Cluster is Ready}]
"#,
            )),
            replication: Some(yaml(
                r#"
apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisReplication
metadata: {name: redis, namespace: staging, creationTimestamp: "2026-01-03T22:00:00Z"}
spec: {clusterSize: 2, kubernetesConfig: {image: redis, redisSecret: {name: redis-secret, key: password}}}
status: {masterNode: redis-0}
"#,
            )),
            sentinels: vec![yaml(
                r#"
apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisSentinel
metadata: {name: redis-sentinel, namespace: staging}
spec: {clusterSize: 1, redisSentinelConfig: {redisReplicationName: redis, masterGroupName: mymaster}}
"#,
            )],
            statefulsets: vec![
                yaml("metadata: {name: redis}\nspec: {replicas: 2}\nstatus: {readyReplicas: 2}\n"),
                yaml(
                    "metadata: {name: redis-sentinel-sentinel}\nspec: {replicas: 1}\nstatus: {readyReplicas: 1}\n",
                ),
                yaml("metadata: {name: queue-server}\nspec: {replicas: 1}\nstatus: {readyReplicas: 1}\n"),
            ],
            redis_pods: vec![
                yaml(
                    "metadata: {name: redis-0, labels: {app: redis, redis_setup_type: replication, redis-role: master}}\nstatus: {phase: Running, podIP: 10.0.0.5, conditions: [{type: Ready, status: 'True'}]}\n",
                ),
                yaml(
                    "metadata: {name: redis-1, labels: {app: redis, redis_setup_type: replication, redis-role: slave}}\nstatus: {phase: Running, podIP: 10.0.0.6, conditions: [{type: Ready, status: 'True'}]}\n",
                ),
                yaml(
                    "metadata: {name: redis-sentinel-sentinel-0, labels: {app: redis-sentinel-sentinel, redis_setup_type: sentinel, role: sentinel}}\nstatus: {phase: Running, conditions: [{type: Ready, status: 'True'}]}\n",
                ),
            ],
            rabbitmq: Some(yaml(
                r#"
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata: {name: queue, namespace: staging, generation: 1}
spec: {replicas: 1}
status:
  observedGeneration: 1
  conditions:
  - {type: AllReplicasReady, status: "True", reason: AllPodsAreReady}
  - {type: ClusterAvailable, status: "True", reason: AtLeastOneEndpointAvailable}
"#,
            )),
            rabbitmq_pods: vec![yaml(
                "metadata: {name: queue-server-0, labels: {app.kubernetes.io/name: queue}}\nstatus: {phase: Running, conditions: [{type: Ready, status: 'True'}]}\n",
            )],
        }
    }

    /// Issue #17: wrong types in an operator's status were read as 0 and shown as `0/-5 instances`.
    #[test]
    fn a_malformed_status_field_is_named_not_shown_as_a_count() {
        for (pointer, value, field, shown) in [
            (
                "/status/instances",
                serde_json::json!(-5),
                "status.instances",
                "is -5",
            ),
            (
                "/status/readyInstances",
                serde_json::json!("three"),
                "status.readyInstances",
                "is \"three\"",
            ),
        ] {
            let mut objects = healthy_objects();
            *objects.cluster.as_mut().unwrap().pointer_mut(pointer).unwrap() = value;
            let (pg, _) = &evaluate(&env(), &objects, now())[0];
            assert!(!pg.ready && !pg.healthy, "{pg:?}");
            assert!(
                pg.message.starts_with(&format!(
                    "clusters.postgresql.cnpg.io/database in namespace `staging` has a malformed status: field `{field}` {shown}, not a count"
                )),
                "{}",
                pg.message
            );
        }
        let mut objects = healthy_objects();
        let replication = objects.replication.as_mut().unwrap();
        replication["spec"]["clusterSize"] = serde_json::json!(2.5);
        let (redis, _) = &evaluate(&env(), &objects, now())[1];
        assert!(
            redis.message.contains("field `spec.clusterSize` is 2.5"),
            "{}",
            redis.message
        );
    }

    /// Issue #17: escape sequences in names and messages reached the terminal raw.
    #[test]
    fn escape_sequences_in_messages_are_shown_escaped_in_the_table() {
        let mut objects = healthy_objects();
        objects.cluster.as_mut().unwrap()["status"]["phase"] =
            serde_json::json!("\u{1b}]0;pwned\u{7}\u{1b}[2Jfailing");
        let report = StatusReport {
            environments: vec![EnvironmentStatus {
                name: "staging".into(),
                namespace: "staging".into(),
                healthy: false,
                services: evaluate(&env(), &objects, now())
                    .into_iter()
                    .map(|(row, _)| row)
                    .collect(),
            }],
        };
        let table = render_tables(&report, true);
        assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'), "{table:?}");
        assert!(table.contains("\\x1b]0;pwned\\x07"), "{table}");
    }

    #[test]
    fn healthy_environment_rows_and_plans() {
        let rows = evaluate(&env(), &healthy_objects(), now());
        let (pg, pg_plan) = &rows[0];
        assert!(pg.ready);
        assert_eq!(pg.instances, Instances { desired: 2, ready: 2 });
        assert_eq!(pg.primary.as_deref(), Some("database-1"));
        assert_eq!(pg.age.as_deref(), Some("3d"));
        assert_eq!(
            pg.endpoints.internal,
            "database-rw.staging.svc.cluster.local:5432"
        );
        assert_eq!(
            *pg_plan,
            LivePlan::Postgres {
                pod: "database-1".into(),
                replicas: vec!["database-2".into()]
            }
        );
        let (redis, redis_plan) = &rows[1];
        assert!(redis.ready, "{}", redis.message);
        assert_eq!(redis.age.as_deref(), Some("120m"));
        assert_eq!(
            redis.message,
            "master redis-0, 2/2 pods ready; sentinel redis-sentinel 1/1 pods ready"
        );
        assert_eq!(redis.sentinel.as_ref().unwrap().master_group, "mymaster");
        assert_eq!(
            *redis_plan,
            LivePlan::Redis {
                pod: "redis-0".into(),
                replicas: 1,
                secret: Some(("redis-secret".into(), "password".into())),
                master_ip: Some("10.0.0.5".into()),
                sentinel: Some(SentinelTarget {
                    pod: "redis-sentinel-sentinel-0".into(),
                    group: "mymaster".into(),
                    secret: None
                }),
            }
        );
        let (rabbit, rabbit_plan) = &rows[2];
        assert!(rabbit.ready);
        assert_eq!(rabbit.primary, None);
        assert_eq!(
            *rabbit_plan,
            LivePlan::Rabbitmq {
                pod: "queue-server-0".into()
            }
        );
    }

    #[test]
    fn missing_resources_say_what_to_do() {
        let rows = evaluate(&env(), &EnvObjects::default(), now());
        for (status, plan) in &rows {
            assert!(!status.ready && !status.healthy);
            assert!(
                status.message.contains("not found in namespace staging"),
                "{}",
                status.message
            );
            assert!(matches!(plan, LivePlan::Skip(_)));
            assert_eq!(status.age, None);
        }
    }

    #[test]
    fn sentinel_not_ready_makes_redis_not_ready() {
        let mut objects = healthy_objects();
        objects.statefulsets[1] = yaml(
            "metadata: {name: redis-sentinel-sentinel}\nspec: {replicas: 3}\nstatus: {readyReplicas: 1}\n",
        );
        let (redis, _) = evaluate_redis(&env(), &objects, now());
        assert!(!redis.ready);
        assert_eq!(
            redis.message,
            "Sentinel StatefulSet redis-sentinel-sentinel: 1/3 pods ready"
        );
    }

    #[test]
    fn json_carries_the_documented_fields() {
        let rows = evaluate(&env(), &healthy_objects(), now());
        let report = StatusReport {
            environments: vec![EnvironmentStatus {
                name: "staging".into(),
                namespace: "staging".into(),
                healthy: true,
                services: rows.into_iter().map(|(s, _)| s).collect(),
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        let pg = &json["environments"][0]["services"][0];
        for key in [
            "service",
            "ready",
            "instances",
            "primary",
            "message",
            "endpoints",
            "live",
            "age",
        ] {
            assert!(pg.get(key).is_some(), "missing {key}");
        }
        assert_eq!(pg["service"], "postgres");
        assert_eq!(pg["instances"]["desired"], 2);
        assert_eq!(pg["live"], Value::Null);
        assert_eq!(pg["endpoints"]["external"], "db-staging.duli.one:5432");
        let table = render_tables(&report, true);
        assert!(
            table.contains("Environment staging (namespace staging)"),
            "{table}"
        );
        assert!(table.contains("database-1"), "{table}");
    }
}

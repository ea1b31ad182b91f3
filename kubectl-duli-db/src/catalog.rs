//! The three data services, named once: which custom resource, Services, Secrets, pods and ports each
//! operator creates for the platform's instances (CNPG `Cluster` **database**, redis-operator
//! `RedisReplication` **redis** + its `RedisSentinel`, `RabbitmqCluster` **queue**).
//!
//! Source: `shared/reference/operators.md` (CloudNativePG 1.27, redis-operator v0.26, cluster-operator 2.22).

use kube::core::{ApiResource, GroupVersionKind};
use serde::{Deserialize, Serialize};

use shared::environment::{Environment, ServiceEndpoints};

/// A data service of an environment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// PostgreSQL: CloudNativePG `Cluster` `database`.
    Postgres,
    /// Redis: redis-operator `RedisReplication` `redis` and its Sentinel.
    Redis,
    /// RabbitMQ: cluster-operator `RabbitmqCluster` `queue`.
    Rabbitmq,
}

impl Service {
    /// All three, in display order.
    pub const ALL: [Service; 3] = [Service::Postgres, Service::Redis, Service::Rabbitmq];

    /// The name used in output and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Redis => "redis",
            Service::Rabbitmq => "rabbitmq",
        }
    }

    /// A human title (`PostgreSQL`).
    pub fn title(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
            Service::Rabbitmq => "RabbitMQ",
        }
    }

    /// The environment's endpoints for this service.
    pub fn endpoints(self, env: &Environment) -> &ServiceEndpoints {
        match self {
            Service::Postgres => &env.endpoints.postgres,
            Service::Redis => &env.endpoints.redis,
            Service::Rabbitmq => &env.endpoints.rabbitmq,
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom resource kind: group, version, kind, plural.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// API group.
    pub group: &'static str,
    /// Served version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
}

impl Kind {
    /// The `ApiResource` for `Api<DynamicObject>` (no discovery round trip).
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// `plural.group`, as RBAC spells the resource.
    pub fn resource(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// `plural.group/name`, as kubectl spells a resource.
    pub fn describe(&self, name: &str) -> String {
        format!("{}.{}/{name}", self.plural, self.group)
    }
}

/// CloudNativePG `Cluster`.
pub const CNPG_CLUSTER: Kind = Kind {
    group: "postgresql.cnpg.io",
    version: "v1",
    kind: "Cluster",
    plural: "clusters",
};
/// redis-operator `RedisReplication`.
pub const REDIS_REPLICATION: Kind = Kind {
    group: "redis.redis.opstreelabs.in",
    version: "v1beta2",
    kind: "RedisReplication",
    plural: "redisreplications",
};
/// redis-operator `RedisSentinel`.
pub const REDIS_SENTINEL: Kind = Kind {
    group: "redis.redis.opstreelabs.in",
    version: "v1beta2",
    kind: "RedisSentinel",
    plural: "redissentinels",
};
/// RabbitMQ cluster-operator `RabbitmqCluster`.
pub const RABBITMQ_CLUSTER: Kind = Kind {
    group: "rabbitmq.com",
    version: "v1beta1",
    kind: "RabbitmqCluster",
    plural: "rabbitmqclusters",
};

/// PostgreSQL: the CNPG Cluster's name.
pub const PG_CLUSTER: &str = "database";
/// PostgreSQL: the read-write Service (selects the primary).
pub const PG_SERVICE_RW: &str = "database-rw";
/// PostgreSQL: the read-only Service (selects replicas).
pub const PG_SERVICE_RO: &str = "database-ro";
/// PostgreSQL: the application user's Secret.
pub const PG_SECRET_APP: &str = "database-app";
/// PostgreSQL: the superuser Secret (only with `enableSuperuserAccess: true`).
pub const PG_SECRET_SUPERUSER: &str = "database-superuser";
/// PostgreSQL port.
pub const PG_PORT: u16 = 5432;
/// Label selecting the Cluster's instance pods.
pub const PG_POD_SELECTOR: &str = "cnpg.io/cluster=database";

/// Redis: the RedisReplication's (and its StatefulSet's) name.
pub const REDIS_REPLICATION_NAME: &str = "redis";
/// Redis: the Service selecting the master pod.
pub const REDIS_SERVICE_MASTER: &str = "redis-master";
/// Redis: where the password lives when the RedisReplication names no `redisSecret` (upstream examples).
pub const REDIS_DEFAULT_SECRET: (&str, &str) = ("redis-secret", "password");
/// Redis port.
pub const REDIS_PORT: u16 = 6379;
/// Sentinel port.
pub const SENTINEL_PORT: u16 = 26379;
/// Sentinel master group when `redisSentinelConfig.masterGroupName` is unset (CRD default).
pub const SENTINEL_DEFAULT_GROUP: &str = "myMaster";
/// Label selecting the replication's pods.
pub const REDIS_POD_SELECTOR: &str = "app=redis";

/// RabbitMQ: the RabbitmqCluster's (and client Service's) name.
pub const RABBITMQ_CLUSTER_NAME: &str = "queue";
/// RabbitMQ: the client Service.
pub const RABBITMQ_SERVICE: &str = "queue";
/// RabbitMQ: the default user's Secret.
pub const RABBITMQ_SECRET: &str = "queue-default-user";
/// AMQP port.
pub const AMQP_PORT: u16 = 5672;
/// Management (HTTP API and UI) port.
pub const MANAGEMENT_PORT: u16 = 15672;
/// Label selecting the cluster's pods.
pub const RABBITMQ_POD_SELECTOR: &str = "app.kubernetes.io/name=queue";

/// The StatefulSet a standalone `RedisSentinel` named `name` creates.
pub fn sentinel_statefulset(name: &str) -> String {
    format!("{name}-sentinel")
}

/// The Service and port `connect` uses for a service (`--read-only` picks the PostgreSQL replicas).
pub fn connect_target(service: Service, read_only: bool) -> (&'static str, u16) {
    match (service, read_only) {
        (Service::Postgres, false) => (PG_SERVICE_RW, PG_PORT),
        (Service::Postgres, true) => (PG_SERVICE_RO, PG_PORT),
        (Service::Redis, _) => (REDIS_SERVICE_MASTER, REDIS_PORT),
        (Service::Rabbitmq, _) => (RABBITMQ_SERVICE, AMQP_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_describe_like_kubectl() {
        assert_eq!(
            CNPG_CLUSTER.describe(PG_CLUSTER),
            "clusters.postgresql.cnpg.io/database"
        );
        let resource = RABBITMQ_CLUSTER.api_resource();
        assert_eq!(resource.api_version, "rabbitmq.com/v1beta1");
        assert_eq!(resource.plural, "rabbitmqclusters");
        assert_eq!(connect_target(Service::Postgres, true), ("database-ro", 5432));
        assert_eq!(sentinel_statefulset("redis-sentinel"), "redis-sentinel-sentinel");
    }
}

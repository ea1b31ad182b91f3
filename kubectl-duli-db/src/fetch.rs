//! The API reads behind `db status`, all issued at once: for each environment the three custom resources,
//! the RedisSentinels, the StatefulSets and the Redis pods (plus the RabbitMQ pods when live checks will
//! need one), and all environments concurrently — one round of requests however many there are.
//!
//! "Not found" is data (the service is shown as missing, with what to do); any other API failure is an error.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::api::{ApiClient, Call};

use crate::DbError;
use crate::catalog::{self, Kind};

/// Everything `status` reads for one namespace, as JSON values.
#[derive(Debug, Clone, Default)]
pub struct EnvObjects {
    /// CNPG `Cluster` `database`.
    pub cluster: Option<Value>,
    /// `RedisReplication` `redis`.
    pub replication: Option<Value>,
    /// All `RedisSentinel`s of the namespace.
    pub sentinels: Vec<Value>,
    /// All StatefulSets of the namespace.
    pub statefulsets: Vec<Value>,
    /// Redis data and Sentinel pods (`redis_setup_type in (replication, sentinel)`).
    pub redis_pods: Vec<Value>,
    /// `RabbitmqCluster` `queue`.
    pub rabbitmq: Option<Value>,
    /// RabbitMQ pods (read only when live checks follow).
    pub rabbitmq_pods: Vec<Value>,
}

impl EnvObjects {
    /// The StatefulSet called `name`.
    pub fn statefulset(&self, name: &str) -> Option<&Value> {
        self.statefulsets
            .iter()
            .find(|sts| sts.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
    }
}

/// GET a custom resource as JSON; 404 (object or CRD missing) is `None`.
pub async fn get_dynamic(
    api: &ApiClient,
    namespace: &str,
    kind: &Kind,
    name: &str,
) -> Result<Option<Value>, DbError> {
    let objects: Api<DynamicObject> =
        Api::namespaced_with(api.client().clone(), namespace, &kind.api_resource());
    let call = Call::get(&kind.resource(), Some(namespace), name);
    let object = api.get_opt(&call, || objects.get(name)).await?;
    Ok(object.map(|object| to_value(&object)))
}

/// LIST custom resources as JSON; a missing CRD (404) is an empty list.
pub async fn list_dynamic(api: &ApiClient, namespace: &str, kind: &Kind) -> Result<Vec<Value>, DbError> {
    let objects: Api<DynamicObject> =
        Api::namespaced_with(api.client().clone(), namespace, &kind.api_resource());
    list_values(api, &objects, &ListParams::default(), namespace, &kind.resource()).await
}

/// LIST typed objects as JSON values; 404 is an empty list.
pub async fn list_values<K>(
    api: &ApiClient,
    objects: &Api<K>,
    params: &ListParams,
    namespace: &str,
    resource: &str,
) -> Result<Vec<Value>, DbError>
where
    K: Clone + DeserializeOwned + std::fmt::Debug + serde::Serialize,
{
    let call = Call::list(resource, Some(namespace));
    let list = api.get_opt(&call, || objects.list(params)).await?;
    Ok(list
        .map(|list| list.items.iter().map(to_value).collect())
        .unwrap_or_default())
}

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Read everything `status` needs in `namespace`, all requests concurrently.
pub async fn fetch_env(api: &ApiClient, namespace: &str, live: bool) -> Result<EnvObjects, DbError> {
    let pods: Api<Pod> = Api::namespaced(api.client().clone(), namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(api.client().clone(), namespace);
    let redis_pods = ListParams::default().labels("redis_setup_type in (replication,sentinel)");
    let rabbitmq_pods = ListParams::default().labels(catalog::RABBITMQ_POD_SELECTOR);
    let everything = ListParams::default();
    let (cluster, replication, sentinels, statefulsets, redis_pods, rabbitmq, rabbitmq_pods) = tokio::try_join!(
        get_dynamic(api, namespace, &catalog::CNPG_CLUSTER, catalog::PG_CLUSTER),
        get_dynamic(
            api,
            namespace,
            &catalog::REDIS_REPLICATION,
            catalog::REDIS_REPLICATION_NAME
        ),
        list_dynamic(api, namespace, &catalog::REDIS_SENTINEL),
        list_values(api, &statefulsets, &everything, namespace, "statefulsets"),
        list_values(api, &pods, &redis_pods, namespace, "pods"),
        get_dynamic(
            api,
            namespace,
            &catalog::RABBITMQ_CLUSTER,
            catalog::RABBITMQ_CLUSTER_NAME
        ),
        async {
            if live {
                list_values(api, &pods, &rabbitmq_pods, namespace, "pods").await
            } else {
                Ok(Vec::new())
            }
        },
    )?;
    Ok(EnvObjects {
        cluster,
        replication,
        sentinels,
        statefulsets,
        redis_pods,
        rabbitmq,
        rabbitmq_pods,
    })
}

//! Credentials out of the operators' Secrets: CNPG `database-app` (or `database-superuser`), the Secret the
//! `RedisReplication` names in `spec.kubernetesConfig.redisSecret`, and RabbitMQ's `queue-default-user`.
//!
//! A password is a [`Password`]: its `Debug` prints `***` and it has no `Display`, so it cannot reach a log
//! line or a table by accident; code that must hand it on calls [`Password::expose`].

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;
use shared::api::{ApiClient, Call};

use crate::catalog::{self, Service};
use crate::{DbError, fetch};

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Password(value.into())
    }

    /// The secret value, for handing to a client (environment variable, 0600 file, protocol handshake).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Login data for one service, and where it came from.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The service.
    pub service: Service,
    /// The Secret it was read from (`None`: Redis without a password Secret).
    pub secret: Option<String>,
    /// User name (PostgreSQL, RabbitMQ; Redis uses the default user).
    pub user: Option<String>,
    /// Password.
    pub password: Option<Password>,
    /// PostgreSQL database name (`dbname`).
    pub database: Option<String>,
}

/// Decoded `data` of a Secret.
#[derive(Debug, Clone)]
pub struct SecretData {
    /// The Secret's name.
    pub name: String,
    /// The namespace.
    pub namespace: String,
    data: BTreeMap<String, Vec<u8>>,
}

impl SecretData {
    /// From a Secret read as plain JSON (`stringData` is already merged into `data` by the API server). The
    /// values are decoded here, not by the client's deserializer, so a bad one is reported by its key
    /// alone: `get secrets database-app in namespace staging: value of key "junk" is not base64`.
    pub fn from_json(object: &Value, call: &Call, namespace: &str) -> Result<Self, DbError> {
        let bad = |key: &str, problem| DbError::SecretValue {
            call: Box::new(call.clone()),
            key: key.to_string(),
            problem,
        };
        let mut data = BTreeMap::new();
        if let Some(values) = object.get("data").filter(|data| !data.is_null()) {
            let Some(values) = values.as_object() else {
                return Err(bad("data", "a map of base64 strings"));
            };
            for (key, value) in values {
                let text = value.as_str().ok_or_else(|| bad(key, "a string"))?;
                let bytes = BASE64.decode(text).map_err(|_| bad(key, "base64"))?;
                data.insert(key.clone(), bytes);
            }
        }
        Ok(SecretData {
            name: object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            namespace: namespace.to_string(),
            data,
        })
    }

    /// The value of `key` as UTF-8 text, if present.
    pub fn get(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    /// The value of `key`, or an error naming the Secret and key.
    pub fn require(&self, key: &str) -> Result<String, DbError> {
        self.get(key).ok_or_else(|| DbError::MissingKey {
            secret: self.name.clone(),
            namespace: self.namespace.clone(),
            key: key.to_string(),
            hint: String::new(),
        })
    }
}

/// Where the Redis password lives: `spec.kubernetesConfig.redisSecret` of the RedisReplication; `None` when
/// the replication sets none (no password). Without the object, the upstream default `redis-secret`/`password`.
pub fn redis_secret_ref(replication: Option<&Value>) -> Option<(String, String)> {
    let Some(replication) = replication else {
        let (name, key) = catalog::REDIS_DEFAULT_SECRET;
        return Some((name.to_string(), key.to_string()));
    };
    let secret = replication.pointer("/spec/kubernetesConfig/redisSecret")?;
    let name = secret
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())?;
    let key = secret
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .unwrap_or("password");
    Some((name.to_string(), key.to_string()))
}

/// Credentials from a Secret's data. PostgreSQL: `username`, `password`, `dbname`; RabbitMQ: `username`,
/// `password`; Redis: the password under `redis_key`.
pub fn credentials_from(
    service: Service,
    secret: &SecretData,
    redis_key: &str,
) -> Result<Credentials, DbError> {
    let mut credentials = Credentials {
        service,
        secret: Some(secret.name.clone()),
        user: None,
        password: None,
        database: None,
    };
    match service {
        Service::Postgres => {
            credentials.user = Some(
                secret
                    .get("username")
                    .or_else(|| secret.get("user"))
                    .map_or_else(|| secret.require("username"), Ok)?,
            );
            credentials.password = Some(Password::new(secret.require("password")?));
            // The superuser Secret says `dbname: *` (any database): log in to `postgres` then.
            let database = secret
                .get("dbname")
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "app".to_string());
            credentials.database = Some(if database == "*" {
                "postgres".to_string()
            } else {
                database
            });
        }
        Service::Redis => credentials.password = Some(Password::new(secret.require(redis_key)?)),
        Service::Rabbitmq => {
            credentials.user = Some(secret.require("username")?);
            credentials.password = Some(Password::new(secret.require("password")?));
        }
    }
    Ok(credentials)
}

/// Read a Secret; a missing one is `DbError::NotFound` with `hint`.
pub async fn read_secret(
    api: &ApiClient,
    namespace: &str,
    name: &str,
    hint: &str,
) -> Result<SecretData, DbError> {
    // As plain JSON: the typed Secret's deserializer would fail on one bad value without naming its key.
    let secrets: Api<DynamicObject> = Api::namespaced_with(
        api.client().clone(),
        namespace,
        &ApiResource::erase::<Secret>(&()),
    );
    let call = Call::get("secrets", Some(namespace), name);
    match api.get_opt(&call, || secrets.get(name)).await? {
        Some(secret) => {
            let json = serde_json::to_value(&secret).unwrap_or(Value::Null);
            SecretData::from_json(&json, &call, namespace)
        }
        None => Err(DbError::NotFound {
            what: format!("Secret `{name}`"),
            namespace: namespace.to_string(),
            hint: hint.to_string(),
        }),
    }
}

/// What to do when a service's Secret is missing.
pub fn missing_secret_hint(service: Service) -> &'static str {
    match service {
        Service::Postgres => {
            "CloudNativePG creates it with Cluster `database` (unless spec.bootstrap.initdb.secret names another); check `kubectl get cluster database` and the operator's logs"
        }
        Service::Redis => {
            "the RedisReplication's spec.kubernetesConfig.redisSecret names it; create it (the redis-instance chart does) or fix the reference"
        }
        Service::Rabbitmq => {
            "the RabbitMQ cluster operator creates it with RabbitmqCluster `queue`; check `kubectl get rabbitmqcluster queue` and the operator's logs"
        }
    }
}

/// Read the credentials `connect`/`creds` use: `database-app`, the Redis password Secret (none when the
/// RedisReplication sets none), `queue-default-user`.
pub async fn read_credentials(
    api: &ApiClient,
    namespace: &str,
    service: Service,
) -> Result<Credentials, DbError> {
    match service {
        Service::Postgres => {
            let secret = read_secret(
                api,
                namespace,
                catalog::PG_SECRET_APP,
                missing_secret_hint(service),
            )
            .await?;
            credentials_from(service, &secret, "")
        }
        Service::Rabbitmq => {
            let secret = read_secret(
                api,
                namespace,
                catalog::RABBITMQ_SECRET,
                missing_secret_hint(service),
            )
            .await?;
            credentials_from(service, &secret, "")
        }
        Service::Redis => {
            let replication = fetch::get_dynamic(
                api,
                namespace,
                &catalog::REDIS_REPLICATION,
                catalog::REDIS_REPLICATION_NAME,
            )
            .await?;
            match redis_secret_ref(replication.as_ref()) {
                None => Ok(Credentials {
                    service,
                    secret: None,
                    user: None,
                    password: None,
                    database: None,
                }),
                Some((name, key)) => {
                    let secret = read_secret(api, namespace, &name, missing_secret_hint(service)).await?;
                    credentials_from(service, &secret, &key)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, pairs: &[(&str, &str)]) -> SecretData {
        SecretData {
            name: name.to_string(),
            namespace: "staging".to_string(),
            data: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn password_never_prints() {
        let password = Password::new("s3cr3t");
        assert_eq!(format!("{password:?}"), "Password(***)");
        let credentials = Credentials {
            service: Service::Redis,
            secret: None,
            user: None,
            password: Some(password),
            database: None,
        };
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
    }

    #[test]
    fn cnpg_app_secret_gives_user_password_database() {
        let data = secret(
            "database-app",
            &[
                ("username", "app"),
                ("user", "app"),
                ("password", "pw"),
                ("dbname", "app"),
            ],
        );
        let credentials = credentials_from(Service::Postgres, &data, "").unwrap();
        assert_eq!(credentials.user.as_deref(), Some("app"));
        assert_eq!(credentials.database.as_deref(), Some("app"));
        assert_eq!(credentials.password.unwrap().expose(), "pw");
        let err = credentials_from(
            Service::Rabbitmq,
            &secret("queue-default-user", &[("username", "u")]),
            "",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Secret `queue-default-user` in namespace `staging` has no key `password`"
        );
    }

    #[test]
    fn redis_secret_comes_from_the_replication() {
        let rr: Value = serde_json::json!({"spec": {"kubernetesConfig": {"redisSecret": {"name": "redis-auth", "key": "pw"}}}});
        assert_eq!(
            redis_secret_ref(Some(&rr)),
            Some(("redis-auth".into(), "pw".into()))
        );
        let open: Value = serde_json::json!({"spec": {"kubernetesConfig": {"image": "redis"}}});
        assert_eq!(redis_secret_ref(Some(&open)), None);
        assert_eq!(
            redis_secret_ref(None),
            Some(("redis-secret".into(), "password".into()))
        );
    }
}

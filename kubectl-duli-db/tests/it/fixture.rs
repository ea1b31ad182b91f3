//! Seed objects for kube-standin, shaped as the operators create them (CloudNativePG 1.27, redis-operator
//! v0.26, RabbitMQ cluster-operator 2.22; `shared/reference/operators.md`), with each pod's
//! `kube-standin/forward` annotation pointing at a real local server (or a closed port to play "down").

/// Where each pod's port leads, and the Secrets' contents.
#[derive(Debug, Clone)]
pub struct Seed {
    pub namespace: String,
    pub pg_primary: String,
    pub pg_standby: String,
    pub pg_app_password: String,
    pub pg_superuser_password: String,
    pub redis_master: String,
    pub redis_replica: String,
    pub redis_password: String,
    pub sentinel: String,
    pub amqp: String,
    pub management: String,
    pub rabbitmq_user: String,
    pub rabbitmq_password: String,
    /// Leave out these Secrets.
    pub skip_secrets: Vec<&'static str>,
}

const CREATED: &str = "2026-01-01T00:00:00Z";

fn pod(namespace: &str, name: &str, labels: &str, forward: &str, ip: &str) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{{labels}}}
  annotations: {{kube-standin/forward: "{forward}"}}
spec:
  containers: [{{name: main, image: example}}]
status:
  phase: Running
  podIP: {ip}
  conditions:
  - {{type: Ready, status: "True", lastTransitionTime: "{CREATED}"}}
  - {{type: ContainersReady, status: "True", lastTransitionTime: "{CREATED}"}}
"#
    )
}

fn service(namespace: &str, name: &str, selector: &str, ports: &str) -> String {
    format!(
        r#"---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  type: ClusterIP
  selector: {{{selector}}}
  ports: [{ports}]
"#
    )
}

fn statefulset(namespace: &str, name: &str, labels: &str, replicas: u32, ready: u32) -> String {
    format!(
        r#"---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}
spec:
  replicas: {replicas}
  serviceName: {name}-headless
  selector: {{matchLabels: {{{labels}}}}}
  template:
    metadata: {{labels: {{{labels}}}}}
    spec: {{containers: [{{name: main, image: example}}]}}
status: {{replicas: {replicas}, readyReplicas: {ready}, currentReplicas: {replicas}, updatedReplicas: {replicas}, availableReplicas: {ready}, observedGeneration: 1}}
"#
    )
}

impl Seed {
    /// The CNPG Cluster `database` with 2 instances, healthy.
    pub fn cnpg_cluster(&self) -> String {
        let ns = &self.namespace;
        format!(
            r#"---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {{name: database, namespace: {ns}}}
spec:
  instances: 2
  imageName: ghcr.io/cloudnative-pg/postgresql:16.4
  enableSuperuserAccess: true
  storage: {{size: 1Gi, storageClass: do-block-storage}}
  bootstrap: {{initdb: {{database: app, owner: app}}}}
status:
  phase: Cluster in healthy state
  instances: 2
  readyInstances: 2
  currentPrimary: database-1
  targetPrimary: database-1
  currentPrimaryTimestamp: "{CREATED}"
  instanceNames: [database-1, database-2]
  instancesStatus: {{healthy: [database-1, database-2]}}
  writeService: database-rw
  readService: database-r
  latestGeneratedNode: 2
  timelineID: 1
  image: ghcr.io/cloudnative-pg/postgresql:16.4
  conditions:
  - {{type: Ready, status: "True", reason: ClusterIsReady, message: Cluster is Ready, lastTransitionTime: "{CREATED}"}}
"#
        )
    }

    /// The RabbitmqCluster `queue`, ready.
    pub fn rabbitmq_cluster(&self) -> String {
        let ns = &self.namespace;
        format!(
            r#"---
apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata: {{name: queue, namespace: {ns}}}
spec:
  replicas: 1
  image: rabbitmq:3.13-management
status:
  observedGeneration: 1
  quorumStatus: ok
  binding: {{name: queue-default-user}}
  defaultUser:
    secretReference: {{name: queue-default-user, namespace: {ns}, keys: {{username: username, password: password}}}}
    serviceReference: {{name: queue, namespace: {ns}}}
  conditions:
  - {{type: AllReplicasReady, status: "True", reason: AllPodsAreReady, lastTransitionTime: "{CREATED}"}}
  - {{type: ClusterAvailable, status: "True", reason: AtLeastOneEndpointAvailable, lastTransitionTime: "{CREATED}"}}
  - {{type: NoWarnings, status: "True", reason: NoWarnings, lastTransitionTime: "{CREATED}"}}
  - {{type: ReconcileSuccess, status: "True", reason: Success, message: Finish reconciling, lastTransitionTime: "{CREATED}"}}
"#
        )
    }

    fn secret(&self, name: &'static str, type_: &str, labels: &str, data: &[(&str, String)]) -> String {
        if self.skip_secrets.contains(&name) {
            return String::new();
        }
        let ns = &self.namespace;
        let mut text = format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\ntype: {type_}\nstringData:\n"
        );
        for (key, value) in data {
            text.push_str(&format!("  {key}: {}\n", serde_json::to_string(value).unwrap()));
        }
        text
    }

    /// Everything in the namespace: the three services, their pods, Services, StatefulSets and Secrets.
    pub fn yaml(&self) -> String {
        let ns = self.namespace.as_str();
        let mut out = format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n");
        // PostgreSQL (CloudNativePG).
        out.push_str(&self.cnpg_cluster());
        let pg_labels = |pod: &str, role: &str| {
            format!(
                "cnpg.io/cluster: database, cnpg.io/instanceName: {pod}, cnpg.io/podRole: instance, cnpg.io/instanceRole: {role}, role: {role}"
            )
        };
        out.push_str(&pod(
            ns,
            "database-1",
            &pg_labels("database-1", "primary"),
            &format!("5432={}", self.pg_primary),
            "10.244.0.11",
        ));
        out.push_str(&pod(
            ns,
            "database-2",
            &pg_labels("database-2", "replica"),
            &format!("5432={}", self.pg_standby),
            "10.244.0.12",
        ));
        let pg_port = "{name: postgres, port: 5432, protocol: TCP, targetPort: 5432}";
        out.push_str(&service(
            ns,
            "database-rw",
            "cnpg.io/cluster: database, cnpg.io/instanceRole: primary",
            pg_port,
        ));
        out.push_str(&service(
            ns,
            "database-ro",
            "cnpg.io/cluster: database, cnpg.io/instanceRole: replica",
            pg_port,
        ));
        out.push_str(&service(
            ns,
            "database-r",
            "cnpg.io/cluster: database, cnpg.io/podRole: instance",
            pg_port,
        ));
        let pg_secret = |user: &str, password: &str, dbname: &str| {
            vec![
                ("username", user.to_string()),
                ("user", user.to_string()),
                ("password", password.to_string()),
                ("dbname", dbname.to_string()),
                ("host", "database-rw".to_string()),
                ("port", "5432".to_string()),
                ("pgpass", format!("database-rw:5432:{dbname}:{user}:{password}\n")),
                (
                    "uri",
                    format!("postgresql://{user}:{password}@database-rw.{ns}:5432/{dbname}"),
                ),
                (
                    "jdbc-uri",
                    format!(
                        "jdbc:postgresql://database-rw.{ns}:5432/{dbname}?password={password}&user={user}"
                    ),
                ),
                (
                    "fqdn-uri",
                    format!(
                        "postgresql://{user}:{password}@database-rw.{ns}.svc.cluster.local:5432/{dbname}"
                    ),
                ),
            ]
        };
        out.push_str(&self.secret(
            "database-app",
            "kubernetes.io/basic-auth",
            "cnpg.io/cluster: database, cnpg.io/reload: 'true', cnpg.io/userType: app",
            &pg_secret("app", &self.pg_app_password, "app"),
        ));
        out.push_str(&self.secret(
            "database-superuser",
            "kubernetes.io/basic-auth",
            "cnpg.io/cluster: database, cnpg.io/reload: 'true', cnpg.io/userType: superuser",
            &pg_secret("postgres", &self.pg_superuser_password, "*"),
        ));

        // Redis (redis-operator RedisReplication + standalone RedisSentinel).
        out.push_str(&format!(
            r#"---
apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisReplication
metadata: {{name: redis, namespace: {ns}}}
spec:
  clusterSize: 2
  kubernetesConfig:
    image: quay.io/opstree/redis:v7.0.15
    imagePullPolicy: IfNotPresent
    redisSecret: {{name: redis-secret, key: password}}
status:
  masterNode: redis-0
  connectionInfo: {{host: redis-master.{ns}.svc.cluster.local, port: 6379}}
---
apiVersion: redis.redis.opstreelabs.in/v1beta2
kind: RedisSentinel
metadata: {{name: redis-sentinel, namespace: {ns}}}
spec:
  clusterSize: 1
  kubernetesConfig:
    image: quay.io/opstree/redis-sentinel:v7.0.15
  redisSentinelConfig:
    redisReplicationName: redis
    masterGroupName: mymaster
    redisReplicationPassword:
      secretKeyRef: {{name: redis-secret, key: password}}
"#
        ));
        let redis_labels = "app: redis, redis_setup_type: replication, role: replication";
        out.push_str(&statefulset(ns, "redis", redis_labels, 2, 2));
        out.push_str(&pod(
            ns,
            "redis-0",
            &format!("{redis_labels}, redis-role: master"),
            &format!("6379={}", self.redis_master),
            "127.0.0.1",
        ));
        out.push_str(&pod(
            ns,
            "redis-1",
            &format!("{redis_labels}, redis-role: slave"),
            &format!("6379={}", self.redis_replica),
            "10.244.0.22",
        ));
        let redis_port = "{name: redis-client, port: 6379, protocol: TCP, targetPort: 6379}";
        out.push_str(&service(ns, "redis", redis_labels, redis_port));
        out.push_str(&service(
            ns,
            "redis-master",
            &format!("{redis_labels}, redis-role: master"),
            redis_port,
        ));
        out.push_str(&service(
            ns,
            "redis-replica",
            &format!("{redis_labels}, redis-role: slave"),
            redis_port,
        ));
        let sentinel_labels = "app: redis-sentinel-sentinel, redis_setup_type: sentinel, role: sentinel";
        out.push_str(&statefulset(ns, "redis-sentinel-sentinel", sentinel_labels, 1, 1));
        out.push_str(&pod(
            ns,
            "redis-sentinel-sentinel-0",
            sentinel_labels,
            &format!("26379={}", self.sentinel),
            "10.244.0.31",
        ));
        out.push_str(&service(
            ns,
            "redis-sentinel-sentinel",
            sentinel_labels,
            "{name: sentinel-client, port: 26379, protocol: TCP, targetPort: 26379}",
        ));
        out.push_str(&self.secret(
            "redis-secret",
            "Opaque",
            "app: redis",
            &[("password", self.redis_password.clone())],
        ));

        // RabbitMQ (cluster-operator).
        out.push_str(&self.rabbitmq_cluster());
        let rabbit_labels = "app.kubernetes.io/name: queue, app.kubernetes.io/component: rabbitmq, app.kubernetes.io/part-of: rabbitmq";
        out.push_str(&statefulset(ns, "queue-server", rabbit_labels, 1, 1));
        out.push_str(&pod(
            ns,
            "queue-server-0",
            rabbit_labels,
            &format!("5672={},15672={}", self.amqp, self.management),
            "10.244.0.41",
        ));
        out.push_str(&service(
            ns,
            "queue",
            "app.kubernetes.io/name: queue",
            "{name: amqp, port: 5672, protocol: TCP, targetPort: 5672}, {name: management, port: 15672, protocol: TCP, targetPort: 15672}, {name: prometheus, port: 15692, protocol: TCP, targetPort: 15692}",
        ));
        let user = &self.rabbitmq_user;
        let password = &self.rabbitmq_password;
        out.push_str(&self.secret(
            "queue-default-user",
            "Opaque",
            rabbit_labels,
            &[
                ("username", user.clone()),
                ("password", password.clone()),
                (
                    "default_user.conf",
                    format!("default_user = {user}\ndefault_pass = {password}\n"),
                ),
                ("provider", "rabbitmq".into()),
                ("type", "rabbitmq".into()),
                ("host", format!("queue.{ns}.svc")),
                ("port", "5672".into()),
                (
                    "connection_string",
                    format!("amqp://{user}:{password}@queue.{ns}.svc:5672/"),
                ),
            ],
        ));
        out
    }
}

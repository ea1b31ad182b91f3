//! The library entry points: [`StandIn::builder`] → [`Builder`] → [`StandIn`], the running server.
//!
//! Building only records what to load; [`Builder::start`] parses CRDs and seeds (reporting every
//! problem as an [`Error`]), binds `127.0.0.1`, starts the HTTP server and, if asked, the operator
//! simulation. Dropping the [`StandIn`] stops the server and ends open watches.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::faults::{Fault, Faults, RequestLog, RequestRecord};
use crate::store::{Store, parse_yaml_docs};

/// State shared by all request handlers.
pub struct AppState {
    /// The objects.
    pub store: Store,
    /// Active fault rules.
    pub faults: Faults,
    /// Served requests.
    pub log: RequestLog,
    /// Flips to `true` on shutdown (ends watches).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The bound address.
    pub addr: SocketAddr,
    /// The upstream OpenAPI document (`/openapi/v2`, `/openapi/v3`), when found.
    pub openapi: Option<Arc<crate::openapi::Upstream>>,
    /// Reads protobuf request bodies.
    pub protobuf: crate::protobuf::Decoder,
}

enum Source {
    File(PathBuf),
    Dir(PathBuf),
    Text(String, String),
}

/// Configures a stand-in before it starts. Every method is cheap; files are read in [`Builder::start`].
#[must_use]
pub struct Builder {
    crds: Vec<Source>,
    seeds: Vec<Source>,
    forwards: Vec<(String, String, u16, String)>,
    proxies: Vec<(String, String, String)>,
    simulate: Option<Duration>,
    bridges: crate::simulate::Bridges,
    faults: Vec<Fault>,
    denials: Vec<crate::authz::Denial>,
    port: u16,
    openapi: Option<PathBuf>,
    protos: Option<PathBuf>,
    sealing_keys: Vec<PathBuf>,
    argocd: crate::controllers::argocd_repo::RepoServerConfig,
}

/// A running in-memory Kubernetes API server on `127.0.0.1`.
pub struct StandIn {
    addr: SocketAddr,
    store: Store,
    faults: Faults,
    log: RequestLog,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<()>,
    simulation: Option<JoinHandle<()>>,
    controllers: JoinHandle<()>,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").field("url", &self.url()).finish()
    }
}

impl StandIn {
    /// Starts configuring a stand-in.
    pub fn builder() -> Builder {
        Builder {
            crds: Vec::new(),
            seeds: Vec::new(),
            forwards: Vec::new(),
            proxies: Vec::new(),
            simulate: None,
            bridges: Default::default(),
            faults: Vec::new(),
            denials: Vec::new(),
            port: 0,
            openapi: None,
            protos: None,
            sealing_keys: Vec::new(),
            argocd: crate::controllers::argocd_repo::RepoServerConfig {
                repos: Vec::new(),
                mirrors: Vec::new(),
                helm: PathBuf::from("helm"),
            },
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this server: cluster, user without credentials and context all named `standin`,
    /// context namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }

    /// Writes [`StandIn::kubeconfig_yaml`] to `dir/kubeconfig` and returns that path.
    pub fn write_kubeconfig(&self, dir: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let path = dir.as_ref().join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml()).map_err(|source| Error::Io {
            action: "write",
            path: path.display().to_string(),
            source,
        })?;
        Ok(path)
    }

    /// A kube client configuration for this server (default retries on: 429/503/504 are retried).
    pub fn client_config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url().parse().expect("a valid URL"));
        config.default_namespace = "default".into();
        config
    }

    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.client_config()).expect("a plain-HTTP client always builds")
    }

    /// The object store, to seed, inspect or change objects while the server runs.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes one object report not-ready with `message` in the simulation (e.g. `("cluster", "staging",
    /// "database", "disk full")`); takes effect after the simulation delay.
    pub fn set_unready(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        message: &str,
    ) -> Result<(), Error> {
        crate::simulate::set_unready(&self.store, resource, namespace, name, Some(message.to_string()))
    }

    /// Removes an unready override.
    pub fn clear_unready(&self, resource: &str, namespace: &str, name: &str) -> Result<(), Error> {
        crate::simulate::set_unready(&self.store, resource, namespace, name, None)
    }

    /// Adds a fault rule at run time.
    pub fn add_fault(&self, fault: Fault) {
        self.faults.add(fault);
    }

    /// Removes all fault rules.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Refuses `verb` on `resource` (plural, `plural/sub`, `plural.group`, `*`) with 403, also in access reviews.
    pub fn deny(&self, verb: &str, resource: &str) {
        self.store
            .lock()
            .overrides
            .denials
            .push(crate::authz::Denial::new(verb, resource));
    }

    /// Refuses `verb` on `resource` only in `namespace`.
    pub fn deny_in(&self, verb: &str, resource: &str, namespace: &str) {
        self.store.lock().overrides.denials.push(crate::authz::Denial {
            namespace: Some(namespace.into()),
            ..crate::authz::Denial::new(verb, resource)
        });
    }

    /// Sets a port-forward target at run time.
    pub fn port_forward(&self, namespace: &str, pod: &str, port: u16, addr: &str) {
        self.store
            .lock()
            .overrides
            .forwards
            .insert((namespace.into(), pod.into(), port), addr.into());
    }

    /// Sets a service-proxy target at run time.
    pub fn proxy(&self, namespace: &str, service: &str, base_url: &str) {
        self.store
            .lock()
            .overrides
            .proxies
            .insert((namespace.into(), service.into()), base_url.into());
    }

    /// The requests served so far (admin endpoints excluded).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.all()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// Stops the server now (also done on drop).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        self.server.abort();
        if let Some(sim) = &self.simulation {
            sim.abort();
        }
        self.controllers.abort();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The project's CRD collection, `shared/crds` beside the repository (`<repo>/../shared/crds`), resolved
/// from this crate's location so every crate's tests find the same files. Never copy them into the repo.
pub fn shared_crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("crds")
}

/// One operator's folder in [`shared_crds_dir`], e.g. `shared_crds("cloudnative-pg")`.
pub fn shared_crds(folder: &str) -> PathBuf {
    shared_crds_dir().join(folder)
}

/// The kubeconfig text for a server URL.
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: {url}
users:
- name: standin
  user: {{}}
contexts:
- name: standin
  context:
    cluster: standin
    user: standin
    namespace: default
current-context: standin
preferences: {{}}
"
    )
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    })
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        action: "list",
        path: dir.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(yaml_files(&p)?);
        } else if p
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Parsed YAML files, by path and modification time: test suites start many stand-ins with the same
/// (large) CRD files, and parsing them dominates start-up in debug builds.
fn parse_file_cached(path: &Path) -> Result<Arc<Vec<Value>>, Error> {
    type Cache = Mutex<HashMap<(PathBuf, Option<SystemTime>), Arc<Vec<Value>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let key = (path.to_path_buf(), mtime);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let docs = Arc::new(parse_yaml_docs(&read(path)?, &path.display().to_string())?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, docs.clone());
    Ok(docs)
}

fn is_crd(d: &Value) -> bool {
    d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
}

/// The documents of a source; `crds_only` keeps just CustomResourceDefinitions (CRD folders hold other files).
fn documents(source: &Source, crds_only: bool) -> Result<Vec<Value>, Error> {
    let keep = |docs: &[Value], only: bool| -> Vec<Value> {
        docs.iter().filter(|d| !only || is_crd(d)).cloned().collect()
    };
    Ok(match source {
        Source::File(p) => keep(&parse_file_cached(p)?, crds_only),
        Source::Text(origin, text) => keep(&parse_yaml_docs(text, origin)?, crds_only),
        Source::Dir(d) => {
            let mut docs = Vec::new();
            for f in yaml_files(d)? {
                // In a directory, files that are not CRDs are skipped rather than fatal.
                docs.extend(keep(&parse_file_cached(&f)?, true));
            }
            docs
        }
    })
}

impl Builder {
    /// Loads the CustomResourceDefinitions in a YAML file (multi-document allowed).
    pub fn crd_file(mut self, path: impl AsRef<Path>) -> Self {
        self.crds.push(Source::File(path.as_ref().to_path_buf()));
        self
    }

    /// Loads every CRD in `*.yaml`/`*.yml` files under a directory, recursively.
    pub fn crd_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.crds.push(Source::Dir(dir.as_ref().to_path_buf()));
        self
    }

    /// Loads CRDs from YAML text.
    pub fn crd_yaml(mut self, yaml: &str) -> Self {
        self.crds.push(Source::Text("crd_yaml".into(), yaml.to_string()));
        self
    }

    /// Seeds objects from multi-document YAML: created as through the API (defaults, uid, resourceVersion,
    /// Secret `stringData` folded into `data`) but keeping any `status` given.
    pub fn seed_yaml(mut self, yaml: &str) -> Self {
        self.seeds
            .push(Source::Text("seed_yaml".into(), yaml.to_string()));
        self
    }

    /// Seeds objects from a YAML file.
    pub fn seed_file(mut self, path: impl AsRef<Path>) -> Self {
        self.seeds.push(Source::File(path.as_ref().to_path_buf()));
        self
    }

    /// Bridges port-forwards to `pod`'s `port` to a real TCP address (like the pod annotation
    /// `kube-standin/forward: "5432=127.0.0.1:5432"`).
    pub fn port_forward(mut self, namespace: &str, pod: &str, port: u16, addr: &str) -> Self {
        self.forwards
            .push((namespace.into(), pod.into(), port, addr.into()));
        self
    }

    /// Relays the service proxy of `service` to `base_url` (like the Service annotation
    /// `kube-standin/proxy: "http://127.0.0.1:PORT"`).
    pub fn proxy(mut self, namespace: &str, service: &str, base_url: &str) -> Self {
        self.proxies
            .push((namespace.into(), service.into(), base_url.into()));
        self
    }

    /// Turns the operator simulation on: objects become ready `delay` after they appear or change, and the
    /// Deployment, StatefulSet, Job and Argo CD controllers run (see [`crate::controllers`]).
    pub fn simulate_ready(mut self, delay: Duration) -> Self {
        self.simulate = Some(delay);
        self
    }

    /// Points the pods the operator simulation creates at a real local server (`kube-standin serve
    /// --bridge`): CloudNativePG instance pods forward 5432 to [`Bridge::Postgres`] (where the simulated
    /// operator also creates the owner role and database, as initdb does), redis-operator data pods 6379
    /// to [`Bridge::Redis`] (and report its host as their `status.podIP`), Sentinel pods 26379 to
    /// [`Bridge::RedisSentinel`], RabbitMQ server pods 5672 to [`Bridge::Rabbitmq`] (whose
    /// credentials also fill `NAME-default-user`) and 15672 to [`Bridge::RabbitmqManagement`]. Repeatable;
    /// the last bridge per service wins. The simulated pods carry it as the annotation
    /// [`crate::portforward::FORWARD_ANNOTATION`]; without [`Builder::simulate_ready`] there are no such
    /// pods and [`Builder::start`] fails.
    ///
    /// [`Bridge::Postgres`]: crate::simulate::Bridge::Postgres
    /// [`Bridge::Redis`]: crate::simulate::Bridge::Redis
    /// [`Bridge::RedisSentinel`]: crate::simulate::Bridge::RedisSentinel
    /// [`Bridge::Rabbitmq`]: crate::simulate::Bridge::Rabbitmq
    /// [`Bridge::RabbitmqManagement`]: crate::simulate::Bridge::RabbitmqManagement
    pub fn bridge(mut self, bridge: crate::simulate::Bridge) -> Self {
        self.bridges.add(bridge);
        self
    }

    /// Adds a fault rule from the start.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Refuses `verb` on `resource` with 403 (see [`StandIn::deny`]).
    pub fn deny(mut self, verb: &str, resource: &str) -> Self {
        self.denials.push(crate::authz::Denial::new(verb, resource));
        self
    }

    /// Adds a parsed `VERB:RESOURCE[:NAMESPACE]` denial (the `--deny` flag of `kube-standin serve`).
    pub fn denial(mut self, denial: crate::authz::Denial) -> Self {
        self.denials.push(denial);
        self
    }

    /// A sealing key for the sealed-secrets controller (PEM RSA private key, optionally followed by its
    /// certificate); repeatable, the last one is active (`/v1/cert.pem`, `/v1/rotate`), all decrypt. Turns
    /// the controller on even without [`Builder::simulate_ready`]; with neither it does not run, and with
    /// only the simulation it makes a key of [`crate::sealing::GENERATED_KEY_BITS`] on first use.
    pub fn sealing_key(mut self, path: impl AsRef<Path>) -> Self {
        self.sealing_keys.push(path.as_ref().to_path_buf());
        self
    }

    /// Serves a repository to the Argo CD controller (`--argocd REPO_URL=DIR`): Applications whose
    /// `repoURL` is this one are rendered from the directory with real helm and applied, instead of
    /// reporting what is already there (see [`crate::controllers::argocd_sync`]). Needs
    /// [`Builder::simulate_ready`].
    pub fn argocd_repo(mut self, repo: crate::controllers::argocd_repo::ServedRepo) -> Self {
        self.argocd.repos.push(repo);
        self
    }

    /// A chart mirror for the Argo CD repo-server's dependency pulls (`--chart-mirror FROM=TO`).
    pub fn chart_mirror(mut self, mirror: crate::controllers::argocd_repo::ChartMirror) -> Self {
        self.argocd.mirrors.push(mirror);
        self
    }

    /// The helm binary the Argo CD repo-server runs (default `helm` on `PATH`).
    pub fn helm_binary(mut self, helm: impl AsRef<Path>) -> Self {
        self.argocd.helm = helm.as_ref().to_path_buf();
        self
    }

    /// Reads protobuf bodies with the Kubernetes `.proto` files under `dir` instead of
    /// [`crate::shared_protos_dir`]; a missing folder fails [`Builder::start`].
    pub fn protos_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.protos = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Serves OpenAPI built from this Kubernetes OpenAPI v2 document (swagger.json) instead of
    /// [`crate::openapi::shared_openapi_file`]; a missing or malformed file then fails [`Builder::start`].
    pub fn openapi_file(mut self, path: impl AsRef<Path>) -> Self {
        self.openapi = Some(path.as_ref().to_path_buf());
        self
    }

    /// Binds this port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Loads everything and starts serving on `127.0.0.1`.
    pub async fn start(self) -> Result<StandIn, Error> {
        let protos = match &self.protos {
            Some(dir) if !dir.is_dir() => {
                return Err(Error::Start(format!(
                    "the protobuf schema folder {} does not exist: pass --protos DIR with the Kubernetes .proto files",
                    dir.display()
                )));
            }
            Some(dir) => dir.clone(),
            // Without the default folder the server still runs; protobuf bodies then get a 415 saying why.
            None => crate::protobuf::shared_protos_dir(),
        };
        let protobuf = crate::protobuf::Decoder::new(protos);
        if protobuf.dir().is_dir() {
            protobuf.warm_up();
        }
        if !self.bridges.is_empty() && self.simulate.is_none() {
            return Err(Error::Start(
                "bridges point the pods the operator simulation creates at real servers, but the simulation is off: call Builder::simulate_ready (kube-standin serve: --simulate-ready)".into(),
            ));
        }
        let store = Store::new();
        for source in &self.crds {
            for doc in documents(source, true)? {
                store.insert(doc)?;
            }
        }
        for source in &self.seeds {
            for doc in documents(source, false)? {
                store.insert(doc)?;
            }
        }
        {
            let mut st = store.lock();
            for (ns, pod, port, addr) in self.forwards {
                st.overrides.forwards.insert((ns, pod, port), addr);
            }
            for (ns, svc, url) in self.proxies {
                st.overrides.proxies.insert((ns, svc), url);
            }
            st.overrides.denials.extend(self.denials);
            if self.simulate.is_some() || !self.sealing_keys.is_empty() {
                let keys = self
                    .sealing_keys
                    .iter()
                    .map(|path| crate::sealing::SealingKey::from_pem_file(path))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(Error::Start)?;
                st.overrides.sealing = Some(std::sync::Arc::new(crate::sealing::KeyRing::new(keys)));
            }
        }
        // The upstream document is read here and parsed once per process when first needed; without it
        // OpenAPI stays minimal.
        let openapi = match &self.openapi {
            Some(path) => {
                // A document asked for by name must be usable: parse it now to report a bad one.
                let up = crate::openapi::Upstream::load(path)?;
                up.parsed().map_err(Error::Start)?;
                Some(up)
            }
            None => {
                let default = crate::openapi::shared_openapi_file();
                match default.is_file() {
                    true => Some(crate::openapi::Upstream::load(&default)?),
                    false => None,
                }
            }
        };
        store.lock().openapi = openapi.clone();
        let faults = Faults::default();
        self.faults.into_iter().for_each(|f| faults.add(f));
        let log = RequestLog::default();

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|e| Error::Start(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| Error::Start(e.to_string()))?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            store: store.clone(),
            faults: faults.clone(),
            log: log.clone(),
            shutdown: shutdown_rx,
            addr,
            openapi,
            protobuf,
        });
        let app = crate::handlers::router(state);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("kube-standin server failed: {e}");
            }
        });
        let argocd = (!self.argocd.repos.is_empty()).then_some(self.argocd);
        let controllers = crate::controllers::spawn(store.clone(), self.simulate, argocd);
        let bridges = self.bridges;
        let simulation = self
            .simulate
            .map(|delay| crate::simulate::spawn(store.clone(), delay, bridges));
        Ok(StandIn {
            addr,
            store,
            faults,
            log,
            shutdown: shutdown_tx,
            server,
            simulation,
            controllers,
        })
    }
}

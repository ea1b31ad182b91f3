//! `down`: take an environment away — its Applications and their instances in reverse wave order
//! (applications before the data services they use), then its AppProject, then its namespace.
//!
//! Only objects of this environment are touched: Applications labelled `environment=<env>` and
//! `duli.one/scope=environment` whose destination is the environment's namespace (any other is skipped with
//! a warning), and their objects in that namespace. The shared operators and platform charts stay unless
//! `--include-platform`, which is refused while another environment still exists. Production asks for the
//! environment's name to be typed (or `--yes`); without a terminal and without `--yes` it refuses.

use std::io::Write;

use crate::write_document;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use serde::Serialize;
use serde_json::Value;

use crate::apply::{ObjectId, Resolver};
use crate::components::{self, Snapshot};
use crate::desired::{self, Desired, Scope};
use crate::helm::Helm;
use crate::log::PROGRESS;
use crate::platform::PlatformError;
use crate::wait::watch_until;
use crate::{Context, EnvError};
use shared::api::{ApiError, Call};
use shared::confirm::{self, Confirmation};
use shared::duration::human as human_duration;
use shared::duration::parse_duration;
use shared::environment::Environment;
use shared::output::{self, OutputFormat};

/// Argo CD's cascade-delete finalizer.
pub const ARGOCD_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// `down` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DownOptions {
    /// The environment.
    pub env: String,
    /// Also remove the shared operators and platform charts (refused while another environment exists).
    #[arg(long)]
    pub include_platform: bool,
    /// How long to wait for deletions.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// A platform catalog to use instead of gitops/platform.yml.
    #[arg(long, value_name = "FILE")]
    pub platform_file: Option<PathBuf>,
}

/// Why `down` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DownError {
    /// Another environment still uses the shared platform.
    #[error(
        "refusing --include-platform: {} still use the shared operators and platform charts; take them down first \
         (`kubectl duli env down NAME`), or run without --include-platform",
        users.join(", ")
    )]
    PlatformInUse {
        /// `env (why)` per environment still using the platform.
        users: Vec<String>,
    },
    /// Objects did not go away in time.
    #[error("timed out after {} waiting for {what} to be deleted; {hint}", human_duration(*waited))]
    Timeout {
        /// What is still there.
        what: String,
        /// What usually holds it and how to look.
        hint: String,
        /// How long it waited.
        waited: Duration,
    },
    /// Uninstalling a platform chart failed.
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// One step of the teardown.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was removed (e.g. `wave 5`, `namespace`).
    pub step: String,
    /// The objects deleted.
    pub deleted: Vec<ObjectId>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// What `down` did.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    /// The environment.
    pub environment: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Applications skipped because they deploy outside the environment's namespace.
    pub skipped: Vec<String>,
    /// Total seconds.
    pub seconds: f64,
}

/// Run `down`; `yes` (`--yes`) stands for the typed confirmation prod asks for.
pub async fn down(ctx: &Context, opts: &DownOptions, yes: bool) -> Result<DownReport, EnvError> {
    let started = Instant::now();
    let env = crate::load_env(&ctx.repo, &opts.env)?;
    let desired = Desired::load(&ctx.repo, &env, opts.platform_file.as_deref())?;
    let action = if opts.include_platform {
        "take down (with the shared platform)"
    } else {
        "take down"
    };
    tracing_indicatif::suspend_tracing_indicatif(|| {
        confirm::guard(&env, action, yes, Confirmation::TypeName)
    })?;
    let resolver = Resolver::new(ctx.api.clone());
    if opts.include_platform {
        let users = other_users(ctx, &env, &resolver).await?;
        if !users.is_empty() {
            return Err(DownError::PlatformInUse { users }.into());
        }
    }
    let deleter = Deleter::new(
        resolver.clone(),
        tokio::time::Instant::now() + opts.timeout,
        started,
    );
    let mut steps = Vec::new();
    let mut skipped = Vec::new();

    // 1. The environment's Applications and their objects, highest wave first.
    let apps = environment_applications(&resolver, &desired).await?;
    let mut by_wave: BTreeMap<i32, Vec<(desired::Component, Value)>> = BTreeMap::new();
    for (component, live) in apps {
        if component.destination != env.namespace {
            tracing::warn!(
                "skipping Application {}: it deploys to namespace {}, not {}",
                component.app,
                component.destination,
                env.namespace
            );
            skipped.push(component.app.clone());
            continue;
        }
        by_wave.entry(component.wave).or_default().push((component, live));
    }
    let namespace_snapshot = Snapshot::take(&resolver, &env.namespace).await?;
    for (wave, apps) in by_wave.into_iter().rev() {
        let t = Instant::now();
        let mut targets: Vec<Value> = Vec::new();
        for (component, live) in &apps {
            targets.push(live.clone());
            targets.extend(
                namespace_snapshot
                    .objects()
                    .iter()
                    .filter(|o| components::owns(component, Some(live), o))
                    .cloned(),
            );
        }
        let apps_named: Vec<&str> = apps.iter().map(|(c, _)| c.app.as_str()).collect();
        tracing::info!(target: PROGRESS, "wave {wave}: deleting {} …", apps_named.join(", "));
        let deleted = deleter.delete_all(&targets).await?;
        tracing::info!(target: PROGRESS, "✓ wave {wave}: deleted {}", names(&deleted));
        steps.push(Step {
            step: format!("wave {wave}"),
            deleted,
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    // 2. The environment's AppProject, unless something else still uses it.
    let t = Instant::now();
    if let Some(project) = project_to_delete(&resolver, &env).await? {
        let deleted = deleter.delete_all(&[project]).await?;
        steps.push(Step {
            step: "project".into(),
            deleted,
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    // 3. The namespace, with whatever is left in it.
    let t = Instant::now();
    if let Some(namespace) = get(&resolver, "", "v1", "Namespace", None, &env.namespace).await? {
        let deleted = deleter.delete_all(&[namespace]).await?;
        tracing::info!(target: PROGRESS, "✓ namespace {} deleted", env.namespace);
        steps.push(Step {
            step: "namespace".into(),
            deleted,
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    // 4. Optionally the shared platform: shared Applications, then the helm releases, then their namespaces.
    if opts.include_platform {
        let shared_apps = shared_applications(&resolver, &desired).await?;
        let mut by_wave: BTreeMap<i32, Vec<Value>> = BTreeMap::new();
        for (component, live) in shared_apps {
            by_wave.entry(component.wave).or_default().push(live);
        }
        for (wave, apps) in by_wave.into_iter().rev() {
            let t = Instant::now();
            let deleted = deleter.delete_all(&apps).await?;
            steps.push(Step {
                step: format!("shared wave {wave}"),
                deleted,
                seconds: t.elapsed().as_secs_f64(),
            });
        }
        let t = Instant::now();
        let helm = Helm::locate(&ctx.target, &ctx.cluster.context)
            .map_err(|err| DownError::from(PlatformError::from(err)))?
            .until(ctx.api.deadline());
        let mut removed = Vec::new();
        for chart in desired.platform.iter().rev() {
            helm.run(&[
                "uninstall".into(),
                chart.name.clone(),
                "-n".into(),
                chart.namespace.clone(),
                "--ignore-not-found".into(),
                "--wait".into(),
            ])
            .await
            .map_err(|err| DownError::from(PlatformError::from(err)))?;
            removed.push(ObjectId {
                api_version: "helm".into(),
                kind: "Release".into(),
                namespace: Some(chart.namespace.clone()),
                name: chart.name.clone(),
            });
        }
        steps.push(Step {
            step: "platform charts".into(),
            deleted: removed,
            seconds: t.elapsed().as_secs_f64(),
        });
        let t = Instant::now();
        let shared_namespaces = list(
            &resolver,
            "",
            "v1",
            "Namespace",
            None,
            "environment=shared,app.kubernetes.io/managed-by=duli",
        )
        .await?;
        let deleted = deleter.delete_all(&shared_namespaces).await?;
        steps.push(Step {
            step: "shared namespaces".into(),
            deleted,
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    Ok(DownReport {
        environment: env.name,
        steps,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn names(ids: &[ObjectId]) -> String {
    if ids.is_empty() {
        "nothing".into()
    } else {
        ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// The environment's live Applications: labelled for it, or named like one it renders.
async fn environment_applications(
    resolver: &Resolver,
    desired: &Desired,
) -> Result<Vec<(desired::Component, Value)>, EnvError> {
    applications(resolver, desired, Scope::Environment).await
}

async fn shared_applications(
    resolver: &Resolver,
    desired: &Desired,
) -> Result<Vec<(desired::Component, Value)>, EnvError> {
    applications(resolver, desired, Scope::Shared).await
}

async fn applications(
    resolver: &Resolver,
    desired: &Desired,
    scope: Scope,
) -> Result<Vec<(desired::Component, Value)>, EnvError> {
    let mut namespaces: Vec<String> = desired
        .components
        .iter()
        .filter_map(|c| c.object.metadata.namespace.clone())
        .collect();
    namespaces.push(desired.env.gitops.argocd_namespace.clone());
    namespaces.sort();
    namespaces.dedup();
    let rendered: Vec<&str> = desired
        .components
        .iter()
        .filter(|c| c.scope == scope)
        .map(|c| c.app.as_str())
        .collect();
    let mut found: BTreeMap<String, (desired::Component, Value)> = BTreeMap::new();
    for namespace in namespaces {
        for app in list(
            resolver,
            "argoproj.io",
            "v1alpha1",
            "Application",
            Some(&namespace),
            "",
        )
        .await?
        {
            let Ok(object) = serde_json::from_value::<DynamicObject>(app.clone()) else {
                continue;
            };
            let env_label = object
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(desired::ENVIRONMENT_LABEL))
                .cloned();
            let Ok(component) = desired::component("(live)", object) else {
                continue;
            };
            let ours = component.scope == scope
                && (scope == Scope::Shared
                    || env_label.as_deref() == Some(desired.env.name.as_str())
                    || rendered.contains(&component.app.as_str()));
            if ours {
                found.insert(component.app.clone(), (component, app));
            }
        }
    }
    Ok(found.into_values().collect())
}

/// The environments other than `env` that still exist (their namespace, or Applications labelled for them).
async fn other_users(ctx: &Context, env: &Environment, resolver: &Resolver) -> Result<Vec<String>, EnvError> {
    let mut users = Vec::new();
    for other in Environment::load_all(&ctx.repo)? {
        if other.name == env.name {
            continue;
        }
        let mut why = Vec::new();
        if get(resolver, "", "v1", "Namespace", None, &other.namespace)
            .await?
            .is_some()
        {
            why.push(format!("namespace {} exists", other.namespace));
        }
        let selector = format!("{}={}", desired::ENVIRONMENT_LABEL, other.name);
        let apps = list(
            resolver,
            "argoproj.io",
            "v1alpha1",
            "Application",
            Some(&other.gitops.argocd_namespace),
            &selector,
        )
        .await?;
        if !apps.is_empty() {
            why.push(format!("{} Applications", apps.len()));
        }
        if !why.is_empty() {
            users.push(format!("{} ({})", other.name, why.join(", ")));
        }
    }
    Ok(users)
}

async fn project_to_delete(resolver: &Resolver, env: &Environment) -> Result<Option<Value>, EnvError> {
    let project = &env.gitops.project;
    if project == "default" || project == "platform" {
        return Ok(None);
    }
    let namespace = &env.gitops.argocd_namespace;
    let Some(live) = get(
        resolver,
        "argoproj.io",
        "v1alpha1",
        "AppProject",
        Some(namespace),
        project,
    )
    .await?
    else {
        return Ok(None);
    };
    let users = list(
        resolver,
        "argoproj.io",
        "v1alpha1",
        "Application",
        Some(namespace),
        "",
    )
    .await?;
    let used = users
        .iter()
        .any(|app| app.pointer("/spec/project").and_then(Value::as_str) == Some(project.as_str()));
    Ok(if used { None } else { Some(live) })
}

async fn get(
    resolver: &Resolver,
    group: &str,
    version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let Some((api, resource)) = resolver.api(&gvk, namespace).await? else {
        return Ok(None);
    };
    let call = Call::for_resource("get", &resource, namespace, Some(name));
    Ok(resolver
        .api_client()
        .call(&call, || api.get_opt(name))
        .await?
        .map(|o| with_type(o, &resource)))
}

/// The objects of a kind in `namespace` matching `selector` (empty: all), `apiVersion` and `kind` set; none
/// when the kind is not served.
pub(crate) async fn list(
    resolver: &Resolver,
    group: &str,
    version: &str,
    kind: &str,
    namespace: Option<&str>,
    selector: &str,
) -> Result<Vec<Value>, ApiError> {
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let Some((api, resource)) = resolver.api(&gvk, namespace).await? else {
        return Ok(Vec::new());
    };
    let call = Call::for_resource("list", &resource, namespace, None);
    let params = if selector.is_empty() {
        ListParams::default()
    } else {
        ListParams::default().labels(selector)
    };
    let list = resolver.api_client().call(&call, || api.list(&params)).await?;
    Ok(list.items.into_iter().map(|o| with_type(o, &resource)).collect())
}

fn with_type(object: DynamicObject, resource: &kube::api::ApiResource) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    value["apiVersion"] = Value::String(resource.api_version.clone());
    value["kind"] = Value::String(resource.kind.clone());
    value
}

/// Deletes objects and waits until they are gone, saying what it still waits on (`down`, `up --prune`).
pub(crate) struct Deleter {
    resolver: Resolver,
    deadline: tokio::time::Instant,
    started: Instant,
}

impl Deleter {
    /// A deleter that gives up at `deadline`; a timeout reports the time since `started`.
    pub(crate) fn new(resolver: Resolver, deadline: tokio::time::Instant, started: Instant) -> Self {
        Deleter {
            resolver,
            deadline,
            started,
        }
    }

    /// Delete `objects` concurrently, then wait until every one is gone; while that takes long, say every
    /// [`PROGRESS_EVERY`] what is still there and which finalizers hold it (Argo CD's cascade can take
    /// minutes, and a blank screen does not say whether anything happens).
    pub(crate) async fn delete_all(&self, objects: &[Value]) -> Result<Vec<ObjectId>, EnvError> {
        let pending: std::sync::Mutex<BTreeMap<String, Vec<String>>> = std::sync::Mutex::new(
            objects
                .iter()
                .filter_map(|o| serde_json::from_value::<DynamicObject>(o.clone()).ok())
                .map(|o| {
                    let finalizers = o.metadata.finalizers.clone().unwrap_or_default();
                    (ObjectId::of(&o).to_string(), finalizers)
                })
                .collect(),
        );
        let work = futures::future::join_all(objects.iter().map(|o| async {
            let result = self.delete(o).await;
            if let Ok(dynamic) = serde_json::from_value::<DynamicObject>(o.clone()) {
                pending
                    .lock()
                    .expect("pending lock")
                    .remove(&ObjectId::of(&dynamic).to_string());
            }
            result
        }));
        tokio::pin!(work);
        let started = Instant::now();
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        let results = loop {
            tokio::select! {
                results = &mut work => break results,
                _ = ticks.tick() => {
                    let pending = pending.lock().expect("pending lock");
                    if !pending.is_empty() {
                        tracing::info!(
                            target: PROGRESS,
                            "  waiting for {} to be deleted ({}s): {}",
                            pending.len(),
                            started.elapsed().as_secs(),
                            waiting_on(&pending)
                        );
                    }
                }
            }
        };
        let mut deleted = Vec::new();
        for result in results {
            if let Some(id) = result? {
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    async fn delete(&self, object: &Value) -> Result<Option<ObjectId>, EnvError> {
        let Ok(dynamic) = serde_json::from_value::<DynamicObject>(object.clone()) else {
            return Ok(None);
        };
        let id = ObjectId::of(&dynamic);
        let Some((api, resource)) = self.resolver.api(&id.gvk(), id.namespace.as_deref()).await? else {
            return Ok(None);
        };
        let call = Call::for_resource("delete", &resource, id.namespace.as_deref(), Some(&id.name));
        let params = DeleteParams::background();
        match self
            .resolver
            .api_client()
            .call(&call, || api.delete(&id.name, &params))
            .await
        {
            Ok(_) => {}
            Err(err) if err.code() == Some(404) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        tracing::debug!("deleting {id}");
        self.await_gone(&api, &resource, &id, dynamic.metadata.uid.as_deref())
            .await?;
        Ok(Some(id))
    }

    async fn await_gone(
        &self,
        api: &Api<DynamicObject>,
        resource: &kube::api::ApiResource,
        id: &ObjectId,
        uid: Option<&str>,
    ) -> Result<(), EnvError> {
        let call = Call::for_resource("watch", resource, id.namespace.as_deref(), Some(&id.name));
        let uid = uid.unwrap_or_default().to_string();
        // Gone, or replaced by a new object of the same name (another uid).
        let gone = move |obj: Option<&DynamicObject>| {
            obj.is_none_or(|o| !uid.is_empty() && o.metadata.uid.as_deref() != Some(uid.as_str()))
        };
        if watch_until(api, &id.name, gone, self.deadline, &call).await? {
            return Ok(());
        }
        let live = api.get_opt(&id.name).await.ok().flatten();
        let finalizers = live.and_then(|o| o.metadata.finalizers).unwrap_or_default();
        let hint = if finalizers.iter().any(|f| f == ARGOCD_FINALIZER) {
            format!(
                "it still has finalizer {ARGOCD_FINALIZER}: Argo CD's application controller removes it after deleting the \
                 Application's resources; check `kubectl -n {} get pods`, or drop the cascade with \
                 `kubectl -n {} patch application {} --type merge -p '{{\"metadata\":{{\"finalizers\":null}}}}'`",
                id.namespace.as_deref().unwrap_or("argocd"),
                id.namespace.as_deref().unwrap_or("argocd"),
                id.name
            )
        } else if !finalizers.is_empty() {
            format!(
                "it still has finalizers {}: the controller that owns them has not released it",
                finalizers.join(", ")
            )
        } else {
            format!(
                "look at it with `kubectl get {} {} -o yaml`",
                resource.plural, id.name
            )
        };
        Err(DownError::Timeout {
            what: id.to_string(),
            hint,
            waited: self.started.elapsed(),
        }
        .into())
    }
}

/// How often a long deletion says what it still waits for.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `Application/argocd/staging-backend (finalizer resources-finalizer.argocd.argoproj.io), …`: the first
/// few objects still there, with what holds each.
fn waiting_on(pending: &BTreeMap<String, Vec<String>>) -> String {
    const SHOWN: usize = 4;
    let mut parts: Vec<String> = pending
        .iter()
        .take(SHOWN)
        .map(|(id, finalizers)| match finalizers.as_slice() {
            [] => id.clone(),
            [one] => format!("{id} (finalizer {one})"),
            many => format!("{id} (finalizers {})", many.join(", ")),
        })
        .collect();
    if pending.len() > SHOWN {
        parts.push(format!("and {} more", pending.len() - SHOWN));
    }
    parts.join(", ")
}

impl DownReport {
    /// Print a table or a document.
    pub fn print(&self, format: OutputFormat, out: &mut dyn Write) -> anyhow::Result<()> {
        if !format.is_table() {
            return write_document(out, self, format);
        }
        let mut table = output::table(["STEP", "DELETED", "DURATION"]);
        for step in &self.steps {
            table.add_row(vec![
                step.step.clone(),
                names(&step.deleted),
                format!("{:.1}s", step.seconds),
            ]);
        }
        writeln!(out, "{} is down ({:.1}s)", self.environment, self.seconds)?;
        writeln!(out, "{table}")?;
        for app in &self.skipped {
            writeln!(
                out,
                "skipped Application {app}: it deploys outside the environment's namespace"
            )?;
        }
        out.flush()?;
        Ok(())
    }
}

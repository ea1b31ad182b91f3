//! Phase 6, wait: every component followed until ready, wave by wave.
//!
//! A component is ready when its Argo CD Application is Synced and Healthy (Argo CD's health aggregates what
//! it manages) and each of its own objects with a readiness rule passes that rule. Each wait is
//! `kube::runtime::wait::await_condition` under the phase deadline (`--timeout`, it adds none itself); a
//! watch that breaks (5xx, reset connection) is re-established with backoff, and a 403 stops at once with
//! the permission that is missing. The components of one wave are waited on concurrently.
//!
//! An Application whose source Argo CD cannot render (a `ComparisonError` for the spec just applied, for
//! 10 s) stops the wait at once: waiting would not fix the repository.
//!
//! On timeout the error names the stuck component, the failing condition's message (Argo CD's own message
//! for an Application stuck OutOfSync), its objects' messages, and the commands to look closer.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use kube::runtime::wait::{Condition, await_condition};
use serde_json::Value;
use tracing::Instrument;

use crate::apply::Resolver;
use crate::components::{self, Member, Snapshot};
use crate::desired::Component;
use crate::log::{PROGRESS, Task};
use shared::api::{ApiError, Call};
use shared::readiness::Readiness;

/// Errors of the wait phase.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Components did not become ready in time.
    #[error("{}", stuck.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Stuck {
        /// One entry per stuck component.
        stuck: Vec<Stuck>,
    },
    /// The cluster does not serve Argo CD Applications.
    #[error(
        "the cluster does not serve argoproj.io/v1alpha1 Application: Argo CD is not installed; run `kubectl duli env up {env}` with the platform phase"
    )]
    NoArgoCd {
        /// The environment.
        env: String,
    },
    /// An API call failed for good (e.g. 403).
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// One component that did not become ready.
#[derive(Debug, Clone)]
pub struct Stuck {
    /// The component.
    pub component: String,
    /// Its Application.
    pub app: String,
    /// The Application's namespace.
    pub app_namespace: String,
    /// Its wave.
    pub wave: i32,
    /// How long it was waited on.
    pub waited: Duration,
    /// The failing condition: the Application's state and Argo CD's message, or an object's.
    pub message: String,
    /// Its objects that are not ready, with their messages.
    pub members: Vec<Member>,
    /// The environment (for the look-closer command).
    pub env: String,
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "component `{}` (Application {}/{}, wave {}) is not ready after {}: {}",
            self.component,
            self.app_namespace,
            self.app,
            self.wave,
            shared::duration::human(self.waited),
            self.message
        )?;
        for member in &self.members {
            writeln!(
                f,
                "  {} {}/{}: {}",
                member.kind, member.namespace, member.name, member.readiness.message
            )?;
        }
        write!(
            f,
            "  look closer: kubectl duli env status {}; kubectl -n {} describe application {}",
            self.env, self.app_namespace, self.app
        )?;
        if let Some(member) = self.members.first() {
            write!(
                f,
                "; kubectl -n {} describe {} {}",
                member.namespace,
                member.kind.to_lowercase(),
                member.name
            )?;
        }
        Ok(())
    }
}

/// How long the check that the API server is still there may take once the wait's deadline has passed.
const REACHABLE_PROBE: Duration = Duration::from_secs(1);

/// How long an Application may report Argo CD's `ComparisonError` for the spec just applied before the wait
/// stops on it: its source cannot be rendered (a wrong path, a values file that does not parse, a template
/// error), which waiting does not fix; the grace covers Argo CD's cache catching up with CRDs of the wave
/// before.
const COMPARISON_ERROR_GRACE: Duration = Duration::from_secs(10);

/// True when the API server was not reached at all (refused, reset, timed out), as opposed to answering.
fn is_connection(err: &kube::Error) -> bool {
    matches!(
        err,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
    )
}

/// Set while watches fail to reach the API server, so that stderr says so once per outage.
static OUTAGE: AtomicBool = AtomicBool::new(false);

/// What the wait needs to know.
#[derive(Debug, Clone)]
pub struct Waiter {
    /// Discovery and client.
    pub resolver: Resolver,
    /// The environment's name (for messages).
    pub env: String,
    /// When the whole phase gives up.
    pub deadline: tokio::time::Instant,
    /// When the phase started (for "not ready after").
    pub started: Instant,
}

impl Waiter {
    /// Wait for all `components` of one wave, concurrently; how many became ready.
    pub async fn wave(&self, wave: i32, components: &[&Component]) -> Result<usize, WaitError> {
        let results = futures::future::join_all(components.iter().map(|component| {
            let task = Task::new(format!("wave {wave} {}", component.app));
            let span = task.span();
            self.component(component, task).instrument(span)
        }))
        .await;
        let mut ready = 0;
        let mut stuck = Vec::new();
        for result in results {
            match result {
                Ok(()) => ready += 1,
                Err(NotReady::Stuck(s)) => stuck.push(*s),
                Err(NotReady::Failed(err)) => return Err(err),
            }
        }
        if stuck.is_empty() {
            Ok(ready)
        } else {
            // Components "not ready" because the API server went away are not findings: say it is gone.
            self.check_reachable().await?;
            Err(WaitError::Stuck { stuck })
        }
    }

    /// Whether the phase deadline has passed (a call failing now was cut short by it: the components are
    /// not ready in time, and [`Self::check_reachable`] tells a lost server apart).
    fn deadline_passed(&self) -> bool {
        tokio::time::Instant::now() + Duration::from_millis(50) >= self.deadline
    }

    /// Ask the API server for its version once, briefly (the deadline has passed): unreachable is an error.
    async fn check_reachable(&self) -> Result<(), ApiError> {
        let api = self.resolver.api_client();
        let call = Call::raw(&http::Method::GET, "/version");
        let cause = match tokio::time::timeout(REACHABLE_PROBE, api.client().apiserver_version()).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(err)) if is_connection(&err) => shared::cluster::innermost_cause(&err),
            Ok(Err(_)) => return Ok(()),
            Err(_) => format!("no answer within {}", shared::duration::human(REACHABLE_PROBE)),
        };
        Err(ApiError::Unreachable {
            server: api.server().to_string(),
            cause: format!("{call}: {cause}; the wait phase could not follow the components"),
        })
    }

    async fn component(&self, component: &Component, task: Task) -> Result<(), NotReady> {
        let started = Instant::now();
        let app_namespace = component
            .object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "argocd".into());
        let (api, resource) = self
            .resolver
            .api(&components::application_gvk(), Some(&app_namespace))
            .await
            .map_err(|e| NotReady::Failed(e.into()))?
            .ok_or_else(|| {
                NotReady::Failed(WaitError::NoArgoCd {
                    env: self.env.clone(),
                })
            })?;
        // 1. The Application: Synced + Healthy.
        let latest: Arc<Mutex<(Option<Value>, Readiness)>> =
            Arc::new(Mutex::new((None, Readiness::not_ready("not observed yet"))));
        let condition = {
            let latest = latest.clone();
            let task = task.clone();
            move |obj: Option<&DynamicObject>| {
                let value = obj.map(|o| serde_json::to_value(o).unwrap_or_default());
                let verdict = components::application_readiness(value.as_ref());
                task.set(&verdict.message);
                let ready = verdict.ready;
                *latest.lock().unwrap_or_else(|e| e.into_inner()) = (value, verdict);
                ready
            }
        };
        let call = Call::for_resource("watch", &resource, Some(&app_namespace), Some(&component.app));
        // Stops the wait when Argo CD keeps failing to render the source (see COMPARISON_ERROR_GRACE).
        let unrenderable = {
            let latest = latest.clone();
            async move {
                let mut since: Option<Instant> = None;
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let failing = latest
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                        .as_ref()
                        .is_some_and(|app| shared::readiness::argocd_comparison_error(app).is_some());
                    match (failing, since) {
                        (false, _) => since = None,
                        (true, None) => since = Some(Instant::now()),
                        (true, Some(at)) if at.elapsed() >= COMPARISON_ERROR_GRACE => return,
                        (true, Some(_)) => {}
                    }
                }
            }
        };
        let met = tokio::select! {
            met = watch_until(&api, &component.app, condition, self.deadline, &call) => {
                met.map_err(|e| NotReady::Failed(e.into()))?
            }
            () = unrenderable => false,
        };
        if !met {
            let (app, verdict) = latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Err(self
                .stuck(component, &app_namespace, app.as_ref(), verdict.message)
                .await);
        }
        // 2. Its own objects, each by its rule.
        let app = latest.lock().unwrap_or_else(|e| e.into_inner()).0.clone();
        loop {
            let snapshot = match Snapshot::take(&self.resolver, &component.destination).await {
                Ok(snapshot) => snapshot,
                Err(_) if self.deadline_passed() => {
                    let message = "its objects could not all be checked before the deadline".to_string();
                    return Err(self.stuck(component, &app_namespace, app.as_ref(), message).await);
                }
                Err(err) => return Err(NotReady::Failed(err.into())),
            };
            let pending: Vec<Member> = snapshot
                .members(component, app.as_ref())
                .into_iter()
                .filter(|m| !m.readiness.ready)
                .collect();
            let Some(first) = pending.first() else { break };
            task.set(&format!(
                "{} {}: {}",
                first.kind, first.name, first.readiness.message
            ));
            let met = match self.member(first, &task).await {
                Ok(met) => met,
                // Cut short by the deadline: not ready in time (the wave then checks the server is there).
                Err(_) if self.deadline_passed() => false,
                Err(err) => return Err(NotReady::Failed(err.into())),
            };
            if !met {
                let message = format!(
                    "{} {}/{}: {}",
                    first.kind, first.namespace, first.name, first.readiness.message
                );
                return Err(self.stuck(component, &app_namespace, app.as_ref(), message).await);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(target: PROGRESS, "  ready: {} (wave {}, {seconds:.1}s)", component.app, component.wave);
        Ok(())
    }

    /// Wait for one object by its rule; redis kinds are judged from a fresh snapshot (they need their
    /// StatefulSet and pods), the others with a watch. Returns false on timeout.
    async fn member(&self, member: &Member, task: &Task) -> Result<bool, ApiError> {
        if member.kind.starts_with("Redis") {
            loop {
                if tokio::time::Instant::now() >= self.deadline {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let snapshot = Snapshot::take(&self.resolver, &member.namespace).await?;
                let current = snapshot
                    .find(&member.kind, &member.namespace, &member.name)
                    .map(|obj| snapshot.judge(obj).unwrap_or_else(|| Readiness::ready("")))
                    .unwrap_or_else(|| Readiness::ready("gone"));
                task.set(&format!("{} {}: {}", member.kind, member.name, current.message));
                if current.ready {
                    return Ok(true);
                }
            }
        }
        let group = components::INSTANCE_KINDS
            .iter()
            .find(|(_, kind)| *kind == member.kind)
            .map(|(g, _)| *g)
            .unwrap_or("");
        let Some((api, resource)) =
            components::resolve_kind(&self.resolver, group, &member.kind, &member.namespace).await?
        else {
            return Ok(true);
        };
        let condition = {
            let task = task.clone();
            let label = format!("{} {}", member.kind, member.name);
            let (api_version, kind) = (resource.api_version.clone(), resource.kind.clone());
            move |obj: Option<&DynamicObject>| {
                let Some(obj) = obj else { return true };
                let mut value = serde_json::to_value(obj).unwrap_or_default();
                value["apiVersion"] = Value::String(api_version.clone());
                value["kind"] = Value::String(kind.clone());
                let verdict = shared::readiness::for_object(&value).unwrap_or_else(|| Readiness::ready(""));
                task.set(&format!("{label}: {}", verdict.message));
                verdict.ready
            }
        };
        let call = Call::for_resource("watch", &resource, Some(&member.namespace), Some(&member.name));
        watch_until(&api, &member.name, condition, self.deadline, &call).await
    }

    async fn stuck(
        &self,
        component: &Component,
        app_namespace: &str,
        app: Option<&Value>,
        message: String,
    ) -> NotReady {
        let members = match Snapshot::take(&self.resolver, &component.destination).await {
            Ok(snapshot) => snapshot
                .members(component, app)
                .into_iter()
                .filter(|m| !m.readiness.ready)
                .collect(),
            Err(err) => {
                tracing::debug!(
                    "cannot list {}'s objects for the failure report: {err}",
                    component.app
                );
                Vec::new()
            }
        };
        NotReady::Stuck(Box::new(Stuck {
            component: component.name.clone(),
            app: component.app.clone(),
            app_namespace: app_namespace.to_string(),
            wave: component.wave,
            waited: self.started.elapsed(),
            message,
            members,
            env: self.env.clone(),
        }))
    }
}

/// Why a component did not become ready: stuck (a finding, reported with the others) or a failed call.
enum NotReady {
    Stuck(Box<Stuck>),
    Failed(WaitError),
}

/// `await_condition` until `deadline`, re-watching after failures (5xx, dropped connections) with backoff.
/// Returns whether the condition was met; a refused permission is an error at once.
pub async fn watch_until<C>(
    api: &Api<DynamicObject>,
    name: &str,
    condition: C,
    deadline: tokio::time::Instant,
    call: &Call,
) -> Result<bool, ApiError>
where
    C: Condition<DynamicObject> + Clone,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match tokio::time::timeout_at(deadline, await_condition(api.clone(), name, condition.clone())).await {
            Err(_elapsed) => return Ok(false),
            Ok(Ok(_)) => {
                OUTAGE.store(false, Ordering::Relaxed);
                return Ok(true);
            }
            Ok(Err(kube::runtime::wait::Error::ProbeFailed(err))) => {
                if let Some(permanent) = permanent(call, &err) {
                    return Err(permanent);
                }
                if let Some(cause) = connection_lost(&err)
                    && !OUTAGE.swap(true, Ordering::Relaxed)
                {
                    // One line on stderr; every retry is in the log file.
                    tracing::info!(
                        target: PROGRESS,
                        "  the API server is not answering ({cause}); retrying until --timeout"
                    );
                }
                tracing::debug!("watch on {name} failed ({err}); watching again in {delay:?}");
                tokio::time::sleep(
                    delay.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
                )
                .await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The cause, when a watch failed because the API server could not be reached.
fn connection_lost(err: &kube::runtime::watcher::Error) -> Option<String> {
    use kube::runtime::watcher::Error as W;
    match err {
        W::InitialListFailed(source) | W::WatchStartFailed(source) | W::WatchFailed(source)
            if is_connection(source) =>
        {
            Some(shared::cluster::innermost_cause(source))
        }
        _ => None,
    }
}

/// A watch failure that retrying cannot fix: 403 (RBAC) and 404 on the resource type.
fn permanent(call: &Call, err: &kube::runtime::watcher::Error) -> Option<ApiError> {
    use kube::runtime::watcher::Error as W;
    let source = match err {
        W::InitialListFailed(source) | W::WatchStartFailed(source) => source,
        _ => return None,
    };
    match source {
        kube::Error::Api(status) if status.code == 403 => {
            let verb = if matches!(err, W::InitialListFailed(_)) {
                "list"
            } else {
                "watch"
            };
            Some(ApiError::Forbidden {
                call: Box::new(Call {
                    verb: verb.to_string(),
                    name: None,
                    ..call.clone()
                }),
                message: status.message.clone(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_components_name_the_message_and_how_to_look_closer() {
        let stuck = Stuck {
            component: "backend".into(),
            app: "staging-backend".into(),
            app_namespace: "argocd".into(),
            wave: 5,
            waited: Duration::from_secs(60),
            message: "sync OutOfSync, health Missing: operation Failed: one or more objects failed to apply"
                .into(),
            members: Vec::new(),
            env: "staging".into(),
        };
        let text = stuck.to_string();
        assert!(
            text.contains(
                "component `backend` (Application argocd/staging-backend, wave 5) is not ready after 1m"
            ),
            "{text}"
        );
        assert!(text.contains("one or more objects failed to apply"), "{text}");
        assert!(text.contains("kubectl duli env status staging"), "{text}");
        assert!(
            text.contains("kubectl -n argocd describe application staging-backend"),
            "{text}"
        );
    }
}

//! `status`: one table per component — its Application (sync/health) and its own objects (Ready by their
//! rule), each with the message and age — in wave order, environment components first, then the shared
//! ones. Exit code 1 when anything is not ready, so scripts can gate on it.

use std::io::Write;

use crate::write_document;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;

use crate::apply::Resolver;
use crate::components::{self, Snapshot};
use crate::desired::{Component, Desired, Scope};
use crate::{Context, EnvError};
use shared::api::Call;
use shared::duration::parse_duration;
use shared::environment::Environment;
use shared::error::Outcome;
use shared::output::{self, OutputFormat};

/// `status` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusOptions {
    /// The environment.
    pub env: String,
    /// A platform catalog instead of `gitops/platform.yml` (no flag: `status` reads the repository's).
    #[arg(skip)]
    pub platform_file: Option<PathBuf>,
    /// How long the whole command may take (a slow, throttling or unreachable API server), e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// One row: an Application or one of a component's objects.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `Kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `Synced/Healthy` for Applications, `Ready`/`NotReady` for the rest, `Missing` when absent.
    pub state: String,
    /// True when this row is ready.
    pub ready: bool,
    /// The readiness message.
    pub message: String,
    /// Age in seconds, when the object exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
}

/// One component's status.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    /// `duli.one/component`.
    pub component: String,
    /// The Application's name.
    pub application: String,
    /// Shared or per environment.
    pub scope: Scope,
    /// Its wave.
    pub wave: i32,
    /// True when every row is ready.
    pub ready: bool,
    /// The rows.
    pub rows: Vec<Row>,
}

/// The environment's status.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The environment.
    pub environment: String,
    /// Its namespace.
    pub namespace: String,
    /// True when the namespace exists.
    pub namespace_exists: bool,
    /// True when every component is ready.
    pub ready: bool,
    /// Components, environment ones first, each in wave order.
    pub components: Vec<ComponentStatus>,
}

/// Seconds since an RFC 3339 timestamp (`None` when unparsable).
pub fn age_seconds(timestamp: &str) -> Option<i64> {
    let t = timestamp.parse::<k8s_openapi::jiff::Timestamp>().ok()?;
    Some(k8s_openapi::jiff::Timestamp::now().as_second() - t.as_second())
}

/// Compute the status of an environment. Every call goes through `ctx.api`, which retries throttling,
/// server errors and refused connections until `--timeout` and then says the API server is unreachable.
pub async fn status(ctx: &Context, opts: &StatusOptions) -> Result<StatusReport, EnvError> {
    let env = crate::load_env(&ctx.repo, &opts.env)?;
    let desired = Desired::load(&ctx.repo, &env, opts.platform_file.as_deref())?;
    let resolver = Resolver::new(ctx.api.clone());
    report(&resolver, &env, &desired.components).await
}

/// The status of `env` made of `desired` components (rendered, or the live ones without a repository).
pub(crate) async fn report(
    resolver: &Resolver,
    env: &Environment,
    desired: &[Component],
) -> Result<StatusReport, EnvError> {
    let resolver = resolver.clone();
    let env = env.clone();
    let apps = live_applications(&resolver, desired).await?;
    let namespace_exists = namespace_exists(&resolver, &env.namespace).await?;
    let mut snapshots: BTreeMap<String, Snapshot> = BTreeMap::new();
    let mut components = Vec::new();
    let ordered = desired
        .iter()
        .filter(|c| c.scope == Scope::Environment)
        .chain(desired.iter().filter(|c| c.scope == Scope::Shared));
    for component in ordered {
        if !snapshots.contains_key(&component.destination) {
            let snapshot = if component.destination == env.namespace && !namespace_exists {
                Snapshot::default()
            } else {
                Snapshot::take(&resolver, &component.destination).await?
            };
            snapshots.insert(component.destination.clone(), snapshot);
        }
        let app = apps.get(&component.app);
        let app_namespace = component.object.metadata.namespace.clone().unwrap_or_default();
        let verdict = components::application_readiness(app);
        let mut rows = vec![Row {
            kind: "Application".into(),
            name: component.app.clone(),
            namespace: app_namespace,
            state: app
                .map(components::sync_health)
                .unwrap_or_else(|| "Missing".into()),
            ready: verdict.ready,
            message: if app.is_some() {
                verdict.message
            } else {
                format!("not applied: run `kubectl duli env up {}`", env.name)
            },
            age_seconds: app
                .and_then(|a| a.pointer("/metadata/creationTimestamp"))
                .and_then(Value::as_str)
                .and_then(age_seconds),
        }];
        for member in snapshots[&component.destination].members(component, app) {
            rows.push(Row {
                kind: member.kind,
                name: member.name,
                namespace: member.namespace,
                state: if member.readiness.ready {
                    "Ready".into()
                } else {
                    "NotReady".into()
                },
                ready: member.readiness.ready,
                message: member.readiness.message,
                age_seconds: member.created.as_deref().and_then(age_seconds),
            });
        }
        let ready = rows.iter().all(|r| r.ready);
        components.push(ComponentStatus {
            component: component.name.clone(),
            application: component.app.clone(),
            scope: component.scope,
            wave: component.wave,
            ready,
            rows,
        });
    }
    let ready = namespace_exists && components.iter().all(|c| c.ready);
    Ok(StatusReport {
        environment: env.name,
        namespace: env.namespace,
        namespace_exists,
        ready,
        components,
    })
}

/// The live Applications named by `desired`, by name.
pub async fn live_applications(
    resolver: &Resolver,
    desired: &[Component],
) -> Result<BTreeMap<String, Value>, EnvError> {
    let mut namespaces: Vec<String> = desired
        .iter()
        .filter_map(|c| c.object.metadata.namespace.clone())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut apps = BTreeMap::new();
    for namespace in namespaces {
        let Some((api, resource)) = resolver
            .api(&components::application_gvk(), Some(&namespace))
            .await?
        else {
            continue;
        };
        let call = Call::for_resource("list", &resource, Some(&namespace), None);
        let params = ListParams::default();
        let list = resolver.api_client().call(&call, || api.list(&params)).await?;
        for item in list.items {
            let name = item.metadata.name.clone().unwrap_or_default();
            apps.insert(name, serde_json::to_value(item).unwrap_or_default());
        }
    }
    Ok(apps)
}

/// True when namespace `name` exists.
pub async fn namespace_exists(resolver: &Resolver, name: &str) -> Result<bool, EnvError> {
    let gvk = kube::api::GroupVersionKind::gvk("", "v1", "Namespace");
    Ok(resolver.exists(&gvk, None, name).await?)
}

impl StatusReport {
    /// Print tables or a document; the outcome is [`Outcome::Findings`] when anything is not ready.
    pub fn print(&self, format: OutputFormat, out: &mut dyn Write) -> anyhow::Result<Outcome> {
        if !format.is_table() {
            write_document(out, self, format)?;
        } else {
            let mut text = format!(
                "{} (namespace {}{}): {}\n",
                self.environment,
                self.namespace,
                if self.namespace_exists { "" } else { ", missing" },
                if self.ready { "ready" } else { "NOT READY" }
            );
            for component in &self.components {
                let scope = if component.scope == Scope::Shared {
                    ", shared"
                } else {
                    ""
                };
                text.push_str(&format!(
                    "\n{} (wave {}{scope}): {}\n",
                    component.component,
                    component.wave,
                    if component.ready { "ready" } else { "not ready" }
                ));
                // `-o wide` adds the object's namespace (shared components live outside the environment's).
                let mut header = vec!["KIND/NAME", "STATE", "MESSAGE", "AGE"];
                if format.is_wide() {
                    header.push("NAMESPACE");
                }
                let mut table = output::table(header);
                for row in &component.rows {
                    let mut cells = vec![
                        format!("{}/{}", row.kind, row.name),
                        row.state.clone(),
                        row.message.clone(),
                        row.age_seconds
                            .map(output::human_age)
                            .unwrap_or_else(|| "-".into()),
                    ];
                    if format.is_wide() {
                        cells.push(row.namespace.clone());
                    }
                    table.add_row(cells);
                }
                text.push_str(&format!("{table}\n"));
            }
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Ok(if self.ready {
            Outcome::Clean
        } else {
            Outcome::Findings
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_from_kubernetes_timestamps() {
        let age = age_seconds("2020-01-01T00:00:00Z").unwrap();
        assert!(age > 86_400 * 365, "{age}");
        assert_eq!(age_seconds("yesterday"), None);
    }
}

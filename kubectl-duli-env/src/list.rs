//! `list`: the environments of the repository with their namespace, tier, and whether each is up.
//!
//! An environment is `up` when its namespace exists and every Application it renders exists and is
//! Synced + Healthy, `degraded` when some are missing or not ready, `down` when neither its namespace nor
//! any of its Applications exist.

use std::io::Write;

use crate::write_document;
use serde::Serialize;

use crate::apply::Resolver;
use crate::desired::{Component, Desired, Scope};
use crate::status::{live_applications, namespace_exists};
use crate::{Context, EnvError, components};
use shared::environment::Environment;
use shared::output::{self, OutputFormat};

/// The state of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Everything exists and is ready.
    Up,
    /// Something is missing or not ready.
    Degraded,
    /// Nothing is there.
    Down,
}

/// One row of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct EnvRow {
    /// The environment.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its tier label.
    pub tier: String,
    /// up, degraded or down.
    pub state: State,
    /// Applications ready.
    pub ready: usize,
    /// Applications it renders.
    pub applications: usize,
}

/// List every environment.
pub async fn list(ctx: &Context) -> Result<Vec<EnvRow>, EnvError> {
    let resolver = Resolver::new(ctx.api.clone());
    let mut rows = Vec::new();
    for env in Environment::load_all(&ctx.repo)? {
        let desired = Desired::load(&ctx.repo, &env, None)?;
        rows.push(row(&resolver, &env, &desired.components).await?);
    }
    Ok(rows)
}

/// The row of `env` made of `desired` components (rendered, or the live ones without a repository).
pub(crate) async fn row(
    resolver: &Resolver,
    env: &Environment,
    desired: &[Component],
) -> Result<EnvRow, EnvError> {
    let apps = live_applications(resolver, desired).await?;
    let exists = namespace_exists(resolver, &env.namespace).await?;
    let own: Vec<_> = desired.iter().filter(|c| c.scope == Scope::Environment).collect();
    let present = own.iter().filter(|c| apps.contains_key(&c.app)).count();
    let ready = own
        .iter()
        .filter(|c| components::application_readiness(apps.get(&c.app)).ready)
        .count();
    let state = if exists && ready == own.len() {
        State::Up
    } else if !exists && present == 0 {
        State::Down
    } else {
        State::Degraded
    };
    Ok(EnvRow {
        name: env.name.clone(),
        namespace: env.namespace.clone(),
        tier: env.tier.as_label().to_string(),
        state,
        ready,
        applications: own.len(),
    })
}

/// Print the rows.
pub fn print(rows: &[EnvRow], format: OutputFormat, out: &mut dyn Write) -> anyhow::Result<()> {
    if !format.is_table() {
        return write_document(out, &rows, format);
    }
    let mut table = output::table(["ENVIRONMENT", "NAMESPACE", "TIER", "STATE", "APPLICATIONS READY"]);
    for row in rows {
        let state = match row.state {
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
        };
        table.add_row(vec![
            row.name.clone(),
            row.namespace.clone(),
            row.tier.clone(),
            state.to_string(),
            format!("{}/{}", row.ready, row.applications),
        ]);
    }
    writeln!(out, "{table}")?;
    out.flush()?;
    Ok(())
}

//! `plan` (and `up --dry-run`): what `up` would change, without changing anything.
//!
//! Every object `up` would apply is sent with server-side apply and `dryRun=All`, so the API server runs
//! its defaulting, validation and field ownership exactly as for the real apply; the answer is diffed
//! against the live object (server-owned fields dropped) and grouped by phase and component. Platform
//! charts are compared with the deployed releases. Exit code 1 when anything would change, like
//! `argocd app diff` and `helmfile diff --detailed-exitcode`.
//!
//! Objects `up` once applied that the repository no longer declares are listed as deletions with why
//! (see [`crate::prune`] for the rule); `plan` deletes nothing, `up --prune` does.
//!
//! Objects that cannot be dry-run yet are reported as creations with the reason: their namespace does not
//! exist, or their kind is not served until the platform phase installs its CRD.

use std::io::Write;

use crate::write_document;
use std::path::PathBuf;

use futures::StreamExt;
use kube::api::DynamicObject;
use serde::Serialize;

use crate::apply::{self, Applier, ApplyError, ApplyResult, ObjectId, Resolver};
use crate::desired::Desired;
use crate::helm::Helm;
use crate::platform::{self, ChartAction, ChartPlan};
use crate::{Context, EnvError, Phase, prune};
use shared::api::Call;
use shared::output::OutputFormat;

/// `plan` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanOptions {
    /// The environment.
    pub env: String,
    /// A platform catalog to use instead of gitops/platform.yml.
    #[arg(long, value_name = "FILE")]
    pub platform_file: Option<PathBuf>,
    /// Install platform charts from mirror TO instead of chart repository FROM (a URL, or * for every
    /// one); repeatable. Also $DULI_CHART_MIRRORS (comma-separated) and `chart_mirrors` in the environment
    /// file, in that order of precedence.
    #[arg(long = "chart-mirror", value_name = "FROM=TO")]
    pub chart_mirrors: Vec<String>,
}

/// What would happen to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// It would be created.
    Create,
    /// It would change.
    Change,
    /// Nothing would change.
    Unchanged,
    /// The repository no longer declares it: `up --prune` would delete it.
    Delete,
}

/// One object in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    /// Which object.
    pub object: ObjectId,
    /// What would happen.
    pub action: Action,
    /// Unified diff live → planned, for changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why it could not be dry-run, or another remark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The objects of one phase or component.
#[derive(Debug, Clone, Serialize)]
pub struct PlanGroup {
    /// The phase.
    pub phase: Phase,
    /// The component, for gitops groups; `descriptor` for the environment descriptor (namespaces phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The sync wave, for gitops groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<i32>,
    /// Its objects.
    pub objects: Vec<PlanEntry>,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// The environment.
    pub environment: String,
    /// True when `up` would change something (or cannot run as is).
    pub changes: bool,
    /// The platform charts.
    pub charts: Vec<ChartPlan>,
    /// Objects by phase and component.
    pub groups: Vec<PlanGroup>,
    /// What would stop `up` (missing SealedSecrets, conflicts, …).
    pub problems: Vec<String>,
}

/// Compute the plan.
pub async fn plan(ctx: &Context, opts: &PlanOptions) -> Result<PlanReport, EnvError> {
    let env = crate::load_env(&ctx.repo, &opts.env)?;
    let mut desired = Desired::load(&ctx.repo, &env, opts.platform_file.as_deref())?;
    desired.apply_chart_mirrors(&opts.chart_mirrors)?;
    let resolver = Resolver::new(ctx.api.clone());
    let applier = Applier::new(resolver.clone(), false);
    let mut problems = Vec::new();

    let charts = match Helm::locate(&ctx.target, &ctx.cluster.context) {
        Ok(helm) => match platform::plan(&helm, &desired.platform).await {
            Ok(plans) => plans,
            Err(err) => {
                problems.push(format!("platform charts: {err}"));
                Vec::new()
            }
        },
        Err(err) => {
            problems.push(format!("platform charts cannot be compared: {err}"));
            Vec::new()
        }
    };

    let mut groups: Vec<(PlanGroup, Vec<DynamicObject>)> = Vec::new();
    let group = |phase, component: Option<String>, wave| PlanGroup {
        phase,
        component,
        wave,
        objects: Vec::new(),
    };
    groups.push((group(Phase::Namespaces, None, None), desired.namespaces.clone()));
    match crate::descriptor::object(&ctx.repo, &env) {
        Ok(descriptor) => groups.push((
            group(Phase::Namespaces, Some("descriptor".into()), None),
            vec![descriptor],
        )),
        Err(err) => problems.push(err.to_string()),
    }
    match &desired.secrets.objects {
        Ok(objects) => groups.push((group(Phase::Secrets, None, None), objects.clone())),
        Err(err) => problems.push(err.to_string()),
    }
    if !desired.projects.is_empty() {
        groups.push((
            group(Phase::Gitops, Some("projects".into()), None),
            desired.projects.clone(),
        ));
    }
    for component in &desired.components {
        groups.push((
            group(Phase::Gitops, Some(component.name.clone()), Some(component.wave)),
            vec![component.object.clone()],
        ));
    }
    let live_namespaces = live_namespaces(&resolver).await?;

    let jobs: Vec<(usize, DynamicObject)> = groups
        .iter()
        .enumerate()
        .flat_map(|(index, (_, objects))| objects.iter().map(move |o| (index, o.clone())))
        .collect();
    let entries: Vec<(usize, Result<PlanEntry, ApplyError>)> = futures::stream::iter(jobs)
        .map(|(index, object)| {
            let applier = &applier;
            let live_namespaces = &live_namespaces;
            async move { (index, entry(applier, &object, live_namespaces).await) }
        })
        .buffered(apply::CONCURRENCY)
        .collect()
        .await;
    let mut groups: Vec<PlanGroup> = groups.into_iter().map(|(g, _)| g).collect();
    for (index, result) in entries {
        match result {
            Ok(entry) => groups[index].objects.push(entry),
            Err(ApplyError::Api(err)) => return Err(EnvError::Api(err)),
            Err(err) => problems.push(err.to_string()),
        }
    }
    let candidates = match prune::candidates(&resolver, &ctx.repo, &desired, &Phase::ALL).await {
        Ok(candidates) => candidates,
        Err(EnvError::Api(err)) if err.code() == Some(403) => {
            problems.push(format!("what `up --prune` would delete cannot be listed: {err}"));
            Vec::new()
        }
        Err(err) => return Err(err),
    };
    for candidate in candidates {
        let entry = PlanEntry {
            object: candidate.id,
            action: Action::Delete,
            diff: None,
            note: Some(candidate.reason.to_string()),
        };
        let component = match (candidate.phase, entry.object.kind.as_str()) {
            (Phase::Gitops, "AppProject") => Some("projects".to_string()),
            (Phase::Gitops, _) => candidate.component.or_else(|| Some(entry.object.name.clone())),
            _ => None,
        };
        match groups
            .iter_mut()
            .find(|g| g.phase == candidate.phase && g.component == component)
        {
            Some(group) => group.objects.push(entry),
            None => {
                let mut deletions = group(candidate.phase, component, candidate.wave);
                deletions.objects.push(entry);
                groups.push(deletions);
            }
        }
    }
    // A group of deletions only goes after the groups of its phase.
    groups.sort_by_key(|g| g.phase);
    let changes = !problems.is_empty()
        || charts.iter().any(|c| c.action != ChartAction::UpToDate)
        || groups
            .iter()
            .flat_map(|g| &g.objects)
            .any(|e| e.action != Action::Unchanged);
    Ok(PlanReport {
        environment: env.name,
        changes,
        charts,
        groups,
        problems,
    })
}

async fn live_namespaces(resolver: &Resolver) -> Result<Vec<String>, EnvError> {
    let gvk = kube::api::GroupVersionKind::gvk("", "v1", "Namespace");
    let Some((api, resource)) = resolver.api(&gvk, None).await? else {
        return Ok(Vec::new());
    };
    let call = Call::for_resource("list", &resource, None, None);
    let params = kube::api::ListParams::default();
    let list = resolver
        .api_client()
        .call(&call, || api.list_metadata(&params))
        .await?;
    Ok(list.items.into_iter().filter_map(|n| n.metadata.name).collect())
}

async fn entry(
    applier: &Applier,
    object: &DynamicObject,
    live_namespaces: &[String],
) -> Result<PlanEntry, ApplyError> {
    let id = ObjectId::of(object);
    if let Some(namespace) = &id.namespace
        && !live_namespaces.contains(namespace)
    {
        let note = Some(format!("namespace {namespace} does not exist yet"));
        return Ok(PlanEntry {
            object: id,
            action: Action::Create,
            diff: None,
            note,
        });
    }
    match applier.apply(object, true).await {
        Ok(applied) => {
            let (action, diff) = match applied.outcome {
                ApplyResult::Created => (Action::Create, None),
                ApplyResult::Unchanged => (Action::Unchanged, None),
                ApplyResult::Changed => {
                    let before = applied.before.as_ref().map(apply::normalize).unwrap_or_default();
                    (
                        Action::Change,
                        Some(diff(&before, &apply::normalize(&applied.after))),
                    )
                }
            };
            Ok(PlanEntry {
                object: applied.id,
                action,
                diff,
                note: None,
            })
        }
        Err(ApplyError::NotServed { id, hint }) => {
            let note = Some(format!("{} is not served yet{hint}", id.kind));
            Ok(PlanEntry {
                object: id,
                action: Action::Create,
                diff: None,
                note,
            })
        }
        Err(err) => Err(err),
    }
}

/// A unified diff of two objects as YAML.
pub fn diff(before: &serde_json::Value, after: &serde_json::Value) -> String {
    let before = serde_saphyr::to_string(before).unwrap_or_default();
    let after = serde_saphyr::to_string(after).unwrap_or_default();
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header("live", "planned")
        .to_string()
}

impl PlanReport {
    /// Print as text or as a document.
    pub fn print(&self, format: OutputFormat, out: &mut dyn Write) -> anyhow::Result<()> {
        if !format.is_table() {
            return write_document(out, self, format);
        }
        let mut text = format!("plan for {}:\n", self.environment);
        if !self.charts.is_empty() {
            text.push_str("\nplatform charts:\n");
            for chart in &self.charts {
                let mark = match chart.action {
                    ChartAction::Install => '+',
                    ChartAction::Upgrade | ChartAction::Recover => '~',
                    ChartAction::UpToDate => '=',
                };
                text.push_str(&format!(
                    "  {mark} {} {} (namespace {}): {}\n",
                    chart.name, chart.version, chart.namespace, chart.reason
                ));
            }
        }
        let mut last_phase = None;
        let (mut create, mut change, mut unchanged, mut delete) = (0, 0, 0, 0);
        for group in &self.groups {
            if last_phase != Some(group.phase) {
                text.push_str(&format!("\n{}:\n", group.phase));
                last_phase = Some(group.phase);
            }
            if let Some(component) = &group.component {
                match group.wave {
                    Some(wave) => text.push_str(&format!("  {component} (wave {wave}):\n")),
                    None => text.push_str(&format!("  {component}:\n")),
                }
            }
            for entry in &group.objects {
                let mark = match entry.action {
                    Action::Create => {
                        create += 1;
                        '+'
                    }
                    Action::Change => {
                        change += 1;
                        '~'
                    }
                    Action::Unchanged => {
                        unchanged += 1;
                        '='
                    }
                    Action::Delete => {
                        delete += 1;
                        '-'
                    }
                };
                text.push_str(&format!("    {mark} {}", entry.object));
                if let Some(note) = &entry.note {
                    text.push_str(&format!(" ({note})"));
                }
                text.push('\n');
                if let Some(diff) = &entry.diff {
                    for line in diff.lines() {
                        text.push_str(&format!("        {line}\n"));
                    }
                }
            }
        }
        if !self.problems.is_empty() {
            text.push_str("\nproblems:\n");
            for problem in &self.problems {
                text.push_str(&format!("  ! {problem}\n"));
            }
        }
        let installs = self
            .charts
            .iter()
            .filter(|c| c.action == ChartAction::Install)
            .count();
        let upgrades = self
            .charts
            .iter()
            .filter(|c| matches!(c.action, ChartAction::Upgrade | ChartAction::Recover))
            .count();
        text.push_str(&format!(
            "\n{create} to create, {change} to change, {delete} to delete, {unchanged} unchanged; charts: {installs} to install, {upgrades} to upgrade\n"
        ));
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diffs_show_the_changed_field() {
        let before = json!({"spec": {"source": {"targetRevision": "main"}}});
        let after = json!({"spec": {"source": {"targetRevision": "v2"}}});
        let text = diff(&before, &after);
        assert!(text.contains("-    targetRevision: main"), "{text}");
        assert!(text.contains("+    targetRevision: v2"), "{text}");
        assert!(text.contains("--- live"), "{text}");
    }
}

//! `up`: run the phases in order, each converging from whatever state the cluster is in.
//!
//! The gitops and wait phases interleave wave by wave: a wave's Applications are applied, then waited on,
//! before the next wave is applied — operators before the instances that need their CRDs, data services
//! before the applications that connect to them — and the components of one wave are applied and waited
//! on concurrently. So the wall time is the sum of the waves' slowest components, not of all components.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::apply::{self, Applier, Counts, Resolver};
use crate::desired::Desired;
use crate::down::Deleter;
use crate::helm::Helm;
use crate::log::PROGRESS;
use crate::platform::PlatformError;
use crate::summary::{PhaseSummary, Summary};
use crate::wait::{WaitError, Waiter};
use crate::{Context, EnvError, Phase, platform, preflight, prune};
use shared::confirm::{self, Confirmation};
use shared::duration::parse_duration;
use shared::error::Outcome;
use shared::output::OutputFormat;

/// `up` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UpOptions {
    /// The environment (staging, prod).
    pub env: String,
    /// Run only this phase (repeatable); the summary always prints.
    #[arg(long, value_enum, value_name = "PHASE")]
    pub only: Vec<Phase>,
    /// Change nothing: print what would change (same as `plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// How long the whole run may take, helm's waits for the platform charts and the wait for components
    /// included, e.g. 15m, 90s, 1h.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Take over fields another field manager owns instead of reporting the conflict.
    #[arg(long)]
    pub force_conflicts: bool,
    /// After the apply waves succeeded, delete what duli applied for ENV that the repository no longer
    /// declares (Applications, AppProjects, SealedSecrets; `plan` lists them). An Application goes with
    /// Argo CD's cascade finalizer, so its resources go too. Namespaces are never pruned (that is `down`'s
    /// job). prod asks first, or --yes.
    #[arg(long)]
    pub prune: bool,
    /// A platform catalog to use instead of gitops/platform.yml.
    #[arg(long, value_name = "FILE")]
    pub platform_file: Option<PathBuf>,
    /// Install platform charts from mirror TO instead of chart repository FROM (a URL, or * for every
    /// one); repeatable. Also $DULI_CHART_MIRRORS (comma-separated) and `chart_mirrors` in the environment
    /// file, in that order of precedence.
    #[arg(long = "chart-mirror", value_name = "FROM=TO")]
    pub chart_mirrors: Vec<String>,
}

impl UpOptions {
    /// The phases that run, in order.
    pub fn phases(&self) -> Vec<Phase> {
        if self.only.is_empty() {
            Phase::ALL.to_vec()
        } else {
            Phase::ALL
                .iter()
                .copied()
                .filter(|p| self.only.contains(p) || *p == Phase::Summary)
                .collect()
        }
    }
}

fn done(phase: Phase, elapsed: Duration, counts: Counts, note: Option<String>) -> PhaseSummary {
    let summary = PhaseSummary::new(phase, elapsed, counts, note);
    tracing::info!(
        target: PROGRESS,
        "✓ {phase} {:.1}s: {} created, {} changed, {} unchanged{}",
        summary.seconds,
        counts.created,
        counts.changed,
        counts.unchanged,
        summary.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
    );
    summary
}

/// Run `up`. A component that does not become ready prints the summary so far and its report, and ends
/// with [`Outcome::Findings`]; other failures are errors. The summary is written to `out` as `output` and
/// names `log_file`. `yes` (`--yes`) answers the prod guard of `--prune`.
pub async fn up(
    ctx: &Context,
    opts: &UpOptions,
    yes: bool,
    output: OutputFormat,
    log_file: Option<PathBuf>,
    out: &mut dyn std::io::Write,
) -> Result<Outcome, EnvError> {
    let started = Instant::now();
    let env = crate::load_env(&ctx.repo, &opts.env)?;
    let mut desired = Desired::load(&ctx.repo, &env, opts.platform_file.as_deref())?;
    desired.apply_chart_mirrors(&opts.chart_mirrors)?;
    let descriptor = crate::descriptor::object(&ctx.repo, &env)?;
    let phases = opts.phases();
    let has = |phase: Phase| phases.contains(&phase);
    let resolver = Resolver::new(ctx.api.clone());
    let applier = Applier::new(resolver.clone(), opts.force_conflicts);
    let mut summaries = Vec::new();
    tracing::info!(
        target: PROGRESS,
        "up {} (namespace {}, context {}): {}",
        env.name,
        env.namespace,
        ctx.cluster.context,
        phases.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" → ")
    );

    if has(Phase::Preflight) {
        let t = Instant::now();
        let report = preflight::run(ctx, &desired, &resolver, &phases, opts.prune).await?;
        for note in &report.notes {
            tracing::info!(target: PROGRESS, "  {note}");
        }
        let note = format!("{} permissions checked", report.permissions_checked);
        summaries.push(done(Phase::Preflight, t.elapsed(), Counts::default(), Some(note)));
    }

    // The kinds pruned are those of the phases that run.
    let prune_phases: Vec<Phase> = phases
        .iter()
        .copied()
        .filter(|p| matches!(p, Phase::Secrets | Phase::Gitops))
        .collect();
    // Asked before anything is applied, so that a refusal changes nothing; what is confirmed is all that
    // goes at the end.
    let confirmed = if opts.prune && !prune_phases.is_empty() {
        let early = prune::candidates(&resolver, &ctx.repo, &desired, &prune_phases).await?;
        if !early.is_empty() {
            let action = format!(
                "delete {} the repository no longer declares ({})",
                objects(early.len()),
                prune::names(&early)
            );
            tracing_indicatif::suspend_tracing_indicatif(|| {
                confirm::guard(&env, &action, yes, Confirmation::YesNo)
            })?;
        }
        Some(early.into_iter().map(|c| c.id).collect::<BTreeSet<_>>())
    } else {
        None
    };

    if has(Phase::Platform) {
        let t = Instant::now();
        // helm is stopped in time for the check that says why it failed to end before the deadline.
        let helm = Helm::locate(&ctx.target, &ctx.cluster.context)
            .map_err(PlatformError::from)?
            .until(
                ctx.api
                    .deadline()
                    .checked_sub(platform::SERVER_CHECK)
                    .unwrap_or_else(tokio::time::Instant::now),
            );
        let shared = ctx.repo.shared_sealed_dir();
        let counts = platform::converge(
            &helm,
            &applier,
            &desired.platform,
            &env.provider,
            &shared,
            // helm waits within what is left of --timeout, keeping time to say why it failed.
            ctx.api
                .deadline()
                .saturating_duration_since(tokio::time::Instant::now())
                .saturating_sub(platform::SERVER_CHECK + platform::HELM_EXIT),
        )
        .await?;
        // The charts may have brought CRDs (Application, SealedSecret): look again.
        resolver.invalidate().await;
        let note = format!("{} charts", desired.platform.len());
        summaries.push(done(Phase::Platform, t.elapsed(), counts, Some(note)));
    }

    if has(Phase::Namespaces) {
        let t = Instant::now();
        let mut counts = apply::count(&applier.apply_all(&desired.namespaces, false).await?);
        counts.merge(crate::descriptor::publish(&applier, &descriptor).await?);
        summaries.push(done(Phase::Namespaces, t.elapsed(), counts, None));
    }

    if has(Phase::Secrets) {
        let t = Instant::now();
        let objects = desired.secrets.objects.clone()?;
        let applied = applier.apply_all(&objects, false).await?;
        let kept = applied.iter().filter(|a| a.left_to_argocd.is_some()).count();
        let mut note = format!("from {}", rel(&ctx.repo, &desired.secrets.dir));
        if kept > 0 {
            note.push_str(&format!("; {kept} kept in sync by Argo CD"));
        }
        summaries.push(done(
            Phase::Secrets,
            t.elapsed(),
            apply::count(&applied),
            Some(note),
        ));
    }

    let mut ready = true;
    let mut stuck = None;
    if has(Phase::Gitops) || has(Phase::Wait) {
        let (mut gitops_counts, mut gitops_time, mut wait_time) =
            (Counts::default(), Duration::ZERO, Duration::ZERO);
        if has(Phase::Gitops) && !desired.projects.is_empty() {
            let t = Instant::now();
            gitops_counts.merge(apply::count(&applier.apply_all(&desired.projects, false).await?));
            gitops_time += t.elapsed();
        }
        let waiter = Waiter {
            resolver: resolver.clone(),
            env: env.name.clone(),
            // The whole command ends at --timeout: so does the wait.
            deadline: ctx.api.deadline(),
            started: Instant::now(),
        };
        let mut ready_count = 0;
        for (wave, components) in desired.waves() {
            if has(Phase::Gitops) {
                let t = Instant::now();
                let objects: Vec<_> = components.iter().map(|c| c.object.clone()).collect();
                let counts = apply::count(&applier.apply_all(&objects, false).await?);
                crate::components::request_refresh(&resolver, &components).await?;
                tracing::info!(
                    target: PROGRESS,
                    "  wave {wave}: applied {} ({} created, {} changed, {} unchanged)",
                    components.iter().map(|c| c.app.as_str()).collect::<Vec<_>>().join(", "),
                    counts.created,
                    counts.changed,
                    counts.unchanged
                );
                gitops_counts.merge(counts);
                gitops_time += t.elapsed();
            }
            if has(Phase::Wait) {
                let t = Instant::now();
                let result = waiter.wave(wave, &components).await;
                wait_time += t.elapsed();
                match result {
                    Ok(done) => ready_count += done,
                    Err(WaitError::Stuck { stuck: list }) => {
                        ready = false;
                        stuck = Some(WaitError::Stuck { stuck: list });
                        break;
                    }
                    Err(err) => return Err(EnvError::Wait(err)),
                }
            }
        }
        if has(Phase::Gitops) {
            let note = format!(
                "{} Applications in {} waves",
                desired.components.len(),
                desired.waves().len()
            );
            summaries.push(done(Phase::Gitops, gitops_time, gitops_counts, Some(note)));
        }
        if has(Phase::Wait) {
            let note = if ready {
                format!("{ready_count} components ready")
            } else {
                format!("{ready_count} of {} components ready", desired.components.len())
            };
            summaries.push(done(Phase::Wait, wait_time, Counts::default(), Some(note)));
        }
    }

    let mut pruned = Vec::new();
    if !prune_phases.is_empty() {
        if ready {
            let found = match prune::candidates(&resolver, &ctx.repo, &desired, &prune_phases).await {
                Ok(found) => found,
                Err(err) if confirmed.is_some() => return Err(err),
                // Without --prune the listing only feeds a hint: a user who may not list these kinds loses
                // the hint, not the run.
                Err(err) => {
                    tracing::debug!("cannot tell what is no longer declared: {err}");
                    Vec::new()
                }
            };
            let (go, stay): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|c| confirmed.as_ref().is_some_and(|ids| ids.contains(&c.id)));
            if !go.is_empty() {
                let t = Instant::now();
                let deleter = Deleter::new(resolver.clone(), ctx.api.deadline(), started);
                pruned = prune::delete(&deleter, &go).await?;
                tracing::info!(
                    target: PROGRESS,
                    "✓ prune {:.1}s: deleted {}",
                    t.elapsed().as_secs_f64(),
                    prune::names(&go)
                );
            }
            if !stay.is_empty() {
                tracing::info!(
                    target: PROGRESS,
                    "{} {} no longer declared ({}); `up --prune` deletes them",
                    objects(stay.len()),
                    if stay.len() == 1 { "is" } else { "are" },
                    prune::names(&stay)
                );
            }
        } else if opts.prune {
            tracing::info!(target: PROGRESS, "not pruning: {} is not ready", env.name);
        }
    }

    let mut summary = Summary::new(&env, summaries, started.elapsed(), ready, log_file);
    summary.pruned = pruned;
    summary.print(output, out).map_err(EnvError::Output)?;
    match stuck {
        None => Ok(Outcome::Clean),
        Some(err) => {
            tracing::error!(target: crate::log::FILE_ONLY, "{} is not ready: {err}", env.name);
            eprintln!("error: {} is not ready:\n{err}", env.name);
            Ok(Outcome::Findings)
        }
    }
}

/// `1 object` / `3 objects`.
fn objects(n: usize) -> String {
    if n == 1 {
        "1 object".into()
    } else {
        format!("{n} objects")
    }
}

fn rel(repo: &shared::repo::Repo, path: &std::path::Path) -> String {
    path.strip_prefix(repo.root())
        .unwrap_or(path)
        .display()
        .to_string()
}

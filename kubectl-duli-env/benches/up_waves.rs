//! Benchmark: `up` from an empty cluster against the stand-in's operator simulation, compared with the
//! critical path and with the sequential sum of all components' delays.
//!
//! Every object the simulation handles becomes ready `DELAY` after it appears, so each stage whose readiness
//! gates the next costs `DELAY`: the platform phase (helm --wait on the Argo CD fixture's controller) and each
//! Application sync wave. `up` applies a wave only when the previous one is ready (as Argo CD sync waves
//! and `helmfile needs` do) and waits on a wave's components concurrently, so its floor is the critical path
//! = stages × DELAY; a tool that waits on one component at a time (the Ansible playbooks) pays
//! components × DELAY. The target is wall time ≤ 1.15 × the critical path.
//!
//! Run: `cargo bench -p kubectl-duli-env --bench up_waves` (or `bash kubectl-duli-env/benches/up-waves.sh`);
//! `DULI_BENCH_DELAYS=1s,2s` picks the per-stage delays. Exit code 1 when a run misses the target.

#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use kubectl_duli_env::desired::Desired;
use shared::environment::Environment;
use shared::repo::Repo;

fn delays() -> Vec<Duration> {
    let spec = std::env::var("DULI_BENCH_DELAYS").unwrap_or_else(|_| "1s,2s".into());
    spec.split(',')
        .map(|d| shared::duration::parse_duration(d).expect("DULI_BENCH_DELAYS: durations like 1s,2s"))
        .collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut missed = false;
    println!(
        "{:>7} {:>6} {:>10} {:>13} {:>11} {:>11} {:>9}",
        "delay", "stages", "components", "critical path", "sequential", "up (wall)", "up/crit"
    );
    for delay in delays() {
        let (stages, components, wall) = runtime.block_on(async {
            let world = support::World::start(delay).await;
            let repo = Repo::at(&world.repo).unwrap();
            let env = Environment::load(&repo, "staging").unwrap();
            let desired = Desired::load(&repo, &env, None).unwrap();
            // Stages gated on readiness: the platform phase (the Argo CD fixture's StatefulSet) + each wave.
            let stages = 1 + desired.waves().len();
            let components = 1 + desired.components.len();
            let run = world
                .run(&["up", "staging", "-o", "json", "--timeout", "5m"])
                .await
                .expect(0);
            assert_eq!(run.json()["ready"], true);
            (stages, components, run.elapsed)
        });
        let critical = delay * stages as u32;
        let sequential = delay * components as u32;
        let ratio = wall.as_secs_f64() / critical.as_secs_f64();
        missed |= ratio > 1.15;
        println!(
            "{:>7} {:>6} {:>10} {:>12.1}s {:>10.1}s {:>10.2}s {:>8.3}{}",
            format!("{:?}", delay),
            stages,
            components,
            critical.as_secs_f64(),
            sequential.as_secs_f64(),
            wall.as_secs_f64(),
            ratio,
            if ratio > 1.15 { "  MISSED (> 1.15)" } else { "" }
        );
    }
    std::process::exit(i32::from(missed));
}

//! The integration tests of `kubectl duli env`, one binary.
//!
//! - `discovery`: plugin discovery through the real kubectl 1.32 and 1.35 (all four plugins on a PATH).
//!
//! End-to-end tests of `kubectl duli env` through the real kubectl dispatch: our binary on a private PATH,
//! `/usr/bin/kubectl duli env …`, KUBECONFIG from kube-standin with its operator simulation, and real
//! helm 4 installing fixture charts in the platform phase.
//!
//! - `support`: the world each test gets (stand-in, repository copy, PATH, helm). helm talks to the
//!   stand-in directly, protobuf bodies and all.
//! - `up`: from empty to ready, idempotence, resume after a kill, faults, stuck components.
//! - `plan`, `status`, `down`: the other subcommands against an environment that `up` built.
//! - `prune`: `plan`'s deletions and `up --prune`: what goes, what never goes, prod's guard.
//! - `anywhere`: `status` and `list` from the descriptor `up` publishes, run from outside any repository.
//! - `corpus`: the bad-input corpus of issue #9 — every case exits 2 (or the documented code) with one
//!   sentence naming the file, field or resource and what to do, and applies and writes nothing.
//! - `leaks`: the secret-leak audit of issue #9 — `up`, `plan`, `status` at `-vv` with the DigitalOcean
//!   token and a kubeconfig token: neither in output, logs, temporary files, or helm's argv/environment.
//! - `platform_real`: `up --only platform` installing the real cert-manager, sealed-secrets and argo-cd
//!   charts from a mirror of `../shared/charts/repo` (provider `generic`).
//! - `faults`: the fault matrix of `status` and `up` (latency, 429, 500 bursts, dropped watches, the API
//!   server killed and restarted mid-run).

mod anywhere;
mod completion;
mod corpus;
mod discovery;
mod down;
mod faults;
mod leaks;
mod plan;
mod platform_real;
mod prune;
mod status;
mod support;
mod up;

//! `kubectl duli env`: bring an environment up, plan it, show it, take it down, list them.
//!
//! This replaces the Ansible `site.yml` orchestration (install_infrastructures, generate_sealed_secrets,
//! deploy_applications, export_connection) with one converging command, `up`, run in phases the user can
//! watch: preflight → platform → namespaces → secrets → gitops → wait → summary. Every phase converges from
//! any state (server-side apply with the field manager `apply::FIELD_MANAGER`, helm releases skipped when
//! already at the pinned version), so a second `up` changes nothing and a killed `up` resumes by running
//! again. `plan` is the same object set sent with `dryRun=All` and diffed against the live objects.
//!
//! Where to start: [`cli`] holds the flags and runs a parsed command (the binary `kubectl-duli-env` is only
//! `cli::run`); each subcommand is one module with an options struct, a function that returns a report, and
//! the report's `print`.
//!
//! Layout, one concern per module:
//! - [`cli`]: the command line (clap) and the one place that runs a command: logging, connection, dispatch.
//! - [`desired`]: what `up` would apply — namespaces, SealedSecrets, AppProjects, Applications by wave, and
//!   the platform charts — computed from the repository alone.
//! - `apply`: the server-side-apply engine (discovery, conflicts, created/changed/unchanged, concurrency).
//! - `preflight`, `platform` (running `helm`, with the `provider` token Secret), `namespaces`,
//!   `secrets`, `wait`: the phases; `up` runs them.
//! - `plan`, `status`, `down`, `list`: the other subcommands.
//! - `prune`: what `up` once applied that the repository no longer declares (`plan`'s deletions,
//!   `up --prune`).
//! - `descriptor`: the environment published into the cluster (`up`), and `status`/`list` from it when
//!   there is no repository.
//! - `components`: which live objects belong to which component, and their readiness.
//! - `summary`, `log`: what the user sees at the end, progress while it runs, and the log file.
//! - `lock`: one `up`/`down` per environment and cluster at a time.
//!
//! `kubectl-duli` (every slice in one binary, krew's entry point) is the crate `kubectl-duli`.

pub(crate) mod apply;
pub mod cli;
pub(crate) mod components;
pub(crate) mod descriptor;
pub mod desired;
pub(crate) mod down;
pub(crate) mod helm;
pub(crate) mod list;
pub(crate) mod lock;
pub(crate) mod log;
pub(crate) mod namespaces;
pub(crate) mod plan;
pub(crate) mod platform;
pub(crate) mod preflight;
pub(crate) mod provider;
pub(crate) mod prune;
pub(crate) mod secrets;
pub(crate) mod status;
pub(crate) mod summary;
pub(crate) mod up;
pub(crate) mod wait;

use std::path::PathBuf;

use serde::Serialize;

use shared::cluster::{Cluster, ClusterTarget};
use shared::environment::Environment;
use shared::repo::Repo;

/// The phases of `up`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Cluster reachable, permissions, storage class, helm.
    Preflight,
    /// The shared charts installed with helm (cert-manager, Argo CD, sealed-secrets, provider charts).
    Platform,
    /// The environment namespace and the system namespaces, labelled.
    Namespaces,
    /// The environment's SealedSecrets.
    Secrets,
    /// The AppProjects and Applications, applied wave by wave.
    Gitops,
    /// Every component followed until ready.
    Wait,
    /// Durations, counts and endpoints.
    Summary,
}

impl Phase {
    /// All phases in order.
    pub const ALL: [Phase; 7] = [
        Phase::Preflight,
        Phase::Platform,
        Phase::Namespaces,
        Phase::Secrets,
        Phase::Gitops,
        Phase::Wait,
        Phase::Summary,
    ];

    /// The lowercase name used on the command line and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Platform => "platform",
            Phase::Namespaces => "namespaces",
            Phase::Secrets => "secrets",
            Phase::Gitops => "gitops",
            Phase::Wait => "wait",
            Phase::Summary => "summary",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can stop an env command, each variant naming what to do next.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The repository could not be found.
    #[error(transparent)]
    Repo(#[from] shared::repo::RepoError),
    /// The environment file is missing or invalid.
    #[error(transparent)]
    Environment(#[from] shared::environment::EnvironmentError),
    /// The environment descriptor: not publishable, or neither a repository nor a descriptor.
    #[error(transparent)]
    Descriptor(#[from] shared::descriptor::DescriptorError),
    /// The cluster could not be reached or configured.
    #[error(transparent)]
    Cluster(#[from] shared::cluster::ClusterError),
    /// The prod guard refused.
    #[error(transparent)]
    Confirm(#[from] shared::confirm::ConfirmError),
    /// What `up` would apply could not be computed.
    #[error(transparent)]
    Desired(#[from] desired::DesiredError),
    /// An API call failed.
    #[error(transparent)]
    Api(#[from] shared::api::ApiError),
    /// Objects failed to apply.
    #[error(transparent)]
    Apply(#[from] apply::ApplyErrors),
    /// Preflight found problems.
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightFailed),
    /// The platform phase failed.
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    /// The secrets phase has nothing to apply.
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    /// The wait phase failed for good (not a timeout: those are findings).
    #[error(transparent)]
    Wait(#[from] wait::WaitError),
    /// `down` refused or failed.
    #[error(transparent)]
    Down(#[from] down::DownError),
    /// Another `up` or `down` of the environment is running.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// The log file could not be created.
    #[error("cannot write the log file {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Printing the result failed.
    #[error("{0:#}")]
    Output(anyhow::Error),
}

/// What every env command works with: the repository, the environment, the cluster.
#[derive(Debug, Clone)]
pub struct Context {
    /// The repository holding `helm/` and `gitops/`.
    pub repo: Repo,
    /// The selected cluster, as the user gave it (passed on to helm).
    pub target: ClusterTarget,
    /// The connected client.
    pub cluster: Cluster,
    /// Every API call goes through it: retries on 429/5xx, each call ended by the command's `--timeout`.
    pub api: shared::api::ApiClient,
}

/// Load one environment by name from the repository.
pub fn load_env(repo: &Repo, name: &str) -> Result<Environment, EnvError> {
    Ok(Environment::load(repo, name)?)
}

/// Write `value` as JSON or YAML (`-o json|yaml`) to `out`.
pub(crate) fn write_document<T: Serialize>(
    out: &mut dyn std::io::Write,
    value: &T,
    format: shared::output::OutputFormat,
) -> anyhow::Result<()> {
    let text = shared::output::to_document(value, format)?;
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

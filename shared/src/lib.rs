//! `duli`: the library behind the duli kubectl and helm plugins.
//!
//! The plugin binaries (`kubectl-duli-env`, `kubectl-duli-db`, `kubectl-duli-secrets`, `helm-duli-render`)
//! only parse arguments and print; everything they do lives here, one module per domain:
//!
//! - [`environment`]: the environments (`gitops/environments/*.yml`), loaded and validated once.
//! - [`repo`]: finding the repository that holds `helm/` and `gitops/`.
//! - [`cluster`]: kubectl-compatible cluster access (`--kubeconfig`, `--context`, `-n`).
//! - [`cli`]: the flags every plugin shares, so they behave alike.
//! - [`output`]: tables, `-o json|yaml`, exit codes.
//! - [`confirm`]: the prod guard (confirmation, `--yes`, no-TTY refusal).
//! - [`tools`]: locating external programs (helm, psql, redis-cli).
//! - [`readiness`]: pure readiness rules per kind (CNPG, RabbitMQ, Redis, Keycloak, Argo CD, rollouts).
//! - [`yaml_error`]: YAML parse errors as one sentence with the position, no source snippet.

pub mod cli;
pub mod cluster;
pub mod confirm;
pub mod environment;
pub mod error;
pub mod output;
pub mod readiness;
pub mod repo;
pub mod tools;
pub mod yaml_error;

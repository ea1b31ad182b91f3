//! `duli`: the library behind the duli kubectl and helm plugins.
//!
//! The plugin binaries (`kubectl-duli-env`, `kubectl-duli-db`, `kubectl-duli-secrets`, `helm-duli-render`)
//! only parse arguments and print; everything they do lives here, one module per domain:
//!
//! - [`environment`]: the environments (`gitops/environments/*.yml`), loaded and validated once.
//! - [`repo`]: finding the repository that holds `helm/` and `gitops/`.
//! - [`paths`]: every path of the repository layout, named once (consts and `Repo` methods).
//! - [`cluster`]: kubectl-compatible cluster access (`--kubeconfig`, `--context`, `-n`).
//! - [`cli`]: the flags every plugin shares, so they behave alike.
//! - [`output`]: tables, `-o json|yaml`, exit codes.
//! - [`confirm`]: the prod guard (confirmation, `--yes`, no-TTY refusal).
//! - [`tools`]: locating external programs (helm, psql, redis-cli).
//! - [`readiness`]: pure readiness rules per kind (CNPG, RabbitMQ, Redis, Keycloak, Argo CD, rollouts).
//! - [`db`]: `kubectl duli db` — data service status, live checks, port-forwards, connect, credentials.
//! - [`render`]: rendering, validating and policy-checking an environment (`helm duli-render`).
//! - [`secrets`]: kubeseal-compatible sealing, the certificate cache, init, verify, rotate and audit.
//! - [`api`]: the one API-call layer: per-request timeout, retries, the deadline, one error type.
//! - [`runner`]: what every `main` calls: runtime, logging, the deadline watchdog, signals, cleanups, exit code.
//! - [`fsio`]: bounded reads, the one atomic output path, bounded file names, stdout errors.
//! - [`names`]: Kubernetes object names by the API server's rules (DNS-1123 subdomain/label per kind).
//! - [`duration`]: the one duration grammar of every `--timeout`-like flag (`90s`, `1h30m`, `500ms`).
//! - [`yaml_error`]: YAML parse errors as one sentence with the position, no source snippet.
//! - [`envctl`]: `kubectl duli env` — up (phases, waves, waits), plan, status, down, list.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod confirm;
pub mod db;
pub mod duration;
pub mod envctl;
pub mod environment;
pub mod error;
pub mod fsio;
pub mod names;
pub mod output;
pub mod paths;
pub mod readiness;
pub mod render;
pub mod repo;
pub mod runner;
pub mod secrets;
pub mod tools;
pub mod yaml_error;

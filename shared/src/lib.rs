//! `shared`: what every duli plugin uses, and nothing that only one slice needs.
//!
//! Each slice lives in its own crate (`kubectl-duli-env`, `kubectl-duli-db`, `kubectl-duli-secrets`,
//! `helm-duli-render`); this crate holds the pieces they must do alike:
//!
//! - [`environment`]: the environments (`gitops/environments/*.yml`), loaded and validated once.
//! - [`repo`]: finding the repository that holds `helm/` and `gitops/`.
//! - [`paths`]: every path of the repository layout, named once (consts and `Repo` methods).
//! - [`cluster`]: kubectl-compatible cluster access (`--kubeconfig`, `--context`, `-n`).
//! - [`descriptor`]: environments published into the cluster, and where environments come from (repo or cluster).
//! - [`cli`]: the flags every plugin shares, so they behave alike.
//! - [`completion`]: kubectl-native completion (`kubectl_complete-duli-*` → `PLUGIN __complete WORDS`).
//! - [`output`]: tables, `-o json|yaml`, exit codes.
//! - [`confirm`]: the prod guard (confirmation, `--yes`, no-TTY refusal).
//! - [`tools`]: locating external programs (helm, psql, redis-cli).
//! - [`readiness`]: pure readiness rules per kind (CNPG, RabbitMQ, Redis, Keycloak, Argo CD, rollouts).
//! - [`api`]: the one API-call layer: per-request timeout, retries, the deadline, one error type.
//! - [`runner`]: what every `main` calls: runtime, logging, the deadline watchdog, signals, cleanups, exit code.
//! - [`fsio`]: bounded reads, the one atomic output path, bounded file names, stdout errors.
//! - [`names`]: Kubernetes object names by the API server's rules (DNS-1123 subdomain/label per kind).
//! - [`duration`]: the one duration grammar of every `--timeout`-like flag (`90s`, `1h30m`, `500ms`).
//! - [`yaml_error`]: YAML parse errors as one sentence with the position, no source snippet.

pub mod api;
pub mod cli;
pub mod cluster;
pub mod completion;
pub mod confirm;
pub mod descriptor;
pub mod duration;
pub mod environment;
pub mod error;
pub mod fsio;
pub mod names;
pub mod output;
pub mod paths;
pub mod readiness;
pub mod repo;
pub mod runner;
pub mod tools;
pub mod yaml_error;

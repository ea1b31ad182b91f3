//! Test support for every crate of the workspace, in one place (a dev-dependency only: no plugin binary
//! links it). Behaviour a real cluster has belongs in `kube-standin`, not here; this crate holds what a test
//! needs around it.
//!
//! - [`leakscan`]: the secret-leak scanner (argv and environment of a process tree, files written, output).
//! - [`services`]: real PostgreSQL (primary + standby), Redis (master + replica + Sentinel) and the
//!   machine's RabbitMQ, started once per test binary.
//! - [`servers`]: stand-ins for a broken API server (silent, answering one status code) and free/closed ports.
//! - [`relay`]: a TCP relay in front of an API server, to kill it and bring it back mid-run.
//! - [`corpus`]: the bad-input corpus: case tables, their checks, and proof that nothing was written
//!   (file snapshots) or applied (the stand-in's store and requests).
//! - [`chartrepo`]: the shared local chart repository served on 127.0.0.1 (request count), or a broken one.
//! - [`registry`]: a real OCI registry (the distribution registry) on 127.0.0.1, charts pushed by helm.
//! - [`certs`]: keys and certificates made with the `openssl` command-line tool.
//! - [`process`]: running a command to completion under a deadline, signals.
//! - [`tools`]: the real helm and kubectl builds the tests run (`DULI_HELM4_BIN`, …).
//! - [`paths`]: the workspace root, the CRDs next to it, copying fixture trees.

pub mod certs;
pub mod chartrepo;
pub mod corpus;
pub mod leakscan;
pub mod paths;
pub mod process;
pub mod registry;
pub mod relay;
pub mod servers;
pub mod services;
pub mod tools;

//! Integration tests of `kubectl duli secrets`, one binary: each module drives the built plugin (and
//! kube-standin, a small controller, kubesealpy) as a user would.
//!
//! The Python oracle and its virtualenv set-up stay next to this directory: `tests/kubesealpy_oracle.py`,
//! `tests/setup-kubesealpy.sh`.

mod support;

// Test support shared with the db plugin's tests, included from there until it has a crate of its own.
#[path = "../../../kubectl-duli-db/tests/it/leakscan.rs"]
mod leakscan;
#[path = "../../../kubectl-duli-db/tests/it/relay.rs"]
mod relay;

mod audit;
mod cli;
mod controller;
mod corpus;
mod faults;
mod init;
mod kubesealpy;
mod leaks;

//! Integration tests of `kubectl duli secrets`, one binary: each module drives the built plugin (and
//! kube-standin, a small controller, kubesealpy) as a user would.
//!
//! The Python oracle and its virtualenv set-up stay next to this directory: `tests/kubesealpy_oracle.py`,
//! `tests/setup-kubesealpy.sh`.

mod support;

// The leak scanner and the fault relay live in testkit, the one home of test support.
use testkit::{leakscan, relay};

mod audit;
mod cli;
mod controller;
mod corpus;
mod faults;
mod hardening;
mod init;
mod kubeseal;
mod kubesealpy;
mod leaks;
mod standin_controller;
mod unseal;

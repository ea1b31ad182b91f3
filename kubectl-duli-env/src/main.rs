//! `kubectl duli env`: bring an environment up, plan it, show it, take it down.
//!
//! Parse the flags and run the command ([`kubectl_duli_env::cli::main`]): exit 0 fine, 1 findings —
//! something would change or is not ready, 2 error, 130/143/129 stopped by a signal.

use std::process::ExitCode;

fn main() -> ExitCode {
    kubectl_duli_env::cli::entry(std::env::args_os().collect())
}

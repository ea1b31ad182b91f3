//! `kubectl duli env`: bring an environment up, plan it, show it, take it down.
//!
//! Parse the flags, run the command ([`kubectl_duli_env::cli::run`]), map the outcome to the exit code
//! (0 fine, 1 findings — something would change or is not ready, 2 error).

use std::process::ExitCode;

use clap::Parser;
use kubectl_duli_env::cli::{Cli, run};

fn main() -> ExitCode {
    shared::error::finish(run(Cli::parse()))
}

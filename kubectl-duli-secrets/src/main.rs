//! `kubectl duli secrets`: the command line through [`kubectl_duli_secrets::cli::entry`] (the shared
//! runner: one deadline, signals, cleanups), exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    kubectl_duli_secrets::cli::entry(std::env::args_os().collect())
}

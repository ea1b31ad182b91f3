//! `kubectl duli db`: parse the command line, run it (the library, [`kubectl_duli_db::run`]) under the
//! shared runner (one deadline, signals, cleanups), exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    kubectl_duli_db::cli::entry(std::env::args_os().collect())
}

//! `kubectl duli db`: parse the command line, run it (the library, [`kubectl_duli_db::run`]) under the
//! shared runner (one deadline, signals, cleanups), exit with its code.

use std::process::ExitCode;

use kubectl_duli_db::cli::Cli;
use shared::runner::Runner;

fn main() -> ExitCode {
    // `kubectl_complete-duli-db` runs `kubectl-duli-db __complete WORDS…` (kubectl's plugin completion).
    if let Some(code) = shared::completion::intercept(Cli::command_with_env_output) {
        return code;
    }
    let cli = Cli::parse_args();
    let (name, deadline) = cli.name_and_deadline();
    Runner::new(name)
        .verbose(cli.global.common.verbose)
        .color(cli.global.common.color)
        .deadline(deadline, "--timeout")
        .run(async move { kubectl_duli_db::run(cli, &mut shared::fsio::Stdout::new()).await })
}

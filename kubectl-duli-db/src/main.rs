//! `kubectl duli db`: parse the command line, run it (the library, [`kubectl_duli_db::run`]), exit with its code.

use std::process::ExitCode;

use kubectl_duli_db::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    shared::error::init_logging(cli.common.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return shared::error::finish(Err(err.into())),
    };
    shared::error::finish(runtime.block_on(kubectl_duli_db::run(cli, &mut std::io::stdout())))
}

//! `kubectl duli secrets`: parse the command line, run it (see the `kubectl_duli_secrets` library), exit
//! with its code.

use std::process::ExitCode;

use clap::Parser;
use kubectl_duli_secrets::cli::Cli;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::error::init_logging(cli.common.verbose);
    let result = kubectl_duli_secrets::run(cli, &mut std::io::stdout(), &mut std::io::stderr()).await;
    shared::error::finish(result)
}

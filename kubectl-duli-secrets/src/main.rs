//! `kubectl duli secrets`: parse the command line, run it through the shared runner (one deadline, signals,
//! cleanups; see the `kubectl_duli_secrets` library), exit with its code.

use std::process::ExitCode;

use clap::Parser;
use kubectl_duli_secrets::cli::{Cli, Command};
use shared::runner::Runner;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => kubectl_duli_secrets::cli::exit_on_parse_error(err),
    };
    let name = format!("kubectl duli secrets {}", cli.command.name());
    // Interactive commands (a hidden prompt, init's confirmations) wait on the user, not on the cluster.
    let deadline = match &cli.command {
        Command::Seal(options) if !options.prompts.is_empty() => None,
        Command::Init(_) | Command::Completion { .. } => None,
        _ => Some(cli.cert.controller.timeout),
    };
    Runner::new(name)
        .verbose(cli.common.verbose)
        .deadline(deadline, "--timeout")
        .run(async move {
            let mut stdout = shared::fsio::Stdout::new();
            kubectl_duli_secrets::run(cli, &mut stdout, &mut std::io::stderr()).await
        })
}

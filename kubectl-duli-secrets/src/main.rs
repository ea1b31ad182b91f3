//! `kubectl duli secrets`: parse the command line, run it through the shared runner (one deadline, signals,
//! cleanups; see the `kubectl_duli_secrets` library), exit with its code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kubectl_duli_secrets::cli::{Cli, Command};
use shared::runner::Runner;

/// How long after `--timeout` the runner's own deadline ends a command the API layer could not stop.
const BACKSTOP_MARGIN: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => kubectl_duli_secrets::cli::exit_on_parse_error(err),
    };
    let name = format!("kubectl duli secrets {}", cli.command.name());
    // `--timeout` bounds each exchange with the controller (the API layer ends it and names the call, so
    // a failed fetch can still fall back to the cached certificate); the runner's deadline is the backstop
    // for what the API layer cannot bound (a hanging exec credential plugin), a moment later. verify and
    // rotate make one exchange per file. Interactive commands (a hidden prompt, init's confirmations)
    // wait on the user, not on the cluster.
    let timeout = cli.cert.controller.timeout;
    let exchanges = match &cli.command {
        Command::Verify(options) => options.files.len(),
        Command::Rotate(options) => options.files.len(),
        _ => 1,
    };
    let deadline = match &cli.command {
        Command::Seal(options) if !options.prompts.is_empty() => None,
        Command::Init(_) | Command::Completion { .. } => None,
        _ => Some(
            timeout
                .saturating_mul(u32::try_from(exchanges).unwrap_or(u32::MAX))
                .saturating_add(BACKSTOP_MARGIN),
        ),
    };
    Runner::new(name)
        .verbose(cli.common.verbose)
        .deadline(deadline, "--timeout")
        .run(async move {
            let mut stdout = shared::fsio::Stdout::new();
            kubectl_duli_secrets::run(cli, &mut stdout, &mut std::io::stderr()).await
        })
}

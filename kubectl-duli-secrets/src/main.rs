//! `kubectl duli secrets`: parse the command line, run it through the shared runner (one deadline, signals,
//! cleanups; see the `kubectl_duli_secrets` library), exit with its code.

use std::process::ExitCode;
use std::time::Duration;

use kubectl_duli_secrets::cli::{Cli, Command};
use shared::runner::Runner;

/// How long after `--timeout` the runner's own deadline ends a command the API layer could not stop.
const BACKSTOP_MARGIN: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => kubectl_duli_secrets::cli::exit_on_parse_error(err),
    };
    // No subcommand: kubeseal's flags choose one.
    if let Err(message) = cli.resolve() {
        eprintln!("error: {message}");
        return ExitCode::from(shared::error::EXIT_ERROR);
    }
    let Some(command) = cli.chosen() else {
        unreachable!("resolve() chose a command")
    };
    let name = format!("kubectl duli secrets {}", command.name());
    // `--timeout` bounds each exchange with the controller (the API layer ends it and names the call, so
    // a failed fetch can still fall back to the cached certificate); the runner's deadline is the backstop
    // for what the API layer cannot bound (a hanging exec credential plugin), a moment later. verify and
    // rotate make one exchange per file. Interactive commands (a hidden prompt, init's confirmations)
    // wait on the user, not on the cluster.
    let timeout = cli.cert.controller.timeout;
    // verify makes one exchange per SealedSecret document.
    let exchanges = match command {
        Command::Verify(options) => kubectl_duli_secrets::count_documents(&options.files),
        Command::Rotate(options) => options.files.len(),
        _ => 1,
    };
    let deadline = match command {
        Command::Seal(options) if !options.prompts.is_empty() => None,
        // unseal never contacts the cluster and may ask the prod question.
        Command::Init(_) | Command::Unseal(_) | Command::Completion { .. } => None,
        _ => Some(
            timeout
                .saturating_mul(u32::try_from(exchanges).unwrap_or(u32::MAX))
                .saturating_add(BACKSTOP_MARGIN),
        ),
    };
    Runner::new(name)
        .verbose(cli.global.common.verbose)
        .deadline(deadline, "--timeout")
        .run(async move {
            let mut stdout = shared::fsio::Stdout::new();
            kubectl_duli_secrets::run(cli, &mut stdout, &mut std::io::stderr()).await
        })
}

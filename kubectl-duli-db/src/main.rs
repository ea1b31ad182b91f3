//! `kubectl duli db`: status, connect and credentials for the environment's PostgreSQL, Redis and RabbitMQ.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use duli::cli::{ClusterArgs, CommonArgs, CompletionShell};
use duli::error::{Outcome, finish};

/// Status, connect and credentials for the data services of a duli environment.
#[derive(Debug, Parser)]
#[command(name = "kubectl-duli-db", bin_name = "kubectl duli db", version, about)]
struct Cli {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    duli::error::init_logging(cli.common.verbose);
    finish(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Completion { shell } => {
            duli::cli::print_completion(shell, &Cli::command());
            Ok(Outcome::Clean)
        }
    }
}

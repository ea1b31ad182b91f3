//! `kubectl duli env`: bring an environment up, plan it, show it, take it down.
//!
//! A thin binary: parse the flags, hand them to `shared::envctl`, map the outcome to the exit code
//! (0 fine, 1 findings — something would change or is not ready, 2 error).
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use shared::cli::{ClusterArgs, CommonArgs, CompletionShell};
use shared::envctl::args::{EnvCommand, EnvSubcommand};
use shared::error::{Outcome, finish};

/// Bootstrap and converge a duli environment (staging, prod).
#[derive(Debug, Parser)]
#[command(name = "kubectl-duli-env", bin_name = "kubectl duli env", version, about)]
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
    #[command(flatten)]
    Env(EnvSubcommand),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli))
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Completion { shell } => {
            shared::cli::print_completion(shell, &Cli::command());
            Ok(Outcome::Clean)
        }
        Command::Env(subcommand) => {
            let command = EnvCommand {
                cluster: cli.cluster,
                common: cli.common,
                subcommand,
            };
            tokio::runtime::Runtime::new()?.block_on(shared::envctl::run(command))
        }
    }
}

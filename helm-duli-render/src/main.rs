//! `helm duli-render ENV`: parse the command line, run [`helm_duli_render::run`] on stdout and stderr, exit
//! with its code (0 clean, 1 findings or a diff, 2 error).

use std::process::ExitCode;

use clap::Parser;
use helm_duli_render::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::error::init_logging(cli.log_level());
    let result = helm_duli_render::run(cli, &mut std::io::stdout().lock(), &mut std::io::stderr());
    shared::error::finish(result)
}

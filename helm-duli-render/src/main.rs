//! `helm duli-render ENV`: parse the command line, run [`helm_duli_render::run`] through the shared runner
//! (signals, cleanups) with stdout as [`shared::fsio::Stdout`], exit with its code (0 clean, 1 findings or a
//! diff, 2 error).

use std::process::ExitCode;

use clap::Parser;
use helm_duli_render::cli::Cli;
use shared::fsio::Stdout;
use shared::runner::Runner;

fn main() -> ExitCode {
    let cli = Cli::parse();
    Runner::new("helm duli-render")
        .verbose(cli.log_level())
        .color(cli.color)
        .run(helm_duli_render::run(cli, Stdout::new(), std::io::stderr()))
}

//! `helm duli-render ENV`: the command line through [`helm_duli_render::cli::entry`] (the shared runner:
//! signals, cleanups; stdout as [`shared::fsio::Stdout`]), exit with its code (0 clean, 1 findings or a
//! diff, 2 error).

use std::process::ExitCode;

fn main() -> ExitCode {
    helm_duli_render::cli::entry(std::env::args_os().collect())
}

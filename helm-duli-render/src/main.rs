//! `helm duli-render ENV`: render every chart and ArgoCD Application of an environment and validate them.

use std::process::ExitCode;

use clap::Parser;
use duli::error::{Outcome, finish};

/// Render and validate every chart and ArgoCD Application of a duli environment.
#[derive(Debug, Parser)]
#[command(name = "helm-duli-render", bin_name = "helm duli-render", version, about)]
struct Cli {
    /// The environment to render (staging, prod).
    env: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    finish(run(cli))
}

fn run(_cli: Cli) -> anyhow::Result<Outcome> {
    anyhow::bail!("rendering is not implemented yet")
}

//! Exit codes and the top-level error report shared by every plugin binary.
//!
//! 0: all good; 1: the command ran and found problems (unhealthy service, policy finding, a diff,
//! something would change); 2: error (bad input, unreachable cluster, missing tool). A broken pipe
//! (`| head`) is not an error.

use std::process::ExitCode;

/// How a successful run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report: exit 0.
    Clean,
    /// Problems found: exit 1.
    Findings,
    /// Pass a child's exit code through (`db connect` runs psql).
    Child(u8),
}

/// Exit code for "problems found".
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code for errors.
pub const EXIT_ERROR: u8 = 2;

/// Turn a command's result into the process exit code, printing errors as one `error: …` line.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(EXIT_FINDINGS),
        Ok(Outcome::Child(code)) => ExitCode::from(code),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Set up logging on stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` wins.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,tower=warn,rustls=warn")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

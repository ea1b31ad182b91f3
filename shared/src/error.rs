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
            eprintln!("error: {}", message(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The one-line report of an error: its message, then each cause the text does not already hold.
///
/// Error types that print their source inline (`cannot read X: {source}`) and also return it from
/// `source()` would otherwise show every cause twice under `{:#}`.
pub fn message(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !cause.is_empty() && !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Set up logging on stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` wins.
/// The same as [`crate::runner::init_stderr_logging`], which the runner calls.
pub fn init_logging(verbose: u8) {
    crate::runner::init_stderr_logging(verbose);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read x: {source}")]
    struct Inline {
        source: std::io::Error,
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = anyhow::Error::new(Inline { source: io }).context("loading");
        assert_eq!(message(&err), "loading: cannot read x: gone");
        let plain = anyhow::anyhow!("one").context("two");
        assert_eq!(message(&plain), "two: one");
    }
}

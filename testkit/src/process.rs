//! Running a command to completion under a deadline (a run that takes longer is a hang and fails the
//! test), and signals.

use std::process::Command;
use std::time::{Duration, Instant};

/// What one command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stderr, lossily decoded.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// A run from a finished process's output and its wall time (for callers that run the process
    /// themselves, e.g. with bytes on stdin).
    pub fn from_output(output: &std::process::Output, elapsed: Duration) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    /// Both streams, for messages in assertions.
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Panic with both streams unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            code,
            "exit code {} (wanted {code}) after {:?}\n{}",
            self.code,
            self.elapsed,
            self.all()
        );
        self
    }

    /// stdout parsed as JSON (panics with both streams when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.all()))
    }
}

/// The deadline of [`output`].
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// Run a command to completion (60 s at most) and collect its output.
pub async fn output(command: tokio::process::Command) -> Run {
    output_within(command, DEFAULT_DEADLINE).await
}

/// Run a command to completion and collect its output; longer than `deadline` is a hang: the command is
/// killed and the test fails naming it.
pub async fn output_within(mut command: tokio::process::Command, deadline: Duration) -> Run {
    command.kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} did not finish within {deadline:?}",
                describe(command.as_std())
            )
        })
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", describe(command.as_std())));
    Run::from_output(&output, started.elapsed())
}

/// Run a command to completion and capture it: (exit code, stdout, stderr).
pub fn run(command: &mut Command) -> (i32, String, String) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", describe(command)));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The program and its arguments, space-joined (for messages).
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Send `signal` (`INT` for Ctrl-C, `TERM`, `KILL`) to process `pid`.
pub fn signal(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} {pid} failed");
}

/// Send `signal` to a whole process group (e.g. kubectl, the plugin it runs, and helm), as a terminal's
/// Ctrl-C reaches all of them.
pub fn signal_group(signal: &str, pgid: i32) {
    let status = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal} -- -{pgid} failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_collects_both_streams_and_the_code() {
        let mut command = tokio::process::Command::new("sh");
        command.args(["-c", "echo out; echo err >&2; exit 3"]);
        let run = output(command).await;
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (3, "out\n", "err\n")
        );
    }

    #[tokio::test]
    async fn a_run_past_its_deadline_fails_the_test() {
        let mut command = tokio::process::Command::new("sleep");
        command.arg("5");
        let started = Instant::now();
        let hang = tokio::spawn(output_within(command, Duration::from_millis(200)));
        let panic = hang.await.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("sleep 5 did not finish within"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

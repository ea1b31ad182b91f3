//! The runner's exit paths with real signals and real files: this test binary runs itself as a child
//! (`child_process_entry`, ignored in normal runs) in one of the scenarios, signals it, and checks the exit
//! code, the one line on stderr and that the registered cleanup removed its file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shared::error::Outcome;
use shared::runner::{Runner, on_exit, set_rerun_hint};

const SCENARIO: &str = "DULI_RUNNER_SCENARIO";
const DIR: &str = "DULI_RUNNER_DIR";

/// The child's side: a command that registers a cleanup removing `secret`, marks itself ready, and then
/// does what the scenario says.
#[test]
#[ignore = "run as a child process by the tests below"]
fn child_process_entry() {
    let scenario = std::env::var(SCENARIO).expect("scenario");
    let dir = PathBuf::from(std::env::var(DIR).expect("dir"));
    let secret = dir.join("secret");
    let deadline = scenario.starts_with("deadline").then_some(Duration::from_secs(1));
    let runner = Runner::new("kubectl duli test run").deadline(deadline, "--timeout");
    // Registered for the whole command (the guard outlives `run`), so every way out must run it.
    std::fs::write(&secret, "password").unwrap();
    let _cleanup = on_exit(move || {
        let _ = std::fs::remove_file(&secret);
    });
    let code = runner.run(async move {
        set_rerun_hint(Some("run `kubectl duli test run` again to converge".into()));
        std::fs::write(dir.join("ready"), "").unwrap();
        match scenario.as_str() {
            "findings" => return Ok(Outcome::Findings),
            "temporary" => {
                // A half-written output file, as write_atomically holds it.
                let temp = dir.join(".duli-1-0.tmp");
                std::fs::write(&temp, "half").unwrap();
                let _temp = shared::fsio::TempFile::new(temp);
                std::fs::write(dir.join("interactive"), "").unwrap();
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            "interactive" => {
                // Ctrl-C belongs to the child in the foreground; a second marker says it arrived.
                let _pass = shared::runner::InterruptPassThrough::start();
                std::fs::write(dir.join("interactive"), "").unwrap();
                while !dir.join("go-on").exists() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return Ok(Outcome::Child(7));
            }
            "stdout" | "stdout-full" | "stdout-fd3" => {
                // Here, not in the shell: the test harness's own header would fail first.
                if scenario == "stdout-full" {
                    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
                    rustix::stdio::dup2_stdout(&full).unwrap();
                }
                if scenario == "stdout-fd3" {
                    // The shell's fd 3 is the pipe; reopening it through /dev/fd needs no unsafe.
                    let pipe = std::fs::OpenOptions::new().write(true).open("/dev/fd/3").unwrap();
                    rustix::stdio::dup2_stdout(&pipe).unwrap();
                }
                let line = "x".repeat(1023) + "\n";
                for _ in 0..1024 {
                    shared::fsio::print_stdout(&line)?;
                }
                return Ok(Outcome::Findings);
            }
            // A blocking call on the runtime's thread: only the watchdog thread can end it.
            "deadline-blocked" | "signal-blocked" => std::thread::sleep(Duration::from_secs(600)),
            _ => tokio::time::sleep(Duration::from_secs(600)).await,
        }
        Ok(Outcome::Clean)
    });
    // `ExitCode::exit_process` is unstable: find the number by comparison.
    let number = (0..=255u8)
        .find(|n| std::process::ExitCode::from(*n) == code)
        .unwrap_or(255);
    std::process::exit(i32::from(number))
}

/// A path in the child's directory, which lives as long as this does.
struct Kept {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kept {
    fn exists(&self) -> bool {
        assert!(self._dir.path().is_dir(), "the test directory is gone");
        self.path.exists()
    }

    fn sibling(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }
}

struct Run {
    dir: tempfile::TempDir,
    child: Child,
    started: Instant,
}

fn start(scenario: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "runner::child_process_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, scenario)
        .env(DIR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = Run {
        dir,
        child,
        started: Instant::now(),
    };
    // `ready` is written after `secret`: a quick scenario may already have removed the secret again.
    wait_for(&run.dir.path().join("ready"));
    run
}

fn wait_for(path: &Path) {
    let until = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < until, "the child never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Run {
    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Exit code, stderr, time taken, and the path of the secret file (the directory stays until the test
    /// ends); fails after 20 s.
    fn finish(mut self) -> (Option<i32>, String, Duration, Kept) {
        let until = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("the child did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        let secret = Kept {
            path: self.dir.path().join("secret"),
            _dir: self.dir,
        };
        (status.code(), stderr, self.started.elapsed(), secret)
    }
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect()
}

fn assert_stopped_by(scenario: &str, signal: rustix::process::Signal, code: i32, name: &str) {
    let run = start(scenario);
    run.signal(signal);
    let (status, stderr, _, secret) = run.finish();
    assert_eq!(status, Some(code), "{stderr}");
    assert!(!secret.exists(), "the cleanup did not remove the file");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&format!("interrupted ({name})")), "{stderr}");
    assert!(lines[0].contains("run `kubectl duli test run` again"), "{stderr}");
}

#[test]
fn sigterm_runs_cleanups_and_exits_143_with_the_rerun_hint() {
    assert_stopped_by("signal", rustix::process::Signal::TERM, 143, "SIGTERM");
}

#[test]
fn sigint_exits_130() {
    assert_stopped_by("signal", rustix::process::Signal::INT, 130, "SIGINT");
}

#[test]
fn sighup_exits_129() {
    assert_stopped_by("signal", rustix::process::Signal::HUP, 129, "SIGHUP");
}

#[test]
fn a_command_blocked_in_a_system_call_still_stops_on_sigterm() {
    assert_stopped_by("signal-blocked", rustix::process::Signal::TERM, 143, "SIGTERM");
}

#[test]
fn the_deadline_ends_a_waiting_command_with_exit_2() {
    let (status, stderr, took, secret) = start("deadline").finish();
    assert_eq!(status, Some(2), "{stderr}");
    assert!(!secret.exists());
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("did not finish within 1s (--timeout)"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn the_watchdog_ends_a_command_blocked_outside_the_runtime() {
    let (status, stderr, took, secret) = start("deadline-blocked").finish();
    assert_eq!(status, Some(2), "{stderr}");
    assert!(!secret.exists());
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("did not finish within 1s"), "{stderr}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn a_normal_end_runs_cleanups_and_keeps_the_outcome() {
    let (status, stderr, _, secret) = start("findings").finish();
    assert_eq!(status, Some(1), "{stderr}");
    assert!(!secret.exists());
    assert!(error_lines(&stderr).is_empty(), "{stderr}");
}

/// Runs the child through `bash -c` with `redirect` applied to its stdout (`>&-`, `| head -c 1`).
fn run_shell(redirect: &str) -> (Option<i32>, String) {
    run_shell_scenario("stdout", redirect)
}

fn run_shell_scenario(scenario: &str, redirect: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "'{}' --ignored --exact runner::child_process_entry --nocapture --test-threads=1 {redirect}",
        exe.display()
    );
    let output = Command::new("bash")
        .args(["-c", &format!("set -o pipefail; {script}")])
        .env(SCENARIO, scenario)
        .env(DIR, dir.path())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_is_exit_2_naming_stdout() {
    let (status, stderr) = run_shell(">&-");
    assert_eq!(status, Some(2), "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(
        lines,
        vec!["error: cannot write to stdout: it is closed"],
        "{stderr}"
    );
}

#[test]
fn a_full_disk_on_stdout_is_exit_2_naming_stdout() {
    let (status, stderr) = run_shell_scenario("stdout-full", "");
    assert_eq!(status, Some(2), "{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: cannot write to stdout: No space left on device"),
        "{stderr}"
    );
}

#[test]
fn stdout_to_dev_null_is_not_a_closed_stdout() {
    let (status, stderr) = run_shell("> /dev/null");
    assert_eq!(status, Some(1), "{stderr}");
    assert!(error_lines(&stderr).is_empty(), "{stderr}");
}

#[test]
fn a_broken_pipe_on_stdout_is_quiet() {
    // The pipe arrives as fd 3 and becomes stdout only inside the scenario: the harness's header goes to
    // /dev/null, so only the command's own writes can meet the closed pipe.
    let (status, stderr) = run_shell_scenario("stdout-fd3", "3>&1 >/dev/null | head -c 1 >/dev/null");
    // pipefail reports the writer's own code: quiet success.
    assert!(matches!(status, Some(0)), "{status:?} {stderr}");
    assert!(error_lines(&stderr).is_empty(), "{stderr}");
}

#[test]
fn ctrl_c_passes_through_to_an_interactive_child_but_sigterm_still_stops() {
    let run = start("interactive");
    wait_for(&run.dir.path().join("interactive"));
    run.signal(rustix::process::Signal::INT);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(run.dir.path().join("go-on"), "").unwrap();
    let (status, stderr, _, secret) = run.finish();
    assert_eq!(status, Some(7), "{stderr}");
    assert!(!secret.exists());

    let run = start("interactive");
    wait_for(&run.dir.path().join("interactive"));
    run.signal(rustix::process::Signal::TERM);
    let (status, stderr, _, secret) = run.finish();
    assert_eq!(status, Some(143), "{stderr}");
    assert!(!secret.exists());
}

#[test]
fn a_temporary_output_file_is_removed_on_sigterm() {
    let run = start("temporary");
    wait_for(&run.dir.path().join("interactive"));
    let temp = run.dir.path().join(".duli-1-0.tmp");
    assert!(temp.exists());
    run.signal(rustix::process::Signal::TERM);
    let (status, stderr, _, kept) = run.finish();
    assert_eq!(status, Some(143), "{stderr}");
    assert!(
        kept.sibling("ready").exists(),
        "the directory must still be there"
    );
    assert!(!kept.sibling(".duli-1-0.tmp").exists());
}

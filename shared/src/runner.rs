//! The runner every plugin's `main` calls: the tokio runtime, logging (once), one deadline for the whole
//! command, SIGINT/SIGTERM/SIGHUP, cleanups, and the exit code.
//!
//! ```no_run
//! use std::process::ExitCode;
//! use std::time::Duration;
//! use shared::error::Outcome;
//! use shared::runner::Runner;
//!
//! fn main() -> ExitCode {
//!     // let cli = Cli::parse();
//!     Runner::new("kubectl duli db status")
//!         .verbose(0)
//!         .deadline(Some(Duration::from_secs(10)), "--timeout")
//!         .run(async { Ok(Outcome::Clean) })
//! }
//! ```
//!
//! **Deadline.** The command's future is dropped at the deadline (its `Drop`s run: `kill_on_drop` children,
//! [`crate::fsio::TempFile`]s) and the command ends with one sentence and exit 2. A watchdog thread, which
//! does not depend on the future being polled, ends the process [`GRACE`] later if that did not happen — an
//! exec credential plugin hanging inside kube's blocking code, or a blocking read, cannot outlive it.
//!
//! **Signals.** SIGINT, SIGTERM and SIGHUP stop the command the same way: the future is dropped, cleanups
//! run, one line says what was interrupted and what to re-run ([`set_rerun_hint`]), exit 130/143/129. A
//! second signal, or a command that does not stop within [`GRACE`], ends the process at once (cleanups
//! still run).
//!
//! **Cleanups.** [`on_exit`] registers a closure (remove a credential file, kill a child's process group,
//! end a port-forward) and returns a [`Cleanup`] guard; dropping the guard unregisters it. Registered
//! cleanups run, newest first, on every way out: normal exit, error, deadline, signal.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::duration::human;
use crate::error::{EXIT_ERROR, Outcome, finish};

/// How long a stopped or timed-out command has to unwind before the process is ended regardless.
pub const GRACE: Duration = Duration::from_secs(2);

type Action = Box<dyn FnOnce() + Send>;

struct Registry {
    next: u64,
    actions: BTreeMap<u64, Action>,
    rerun_hint: Option<String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    actions: BTreeMap::new(),
    rerun_hint: None,
});
/// Set by whichever path ends the process first, so cleanups run once and one message is printed.
static EXITING: AtomicBool = AtomicBool::new(false);

fn registry() -> MutexGuard<'static, Registry> {
    // A cleanup that panicked must not stop the others.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A registered cleanup; dropping it unregisters the cleanup without running it.
#[derive(Debug)]
#[must_use = "dropping the guard unregisters the cleanup at once"]
pub struct Cleanup {
    id: u64,
}

impl Cleanup {
    /// Run the cleanup now (if it has not run) and unregister it.
    pub fn run_now(self) {
        let action = registry().actions.remove(&self.id);
        if let Some(action) = action {
            action();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        registry().actions.remove(&self.id);
    }
}

/// Register `action` to run when the process exits in any way (normal, error, deadline, signal) while the
/// returned guard lives.
pub fn on_exit(action: impl FnOnce() + Send + 'static) -> Cleanup {
    let mut registry = registry();
    let id = registry.next;
    registry.next += 1;
    registry.actions.insert(id, Box::new(action));
    Cleanup { id }
}

/// Kill the process group `pgid` (a child started with `process_group(0)`) with SIGTERM on exit.
pub fn kill_process_group_on_exit(pgid: u32) -> Cleanup {
    on_exit(move || {
        if let Some(pid) = i32::try_from(pgid).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
        }
    })
}

/// Run every registered cleanup, newest first (each at most once).
pub fn run_cleanups() {
    loop {
        let next = registry().actions.pop_last();
        match next {
            Some((_, action)) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));
            }
            None => break,
        }
    }
}

/// What an interrupted command tells the user to do (`run `kubectl duli env up staging` again to
/// converge`); `None` for commands that change nothing.
pub fn set_rerun_hint(hint: Option<String>) {
    registry().rerun_hint = hint;
}

fn rerun_hint() -> Option<String> {
    registry().rerun_hint.clone()
}

static INTERRUPT_PASS_THROUGH: AtomicUsize = AtomicUsize::new(0);

/// Set by commands that Ctrl-C is the way to end (`--watch`), so SIGINT ends them without the
/// "interrupted … stopped before it finished" line (still exit 130, as `kubectl get -w`).
static INTERRUPT_ENDS_QUIETLY: AtomicBool = AtomicBool::new(false);

/// Ctrl-C is this command's normal end: no "interrupted" line for SIGINT (SIGTERM/SIGHUP still say it).
pub fn set_interrupt_ends_quietly() {
    INTERRUPT_ENDS_QUIETLY.store(true, Ordering::SeqCst);
}

/// The line an interrupted command prints, unless Ctrl-C is its normal end.
fn interruption_report(signal: StopSignal, message: String) -> Option<String> {
    let quiet = signal == StopSignal::Interrupt && INTERRUPT_ENDS_QUIETLY.load(Ordering::SeqCst);
    (!quiet).then_some(message)
}

/// While held, Ctrl-C (SIGINT) does not stop the command: an interactive child in the foreground (psql,
/// redis-cli) gets it from the terminal and handles it itself. SIGTERM and SIGHUP still stop the command.
#[derive(Debug)]
#[must_use = "dropping the guard ends the pass-through at once"]
pub struct InterruptPassThrough(());

impl InterruptPassThrough {
    /// Start passing Ctrl-C through to the foreground child.
    pub fn start() -> Self {
        INTERRUPT_PASS_THROUGH.fetch_add(1, Ordering::SeqCst);
        InterruptPassThrough(())
    }
}

impl Drop for InterruptPassThrough {
    fn drop(&mut self) {
        INTERRUPT_PASS_THROUGH.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Claim the exit: true for the first caller only.
fn claim_exit() -> bool {
    !EXITING.swap(true, Ordering::SeqCst)
}

/// Set up logging on stderr: warnings by default, `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` wins.
/// Colour by `--color` ([`crate::output::colors_on`]): by default only when stderr is a terminal and
/// `NO_COLOR` is unset. Idempotent: only the first call counts.
///
/// Without `-v`, kube's own per-request "failed with error …" line is left out: the plugin's error says the
/// same in one sentence.
pub fn init_stderr_logging(verbose: u8) {
    // kube's client logs a whole response body (a Secret, 50 MB of junk) when it cannot parse it: never
    // shown; the call's own error says what failed and where.
    let level = match verbose {
        0 => "warn,kube_client::client=off",
        1 => "info,kube_client::client=off,kube_client::client::builder=info",
        2 => "debug,kube_client::client=off,kube_client::client::builder=debug",
        _ => "trace,kube_client::client=off,kube_client::client::builder=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,tower=warn,rustls=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi_on_stderr())
        .with_target(false)
        .try_init();
}

/// True when log lines on stderr may carry colour (`--color`, `NO_COLOR`, `CLICOLOR_FORCE`, a terminal).
pub fn ansi_on_stderr() -> bool {
    crate::output::colors_on(crate::output::Stream::Stderr)
}

/// The signals that stop a command, with the exit code shells report for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ctrl-C: 130.
    Interrupt,
    /// `kill`: 143.
    Terminate,
    /// The terminal went away: 129.
    Hangup,
}

impl StopSignal {
    /// 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
            StopSignal::Hangup => 129,
        }
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }
}

/// How logging is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logging {
    Stderr,
    ByCommand,
}

/// Runs one command: see the module docs.
#[derive(Debug, Clone)]
pub struct Runner {
    name: String,
    verbose: u8,
    logging: Logging,
    deadline: Option<(Duration, String)>,
    margin: Duration,
}

impl Runner {
    /// A runner for the command called `name` in messages (`kubectl duli db status`).
    pub fn new(name: impl Into<String>) -> Self {
        Runner {
            name: name.into(),
            verbose: 0,
            logging: Logging::Stderr,
            deadline: None,
            margin: Duration::ZERO,
        }
    }

    /// `-v` count for stderr logging.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// `--color`: recorded for the whole process before logging starts (logs, tables).
    pub fn color(self, choice: crate::output::ColorChoice) -> Self {
        crate::output::set_color_choice(choice);
        self
    }

    /// The command sets up logging itself (env's progress bars and log file); the runner does not.
    pub fn logging_by_command(mut self) -> Self {
        self.logging = Logging::ByCommand;
        self
    }

    /// End the whole command after `deadline` (`None`: no deadline); `flag` names the flag that sets it
    /// (`--timeout`) in the message.
    pub fn deadline(mut self, deadline: Option<Duration>, flag: &str) -> Self {
        self.deadline = deadline.map(|d| (d, flag.to_string()));
        self
    }

    /// Leave the command `margin` after the deadline to end itself with its own, more specific message
    /// (env's "the API server is unreachable") before the runner stops it; messages still name the deadline.
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    fn deadline_message(&self) -> String {
        match &self.deadline {
            Some((deadline, flag)) => format!(
                "`{}` did not finish within {} ({flag}): the API server, a credential plugin or a program it \
                 waited on did not answer in time; check the cluster or raise {flag}",
                self.name,
                human(*deadline)
            ),
            None => String::new(),
        }
    }

    fn interrupted_message(&self, signal: StopSignal) -> String {
        match rerun_hint() {
            Some(hint) => format!(
                "interrupted ({}): `{}` stopped before it finished; {hint}",
                signal.name(),
                self.name
            ),
            None => format!(
                "interrupted ({}): `{}` stopped before it finished",
                signal.name(),
                self.name
            ),
        }
    }

    /// Run `command` to its exit code.
    pub fn run<Fut>(self, command: Fut) -> ExitCode
    where
        Fut: Future<Output = anyhow::Result<Outcome>>,
    {
        if self.logging == Logging::Stderr {
            init_stderr_logging(self.verbose);
        }
        let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(err) => {
                return finish(Err(
                    anyhow::Error::new(err).context("cannot start the async runtime")
                ));
            }
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<StopSignal>();
        if let Err(err) = self.spawn_signal_thread(stop_tx) {
            return finish(Err(err));
        }
        if let Some((deadline, _)) = &self.deadline {
            let message = self.deadline_message();
            let limit = deadline.saturating_add(self.margin).saturating_add(GRACE);
            std::thread::Builder::new()
                .name("duli-watchdog".into())
                .spawn(move || {
                    std::thread::sleep(limit);
                    hard_exit(Some(&message), EXIT_ERROR);
                })
                .ok();
        }
        let deadline = self.deadline.as_ref().map(|(d, _)| d.saturating_add(self.margin));
        let ended = runtime.block_on(async {
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = command => Ended::Done(result),
                () = sleep => Ended::Deadline,
                Ok(signal) = stop_rx => Ended::Signal(signal),
            }
        });
        // The command's future is dropped here: its own guards have run.
        runtime.shutdown_timeout(Duration::from_millis(200));
        if !claim_exit() {
            // The watchdog or the signal thread is ending the process.
            loop {
                std::thread::park();
            }
        }
        run_cleanups();
        match ended {
            Ended::Done(result) => finish(result),
            Ended::Deadline => {
                eprintln!("error: {}", self.deadline_message());
                ExitCode::from(EXIT_ERROR)
            }
            Ended::Signal(signal) => {
                if let Some(message) = interruption_report(signal, self.interrupted_message(signal)) {
                    eprintln!("error: {message}");
                }
                ExitCode::from(signal.exit_code())
            }
        }
    }

    /// A thread with its own small runtime waits for the signals, so they are seen even when the command's
    /// runtime is stuck: the first asks the command to stop, a second one or [`GRACE`] later ends the process.
    fn spawn_signal_thread(&self, stop: tokio::sync::oneshot::Sender<StopSignal>) -> anyhow::Result<()> {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
        let runner = self.clone();
        std::thread::Builder::new()
            .name("duli-signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let installed = (|| {
                        Ok::<_, std::io::Error>((
                            signal(SignalKind::interrupt())?,
                            signal(SignalKind::terminate())?,
                            signal(SignalKind::hangup())?,
                        ))
                    })();
                    let (mut int, mut term, mut hup) = match installed {
                        Ok(signals) => {
                            let _ = ready_tx.send(Ok(()));
                            signals
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    let first = loop {
                        let signal = next_signal(&mut int, &mut term, &mut hup).await;
                        // A foreground child (psql) handles Ctrl-C itself: it cancels a query, not us.
                        if signal == StopSignal::Interrupt
                            && INTERRUPT_PASS_THROUGH.load(Ordering::SeqCst) > 0
                        {
                            continue;
                        }
                        break signal;
                    };
                    let _ = stop.send(first);
                    let _ = tokio::time::timeout(GRACE, next_signal(&mut int, &mut term, &mut hup)).await;
                    let message = interruption_report(first, runner.interrupted_message(first));
                    hard_exit(message.as_deref(), first.exit_code());
                });
            })
            .map_err(|err| anyhow::Error::new(err).context("cannot start the signal handler"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(anyhow::Error::new(err).context("cannot install the signal handlers")),
            Err(_) => Err(anyhow::anyhow!("cannot install the signal handlers")),
        }
    }
}

async fn next_signal(
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
    hup: &mut tokio::signal::unix::Signal,
) -> StopSignal {
    tokio::select! {
        _ = int.recv() => StopSignal::Interrupt,
        _ = term.recv() => StopSignal::Terminate,
        _ = hup.recv() => StopSignal::Hangup,
    }
}

enum Ended {
    Done(anyhow::Result<Outcome>),
    Deadline,
    Signal(StopSignal),
}

/// End the process from a helper thread: cleanups, one line, the code. No-op when another path already
/// claimed the exit (that path finishes the job).
fn hard_exit(message: Option<&str>, code: u8) {
    if !claim_exit() {
        return;
    }
    run_cleanups();
    if let Some(message) = message {
        eprintln!("error: {message}");
    }
    std::process::exit(i32::from(code));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn cleanups_run_once_newest_first_and_dropped_guards_unregister() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let push = |n: u32| {
            let order = order.clone();
            move || order.lock().unwrap().push(n)
        };
        let first = on_exit(push(1));
        let dropped = on_exit(push(2));
        let last = on_exit(push(3));
        drop(dropped);
        run_cleanups();
        run_cleanups();
        let seen = order.lock().unwrap().clone();
        // Other tests may register concurrently; only ours are checked.
        let ours: Vec<u32> = seen.into_iter().filter(|n| [1, 2, 3].contains(n)).collect();
        assert_eq!(ours, vec![3, 1]);
        drop((first, last));
    }

    #[test]
    fn run_now_runs_once() {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        let guard = on_exit(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        guard.run_now();
        run_cleanups();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(StopSignal::Interrupt.exit_code(), 130);
        assert_eq!(StopSignal::Terminate.exit_code(), 143);
        assert_eq!(StopSignal::Hangup.exit_code(), 129);
    }

    #[test]
    fn messages_name_the_command_the_flag_and_the_hint() {
        let runner =
            Runner::new("kubectl duli db status").deadline(Some(Duration::from_secs(5)), "--timeout");
        let message = runner.deadline_message();
        assert!(
            message.contains("`kubectl duli db status` did not finish within 5s (--timeout)"),
            "{message}"
        );
        assert!(!message.contains('\n'));
        let message = runner.interrupted_message(StopSignal::Terminate);
        assert!(message.starts_with("interrupted (SIGTERM)"), "{message}");
    }
}

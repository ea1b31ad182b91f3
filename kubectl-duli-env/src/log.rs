//! What the user sees while an env command runs, and the log file of everything it did.
//!
//! Three tracing layers: progress bars (tracing-indicatif, one per component being waited on, shown only
//! on a terminal), stderr lines (warnings by default, `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` wins),
//! and a log file at debug level under the user's state directory, whose path the command prints at the
//! end. Progress lines — phase done, component ready — use the target `duli::progress` and always show;
//! per-change detail lines (`duli::progress::detail`) show only without a terminal, where the bars they
//! replace are hidden, so CI logs still tell the story.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::Span;
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::filter::{IndicatifFilter, hide_indicatif_span_fields};
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Target of progress lines that always show.
pub const PROGRESS: &str = "duli::progress";
/// kube's per-request trace layer, which logs every 5xx answer at ERROR level ("failed with status 500 …")
/// before our retries have had their say: kept out of stderr (the log file has it), so that a retried
/// burst of 500s prints nothing and a final failure prints one line, ours.
pub const KUBE_REQUESTS: &str = "kube_client::client::builder";
/// Target of records meant for the log file only (e.g. the final error, which stderr shows once already).
pub const FILE_ONLY: &str = "duli::logfile";

static TERMINAL: OnceLock<bool> = OnceLock::new();

/// True when stderr is a terminal (progress bars instead of detail lines).
pub fn is_terminal() -> bool {
    *TERMINAL.get_or_init(|| std::io::stderr().is_terminal())
}

/// Where a command's log file goes: `<state dir>/duli/logs/<command>-<env>-<timestamp>.log`
/// (`$XDG_STATE_HOME`, else `~/.local/state`; the local data directory on systems without a state dir).
pub fn log_path(command: &str, env: Option<&str>) -> Option<PathBuf> {
    let base = state_dir()?;
    let stamp = timestamp();
    let name = match env {
        Some(env) => format!("{command}-{env}-{stamp}-{}.log", std::process::id()),
        None => format!("{command}-{stamp}-{}.log", std::process::id()),
    };
    Some(base.join("logs").join(name))
}

/// The user's duli state directory: `$DULI_STATE_DIR`, else `$XDG_STATE_HOME/duli` (`~/.local/state/duli`),
/// else the local data directory's `duli`.
pub fn state_dir() -> Option<PathBuf> {
    std::env::var_os("DULI_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::state_dir().map(|d| d.join("duli")))
        .or_else(|| dirs::data_local_dir().map(|d| d.join("duli")))
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
fn timestamp() -> String {
    jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Progress lines print as their bare message; everything else in tracing's usual format.
struct ProgressFormat {
    inner: tracing_subscriber::fmt::format::Format,
}

impl<S, N> FormatEvent<S, N> for ProgressFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target().starts_with(PROGRESS) {
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            writeln!(writer)
        } else {
            self.inner.format_event(ctx, writer, event)
        }
    }
}

/// Set up logging for one command; `log_file` is created (with its directory) when given.
pub fn init(verbose: u8, log_file: Option<&Path>) -> Result<(), std::io::Error> {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let detail = if is_terminal() { "off" } else { "info" };
    // kube's own lines (`WARN eof in poll: …` while the API server restarts, a watcher's retries) are what
    // our retries handle: at the default verbosity they go to the log file only, and stderr says once what
    // the command waits for.
    let libraries = if verbose == 0 {
        ",kube_client=off,kube_runtime=off"
    } else {
        ""
    };
    let stderr_filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=warn,tower=warn,rustls=warn,{KUBE_REQUESTS}=off{libraries},{PROGRESS}=info,{PROGRESS}::detail={detail},{FILE_ONLY}=off"
        ))
    });
    // One line per task: spinner, its current message, time spent.
    let style =
        indicatif::ProgressStyle::with_template("{span_child_prefix}{spinner:.cyan} {wide_msg} {elapsed:>4}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let indicatif = IndicatifLayer::new()
        .with_span_field_formatter(hide_indicatif_span_fields(DefaultFields::new()))
        .with_progress_style(style);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(indicatif.get_stderr_writer())
        .with_ansi(shared::runner::ansi_on_stderr())
        .event_format(ProgressFormat {
            inner: tracing_subscriber::fmt::format().with_target(false),
        })
        .with_filter(stderr_filter);
    let file_layer = match log_file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = open_private(path)?;
            let filter = tracing_subscriber::EnvFilter::new(
                "info,duli=debug,shared=debug,kubectl_duli_env=debug,hyper=warn,tower=warn,rustls=warn",
            );
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(Mutex::new(file))
                    .with_filter(filter),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .with(indicatif.with_filter(IndicatifFilter::new(false)))
        .try_init();
    Ok(())
}

/// Open (create, append to) a log file readable by its owner only: it records helm's output and the
/// cluster's messages, which are nobody else's business.
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// One line of progress that a person follows: a bar on a terminal, changes as log lines otherwise.
#[derive(Clone)]
pub struct Task {
    inner: Arc<TaskInner>,
}

struct TaskInner {
    span: Span,
    label: String,
    last: Mutex<String>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("label", &self.inner.label).finish()
    }
}

impl Task {
    /// A task labelled `label` (e.g. `wave 3 staging-postgres-instance`).
    pub fn new(label: impl Into<String>) -> Self {
        let label = label.into();
        let span = tracing::info_span!("task", indicatif.pb_show = tracing::field::Empty, task = %label);
        span.pb_set_message(&label);
        Task {
            inner: Arc::new(TaskInner {
                span,
                label,
                last: Mutex::new(String::new()),
            }),
        }
    }

    /// The span to run the task's work in (its bar shows while the span is entered).
    pub fn span(&self) -> Span {
        self.inner.span.clone()
    }

    /// Report the current state; only changes are shown.
    pub fn set(&self, message: &str) {
        let mut last = self.inner.last.lock().unwrap_or_else(|e| e.into_inner());
        if *last == message {
            return;
        }
        *last = message.to_string();
        drop(last);
        self.inner
            .span
            .pb_set_message(&format!("{}: {message}", self.inner.label));
        tracing::info!(target: "duli::progress::detail", "  {}: {message}", self.inner.label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_sortable_utc() {
        let stamp = timestamp();
        assert_eq!(stamp.len(), 16, "{stamp}");
        assert!(stamp.starts_with("20"), "{stamp}");
        assert!(stamp.ends_with('Z'));
    }

    #[cfg(unix)]
    #[test]
    fn log_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("up.log");
        drop(open_private(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn log_files_go_under_the_state_directory() {
        let path = log_path("up", Some("staging")).unwrap();
        assert!(path.to_string_lossy().contains("duli"), "{}", path.display());
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("up-staging-")
        );
    }
}

//! Every file the plugins read or write, and stdout, through one bounded, careful path.
//!
//! - [`read_bounded`] / [`read_to_string_bounded`]: a size cap with a message naming the file and the cap;
//!   FIFOs, devices (`/dev/zero`), sockets and directories refused; symlinks followed only to regular files.
//! - [`read_body_bounded`] (HTTP bodies) and [`read_stream_bounded`] (any `AsyncRead`): a byte cap, a
//!   per-read idle bound and an overall deadline, so a drip-feeding server cannot hold a command.
//! - [`write_atomically`]: the one output path. Refuses to replace a symlink, FIFO, device or directory;
//!   creates 0600 for [`Mode::Secret`]; writes a temporary in the same directory, syncs and renames it; the
//!   temporary is removed on every exit path (error, drop, and signals or the watchdog through
//!   [`crate::runner::on_exit`]).
//! - [`bounded_file_name`]: output file names that fit `NAME_MAX` for any valid object name, collision-free.
//! - [`Stdout`]: a broken pipe stays quiet (exit code as for success), any other stdout error is
//!   "cannot write to stdout: …" (exit 2), and a closed stdout (`>&-`) is noticed, not silently ignored.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// A cap for small configuration files (environment files, catalogs, kubeconfig snippets).
pub const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;
/// Longest file name the file systems in use accept (bytes).
pub const NAME_MAX: usize = 255;

/// A file that could not be read or written safely.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Larger than the cap.
    #[error("{what} {} is larger than {}, the most this command reads; check the path or shrink the file", path.display(), human_bytes(*limit))]
    TooLarge {
        /// What the file is for (`environment file`).
        what: String,
        /// The path given.
        path: PathBuf,
        /// The cap in bytes.
        limit: u64,
    },
    /// A FIFO, device, socket or directory where a regular file belongs.
    #[error("{what} {} is {kind}, not a regular file; give the path of a file", path.display())]
    NotRegular {
        /// What the file is for.
        what: String,
        /// The path given.
        path: PathBuf,
        /// `a FIFO`, `a character device`, `a directory`, …
        kind: &'static str,
    },
    /// An output path that must not be replaced.
    #[error("will not write {what} to {}: it is {kind}, which a write would replace; give the path of a regular file", path.display())]
    WontReplace {
        /// What was being written.
        what: String,
        /// The path given.
        path: PathBuf,
        /// `a symlink`, `a FIFO`, …
        kind: &'static str,
    },
    /// The OS refused.
    #[error("cannot {action} {what} {}: {source}", path.display())]
    Io {
        /// `read`, `write`, `replace`.
        action: &'static str,
        /// What the file is for.
        what: String,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// `1 MiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symlink"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read at most `limit` bytes of the regular file at `path` (symlinks followed to regular files only);
/// `what` names the file in messages (`environment file`).
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, FsError> {
    let io_error = |source| FsError::Io {
        action: "read",
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let not_regular = |kind| FsError::NotRegular {
        what: what.to_string(),
        path: path.to_path_buf(),
        kind,
    };
    // Checked before opening: opening a FIFO for reading would block until a writer comes.
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if !metadata.is_file() {
        return Err(not_regular(kind_of(&metadata.file_type())));
    }
    // Non-blocking open, checked again on the handle: the path may have been swapped in between.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(not_regular(kind_of(&metadata.file_type())));
    }
    let too_large = || FsError::TooLarge {
        what: what.to_string(),
        path: path.to_path_buf(),
        limit,
    };
    if metadata.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow while read: never more than limit + 1 bytes.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text; invalid UTF-8 is an error naming the file.
pub fn read_to_string_bounded(path: &Path, limit: u64, what: &str) -> Result<String, FsError> {
    let bytes = read_bounded(path, limit, what)?;
    String::from_utf8(bytes).map_err(|err| FsError::Io {
        action: "read",
        what: what.to_string(),
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            ),
        ),
    })
}

/// A body or stream that could not be read within its bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More than the cap.
    #[error("the answer to {what} is larger than {}, the most this command reads", human_bytes(*limit as u64))]
    TooLarge {
        /// What was read (`GET /v1/cert.pem`).
        what: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// No data for the idle bound, or the deadline passed while reading.
    #[error("the answer to {what} stalled: nothing arrived for {}", crate::duration::human(*after))]
    Stalled {
        /// What was read.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// The connection failed mid-body.
    #[error("the answer to {what} broke off ({cause})")]
    Broken {
        /// What was read.
        what: String,
        /// The transport's message, first line.
        cause: String,
    },
}

/// The idle bound for the next read: `idle`, cut short by `deadline`.
fn next_read_until(idle: Duration, deadline: Option<Instant>) -> Instant {
    let idle_until = Instant::now() + idle;
    deadline.map_or(idle_until, |deadline| deadline.min(idle_until))
}

/// Read an HTTP body of at most `limit` bytes, each frame within `idle`, the whole before `deadline`.
pub async fn read_body_bounded<B>(
    body: B,
    limit: usize,
    idle: Duration,
    what: &str,
) -> Result<Vec<u8>, BodyError>
where
    B: http_body::Body + Unpin,
    B::Data: bytes::Buf,
    B::Error: fmt::Display,
{
    read_body_until(body, limit, idle, None, what).await
}

/// [`read_body_bounded`] with an overall deadline too (a drip-feeding server sends within `idle` forever).
pub async fn read_body_until<B>(
    mut body: B,
    limit: usize,
    idle: Duration,
    deadline: Option<Instant>,
    what: &str,
) -> Result<Vec<u8>, BodyError>
where
    B: http_body::Body + Unpin,
    B::Data: bytes::Buf,
    B::Error: fmt::Display,
{
    use bytes::Buf;
    use http_body_util::BodyExt;
    let started = Instant::now();
    let mut bytes = Vec::new();
    loop {
        let until = next_read_until(idle, deadline);
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) => {
                return Err(BodyError::Stalled {
                    what: what.to_string(),
                    after: if deadline.is_some_and(|d| d <= until) {
                        started.elapsed()
                    } else {
                        idle
                    },
                });
            }
            Ok(None) => return Ok(bytes),
            Ok(Some(Err(err))) => {
                return Err(BodyError::Broken {
                    what: what.to_string(),
                    cause: err.to_string().lines().next().unwrap_or_default().to_string(),
                });
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(mut data) = frame.into_data() {
            if bytes.len() + data.remaining() > limit {
                return Err(BodyError::TooLarge {
                    what: what.to_string(),
                    limit,
                });
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                bytes.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
}

/// Read a byte stream (a child's stdout, a socket) of at most `limit` bytes, each read within `idle`, the
/// whole before `deadline`.
pub async fn read_stream_bounded<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    limit: usize,
    idle: Duration,
    deadline: Option<Instant>,
    what: &str,
) -> Result<Vec<u8>, BodyError> {
    let started = Instant::now();
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let until = next_read_until(idle, deadline);
        let n = match tokio::time::timeout_at(until, reader.read(&mut buffer)).await {
            Err(_) => {
                return Err(BodyError::Stalled {
                    what: what.to_string(),
                    after: if deadline.is_some_and(|d| d <= until) {
                        started.elapsed()
                    } else {
                        idle
                    },
                });
            }
            Ok(Err(err)) => {
                return Err(BodyError::Broken {
                    what: what.to_string(),
                    cause: err.to_string(),
                });
            }
            Ok(Ok(0)) => return Ok(bytes),
            Ok(Ok(n)) => n,
        };
        if bytes.len() + n > limit {
            return Err(BodyError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        bytes.extend_from_slice(&buffer[..n]);
    }
}

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Created 0600 (secrets, sealed output, credentials); an existing file's mode is not kept.
    Secret,
    /// Created 0666 minus the umask; an existing file keeps its mode.
    Normal,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of every temporary [`write_atomically`] creates (`.duli-<pid>-<n>.tmp`), so a rerun can find
/// leftovers of a killed run: see [`remove_stale_temporaries`].
pub const TEMP_PREFIX: &str = ".duli-";

/// Write `bytes` to `path` atomically: a temporary in the same directory, synced, then renamed over `path`.
///
/// Refuses (one sentence naming the path) when `path` is a symlink, FIFO, device, socket or directory; a
/// missing parent directory is an error, not created. The temporary is removed on every failure, when this
/// function is cancelled, and by the runner's cleanups on a signal or the watchdog.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: Mode, what: &str) -> Result<(), FsError> {
    let io_error = |action, source| FsError::Io {
        action,
        what: what.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let existing = match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => Some(metadata),
        Ok(metadata) => {
            return Err(FsError::WontReplace {
                what: what.to_string(),
                path: path.to_path_buf(),
                kind: kind_of(&metadata.file_type()),
            });
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error("write", err)),
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let create_mode = match (mode, &existing) {
        (Mode::Secret, _) => 0o600,
        (Mode::Normal, Some(metadata)) => metadata.permissions().mode() & 0o7777,
        (Mode::Normal, None) => 0o666,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(create_mode)
        .open(&temp)
        .map_err(|err| io_error("write", err))?;
    let guard = TempFile::new(temp.clone());
    if mode == Mode::Normal && existing.is_some() {
        // `mode()` is filtered by the umask; an existing file's mode is kept exactly.
        file.set_permissions(std::fs::Permissions::from_mode(create_mode))
            .map_err(|err| io_error("write", err))?;
    }
    file.write_all(bytes).map_err(|err| io_error("write", err))?;
    file.sync_all().map_err(|err| io_error("write", err))?;
    drop(file);
    // Checked again right before the rename: the path may have become a symlink meanwhile.
    if let Ok(metadata) = std::fs::symlink_metadata(path)
        && !metadata.is_file()
    {
        return Err(FsError::WontReplace {
            what: what.to_string(),
            path: path.to_path_buf(),
            kind: kind_of(&metadata.file_type()),
        });
    }
    std::fs::rename(&temp, path).map_err(|err| io_error("replace", err))?;
    guard.keep();
    Ok(())
}

/// A temporary file removed when dropped, or by the runner's cleanups on a signal or the watchdog.
#[derive(Debug)]
pub struct TempFile {
    path: Option<PathBuf>,
    _cleanup: crate::runner::Cleanup,
}

impl TempFile {
    /// Track `path` (already created) for removal.
    pub fn new(path: PathBuf) -> Self {
        let for_cleanup = path.clone();
        let cleanup = crate::runner::on_exit(move || {
            let _ = std::fs::remove_file(&for_cleanup);
        });
        TempFile {
            path: Some(path),
            _cleanup: cleanup,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Stop tracking: the file was renamed into place (or is wanted).
    pub fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Remove `.duli-<pid>-<n>.tmp` files in `dir` left by runs that were killed (their process is gone).
/// Returns how many were removed.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive
            && entry.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// A file name `stem` + `extension` (`.yml`) of at most [`NAME_MAX`] bytes. Short names are unchanged;
/// longer ones keep a prefix of the stem and add 16 hex digits of its SHA-256, so distinct stems stay
/// distinct. A 253-character object name plus a kind prefix and `.yml` fits. `/` and NUL become `_`.
pub fn bounded_file_name(stem: &str, extension: &str) -> String {
    let clean: String = stem
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    let full = format!("{clean}{extension}");
    if full.len() <= NAME_MAX && clean == stem && !clean.is_empty() {
        return full;
    }
    let digest = sha2::Sha256::digest(stem.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let room = NAME_MAX.saturating_sub(extension.len() + 1 + hash.len());
    let mut cut = room.min(clean.len());
    while !clean.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}{extension}", &clean[..cut])
}

/// Stdout for command output: see the module docs for what its errors mean.
#[derive(Debug, Default)]
pub struct Stdout {
    checked: bool,
}

/// stdout could not be written (not a broken pipe).
#[derive(Debug, thiserror::Error)]
#[error("cannot write to stdout: {0}")]
pub struct StdoutError(#[source] pub io::Error);

impl Stdout {
    /// A writer to the process's stdout.
    pub fn new() -> Self {
        Stdout::default()
    }

    fn check_open(&mut self) -> io::Result<()> {
        if !self.checked {
            // Rust's stdout swallows writes to a closed fd 1 (EBADF); a `>&-` must not lose output quietly.
            use std::os::fd::AsFd;
            let stdout = io::stdout();
            rustix::io::fcntl_getfd(stdout.as_fd())
                .map_err(|_| io::Error::new(io::ErrorKind::Other, "it is closed"))?;
            self.checked = true;
        }
        Ok(())
    }

    /// Write all of `bytes` and flush. A broken pipe is returned as the plain `io::Error`
    /// ([`crate::error::finish`] ends quietly on it); anything else as "cannot write to stdout: …".
    pub fn write_all_flush(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.write_all(bytes)?;
        self.flush()?;
        Ok(())
    }
}

fn stdout_error(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        err
    } else {
        io::Error::new(err.kind(), StdoutError(err))
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_open().map_err(stdout_error)?;
        io::stdout().lock().write(buf).map_err(stdout_error)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check_open().map_err(stdout_error)?;
        io::stdout().lock().flush().map_err(stdout_error)
    }
}

/// Print `text` on stdout with the meaning of [`Stdout`]'s errors.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    Stdout::new().write_all_flush(text.as_bytes())
}

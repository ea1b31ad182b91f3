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
                "it is not valid UTF-8 text (invalid byte at offset {})",
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

/// The error of a read that got nothing by `until`: stalled for the whole run when the deadline was the
/// bound, else for `idle`.
fn stalled(
    what: &str,
    started: Instant,
    idle: Duration,
    deadline: Option<Instant>,
    until: Instant,
) -> BodyError {
    BodyError::Stalled {
        what: what.to_string(),
        after: if deadline.is_some_and(|d| d <= until) {
            started.elapsed()
        } else {
            idle
        },
    }
}

/// Read an HTTP body of at most `limit` bytes, each frame within `idle`, the whole before `deadline` when
/// there is one (a drip-feeding server sends within `idle` forever).
pub async fn read_body_bounded<B>(
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
                return Err(stalled(what, started, idle, deadline, until));
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
                return Err(stalled(what, started, idle, deadline, until));
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
/// missing parent directory is an error, not created. The temporary is removed on every failure and by the
/// runner's cleanups when a signal or the watchdog ends the process mid-write.
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
            if stdout_was_closed() {
                return Err(io::Error::other("it is closed"));
            }
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

/// True when the process started with stdout closed (`>&-`). Rust's runtime then opens `/dev/null`
/// read-write as fd 1 and every write "succeeds"; a shell's `>/dev/null` opens it write-only, so a
/// read-write `/dev/null` on fd 1 is taken for a closed stdout.
pub fn stdout_was_closed() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let stdout = io::stdout();
    let fd = stdout.as_fd();
    let Ok(flags) = rustix::fs::fcntl_getfl(fd) else {
        return true;
    };
    if flags & rustix::fs::OFlags::ACCMODE != rustix::fs::OFlags::RDWR {
        return false;
    }
    match (rustix::fs::fstat(fd), std::fs::metadata("/dev/null")) {
        (Ok(stat), Ok(null)) => {
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::CharacterDevice
                && stat.st_rdev == null.rdev()
        }
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn temporaries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[test]
    fn a_file_over_the_cap_is_refused_naming_file_and_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.yml");
        std::fs::write(&path, vec![b'a'; 2048]).unwrap();
        let err = read_bounded(&path, 1024, "environment file")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment file") && err.contains("staging.yml"),
            "{err}"
        );
        assert!(err.contains("larger than 1 KiB"), "{err}");
        assert_eq!(read_bounded(&path, 2048, "environment file").unwrap().len(), 2048);
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(Path::new("/dev/zero"), CONFIG_FILE_LIMIT, "environment file").unwrap_err();
        assert!(
            err.to_string().contains("/dev/zero is a character device"),
            "{err}"
        );
        // A symlink to /dev/zero is followed, and refused for what it points at.
        let link = dir.path().join("staging.yml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read_bounded(&link, CONFIG_FILE_LIMIT, "environment file").unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let err = read_bounded(dir.path(), CONFIG_FILE_LIMIT, "environment file").unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        // A FIFO without a writer: opening it would block forever.
        let fifo = dir.path().join("fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = read_bounded(&fifo, CONFIG_FILE_LIMIT, "catalog").unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
        // A symlink to a regular file is followed.
        let target = dir.path().join("real.yml");
        std::fs::write(&target, "name: staging\n").unwrap();
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            read_to_string_bounded(&link, 100, "environment file").unwrap(),
            "name: staging\n"
        );
    }

    use std::process::Command;

    #[test]
    fn invalid_utf8_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yml");
        std::fs::write(&path, b"ok\xff").unwrap();
        let err = read_to_string_bounded(&path, 100, "environment file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.yml") && err.contains("not valid UTF-8"), "{err}");
    }

    #[test]
    fn secrets_are_written_0600_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealed.yml");
        write_atomically(&path, b"one", Mode::Secret, "sealed secret").unwrap();
        assert_eq!(mode_of(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"two", Mode::Secret, "sealed secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o600);
        assert!(temporaries(dir.path()).is_empty());
    }

    #[test]
    fn normal_files_keep_an_existing_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.yml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&path, b"new", Mode::Normal, "manifest").unwrap();
        assert_eq!(mode_of(&path), 0o640);
    }

    #[test]
    fn symlinks_fifos_devices_and_directories_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.yml");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomically(&link, b"x", Mode::Secret, "sealed secret")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("it is a symlink") && err.contains("link.yml"),
            "{err}"
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let fifo = dir.path().join("fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = refused_manifest(&fifo);
        assert!(err.contains("a FIFO"), "{err}");
        let err = refused_manifest(Path::new("/dev/null"));
        assert!(err.contains("a character device"), "{err}");
        let err = refused_manifest(dir.path());
        assert!(err.contains("a directory"), "{err}");
        assert!(temporaries(dir.path()).is_empty());
    }

    /// The error of writing `x` to `path` as a manifest, which must fail.
    fn refused_manifest(path: &Path) -> String {
        write_atomically(path, b"x", Mode::Normal, "manifest")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/out.yml");
        let err = refused_manifest(&missing);
        assert!(err.contains("cannot write manifest"), "{err}");
        assert!(temporaries(dir.path()).is_empty());
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid cannot be alive.
        std::fs::write(dir.path().join(".duli-99999999-0.tmp"), "x").unwrap();
        std::fs::write(
            dir.path().join(format!(".duli-{}-0.tmp", std::process::id())),
            "x",
        )
        .unwrap();
        std::fs::write(dir.path().join("keep.yml"), "x").unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), 1);
        assert_eq!(temporaries(dir.path()).len(), 1);
    }

    #[test]
    fn a_253_character_object_name_makes_a_file_name_that_can_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{}.{}", "a".repeat(126), "b".repeat(126));
        assert_eq!(name.len(), 253);
        let file = bounded_file_name(&format!("configmap-{name}"), ".yml");
        assert!(file.len() <= NAME_MAX && file.ends_with(".yml"), "{file}");
        write_atomically(&dir.path().join(&file), b"x", Mode::Normal, "manifest").unwrap();
        assert_eq!(bounded_file_name("configmap-app", ".yml"), "configmap-app.yml");
    }

    #[tokio::test]
    async fn a_drip_fed_stream_stops_at_the_deadline() {
        let (mut writer, reader) = tokio::io::duplex(64);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            loop {
                if writer.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let started = std::time::Instant::now();
        let deadline = Instant::now() + Duration::from_millis(500);
        let err = read_stream_bounded(
            reader,
            1 << 20,
            Duration::from_secs(5),
            Some(deadline),
            "GET /v1/cert.pem",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BodyError::Stalled { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(err.to_string().contains("GET /v1/cert.pem"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_stream_stops_after_the_idle_bound() {
        let (_writer, reader) = tokio::io::duplex(64);
        let err = read_stream_bounded(reader, 10, Duration::from_millis(100), None, "stdout of helm")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the answer to stdout of helm stalled: nothing arrived for 100ms"
        );
    }

    #[tokio::test]
    async fn an_http_body_over_the_cap_is_refused() {
        let body = http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 100]));
        let err = read_body_bounded(body, 10, Duration::from_secs(1), None, "GET /x")
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 10, .. }), "{err}");
        let body = http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 10]));
        assert_eq!(
            read_body_bounded(body, 10, Duration::from_secs(1), None, "GET /x")
                .await
                .unwrap()
                .len(),
            10
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bounded_read_returns_the_file_or_refuses_by_size(len in 0usize..5000, limit in 0u64..5000) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &content).unwrap();
            match read_bounded(&path, limit, "file") {
                Ok(bytes) => { prop_assert!(len as u64 <= limit); prop_assert_eq!(bytes, content); }
                Err(FsError::TooLarge { .. }) => prop_assert!(len as u64 > limit),
                Err(other) => prop_assert!(false, "{}", other),
            }
        }

        #[test]
        fn safe_write_replaces_regular_files_only_and_leaves_no_temporaries(
            content in proptest::collection::vec(any::<u8>(), 0..2000),
            existing in 0u8..4,
            secret in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out");
            let target = dir.path().join("target");
            std::fs::write(&target, "target").unwrap();
            match existing {
                1 => std::fs::write(&path, "old").unwrap(),
                2 => std::os::unix::fs::symlink(&target, &path).unwrap(),
                3 => std::fs::create_dir(&path).unwrap(),
                _ => {}
            }
            let mode = if secret { Mode::Secret } else { Mode::Normal };
            let result = write_atomically(&path, &content, mode, "output");
            if existing >= 2 {
                let refused = matches!(result, Err(FsError::WontReplace { .. }));
                prop_assert!(refused, "not refused");
                prop_assert_eq!(std::fs::read(&target).unwrap(), b"target".to_vec());
            } else {
                prop_assert!(result.is_ok());
                prop_assert_eq!(std::fs::read(&path).unwrap(), content);
                if secret { prop_assert_eq!(mode_of(&path), 0o600); }
            }
            prop_assert!(temporaries(dir.path()).is_empty());
        }

        #[test]
        fn bounded_file_names_fit_and_do_not_collide(a in "[a-z0-9.-]{1,300}", b in "[a-z0-9.-]{1,300}") {
            let (fa, fb) = (bounded_file_name(&a, ".yml"), bounded_file_name(&b, ".yml"));
            prop_assert!(fa.len() <= NAME_MAX && fb.len() <= NAME_MAX);
            prop_assert_eq!(a == b, fa == fb);
        }
    }
}

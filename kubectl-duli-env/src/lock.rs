//! One `up` or `down` per environment and cluster at a time: a lock file under the user's state directory.
//!
//! Two concurrent runs against one environment used to interleave their applies and both report the same
//! objects as created. The second run now stops at once (exit 2) and says who holds the lock; it does not
//! wait, because a run that waits behind another for up to `--timeout` looks hung and then converges
//! nothing the first did not.
//!
//! Why a local file and not a `coordination.k8s.io` Lease in the environment's namespace (which would
//! also cover two machines): the namespace does not exist before the first `up`, and the API server the
//! tests run against does not serve Leases. The lock is an advisory `flock`: the kernel releases it when
//! the holder exits, however it exits, so a killed run never leaves a stale lock.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

/// Errors taking the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error(
        "another `kubectl duli env {command} {env}` is running against context `{context}` ({holder}); wait for \
         it to finish, then run this command again (lock file {})",
        path.display()
    )]
    Held {
        /// This run's subcommand.
        command: String,
        /// The environment.
        env: String,
        /// The kubeconfig context.
        context: String,
        /// What the holder wrote: pid, command, start time.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("cannot open the lock file {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct EnvLock {
    _file: File,
}

/// The lock file of `env` on `context`: `<state dir>/locks/<env>@<context>.lock` (characters other than
/// letters, digits, `-`, `_`, `.` in the context become `_`).
pub fn lock_path(env: &str, context: &str) -> Option<PathBuf> {
    Some(
        crate::log::state_dir()?
            .join("locks")
            .join(file_name(env, context)),
    )
}

fn file_name(env: &str, context: &str) -> String {
    let safe: String = context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("{env}@{safe}.lock")
}

/// Take the lock of `env` on `context` for `command` (`up`, `down`), or say who holds it.
/// `None` when there is no state directory to put it in.
pub fn acquire(command: &str, env: &str, context: &str) -> Result<Option<EnvLock>, LockError> {
    let Some(path) = lock_path(env, context) else {
        return Ok(None);
    };
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.take(512).read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                command: command.to_string(),
                env: env.to_string(),
                context: context.to_string(),
                holder: if holder.is_empty() {
                    "holder unknown".to_string()
                } else {
                    holder.to_string()
                },
                path,
            });
        }
        Err(TryLockError::Error(err)) => return Err(io(err)),
    }
    let holder = format!(
        "held by pid {} (`kubectl duli env {command} {env}`), started {}",
        std::process::id(),
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    file.write_all(holder.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(Some(EnvLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_are_per_environment_and_context_with_safe_names() {
        assert_eq!(file_name("staging", "kind-duli"), "staging@kind-duli.lock");
        assert_eq!(
            file_name("prod", "arn:aws:eks:eu/prod cluster"),
            "prod@arn_aws_eks_eu_prod_cluster.lock"
        );
    }
}

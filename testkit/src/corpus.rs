//! The bad-input corpus (issue #9): cases as tables, one line each, and the checks an operator relies on —
//! the exit code (2, or the documented one), one `error:` line naming the input and what to do, nothing on
//! stdout — plus the evidence that nothing was written (file snapshots) or applied (the stand-in's store
//! and the requests it saw).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_standin::{RequestRecord, StandIn};

use crate::process::Run;

/// One bad input and what the plugin must say about it.
pub struct Case {
    /// Shown in failures.
    pub name: &'static str,
    /// Plugin arguments.
    pub args: Vec<String>,
    /// Extra environment (e.g. KUBECONFIG).
    pub env: Vec<(&'static str, String)>,
    /// PATH after the plugin's own directory.
    pub path_tail: &'static str,
    /// Bytes on stdin.
    pub stdin: Vec<u8>,
    /// Expected exit code.
    pub code: i32,
    /// Every one of these must be in stderr.
    pub expect: Vec<String>,
    /// None of these may appear anywhere in the output.
    pub forbid: Vec<String>,
    /// Upper bound on the run's wall time (no hang).
    pub within: Duration,
}

impl Case {
    /// A case: run with `args`, exit with `code`, every one of `expect` in stderr; 20 s at most.
    pub fn new(name: &'static str, args: &[&str], code: i32, expect: &[&str]) -> Self {
        Case {
            name,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            path_tail: "/usr/local/bin:/usr/bin:/bin",
            stdin: Vec::new(),
            code,
            expect: expect.iter().map(|e| e.to_string()).collect(),
            forbid: Vec::new(),
            within: Duration::from_secs(20),
        }
    }

    /// Set an environment variable for the run.
    pub fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }

    /// `text` must not be printed (a secret, a token).
    pub fn forbid(mut self, text: impl Into<String>) -> Self {
        self.forbid.push(text.into());
        self
    }

    /// PATH after the plugin's own directory (e.g. `/nonexistent`: no client programs).
    pub fn path(mut self, tail: &'static str) -> Self {
        self.path_tail = tail;
        self
    }

    /// Feed `bytes` on stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Upper bound on the run's wall time.
    pub fn within(mut self, bound: Duration) -> Self {
        self.within = bound;
        self
    }

    /// Check a finished run of this case: exit code, time, expected and forbidden texts; for exit 2, one
    /// `error:` line, nothing on stdout and no raw client error text. Prints the message (shown with
    /// `--nocapture`: the corpus doubles as a catalogue of the messages).
    pub fn verify(&self, run: &Run) {
        let name = self.name;
        eprintln!(
            "[{name}] exit {} in {:.1?}: {}",
            run.code,
            run.elapsed,
            run.stderr.trim()
        );
        assert_eq!(run.code, self.code, "{name}: {}", run.all());
        assert!(
            run.elapsed < self.within,
            "{name}: took {:?}, bound {:?}: {}",
            run.elapsed,
            self.within,
            run.all()
        );
        for text in &self.expect {
            assert!(
                run.stderr.contains(text.as_str()),
                "{name}: expected {text:?} in:\n{}",
                run.all()
            );
        }
        for text in &self.forbid {
            assert!(
                !run.stderr.contains(text.as_str()) && !run.stdout.contains(text.as_str()),
                "{name}: {text:?} must not be printed:\n{}",
                run.all()
            );
        }
        if self.code == 2 {
            let errors = run.stderr.lines().filter(|l| l.starts_with("error:")).count();
            assert_eq!(errors, 1, "{name}: one error line:\n{}", run.all());
            assert_eq!(run.stdout, "", "{name}: nothing on stdout:\n{}", run.all());
            assert!(
                !run.stderr.contains("ApiError") && !run.stderr.contains("Status {"),
                "{name}: raw client error text:\n{}",
                run.all()
            );
        }
    }
}

/// Every file and directory under `dir` with its size, mode and a hash of its bytes (directories:
/// `(0, mode, 0)`). Empty for a directory that does not exist.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u32, u64)> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, (0, meta.permissions().mode(), 0));
            } else {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
                out.insert(path, (meta.len(), meta.permissions().mode(), hasher.finish()));
            }
        }
    }
    out
}

/// Like [`snapshot`], files only: a directory that appears or goes is not a change by itself.
pub fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, (u64, u32, u64)> {
    let mut out = snapshot(dir);
    out.retain(|path, _| !path.is_dir());
    out
}

/// The paths that differ between two snapshots (changed, added or removed).
pub fn changed_paths(
    before: &BTreeMap<PathBuf, (u64, u32, u64)>,
    after: &BTreeMap<PathBuf, (u64, u32, u64)>,
) -> Vec<PathBuf> {
    after
        .iter()
        .filter(|(path, meta)| before.get(*path) != Some(meta))
        .map(|(path, _)| path.clone())
        .chain(before.keys().filter(|p| !after.contains_key(*p)).cloned())
        .collect()
}

/// The stand-in's global resourceVersion and every object's, by key.
pub fn store_state(api: &StandIn) -> (u64, Vec<String>) {
    let objects = api
        .store()
        .lock()
        .all_objects()
        .into_iter()
        .map(|(key, object)| {
            format!(
                "{}/{}/{}/{}@{}",
                key.group,
                key.plural,
                key.namespace,
                key.name,
                object
                    .pointer("/metadata/resourceVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
            )
        })
        .collect();
    (api.store().resource_version(), objects)
}

/// Requests that could have changed something (anything but GET; port-forwards are GET upgrades).
pub fn writes(api: &StandIn) -> Vec<String> {
    writes_except(api, |_| false)
}

/// Like [`writes`], leaving out the requests `harmless` accepts (e.g. access reviews, server-side dry runs).
pub fn writes_except(api: &StandIn, harmless: impl Fn(&RequestRecord) -> bool) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !harmless(r))
        .map(|r| match r.query.as_str() {
            "" => format!("{} {}", r.method, r.path),
            query => format!("{} {}?{query}", r.method, r.path),
        })
        .collect()
}

/// Write `contents` to `dir/name` (creating `dir`); returns the path as text, for arguments.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// A kubeconfig for `server` with one context `one` (namespace staging).
pub fn kubeconfig_for(server: &str) -> String {
    kubeconfig_in(server, "staging")
}

/// A kubeconfig for `server` with one context `one` whose namespace is `namespace`.
pub fn kubeconfig_in(server: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\nusers:\n- name: u\n  user: {{}}\n\
         contexts:\n- name: one\n  context: {{cluster: c, user: u, namespace: {namespace}}}\ncurrent-context: one\n"
    )
}

/// `futures::future::join_all` without the dependency: poll all futures on this task.
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in pinned.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *result = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_new_changed_and_removed_files() {
        let dir = std::env::temp_dir().join(format!("testkit-snapshot-{}", std::process::id()));
        write(&dir, "kept", "a");
        write(&dir, "changed", "b");
        write(&dir, "removed", "c");
        let before = snapshot(&dir);
        write(&dir, "changed", "B");
        std::fs::remove_file(dir.join("removed")).unwrap();
        write(&dir.join("sub"), "added", "d");
        let mut changed = changed_paths(&before, &snapshot(&dir));
        changed.sort();
        let names: Vec<_> = changed
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["changed", "removed", "sub", "sub/added"]);
        assert_eq!(snapshot_files(&dir).len(), 3, "kept, changed, sub/added");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_case_fails_on_the_wrong_code_a_missing_message_or_a_forbidden_text() {
        let case = Case::new("c", &[], 2, &["names the file"]).forbid("s3cret");
        let run = |code: i32, stderr: &str| Run {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
            elapsed: Duration::from_millis(5),
        };
        case.verify(&run(2, "error: names the file\n"));
        for bad in [
            run(1, "error: names the file\n"),
            run(2, "error: something else\n"),
            run(2, "error: names the file s3cret\n"),
            run(2, "error: names the file\nerror: twice\n"),
        ] {
            let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case.verify(&bad)));
            assert!(failed.is_err(), "{bad:?} passed");
        }
    }
}

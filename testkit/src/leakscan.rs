//! The secret-leak scanner of issue #9, for every plugin's leak audit: while a plugin runs, a thread polls
//! `/proc` every few milliseconds for the plugin and every process below it (argv and environment) and
//! the directories it may write to (every version of every file, with its mode); afterwards the audit
//! checks all of that, plus stdout and stderr, for the plaintext values. Std only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A process seen in the plugin's tree.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    /// argv, space-joined.
    pub argv: String,
    /// Basename of `argv[0]`.
    pub program: String,
    /// Environment entries `NAME=value`.
    pub environ: BTreeSet<String>,
    /// The process is the root (the plugin) rather than a child.
    pub root: bool,
}

/// One version of a file seen during the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileVersion {
    /// Permission bits.
    pub mode: u32,
    /// Content.
    pub bytes: Vec<u8>,
}

/// Everything seen while the plugin ran.
#[derive(Debug, Default)]
pub struct Observed {
    /// By pid (a pid's argv/environ can change at exec: every variant is kept).
    pub processes: BTreeMap<u32, Vec<Proc>>,
    /// By path, every distinct version.
    pub files: BTreeMap<PathBuf, BTreeSet<FileVersion>>,
    /// Polls made.
    pub polls: usize,
}

impl Observed {
    /// The program of every process variant seen (one entry per variant, in pid order).
    pub fn programs(&self) -> Vec<&str> {
        self.processes
            .values()
            .flatten()
            .map(|p| p.program.as_str())
            .collect()
    }

    /// The programs of the plugin's children only. A read of the plugin's own `/proc/PID/cmdline` can
    /// catch it mid-exec or mid-exit (seen as a torn `kube…` on a loaded machine); that is the plugin, not
    /// a child it started.
    pub fn child_programs(&self) -> Vec<&str> {
        self.processes
            .values()
            .flatten()
            .filter(|p| !p.root)
            .map(|p| p.program.as_str())
            .collect()
    }
}

/// A running scan.
pub struct Scan {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Observed>,
}

fn read_lossy(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// pid → ppid for every process.
fn parents() -> HashMap<u32, u32> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(stat) = read_lossy(&entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest)
            && let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok())
        {
            out.insert(pid, ppid);
        }
    }
    out
}

fn tree(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut members = vec![root];
    let mut changed = true;
    while changed {
        changed = false;
        for (pid, ppid) in &parents {
            if members.contains(ppid) && !members.contains(pid) {
                members.push(*pid);
                changed = true;
            }
        }
    }
    members
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => files_under(&path, out),
            Ok(kind) if kind.is_file() => out.push(path),
            _ => {}
        }
    }
}

fn poll(root: u32, dirs: &[PathBuf], seen: &mut Observed) {
    for pid in tree(root) {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let Some(cmdline) = read_lossy(&base.join("cmdline")) else {
            continue;
        };
        if cmdline.is_empty() {
            continue; // a zombie, or not exec'd yet
        }
        let argv: Vec<&str> = cmdline.split('\0').filter(|a| !a.is_empty()).collect();
        let program = argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
            .unwrap_or_default();
        let environ = read_lossy(&base.join("environ"))
            .unwrap_or_default()
            .split('\0')
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        let proc = Proc {
            argv: argv.join(" "),
            program,
            environ,
            root: pid == root,
        };
        let versions = seen.processes.entry(pid).or_default();
        if !versions
            .iter()
            .any(|p| p.argv == proc.argv && p.environ == proc.environ)
        {
            versions.push(proc);
        }
    }
    for dir in dirs {
        let mut paths = Vec::new();
        files_under(dir, &mut paths);
        for path in paths {
            let (Ok(meta), Ok(bytes)) = (std::fs::metadata(&path), std::fs::read(&path)) else {
                continue;
            };
            let version = FileVersion {
                mode: meta.permissions().mode() & 0o7777,
                bytes,
            };
            seen.files.entry(path).or_default().insert(version);
        }
    }
    seen.polls += 1;
}

impl Scan {
    /// Start watching process `root` (and its descendants) and the files under `dirs`.
    pub fn start(root: u32, dirs: &[PathBuf]) -> Scan {
        let stop = Arc::new(AtomicBool::new(false));
        let dirs = dirs.to_vec();
        let flag = stop.clone();
        // The first look here, not on the thread: a short run under load could end before the thread's
        // first look, and then nothing was seen at all (the plugin "never ran").
        let mut seen = Observed::default();
        poll(root, &dirs, &mut seen);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                poll(root, &dirs, &mut seen);
                std::thread::sleep(Duration::from_millis(3));
            }
            // The files as the run left them.
            poll(root, &dirs, &mut seen);
            seen
        });
        Scan { stop, thread }
    }

    /// Stop (after the plugin exited) and return what was seen.
    pub fn finish(self) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("scanner thread")
    }
}

/// What a run may legitimately expose, beyond nothing.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// stdout may show these (`creds --show`, `--show-credentials`).
    pub stdout: Vec<String>,
    /// The plugin's own argv may hold these (`--from-literal KEY=VALUE`: the user's choice, documented).
    pub root_argv: Vec<String>,
    /// `(program, NAME=value)`: the intended client may get exactly this environment entry.
    pub client_env: Vec<(String, String)>,
    /// Files whose name starts with this may hold secrets while the run lasts, mode 0600, gone afterwards.
    pub private_file_prefix: Option<String>,
}

/// Check a run's output and everything observed for `secrets`; returns the private files that were seen.
pub fn assert_no_leak(
    what: &str,
    stdout: &str,
    stderr: &str,
    seen: &Observed,
    secrets: &[&str],
    allowed: &Allowed,
) -> Vec<PathBuf> {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    let holds = |text: &str| secrets.iter().find(|s| text.contains(**s)).copied();
    if let Some(secret) = holds(stderr) {
        panic!("{what}: stderr holds {secret}:\n{stderr}");
    }
    let mut visible = stdout.to_string();
    for shown in &allowed.stdout {
        visible = visible.replace(shown.as_str(), "<shown on request>");
    }
    if let Some(secret) = holds(&visible) {
        panic!("{what}: stdout holds {secret}:\n{stdout}");
    }
    for (pid, versions) in &seen.processes {
        for proc in versions {
            let mut argv = proc.argv.clone();
            if proc.root {
                for shown in &allowed.root_argv {
                    argv = argv.replace(shown.as_str(), "<given by the user>");
                }
            }
            if let Some(secret) = holds(&argv) {
                panic!(
                    "{what}: the command line of pid {pid} ({}) holds {secret}: {}",
                    proc.program, proc.argv
                );
            }
            for entry in &proc.environ {
                let intended = allowed
                    .client_env
                    .iter()
                    .any(|(program, allowed)| *program == proc.program && allowed == entry);
                if !intended && let Some(secret) = holds(entry) {
                    panic!(
                        "{what}: the environment of pid {pid} ({}) holds {secret} in {}",
                        proc.program,
                        entry.split('=').next().unwrap_or("")
                    );
                }
            }
        }
    }
    let mut private = Vec::new();
    for (path, versions) in &seen.files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_private = allowed
            .private_file_prefix
            .as_ref()
            .is_some_and(|prefix| name.starts_with(prefix.as_str()));
        for version in versions {
            let text = String::from_utf8_lossy(&version.bytes);
            let Some(secret) = holds(&text) else { continue };
            assert!(
                is_private,
                "{what}: file {path:?} (mode {:o}) holds {secret}",
                version.mode
            );
            assert_eq!(
                version.mode & 0o777,
                0o600,
                "{what}: {path:?} holds a secret with mode {:o}",
                version.mode
            );
            private.push(path.clone());
        }
    }
    for path in &private {
        assert!(
            !path.exists(),
            "{what}: {path:?} holds a secret and is still there after the run"
        );
    }
    private.sort();
    private.dedup();
    private
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scanner finds a secret in a child's environment and command line, and in a file.
    #[test]
    fn the_scanner_sees_what_it_must() {
        let dir = std::env::temp_dir().join(format!("duli-leakscan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("printf '%s' \"$LEAK\" > \"$DIR/out\"; sleep 0.3 & wait")
            .env("LEAK", "scan-PLAINTEXT-0Zz")
            .env("DIR", &dir)
            .spawn()
            .unwrap();
        let scan = Scan::start(child.id(), std::slice::from_ref(&dir));
        child.wait().unwrap();
        let seen = scan.finish();
        std::fs::remove_dir_all(&dir).unwrap();
        let check = |allowed: Allowed| {
            std::panic::catch_unwind(|| {
                assert_no_leak("self-test", "", "", &seen, &["scan-PLAINTEXT-0Zz"], &allowed)
            })
        };
        assert!(
            check(Allowed::default()).is_err(),
            "a leak in the environment and a file is found"
        );
        assert!(
            seen.processes.values().flatten().any(|p| p.program == "sleep"),
            "children are seen"
        );
        assert!(seen.files.keys().any(|p| p.ends_with("out")), "files are seen");
    }
}

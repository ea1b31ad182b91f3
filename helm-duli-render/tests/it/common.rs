//! Shared setup for the integration tests: an isolated copy of the fixture repository and a command for the
//! built plugin with its cache in a temporary directory; the real helm binaries, paths and process helpers
//! come from `testkit`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use testkit::paths::{copy_dir, crds, workspace};
pub use testkit::process::run;
pub use testkit::tools::{helm3, helm4};

/// The built plugin binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_helm-duli-render"))
}

/// A temporary repository: the fixture charts and applications plus this repository's environment files.
pub struct FixtureRepo {
    /// Holds everything; removed on drop.
    pub tmp: tempfile::TempDir,
}

impl FixtureRepo {
    /// A fresh copy of `tests/fixtures/repo`.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo"),
            &tmp.path().join("repo"),
        );
        copy_dir(
            &workspace().join("gitops/environments"),
            &tmp.path().join("repo/gitops/environments"),
        );
        std::fs::create_dir_all(tmp.path().join("cache")).unwrap();
        FixtureRepo { tmp }
    }

    /// The repository root.
    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    /// The render cache used by [`Self::cmd`].
    pub fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    /// A scratch path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `helm-duli-render ENV --repo … --crds ../shared/crds` with helm 4, the cache in the temp dir, and
    /// no HELM_* leaking in from the caller.
    pub fn cmd(&self, env: &str) -> Command {
        let mut cmd = Command::new(binary());
        isolate(&mut cmd, &helm4());
        cmd.env("DULI_RENDER_CACHE", self.cache());
        cmd.arg(env)
            .arg("--repo")
            .arg(self.root())
            .arg("--crds")
            .arg(crds());
        cmd
    }

    /// `staging --chart good FLAG DIR` (`--out` or `--diff`): exit code, stdout, stderr.
    pub fn render_good(&self, flag: &str, dir: &Path) -> (i32, String, String) {
        run(self.cmd("staging").args(["--chart", "good"]).arg(flag).arg(dir))
    }

    /// Renders `--chart good` into `out`: the earlier render every failing run must leave alone.
    pub fn earlier_render(&self) -> PathBuf {
        let out = self.path("out");
        let (code, _, stderr) = self.render_good("--out", &out);
        assert_eq!(code, 0, "{stderr}");
        out
    }

    /// Write a file relative to the repository root.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Replace `from` by `to` in a file relative to the repository root (which must contain `from`).
    pub fn replace(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{relative} has no `{from}`");
        self.write(relative, &text.replace(from, to));
    }

    /// Read a file relative to the repository root.
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root().join(relative)).unwrap()
    }
}

/// Remove HELM_* / KUBECONFIG / DULI_* inherited from the caller and point HELM_BIN at `helm`; upstream
/// charts are never fetched (`DULI_RENDER_OFFLINE`: tests talk to 127.0.0.1 only; the upstream tests
/// remove it and give a mirror on 127.0.0.1).
pub fn isolate(cmd: &mut Command, helm: &Path) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().to_string();
        if name.starts_with("HELM_") || name.starts_with("DULI_") || name == "KUBECONFIG" {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HELM_BIN", helm);
    cmd.env("DULI_RENDER_OFFLINE", "1");
}

/// The findings of a `--report` file as (rule, chart, object) triples.
pub fn findings(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["chart"].as_str().unwrap().to_string(),
                f["object"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Read a JSON file.
/// `--chart NAME` for each of `names`, in order.
pub fn chart_args(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .flat_map(|name| ["--chart".to_string(), name.to_string()])
        .collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Checks a run stopped on bad input: exit 2, with every one of `needles` in its stderr.
#[track_caller]
pub fn assert_exit_2(code: i32, stderr: &str, needles: &[&str]) {
    assert_eq!(code, 2, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "expected `{needle}` in: {stderr}");
    }
}

/// Checks the findings of a report hold (rule, chart, object).
#[track_caller]
pub fn assert_finding(found: &[(String, String, String)], rule: &str, chart: &str, object: &str) {
    let wanted = (rule.to_string(), chart.to_string(), object.to_string());
    assert!(found.contains(&wanted), "{wanted:?} not in {found:?}");
}

//! Plugin discovery through the real kubectl: v1.32 (the dispatcher on the machine's PATH) and v1.35 (from
//! the npm package, installed by `.ci/install-tools`). kubectl only sees what is on PATH, so each test puts
//! our four binaries in a private directory and runs kubectl with PATH = that directory + kubectl's own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The kubectl builds every discovery test runs against: the machine's 1.32 dispatcher and 1.35.
fn kubectls() -> Vec<PathBuf> {
    testkit::tools::kubectls()
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

/// A directory holding links to our plugin binaries (siblings of this crate's binary in target/).
pub(crate) fn plugin_dir() -> tempfile::TempDir {
    let own = PathBuf::from(env!("CARGO_BIN_EXE_kubectl-duli-env"));
    let target = own.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "kubectl-duli",
        "kubectl-duli-env",
        "kubectl-duli-db",
        "kubectl-duli-secrets",
    ] {
        let binary = target.join(name);
        assert!(
            binary.is_file(),
            "{} is missing: run `cargo build --workspace` first",
            binary.display()
        );
        std::os::unix::fs::symlink(&binary, dir.path().join(name)).unwrap();
    }
    dir
}

fn run_kubectl(kubectl: &Path, plugins: &Path, args: &[&str]) -> Output {
    let kubectl_dir = kubectl.canonicalize().unwrap().parent().unwrap().to_path_buf();
    let path = format!("{}:{}:/usr/bin:/bin", plugins.display(), kubectl_dir.display());
    Command::new(kubectl)
        .args(args)
        .env("PATH", path)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", kubectl.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn plugin_list_shows_our_plugins_without_warnings() {
    let plugins = plugin_dir();
    for kubectl in kubectls() {
        let out = run_kubectl(&kubectl, plugins.path(), &["plugin", "list", "--name-only"]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "{}: plugin list failed: {stderr}",
            kubectl.display()
        );
        for name in [
            "kubectl-duli",
            "kubectl-duli-env",
            "kubectl-duli-db",
            "kubectl-duli-secrets",
        ] {
            assert!(
                stdout.lines().any(|line| line.trim() == name),
                "{}: {name} not listed:\n{stdout}",
                kubectl.display()
            );
        }
        assert!(
            !stderr.contains("warning"),
            "{}: warnings: {stderr}",
            kubectl.display()
        );
    }
}

#[test]
fn each_slice_help_runs_our_binary() {
    let plugins = plugin_dir();
    for kubectl in kubectls() {
        for slice in ["env", "db", "secrets"] {
            let out = run_kubectl(&kubectl, plugins.path(), &["duli", slice, "--help"]);
            let stdout = text(&out.stdout);
            assert!(
                out.status.success(),
                "{}: duli {slice} --help: {}",
                kubectl.display(),
                text(&out.stderr)
            );
            assert!(
                stdout.contains(&format!("Usage: kubectl duli {slice}")),
                "{}: {stdout}",
                kubectl.display()
            );
        }
    }
}

#[test]
fn bare_duli_prints_the_slices() {
    let plugins = plugin_dir();
    for kubectl in kubectls() {
        let out = run_kubectl(&kubectl, plugins.path(), &["duli"]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            kubectl.display(),
            text(&out.stderr)
        );
        for slice in [
            "kubectl duli env",
            "kubectl duli db",
            "kubectl duli secrets",
            "helm duli-render",
        ] {
            assert!(
                stdout.contains(slice),
                "{}: {slice} missing:\n{stdout}",
                kubectl.display()
            );
        }
        let out = run_kubectl(&kubectl, plugins.path(), &["duli", "nonsense"]);
        assert_eq!(out.status.code(), Some(2), "unknown slice must exit 2");
        assert!(text(&out.stderr).contains("unknown slice `nonsense`"));
    }
}

#[test]
fn kubectl_passes_flags_after_the_plugin_name_through() {
    let plugins = plugin_dir();
    for kubectl in kubectls() {
        // `completion` parses the same global flags as every subcommand: kubectl must hand them over verbatim.
        let out = run_kubectl(
            &kubectl,
            plugins.path(),
            &[
                "duli",
                "env",
                "completion",
                "bash",
                "--context",
                "c",
                "--kubeconfig",
                "/nonexistent",
                "-v",
            ],
        );
        assert!(
            out.status.success(),
            "{}: {}",
            kubectl.display(),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("complete"),
            "no bash completion script"
        );
    }
}

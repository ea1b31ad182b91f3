//! The slices through real kubectl 1.32 and 1.35: krew's layout (only `kubectl-duli` on PATH), and
//! `.ci/install`'s (links named after each slice).

use std::process::Command;

use testkit::process::run;
use testkit::tools::kubectls;

use crate::{binary, path_with};

/// The first line of each slice's `--help` (its `about`), as the slice's own crate writes it.
const ABOUTS: [(&str, &str); 3] = [
    ("env", "kubectl duli env"),
    ("db", "kubectl duli db"),
    ("secrets", "kubectl duli secrets"),
];

#[test]
fn krew_layout_runs_every_slice_through_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(binary(), dir.path().join("kubectl-duli")).unwrap();
    for (version, kubectl) in kubectls() {
        for (slice, usage) in ABOUTS {
            let (code, stdout, stderr) = run(Command::new(&kubectl)
                .args(["duli", slice, "--help"])
                .env("PATH", path_with(dir.path())));
            assert_eq!(code, 0, "kubectl {version} duli {slice}: {stderr}");
            assert!(
                stdout.contains(&format!("Usage: {usage}")),
                "kubectl {version} duli {slice}: {stdout}"
            );
        }
        let (code, stdout, _) = run(Command::new(&kubectl)
            .args(["duli"])
            .env("PATH", path_with(dir.path())));
        assert_eq!(code, 0, "kubectl {version} duli");
        assert!(stdout.contains("kubectl duli secrets"), "{stdout}");
        let (code, _, stderr) = run(Command::new(&kubectl)
            .args(["duli", "nope"])
            .env("PATH", path_with(dir.path())));
        assert_eq!(code, 2, "kubectl {version} duli nope");
        assert!(stderr.contains("error: unknown slice `nope`"), "{stderr}");
    }
}

/// Under a slice's own name the binary is that slice: what `kubectl duli db …` runs when
/// `kubectl-duli-db` (a link) is on PATH, with the same output as through the umbrella word.
#[test]
fn links_named_after_a_slice_run_that_slice() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("kubectl-duli");
    std::fs::copy(binary(), &exe).unwrap();
    for name in [
        "kubectl-duli-env",
        "kubectl-duli-db",
        "kubectl-duli-secrets",
        "helm-duli-render",
    ] {
        std::os::unix::fs::symlink(&exe, dir.path().join(name)).unwrap();
    }
    for (version, kubectl) in kubectls() {
        for (slice, _) in ABOUTS {
            let through_link = run(Command::new(&kubectl)
                .args(["duli", slice, "--version"])
                .env("PATH", path_with(dir.path())));
            let through_word = run(Command::new(&exe).args([slice, "--version"]));
            assert_eq!(
                through_link.0, 0,
                "kubectl {version} duli {slice}: {}",
                through_link.2
            );
            assert_eq!(through_link, through_word, "kubectl {version} duli {slice}");
            assert!(
                through_link.1.starts_with(&format!("kubectl-duli-{slice} ")),
                "{}",
                through_link.1
            );
        }
    }
    let (code, stdout, stderr) = run(Command::new(dir.path().join("helm-duli-render")).arg("--version"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("helm-duli-render "), "{stdout}");
}

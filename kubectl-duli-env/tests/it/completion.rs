//! kubectl-native completion (issue #14) through the real kubectl 1.32 and 1.35: `kubectl __complete duli
//! env …` (what the shell's kubectl completion runs on <TAB>) finds `kubectl_complete-duli-env` on PATH,
//! which asks `kubectl-duli-env __complete …`; the answer is cobra's (candidates, then `:directive`).

use std::path::Path;
use std::process::Command;

use crate::discovery::plugin_dir;

/// The plugins and the completer scripts of `kubectl-duli-env/completers` in one directory.
fn completion_dir() -> tempfile::TempDir {
    let dir = plugin_dir();
    let completers = testkit::paths::workspace().join("kubectl-duli-env/completers");
    for name in [
        "kubectl_complete-duli",
        "kubectl_complete-duli-env",
        "kubectl_complete-duli-db",
        "kubectl_complete-duli-secrets",
    ] {
        std::os::unix::fs::symlink(completers.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// kubectl's answer: (value, description) pairs and the directive.
struct Answer {
    candidates: Vec<(String, String)>,
    directive: u32,
}

impl Answer {
    fn values(&self) -> Vec<&str> {
        self.candidates.iter().map(|(value, _)| value.as_str()).collect()
    }
}

fn complete(kubectl: &Path, dir: &Path, cwd: &Path, words: &[&str]) -> Answer {
    let kubectl_dir = kubectl.canonicalize().unwrap().parent().unwrap().to_path_buf();
    let out = Command::new(kubectl)
        .arg("__complete")
        .args(words)
        .current_dir(cwd)
        .env(
            "PATH",
            format!("{}:{}:/usr/bin:/bin", dir.display(), kubectl_dir.display()),
        )
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("DULI_REPO")
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", kubectl.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{words:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    let directive = lines
        .pop()
        .and_then(|last| last.strip_prefix(':'))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{words:?}: no directive line in {stdout:?}"));
    let candidates = lines
        .into_iter()
        .map(|line| match line.split_once('\t') {
            Some((value, description)) => (value.to_string(), description.to_string()),
            None => (line.to_string(), String::new()),
        })
        .collect();
    Answer {
        candidates,
        directive,
    }
}

#[test]
fn kubectl_completes_slices_subcommands_environments_phases_and_flags() {
    let dir = completion_dir();
    std::fs::write(
        dir.path().join("kubeconfig"),
        testkit::corpus::kubeconfig_for("http://127.0.0.1:1"),
    )
    .unwrap();
    // From inside the repository: environments come from its gitops/environments.
    let repo = testkit::paths::workspace();
    let outside = tempfile::tempdir().unwrap();
    for (version, kubectl) in testkit::tools::kubectls() {
        let complete = |cwd: &Path, words: &[&str]| complete(&kubectl, dir.path(), cwd, words);

        // `kubectl duli <TAB>`: kubectl offers the installed slices; our completer offers no files.
        let answer = complete(&repo, &["duli", ""]);
        for slice in ["env", "db", "secrets"] {
            assert!(
                answer.values().contains(&slice),
                "{version}: {:?}",
                answer.values()
            );
        }
        assert_eq!(answer.directive, 4, "{version}");

        let answer = complete(&repo, &["duli", "env", ""]);
        for sub in ["up", "plan", "status", "down", "list"] {
            assert!(answer.values().contains(&sub), "{version}: {:?}", answer.values());
        }
        assert!(!answer.values().contains(&"__complete"), "{version}");
        assert_eq!(answer.directive, 4, "{version}");
        let up = answer.candidates.iter().find(|(value, _)| value == "up").unwrap();
        assert!(up.1.starts_with("Converge ENV"), "{version}: {up:?}");

        let answer = complete(&repo, &["duli", "env", "up", ""]);
        assert_eq!(answer.values(), ["prod", "staging"], "{version}");
        assert!(answer.candidates[1].1.contains("namespace staging"), "{version}");
        assert_eq!(
            complete(&repo, &["duli", "env", "status", "st"]).values(),
            ["staging"]
        );
        // Outside the repository, --repo says where the environments are.
        let repo_arg = repo.display().to_string();
        let answer = complete(outside.path(), &["duli", "env", "plan", "--repo", &repo_arg, "p"]);
        assert_eq!(answer.values(), ["prod"], "{version}");
        assert!(
            complete(outside.path(), &["duli", "env", "plan", ""])
                .values()
                .is_empty()
        );

        let answer = complete(&repo, &["duli", "env", "up", "staging", "--only", ""]);
        assert_eq!(
            answer.values(),
            [
                "preflight",
                "platform",
                "namespaces",
                "secrets",
                "gitops",
                "wait",
                "summary"
            ],
            "{version}"
        );
        let answer = complete(&repo, &["duli", "env", "status", "staging", "--"]);
        for flag in [
            "--timeout",
            "--context",
            "--token",
            "--as",
            "--server",
            "--color",
            "--output",
        ] {
            assert!(
                answer.values().contains(&flag),
                "{version}: {flag} in {:?}",
                answer.values()
            );
        }
        assert_eq!(
            complete(&repo, &["duli", "env", "list", "-o", "w"]).values(),
            ["wide"]
        );
        assert_eq!(
            complete(&repo, &["duli", "env", "list", "--color="])
                .values()
                .len(),
            3
        );
        // Contexts from the kubeconfig; a path flag leaves the shell to complete directories.
        assert_eq!(
            complete(&repo, &["duli", "env", "list", "--context", ""]).values(),
            ["one"]
        );
        assert_eq!(
            complete(&repo, &["duli", "env", "list", "--repo", ""]).directive,
            16
        );

        // db: services after the environment, its own -o values.
        let answer = complete(&repo, &["duli", "db", "connect", "staging", ""]);
        assert_eq!(answer.values(), ["postgres", "redis", "rabbitmq"], "{version}");
        assert_eq!(complete(&repo, &["duli", "db", "creds", "p"]).values(), ["prod"]);
        assert!(
            complete(&repo, &["duli", "db", "status", "-o", ""])
                .values()
                .contains(&"env")
        );

        // secrets: whatever its plugin answers, kubectl never falls back to completing file names here.
        let answer = complete(&repo, &["duli", "secrets", ""]);
        assert_eq!(answer.directive, 4, "{version}: {:?}", answer.values());
    }
}

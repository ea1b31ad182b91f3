//! More of the bad-input corpus of issue #9 for `helm duli-render` (beside `render.rs`'s
//! `bad_input_exits_2_names_the_problem_and_writes_nothing`): YAML bombs and duplicate keys in values,
//! extra values files that are missing, not UTF-8 or bombs, environment files with an unknown key or a
//! wrong type, a broken Jinja2 template and Chart.yaml, a HELM_BIN that is not a program, an unwritable
//! --report, an explicit --crds file that holds no CRD, and Ctrl-C during `--out`. Every case: exit 2, one
//! `error:` naming the file, and an earlier `--out` render left exactly as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use testkit::corpus::{changed_paths, snapshot};

use crate::common::*;

/// The paths under the scratch tree that a run changed, added or removed, relative to it, leaving out
/// those `ignored` (by their first component).
fn changes(repo: &FixtureRepo, before: &Snapshot, ignored: &[&str]) -> Vec<String> {
    changed_paths(before, &snapshot(repo.tmp.path()))
        .into_iter()
        .map(|path| path.strip_prefix(repo.tmp.path()).unwrap().display().to_string())
        .filter(|path| !ignored.iter().any(|ignored| path.starts_with(ignored)))
        .collect()
}

type Snapshot = std::collections::BTreeMap<std::path::PathBuf, (u64, u32, u64)>;

fn bomb() -> String {
    let mut text = String::from("lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..9 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("lol{level}: &l{level} [{refs}]\n"));
    }
    text
}

/// Run `args` with `--out out` and check exit 2, the message, and nothing written.
pub(crate) fn check(repo: &FixtureRepo, name: &str, args: &[&str], helm: Option<&Path>, expected: &[&str]) {
    let out = repo.path("out");
    assert!(out.join("staging/good").is_dir(), "earlier_render first");
    let before = snapshot(repo.tmp.path());
    let mut cmd = repo.cmd("staging");
    cmd.args(args).arg("--out").arg(&out);
    if let Some(helm) = helm {
        cmd.env("HELM_BIN", helm);
    }
    let started = Instant::now();
    let (code, stdout, stderr) = run(&mut cmd);
    eprintln!(
        "[{name}] exit {code} in {:.1?}: {}",
        started.elapsed(),
        stderr.trim()
    );
    assert_eq!(code, 2, "{name}: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{name}: took {:?}",
        started.elapsed()
    );
    assert_eq!(stdout, "", "{name}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{name}: {stderr}"
    );
    for text in expected {
        assert!(stderr.contains(text), "{name}: expected `{text}` in: {stderr}");
    }
    // Nothing written anywhere in the scratch tree (the repository, the earlier output, the cache).
    let changed = changes(repo, &before, &["cache"]);
    assert!(changed.is_empty(), "{name}: wrote {changed:?}");
}

#[test]
fn values_environment_templates_and_tools() {
    let repo = FixtureRepo::new();
    repo.earlier_render();
    let good_values = repo.read("helm/good/values-staging.yml");
    let bombed = format!("{good_values}{}", bomb());
    let extra = repo.path("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("bomb.yml"), bomb()).unwrap();
    std::fs::write(extra.join("latin1.yml"), b"greeting: caf\xe9\n").unwrap();
    let extra_arg = |name: &str| extra.join(name).display().to_string();
    let not_a_program = repo.path("helm-is-text");
    std::fs::write(&not_a_program, "not a program\n").unwrap();

    repo.write("helm/good/values-staging.yml", &bombed);
    check(
        &repo,
        "YAML bomb in values-staging.yml",
        &["--chart", "good"],
        None,
        &["chart `good`", "helm/good/values-staging.yml", "YAML bomb"],
    );
    repo.write(
        "helm/good/values-staging.yml",
        &format!("{good_values}replicas: 1\nreplicas: 2\n"),
    );
    check(
        &repo,
        "duplicate key in values-staging.yml",
        &["--chart", "good"],
        None,
        &[
            "helm/good/values-staging.yml",
            "key `replicas` is given twice",
            "give each key once",
        ],
    );
    repo.write("helm/good/values-staging.yml", &good_values);

    check(
        &repo,
        "-f values file missing",
        &["--chart", "good", "-f", "/nonexistent/duli/values.yml"],
        None,
        &["cannot read values file /nonexistent/duli/values.yml"],
    );
    check(
        &repo,
        "-f values file not UTF-8",
        &["--chart", "good", "-f", &extra_arg("latin1.yml")],
        None,
        &[
            &format!("cannot read values file {}", extra_arg("latin1.yml")),
            "UTF-8",
        ],
    );
    check(
        &repo,
        "-f values file that is a YAML bomb",
        &["--chart", "good", "-f", &extra_arg("bomb.yml")],
        None,
        &[&extra_arg("bomb.yml"), "YAML bomb"],
    );

    let staging = repo.read("gitops/environments/staging.yml");
    repo.write(
        "gitops/environments/staging.yml",
        &format!("{staging}replicaz: 3\n"),
    );
    check(
        &repo,
        "environment file with an unknown key",
        &["--chart", "good"],
        None,
        &["gitops/environments/staging.yml", "unknown field `replicaz`"],
    );
    repo.write(
        "gitops/environments/staging.yml",
        &staging.replace("log_level: debug", "log_level: [debug]"),
    );
    check(
        &repo,
        "environment file with a wrong type",
        &["--chart", "good"],
        None,
        &["gitops/environments/staging.yml", "line"],
    );
    repo.write("gitops/environments/staging.yml", &staging);

    repo.write(
        "gitops/applications/unclosed.yml.j2",
        "kind: Application\n{% if tier %}\nmetadata: {name: x}\n",
    );
    check(
        &repo,
        "Jinja2 template with an unclosed block",
        &["--chart", "applications"],
        None,
        &["gitops/applications/unclosed.yml.j2"],
    );
    std::fs::remove_file(repo.root().join("gitops/applications/unclosed.yml.j2")).unwrap();

    let chart = repo.read("helm/good/Chart.yaml");
    repo.write("helm/good/Chart.yaml", "apiVersion: v2\nname: [good\n");
    check(
        &repo,
        "Chart.yaml that is not YAML",
        &["--chart", "good", "--no-cache"],
        None,
        &["good", "Chart.yaml"],
    );
    repo.write("helm/good/Chart.yaml", &chart);

    check(
        &repo,
        "HELM_BIN that is not a program",
        &["--chart", "good", "--no-cache"],
        Some(&not_a_program),
        &[
            &not_a_program.display().to_string(),
            "is not executable",
            "chmod +x",
        ],
    );
    check(
        &repo,
        "--report into a missing directory",
        &["--chart", "good", "--report", "/nonexistent/duli/report.json"],
        None,
        &["cannot write --report /nonexistent/duli/report.json"],
    );
}

/// An explicit `--crds FILE` that holds no CustomResourceDefinition (a ConfigMap) would validate nothing:
/// it is refused, naming the file. Directories may hold other files, but a file named on the command line
/// must be a CRD file (issue #9: "a CRD schema file that is not a CRD").
#[test]
fn an_explicit_crds_file_without_a_crd_is_an_error() {
    let repo = FixtureRepo::new();
    let not_a_crd = repo.path("configmap.yaml");
    std::fs::write(
        &not_a_crd,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let arg = not_a_crd.display().to_string();
    repo.earlier_render();
    check(
        &repo,
        "--crds file that is not a CRD",
        &["--chart", "good", "--no-cache", "--crds", &arg],
        None,
        &[&arg, "CustomResourceDefinition"],
    );
}

/// Ctrl-C while helm renders (`--out`): the run ends and the earlier output is exactly as it was — no half
/// written tree, no temporary files beside it.
#[test]
fn ctrl_c_during_out_leaves_the_earlier_output() {
    interrupt_during_out("INT", 130);
}

/// SIGTERM (a CI job cancelled) is handled like Ctrl-C (issue #17): exit 143, the earlier output kept.
#[test]
fn sigterm_during_out_leaves_the_earlier_output() {
    interrupt_during_out("TERM", 143);
}

fn interrupt_during_out(signal: &str, exit_code: i32) {
    let repo = FixtureRepo::new();
    let out = repo.earlier_render();
    let before = snapshot(repo.tmp.path());
    // A helm that takes its time, so the interrupt lands while charts render.
    let slow = repo.path("slow-helm");
    std::fs::write(
        &slow,
        format!("#!/bin/sh\nsleep 2\nexec '{}' \"$@\"\n", helm4().display()),
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.replace(
        "helm/good/values-staging.yml",
        "environment: staging",
        "environment: staging\nreplicas: 4",
    );
    let mut cmd = repo.cmd("staging");
    cmd.args([
        "--chart",
        "good",
        "--chart",
        "applications",
        "--no-cache",
        "--out",
    ])
    .arg(&out)
    .env("HELM_BIN", &slow)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(exit_code), "{status:?}");
    std::thread::sleep(Duration::from_millis(2500)); // the orphaned slow helm finishes
    let changed = changes(&repo, &before, &["cache", "repo", "slow-helm"]);
    assert!(changed.is_empty(), "Ctrl-C left {changed:?}");
}

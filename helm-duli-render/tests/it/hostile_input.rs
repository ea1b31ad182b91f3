//! The hostile cases of issue #17 for `helm duli-render`, each a bug the earlier code had: names the API
//! server refuses passing with no finding, a closed or full stdout going unreported, `--out` deleting a
//! user's files, a 253-character name failing `--out`, symlinks out of the repository followed (and their
//! content printed), a symlink loop buried in helm's log, and `--repo FILE` blamed on a missing `helm/`.

use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};

use crate::bad_input_corpus::check;
use crate::common::*;

/// A ConfigMap template named `name` (YAML-quoted), with the fixture's labels.
fn configmap(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name:?}\n  labels:\n    \
         {{{{- include \"fixture.labels\" $ | nindent 4 }}}}\ndata: {{a: b}}\n"
    )
}

#[test]
fn names_the_api_server_refuses_are_error_findings_and_long_valid_names_are_written() {
    let repo = FixtureRepo::new();
    let long = "a".repeat(253);
    let templates = [
        configmap(""),
        configmap("café"),
        configmap("Upper"),
        configmap(&long),
    ]
    .concat();
    repo.write("helm/good/templates/names.yaml", &templates);
    let (out, report) = (repo.path("out"), repo.path("report.json"));
    let (code, _, stderr) = run(repo
        .cmd("staging")
        .args(["--chart", "good", "--no-validate"])
        .arg("--out")
        .arg(&out)
        .arg("--report")
        .arg(&report));
    assert_eq!(code, 1, "{stderr}");
    let found: Vec<(String, String, String)> = findings(&read_json(&report))
        .into_iter()
        .filter(|(rule, _, _)| rule == "object-name")
        .collect();
    let objects: Vec<&str> = found.iter().map(|(_, _, object)| object.as_str()).collect();
    assert_eq!(
        objects,
        ["ConfigMap/", "ConfigMap/Upper", "ConfigMap/café"],
        "{stderr}"
    );
    assert!(stderr.contains("error [object-name] ConfigMap/café"), "{stderr}");
    assert!(stderr.contains("DNS-1123 subdomain"), "{stderr}");
    // The valid 253-character name is no finding, and its file name fits (no "File name too long").
    assert!(!stderr.contains(&long), "{stderr}");
    let written: Vec<String> = std::fs::read_dir(out.join("staging/good"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let long_file = written
        .iter()
        .find(|name| name.starts_with("configmap-aaaa"))
        .unwrap_or_else(|| panic!("no file for the long name in {written:?}"));
    assert!(
        long_file.len() <= 255 && long_file.ends_with(".yml"),
        "{long_file}"
    );
    let text = std::fs::read_to_string(out.join("staging/good").join(long_file)).unwrap();
    assert!(text.contains(&long));
}

/// The binary's command line for the fixture, as a `sh -c` script that runs it with `redirect`.
fn shell_with_stdout(repo: &FixtureRepo, redirect: &str, args: &[&str]) -> Command {
    let cmd = repo.cmd("staging");
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!("exec \"$0\" \"$@\" {redirect}"));
    shell.arg(cmd.get_program()).args(cmd.get_args()).args(args);
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    shell
}

#[test]
fn a_closed_or_full_stdout_is_exit_2_naming_stdout_and_a_broken_pipe_is_quiet() {
    let repo = FixtureRepo::new();
    let args = ["--chart", "good", "--no-validate"];
    let (code, _, stderr) = run(&mut shell_with_stdout(&repo, ">&-", &args));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    let (code, _, stderr) = run(&mut shell_with_stdout(&repo, ">/dev/full", &args));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    // `>/dev/null` is an open stdout: not taken for a closed one.
    let (code, _, stderr) = run(&mut shell_with_stdout(&repo, ">/dev/null", &args));
    assert_eq!(code, 0, "{stderr}");
    // A reader that is gone before anything is written: quiet, like `| head`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = repo
        .cmd("staging")
        .args(args)
        .stdout(Stdio::from(writer))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

#[test]
fn out_refuses_to_delete_files_it_did_not_write() {
    let repo = FixtureRepo::new();
    repo.earlier_render();
    // A user's file beside the charts' directories, and one inside a chart's: each refused, each kept.
    for (file, expected) in [
        (
            "out/staging/notes.txt",
            ["will not replace --out", "notes.txt", "another --out directory"],
        ),
        (
            "out/staging/good/mine.md",
            [
                "will not replace --out",
                "good/mine.md",
                "another --out directory",
            ],
        ),
    ] {
        let path = repo.path(file);
        std::fs::write(&path, "mine\n").unwrap();
        check(&repo, file, &["--chart", "good"], None, &expected);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine\n");
        std::fs::remove_file(&path).unwrap();
    }
    // Its own earlier output is replaced as before.
    repo.earlier_render();
}

#[test]
fn symlinks_out_of_the_repository_and_loops_are_refused_naming_the_file() {
    let repo = FixtureRepo::new();
    repo.earlier_render();
    let outside = repo.path("outside.yaml");
    std::fs::write(
        &outside,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leaked}\ndata: {secret: TOP-SECRET-CONTENT}\n",
    )
    .unwrap();
    for (name, link) in [
        ("chart template", "helm/good/templates/leak.yaml"),
        ("values file", "helm/good/values-staging.yml"),
        ("application template", "gitops/applications/leak.yml.j2"),
    ] {
        let link = repo.root().join(link);
        let saved = std::fs::read(&link).ok();
        let _ = std::fs::remove_file(&link);
        symlink(&outside, &link).unwrap();
        let chart = if name == "application template" {
            "applications"
        } else {
            "good"
        };
        check(
            &repo,
            name,
            &["--chart", chart],
            None,
            &[&link.display().to_string(), "outside the repository"],
        );
        std::fs::remove_file(&link).unwrap();
        if let Some(saved) = saved {
            std::fs::write(&link, saved).unwrap();
        }
    }
    let up = repo.root().join("helm/good/templates/up");
    symlink("..", &up).unwrap();
    check(
        &repo,
        "a symlink loop",
        &["--chart", "good"],
        None,
        &[&up.display().to_string(), "symlink loop"],
    );
    std::fs::remove_file(&up).unwrap();
    let a = repo.root().join("helm/good/templates/a.yaml");
    symlink("b.yaml", &a).unwrap();
    symlink("a.yaml", repo.root().join("helm/good/templates/b.yaml")).unwrap();
    check(
        &repo,
        "a symlink cycle",
        &["--chart", "good"],
        None,
        &["symlink loop"],
    );
}

#[test]
fn repo_that_is_a_file_says_so() {
    let repo = FixtureRepo::new();
    let file = repo.path("not-a-repo");
    std::fs::write(&file, "x\n").unwrap();
    let mut cmd = Command::new(binary());
    isolate(&mut cmd, &helm4());
    let (code, stdout, stderr) = run(cmd.arg("staging").arg("--repo").arg(&file));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("is not a directory") && stderr.contains("not-a-repo"),
        "{stderr}"
    );
    assert!(!stderr.contains("helm is missing"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

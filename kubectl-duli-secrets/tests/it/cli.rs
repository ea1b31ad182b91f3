//! The command line offline: bad input gives one clear sentence, exit 2 and no file; `--merge-into` keeps
//! every other key byte-identical and the file's format; certificate expiry; the offline cache; and no
//! plaintext in any file the plugin wrote or anything it printed.

use std::path::{Path, PathBuf};

use crate::support::*;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: staging\nstringData:\n  \
    user: app-user-7Qx\n  password: hunter2-PLAINTEXT-9Zk\n  token: tok-PLAINTEXT-4Jm\n";

fn seal(home: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut command = plugin(home);
    command.arg("seal").args(args);
    run_with_stdin(command, stdin.as_bytes())
}

fn cert() -> String {
    keys().cert.display().to_string()
}

#[track_caller]
fn assert_error(output: &std::process::Output, expected: &str) {
    assert_code(output, 2);
    let err = stderr(output);
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    assert_eq!(
        err.lines().filter(|line| line.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(output.stdout.is_empty(), "{}", stdout(output));
}

#[test]
fn bad_input_is_one_sentence_exit_2_and_nothing_written() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out.yml");
    let out_arg = out.display().to_string();
    let not_pem = home.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let cases: Vec<(Vec<String>, String, &str)> = vec![
        (
            vec![],
            "kind: Secret\nmetadata: {name: a, namespace: b}\nstringData:\n  'bad key': x\n".into(),
            "field `stringData.bad key`: key `bad key` is not allowed",
        ),
        (
            vec![
                "--name".into(),
                "a".into(),
                "--from-literal".into(),
                "a/b=x".into(),
            ],
            String::new(),
            "key `a/b` is not allowed",
        ),
        (
            vec![],
            String::new(),
            "no Secret found in stdin: the input is empty",
        ),
        (
            vec![],
            "kind: Secret\nmetadata: {name: a, namespace: b}\ndata: {k: '%%%'}\n".into(),
            "field `data.k`: is not valid base64",
        ),
        (
            vec![],
            "kind: Secret\nmetadata: {name: a\n".into(),
            "stdin is not valid YAML",
        ),
        (
            vec![],
            "kind: ConfigMap\napiVersion: v1\n".into(),
            "document 1 of stdin is a ConfigMap (v1), not a Secret",
        ),
        (
            vec![],
            "kind: Secret\nmetadata: {namespace: b}\nstringData: {a: b}\n".into(),
            "missing metadata.name",
        ),
        (
            vec![],
            "kind: Secret\nmetadata: {name: a, namespace: b}\n".into(),
            "has no data or stringData",
        ),
        (
            vec!["-n".into(), "other".into()],
            SECRET.into(),
            "namespace mismatch",
        ),
    ];
    for (args, stdin, expected) in cases {
        let mut all = args.clone();
        all.extend(["--cert".into(), cert(), "--out".into(), out_arg.clone()]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let output = seal(home.path(), &all, &stdin);
        assert_error(&output, expected);
        assert!(!out.exists(), "{expected}: wrote {out:?}");
    }
    for (cert, expected) in [
        (not_pem.display().to_string(), "is not PEM"),
        (keys().ec.display().to_string(), "holds a EC key, not RSA"),
        (keys().expired.display().to_string(), "expired on "),
        (
            home.path().join("missing.pem").display().to_string(),
            "cannot read certificate file",
        ),
    ] {
        let output = seal(home.path(), &["--cert", &cert, "--out", &out_arg], SECRET);
        assert_error(&output, expected);
        assert!(!out.exists());
    }
    let output = seal(home.path(), &["--out", &out_arg], SECRET);
    assert_error(&output, "pass --cert FILE|URL");
    let output = seal(home.path(), &["--offline", "--out", &out_arg], SECRET);
    assert_error(&output, "pass --cert FILE|URL");
}

#[test]
fn certificate_expiring_soon_warns_and_still_seals() {
    let home = tempfile::tempdir().unwrap();
    let output = seal(
        home.path(),
        &["--cert", &keys().soon.display().to_string()],
        SECRET,
    );
    assert_code(&output, 0);
    assert!(
        stderr(&output).contains("expires in 9 days") || stderr(&output).contains("expires in 10 days"),
        "{}",
        stderr(&output)
    );
}

fn sealed_file(home: &Path, name: &str, format: &str) -> PathBuf {
    let path = home.join(name);
    let output = seal(
        home,
        &[
            "--cert",
            &cert(),
            "-o",
            format,
            "--out",
            &path.display().to_string(),
        ],
        SECRET,
    );
    assert_code(&output, 0);
    path
}

#[test]
fn merge_into_keeps_every_other_key_byte_identical_and_the_file_format() {
    let home = tempfile::tempdir().unwrap();
    for format in ["yaml", "json"] {
        let path = sealed_file(home.path(), &format!("db.{format}.txt"), format);
        let before = std::fs::read_to_string(&path).unwrap();
        let mut command = plugin(home.path());
        command.args(["seal", "--merge-into"]).arg(&path).args([
            "--from-literal",
            "token=new-PLAINTEXT",
            "--from-literal",
            "added=x",
        ]);
        command.args([
            "--cert",
            &cert(),
            "-o",
            if format == "yaml" { "json" } else { "yaml" },
        ]);
        let output = run_with_stdin(command, b"");
        assert_code(&output, 0);
        let after = std::fs::read_to_string(&path).unwrap();
        let old: Vec<&str> = before.lines().collect();
        let new: Vec<&str> = after.lines().collect();
        assert_eq!(new.len(), old.len() + 1, "{after}");
        let unchanged: Vec<&&str> = old.iter().filter(|line| !line.contains("token")).collect();
        for line in unchanged {
            assert!(new.contains(line), "{format}: lost {line:?}\n{after}");
        }
        let token_old = old.iter().find(|line| line.contains("token")).unwrap();
        assert!(!new.contains(token_old), "token was not re-sealed");
        assert_eq!(
            after.trim_start().starts_with('{'),
            format == "json",
            "format kept: {after}"
        );
    }
}

#[test]
fn merge_into_refuses_mismatches_and_non_sealed_secrets() {
    let home = tempfile::tempdir().unwrap();
    let path = sealed_file(home.path(), "db.yml", "yaml");
    let before = std::fs::read(&path).unwrap();
    let target = path.display().to_string();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["--name", "other", "--from-literal", "a=b"],
            "",
            "name mismatch",
        ),
        (
            vec!["-n", "prod", "--from-literal", "a=b"],
            "",
            "namespace mismatch",
        ),
        (
            vec!["--scope", "cluster-wide", "--from-literal", "a=b"],
            "",
            "scope mismatch",
        ),
        (
            vec![],
            "kind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: b}\n",
            "namespace mismatch",
        ),
    ];
    for (args, stdin, expected) in cases {
        let mut all = vec!["--merge-into", target.as_str(), "--cert"];
        let cert = cert();
        all.push(&cert);
        all.extend(args);
        let output = seal(home.path(), &all, stdin);
        assert_error(&output, expected);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
    let plain = home.path().join("plain.yml");
    std::fs::write(&plain, SECRET).unwrap();
    let output = seal(
        home.path(),
        &[
            "--merge-into",
            &plain.display().to_string(),
            "--cert",
            &cert(),
            "--from-literal",
            "a=b",
        ],
        "",
    );
    assert_error(&output, "is not a SealedSecret (it is a Secret (v1))");
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), SECRET);
}

fn kubeconfig(home: &Path, context: &str) -> PathBuf {
    let path = home.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://127.0.0.1:9'}}\nusers:\n- name: u\n  user: {{}}\n\
         contexts:\n- name: {context}\n  context: {{cluster: c, user: u, namespace: staging}}\ncurrent-context: {context}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn offline_uses_the_certificate_cached_for_the_context() {
    let home = tempfile::tempdir().unwrap();
    let config = kubeconfig(home.path(), "kind-dev");
    let cache = home.path().join("cache/duli/sealed-secrets");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::copy(&keys().cert, cache.join("kind-dev.pem")).unwrap();
    let input = "kind: Secret\nmetadata: {name: db}\nstringData: {a: b}\n";
    let seal = |config: &Path, args: &[&str]| {
        let mut command = plugin(home.path());
        command.env("KUBECONFIG", config).args(args);
        run_with_stdin(command, input.as_bytes())
    };
    let output = seal(&config, &["seal", "--offline"]);
    assert_code(&output, 0);
    assert!(
        stdout(&output).contains("namespace: staging"),
        "context namespace used: {}",
        stdout(&output)
    );
    // The API server (127.0.0.1:9) is unreachable: without --offline the cache is the fallback, with a warning.
    let output = seal(&config, &["seal"]);
    assert_code(&output, 0);
    assert!(
        stderr(&output).contains("using the certificate cached for context `kind-dev`"),
        "{}",
        stderr(&output)
    );
    // Another context has no cache.
    let output = seal(&kubeconfig(home.path(), "prod"), &["seal", "--offline"]);
    assert_error(&output, "no cached certificate for context `prod`");
}

/// Every file under `dir` (recursively).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn no_plaintext_in_any_written_file_or_output() {
    let inputs = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let secrets = [
        "app-user-7Qx",
        "hunter2-PLAINTEXT-9Zk",
        "tok-PLAINTEXT-4Jm",
        "env-PLAINTEXT-3Hd",
        "raw-PLAINTEXT-8Lp",
    ];
    let manifest = inputs.path().join("secret.yml");
    std::fs::write(&manifest, SECRET).unwrap();
    let env_file = inputs.path().join("app.env");
    std::fs::write(
        &env_file,
        "ENV_KEY=env-PLAINTEXT-3Hd\nbad key=hunter2-PLAINTEXT-9Zk\n",
    )
    .unwrap();
    let out = home.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cert = cert();
    let yaml = out.join("db.yml");
    let json = out.join("db.json");
    let mut outputs = Vec::new();
    let mut run = |args: Vec<String>, stdin: &str| {
        let mut command = plugin(home.path());
        command.arg("-vvv").args(&args);
        let output = run_with_stdin(command, stdin.as_bytes());
        outputs.push((args, output));
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // `seal --cert CERT` and then `rest`.
    let seal = |rest: &[&str]| s(&[&["seal", "--cert", &cert][..], rest].concat());
    run(seal(&["-f", &manifest.display().to_string()]), "");
    run(seal(&["--out", &yaml.display().to_string()]), SECRET);
    run(
        seal(&["-o", "json", "--out", &json.display().to_string()]),
        SECRET,
    );
    run(
        seal(&[
            "--merge-into",
            &yaml.display().to_string(),
            "--from-literal",
            "token=tok-PLAINTEXT-4Jm",
        ]),
        "",
    );
    run(
        seal(&[
            "--merge-into",
            &json.display().to_string(),
            "--from-env-file",
            &env_file.display().to_string(),
        ]),
        "",
    );
    run(
        s(&["raw", "--cert", &cert, "--name", "db", "-n", "staging"]),
        "raw-PLAINTEXT-8Lp\n",
    );
    // Failures with secrets in the input.
    run(
        seal(&[]),
        "kind: Secret\nmetadata: {name: a, namespace: b}\nstringData:\n  a: hunter2-PLAINTEXT-9Zk\n   b: [\n",
    );
    run(
        seal(&[]),
        "kind: Secret\nmetadata: {name: a, namespace: b}\nstringData:\n  'bad key': hunter2-PLAINTEXT-9Zk\n",
    );
    run(
        s(&["seal", "--cert", &keys().expired.display().to_string()]),
        SECRET,
    );
    run(
        seal(&[
            "--name",
            "a",
            "-n",
            "b",
            "--from-env-file",
            &env_file.display().to_string(),
        ]),
        "",
    );
    for (args, output) in &outputs {
        for secret in secrets {
            for (stream, text) in [("stdout", stdout(output)), ("stderr", stderr(output))] {
                assert!(
                    !text.contains(secret),
                    "{args:?}: {stream} holds {secret}:\n{text}"
                );
            }
        }
    }
    assert!(outputs[0].1.status.success() && outputs[5].1.status.success());
    let written = files(home.path());
    assert!(written.len() >= 2, "{written:?}");
    for file in written {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{file:?} holds {secret}");
        }
    }
}

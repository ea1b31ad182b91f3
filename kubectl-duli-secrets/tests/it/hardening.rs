//! Issue #17 for `kubectl duli secrets`: the hostile cases beyond the corpus, each against the built plugin
//! with real files, processes and sockets — a drip-feeding certificate URL, a hanging exec credential
//! plugin, a closed stdout, output paths that are symlinks or special files, suspect certificates, a killed
//! `init`'s temporaries, arguments that are not UTF-8.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use testkit::process::Run;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: hardening-PLAINTEXT-7Qm}\n";

/// Run `command` with `stdin`; longer than `bound` is a hang: killed, and the test fails.
fn run_bounded(mut command: Command, stdin: &[u8], bound: Duration) -> Run {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("plugin starts");
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = out.read_to_end(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = err.read_to_end(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {bound:?}",
                testkit::process::describe(&command)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::process::Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    Run::from_output(&output, started.elapsed())
}

#[track_caller]
fn one_error_line(run: &Run) -> &str {
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", run.all());
    errors[0]
}

/// A `--cert` URL that sends its headers, then one byte a second: the command ends at its `--timeout`.
#[test]
fn a_drip_feeding_cert_url_ends_at_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/cert.pem", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
                for _ in 0..100_000 {
                    if stream.write_all(b"-").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    let home = tempfile::tempdir().unwrap();
    let mut command = plugin(home.path());
    command.args(["seal", "--cert", &url, "--timeout", "3s"]);
    let run = run_bounded(command, SECRET.as_bytes(), Duration::from_secs(20));
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.elapsed >= Duration::from_millis(2900) && run.elapsed < Duration::from_secs(7),
        "ended after {:?}",
        run.elapsed
    );
    let error = one_error_line(&run);
    assert!(error.contains("--timeout"), "{error}");
    assert!(run.stdout.is_empty());
}

/// A kubeconfig whose exec credential plugin never returns: fetching the certificate ends at `--timeout`
/// (the runner's deadline, then its watchdog), not never.
#[test]
fn a_hanging_exec_credential_plugin_ends_at_the_timeout() {
    let (_listener, server) = testkit::servers::silent_server();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: hang\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\n\
             contexts:\n- name: hang\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    exec:\n      \
             apiVersion: client.authentication.k8s.io/v1beta1\n      command: sleep\n      args: [\"30\"]\n      \
             interactiveMode: Never\n"
        ),
    )
    .unwrap();
    let mut command = plugin(home.path());
    command
        .env("KUBECONFIG", &kubeconfig)
        .args(["seal", "--timeout", "2s"]);
    let run = run_bounded(command, SECRET.as_bytes(), Duration::from_secs(25));
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.elapsed < Duration::from_secs(3) + shared::runner::GRACE + Duration::from_secs(2),
        "ended after {:?}",
        run.elapsed
    );
    one_error_line(&run);
}

/// stdout closed (`>&-`): exit 2 naming stdout, not 0 with the document lost; a reader that goes away (a
/// broken pipe) stays quiet.
#[test]
fn a_closed_stdout_is_an_error_and_a_broken_pipe_is_quiet() {
    let home = tempfile::tempdir().unwrap();
    let manifest = home.path().join("secret.yml");
    std::fs::write(&manifest, SECRET).unwrap();
    let shell = |script: &str| {
        let mut command = plugin(home.path());
        command
            .args(["seal", "--cert"])
            .arg(&keys().cert)
            .arg("-f")
            .arg(&manifest);
        let mut sh = Command::new("bash");
        sh.arg("-c")
            .arg(script)
            .arg(command.get_program())
            .args(command.get_args());
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => sh.env(name, value),
                None => sh.env_remove(name),
            };
        }
        run_bounded(sh, b"", Duration::from_secs(20))
    };
    let closed = shell(r#""$0" "$@" >&-"#);
    assert_eq!(closed.code, 2, "{}", closed.all());
    assert!(
        one_error_line(&closed).contains("cannot write to stdout"),
        "{}",
        closed.all()
    );

    let piped =
        shell(r#"set -o pipefail; "$0" "$@" | (exec 0<&-; true); echo "plugin exit ${PIPESTATUS[0]}""#);
    assert!(piped.stdout.contains("plugin exit 0"), "{}", piped.all());
    assert!(piped.stderr.is_empty(), "{}", piped.all());
}

fn seal_to(home: &Path, out: &Path) -> Run {
    let mut command = plugin(home);
    command
        .args(["seal", "--cert"])
        .arg(&keys().cert)
        .arg("--out")
        .arg(out);
    run_bounded(command, SECRET.as_bytes(), Duration::from_secs(20))
}

/// `--out` never replaces a symlink, a FIFO or a device node: one sentence naming the path, exit 2, the
/// path and what it points at unchanged.
#[test]
fn out_refuses_symlinks_fifos_and_devices() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let target = h.join("target.yml");
    std::fs::write(&target, "keep me\n").unwrap();
    let link = h.join("link.yml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fifo = h.join("fifo.yml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let mut cases = vec![(link.clone(), "a symlink"), (fifo.clone(), "a FIFO")];
    // A device node of our own (the /dev/null numbers) when allowed to make one (root).
    let device = h.join("device.yml");
    let made = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        cases.push((device.clone(), "a character device"));
    }
    for (path, kind) in &cases {
        let run = seal_to(h, path);
        assert_eq!(run.code, 2, "{}: {}", path.display(), run.all());
        let error = one_error_line(&run);
        assert!(
            error.contains(&format!(
                "will not write sealed secret to {}: it is {kind}",
                path.display()
            )),
            "{error}"
        );
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    if made {
        assert!(
            std::fs::symlink_metadata(&device)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    let leftovers: Vec<PathBuf> = std::fs::read_dir(h)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".duli-"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

/// `--merge-into LINK` updates the file the link points at (its documented meaning) and keeps the link.
#[test]
fn merge_into_a_symlink_updates_its_target_and_keeps_the_link() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let target = h.join("real.yml");
    assert_eq!(seal_to(h, &target).code, 0);
    let link = h.join("link.yml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let mut command = plugin(h);
    command
        .args(["seal", "--cert"])
        .arg(&keys().cert)
        .arg("--merge-into")
        .arg(&link)
        .args(["--from-literal", "extra=merged-PLAINTEXT-3Rz"]);
    let run = run_bounded(command, b"", Duration::from_secs(20)).expect(0);
    assert!(!run.stderr.contains("merged-PLAINTEXT"));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.contains("extra:") && text.contains("password:"), "{text}");
}

/// A certificate not valid yet, and one with a 1024-bit key: sealing works, with one warning naming it.
#[test]
fn suspect_certificates_are_named_in_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        "small.pem",
    ]);
    openssl(&[
        "req",
        "-x509",
        "-key",
        "small.pem",
        "-subj",
        "/CN=small",
        "-days",
        "30",
        "-out",
        "small-cert.pem",
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        &keys().key.display().to_string(),
        "-subj",
        "/CN=future",
        "-out",
        "f.csr",
    ]);
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
    )
    .unwrap();
    openssl(&[
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-selfsign",
        "-keyfile",
        &keys().key.display().to_string(),
        "-in",
        "f.csr",
        "-startdate",
        "20990101000000Z",
        "-enddate",
        "21000101000000Z",
        "-out",
        "future.pem",
    ]);
    for (cert, expect) in [
        ("small-cert.pem", "holds a 1024-bit RSA key, under the 2048 bits"),
        ("future.pem", "is not valid until January 1, 2099"),
    ] {
        let path = d.join(cert);
        let mut command = plugin(d);
        command.args(["seal", "--cert"]).arg(&path);
        let run = run_bounded(command, SECRET.as_bytes(), Duration::from_secs(20)).expect(0);
        let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains(expect)).collect();
        assert_eq!(warnings.len(), 1, "{cert}: {}", run.all());
        assert!(
            warnings[0].contains(&path.display().to_string()),
            "{}",
            warnings[0]
        );
        assert!(run.stdout.contains("kind: SealedSecret"));
    }
}

/// Arguments and files that are not UTF-8: the error names the argument or the file.
#[test]
fn invalid_utf8_names_the_argument_or_file() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bad = OsStr::from_bytes(b"caf\xe9");
    for (flag, other) in [("--name", ["-n", "b"]), ("-n", ["--name", "a"])] {
        let mut command = plugin(h);
        command
            .args(["seal", "--cert"])
            .arg(&keys().cert)
            .args(other)
            .args(["--from-literal", "k=v"])
            .arg(flag)
            .arg(bad);
        let run = run_bounded(command, b"", Duration::from_secs(20));
        assert_eq!(run.code, 2, "{}", run.all());
        let error = one_error_line(&run);
        assert!(
            error.contains(&format!("the value of {flag} is not valid UTF-8")),
            "{error}"
        );
    }
    let mut joined = std::ffi::OsString::from("--from-literal=");
    joined.push(bad);
    let mut command = plugin(h);
    command.args(["seal", "--name", "a", "-n", "b"]).arg(&joined);
    let run = run_bounded(command, b"", Duration::from_secs(20));
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(one_error_line(&run).contains("the value of --from-literal is not valid UTF-8"));

    // A merge target that is not UTF-8 text is named.
    let target = h.join("latin1.yml");
    std::fs::write(&target, b"kind: SealedSecret # caf\xe9\n").unwrap();
    let mut command = plugin(h);
    command
        .args(["seal", "--cert"])
        .arg(&keys().cert)
        .arg("--merge-into")
        .arg(&target)
        .args(["--from-literal", "k=v"]);
    let run = run_bounded(command, b"", Duration::from_secs(20));
    assert_eq!(run.code, 2, "{}", run.all());
    let error = one_error_line(&run);
    assert!(
        error.contains(&format!("{} is not valid UTF-8", target.display())),
        "{error}"
    );
}

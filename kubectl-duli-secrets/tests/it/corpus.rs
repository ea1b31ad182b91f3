//! The bad-input corpus of `kubectl duli secrets` (issue #9): every case checks the exit code (2 unless
//! the case is one that must succeed), one `error:` line naming the offending input, document, field or
//! resource and saying what to do, and that nothing was written (the run's HOME — which holds the --out
//! targets, the merge targets and the certificate cache — is byte-for-byte unchanged) or applied (the
//! stand-in saw no write and its resourceVersion did not move).
//!
//! Cases that need no cluster seal with `--cert`; the others run against kube-standin with a small HTTP
//! server behind the controller Service's proxy. Cases in a table run concurrently.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use kube_standin::StandIn;
use kubectl_duli_secrets::format::{Scope, open_base64};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;
use testkit::corpus::{Case, changed_paths, kubeconfig_for, snapshot, write};
use testkit::process::Run;
use testkit::servers::status_server;

/// Run one case with HOME = `home` (and TMPDIR and the working directory inside it), and check it.
fn check(home: &Path, case: &Case) {
    let mut command = plugin(home);
    command.args(&case.args).current_dir(home).env("TMPDIR", home);
    for (name, value) in &case.env {
        command.env(name, value);
    }
    let started = Instant::now();
    let output = run_with_stdin(command, &case.stdin);
    case.verify(&Run::from_output(&output, started.elapsed()));
}

/// Run every case concurrently in one HOME and check that none of them wrote anything there.
fn check_all(home: &Path, cases: &[Case]) {
    let before = snapshot(home);
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(move || check(home, case)))
            .collect();
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let changed = changed_paths(&before, &snapshot(home));
    assert!(changed.is_empty(), "files written or changed: {changed:?}");
}

fn cert() -> String {
    keys().cert.display().to_string()
}

fn private_key() -> rsa::PrivateKey {
    rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&keys().key).unwrap()).unwrap()
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: corpus-PLAINTEXT-1Xy}\n";

/// A billion-laughs document: nine levels of ten aliases each.
fn yaml_bomb() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\nlol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..9 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("lol{level}: &l{level} [{refs}]\n"));
    }
    text.push_str("stringData: {a: b}\n");
    text
}

/// Inputs sealed with `--cert`: manifests, values, key names, sizes, encodings, certificates, merge targets.
#[test]
fn corpus_offline_inputs() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("out.yml").display().to_string();
    let cert = cert();
    let big = write(h, "big.bin", vec![7u8; 10 * 1024 * 1024]);
    let just_over = write(h, "over.bin", vec![1u8; 1024 * 1024 + 1]);
    let big_manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: big, namespace: staging}}\ndata:\n  small: YQ==\n  blob: {}\n",
        b64(&vec![0u8; 10 * 1024 * 1024])
    );
    let not_utf8_manifest = write(
        h,
        "latin1.yml",
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\nstringData: {a: caf\xe9}\n",
    );
    let not_utf8_env = write(h, "latin1.env", b"A=ok\nB=caf\xe9\n");
    let bad_key_env = write(h, "keys.env", "GOOD=1\n\nbad key=corpus-PLAINTEXT-2Env\n");
    let bare_env = write(h, "bare.env", "DULI_CORPUS_SURELY_UNSET_42\n");
    let spaced_name = write(h, "my key.txt", "x");
    let garbage_pem = write(
        h,
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nTUlJQm9nd3M=\n-----END CERTIFICATE-----\n",
    );
    let key_not_cert = write(h, "key-only.pem", std::fs::read(&keys().key).unwrap());
    let not_utf8_cert = write(h, "binary.pem", [0x30u8, 0x82, 0xff, 0xfe, 0x00]);
    // Merge targets.
    let sealed = |name: &str, input: &str| {
        let path = h.join(name);
        let mut command = plugin(h);
        command.args(["seal", "--cert", &cert, "--out"]).arg(&path);
        assert_code(&run_with_stdin(command, input.as_bytes()), 0);
        path.display().to_string()
    };
    let strict = sealed("strict.yml", SECRET);
    let typed = sealed(
        "typed.yml",
        &SECRET.replace("stringData:", "type: kubernetes.io/basic-auth\nstringData:"),
    );
    let cluster_wide = sealed(
        "cluster-wide.yml",
        &SECRET.replace(
            "namespace: staging}",
            "namespace: staging, annotations: {sealedsecrets.bitnami.com/cluster-wide: \"true\"}}",
        ),
    );
    let two_docs = write(
        h,
        "two.yml",
        format!(
            "{}{}",
            std::fs::read_to_string(&strict).unwrap(),
            std::fs::read_to_string(&strict).unwrap()
        ),
    );
    let empty_target = write(h, "empty.yml", "");
    let missing_target = h.join("missing.yml").display().to_string();
    let dir_target = h.join("a-directory");
    std::fs::create_dir_all(&dir_target).unwrap();
    let dir_target = dir_target.display().to_string();
    let long_key = format!("{}=v", "k".repeat(254));

    let c = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--cert".to_string(), cert.clone()]);
        all
    };
    let case = |name, args: &[&str], code, expect: &[&str]| {
        let mut case = Case::new(name, &[], code, expect);
        case.args = c(args);
        case
    };
    let cases = vec![
        // YAML and JSON attacks and mistakes.
        case("YAML bomb (billion laughs)", &["seal", "--out", &out], 2, &["stdin is not valid YAML", "YAML bomb", "write the values out"])
            .stdin(yaml_bomb())
            .within(Duration::from_secs(15)),
        case("duplicate key in stringData", &["seal", "--out", &out], 2, &["stdin is not valid YAML", "key `password` is given twice", "line 6", "give each key once"])
            .stdin(format!("{SECRET}  password: other\n").replace("stringData: {password: corpus-PLAINTEXT-1Xy}\n", "stringData:\n  password: corpus-PLAINTEXT-1Xy\n"))
            .forbid("corpus-PLAINTEXT-1Xy"),
        case("duplicate top-level key", &["seal", "--out", &out], 2, &["key `metadata` is given twice", "line 4"])
            .stdin(SECRET.replace("stringData:", "metadata: {name: other}\nstringData:")),
        case("duplicate key in a JSON manifest", &["seal", "--out", &out], 2, &["stdin is not valid JSON", "key `password` is given twice in one object"])
            .stdin("{\"kind\": \"Secret\", \"metadata\": {\"name\": \"a\", \"namespace\": \"b\"}, \"stringData\": {\"password\": \"corpus-PLAINTEXT-1Xy\", \"password\": \"x\"}}")
            .forbid("corpus-PLAINTEXT-1Xy"),
        case("a List holding a ConfigMap", &["seal", "--out", &out], 2, &["document 1 of stdin is a ConfigMap (v1), not a Secret"])
            .stdin("kind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"),
        case("immutable is not a boolean", &["seal", "--out", &out], 2, &["field `immutable`", "expected true or false"])
            .stdin(SECRET.replace("stringData:", "immutable: \"yes\"\nstringData:")),
        case("stringData value is a number", &["seal", "--out", &out], 2, &["field `stringData.port`", "quote the value"])
            .stdin(SECRET.replace("{password: corpus-PLAINTEXT-1Xy}", "{port: 5432}")),
        // Names and keys a Secret forbids.
        case("key `..`", &["seal", "--name", "a", "-n", "b", "--from-literal", "..=x", "--out", &out], 2, &["--from-literal ..", "key `..` is not allowed in a Secret", "use 1-253 letters"]),
        case("empty key in data", &["seal", "--out", &out], 2, &["field `data.`", "key `` is not allowed"])
            .stdin("kind: Secret\nmetadata: {name: a, namespace: b}\ndata: {'': eA==}\n"),
        case("key of 254 characters", &["seal", "--name", "a", "-n", "b", "--from-literal", &long_key, "--out", &out], 2, &["is not allowed in a Secret", "1-253"]),
        case("non-ASCII key", &["seal", "--out", &out], 2, &["field `stringData.пароль`", "is not allowed"])
            .stdin("kind: Secret\nmetadata: {name: a, namespace: b}\nstringData: {пароль: x}\n"),
        case("key with a space in an env file", &["seal", "--name", "a", "-n", "b", "--from-env-file", &bad_key_env, "--out", &out], 2, &[&format!("{bad_key_env} line 3"), "key `bad key` is not allowed"])
            .forbid("corpus-PLAINTEXT-2Env"),
        case("file name that is no key (--from-file)", &["seal", "--name", "a", "-n", "b", "--from-file", &spaced_name, "--out", &out], 2, &["key `my key.txt` is not allowed", "--from-file"]),
        case("Secret name with capitals", &["seal", "--name", "Db_Password", "-n", "b", "--from-literal", "a=b", "--out", &out], 2, &["--name: Secret name \"Db_Password\" is invalid: it contains 'D'", "lowercase letters"]),
        case("empty namespace (-n '')", &["seal", "--name", "a", "-n", "", "--from-literal", "a=b", "--out", &out], 2, &["-n/--namespace: namespace name \"\" is invalid: it is empty", "DNS-1123 label", "no controller could ever create this Secret"]),
        case("non-ASCII Secret name", &["seal", "--name", "dé", "-n", "b", "--from-literal", "a=b", "--out", &out], 2, &["--name: Secret name", "is invalid: it contains"]),
        case("raw with a namespace of 64 characters", &["raw", "--name", "a", "-n", &"n".repeat(64)], 2, &["-n/--namespace: namespace name", "it is 64 characters long"]).stdin("v"),
        case("namespace with a space", &["seal", "--out", &out], 2, &["metadata.namespace: namespace name \"my ns\" is invalid: it contains"])
            .stdin(SECRET.replace("namespace: staging", "namespace: my ns")),
        case("same key from two sources", &["seal", "--name", "a", "-n", "b", "--from-literal", "k=1", "--from-literal", "k=2", "--out", &out], 2, &["key `k` is given twice (--from-literal k and --from-literal k)"]),
        case("--from-literal without =", &["seal", "--name", "a", "-n", "b", "--from-literal", "justakey", "--out", &out], 2, &["--from-literal `justakey`: expected KEY=VALUE"]),
        case("env file line naming an unset variable", &["seal", "--name", "a", "-n", "b", "--from-env-file", &bare_env, "--out", &out], 2, &[&format!("{bare_env} line 1"), "no environment variable of that name is set"]),
        case("--prompt without a terminal", &["seal", "--name", "a", "-n", "b", "--prompt", "password", "--out", &out], 2, &["cannot prompt for `password`: no terminal", "--from-env-file"]),
        case("-f together with --from-literal", &["seal", "-f", "x.yml", "--from-literal", "a=b", "--out", &out], 2, &["-f reads a Secret manifest; it cannot be combined with --from-literal"]),
        case("-f naming a missing file", &["seal", "-f", "/nonexistent/duli/secret.yml", "--out", &out], 2, &["cannot read /nonexistent/duli/secret.yml: No such file"]),
        // Sizes and encodings.
        case("10 MiB value (--from-file)", &["seal", "--name", "a", "-n", "b", "--from-file", &format!("blob={big}"), "--out", &out], 2, &["Secret `a`: key `blob` holds 10.0 MiB", "over the 1 MiB Kubernetes allows", "keep large files out of Secrets"]),
        case("10 MiB value in a manifest", &["seal", "--out", &out], 2, &["Secret `big`: key `blob` holds 10.0 MiB"]).stdin(big_manifest),
        case("1 MiB + 1 byte in all", &["seal", "--name", "a", "-n", "b", "--from-file", &format!("blob={just_over}"), "--out", &out], 2, &["key `blob` holds 1.0 MiB"]),
        case("10 MiB raw value", &["raw", "--name", "a", "-n", "b", "--from-file", &big], 2, &["holds 10.0 MiB", "1 MiB"]),
        case("manifest that is not UTF-8 (stdin)", &["seal", "--out", &out], 2, &["stdin is not valid UTF-8 text"])
            .stdin(b"kind: Secret\nmetadata: {name: a, namespace: b}\nstringData: {a: caf\xe9}\n".to_vec()),
        case("manifest that is not UTF-8 (-f)", &["seal", "-f", &not_utf8_manifest, "--out", &out], 2, &[&format!("{not_utf8_manifest} is not valid UTF-8 text")]),
        case("env file that is not UTF-8", &["seal", "--name", "a", "-n", "b", "--from-env-file", &not_utf8_env, "--out", &out], 2, &[&format!("{not_utf8_env} line 2: is not UTF-8 text"), "--from-file KEY=PATH"]),
        // Certificates.
        Case::new("certificate with garbage in its PEM block", &["seal", "--cert", &garbage_pem, "--out", &out], 2, &[&format!("certificate {garbage_pem} is not a valid X.509 certificate")]).stdin(SECRET),
        Case::new("private key given as the certificate", &["seal", "--cert", &key_not_cert, "--out", &out], 2, &[&format!("certificate {key_not_cert} is not PEM"), "fetch-cert"]).stdin(SECRET).forbid("PRIVATE KEY"),
        Case::new("binary certificate file", &["raw", "--cert", &not_utf8_cert, "-n", "b", "--name", "a"], 2, &["is not PEM"]).stdin("v"),
        Case::new("EC certificate (raw)", &["raw", "--cert", &keys().ec.display().to_string(), "-n", "b", "--name", "a"], 2, &["holds a EC key, not RSA"]).stdin("v"),
        Case::new("expired certificate (merge-into)", &["seal", "--cert", &keys().expired.display().to_string(), "--merge-into", &strict, "--from-literal", "a=b"], 2, &["expired on", "fetch-cert"]),
        Case::new("--cert URL with an unsupported scheme", &["seal", "--cert", "ftp://example.invalid/cert.pem", "--out", &out], 2, &["unsupported scheme `ftp`", "use a file path, file://, http:// or https://"]).stdin(SECRET),
        Case::new("--cert URL refusing connections", &["seal", "--cert", "http://127.0.0.1:1/v1/cert.pem", "--out", &out], 2, &["cannot fetch \"http://127.0.0.1:1/v1/cert.pem\": Connection refused"]).stdin(SECRET),
        // Merge targets that do not fit.
        case("merge into a file with two documents", &["seal", "--merge-into", &two_docs, "--from-literal", "a=b"], 2, &[&format!("{two_docs} is not a SealedSecret (it holds 2 documents)")]),
        case("merge into an empty file", &["seal", "--merge-into", &empty_target, "--from-literal", "a=b"], 2, &["is not a SealedSecret (it is empty)"]),
        case("merge into a missing file", &["seal", "--merge-into", &missing_target, "--from-literal", "a=b"], 2, &[&format!("cannot read {missing_target}: No such file")]),
        case("merge into a directory", &["seal", "--merge-into", &dir_target, "--from-literal", "a=b"], 2, &[&format!("input file {dir_target} is a directory, not a regular file")]),
        case("merge with another type", &["seal", "--merge-into", &typed, "--type", "Opaque", "--from-literal", "a=b"], 2, &["type mismatch", "has kubernetes.io/basic-auth but the input has Opaque", "drop --type"]),
        case("merge a strict input into a cluster-wide file", &["seal", "--merge-into", &cluster_wide, "--scope", "strict", "--from-literal", "a=b"], 2, &["scope mismatch", "has cluster-wide but the input has strict", "drop --scope"]),
        case("merge two input Secrets", &["seal", "--merge-into", &strict], 2, &["--merge-into takes exactly one input Secret, got 2"])
            .stdin(format!("{SECRET}---\n{SECRET}")),
        case("raw without --namespace", &["raw", "--name", "a"], 2, &["must provide the --namespace flag with raw and --scope strict"]).stdin("v"),
        case("raw without a value", &["raw", "--name", "a", "-n", "b"], 2, &["no value on stdin", "--allow-empty-data"]),
    ];
    check_all(h, &cases);
}

/// Binary values and exactly 1 MiB seal fine and open to the same bytes.
#[test]
fn corpus_binary_and_limit_values_seal() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe, 0xc3, 0x28]).collect();
    let binary_file = write(h, "key.der", &binary);
    let limit = vec![b'x'; 1024 * 1024];
    let limit_file = write(h, "limit.bin", &limit);
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: bin, namespace: staging}}\ndata:\n  der: {}\n",
        b64(&binary)
    );
    let (der_binary, der_limit) = (format!("der={binary_file}"), format!("der={limit_file}"));
    let key = private_key();
    let cert = cert();
    for (name, args, stdin, sealed_name, expected) in [
        (
            "binary --from-file",
            vec!["--name", "bin", "-n", "staging", "--from-file", &der_binary],
            String::new(),
            "bin",
            &binary,
        ),
        ("binary data: in a manifest", vec![], manifest, "bin", &binary),
        (
            "exactly 1 MiB",
            vec!["--name", "bin", "-n", "staging", "--from-file", &der_limit],
            String::new(),
            "bin",
            &limit,
        ),
    ] {
        let mut command = plugin(h);
        command.args(["seal", "--cert", &cert, "-o", "json"]).args(&args);
        let output = run_with_stdin(command, stdin.as_bytes());
        assert_code(&output, 0);
        let doc: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let label = Scope::Strict.label("staging", sealed_name);
        let value = doc["spec"]["encryptedData"]["der"].as_str().unwrap();
        assert_eq!(&open_base64(&key, &label, value).unwrap(), expected, "{name}");
    }
    // raw: a binary value from a file.
    let mut command = plugin(h);
    command.args([
        "raw",
        "--cert",
        &cert,
        "-n",
        "staging",
        "--name",
        "bin",
        "--from-file",
        &binary_file,
    ]);
    let output = run_with_stdin(command, b"");
    assert_code(&output, 0);
    let label = Scope::Strict.label("staging", "bin");
    assert_eq!(open_base64(&key, &label, &stdout(&output)).unwrap(), binary);
}

/// `init` and `audit` inputs: catalog and environment files.
#[test]
fn corpus_repository_inputs() {
    let make = |catalog: &str, edit_staging: &dyn Fn(String) -> String| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("helm")).unwrap();
        std::fs::create_dir_all(root.join("gitops/environments")).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gitops/environments");
        for env in ["staging", "prod"] {
            let text = std::fs::read_to_string(source.join(format!("{env}.yml"))).unwrap();
            let text = if env == "staging" {
                edit_staging(text)
            } else {
                text
            };
            std::fs::write(root.join(format!("gitops/environments/{env}.yml")), text).unwrap();
        }
        if !catalog.is_empty() {
            std::fs::write(root.join("gitops/secrets.yml"), catalog).unwrap();
        }
        dir
    };
    let good =
        "secrets:\n- name: redis-secret\n  namespace: env\n  keys:\n    password: {generate: password}\n";
    let same = |t: String| t;
    let no_catalog = make("", &same);
    let unknown_key = make(&good.replace("keys:", "keyz: {}\n  keys:"), &same);
    let duplicate = make(
        &format!(
            "{good}- name: redis-secret\n  namespace: env\n  keys:\n    password: {{generate: password}}\n"
        ),
        &same,
    );
    let two_sources = make(
        &good.replace("{generate: password}", "{generate: password, value: x}"),
        &same,
    );
    let bad_length = make(
        &good.replace("{generate: password}", "{generate: password, length: 8}"),
        &same,
    );
    let env_wrong_type = make(good, &|t| t.replace("log_level: debug", "log_level: [debug]"));
    let cases_for = |repo: &tempfile::TempDir, name, args: &[&str], expect: &[&str]| {
        let mut all = vec![
            "--repo".to_string(),
            repo.path().display().to_string(),
            "--cert".into(),
            cert(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let mut case = Case::new(name, &[], 2, expect);
        case.args = all;
        case
    };
    let catalog = |repo: &tempfile::TempDir| repo.path().join("gitops/secrets.yml").display().to_string();
    let cases = vec![
        cases_for(
            &no_catalog,
            "init without a catalog",
            &["init", "staging"],
            &[
                &format!("cannot read the secrets catalog {}", catalog(&no_catalog)),
                "No such file",
            ],
        ),
        cases_for(
            &unknown_key,
            "catalog with an unknown key",
            &["init", "staging"],
            &[
                &format!("invalid secrets catalog {}", catalog(&unknown_key)),
                "keyz",
            ],
        ),
        cases_for(
            &duplicate,
            "catalog listing a secret twice",
            &["init", "staging"],
            &["secrets[1]: secret `redis-secret` is listed twice"],
        ),
        cases_for(
            &two_sources,
            "catalog key with two sources",
            &["init", "staging"],
            &["secrets[0].keys.password: give exactly one of `generate`, `value`, `prompt`"],
        ),
        cases_for(
            &bad_length,
            "catalog password length out of range",
            &["init", "staging"],
            &["secrets[0].keys.password.length: 8 is outside 16..=256"],
        ),
        cases_for(
            &env_wrong_type,
            "init: environment file with a wrong type",
            &["init", "staging"],
            &["gitops/environments/staging.yml", "line"],
        ),
        cases_for(
            &env_wrong_type,
            "audit: unknown environment",
            &["audit", "qa", "--no-live"],
            &["unknown environment `qa`", "known environments are prod, staging"],
        ),
        Case::new(
            "verify a file that is not a SealedSecret",
            &["verify", "/nonexistent/duli/sealed.yml"],
            2,
            &["/nonexistent/duli/sealed.yml"],
        ),
    ];
    let home = tempfile::tempdir().unwrap();
    let repos = [
        &no_catalog,
        &unknown_key,
        &duplicate,
        &two_sources,
        &bad_length,
        &env_wrong_type,
    ];
    let before: Vec<_> = repos.iter().map(|r| snapshot(r.path())).collect();
    check_all(home.path(), &cases);
    for (repo, before) in repos.iter().zip(before) {
        assert_eq!(snapshot(repo.path()), before, "init wrote into {:?}", repo.path());
    }
}

/// The controller as a stand-in Service: its proxy leads to `app`.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn controller_service(name: &str, url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: kube-system\n  labels: {{app.kubernetes.io/name: sealed-secrets}}\n  \
         annotations: {{kube-standin/proxy: \"{url}\"}}\nspec:\n  ports:\n  - {{name: http, port: 8080, targetPort: 8080}}\n"
    )
}

/// The certificate through the cluster: kubeconfig, API server and controller failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_cluster_inputs() {
    let good_cert = std::fs::read_to_string(&keys().cert).unwrap();
    let expired_cert = std::fs::read_to_string(&keys().expired).unwrap();
    let broken = serve(Router::new().route(
        "/v1/cert.pem",
        get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "key store unavailable\n") }),
    ))
    .await;
    let not_pem =
        serve(Router::new().route("/v1/cert.pem", get(|| async { "<html>login page</html>" }))).await;
    let expired = serve(Router::new().route("/v1/cert.pem", get(move || async move { expired_cert }))).await;
    let healthy = serve(Router::new().route("/v1/cert.pem", get(move || async move { good_cert }))).await;
    let seed = [
        controller_service("sealed-secrets-controller", &broken),
        controller_service("not-pem", &not_pem),
        controller_service("expired", &expired),
        controller_service("sealed-secrets", &healthy),
    ]
    .join("---\n");
    let api = StandIn::builder().seed_yaml(&seed).start().await.unwrap();
    api.deny("get", "services");
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let standin_config = api.write_kubeconfig(&h).unwrap().display().to_string();
    let token = "kube-TOKEN-PLAINTEXT-3Kc";
    let malformed = write(
        &h,
        "malformed.kubeconfig",
        kubeconfig_for("http://127.0.0.1:1").replace("user: {}", &format!("user: {{token: \"{token}}}")),
    );
    let refused = write(&h, "refused.kubeconfig", kubeconfig_for("http://127.0.0.1:1"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = write(
        &h,
        "silent.kubeconfig",
        kubeconfig_for(&format!("http://{}", listener.local_addr().unwrap())),
    );
    let unauthorized = write(
        &h,
        "unauthorized.kubeconfig",
        kubeconfig_for(&status_server(401, "Unauthorized").await.1),
    );
    let out = h.join("out.yml").display().to_string();

    // 403 on services: the first group; the second group runs after the denial is lifted.
    let forbidden = vec![
        Case::new(
            "403 reading the controller Service",
            &["fetch-cert", "--controller-name", "sealed-secrets"],
            2,
            &[
                "cannot fetch certificate: forbidden",
                "services/proxy",
                "in namespace `kube-system`",
            ],
        )
        .env("KUBECONFIG", &standin_config),
    ];
    let h2 = h.clone();
    tokio::task::spawn_blocking(move || check_all(&h2, &forbidden))
        .await
        .unwrap();
    assert!(api.requests().iter().all(|r| r.method == "GET"));
    let api2 = StandIn::builder().seed_yaml(&seed).start().await.unwrap();
    let standin_config = write(&h, "standin2.kubeconfig", api2.kubeconfig_yaml());
    let rv = api2.store().resource_version();

    let cases = vec![
        Case::new("malformed kubeconfig", &["seal", "--out", &out], 2, &["no certificate: cannot load kubeconfig", "malformed.kubeconfig", "line 8", "pass --cert FILE|URL"])
            .stdin(SECRET)
            .env("KUBECONFIG", &malformed)
            .forbid(token),
        Case::new("unknown context", &["fetch-cert", "--context", "nope"], 2, &["context `nope` not found in kubeconfig", "known contexts: standin"])
            .env("KUBECONFIG", &standin_config),
        Case::new("API server refuses connections", &["fetch-cert"], 2, &["cannot fetch certificate: the API server at http://127.0.0.1:1 is unreachable", "Connection refused", "no cached certificate for context `one` either", "pass --cert"])
            .env("KUBECONFIG", &refused),
        Case::new("API server accepts and never answers", &["seal", "--timeout", "3s", "--out", &out], 2, &["cannot fetch certificate: the API server at", "is unreachable", "no answer within", "pass --cert"])
            .stdin(SECRET)
            .env("KUBECONFIG", &silent)
            .within(Duration::from_secs(6)),
        Case::new("401 Unauthorized", &["fetch-cert"], 2, &["cannot fetch certificate: the API server at", "rejected the credentials", "(401 Unauthorized", "log in again"])
            .env("KUBECONFIG", &unauthorized),
        Case::new("controller Service in another namespace", &["fetch-cert", "--controller-namespace", "sealed-secrets"], 2, &[
            "cannot get sealed secret service `sealed-secrets-controller` in namespace `sealed-secrets`: not found",
            "pass --controller-name",
        ])
        .env("KUBECONFIG", &standin_config),
        Case::new("controller answers 500", &["seal", "--out", &out], 2, &["cannot fetch certificate: cannot GET", "/proxy/v1/cert.pem: the API server failed (500 Internal Server Error)", "no cached certificate for context `standin`"])
            .forbid("key store unavailable")
            .stdin(SECRET)
            .env("KUBECONFIG", &standin_config),
        Case::new("controller answers with something that is not PEM", &["fetch-cert", "--controller-name", "not-pem"], 2, &["from controller kube-system/not-pem", "is not PEM"])
            .env("KUBECONFIG", &standin_config),
        Case::new("controller's certificate has expired (seal refuses)", &["seal", "--controller-name", "expired", "--out", &out], 2, &["expired on", "refusing to seal with it"])
            .stdin(SECRET)
            .env("KUBECONFIG", &standin_config),
    ];
    let h2 = h.clone();
    tokio::task::spawn_blocking(move || check_all(&h2, &cases))
        .await
        .unwrap();
    assert!(
        api2.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        api2.requests()
    );
    assert_eq!(api2.store().resource_version(), rv);
    drop(listener);
}

//! The cluster side, end to end: kube-standin serves the API (Service lookup and the service proxy) and a
//! small local HTTP server plays the sealed-secrets controller (`/v1/cert.pem`, `/v1/verify`,
//! `/v1/rotate`), really decrypting with the test key and re-encrypting with a second one.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use crate::support::*;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use kube_standin::StandIn;
use kubectl_duli_secrets::format::{Scope, Sealer, open_base64};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;

struct Controller {
    cert: String,
    key: rsa::PrivateKey,
    new_key: rsa::PrivateKey,
}

fn label(doc: &Value) -> Vec<u8> {
    let annotations: std::collections::BTreeMap<String, String> = serde_json::from_value(
        doc.pointer("/metadata/annotations")
            .cloned()
            .unwrap_or(Value::Null),
    )
    .unwrap_or_default();
    let meta = |field: &str| {
        doc.pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Scope::from_annotations(&annotations).label(&meta("namespace"), &meta("name"))
}

fn open_all(doc: &Value, keys: &[&rsa::PrivateKey]) -> Option<Vec<(String, Vec<u8>)>> {
    let label = label(doc);
    let data = doc.pointer("/spec/encryptedData")?.as_object()?;
    data.iter()
        .map(|(k, v)| {
            keys.iter()
                .find_map(|key| open_base64(key, &label, v.as_str()?).ok())
                .map(|plain| (k.clone(), plain))
        })
        .collect()
}

async fn start_controller(controller: Arc<Controller>) -> String {
    let app = Router::new()
        .route(
            "/v1/cert.pem",
            get(
                |State(c): State<Arc<Controller>>, headers: HeaderMap| async move {
                    let accept = headers
                        .get("accept")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    assert!(accept.contains("application/x-pem-file"), "Accept: {accept}");
                    ([("content-type", "application/x-pem-file")], c.cert.clone())
                },
            ),
        )
        .route(
            "/v1/verify",
            post(|State(c): State<Arc<Controller>>, body: Bytes| async move {
                let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                if open_all(&doc, &[&c.key, &c.new_key]).is_some() {
                    StatusCode::OK
                } else {
                    StatusCode::CONFLICT
                }
            }),
        )
        .route(
            "/v1/rotate",
            post(|State(c): State<Arc<Controller>>, body: Bytes| async move {
                let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
                    return (StatusCode::BAD_REQUEST, String::new());
                };
                let Some(values) = open_all(&doc, &[&c.key, &c.new_key]) else {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "no key could decrypt secret".to_string(),
                    );
                };
                let sealer = Sealer::new(rsa::PublicKey::from(&c.new_key));
                let label = label(&doc);
                for (key, plain) in values {
                    doc["spec"]["encryptedData"][&key] =
                        Value::from(sealer.seal_base64(&label, &plain).unwrap());
                }
                doc["metadata"]["creationTimestamp"] = Value::Null;
                (StatusCode::OK, serde_json::to_string(&doc).unwrap())
            }),
        )
        .with_state(controller);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn service(name: &str, namespace: &str, controller_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    \
         app.kubernetes.io/name: sealed-secrets\n  annotations:\n    kube-standin/proxy: \"{controller_url}\"\n\
         spec:\n  selector: {{app: sealed-secrets}}\n  ports:\n  - name: http\n    port: 8080\n    targetPort: 8080\n"
    )
}

struct Env {
    standin: StandIn,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
    key: rsa::PrivateKey,
    new_key: rsa::PrivateKey,
    controller_url: String,
}

async fn setup() -> Env {
    let keys = keys();
    let key = rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&keys.key).unwrap()).unwrap();
    let new_key =
        rsa::PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(keys.dir.join("other-key.pem")).unwrap())
            .unwrap();
    let controller = Arc::new(Controller {
        cert: std::fs::read_to_string(&keys.cert).unwrap(),
        key: key.clone(),
        new_key: new_key.clone(),
    });
    let url = start_controller(controller).await;
    // Installed with Helm as release `sealed-secrets`: the Service is not kubeseal's default name.
    let standin = StandIn::builder()
        .seed_yaml(&service("sealed-secrets", "kube-system", &url))
        .start()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(home.path()).unwrap();
    Env {
        standin,
        home,
        kubeconfig,
        key,
        new_key,
        controller_url: url,
    }
}

async fn run(env: &Env, args: &[&str], stdin: &str) -> Output {
    run_against(env.home.path(), &env.kubeconfig, args, stdin).await
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: staging}\nstringData: {password: s3cret, user: app}\n";

fn cache_file(home: &Path) -> PathBuf {
    home.join("cache/duli/sealed-secrets/standin.pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_cert_through_the_service_proxy_finds_the_helm_named_service_and_caches_it() {
    let env = setup().await;
    // kubeseal's default name does not exist: the error names the Service that does.
    let output = run(&env, &["fetch-cert"], "").await;
    assert_code(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains(
            "cannot get sealed secret service `sealed-secrets-controller` in namespace `kube-system`"
        ),
        "{err}"
    );
    assert!(
        err.contains("--controller-name sealed-secrets --controller-namespace kube-system"),
        "{err}"
    );
    assert!(!cache_file(env.home.path()).exists());

    let output = run(&env, &["fetch-cert", "--controller-name", "sealed-secrets"], "").await;
    assert_code(&output, 0);
    let cert = std::fs::read_to_string(&keys().cert).unwrap();
    assert_eq!(stdout(&output), cert);
    assert_eq!(
        std::fs::read_to_string(cache_file(env.home.path())).unwrap(),
        cert
    );
    let paths: Vec<String> = env
        .standin
        .requests()
        .into_iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert!(
        paths.contains(
            &"GET /api/v1/namespaces/kube-system/services/http:sealed-secrets:http/proxy/v1/cert.pem 200"
                .to_string()
        ),
        "{paths:#?}"
    );

    // The environment variables work like the flags; sealing caches too and then works offline.
    let mut command = plugin(env.home.path());
    command
        .env("KUBECONFIG", &env.kubeconfig)
        .env("SEALED_SECRETS_CONTROLLER_NAME", "sealed-secrets")
        .arg("seal");
    let output = tokio::task::spawn_blocking(move || run_with_stdin(command, SECRET.as_bytes()))
        .await
        .unwrap();
    assert_code(&output, 0);
    let sealed: Value = serde_saphyr::from_str(&stdout(&output)).unwrap();
    let values = open_all(&sealed, &[&env.key]).expect("sealed with the controller's certificate");
    assert_eq!(values[0], ("password".to_string(), b"s3cret".to_vec()));

    env.standin.shutdown();
    let output = run(&env, &["seal", "--offline"], SECRET).await;
    assert_code(&output, 0);
    let output = run(&env, &["seal", "--controller-name", "sealed-secrets"], SECRET).await;
    assert_code(&output, 0);
    assert!(
        stderr(&output).contains("using the certificate cached for context `standin`"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_flag_takes_a_url() {
    let env = setup().await;
    let url = format!("{}/v1/cert.pem", env.controller_url);
    let output = run(&env, &["seal", "--cert", &url], SECRET).await;
    assert_code(&output, 0);
    let sealed: Value = serde_saphyr::from_str(&stdout(&output)).unwrap();
    assert!(open_all(&sealed, &[&env.key]).is_some());
    assert!(!cache_file(env.home.path()).exists(), "--cert is not cached");
    let missing = format!("{}/nope.pem", env.controller_url);
    let output = run(&env, &["seal", "--cert", &missing], SECRET).await;
    assert_code(&output, 2);
    assert!(
        stderr(&output).contains(&format!("cannot fetch \"{missing}\": 404")),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denial_names_the_permission() {
    let env = setup().await;
    env.standin.deny("get", "services/proxy");
    let output = run(&env, &["fetch-cert", "--controller-name", "sealed-secrets"], "").await;
    assert_code(&output, 2);
    let err = stderr(&output);
    assert!(
        err.contains("forbidden") && err.contains("services/proxy"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_rotate_through_the_controller() {
    let env = setup().await;
    let dir = env.home.path();
    let good = dir.join("db.yml");
    let output = run(
        &env,
        &[
            "seal",
            "--cert",
            &keys().cert.display().to_string(),
            "--out",
            &good.display().to_string(),
        ],
        SECRET,
    )
    .await;
    assert_code(&output, 0);
    let moved = dir.join("moved.yml");
    std::fs::write(
        &moved,
        std::fs::read_to_string(&good)
            .unwrap()
            .replace("namespace: staging", "namespace: prod"),
    )
    .unwrap();
    let ssc = ["--controller-name", "sealed-secrets"];

    let output = run(
        &env,
        &[&["verify", good.to_str().unwrap()][..], &ssc].concat(),
        "",
    )
    .await;
    assert_code(&output, 0);
    let output = run(
        &env,
        &[
            &[
                "verify",
                good.to_str().unwrap(),
                moved.to_str().unwrap(),
                "-o",
                "json",
            ][..],
            &ssc,
        ]
        .concat(),
        "",
    )
    .await;
    assert_code(&output, 1);
    let verdicts: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(verdicts[0]["decrypts"], true);
    assert_eq!(verdicts[1]["decrypts"], false);
    assert_eq!(verdicts[1]["secret"], "prod/db");

    // Rotation fails for the moved file: nothing is written, even for the good one.
    let before = std::fs::read_to_string(&good).unwrap();
    let output = run(
        &env,
        &[
            &[
                "rotate",
                "--in-place",
                good.to_str().unwrap(),
                moved.to_str().unwrap(),
            ][..],
            &ssc,
        ]
        .concat(),
        "",
    )
    .await;
    assert_code(&output, 2);
    assert!(stderr(&output).contains("moved.yml"), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&good).unwrap(), before);

    let output = run(
        &env,
        &[&["rotate", "--in-place", good.to_str().unwrap()][..], &ssc].concat(),
        "",
    )
    .await;
    assert_code(&output, 0);
    let after = std::fs::read_to_string(&good).unwrap();
    assert_ne!(after, before);
    let changed: Vec<&str> = after
        .lines()
        .filter(|line| !before.lines().any(|old| old == *line))
        .collect();
    assert_eq!(changed.len(), 2, "only the two encrypted values change:\n{after}");
    let doc: Value = serde_saphyr::from_str(&after).unwrap();
    let values = open_all(&doc, &[&env.new_key]).expect("re-encrypted with the new key");
    assert_eq!(
        values,
        [
            ("password".to_string(), b"s3cret".to_vec()),
            ("user".to_string(), b"app".to_vec())
        ]
    );
    let posts: Vec<String> = env
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert!(
        posts.contains(
            &"/api/v1/namespaces/kube-system/services/http:sealed-secrets:http/proxy/v1/rotate".to_string()
        ),
        "{posts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_every_document_of_a_multi_document_file_by_name() {
    let env = setup().await;
    let dir = env.home.path();
    let cert = keys().cert.display().to_string();
    let seal = |secret: String| {
        let env = &env;
        let cert = cert.clone();
        async move {
            let output = run(env, &["seal", "--cert", &cert], &secret).await;
            assert_code(&output, 0);
            stdout(&output)
        }
    };
    let db = seal(SECRET.to_string()).await;
    let cache = seal(SECRET.replace("name: db", "name: cache")).await;
    // Moved after sealing: the controller cannot open it.
    let moved = seal(SECRET.replace("name: db", "name: queue"))
        .await
        .replace("namespace: staging", "namespace: prod");
    let stream = dir.join("all.yaml");
    std::fs::write(&stream, format!("{db}{moved}{cache}")).unwrap();
    let ssc = ["--controller-name", "sealed-secrets"];

    let output = run(
        &env,
        &[&["verify", stream.to_str().unwrap()][..], &ssc].concat(),
        "",
    )
    .await;
    assert_code(&output, 1);
    let table = stdout(&output);
    for (document, secret, verdict) in [
        (1, "staging/db", "yes"),
        (2, "prod/queue", "NO"),
        (3, "staging/cache", "yes"),
    ] {
        assert!(
            table
                .lines()
                .any(|line| line.contains(&format!("(document {document})"))
                    && line.contains(secret)
                    && line.contains(verdict)),
            "document {document}:\n{table}"
        );
    }

    // kubeseal's --validate, on stdin; and -o json names each document.
    let output = run(&env, &[&["--validate"][..], &ssc].concat(), &db).await;
    assert_code(&output, 0);
    let output = run(
        &env,
        &[&["verify", "-o", "json", stream.to_str().unwrap()][..], &ssc].concat(),
        "",
    )
    .await;
    assert_code(&output, 1);
    let verdicts: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let summary: Vec<(u64, &str, bool)> = verdicts
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["document"].as_u64().unwrap(),
                v["secret"].as_str().unwrap(),
                v["decrypts"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "staging/db", true),
            (2, "prod/queue", false),
            (3, "staging/cache", true)
        ]
    );
    let verify_posts = env
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/proxy/v1/verify"))
        .count();
    assert_eq!(verify_posts, 7, "one request per document");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeseal_mode_talks_to_the_controller_named_by_its_variables() {
    let env = setup().await;
    let dir = env.home.path();
    // kubeseal's variables name the controller; nothing on the command line does.
    let vars = [
        ("SEALED_SECRETS_CONTROLLER_NAME", "sealed-secrets"),
        ("SEALED_SECRETS_CONTROLLER_NAMESPACE", "kube-system"),
    ];
    let run_with = |args: &'static [&'static str], stdin: String| {
        let mut command = plugin(dir);
        command.env("KUBECONFIG", &env.kubeconfig).args(args);
        for (name, value) in vars {
            command.env(name, value);
        }
        tokio::task::spawn_blocking(move || run_with_stdin(command, stdin.as_bytes()))
    };
    let output = run_with(&["--fetch-cert"], String::new()).await.unwrap();
    assert_code(&output, 0);
    assert_eq!(stdout(&output), std::fs::read_to_string(&keys().cert).unwrap());

    // Sealed with the certificate from the cluster, JSON by default.
    let output = run_with(&[], SECRET.to_string()).await.unwrap();
    assert_code(&output, 0);
    let sealed = stdout(&output);
    let doc: Value = serde_json::from_str(&sealed).unwrap();
    assert!(open_all(&doc, &[&env.key]).is_some());

    let output = run_with(&["--validate"], sealed.clone()).await.unwrap();
    assert_code(&output, 0);

    // --re-encrypt on stdin: kubeseal prints the re-encrypted SealedSecret (JSON).
    let output = run_with(&["--re-encrypt"], sealed).await.unwrap();
    assert_code(&output, 0);
    let rotated: Value = serde_json::from_str(&stdout(&output)).expect("JSON out");
    let values = open_all(&rotated, &[&env.new_key]).expect("re-encrypted with the new key");
    assert_eq!(values[0], ("password".to_string(), b"s3cret".to_vec()));
}

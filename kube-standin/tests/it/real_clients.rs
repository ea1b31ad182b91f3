//! Real clients straight against the stand-in, with no proxy: kubectl's `create` family and `auth can-i`
//! (protobuf bodies, access reviews) on kubectl 1.32 and 1.35, the helm 4 and helm 3 release lifecycle
//! (release Secrets sent as protobuf), and the official Python `kubernetes` client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_standin::StandIn;
use kube_standin::authz::Denial;
use serde_json::{Value, json};

use crate::common::{Kubectl, spawn_per_kubectl};

/// Requests whose body was protobuf, to show the clients really sent it (and nothing converted it).
fn protobuf_requests(api: &StandIn) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.content_type.as_deref().is_some_and(|c| c.contains("protobuf")))
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect()
}

async fn kubectl_create_family(label: &'static str, bin: PathBuf) {
    let api = StandIn::builder().start().await.expect("stand-in starts");
    let k = Kubectl::new(label, bin, &api);
    k.ok(&["create", "namespace", "team"]).await;
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=mode=fast",
        "--from-literal=empty=",
    ])
    .await;
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team",
        "--from-literal=password=s3cret",
    ])
    .await;
    k.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
    ])
    .await;
    k.ok(&["create", "serviceaccount", "bot", "-n", "team"]).await;
    // No `-- command`: the helper appends `--cache-dir`, which would land in the command.
    k.ok(&["create", "job", "once", "-n", "team", "--image=busybox"])
        .await;
    k.ok(&[
        "create",
        "role",
        "reader",
        "-n",
        "team",
        "--verb=get,list",
        "--resource=pods,configmaps",
    ])
    .await;
    k.ok(&[
        "create",
        "rolebinding",
        "reader",
        "-n",
        "team",
        "--role=reader",
        "--serviceaccount=team:bot",
    ])
    .await;

    k.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        "team",
        "--tcp=80:8080",
        "--tcp=443:https",
    ])
    .await;

    let posted = protobuf_requests(&api);
    assert_eq!(
        posted.len(),
        9,
        "kubectl {label} sends protobuf bodies: {posted:#?}"
    );
    assert!(posted.iter().all(|r| r.ends_with("-> 201")), "{posted:#?}");

    let get = |resource: &str, ns: &str, name: &str| -> Value {
        api.store()
            .get(resource, ns, name)
            .unwrap_or_else(|| panic!("kubectl {label}: {resource}/{name} stored"))
    };
    assert_eq!(get("namespaces", "", "team")["status"]["phase"], "Active");
    assert_eq!(
        get("configmaps", "team", "settings")["data"],
        json!({"empty": "", "mode": "fast"})
    );
    assert_eq!(
        get("secrets", "team", "creds")["data"],
        json!({"password": "czNjcmV0"})
    );
    let deployment = get("deployments", "team", "web");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}})
    );
    assert_eq!(
        get("jobs", "team", "once")["spec"]["template"]["spec"],
        json!({"containers": [{"name": "once", "image": "busybox", "resources": {}}], "restartPolicy": "Never"})
    );
    assert_eq!(
        get("roles", "team", "reader")["rules"],
        json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "configmaps"]}])
    );
    assert_eq!(
        get("rolebindings", "team", "reader")["subjects"],
        json!([{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}])
    );
    assert_eq!(
        get("services", "team", "web")["spec"]["ports"],
        json!([
            {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "443-https", "protocol": "TCP", "port": 443, "targetPort": "https"}
        ])
    );
    // What kubectl reads back matches what it wrote.
    let out = k
        .ok(&[
            "get",
            "secret",
            "creds",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.password}",
        ])
        .await;
    assert_eq!(out, "czNjcmV0");
    let err = k.fails(&["create", "configmap", "settings", "-n", "team"]).await;
    assert!(
        err.contains("configmaps \"settings\" already exists"),
        "kubectl {label}: {err}"
    );
}

#[tokio::test]
async fn kubectl_create_family_sends_protobuf_on_both_versions() {
    spawn_per_kubectl(kubectl_create_family).await;
}

async fn auth_can_i(label: &'static str, bin: PathBuf) {
    let api = StandIn::builder()
        .denial(Denial::parse("create:deployments:staging").unwrap())
        .denial(Denial::parse("get:secrets").unwrap())
        .start()
        .await
        .expect("stand-in starts");
    let k = Kubectl::new(label, bin, &api);
    assert_eq!(
        k.ok(&["auth", "can-i", "create", "deployments", "-n", "default"])
            .await
            .trim(),
        "yes"
    );
    // kubectl prints the review's reason after "no".
    let no = k
        .run(&["auth", "can-i", "create", "deployments.apps", "-n", "staging"])
        .await;
    assert!(
        !no.ok && no.stdout.starts_with("no - denied by kube-standin"),
        "kubectl {label}: {no:?}"
    );
    let no = k.run(&["auth", "can-i", "get", "secrets", "-n", "default"]).await;
    assert!(!no.ok && no.stdout.starts_with("no"), "kubectl {label}: {no:?}");
    assert_eq!(k.ok(&["auth", "can-i", "list", "secrets"]).await.trim(), "yes");
    // The policy the reviews describe is the one requests meet.
    let err = k
        .fails(&["create", "deployment", "web", "-n", "staging", "--image=nginx"])
        .await;
    assert!(
        err.contains("forbidden") && err.contains("cannot create resource \"deployments\""),
        "{err}"
    );
    k.ok(&["create", "namespace", "staging"]).await;
    k.ok(&["create", "deployment", "web", "-n", "default", "--image=nginx"])
        .await;

    let everything = k.ok(&["auth", "can-i", "--list", "-n", "default"]).await;
    assert!(
        everything.contains("*.*") || everything.contains("secrets"),
        "{everything}"
    );
    let staging = k.ok(&["auth", "can-i", "--list", "-n", "staging"]).await;
    let deployments = staging
        .lines()
        .find(|l| l.starts_with("deployments.apps "))
        .unwrap_or_else(|| panic!("kubectl {label}: no deployments rule in\n{staging}"));
    assert!(
        !deployments.contains("create") && deployments.contains("list"),
        "{deployments}"
    );
    let requests = protobuf_requests(&api);
    assert!(
        requests.iter().any(|r| r.contains("selfsubjectaccessreviews"))
            && requests.iter().any(|r| r.contains("selfsubjectrulesreviews")),
        "kubectl {label} asks in protobuf: {requests:#?}"
    );
}

#[tokio::test]
async fn auth_can_i_follows_the_deny_policy() {
    spawn_per_kubectl(auth_can_i).await;
}

/// A helm binary from `env` or the tools cache; missing is a failure, not a skip.
pub(crate) fn helm_bin(env: &str, version: &str) -> PathBuf {
    let bin = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(format!(".cache/duli/tools/helm-{version}/helm"))
    });
    assert!(
        bin.is_file(),
        "helm {version} not found at {}: run `bash .ci/install-tools` (or set {env})",
        bin.display()
    );
    bin
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chart")
}

pub(crate) struct Helm {
    pub(crate) label: &'static str,
    bin: PathBuf,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Helm {
    pub(crate) fn new(label: &'static str, bin: PathBuf, api: &StandIn) -> Helm {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path()).expect("kubeconfig");
        Helm {
            label,
            bin,
            kubeconfig,
            dir,
        }
    }

    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        self.ok_within(args, Duration::from_secs(60)).await
    }

    /// Runs and asserts success within `limit` (a hang guard, not a timing check), returning stdout.
    pub(crate) async fn ok_within(&self, args: &[&str], limit: Duration) -> String {
        let home = self.dir.path();
        let out = tokio::time::timeout(
            limit,
            tokio::process::Command::new(&self.bin)
                .args(args)
                .env("KUBECONFIG", &self.kubeconfig)
                .env("HOME", home)
                .envs(testkit::tools::helm_home_env(home))
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("helm {} {args:?} hung", self.label))
        .expect("helm runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "helm {} {args:?} failed:\nstdout: {stdout}\nstderr: {}",
            self.label,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

fn release_secrets(api: &StandIn, release: &str) -> Vec<String> {
    api.store()
        .list("secrets", Some("team"))
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["name"] == release && s["metadata"]["labels"]["owner"] == "helm")
        .map(|s| s["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// install --wait, upgrade --wait, history, rollback --wait, list, status, uninstall --wait. helm 3's
/// `--wait` judges a Deployment by its new ReplicaSet, helm 4's by kstatus: both come from the stand-in's
/// Deployment controller.
async fn helm_lifecycle(label: &'static str, bin: PathBuf) {
    let api = crate::common::standin_with_controllers().await;
    let helm = Helm::new(label, bin, &api);
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    let web = "web.enabled=true";
    let wait = ["--wait", "--timeout", "20s"];
    let ns = ["-n", "team"];

    let out = helm
        .ok(&[
            &["install", "tiny", chart, "--create-namespace", "--set", web][..],
            &ns,
            &wait,
        ]
        .concat())
        .await;
    assert!(out.contains("STATUS: deployed"), "helm {label}: {out}");
    assert_eq!(
        api.store().get("configmaps", "team", "tiny-settings").unwrap()["data"]["greeting"],
        "hello"
    );
    assert!(
        api.store().get("deployments", "team", "tiny-web").is_some(),
        "helm {label}"
    );

    helm.ok(&[
        &["upgrade", "tiny", chart, "--set", "greeting=bye,web.enabled=true"][..],
        &ns,
        &wait,
    ]
    .concat())
        .await;
    assert_eq!(
        api.store().get("configmaps", "team", "tiny-settings").unwrap()["data"]["greeting"],
        "bye"
    );
    assert!(
        api.store().get("deployments", "team", "tiny-web").is_some(),
        "helm {label}"
    );

    let history = helm.ok(&[&["history", "tiny"][..], &ns].concat()).await;
    assert_eq!(
        history.lines().count(),
        3,
        "helm {label}: header + 2 revisions:\n{history}"
    );
    assert!(
        history.contains("superseded") && history.contains("Upgrade complete"),
        "{history}"
    );

    helm.ok(&[&["rollback", "tiny", "1"][..], &ns, &wait].concat())
        .await;
    assert_eq!(
        api.store().get("configmaps", "team", "tiny-settings").unwrap()["data"]["greeting"],
        "hello"
    );
    let list = helm.ok(&[&["list", "-o", "json"][..], &ns].concat()).await;
    let list: Value = serde_json::from_str(&list).expect("helm list -o json");
    assert_eq!(list[0]["name"], "tiny");
    assert_eq!(list[0]["revision"], "3");
    assert_eq!(list[0]["status"], "deployed");
    let status = helm.ok(&[&["status", "tiny"][..], &ns].concat()).await;
    assert!(
        status.contains("STATUS: deployed") && status.contains("REVISION: 3"),
        "{status}"
    );
    assert_eq!(
        release_secrets(&api, "tiny").len(),
        3,
        "helm {label} keeps one Secret per revision"
    );

    helm.ok(&[&["uninstall", "tiny"][..], &ns, &wait].concat()).await;
    assert!(
        api.store().get("configmaps", "team", "tiny-settings").is_none(),
        "helm {label}"
    );
    assert!(
        api.store().get("services", "team", "tiny-web").is_none(),
        "helm {label}"
    );
    assert!(
        release_secrets(&api, "tiny").is_empty(),
        "helm {label} deletes its release Secrets"
    );
    let list = helm.ok(&[&["list", "-o", "json"][..], &ns].concat()).await;
    assert_eq!(serde_json::from_str::<Value>(&list).unwrap(), json!([]));

    let requests = protobuf_requests(&api);
    for call in [
        "POST /api/v1/namespaces/team/secrets",
        "PUT /api/v1/namespaces/team/secrets/",
        "DELETE /api/v1/namespaces/team/secrets/",
    ] {
        assert!(
            requests.iter().any(|r| r.starts_with(call)),
            "helm {label} sends {call} as protobuf: {requests:#?}"
        );
    }
    assert!(requests.iter().all(|r| !r.ends_with("415")), "{requests:#?}");
}

#[tokio::test]
async fn helm_4_and_3_lifecycle_without_a_proxy() {
    let runs = [
        ("4.1.4", helm_bin("DULI_HELM4_BIN", "4.1.4")),
        ("3.17.2", helm_bin("DULI_HELM3_BIN", "3.17.2")),
    ]
    .into_iter()
    .map(|(label, bin)| tokio::spawn(helm_lifecycle(label, bin)));
    for run in runs {
        run.await.expect("scenario passes");
    }
}

const PYTHON_CLIENT: &str = r#"
import sys, threading
try:
    from kubernetes import client, config, watch
except ImportError as e:
    print(f"the Python kubernetes package is missing ({e}): pip install -r .ci/requirements-test.txt, or point DULI_PYTHON at a python that has it", file=sys.stderr)
    sys.exit(3)
config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}), data={"a": "1"})
created = v1.create_namespaced_config_map("default", cm)
print("created", created.metadata.name, created.metadata.resource_version)
items = v1.list_namespaced_config_map("default", label_selector="from=python").items
print("listed", [i.metadata.name for i in items])
patched = v1.patch_namespaced_config_map("py", "default", {"data": {"b": "2"}})
print("patched", sorted(patched.data.items()))
w = watch.Watch()
seen = []
for event in w.stream(v1.list_namespaced_config_map, "default", resource_version=created.metadata.resource_version, timeout_seconds=5):
    seen.append((event["type"], event["object"].metadata.name, dict(event["object"].data or {})))
    if event["type"] == "MODIFIED":
        w.stop()
print("watched", seen)
"#;

#[tokio::test]
async fn python_kubernetes_client_creates_lists_patches_and_watches() {
    let api = StandIn::builder().start().await.expect("stand-in starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path()).unwrap();
    let python = std::env::var("DULI_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&python)
            .arg("-c")
            .arg(PYTHON_CLIENT)
            .arg(&kubeconfig)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client finishes")
    .unwrap_or_else(|e| panic!("cannot run {python} (set DULI_PYTHON): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{python}: the Python kubernetes client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("listed ['py']"), "{stdout}");
    assert!(stdout.contains("patched [('a', '1'), ('b', '2')]"), "{stdout}");
    assert!(
        stdout.contains("('MODIFIED', 'py', {'a': '1', 'b': '2'})"),
        "the watch sees the patch: {stdout}"
    );
    let stored = api.store().get("configmaps", "default", "py").expect("stored");
    assert_eq!(stored["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(stored["metadata"]["labels"]["from"], "python");
}

/// One raw HTTP exchange: status code, response head, body bytes (not chunked: answers are buffered).
async fn exchange(
    api: &StandIn,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(api.addr()).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n",
        api.addr(),
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), sock.read_to_end(&mut buf))
        .await
        .expect("response ends")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head, buf[split + 4..].to_vec())
}

/// POSTs/DELETEs raw bytes and returns the status code and the JSON answer.
async fn send(api: &StandIn, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let headers = format!("content-type: {content_type}\r\n");
    let (code, _, answer) = exchange(api, method, path, &headers, body).await;
    let text = String::from_utf8_lossy(&answer);
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/protobuf")
            .join(name),
    )
    .unwrap()
}

/// A protobuf envelope by hand: `k8s\0` + Unknown{typeMeta{apiVersion, kind}, raw}.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    }
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
}

#[tokio::test]
async fn protobuf_bodies_get_the_status_a_real_server_gives() {
    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
    let api = StandIn::builder()
        .crd_dir(crate::common::crds("cloudnative-pg"))
        .start()
        .await
        .expect("stand-in starts");
    api.store()
        .insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}))
        .unwrap();
    let (code, created) = send(
        &api,
        "POST",
        "/api/v1/namespaces/team/configmaps",
        PROTOBUF,
        &fixture("kubectl-1.32-create-configmap.pb"),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["data"], json!({"empty": "", "mode": "fast"}));
    // Answers too are protobuf for a client that prefers it (objects and Status), JSON otherwise.
    let schemas = kube_standin::protobuf::Schemas::compile(&kube_standin::shared_protos_dir()).unwrap();
    let accept = "accept: application/vnd.kubernetes.protobuf, */*\r\n";
    let (code, head, body) = exchange(&api, "GET", "/api/v1/namespaces/team/configmaps", accept, b"").await;
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: application/vnd.kubernetes.protobuf"),
        "{head}"
    );
    let list = schemas.decode_body(&body).unwrap();
    assert_eq!(
        (&list["kind"], &list["items"][0]["data"]),
        (&json!("ConfigMapList"), &json!({"empty": "", "mode": "fast"}))
    );
    let missing = "/api/v1/namespaces/team/configmaps/missing";
    let (code, head, body) = exchange(&api, "GET", missing, accept, b"").await;
    assert!(code == 404 && head.contains("protobuf"), "{head}");
    assert_eq!(schemas.decode_body(&body).unwrap()["reason"], "NotFound");
    let (_, head, _) = exchange(&api, "GET", missing, "accept: application/json\r\n", b"").await;
    assert!(head.contains("content-type: application/json"), "{head}");

    // helm's DeleteOptions, as protobuf.
    let (code, deleted) = send(
        &api,
        "DELETE",
        "/api/v1/namespaces/team/configmaps/settings",
        PROTOBUF,
        &fixture("helm-4.1.4-deleteoptions.pb"),
    )
    .await;
    assert_eq!(code, 200, "{deleted}");
    assert!(api.store().get("configmaps", "team", "settings").is_none());

    let path = "/apis/postgresql.cnpg.io/v1/namespaces/team/clusters";
    let (code, status) = send(
        &api,
        "POST",
        path,
        PROTOBUF,
        &envelope("postgresql.cnpg.io/v1", "Cluster", b""),
    )
    .await;
    assert_eq!(code, 415, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "UnsupportedMediaType");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("postgresql.cnpg.io/v1, Kind=Cluster"),
        "{status}"
    );

    for garbage in [
        &b"{\"kind\": \"ConfigMap\"}"[..],
        b"k8s\0\xff\xff",
        &envelope("v1", "ConfigMap", b"\xff\xff\xff"),
    ] {
        let (code, status) = send(
            &api,
            "POST",
            "/api/v1/namespaces/team/configmaps",
            PROTOBUF,
            garbage,
        )
        .await;
        assert_eq!(
            (code, &status["reason"]),
            (400, &json!("BadRequest")),
            "{garbage:?}: {status}"
        );
    }
    let (code, status) = send(
        &api,
        "DELETE",
        "/api/v1/namespaces/team/configmaps/x",
        PROTOBUF,
        b"not protobuf",
    )
    .await;
    assert_eq!(code, 400, "{status}");
}

#[tokio::test]
async fn serve_flags_deny_and_protos() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args([
            "serve",
            "--deny",
            "get:secrets:prod",
            "--deny",
            "delete:*",
            "--protos",
        ])
        .arg(kube_standin::shared_protos_dir())
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let kubectl = which::which("kubectl").expect("kubectl on PATH");
    let can_i = |args: &[&str]| {
        let out = Command::new(&kubectl)
            .args(["auth", "can-i"])
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let answers = (
        can_i(&["get", "secrets", "-n", "prod"]),
        can_i(&["get", "secrets", "-n", "dev"]),
        can_i(&["delete", "pods", "-n", "dev"]),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(answers.0.starts_with("no"), "{answers:?}");
    assert_eq!(answers.1, "yes", "{answers:?}");
    assert!(answers.2.starts_with("no"), "{answers:?}");

    // Bad flags: a one-line error naming the flag, non-zero exit.
    let bad = Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["serve", "--deny", "get"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid --deny \"get\""));
    let missing = Command::new(env!("CARGO_BIN_EXE_kube-standin"))
        .args(["serve", "--protos", "/nonexistent/k8s-protos"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("/nonexistent/k8s-protos does not exist"),
        "{stderr}"
    );
}

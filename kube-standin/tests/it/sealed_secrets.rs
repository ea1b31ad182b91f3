//! The stand-in's sealed-secrets controller against an implementation we did not write: SealedSecrets
//! sealed by the Python `kubesealpy` with the certificate the controller serves through its Service's
//! proxy are unsealed into Secrets (strict, namespace-wide and cluster-wide scopes, owner reference,
//! `Synced` condition); a tampered one gets `Synced=False` with the controller's message. Driven by the
//! real kubectl (`apply`, `wait --for=condition=…`), nothing polled by the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_standin::StandIn;
use serde_json::Value;

use crate::common::{Kubectl, crds, kubectls};

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: sealed-secrets-controller
  namespace: kube-system
spec:
  selector: {app.kubernetes.io/name: sealed-secrets}
  ports: [{name: http, port: 8080, targetPort: http}]
";

const CERT_PATH: &str =
    "/api/v1/namespaces/kube-system/services/http:sealed-secrets-controller:http/proxy/v1/cert.pem";

/// Seals `data` for `namespace/name` with kubesealpy (`$KUBESEALPY_PYTHON`, see env.sh / CI's test venv).
fn kubesealpy_seal(cert: &Path, name: &str, namespace: &str, scope: &str, data: &[(&str, &str)]) -> String {
    let python = std::env::var_os("KUBESEALPY_PYTHON")
        .or_else(|| std::env::var_os("DULI_PYTHON"))
        .map(PathBuf::from)
        .expect("KUBESEALPY_PYTHON (a python with kubesealpy) must be set: source the test environment");
    let script = "import sys, json
from kubesealpy import Sealer, SealingScope
cert, name, ns, scope, data = sys.argv[1:6]
scope = {'strict': SealingScope.STRICT, 'namespace-wide': SealingScope.NAMESPACE_WIDE,
         'cluster-wide': SealingScope.CLUSTER_WIDE}[scope]
data = {k: v.encode() for k, v in json.loads(data).items()}
sealed = Sealer.from_certificate_file(cert).seal(name=name, namespace=ns, data=data, scope=scope,
                                                 labels={'app': 'db'})
print(sealed.to_yaml())
";
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(cert)
        .args([name, namespace, scope, &Value::Object(data).to_string()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "kubesealpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn decoded(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {secret}"));
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

#[tokio::test]
async fn sealed_secrets_from_kubesealpy_are_unsealed_and_tampered_ones_fail() {
    let dir = tempfile::tempdir().unwrap();
    testkit::certs::rsa_key(dir.path(), 2048, "sealing.pem");
    let api = StandIn::builder()
        .crd_dir(crds("sealed-secrets"))
        .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n")
        .sealing_key(dir.path().join("sealing.pem"))
        .simulate_ready(Duration::from_millis(50))
        .start()
        .await
        .expect("stand-in starts");
    let client = api.client();
    let get = |path: &str| http::Request::get(path).body(Vec::new()).unwrap();

    // Before the chart's Service exists there is no controller to ask.
    match client.request_text(get(CERT_PATH)).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404, "{s:?}"),
        other => panic!("expected 404 without the Service, got {other:?}"),
    }
    let (label, bin) = kubectls().remove(1);
    let k = Kubectl::new(label, bin, &api);
    let service = k.file("service.yaml", SERVICE);
    k.ok(&["apply", "-f", service.to_str().unwrap()]).await;
    let cert = client
        .request_text(get(CERT_PATH))
        .await
        .expect("cert.pem through the proxy");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let cert_file = dir.path().join("cert.pem");
    std::fs::write(&cert_file, &cert).unwrap();

    let strict = kubesealpy_seal(
        &cert_file,
        "db",
        "staging",
        "strict",
        &[("password", "s3cret"), ("user", "app")],
    );
    let wide = kubesealpy_seal(
        &cert_file,
        "shared",
        "staging",
        "namespace-wide",
        &[("token", "t0k")],
    );
    let cluster = kubesealpy_seal(&cert_file, "global", "staging", "cluster-wide", &[("key", "k3y")]);
    let manifest = k.file("sealed.yaml", &format!("{strict}\n---\n{wide}\n---\n{cluster}"));
    k.ok(&["apply", "-f", manifest.to_str().unwrap()]).await;
    for name in ["db", "shared", "global"] {
        k.wait_for("Synced", &format!("sealedsecret/{name}"), "staging", "60s")
            .await;
    }
    let store = api.store();
    let db = store.get("secrets", "staging", "db").expect("Secret db unsealed");
    assert_eq!(decoded(&db, "password"), "s3cret");
    assert_eq!(decoded(&db, "user"), "app");
    assert_eq!(db["type"], "Opaque");
    assert_eq!(db["metadata"]["labels"]["app"], "db");
    let owner = &db["metadata"]["ownerReferences"][0];
    let sealed = store.get("sealedsecrets", "staging", "db").unwrap();
    assert_eq!(owner["kind"], "SealedSecret");
    assert_eq!(owner["uid"], sealed["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(
        sealed["status"]["observedGeneration"],
        sealed["metadata"]["generation"]
    );
    assert_eq!(
        decoded(&store.get("secrets", "staging", "shared").unwrap(), "token"),
        "t0k"
    );
    assert_eq!(
        decoded(&store.get("secrets", "staging", "global").unwrap(), "key"),
        "k3y"
    );
    // kubectl shows the controller's own columns and Event.
    let events = k.ok(&["get", "events", "-n", "staging"]).await;
    assert!(events.contains("SealedSecret unsealed successfully"), "{events}");

    // Tampered: one value's bytes changed; moved: a strict one under another name opens nowhere.
    let fresh = kubesealpy_seal(
        &cert_file,
        "tampered",
        "staging",
        "strict",
        &[("password", "x"), ("user", "y")],
    );
    let mut doc: Value = serde_saphyr::from_str(&fresh).unwrap();
    let value = doc["spec"]["encryptedData"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if value.as_bytes()[40] == b'A' { "B" } else { "A" };
    doc["spec"]["encryptedData"]["password"] =
        Value::from(format!("{}{flipped}{}", &value[..40], &value[41..]));
    let mut moved: Value = serde_saphyr::from_str(&strict).unwrap();
    moved["metadata"]["name"] = Value::from("moved");
    for (name, doc) in [("tampered", &doc), ("moved", &moved)] {
        let file = k.file(&format!("{name}.json"), &doc.to_string());
        k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
        k.wait_for("Synced=False", &format!("sealedsecret/{name}"), "staging", "60s")
            .await;
        assert!(store.get("secrets", "staging", name).is_none(), "{name}");
    }
    let message = |name: &str| {
        let status = store.get("sealedsecrets", "staging", name).unwrap()["status"].clone();
        status["conditions"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(message("tampered"), "no key could decrypt secret (password)");
    assert_eq!(message("moved"), "no key could decrypt secret (password, user)");
    let events = k.ok(&["get", "events", "-n", "staging"]).await;
    assert!(
        events.contains("Failed to unseal: no key could decrypt secret"),
        "{events}"
    );

    // Deleting the SealedSecret takes its Secret with it (garbage collector, owner reference).
    k.ok(&["delete", "sealedsecret", "db", "-n", "staging", "--wait=true"])
        .await;
    k.ok(&[
        "wait",
        "--for=delete",
        "secret/db",
        "-n",
        "staging",
        "--timeout=60s",
    ])
    .await;
}

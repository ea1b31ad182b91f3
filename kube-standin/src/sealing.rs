//! The sealed-secrets controller's keys, crypto and HTTP endpoints (bitnami-labs/sealed-secrets
//! `pkg/crypto`, `pkg/controller/server.go`): a key ring (the last key is the active one, every key
//! decrypts), the hybrid encryption (RSA-OAEP with SHA-256 of a one-time AES-256-GCM key, label by scope,
//! zero nonce, `u16` big-endian length prefix), `Unseal` of a SealedSecret into its Secret, and
//! `/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, `/healthz` as served through the controller Service's proxy.
//! The controller loop is [`crate::controllers::sealed_secrets`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::oaep::{DecryptingKey, EncryptingKey};
use rsa::sha2::Sha256;
use rsa::traits::{Decryptor, RandomizedEncryptor};
use serde_json::{Map, Value, json};

/// The annotation that seals for any name in the namespace.
pub const NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// The annotation that seals for any namespace and name.
pub const CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// The annotation that lets a SealedSecret take over an existing Secret.
pub const MANAGED: &str = "sealedsecrets.bitnami.com/managed";
/// The annotation that keeps owner references off the unsealed Secret.
pub const SKIP_OWNER_REFERENCES: &str = "sealedsecrets.bitnami.com/skip-set-owner-references";
/// The message of a value no key opens (`crypto.HybridDecrypt`).
pub const NO_KEY: &str = "no key could decrypt secret";
/// Key size when the stand-in makes its own key. The real controller uses 4096 bits; 2048 keeps key
/// generation and every decryption fast in a debug build, and kubeseal accepts either.
pub const GENERATED_KEY_BITS: usize = 2048;

/// One sealing key and its certificate (PEM).
pub struct SealingKey {
    private: rsa::PrivateKey,
    cert_pem: String,
}

impl SealingKey {
    /// Reads a PEM file: an RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`), optionally
    /// followed by its `CERTIFICATE` (the layout of the controller's `tls.key` + `tls.crt`); without one a
    /// self-signed certificate is made, as the controller makes one.
    pub fn from_pem_file(path: &Path) -> Result<SealingKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the sealing key {}: {e}", path.display()))?;
        let bad = |e: String| {
            format!(
                "the sealing key {} is not a PEM RSA private key ({e}): pass a file made by \
                 `openssl genrsa` or `openssl genpkey -algorithm RSA`",
                path.display()
            )
        };
        let block = |label: &str| -> Option<String> {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let start = text.find(&begin)?;
            let stop = text[start..].find(&end)? + start + end.len();
            Some(text[start..stop].to_string())
        };
        let private = if let Some(pem) = block("PRIVATE KEY") {
            use rsa::pkcs8::DecodePrivateKey;
            rsa::PrivateKey::from_pkcs8_pem(&pem).map_err(|e| bad(e.to_string()))?
        } else if let Some(pem) = block("RSA PRIVATE KEY") {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            rsa::PrivateKey::from_pkcs1_pem(&pem).map_err(|e| bad(e.to_string()))?
        } else {
            return Err(bad("no PRIVATE KEY block".into()));
        };
        let cert_pem = match block("CERTIFICATE") {
            Some(pem) => format!("{pem}\n"),
            None => self_signed(&private).map_err(bad)?,
        };
        Ok(SealingKey { private, cert_pem })
    }

    /// A fresh key of `bits` with its self-signed certificate.
    pub fn generate(bits: usize) -> Result<SealingKey, String> {
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
            .map_err(|e| format!("generating a sealing key: {e}"))?;
        let cert_pem = self_signed(&private)?;
        Ok(SealingKey { private, cert_pem })
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The public key.
    pub fn public(&self) -> rsa::PublicKey {
        rsa::PublicKey::from(&self.private)
    }
}

/// The certificate the controller makes for a key: self-signed, `CN=sealed-secret`, ten years, key usage
/// `encipherOnly` (`pkg/crypto/keys.go`).
fn self_signed(private: &rsa::PrivateKey) -> Result<String, String> {
    use rsa::pkcs8::EncodePublicKey;
    use std::str::FromStr;
    use x509_cert::builder::{Builder, CertificateBuilder};
    use x509_cert::der::EncodePem;
    use x509_cert::der::pem::LineEnding;
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
    use x509_cert::ext::{Extension, ToExtension};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
    use x509_cert::time::Validity;

    struct Profile(Name);
    impl x509_cert::builder::Profile for Profile {
        fn get_issuer(&self, subject: &Name) -> Name {
            subject.clone()
        }
        fn get_subject(&self) -> Name {
            self.0.clone()
        }
        fn build_extensions(
            &self,
            _spk: SubjectPublicKeyInfoRef<'_>,
            _issuer: SubjectPublicKeyInfoRef<'_>,
            tbs: &x509_cert::TbsCertificate,
        ) -> x509_cert::builder::Result<Vec<Extension>> {
            let key_usage = KeyUsage(KeyUsages::EncipherOnly.into()).to_extension(tbs.subject(), &[])?;
            let basic = BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), std::slice::from_ref(&key_usage))?;
            Ok(vec![key_usage, basic])
        }
    }

    let err = |e: &dyn std::fmt::Display| format!("making the sealing certificate: {e}");
    let public = rsa::PublicKey::from(private)
        .to_public_key_der()
        .map_err(|e| err(&e))?;
    let spki = SubjectPublicKeyInfoOwned::try_from(public.as_bytes()).map_err(|e| err(&e))?;
    let subject = Name::from_str("CN=sealed-secret").map_err(|e| err(&e))?;
    let serial: [u8; 16] = rand::random();
    // A positive serial: clear the top bit.
    let serial = SerialNumber::new(&[&[serial[0] & 0x7f], &serial[1..]].concat()).map_err(|e| err(&e))?;
    let validity = Validity::from_now(Duration::from_secs(10 * 365 * 24 * 3600)).map_err(|e| err(&e))?;
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(private.clone());
    let cert = CertificateBuilder::new(Profile(subject), serial, validity, spki)
        .map_err(|e| err(&e))?
        .build::<_, rsa::pkcs1v15::Signature>(&signer)
        .map_err(|e| err(&e))?;
    cert.to_pem(LineEnding::LF).map_err(|e| err(&e))
}

/// The controller's keys: those given (`--sealing-key`, the last one active), or one it makes itself on
/// first use (off the request path: generating takes a while).
pub struct KeyRing {
    keys: OnceLock<Result<Arc<Vec<SealingKey>>, String>>,
    generating: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        let count = self.keys.get().and_then(|k| k.as_ref().ok()).map(|k| k.len());
        f.debug_struct("KeyRing").field("keys", &count).finish()
    }
}

impl KeyRing {
    /// A ring of the given keys; with none, a key is generated on first use.
    pub fn new(keys: Vec<SealingKey>) -> KeyRing {
        let ring = KeyRing {
            keys: OnceLock::new(),
            generating: std::sync::atomic::AtomicBool::new(false),
        };
        if !keys.is_empty() {
            let _ = ring.keys.set(Ok(Arc::new(keys)));
        }
        ring
    }

    /// The keys when ready; otherwise starts generating one (once, on a thread of its own) and returns
    /// `None`.
    pub fn ready(self: &Arc<Self>) -> Option<Result<Arc<Vec<SealingKey>>, String>> {
        if let Some(keys) = self.keys.get() {
            return Some(keys.clone());
        }
        if !self.generating.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let ring = self.clone();
            std::thread::spawn(move || ring.generate_blocking());
        }
        None
    }

    /// Generates the key now (blocking) unless it is there.
    pub fn generate_blocking(&self) {
        // Concurrent callers wait for the one generation under way.
        self.keys
            .get_or_init(|| SealingKey::generate(GENERATED_KEY_BITS).map(|k| Arc::new(vec![k])));
    }

    /// The keys, waiting for generation if needed.
    pub async fn wait(self: &Arc<Self>) -> Result<Arc<Vec<SealingKey>>, String> {
        if let Some(keys) = self.keys.get() {
            return keys.clone();
        }
        let ring = self.clone();
        tokio::task::spawn_blocking(move || ring.generate_blocking())
            .await
            .map_err(|e| format!("generating a sealing key: {e}"))?;
        self.keys
            .get()
            .cloned()
            .unwrap_or_else(|| Err("no sealing key".into()))
    }
}

/// The encryption label of a SealedSecret (or Secret) by its scope annotations: `namespace/name` (strict),
/// `namespace` (namespace-wide), empty (cluster-wide).
pub fn label(obj: &Value) -> Vec<u8> {
    let annotation =
        |key: &str| obj.pointer("/metadata/annotations").and_then(|a| a.get(key)) == Some(&json!("true"));
    let meta = |field: &str| obj["metadata"][field].as_str().unwrap_or("").to_string();
    if annotation(CLUSTER_WIDE) {
        Vec::new()
    } else if annotation(NAMESPACE_WIDE) {
        meta("namespace").into_bytes()
    } else {
        format!("{}/{}", meta("namespace"), meta("name")).into_bytes()
    }
}

/// `HybridEncrypt` for one public key.
pub fn seal(public: &rsa::PublicKey, label: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let session: [u8; 32] = rand::random();
    let wrapped = EncryptingKey::<Sha256>::new_with_label(public.clone(), label.to_vec())
        .encrypt_with_rng(&mut getrandom::SysRng, &session)
        .map_err(|e| e.to_string())?;
    let sealed = Aes256Gcm::new(&Key::<Aes256Gcm>::from(session))
        .encrypt(&Nonce::default(), plaintext)
        .map_err(|e| e.to_string())?;
    let length = u16::try_from(wrapped.len()).map_err(|_| "RSA key too large".to_string())?;
    Ok([&length.to_be_bytes()[..], &wrapped, &sealed].concat())
}

/// `HybridDecrypt`: the first key that opens `bytes`.
pub fn open(keys: &[SealingKey], label: &[u8], bytes: &[u8]) -> Result<Vec<u8>, String> {
    const TOO_SHORT: &str = "SealedSecret data is too short";
    if bytes.len() < 2 {
        return Err(TOO_SHORT.into());
    }
    let length = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    if bytes.len() < 2 + length {
        return Err(TOO_SHORT.into());
    }
    let (wrapped, sealed) = bytes[2..].split_at(length);
    for key in keys.iter().rev() {
        let Ok(session) =
            DecryptingKey::<Sha256>::new_with_label(key.private.clone(), label.to_vec()).decrypt(wrapped)
        else {
            continue;
        };
        let Ok(cipher) = Aes256Gcm::new_from_slice(&session) else {
            continue;
        };
        if let Ok(plain) = cipher.decrypt(&Nonce::default(), sealed) {
            return Ok(plain);
        }
    }
    Err(NO_KEY.into())
}

/// `SealedSecret.Unseal`: the Secret a SealedSecret stands for, or the error the controller reports
/// (`no key could decrypt secret (password, user)`: one message per distinct error, with the keys).
/// `spec.template.data` (Go templates over the decrypted values) is not rendered.
pub fn unseal(ss: &Value, keys: &[SealingKey]) -> Result<Value, String> {
    if ss.pointer("/spec/data").is_some_and(|d| !d.is_null()) {
        return Err("using deprecated 'data' field, use 'encryptedData' or flip the feature flag".into());
    }
    let label = label(ss);
    let mut data = Map::new();
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let encrypted = ss
        .pointer("/spec/encryptedData")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (key, value) in &encrypted {
        let plain = STANDARD
            .decode(value.as_str().unwrap_or(""))
            .map_err(|e| format!("illegal base64 data: {e}"))
            .and_then(|bytes| open(keys, &label, &bytes));
        match plain {
            Ok(plain) => {
                data.insert(key.clone(), json!(STANDARD.encode(plain)));
            }
            Err(e) => errors.entry(e).or_default().push(key.clone()),
        }
    }
    if !errors.is_empty() {
        let messages: Vec<String> = errors
            .into_iter()
            .map(|(e, keys)| format!("{e} ({})", keys.join(", ")))
            .collect();
        return Err(messages.join("; "));
    }
    let template = ss.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = template
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.insert("name".into(), ss["metadata"]["name"].clone());
    meta.insert("namespace".into(), ss["metadata"]["namespace"].clone());
    let skip_owner =
        meta.get("annotations").and_then(|a| a.get(SKIP_OWNER_REFERENCES)) == Some(&json!("true"));
    if !skip_owner {
        meta.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                "name": ss["metadata"]["name"], "uid": ss["metadata"]["uid"], "controller": true
            }]),
        );
    }
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data});
    if let Some(ty) = template.get("type").filter(|t| !t.is_null()) {
        secret["type"] = ty.clone();
    }
    if let Some(immutable) = template.get("immutable").filter(|t| !t.is_null()) {
        secret["immutable"] = immutable.clone();
    }
    Ok(secret)
}

/// `Controller.Rotate`: the SealedSecret re-encrypted with the active key (same scope, metadata kept).
pub fn rotate(ss: &Value, keys: &[SealingKey]) -> Result<Value, String> {
    let secret = unseal(ss, keys).map_err(|e| format!("error decrypting secret. {e}"))?;
    let active = keys.last().ok_or("no sealing key")?.public();
    let label = label(ss);
    let mut out = ss.clone();
    let mut encrypted = Map::new();
    for (key, value) in secret["data"].as_object().into_iter().flatten() {
        let plain = STANDARD.decode(value.as_str().unwrap_or("")).unwrap_or_default();
        let sealed =
            seal(&active, &label, &plain).map_err(|e| format!("error creating new sealed secret. {e}"))?;
        encrypted.insert(key.clone(), json!(STANDARD.encode(sealed)));
    }
    out["spec"]["encryptedData"] = Value::Object(encrypted);
    if let Some(meta) = out["metadata"].as_object_mut() {
        for server_side in ["uid", "resourceVersion", "generation", "managedFields"] {
            meta.remove(server_side);
        }
        meta.insert("creationTimestamp".into(), Value::Null);
    }
    if let Some(o) = out.as_object_mut() {
        o.remove("status");
    }
    Ok(out)
}

/// Answers one request to the controller's HTTP port (`rest` is the path after `proxy/`).
pub async fn serve(ring: &Arc<KeyRing>, method: &Method, rest: &str, body: &[u8]) -> Response {
    let reply = |status: StatusCode, content_type: &str, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap_or_default()
    };
    let text = "text/plain; charset=utf-8";
    let path = rest.trim_start_matches('/');
    let path = path.split('?').next().unwrap_or_default();
    if path == "healthz" {
        return reply(StatusCode::OK, text, b"ok\n".to_vec());
    }
    let keys = match ring.wait().await {
        Ok(keys) => keys,
        Err(e) => return reply(StatusCode::INTERNAL_SERVER_ERROR, text, e.into_bytes()),
    };
    // The request's SealedSecret, or the status and message the controller answers.
    let sealed_secret = || -> Result<Value, (StatusCode, String)> {
        let doc: Value = serde_json::from_slice(body)
            .or_else(|_| serde_saphyr::from_slice(body))
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        if doc["kind"] != "SealedSecret" {
            let kind = format!(
                "unexpected resource type: {}, Kind={}",
                doc["apiVersion"].as_str().unwrap_or(""),
                doc["kind"].as_str().unwrap_or("")
            );
            return Err((StatusCode::INTERNAL_SERVER_ERROR, kind));
        }
        Ok(doc)
    };
    match (method, path) {
        (&Method::GET, "v1/cert.pem") => {
            let cert = keys.last().map(|k| k.cert_pem.clone()).unwrap_or_default();
            reply(StatusCode::OK, "application/x-pem-file", cert.into_bytes())
        }
        (&Method::POST, "v1/verify") => match sealed_secret() {
            Ok(doc) => {
                let status = if unseal(&doc, &keys).is_ok() {
                    StatusCode::OK
                } else {
                    StatusCode::CONFLICT
                };
                reply(status, text, Vec::new())
            }
            Err((status, message)) => reply(status, text, message.into_bytes()),
        },
        (&Method::POST, "v1/rotate") => match sealed_secret()
            .and_then(|doc| rotate(&doc, &keys).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e)))
        {
            Ok(out) => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&out).unwrap_or_default(),
            ),
            Err((status, message)) => reply(status, text, message.into_bytes()),
        },
        _ => reply(StatusCode::NOT_FOUND, text, b"404 page not found\n".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Vec<SealingKey> {
        vec![SealingKey::generate(1024).unwrap()]
    }

    #[test]
    fn seals_and_unseals_by_scope() {
        let keys = ring();
        let public = keys[0].public();
        let ss = |annotations: Value, name: &str, ns: &str, value: &[u8], label: &[u8]| {
            json!({"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                   "metadata": {"name": name, "namespace": ns, "uid": "u1", "annotations": annotations},
                   "spec": {"encryptedData": {"password": STANDARD.encode(seal(&public, label, value).unwrap())},
                            "template": {"type": "Opaque", "metadata": {"labels": {"a": "b"}}}}})
        };
        let strict = ss(json!({}), "db", "staging", b"s3cret", b"staging/db");
        let secret = unseal(&strict, &keys).unwrap();
        assert_eq!(secret["data"]["password"], STANDARD.encode("s3cret"));
        assert_eq!(secret["metadata"]["labels"]["a"], "b");
        assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "u1");
        let mut moved = strict.clone();
        moved["metadata"]["namespace"] = json!("prod");
        assert_eq!(
            unseal(&moved, &keys).unwrap_err(),
            "no key could decrypt secret (password)"
        );
        let wide = ss(
            json!({NAMESPACE_WIDE: "true"}),
            "other",
            "staging",
            b"x",
            b"staging",
        );
        assert!(unseal(&wide, &keys).is_ok());
        let cluster = ss(json!({CLUSTER_WIDE: "true"}), "any", "where", b"x", b"");
        assert!(unseal(&cluster, &keys).is_ok());
        let rotated = rotate(&strict, &keys).unwrap();
        assert_ne!(rotated["spec"]["encryptedData"], strict["spec"]["encryptedData"]);
        assert_eq!(unseal(&rotated, &keys).unwrap()["data"], secret["data"]);
        assert!(keys[0].cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}

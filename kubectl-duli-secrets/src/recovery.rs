//! Disaster recovery with backed-up controller private keys, no cluster needed: `unseal` (kubeseal's
//! `--recovery-unseal --recovery-private-key FILE`) decrypts SealedSecrets into Secrets, and offline
//! `rotate --private-key` (see `remote::rotate`) decrypts and re-seals with a new certificate.
//!
//! Keys are read as kubeseal reads them: PEM private keys (PKCS#1 as the controller writes `tls.key`, or
//! PKCS#8), or the controller's key Secrets as `kubectl get secret -o yaml|json` exports them (one Secret,
//! several documents, or a `List`), taking `data."tls.key"`. Every key is tried on every value, as the
//! controller does. Plaintext goes only to stdout or to the one `-w` file (0600); messages name the file,
//! SealedSecret and key, never a value or key material.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use shared::confirm::{ConfirmError, Confirmation};
use shared::environment::{Environment, EnvironmentError};
use shared::fsio::{FsError, Mode};
use shared::repo::Repo;

use crate::cli::UnsealOptions;
use crate::files::write_file;
use crate::format::{FormatError, Scope, open};
use crate::input::{INPUT_FILE_LIMIT, InputError, read_path};
use crate::manifest::{DocFormat, ManifestError, SealedFile, parse_documents, render};

/// Where the controller keeps its keys, for messages.
const KEY_EXPORT_HINT: &str =
    "kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml";

/// Errors of `unseal` and offline `rotate`.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A SealedSecret file could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A file is not a SealedSecret.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A key file is unreadable or holds no usable key.
    #[error("private key file {path}: {problem}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// No key opens a value.
    #[error(
        "{source_desc}: SealedSecret `{secret}`, key `{key}`: none of the {keys} private key(s) decrypts it \
         with scope {scope}; pass the key the controller had when it was sealed ({KEY_EXPORT_HINT}), and \
         check that the SealedSecret was not renamed or moved to another namespace"
    )]
    NoMatchingKey {
        /// The file (and document).
        source_desc: String,
        /// `namespace/name`.
        secret: String,
        /// The encryptedData key.
        key: String,
        /// How many keys were tried.
        keys: usize,
        /// The scope the SealedSecret's annotations select.
        scope: Scope,
    },
    /// A value is not a sealed value.
    #[error("{source_desc}: SealedSecret `{secret}`, key `{key}`: {error}")]
    Malformed {
        /// The file (and document).
        source_desc: String,
        /// `namespace/name`.
        secret: String,
        /// The encryptedData key.
        key: String,
        /// Why.
        error: FormatError,
    },
    /// The repository's environments could not be read (the prod guard needs them).
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// The prod guard refused.
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    /// The output file could not be written.
    #[error(transparent)]
    Write(#[from] FsError),
}

/// Every private key in `paths`, in order.
pub fn read_private_keys(paths: &[PathBuf]) -> Result<Vec<rsa::PrivateKey>, RecoveryError> {
    let mut keys = Vec::new();
    for path in paths {
        keys.extend(keys_from_file(path)?);
    }
    Ok(keys)
}

fn keys_from_file(path: &Path) -> Result<Vec<rsa::PrivateKey>, RecoveryError> {
    let problem = |problem: String| RecoveryError::Key {
        path: path.to_path_buf(),
        problem,
    };
    // Not `fsio::read_bounded`: a key often comes through process substitution (`<(gpg -d key.gpg)`),
    // a pipe, which that refuses.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(INPUT_FILE_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|err| problem(format!("cannot read it: {err}")))?;
    if bytes.len() as u64 > INPUT_FILE_LIMIT {
        return Err(problem(format!(
            "larger than {}; pass the key PEM or the key Secrets",
            shared::fsio::human_bytes(INPUT_FILE_LIMIT)
        )));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| problem("it is not text: pass a PEM private key or the exported key Secret".into()))?;
    if text.contains("-----BEGIN") {
        return pem_keys(text).map_err(problem);
    }
    let docs = parse_documents(text, &path.display().to_string()).map_err(|_| {
        problem(format!(
            "it is neither a PEM private key nor a key Secret in YAML or JSON ({KEY_EXPORT_HINT})"
        ))
    })?;
    let secrets = crate::manifest::unwrap_lists(docs);
    let mut keys = Vec::new();
    for secret in &secrets {
        let kind = secret.get("kind").and_then(Value::as_str).unwrap_or("(no kind)");
        let meta = |field: &str| {
            secret
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let id = format!("{}/{}", meta("namespace"), meta("name"));
        if kind != "Secret" {
            return Err(problem(format!(
                "it holds a {kind} `{id}`, not a key Secret ({KEY_EXPORT_HINT})"
            )));
        }
        let encoded = secret
            .pointer("/data/tls.key")
            .and_then(Value::as_str)
            .ok_or_else(|| problem(format!("Secret `{id}` has no data.\"tls.key\"; pass the controller's key Secrets ({KEY_EXPORT_HINT})")))?;
        let pem = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                problem(format!(
                    "Secret `{id}`: data.\"tls.key\" is not base64 of a PEM key"
                ))
            })?;
        keys.extend(pem_keys(&pem).map_err(|error| problem(format!("Secret `{id}`: {error}")))?);
    }
    if keys.is_empty() {
        return Err(problem(format!("it holds no key Secret ({KEY_EXPORT_HINT})")));
    }
    Ok(keys)
}

/// The RSA private keys of a PEM text (other blocks, such as certificates, are skipped).
fn pem_keys(text: &str) -> Result<Vec<rsa::PrivateKey>, String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            return Err(format!("the `{label}` PEM block has no END line"));
        };
        let block = &rest[start..start + end + end_marker.len()];
        rest = &rest[start + end + end_marker.len()..];
        let key = match label {
            "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_pem(block)
                .map_err(|err| format!("the RSA PRIVATE KEY block is not a valid PKCS#1 key: {err}"))?,
            "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_pem(block).map_err(|err| {
                format!("the PRIVATE KEY block is not an RSA key (controllers use RSA): {err}")
            })?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(
                    "the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.pem)".into(),
                );
            }
            "EC PRIVATE KEY" | "OPENSSH PRIVATE KEY" | "DSA PRIVATE KEY" => {
                return Err(format!(
                    "it holds an {label}, not RSA; sealed-secrets controllers use RSA keys"
                ));
            }
            _ => continue,
        };
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(
            "no PEM private key in it (`-----BEGIN RSA PRIVATE KEY-----` or `-----BEGIN PRIVATE KEY-----`)"
                .into(),
        );
    }
    Ok(keys)
}

/// Decrypt every value of `file` with `keys` (the first key that opens one is tried first on the next).
pub fn decrypt_file(
    file: &SealedFile,
    keys: &[rsa::PrivateKey],
) -> Result<BTreeMap<String, Vec<u8>>, RecoveryError> {
    let label = file.label();
    let secret = format!("{}/{}", file.namespace, file.name);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut data = BTreeMap::new();
    for key_name in file.keys() {
        let encoded = file.encrypted(&key_name).unwrap_or_default();
        let malformed = |error| RecoveryError::Malformed {
            source_desc: file.source_desc.clone(),
            secret: secret.clone(),
            key: key_name.clone(),
            error,
        };
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| malformed(FormatError::Malformed("not standard base64")))?;
        let mut opened = None;
        for (position, index) in order.iter().enumerate() {
            match open(&keys[*index], &label, &bytes) {
                Ok(plain) => {
                    opened = Some((position, plain));
                    break;
                }
                Err(FormatError::NoMatchingKey) => {}
                Err(error) => return Err(malformed(error)),
            }
        }
        let Some((position, plain)) = opened else {
            return Err(RecoveryError::NoMatchingKey {
                source_desc: file.source_desc.clone(),
                secret,
                key: key_name,
                keys: keys.len(),
                scope: file.scope,
            });
        };
        let index = order.remove(position);
        order.insert(0, index);
        data.insert(key_name, plain);
    }
    Ok(data)
}

/// The Secret the controller would make from `file` with `data`: the template's labels, annotations,
/// type and immutability, the SealedSecret's name and namespace.
fn secret_document(file: &SealedFile, data: &BTreeMap<String, Vec<u8>>) -> Value {
    let template = file.doc.pointer("/spec/template");
    let field = |pointer: &str| template.and_then(|template| template.pointer(pointer));
    let mut meta = Map::new();
    meta.insert("name".into(), json!(file.name));
    if !file.namespace.is_empty() {
        meta.insert("namespace".into(), json!(file.namespace));
    }
    for name in ["labels", "annotations"] {
        if let Some(map) =
            field(&format!("/metadata/{name}")).filter(|map| map.as_object().is_some_and(|m| !m.is_empty()))
        {
            meta.insert(name.into(), map.clone());
        }
    }
    let encoded: Map<String, Value> = data
        .iter()
        .map(|(key, value)| (key.clone(), json!(STANDARD.encode(value))))
        .collect();
    let mut doc = Map::new();
    doc.insert("kind".into(), json!("Secret"));
    doc.insert("apiVersion".into(), json!("v1"));
    doc.insert("metadata".into(), Value::Object(meta));
    if let Some(immutable) = field("/immutable") {
        doc.insert("immutable".into(), immutable.clone());
    }
    doc.insert("data".into(), Value::Object(encoded));
    if let Some(secret_type) = field("/type") {
        doc.insert("type".into(), secret_type.clone());
    }
    Value::Object(doc)
}

/// Read the SealedSecrets of `path` (`-` is stdin), every document.
pub fn read_sealed(path: &Path) -> Result<Vec<SealedFile>, RecoveryError> {
    let bytes = read_path(path)?;
    let source_desc = if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let text = String::from_utf8(bytes).map_err(|_| ManifestError::Syntax {
        source_desc: source_desc.clone(),
        format: "UTF-8 text",
        message: "it holds bytes that are not UTF-8".into(),
    })?;
    Ok(SealedFile::parse_all(&text, &source_desc)?)
}

/// What `unseal` did.
#[derive(Debug, Clone, Default)]
pub struct Unsealed {
    /// The Secrets for stdout (none when written to a file).
    pub stdout: Option<String>,
    /// The file written.
    pub written: Option<PathBuf>,
    /// How many Secrets.
    pub secrets: usize,
}

/// Run `unseal`: read the keys and every SealedSecret, decrypt all (nothing is printed if one fails),
/// ask before a production SealedSecret (its namespace is a production environment's, when `repo`
/// is known), then print or write.
pub fn unseal(
    options: &UnsealOptions,
    format: Option<DocFormat>,
    repo: Option<&Repo>,
    yes: bool,
) -> Result<Unsealed, RecoveryError> {
    let keys = read_private_keys(&options.private_keys)?;
    let mut files = Vec::new();
    for path in &options.files {
        files.extend(read_sealed(path)?);
    }
    let mut docs = Vec::with_capacity(files.len());
    for file in &files {
        let data = decrypt_file(file, &keys)?;
        if let Some(templated) = file
            .doc
            .pointer("/spec/template/data")
            .and_then(Value::as_object)
            .filter(|map| !map.is_empty())
        {
            tracing::warn!(
                "{}: spec.template.data ({} key(s)) is a template the controller renders; offline it is left out",
                file.source_desc,
                templated.len()
            );
        }
        docs.push(secret_document(file, &data));
    }
    let production: Vec<Environment> = match repo {
        Some(repo) => Environment::load_all(repo)?
            .into_iter()
            .filter(Environment::is_production)
            .collect(),
        None => Vec::new(),
    };
    let target = match &options.out {
        Some(path) => path.display().to_string(),
        None => "stdout".to_string(),
    };
    for file in &files {
        if let Some(env) = production.iter().find(|env| env.namespace == file.namespace) {
            shared::confirm::guard(
                env,
                &format!(
                    "Unseal `{}/{}` (plaintext to {target})",
                    file.namespace, file.name
                ),
                yes,
                Confirmation::YesNo,
            )?;
        }
    }
    let format = format
        .or_else(|| options.out.as_deref().and_then(DocFormat::from_path))
        .unwrap_or(DocFormat::Yaml);
    let text = render(&docs, format);
    match &options.out {
        Some(path) => {
            write_file(path, text.as_bytes(), Mode::Secret, "unsealed Secret")?;
            Ok(Unsealed {
                stdout: None,
                written: Some(path.clone()),
                secrets: docs.len(),
            })
        }
        None => Ok(Unsealed {
            stdout: Some(text),
            written: None,
            secrets: docs.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys;

    #[test]
    fn pem_keys_take_rsa_keys_skip_certificates_and_explain_the_rest() {
        let key = testkeys::rsa_2048();
        let both = format!("{}{}", key.cert_pem, key.key_pem);
        assert_eq!(pem_keys(&both).unwrap().len(), 1);
        let err = pem_keys(&key.cert_pem).unwrap_err();
        assert!(err.contains("no PEM private key"), "{err}");
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(pem_keys(encrypted).unwrap_err().contains("decrypt it first"));
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(pem_keys(ec).unwrap_err().contains("not RSA"));
        let cut = key.key_pem.replace("-----END PRIVATE KEY-----", "");
        assert!(pem_keys(&cut).unwrap_err().contains("no END line"));
    }
}

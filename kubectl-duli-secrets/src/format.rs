//! The byte format of one sealed value, exactly as kubeseal's `HybridEncrypt` writes it.
//!
//! A fresh 32-byte AES key per value, wrapped with RSA-OAEP (SHA-256 for both the OAEP hash and MGF1, the
//! scope label as the OAEP label); the value encrypted with AES-256-GCM under an all-zero 12-byte nonce
//! (safe only because each key is used once), no AAD, tag appended. Output: `u16 BE length of the RSA
//! part ‖ RSA part ‖ GCM ciphertext ‖ tag`, standard base64 with padding.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::oaep::{DecryptingKey, EncryptingKey};
use rsa::sha2::Sha256;
use rsa::traits::{Decryptor, RandomizedEncryptor};

/// Annotation selecting the namespace-wide scope (value exactly `"true"`).
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Annotation selecting the cluster-wide scope (value exactly `"true"`); wins over namespace-wide.
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";

/// Errors sealing or opening one value.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// RSA-OAEP failed (a key too small for a 32-byte payload, or no randomness).
    #[error("cannot wrap the AES key with the certificate's RSA key: {0}")]
    Wrap(String),
    /// AES-GCM failed.
    #[error("cannot encrypt the value with AES-256-GCM")]
    Encrypt,
    /// The ciphertext is not base64 or too short.
    #[error("sealed value is malformed: {0}")]
    Malformed(&'static str),
    /// No key decrypts the value with this label.
    #[error("no key could decrypt the value with this scope, name and namespace")]
    NoMatchingKey,
}

/// Which names a sealed value is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Scope {
    /// Bound to the namespace and the name (the default).
    #[default]
    Strict,
    /// Bound to the namespace; the Secret may be renamed.
    NamespaceWide,
    /// Not bound: any name, any namespace.
    ClusterWide,
}

impl Scope {
    /// The OAEP label kubeseal uses: `"ns/name"`, `"ns"` or empty.
    pub fn label(self, namespace: &str, name: &str) -> Vec<u8> {
        match self {
            Scope::Strict => format!("{namespace}/{name}").into_bytes(),
            Scope::NamespaceWide => namespace.as_bytes().to_vec(),
            Scope::ClusterWide => Vec::new(),
        }
    }

    /// The scope the controller reads from a SealedSecret's own annotations (cluster-wide wins; the value
    /// must be exactly `"true"`).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Scope {
        let set = |name: &str| annotations.get(name).is_some_and(|value| value == "true");
        if set(CLUSTER_WIDE_ANNOTATION) {
            Scope::ClusterWide
        } else if set(NAMESPACE_WIDE_ANNOTATION) {
            Scope::NamespaceWide
        } else {
            Scope::Strict
        }
    }

    /// The annotation that selects this scope, if any.
    pub fn annotation(self) -> Option<&'static str> {
        match self {
            Scope::Strict => None,
            Scope::NamespaceWide => Some(NAMESPACE_WIDE_ANNOTATION),
            Scope::ClusterWide => Some(CLUSTER_WIDE_ANNOTATION),
        }
    }

    /// The flag spelling (`strict`, `namespace-wide`, `cluster-wide`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "strict" => Ok(Scope::Strict),
            "namespace-wide" => Ok(Scope::NamespaceWide),
            "cluster-wide" => Ok(Scope::ClusterWide),
            other => Err(format!(
                "unknown scope `{other}`: use strict, namespace-wide or cluster-wide"
            )),
        }
    }
}

/// Seals values for one public key.
#[derive(Debug, Clone)]
pub struct Sealer {
    key: rsa::PublicKey,
}

impl Sealer {
    /// A sealer for the controller's public key.
    pub fn new(key: rsa::PublicKey) -> Self {
        Sealer { key }
    }

    /// Seal `plaintext` under `label` (see [`Scope::label`]); returns the raw bytes.
    pub fn seal(&self, label: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, FormatError> {
        let aes_key = Key::<Aes256Gcm>::try_generate().map_err(|err| FormatError::Wrap(err.to_string()))?;
        let wrapping = EncryptingKey::<Sha256>::new_with_label(self.key.clone(), label.to_vec());
        let wrapped = wrapping
            .encrypt_with_rng(&mut getrandom::SysRng, aes_key.as_slice())
            .map_err(|err| FormatError::Wrap(err.to_string()))?;
        let length =
            u16::try_from(wrapped.len()).map_err(|_| FormatError::Wrap("RSA key too large".into()))?;
        let cipher = Aes256Gcm::new(&aes_key);
        let sealed = cipher
            .encrypt(&Nonce::default(), plaintext)
            .map_err(|_| FormatError::Encrypt)?;
        let mut out = Vec::with_capacity(2 + wrapped.len() + sealed.len());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Seal `plaintext` and encode it as kubeseal does (standard base64 with padding, one line).
    pub fn seal_base64(&self, label: &[u8], plaintext: &[u8]) -> Result<String, FormatError> {
        Ok(STANDARD.encode(self.seal(label, plaintext)?))
    }
}

/// Open a base64 sealed value with a private key (the controller's side; used by tests and recovery).
pub fn open_base64(key: &rsa::PrivateKey, label: &[u8], encoded: &str) -> Result<Vec<u8>, FormatError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|_| FormatError::Malformed("not standard base64"))?;
    open(key, label, &bytes)
}

/// Open raw sealed bytes with a private key.
pub fn open(key: &rsa::PrivateKey, label: &[u8], bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    if bytes.len() < 2 {
        return Err(FormatError::Malformed("missing the length prefix"));
    }
    let length = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    if bytes.len() < 2 + length {
        return Err(FormatError::Malformed("shorter than its RSA part"));
    }
    let (wrapped, sealed) = bytes[2..].split_at(length);
    let unwrapping = DecryptingKey::<Sha256>::new_with_label(key.clone(), label.to_vec());
    let aes_key = unwrapping
        .decrypt(wrapped)
        .map_err(|_| FormatError::NoMatchingKey)?;
    let aes_key = Key::<Aes256Gcm>::try_from(aes_key.as_slice()).map_err(|_| FormatError::NoMatchingKey)?;
    Aes256Gcm::new(&aes_key)
        .decrypt(&Nonce::default(), sealed)
        .map_err(|_| FormatError::NoMatchingKey)
}

/// Whether `key` is a valid Secret key (`[-._a-zA-Z0-9]+`, at most 253 characters, not `.`/`..`-prefixed).
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && key != "."
        && !key.starts_with("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> rsa::PrivateKey {
        crate::testkeys::rsa_2048().private_key()
    }

    #[test]
    fn labels_follow_the_controller_code() {
        assert_eq!(Scope::Strict.label("staging", "db"), b"staging/db");
        assert_eq!(Scope::NamespaceWide.label("staging", "db"), b"staging");
        assert_eq!(Scope::ClusterWide.label("staging", "db"), b"");
    }

    #[test]
    fn annotations_select_the_scope_and_cluster_wide_wins() {
        let mut annotations = BTreeMap::new();
        assert_eq!(Scope::from_annotations(&annotations), Scope::Strict);
        annotations.insert(NAMESPACE_WIDE_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(Scope::from_annotations(&annotations), Scope::NamespaceWide);
        annotations.insert(CLUSTER_WIDE_ANNOTATION.to_string(), "True".to_string());
        assert_eq!(
            Scope::from_annotations(&annotations),
            Scope::NamespaceWide,
            "only exactly \"true\" counts"
        );
        annotations.insert(CLUSTER_WIDE_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(Scope::from_annotations(&annotations), Scope::ClusterWide);
    }

    #[test]
    fn seals_in_kubeseal_layout_and_opens_only_with_the_same_label() {
        let private = test_key();
        let sealer = Sealer::new(rsa::PublicKey::from(&private));
        let sealed = sealer.seal(b"staging/db", b"s3cret").unwrap();
        assert_eq!(u16::from_be_bytes([sealed[0], sealed[1]]), 256);
        assert_eq!(sealed.len(), 2 + 256 + 6 + 16);
        assert_eq!(open(&private, b"staging/db", &sealed).unwrap(), b"s3cret");
        assert!(matches!(
            open(&private, b"staging", &sealed),
            Err(FormatError::NoMatchingKey)
        ));
        let empty = sealer.seal_base64(b"", b"").unwrap();
        assert!(empty.starts_with("AQ"), "{empty}");
        assert_eq!(open_base64(&private, b"", &empty).unwrap(), b"");
    }

    #[test]
    fn key_names_follow_kubernetes() {
        for ok in ["password", "tls.crt", "a-b_c.d", "x"] {
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in ["", "a/b", "a b", ".", "..", "..x", "ключ"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }
}

//! Test-only keys and certificates, made once per test process with the `openssl` command-line tool.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use testkit::certs;

/// A private key (PKCS#8 PEM) and its self-signed certificate.
pub(crate) struct TestKey {
    pub key_pem: String,
    pub cert_pem: String,
}

impl TestKey {
    pub fn private_key(&self) -> rsa::PrivateKey {
        use rsa::pkcs8::DecodePrivateKey;
        rsa::PrivateKey::from_pkcs8_pem(&self.key_pem).expect("test key parses")
    }
}

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir").keep())
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

/// RSA-2048 key with a certificate valid for ten years.
pub(crate) fn rsa_2048() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        certs::rsa_key(dir(), 2048, "key.pem");
        certs::self_signed(dir(), "key.pem", "test", 3650, "cert.pem");
        TestKey {
            key_pem: read("key.pem"),
            cert_pem: read("cert.pem"),
        }
    })
}

/// A certificate for the same key that expired yesterday.
pub(crate) fn expired_cert() -> &'static str {
    static CERT: OnceLock<String> = OnceLock::new();
    CERT.get_or_init(|| {
        rsa_2048();
        certs::expired(dir(), "key.pem", "old.pem");
        read("old.pem")
    })
}

/// A certificate for the same key that expires in ten days.
pub(crate) fn soon_cert() -> &'static str {
    static CERT: OnceLock<String> = OnceLock::new();
    CERT.get_or_init(|| {
        rsa_2048();
        certs::self_signed(dir(), "key.pem", "soon", 10, "soon.pem");
        read("soon.pem")
    })
}

/// An EC (P-256) certificate.
pub(crate) fn ec_cert() -> &'static str {
    static CERT: OnceLock<String> = OnceLock::new();
    CERT.get_or_init(|| {
        certs::ec_self_signed(dir(), "ec.pem", "ec-cert.pem");
        read("ec-cert.pem")
    })
}

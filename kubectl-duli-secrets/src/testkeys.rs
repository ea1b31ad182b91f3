//! Test-only keys and certificates, made once per test process with the `openssl` command-line tool.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir())
        .output()
        .expect("the tests need the `openssl` command-line tool on PATH");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap()
}

/// RSA-2048 key with a certificate valid for ten years.
pub(crate) fn rsa_2048() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ]);
        openssl(&[
            "req", "-x509", "-key", "key.pem", "-subj", "/CN=test", "-days", "3650", "-out", "cert.pem",
        ]);
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
        openssl(&[
            "req", "-new", "-key", "key.pem", "-subj", "/CN=old", "-out", "old.csr",
        ]);
        openssl(&[
            "x509", "-req", "-in", "old.csr", "-signkey", "key.pem", "-days", "-1", "-out", "old.pem",
        ]);
        read("old.pem")
    })
}

/// A certificate for the same key that expires in ten days.
pub(crate) fn soon_cert() -> &'static str {
    static CERT: OnceLock<String> = OnceLock::new();
    CERT.get_or_init(|| {
        rsa_2048();
        openssl(&[
            "req", "-x509", "-key", "key.pem", "-subj", "/CN=soon", "-days", "10", "-out", "soon.pem",
        ]);
        read("soon.pem")
    })
}

/// An EC (P-256) certificate.
pub(crate) fn ec_cert() -> &'static str {
    static CERT: OnceLock<String> = OnceLock::new();
    CERT.get_or_init(|| {
        openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ]);
        openssl(&[
            "req",
            "-x509",
            "-key",
            "ec.pem",
            "-subj",
            "/CN=ec",
            "-days",
            "30",
            "-out",
            "ec-cert.pem",
        ]);
        read("ec-cert.pem")
    })
}

//! Keys and certificates made at test time with the `openssl` command-line tool, in a directory the caller
//! owns (file names are relative to it).

use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with openssl's stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("these tests need the `openssl` command-line tool on PATH");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A new RSA private key of `bits` bits (PKCS#8 PEM) in `out`.
pub fn rsa_key(dir: &Path, bits: u32, out: &str) {
    let bits = format!("rsa_keygen_bits:{bits}");
    openssl(
        dir,
        &["genpkey", "-algorithm", "RSA", "-pkeyopt", &bits, "-out", out],
    );
}

/// A self-signed certificate for `key` with subject `/CN=common_name`, valid `days` days, in `out`.
pub fn self_signed(dir: &Path, key: &str, common_name: &str, days: u32, out: &str) {
    let subject = format!("/CN={common_name}");
    let days = days.to_string();
    openssl(
        dir,
        &[
            "req", "-x509", "-key", key, "-subj", &subject, "-days", &days, "-out", out,
        ],
    );
}

/// A certificate for `key` that expired yesterday, in `out` (through a signing request `old.csr`).
pub fn expired(dir: &Path, key: &str, out: &str) {
    openssl(
        dir,
        &["req", "-new", "-key", key, "-subj", "/CN=old", "-out", "old.csr"],
    );
    openssl(
        dir,
        &[
            "x509", "-req", "-in", "old.csr", "-signkey", key, "-days", "-1", "-out", out,
        ],
    );
}

/// A new EC (P-256) key in `key_out` and its self-signed certificate (`/CN=ec`, 30 days) in `cert_out`.
pub fn ec_self_signed(dir: &Path, key_out: &str, cert_out: &str) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            key_out,
        ],
    );
    self_signed(dir, key_out, "ec", 30, cert_out);
}

//! The controller's sealing certificate: parsing (first PEM `CERTIFICATE` block, RSA only), expiry, and the
//! per-context cache that lets sealing work offline.
//!
//! Like kubeseal, the chain is not verified; an expired certificate is refused, one expiring within
//! [`EXPIRY_WARNING_DAYS`], one not valid yet (`notBefore` ahead: a wrong clock or the wrong certificate) and
//! an RSA key under [`MIN_RSA_BITS`] get a warning.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_cert::der::Decode;
use x509_cert::der::referenced::OwnedToRef;

use shared::fsio::{CONFIG_FILE_LIMIT, FsError, Mode, read_bounded};

use crate::files::write_file;
use crate::format::Sealer;

/// A certificate expiring within this many days gets a warning.
pub const EXPIRY_WARNING_DAYS: u64 = 30;
/// An RSA key shorter than this gets a warning (controllers make 4096-bit keys).
pub const MIN_RSA_BITS: usize = 2048;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Errors reading or using a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No `CERTIFICATE` PEM block.
    #[error(
        "certificate {source_desc} is not PEM: no `{BEGIN}` block found; pass the controller's certificate \
         (kubectl duli secrets fetch-cert > cert.pem)"
    )]
    NotPem {
        /// Where it came from.
        source_desc: String,
    },
    /// The block is not a valid X.509 certificate.
    #[error("certificate {source_desc} is not a valid X.509 certificate: {message}")]
    Invalid {
        /// Where it came from.
        source_desc: String,
        /// The decoder's message.
        message: String,
    },
    /// The key is not RSA.
    #[error(
        "certificate {source_desc} holds a {algorithm} key, not RSA; sealed-secrets controllers use RSA \
         certificates — pass the controller's certificate"
    )]
    NotRsa {
        /// Where it came from.
        source_desc: String,
        /// The key algorithm found.
        algorithm: String,
    },
    /// The certificate has expired.
    #[error(
        "certificate {source_desc} expired on {date}; refusing to seal with it — fetch the controller's \
         current certificate (kubectl duli secrets fetch-cert) or pass a valid --cert"
    )]
    Expired {
        /// Where it came from.
        source_desc: String,
        /// `Month D, YYYY`.
        date: String,
    },
    /// A file could not be read or written (too large, not a regular file, refused by the OS).
    #[error(transparent)]
    File(#[from] FsError),
}

/// A parsed controller certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    pem: String,
    public_key: rsa::PublicKey,
    not_after: SystemTime,
    not_after_date: String,
    not_before: SystemTime,
    not_before_date: String,
    source_desc: String,
}

/// How close a certificate is to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// More than [`EXPIRY_WARNING_DAYS`] left.
    Valid,
    /// Expires within the warning window: this many whole days left.
    Soon(u64),
}

impl Certificate {
    /// Parse the first `CERTIFICATE` block of `pem`; `source_desc` names the input in messages. The text is
    /// kept unchanged (for `fetch-cert` and the cache).
    pub fn parse(pem: &[u8], source_desc: &str) -> Result<Self, CertError> {
        let not_pem = || CertError::NotPem {
            source_desc: source_desc.to_string(),
        };
        let text = std::str::from_utf8(pem).map_err(|_| not_pem())?;
        let start = text.find(BEGIN).ok_or_else(not_pem)? + BEGIN.len();
        let end = text[start..].find(END).ok_or_else(not_pem)? + start;
        let body: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
        let invalid = |message: String| CertError::Invalid {
            source_desc: source_desc.to_string(),
            message,
        };
        let der = STANDARD
            .decode(body)
            .map_err(|err| invalid(format!("bad base64 in the PEM block: {err}")))?;
        let cert = x509_cert::Certificate::from_der(&der).map_err(|err| invalid(err.to_string()))?;
        let tbs = cert.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        let oid = spki.algorithm.oid.to_string();
        if oid != "1.2.840.113549.1.1.1" {
            return Err(CertError::NotRsa {
                source_desc: source_desc.to_string(),
                algorithm: algorithm_name(&oid),
            });
        }
        let public_key = rsa::PublicKey::try_from(spki.owned_to_ref())
            .map_err(|err| invalid(format!("unusable RSA public key: {err}")))?;
        let not_after = tbs.validity().not_after;
        let date = not_after.to_date_time();
        let not_before = tbs.validity().not_before;
        let start = not_before.to_date_time();
        Ok(Certificate {
            pem: text.to_string(),
            public_key,
            not_after: not_after.to_system_time(),
            not_after_date: format_date(date.year(), date.month(), date.day()),
            not_before: not_before.to_system_time(),
            not_before_date: format_date(start.year(), start.month(), start.day()),
            source_desc: source_desc.to_string(),
        })
    }

    /// Read and parse a certificate file.
    pub fn read_file(path: &Path) -> Result<Self, CertError> {
        let bytes = read_bounded(path, CONFIG_FILE_LIMIT, "certificate file")?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// The PEM text as read.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Where the certificate came from (file, URL, cache, cluster).
    pub fn source_desc(&self) -> &str {
        &self.source_desc
    }

    /// The expiry date as `Month D, YYYY`.
    pub fn not_after_date(&self) -> &str {
        &self.not_after_date
    }

    /// Refuse an expired certificate; report one expiring soon.
    pub fn check_expiry(&self, now: SystemTime) -> Result<Expiry, CertError> {
        match self.not_after.duration_since(now) {
            Err(_) | Ok(Duration::ZERO) => Err(CertError::Expired {
                source_desc: self.source_desc.clone(),
                date: self.not_after_date.clone(),
            }),
            Ok(left) if left.as_secs() < EXPIRY_WARNING_DAYS * 86_400 => {
                Ok(Expiry::Soon(left.as_secs() / 86_400))
            }
            Ok(_) => Ok(Expiry::Valid),
        }
    }

    /// Why the certificate is suspect though usable: not valid yet at `now`, or a short RSA key — one
    /// sentence each, naming the certificate.
    pub fn doubts(&self, now: SystemTime) -> Vec<String> {
        let mut doubts = Vec::new();
        if self.not_before > now {
            doubts.push(format!(
                "certificate {} is not valid until {}: check this machine's clock, or that it is the \
                 controller's current certificate (kubectl duli secrets fetch-cert)",
                self.source_desc, self.not_before_date
            ));
        }
        let bits = rsa::traits::PublicKeyParts::size(&self.public_key) * 8;
        if bits < MIN_RSA_BITS {
            doubts.push(format!(
                "certificate {} holds a {bits}-bit RSA key, under the {MIN_RSA_BITS} bits considered safe: \
                 values sealed with it can be broken; have the controller make a new key",
                self.source_desc
            ));
        }
        doubts
    }

    /// Check expiry now, warning on stderr when it is close (or the certificate is suspect, see
    /// [`Certificate::doubts`]); the error when expired.
    pub fn usable(&self) -> Result<(), CertError> {
        for doubt in self.doubts(SystemTime::now()) {
            tracing::warn!("{doubt}");
        }
        if let Expiry::Soon(days) = self.check_expiry(SystemTime::now())? {
            tracing::warn!(
                "certificate {} expires in {days} days (on {}); sealing refuses it after that — fetch the \
                 controller's current certificate (kubectl duli secrets fetch-cert)",
                self.source_desc,
                self.not_after_date
            );
        }
        Ok(())
    }

    /// A sealer for this certificate's key.
    pub fn sealer(&self) -> Sealer {
        Sealer::new(self.public_key.clone())
    }
}

fn algorithm_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.2.1" => "EC".to_string(),
        "1.3.101.112" => "Ed25519".to_string(),
        "1.3.101.113" => "Ed448".to_string(),
        "1.2.840.10040.4.1" => "DSA".to_string(),
        other => format!("non-RSA (OID {other})"),
    }
}

/// `Month D, YYYY`, as kubeseal prints dates.
fn format_date(year: u16, month: u8, day: u8) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS
        .get(usize::from(month).saturating_sub(1))
        .copied()
        .unwrap_or("?");
    format!("{name} {day}, {year}")
}

/// Certificates fetched from clusters, one file per kubeconfig context, so sealing works offline.
#[derive(Debug, Clone)]
pub struct CertCache {
    dir: PathBuf,
}

impl CertCache {
    /// The cache under the user's cache directory (`$XDG_CACHE_HOME/duli/sealed-secrets` on Linux).
    pub fn user() -> Option<Self> {
        dirs::cache_dir().map(|dir| CertCache {
            dir: dir.join("duli").join("sealed-secrets"),
        })
    }

    /// A cache in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        CertCache { dir: dir.into() }
    }

    /// The file for `context` (characters outside `[A-Za-z0-9._-]` become `_`).
    pub fn path(&self, context: &str) -> PathBuf {
        let safe: String = context
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let safe = if safe.is_empty() || safe.starts_with('.') {
            format!("_{safe}")
        } else {
            safe
        };
        self.dir.join(format!("{safe}.pem"))
    }

    /// The cached certificate of `context`, if any.
    pub fn load(&self, context: &str) -> Result<Option<Certificate>, CertError> {
        let path = self.path(context);
        match read_bounded(&path, CONFIG_FILE_LIMIT, "cached certificate") {
            Ok(bytes) => Certificate::parse(
                &bytes,
                &format!("{} (cached for context `{context}`)", path.display()),
            )
            .map(Some),
            Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Store `cert` for `context` (atomically: temp file + rename).
    pub fn store(&self, context: &str, cert: &Certificate) -> Result<PathBuf, CertError> {
        let path = self.path(context);
        write_file(&path, cert.pem().as_bytes(), Mode::Normal, "certificate cache")?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys;

    #[test]
    fn parses_the_first_certificate_and_keeps_the_text() {
        let keys = testkeys::rsa_2048();
        let text = format!("# comment\n{}", keys.cert_pem);
        let cert = Certificate::parse(text.as_bytes(), "cert.pem").unwrap();
        assert_eq!(cert.pem(), text);
        assert_eq!(cert.check_expiry(SystemTime::now()).unwrap(), Expiry::Valid);
    }

    #[test]
    fn bad_certificates_are_named_and_explained() {
        let err = Certificate::parse(b"hello", "x.pem").unwrap_err().to_string();
        assert!(err.contains("x.pem is not PEM"), "{err}");
        let err = Certificate::parse(testkeys::ec_cert().as_bytes(), "ec.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds a EC key, not RSA"), "{err}");
        let garbage = format!("{BEGIN}\nAAAA\n{END}\n");
        let err = Certificate::parse(garbage.as_bytes(), "g.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid X.509"), "{err}");
    }

    #[test]
    fn expired_is_refused_and_soon_is_reported() {
        let expired = Certificate::parse(testkeys::expired_cert().as_bytes(), "old.pem").unwrap();
        let err = expired.check_expiry(SystemTime::now()).unwrap_err().to_string();
        assert!(err.contains("old.pem expired on "), "{err}");
        let soon = Certificate::parse(testkeys::soon_cert().as_bytes(), "soon.pem").unwrap();
        assert!(matches!(
            soon.check_expiry(SystemTime::now()).unwrap(),
            Expiry::Soon(9 | 10)
        ));
    }

    #[test]
    fn dates_read_like_kubeseal() {
        assert_eq!(format_date(2026, 11, 28), "November 28, 2026");
    }

    #[test]
    fn cache_round_trips_per_context() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CertCache::at(dir.path());
        assert!(cache.load("kind-a").unwrap().is_none());
        let cert = Certificate::parse(testkeys::rsa_2048().cert_pem.as_bytes(), "c.pem").unwrap();
        cache.store("arn:aws:eks:x/y", &cert).unwrap();
        assert!(cache.path("arn:aws:eks:x/y").ends_with("arn_aws_eks_x_y.pem"));
        assert_eq!(cache.load("arn:aws:eks:x/y").unwrap().unwrap().pem(), cert.pem());
    }
}

//! `verify FILE…` and `rotate FILE…`: ask the cluster's controller whether it can decrypt SealedSecret
//! files (every document of each), or have it re-encrypt them with its newest key — or, with
//! `rotate --private-key`, decrypt with backed-up keys and re-seal with the certificate, offline. Rotation
//! rewrites only the `encryptedData` values (in place with `--in-place`, to `-w FILE`, else to stdout), in
//! the file's own format unless `--format` asks for another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{CertOptions, RotateOptions, VerifyOptions};
use crate::controller::{ControllerError, Verdict};
use crate::files::{merge_target, write_file};
use crate::input::INPUT_FILE_LIMIT;
use crate::manifest::{DocFormat, ManifestError, SealedFile, render};
use crate::recovery::{self, RecoveryError};
use crate::seal::{self, SealError};
use shared::cluster::{Cluster, ClusterError, ClusterTarget};
use shared::fsio::{FsError, Mode, read_to_string_bounded};

/// Errors of verify and rotate.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A file could not be read or written (too large, a special file, refused by the OS).
    #[error(transparent)]
    File(#[from] FsError),
    /// A symlink that could not be followed.
    #[error("cannot follow {path}: {error}")]
    Link {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Not a SealedSecret.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// No cluster.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The controller failed.
    #[error("{path}: {error}")]
    Controller {
        /// The file.
        path: PathBuf,
        /// Why.
        error: ControllerError,
    },
    /// Reading SealedSecrets or keys, or decrypting with them, failed.
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    /// No usable certificate for an offline rotation.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Flags that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The controller's answer does not fit the file.
    #[error("{path}: the controller's re-encrypted SealedSecret {problem}; file left unchanged")]
    BadRotation {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

fn read(path: &Path) -> Result<SealedFile, RemoteError> {
    if path.as_os_str() == "-" {
        let mut files = recovery::read_sealed(path)?;
        if files.len() != 1 {
            return Err(ManifestError::NotSealedSecret {
                source_desc: "stdin".into(),
                problem: format!("it holds {} documents", files.len()),
            }
            .into());
        }
        return Ok(files.remove(0));
    }
    let text = read_to_string_bounded(path, INPUT_FILE_LIMIT, "SealedSecret file")?;
    Ok(SealedFile::parse(&text, &path.display().to_string())?)
}

async fn client(target: &ClusterTarget) -> Result<Cluster, RemoteError> {
    Ok(target.connect(Some(Duration::from_secs(10))).await?)
}

/// How many SealedSecret documents `paths` hold (unreadable files and stdin count as one), for the
/// command's deadline: verify makes one exchange per document.
pub fn count_documents(paths: &[PathBuf]) -> usize {
    paths
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return 1;
            }
            read_to_string_bounded(path, INPUT_FILE_LIMIT, "SealedSecret file")
                .ok()
                .and_then(|text| SealedFile::parse_all(&text, "").ok())
                .map_or(1, |files| files.len().max(1))
        })
        .sum()
}

/// One SealedSecret's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyResult {
    /// The file.
    pub file: PathBuf,
    /// The document's number in the file (1-based), when the file holds several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// `namespace/name`.
    pub secret: String,
    /// Whether the controller can decrypt it.
    pub decrypts: bool,
}

/// Verify every SealedSecret of every file (`-` is stdin); all are read and checked before the first
/// request.
pub async fn verify(
    options: &VerifyOptions,
    certs: &CertOptions,
    target: &ClusterTarget,
) -> Result<Vec<VerifyResult>, RemoteError> {
    let controller = &certs.controller;
    let paths = &options.files;
    let mut files = Vec::new();
    for path in paths {
        files.push(recovery::read_sealed(path)?);
    }
    let client = client(target).await?;
    let mut results = Vec::new();
    for (path, documents) in paths.iter().zip(files) {
        let several = documents.len() > 1;
        for (index, file) in documents.into_iter().enumerate() {
            let verdict = controller
                .verify(&controller.api_client(&client), &file.doc)
                .await
                .map_err(|error| RemoteError::Controller {
                    path: PathBuf::from(&file.source_desc),
                    error,
                })?;
            results.push(VerifyResult {
                file: path.clone(),
                document: several.then_some(index + 1),
                secret: format!("{}/{}", file.namespace, file.name),
                decrypts: verdict == Verdict::Decrypts,
            });
        }
    }
    Ok(results)
}

/// One file after rotation.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The file.
    pub file: PathBuf,
    /// Its new text.
    pub text: String,
    /// Where it was written (none: for stdout).
    pub written: Option<PathBuf>,
}

/// Re-encrypt every file: by the controller with its newest key, or offline (`--private-key`: decrypt
/// with the backed-up keys, re-seal with the certificate). Nothing is written unless every file rotated.
pub async fn rotate(
    options: &RotateOptions,
    format: Option<DocFormat>,
    certs: &CertOptions,
    target: &ClusterTarget,
) -> Result<Vec<Rotated>, RemoteError> {
    let paths = &options.files;
    if options.out.is_some() && paths.len() != 1 {
        return Err(RemoteError::Usage(format!(
            "-w/--out takes one input file, got {}; use --in-place for several",
            paths.len()
        )));
    }
    if options.in_place && paths.iter().any(|path| path.as_os_str() == "-") {
        return Err(RemoteError::Usage(
            "--in-place cannot rewrite stdin; pass the file, or -w FILE".into(),
        ));
    }
    let files: Vec<SealedFile> = paths.iter().map(|path| read(path)).collect::<Result<_, _>>()?;
    let mut rotated = Vec::new();
    if options.private_keys.is_empty() {
        let controller = &certs.controller;
        let client = client(target).await?;
        for (path, file) in paths.iter().zip(&files) {
            let answer = controller
                .rotate(&controller.api_client(&client), &file.doc)
                .await
                .map_err(|error| RemoteError::Controller {
                    path: path.clone(),
                    error,
                })?;
            let updates = controller_updates(path, file, &answer)?;
            rotated.push(rotated_file(path, file, &updates, format));
        }
    } else {
        // Every value decrypted before the certificate is fetched: a wrong key fails first, offline.
        let keys = recovery::read_private_keys(&options.private_keys)?;
        let plaintexts = files
            .iter()
            .map(|file| recovery::decrypt_file(file, &keys))
            .collect::<Result<Vec<_>, _>>()?;
        let sealer = seal::certificate(certs, target).await?.sealer();
        for ((path, file), data) in paths.iter().zip(&files).zip(plaintexts) {
            let label = file.label();
            let mut updates = BTreeMap::new();
            for (key, value) in &data {
                let sealed = sealer
                    .seal_base64(&label, value)
                    .map_err(|error| ManifestError::Seal {
                        key: key.clone(),
                        error,
                    })?;
                updates.insert(key.clone(), sealed);
            }
            rotated.push(rotated_file(path, file, &updates, format));
        }
    }
    if options.in_place || options.out.is_some() {
        for entry in &mut rotated {
            let path = options.out.clone().unwrap_or_else(|| entry.file.clone());
            // In place through a symlink means the file it points at, as for `seal --merge-into`.
            let target = merge_target(&path).map_err(|error| RemoteError::Link {
                path: path.clone(),
                error,
            })?;
            write_file(&target, entry.text.as_bytes(), Mode::Secret, "SealedSecret file")?;
            entry.written = Some(path);
        }
    }
    Ok(rotated)
}

/// The controller's re-encrypted values, checked against the file's keys.
fn controller_updates(
    path: &Path,
    file: &SealedFile,
    answer: &Value,
) -> Result<BTreeMap<String, String>, RemoteError> {
    let bad = |problem: String| RemoteError::BadRotation {
        path: path.to_path_buf(),
        problem,
    };
    let data = answer
        .pointer("/spec/encryptedData")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("has no spec.encryptedData".into()))?;
    let mut updates = BTreeMap::new();
    for key in file.keys() {
        let value = data
            .get(&key)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("lacks key `{key}`")))?;
        updates.insert(key, value.to_string());
    }
    if data.len() != updates.len() {
        return Err(bad("has keys the file does not have".into()));
    }
    Ok(updates)
}

/// The file's text with `updates`, in its own format, or rendered anew in `format` when that differs.
fn rotated_file(
    path: &Path,
    file: &SealedFile,
    updates: &BTreeMap<String, String>,
    format: Option<DocFormat>,
) -> Rotated {
    let merged = file.merged_text(updates, None);
    let text = match format {
        Some(format) if format != file.format => SealedFile::parse(&merged, &file.source_desc)
            .map(|updated| render(&[updated.doc], format))
            .unwrap_or(merged),
        _ => merged,
    };
    Rotated {
        file: path.to_path_buf(),
        text,
        written: None,
    }
}

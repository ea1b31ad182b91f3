//! `verify FILE…` and `rotate FILE…`: ask the cluster's controller whether it can decrypt SealedSecret
//! files, or have it re-encrypt them with its newest key. Rotation rewrites only the `encryptedData` values
//! (in place with `--in-place`, else to stdout), in the file's own format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{Controller, RotateOptions, VerifyOptions};
use crate::controller::{ControllerError, Verdict};
use crate::files::{merge_target, write_file};
use crate::input::INPUT_FILE_LIMIT;
use crate::manifest::{ManifestError, SealedFile};
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
    let text = read_to_string_bounded(path, INPUT_FILE_LIMIT, "SealedSecret file")?;
    Ok(SealedFile::parse(&text, &path.display().to_string())?)
}

async fn client(target: &ClusterTarget) -> Result<Cluster, RemoteError> {
    Ok(target.connect(Some(Duration::from_secs(10))).await?)
}

/// One file's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyResult {
    /// The file.
    pub file: PathBuf,
    /// `namespace/name`.
    pub secret: String,
    /// Whether the controller can decrypt it.
    pub decrypts: bool,
}

/// Verify every file; all are read and checked before the first request.
pub async fn verify(
    options: &VerifyOptions,
    controller: &Controller,
    target: &ClusterTarget,
) -> Result<Vec<VerifyResult>, RemoteError> {
    let paths = &options.files;
    let files: Vec<SealedFile> = paths.iter().map(|path| read(path)).collect::<Result<_, _>>()?;
    let client = client(target).await?;
    let mut results = Vec::new();
    for (path, file) in paths.iter().zip(files) {
        let verdict = controller
            .verify(&controller.api_client(&client), &file.doc)
            .await
            .map_err(|error| RemoteError::Controller {
                path: path.clone(),
                error,
            })?;
        results.push(VerifyResult {
            file: path.clone(),
            secret: format!("{}/{}", file.namespace, file.name),
            decrypts: verdict == Verdict::Decrypts,
        });
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
    /// Whether it was written back.
    pub written: bool,
}

/// Re-encrypt every file with the controller's newest key. Nothing is written unless every file rotated.
pub async fn rotate(
    options: &RotateOptions,
    controller: &Controller,
    target: &ClusterTarget,
) -> Result<Vec<Rotated>, RemoteError> {
    let paths = &options.files;
    let files: Vec<SealedFile> = paths.iter().map(|path| read(path)).collect::<Result<_, _>>()?;
    let client = client(target).await?;
    let mut rotated = Vec::new();
    for (path, file) in paths.iter().zip(&files) {
        let answer = controller
            .rotate(&controller.api_client(&client), &file.doc)
            .await
            .map_err(|error| RemoteError::Controller {
                path: path.clone(),
                error,
            })?;
        let bad = |problem: String| RemoteError::BadRotation {
            path: path.clone(),
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
        rotated.push(Rotated {
            file: path.clone(),
            text: file.merged_text(&updates, None),
            written: false,
        });
    }
    if options.in_place {
        for entry in &mut rotated {
            // In place through a symlink means the file it points at, as for `seal --merge-into`.
            let target = merge_target(&entry.file).map_err(|error| RemoteError::Link {
                path: entry.file.clone(),
                error,
            })?;
            write_file(&target, entry.text.as_bytes(), Mode::Secret, "SealedSecret file")?;
            entry.written = true;
        }
    }
    Ok(rotated)
}

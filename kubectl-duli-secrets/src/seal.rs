//! The `seal`, `raw` and `fetch-cert` commands: gather the input, check it, get the certificate, seal,
//! and write — in that order, so bad input fails before any cluster call and nothing is written on error.

use std::io::IsTerminal;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::cert::Certificate;
use crate::cli::{CertOptions, RawOptions, SealOptions};
use crate::files::{merge_target, write_file};
use crate::format::Scope;
use crate::input::{InputError, Values, read_path, read_stdin};
use crate::manifest::{
    DocFormat, ManifestError, SealedFile, SecretInput, parse_secrets, render, resolve_scope, seal_items,
    seal_secret,
};
use crate::source::{self, SourceError};
use shared::cluster::ClusterTarget;
use shared::fsio::Mode;

/// Errors of the seal commands.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Flags that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// Bad values.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Bad manifests.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// No usable certificate.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The certificate is expired.
    #[error(transparent)]
    Cert(#[from] crate::cert::CertError),
    /// Writing failed, or the output path is a symlink or special file the write would replace.
    #[error(transparent)]
    Write(#[from] shared::fsio::FsError),
    /// A name or namespace the API server would refuse.
    #[error("{origin}: {error}; no controller could ever create this Secret")]
    Name {
        /// The flag or field it came from (`--name`, `metadata.namespace`).
        origin: &'static str,
        /// The rule it breaks.
        error: shared::names::NameError,
    },
}

/// What `seal` did.
#[derive(Debug, Clone, Default)]
pub struct SealOutcome {
    /// Text for stdout (none when written to a file).
    pub stdout: Option<String>,
    /// The file written.
    pub written: Option<PathBuf>,
    /// Keys sealed.
    pub keys: Vec<String>,
}

impl SealOptions {
    fn builds_secret(&self) -> bool {
        !(self.literals.is_empty()
            && self.from_files.is_empty()
            && self.env_files.is_empty()
            && self.prompts.is_empty())
    }

    /// Read the input Secrets (manifest, or values from flags), without touching the cluster.
    pub fn gather(&self) -> Result<Vec<SecretInput>, SealError> {
        if self.builds_secret() {
            if self.file.is_some() {
                return Err(SealError::Usage(
                    "-f reads a Secret manifest; it cannot be combined with --from-literal/--from-file/--from-env-file/--prompt".into(),
                ));
            }
            let mut values = Values::new();
            for literal in &self.literals {
                values.add_literal(literal)?;
            }
            for spec in &self.from_files {
                values.add_file(spec)?;
            }
            for path in &self.env_files {
                values.add_env_file(path)?;
            }
            for key in &self.prompts {
                values.prompt(key, &format!("value for `{key}` (hidden)"))?;
            }
            if self.name.is_none() && self.merge_into.is_none() {
                return Err(SealError::Usage(
                    "--name is required with --from-literal/--from-file/--from-env-file/--prompt (or --merge-into FILE)".into(),
                ));
            }
            let secret = SecretInput {
                name: self.name.clone().unwrap_or_default(),
                namespace: self.namespace.clone().unwrap_or_default(),
                secret_type: self.secret_type.clone(),
                items: values.into_map(),
                ..SecretInput::default()
            };
            return Ok(vec![secret]);
        }
        let (text, source_desc) = match &self.file {
            Some(path) if path.as_os_str() != "-" => {
                let bytes = read_path(path)?;
                (
                    utf8(bytes, &path.display().to_string())?,
                    path.display().to_string(),
                )
            }
            _ => {
                if std::io::stdin().is_terminal() {
                    eprintln!("(tty detected: expecting json/yaml k8s resource in stdin)");
                }
                (utf8(read_stdin()?, "stdin")?, "stdin".to_string())
            }
        };
        let mut secrets = parse_secrets(&text, &source_desc)?;
        for secret in &mut secrets {
            if let Some(name) = &self.name {
                secret.name = name.clone();
            }
            if let Some(secret_type) = &self.secret_type {
                secret.secret_type = Some(secret_type.clone());
            }
        }
        Ok(secrets)
    }
}

fn utf8(bytes: Vec<u8>, source_desc: &str) -> Result<String, SealError> {
    String::from_utf8(bytes).map_err(|_| {
        SealError::Manifest(ManifestError::Syntax {
            source_desc: source_desc.to_string(),
            format: "UTF-8 text",
            message: "it holds bytes that are not UTF-8".into(),
        })
    })
}

/// Run `seal`: gather, check, get the certificate, seal, write. `format` is `-o` (none: the `--out` file's
/// format, else YAML).
pub async fn seal(
    options: &SealOptions,
    format: Option<DocFormat>,
    certs: &CertOptions,
    target: &ClusterTarget,
) -> Result<SealOutcome, SealError> {
    let mut secrets = options.gather()?;
    if let Some(path) = &options.merge_into {
        if secrets.len() != 1 {
            return Err(SealError::Usage(format!(
                "--merge-into takes exactly one input Secret, got {}",
                secrets.len()
            )));
        }
        let mut secret = secrets.remove(0);
        // A symlink means the file it points at: that file is updated, the link stays.
        let merge_path = merge_target(path).map_err(|error| InputError::Read {
            path: path.clone(),
            error,
        })?;
        let bytes = read_path(&merge_path)?;
        let text = utf8(bytes, &path.display().to_string())?;
        let file = SealedFile::parse(&text, &path.display().to_string())?;
        if let Some(namespace) = &options.namespace
            && secret.namespace.is_empty()
        {
            secret.namespace = namespace.clone();
        }
        let scope = file.check_input(&secret, options.scope)?;
        check_items(&secret, options.allow_empty_data)?;
        let cert = certificate(certs, target).await?;
        secret.name = file.name.clone();
        secret.namespace = file.namespace.clone();
        let sealer = cert.sealer();
        let label = scope.label(&file.namespace, &file.name);
        let updates = seal_items(&sealer, &label, &secret.items)?;
        let merged = file.merged_text(&updates, Some(&secret));
        write_file(&merge_path, merged.as_bytes(), Mode::Secret, "sealed secret")?;
        return Ok(SealOutcome {
            stdout: None,
            written: Some(path.clone()),
            keys: updates.into_keys().collect(),
        });
    }

    let mut scopes = Vec::new();
    let mut context_namespace: Option<String> = None;
    for (index, secret) in secrets.iter_mut().enumerate() {
        let scope = resolve_scope(secret, options.scope, "the input")?;
        if secret.name.is_empty() {
            return Err(SealError::Usage(format!(
                "missing metadata.name in input Secret (document {}); add it or pass --name",
                index + 1
            )));
        }
        let origin = if options.name.is_some() {
            "--name"
        } else {
            "metadata.name"
        };
        shared::names::validate_object_name("Secret", &secret.name)
            .map_err(|error| SealError::Name { origin, error })?;
        match (&options.namespace, secret.namespace.is_empty()) {
            (Some(flag), false) if *flag != secret.namespace => {
                return Err(SealError::Usage(format!(
                    "namespace mismatch: input secret `{}` is in namespace `{}` but `{flag}` was specified",
                    secret.name, secret.namespace
                )));
            }
            (Some(flag), true) if scope != Scope::ClusterWide => secret.namespace = flag.clone(),
            (None, true) if scope != Scope::ClusterWide => {
                if context_namespace.is_none() {
                    context_namespace = Some(default_namespace(target).await);
                }
                secret.namespace = context_namespace.clone().unwrap_or_default();
            }
            _ => {}
        }
        if scope != Scope::ClusterWide || !secret.namespace.is_empty() {
            let origin = if options.namespace.is_some() {
                "-n/--namespace"
            } else {
                "metadata.namespace"
            };
            shared::names::validate_namespace("namespace", &secret.namespace)
                .map_err(|error| SealError::Name { origin, error })?;
        }
        check_items(secret, options.allow_empty_data)?;
        scopes.push(scope);
    }
    let format = format
        .or_else(|| options.out.as_deref().and_then(DocFormat::from_path))
        .unwrap_or(DocFormat::Yaml);
    let cert = certificate(certs, target).await?;
    let sealer = cert.sealer();
    let mut docs = Vec::with_capacity(secrets.len());
    let mut keys = Vec::new();
    for (secret, scope) in secrets.iter().zip(scopes) {
        docs.push(seal_secret(secret, scope, &sealer)?);
        keys.extend(secret.items.keys().cloned());
    }
    let text = render(&docs, format);
    match &options.out {
        Some(path) => {
            write_file(path, text.as_bytes(), Mode::Secret, "sealed secret")?;
            Ok(SealOutcome {
                stdout: None,
                written: Some(path.clone()),
                keys,
            })
        }
        None => Ok(SealOutcome {
            stdout: Some(text),
            written: None,
            keys,
        }),
    }
}

/// The most data Kubernetes accepts in one Secret (the sum of its values, `MaxSecretSize`).
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

fn check_items(secret: &SecretInput, allow_empty: bool) -> Result<(), SealError> {
    if secret.items.is_empty() && !allow_empty {
        return Err(SealError::Usage(format!(
            "Secret `{}` has no data or stringData: nothing to seal (pass --allow-empty-data to seal it anyway)",
            secret.name
        )));
    }
    let total: usize = secret.items.values().map(Vec::len).sum();
    if total > MAX_SECRET_BYTES
        && let Some((key, value)) = secret.items.iter().max_by_key(|(_, value)| value.len())
    {
        return Err(too_large(
            &format!(
                "Secret `{}`: key `{key}` holds {}",
                secret.name,
                size(value.len())
            ),
            (total != value.len()).then_some(total),
        ));
    }
    Ok(())
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn too_large(what: &str, total: Option<usize>) -> SealError {
    let total = total
        .map(|total| format!(" ({} of data in all)", size(total)))
        .unwrap_or_default();
    SealError::Usage(format!(
        "{what}{total}, over the 1 MiB Kubernetes allows in one Secret: the controller could never create it; \
         keep large files out of Secrets (mount them from a volume, or fetch them at start-up)"
    ))
}

/// The kubeconfig context's namespace, else `default` (kubeconfig errors ignored, as kubeseal does).
async fn default_namespace(target: &ClusterTarget) -> String {
    match target.connect(None).await {
        Ok(cluster) if !cluster.default_namespace.is_empty() => cluster.default_namespace,
        _ => "default".to_string(),
    }
}

/// Load the certificate and refuse it when expired (warning when close).
pub async fn certificate(certs: &CertOptions, target: &ClusterTarget) -> Result<Certificate, SealError> {
    let cert = source::load(certs, target).await?;
    cert.usable()?;
    Ok(cert)
}

/// Run `raw`: one value (stdin or `--from-file`) → the bare base64 string, no newline.
pub async fn raw(
    options: &RawOptions,
    certs: &CertOptions,
    target: &ClusterTarget,
) -> Result<String, SealError> {
    let scope = options.scope;
    let namespace = options.namespace.clone().unwrap_or_default();
    let name = options.name.clone().unwrap_or_default();
    if scope != Scope::ClusterWide && namespace.is_empty() {
        return Err(SealError::Usage(format!(
            "must provide the --namespace flag with raw and --scope {scope}"
        )));
    }
    if scope == Scope::Strict && name.is_empty() {
        return Err(SealError::Usage(
            "must provide the --name flag with raw and --scope strict".into(),
        ));
    }
    // Checked by the API server's rules: a label for a name no Secret can have opens nowhere.
    if options.namespace.is_some() {
        shared::names::validate_namespace("namespace", &namespace).map_err(|error| SealError::Name {
            origin: "-n/--namespace",
            error,
        })?;
    }
    if options.name.is_some() {
        shared::names::validate_object_name("Secret", &name).map_err(|error| SealError::Name {
            origin: "--name",
            error,
        })?;
    }
    let path = options.from_file.clone().unwrap_or_else(|| PathBuf::from("-"));
    let value = read_path(&path)?;
    let origin = if path.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    if value.len() > MAX_SECRET_BYTES {
        return Err(too_large(
            &format!("the value on {origin} holds {}", size(value.len())),
            None,
        ));
    }
    if value.is_empty() && !options.allow_empty {
        return Err(SealError::Usage(format!(
            "no value on {origin}: pipe the value in (printf '%s' VALUE | …), or pass --allow-empty-data to seal an empty value"
        )));
    }
    if value.ends_with(b"\n") && path.as_os_str() == "-" {
        tracing::warn!(
            "the value on stdin ends with a newline, which is sealed too; use printf '%s' or echo -n if unintended"
        );
    }
    let cert = certificate(certs, target).await?;
    let sealed = cert
        .sealer()
        .seal(&scope.label(&namespace, &name), &value)
        .map_err(|error| ManifestError::Seal {
            key: "(raw)".into(),
            error,
        })?;
    Ok(STANDARD.encode(sealed))
}

/// Run `fetch-cert`: the certificate's PEM text as read (cached per context when it came from the cluster).
/// An expired or soon-expiring certificate is printed with a warning.
pub async fn fetch_cert(certs: &CertOptions, target: &ClusterTarget) -> Result<String, SealError> {
    let cert = source::load(certs, target).await?;
    if let Err(err) = cert.usable() {
        tracing::warn!("{err}");
    }
    Ok(cert.pem().to_string())
}

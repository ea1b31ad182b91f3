//! `init ENV`: the environment's platform credentials, generated from the catalog `gitops/secrets.yml` and
//! sealed into `helm/secrets/sealed/<env>/<secret>.yml`, one SealedSecret per file (secrets in a fixed
//! namespace go to `helm/secrets/sealed/shared/<secret>.yml`, shared by all environments).
//!
//! Keys already sealed are kept byte-for-byte unless named in `--rotate`; `generate: password` keys get
//! fresh alphanumeric passwords from the OS RNG; `value:` keys are sealed as given; `prompt:` keys come from
//! `--from-env-file` or a hidden prompt. Everything is checked and sealed before the first file is
//! written; plaintext never touches the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rand::TryRngCore;
use rand::distr::{Alphanumeric, Distribution};
use serde::{Deserialize, Serialize};

use crate::cli::{CertOptions, InitOptions};
use crate::files::write_file;
use crate::format::Scope;
use crate::input::{self, InputError};
use crate::manifest::{DocFormat, ManifestError, SealedFile, SecretInput, check_key, render, seal_secret};
use crate::seal::{SealError, certificate};
use shared::cluster::ClusterTarget;
use shared::confirm::{self, ConfirmError, Confirmation};
use shared::environment::{Environment, EnvironmentError};
use shared::fsio::{CONFIG_FILE_LIMIT, FsError, Mode};
use shared::names::{is_dns1123_label, is_dns1123_subdomain};
use shared::paths::{SEALED_DIR, SECRET_CATALOG_FILE as CATALOG, SHARED_SEALED};
use shared::repo::Repo;

/// Password length when the catalog gives none.
pub const DEFAULT_PASSWORD_LENGTH: usize = 32;

/// Errors of `init`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The catalog is missing or unreadable.
    #[error(transparent)]
    ReadCatalog(FsError),
    /// The catalog is malformed.
    #[error("invalid secrets catalog {path}: {message}")]
    Catalog {
        /// The file.
        path: PathBuf,
        /// What is wrong (field and rule).
        message: String,
    },
    /// `--rotate` names nothing in the catalog.
    #[error("--rotate {spec}: no such key in {CATALOG} for this environment; known keys: {known}")]
    UnknownRotate {
        /// What was given.
        spec: String,
        /// `secret/key` list.
        known: String,
    },
    /// An existing file belongs to another secret.
    #[error(
        "{path} holds SealedSecret {found} but the catalog wants {wanted}; move the file away or fix {CATALOG}"
    )]
    Conflict {
        /// The file.
        path: PathBuf,
        /// What the file holds.
        found: String,
        /// What the catalog says.
        wanted: String,
    },
    /// A `prompt` key without a value and no terminal.
    #[error(
        "{secret}/{key} needs a value ({prompt}) and there is no terminal to ask on; pass it in --from-env-file \
         as {secret}/{key}=VALUE (or {key}=VALUE)"
    )]
    MissingValue {
        /// Secret name.
        secret: String,
        /// Key.
        key: String,
        /// The catalog's prompt text.
        prompt: String,
    },
    /// An env-file key that names no prompt key.
    #[error("{origin}: `{key}` is not a `prompt` key of {CATALOG}; prompt keys: {known}")]
    UnknownValue {
        /// File and line.
        origin: String,
        /// The key given.
        key: String,
        /// Known prompt keys.
        known: String,
    },
    /// Environment problems.
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
    /// Value input problems.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Existing file problems.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Certificate or sealing problems.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The prod guard said no.
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    /// Writing failed, or the path is a symlink or special file a write would replace.
    #[error(transparent)]
    Write(#[from] FsError),
}

/// `gitops/secrets.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretCatalog {
    /// Secrets this tool seals.
    pub secrets: Vec<CatalogSecret>,
    /// Secrets operators create themselves (never sealed here; listed for the audit and the docs).
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "parsed so the whole file is checked (deny_unknown_fields); init seals none"
    )]
    pub operator_created: Vec<serde_json::Value>,
}

/// One Secret of the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSecret {
    /// Secret name.
    pub name: String,
    /// `env` (the environment's namespace) or a fixed namespace.
    pub namespace: String,
    /// Secret type.
    #[serde(default, rename = "type")]
    pub secret_type: Option<String>,
    /// Sealing scope (default strict).
    #[serde(default)]
    pub scope: Option<String>,
    /// Keys and where their values come from.
    pub keys: BTreeMap<String, KeySpec>,
}

/// Where one key's value comes from: exactly one of `generate`, `value`, `prompt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// `password`: a random alphanumeric string.
    #[serde(default)]
    pub generate: Option<String>,
    /// Length for `generate`.
    #[serde(default)]
    pub length: Option<usize>,
    /// A fixed, non-secret value (a user name, a database name).
    #[serde(default)]
    pub value: Option<String>,
    /// Ask the user, with this text.
    #[serde(default)]
    pub prompt: Option<String>,
}

impl SecretCatalog {
    /// Read and check the catalog of a repository.
    pub fn load(repo: &Repo) -> Result<Self, InitError> {
        let path = repo.secret_catalog_file();
        let text = shared::fsio::read_to_string_bounded(&path, CONFIG_FILE_LIMIT, "the secrets catalog")
            .map_err(InitError::ReadCatalog)?;
        Self::parse(&text, &path)
    }

    /// Parse and check catalog text; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InitError> {
        let bad = |message: String| InitError::Catalog {
            path: path.to_path_buf(),
            message,
        };
        let catalog: SecretCatalog =
            serde_saphyr::from_str(text).map_err(|err| bad(shared::yaml_error::describe(&err)))?;
        let mut names = BTreeSet::new();
        for (index, secret) in catalog.secrets.iter().enumerate() {
            let at = format!("secrets[{index}]");
            if !is_dns1123_subdomain(&secret.name) {
                return Err(bad(format!(
                    "{at}.name `{}` is not a valid Secret name (lowercase DNS subdomain)",
                    secret.name
                )));
            }
            if !names.insert((secret.namespace.clone(), secret.name.clone())) {
                return Err(bad(format!("{at}: secret `{}` is listed twice", secret.name)));
            }
            if secret.namespace != "env" && !is_dns1123_label(&secret.namespace) {
                return Err(bad(format!(
                    "{at}.namespace `{}` is neither `env` nor a namespace name",
                    secret.namespace
                )));
            }
            if let Some(scope) = &secret.scope {
                scope
                    .parse::<Scope>()
                    .map_err(|problem| bad(format!("{at}.scope: {problem}")))?;
            }
            if secret.keys.is_empty() {
                return Err(bad(format!("{at}.keys: secret `{}` has no keys", secret.name)));
            }
            for (key, spec) in &secret.keys {
                let field = format!("{at}.keys.{key}");
                check_key(key).map_err(|problem| bad(format!("{field}: {problem}")))?;
                let sources = [
                    spec.generate.is_some(),
                    spec.value.is_some(),
                    spec.prompt.is_some(),
                ];
                if sources.iter().filter(|set| **set).count() != 1 {
                    return Err(bad(format!(
                        "{field}: give exactly one of `generate`, `value`, `prompt`"
                    )));
                }
                if let Some(kind) = &spec.generate
                    && kind != "password"
                {
                    return Err(bad(format!(
                        "{field}.generate: `{kind}` is not supported (use `password`)"
                    )));
                }
                match spec.length {
                    Some(_) if spec.generate.is_none() => {
                        return Err(bad(format!("{field}.length: only applies to `generate`")));
                    }
                    Some(length) if !(16..=256).contains(&length) => {
                        return Err(bad(format!("{field}.length: {length} is outside 16..=256")));
                    }
                    _ => {}
                }
            }
        }
        Ok(catalog)
    }
}

/// What happened to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Sealed value kept as it was.
    Kept,
    /// New random value.
    Generated,
    /// Replaced by a new random value (`--rotate`).
    Rotated,
    /// Sealed from the catalog's fixed value or the user's input.
    Set,
    /// In the file but not in the catalog: kept.
    KeptUnlisted,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Kept => "kept",
            Action::Generated => "generated",
            Action::Rotated => "rotated",
            Action::Set => "set",
            Action::KeptUnlisted => "kept (not in catalog)",
        })
    }
}

/// One report line.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    /// The file, relative to the repository.
    pub file: String,
    /// The key.
    pub key: String,
    /// What happened.
    pub action: Action,
}

/// What `init` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InitReport {
    /// One row per key.
    pub rows: Vec<ReportRow>,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// A planned file: what to seal and how to write it.
struct Plan {
    path: PathBuf,
    relative: String,
    existing: Option<SealedFile>,
    secret: SecretInput,
    scope: Scope,
}

/// Run `init` for one environment; `yes` is `--yes`, the prod guard's answer for `--rotate`.
pub async fn run(
    repo: &Repo,
    options: &InitOptions,
    yes: bool,
    certs: &CertOptions,
    target: &ClusterTarget,
) -> Result<InitReport, InitError> {
    let env = Environment::load(repo, &options.env)?;
    let catalog = SecretCatalog::load(repo)?;
    let rotate = rotate_set(&catalog, &options.rotate)?;
    if !rotate.is_empty() {
        confirm::guard(&env, "rotate sealed credentials", yes, Confirmation::YesNo)?;
    }
    let mut provided = provided_values(&catalog, &options.env_files)?;
    // Temporaries of a run that was killed (SIGKILL: no cleanup could run) go before anything is written.
    for dir in [repo.sealed_env_dir(&env.name), repo.shared_sealed_dir()] {
        let removed = shared::fsio::remove_stale_temporaries(&dir);
        if removed > 0 {
            tracing::info!(
                "removed {removed} temporary file(s) of an interrupted run in {}",
                dir.display()
            );
        }
    }

    let mut plans = Vec::new();
    let mut report = InitReport::default();
    for entry in &catalog.secrets {
        let namespace = if entry.namespace == "env" {
            env.namespace.clone()
        } else {
            entry.namespace.clone()
        };
        let scope = entry
            .scope
            .as_deref()
            .and_then(|s| s.parse::<Scope>().ok())
            .unwrap_or_default();
        // Fixed namespaces are shared by every environment: one file under `shared/`.
        let (dir, dir_path) = if entry.namespace == "env" {
            (env.name.as_str(), repo.sealed_env_dir(&env.name))
        } else {
            (SHARED_SEALED, repo.shared_sealed_dir())
        };
        let relative = format!("{SEALED_DIR}/{dir}/{}.yml", entry.name);
        let path = dir_path.join(format!("{}.yml", entry.name));
        let existing =
            match shared::fsio::read_to_string_bounded(&path, input::INPUT_FILE_LIMIT, "sealed secret") {
                Ok(text) => Some(SealedFile::parse(&text, &relative)?),
                Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => return Err(InputError::from(err).into()),
            };
        if let Some(file) = &existing
            && (file.name != entry.name || file.namespace != namespace || file.scope != scope)
        {
            return Err(InitError::Conflict {
                path: path.clone(),
                found: format!("{}/{} ({})", file.namespace, file.name, file.scope),
                wanted: format!("{namespace}/{} ({scope})", entry.name),
            });
        }
        let mut secret = SecretInput {
            name: entry.name.clone(),
            namespace,
            secret_type: entry.secret_type.clone(),
            ..SecretInput::default()
        };
        for (key, spec) in &entry.keys {
            let present = existing
                .as_ref()
                .is_some_and(|file| file.encrypted(key).is_some());
            let rotating = rotate.contains(&(entry.name.clone(), key.clone()));
            let action = match (present, rotating) {
                (true, false) => Action::Kept,
                (true, true) => Action::Rotated,
                (false, _) if spec.generate.is_some() => Action::Generated,
                (false, _) => Action::Set,
            };
            if action != Action::Kept {
                let value = if spec.generate.is_some() {
                    password(spec.length.unwrap_or(DEFAULT_PASSWORD_LENGTH)).into_bytes()
                } else if let Some(value) = &spec.value {
                    value.clone().into_bytes()
                } else {
                    let text = spec.prompt.clone().unwrap_or_default();
                    match take_provided(&mut provided, &entry.name, key) {
                        Some(value) => value,
                        None if input::can_prompt() => {
                            input::prompt_hidden(key, &format!("{}/{key}: {text} (hidden)", entry.name))?
                                .into_bytes()
                        }
                        None => {
                            return Err(InitError::MissingValue {
                                secret: entry.name.clone(),
                                key: key.clone(),
                                prompt: text,
                            });
                        }
                    }
                };
                secret.items.insert(key.clone(), value);
            }
            report.rows.push(ReportRow {
                file: relative.clone(),
                key: key.clone(),
                action,
            });
        }
        for key in existing.iter().flat_map(SealedFile::keys) {
            if !entry.keys.contains_key(&key) {
                tracing::warn!("{relative}: key `{key}` is not in {CATALOG}; kept");
                report.rows.push(ReportRow {
                    file: relative.clone(),
                    key,
                    action: Action::KeptUnlisted,
                });
            }
        }
        plans.push(Plan {
            path,
            relative,
            existing,
            secret,
            scope,
        });
    }

    if plans.iter().all(|plan| plan.secret.items.is_empty()) {
        return Ok(report);
    }
    let cert = certificate(certs, target).await?;
    let sealer = cert.sealer();
    let mut outputs = Vec::new();
    for plan in &plans {
        if plan.secret.items.is_empty() {
            continue;
        }
        let doc = seal_secret(&plan.secret, plan.scope, &sealer)?;
        let text = match &plan.existing {
            None => render(&[doc], DocFormat::Yaml),
            Some(file) => {
                let updates: BTreeMap<String, String> = doc["spec"]["encryptedData"]
                    .as_object()
                    .map(|map| {
                        map.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                file.merged_text(&updates, None)
            }
        };
        outputs.push((plan.path.clone(), plan.relative.clone(), text));
    }
    for (path, relative, text) in outputs {
        write_file(&path, text.as_bytes(), Mode::Secret, "sealed secret")?;
        report.written.push(PathBuf::from(relative));
    }
    Ok(report)
}

/// `(secret, key)` pairs named by `--rotate KEY` or `--rotate SECRET/KEY`.
fn rotate_set(catalog: &SecretCatalog, specs: &[String]) -> Result<BTreeSet<(String, String)>, InitError> {
    let all: Vec<(String, String)> = catalog
        .secrets
        .iter()
        .flat_map(|secret| secret.keys.keys().map(|key| (secret.name.clone(), key.clone())))
        .collect();
    let mut set = BTreeSet::new();
    for spec in specs {
        let matched: Vec<_> = all
            .iter()
            .filter(|(secret, key)| match spec.split_once('/') {
                Some((s, k)) => s == secret && k == key,
                None => spec == key,
            })
            .cloned()
            .collect();
        if matched.is_empty() {
            let known: Vec<String> = all
                .iter()
                .map(|(secret, key)| format!("{secret}/{key}"))
                .collect();
            return Err(InitError::UnknownRotate {
                spec: spec.clone(),
                known: known.join(", "),
            });
        }
        set.extend(matched);
    }
    Ok(set)
}

/// Values for prompt keys from `--from-env-file`, keyed `secret/key` or `key`.
fn provided_values(
    catalog: &SecretCatalog,
    paths: &[PathBuf],
) -> Result<BTreeMap<String, Vec<u8>>, InitError> {
    let prompt_keys: Vec<(String, String)> = catalog
        .secrets
        .iter()
        .flat_map(|secret| {
            secret
                .keys
                .iter()
                .filter(|(_, spec)| spec.prompt.is_some())
                .map(|(key, _)| (secret.name.clone(), key.clone()))
        })
        .collect();
    let mut values = BTreeMap::new();
    for path in paths {
        for (key, value, origin) in input::read_env_file(path)? {
            let known = prompt_keys
                .iter()
                .any(|(secret, name)| key == *name || key == format!("{secret}/{name}"));
            if !known {
                let known: Vec<String> = prompt_keys
                    .iter()
                    .map(|(secret, key)| format!("{secret}/{key}"))
                    .collect();
                return Err(InitError::UnknownValue {
                    origin,
                    key,
                    known: known.join(", "),
                });
            }
            values.insert(key, value);
        }
    }
    Ok(values)
}

fn take_provided(provided: &mut BTreeMap<String, Vec<u8>>, secret: &str, key: &str) -> Option<Vec<u8>> {
    provided
        .remove(&format!("{secret}/{key}"))
        .or_else(|| provided.get(key).cloned())
}

/// A random alphanumeric password from the operating system's RNG (about 5.95 bits per character).
pub fn password(length: usize) -> String {
    let mut rng = rand::rngs::OsRng.unwrap_err();
    Alphanumeric
        .sample_iter(&mut rng)
        .take(length)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG_TEXT: &str = "secrets:\n- name: postgres-app\n  namespace: env\n  type: kubernetes.io/basic-auth\n  keys:\n    \
        username: {value: app}\n    password: {generate: password, length: 24}\n- name: smtp\n  namespace: mail\n  keys:\n    \
        password: {prompt: SMTP relay password}\noperator_created: [database-app]\n";

    #[test]
    fn parses_the_catalog_schema() {
        let catalog = SecretCatalog::parse(CATALOG_TEXT, Path::new("secrets.yml")).unwrap();
        assert_eq!(catalog.secrets.len(), 2);
        assert_eq!(catalog.secrets[0].keys["password"].length, Some(24));
    }

    #[test]
    fn catalog_mistakes_name_the_field() {
        let cases = [
            (
                CATALOG_TEXT.replace("{value: app}", "{value: app, prompt: x}"),
                "secrets[0].keys.username: give exactly one",
            ),
            (
                CATALOG_TEXT.replace("generate: password", "generate: uuid"),
                "`uuid` is not supported",
            ),
            (
                CATALOG_TEXT.replace("length: 24", "length: 4"),
                "outside 16..=256",
            ),
            (
                CATALOG_TEXT.replace("namespace: mail", "namespace: Mail_x"),
                "secrets[1].namespace",
            ),
            (
                CATALOG_TEXT.replace("username:", "user name:"),
                "key `user name` is not allowed",
            ),
            (CATALOG_TEXT.replace("type:", "typo:"), "typo"),
        ];
        for (text, expected) in cases {
            let err = SecretCatalog::parse(&text, Path::new("secrets.yml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn the_repository_catalog_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(CATALOG);
        let text = std::fs::read_to_string(&path).unwrap();
        let catalog = SecretCatalog::parse(&text, &path).unwrap();
        assert!(catalog.secrets.iter().any(|secret| secret.namespace == "env"));
    }

    #[test]
    fn passwords_are_alphanumeric_and_distinct() {
        let a = password(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, password(32));
    }

    #[test]
    fn rotate_accepts_key_or_secret_slash_key() {
        let catalog = SecretCatalog::parse(CATALOG_TEXT, Path::new("s.yml")).unwrap();
        let set = rotate_set(&catalog, &["password".into()]).unwrap();
        assert_eq!(set.len(), 2);
        let set = rotate_set(&catalog, &["smtp/password".into()]).unwrap();
        assert_eq!(set.len(), 1);
        let err = rotate_set(&catalog, &["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("postgres-app/password"), "{err}");
    }
}

//! Phase 4, secrets: the environment's SealedSecrets from `helm/secrets/sealed/<env>/*.yml`, applied so
//! they exist before the applications that read them (Argo CD's `<env>-secrets` Application keeps them in
//! sync afterwards).
//!
//! No files means `kubectl duli secrets init ENV` has not been run: the phase stops with that pointer rather
//! than deploying applications that would crash-loop on missing Secrets. A SealedSecret sealed for another
//! namespace is refused here, because the controller could never decrypt it in this one.

use std::path::{Path, PathBuf};

use kube::api::DynamicObject;

use shared::environment::Environment;
use shared::repo::Repo;

/// Problems with the environment's SealedSecrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    /// There are none.
    #[error(
        "no SealedSecrets for `{env}` in {}: run `kubectl duli secrets init {env}` to generate and seal them \
         (then commit them), and re-run `kubectl duli env up {env}`",
        dir.display()
    )]
    None {
        /// The environment.
        env: String,
        /// The directory searched.
        dir: PathBuf,
    },
    /// A file is not a usable SealedSecret.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
}

/// The environment's SealedSecrets, or why there are none.
#[derive(Debug, Clone)]
pub struct SealedSecrets {
    /// The directory they come from.
    pub dir: PathBuf,
    /// The objects (namespace filled in), or the problem.
    pub objects: Result<Vec<DynamicObject>, SecretsError>,
}

/// Read `helm/secrets/sealed/<env>/*.yml`.
pub fn load(repo: &Repo, env: &Environment) -> SealedSecrets {
    let dir = repo.sealed_env_dir(&env.name);
    let objects = read_dir(&dir, env);
    SealedSecrets { dir, objects }
}

fn read_dir(dir: &Path, env: &Environment) -> Result<Vec<DynamicObject>, SecretsError> {
    let none = || SecretsError::None {
        env: env.name.clone(),
        dir: dir.to_path_buf(),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|_| none())?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !name.starts_with('.') && (name.ends_with(".yml") || name.ends_with(".yaml"))
        })
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for path in files {
        let invalid = |problem: String| SecretsError::Invalid {
            path: path.clone(),
            problem,
        };
        let text =
            shared::fsio::read_to_string_bounded(&path, shared::fsio::CONFIG_FILE_LIMIT, "sealed secret")
                .map_err(|err| invalid(err.to_string()))?;
        let documents: Vec<DynamicObject> = serde_saphyr::from_str_multiple(&text)
            .map_err(|err| invalid(format!("not valid YAML: {}", shared::yaml_error::describe(&err))))?;
        for mut object in documents {
            let kind = object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default();
            if kind != "SealedSecret" {
                return Err(invalid(format!(
                    "holds a {kind}, not a SealedSecret; only sealed files belong here"
                )));
            }
            match object.metadata.namespace.as_deref() {
                None => object.metadata.namespace = Some(env.namespace.clone()),
                Some(namespace) if namespace == env.namespace => {}
                Some(other) => {
                    return Err(invalid(format!(
                        "is sealed for namespace `{other}`, but `{}` deploys to `{}`: re-seal it with `kubectl duli secrets init {}`",
                        env.name, env.namespace, env.name
                    )));
                }
            }
            objects.push(object);
        }
    }
    if objects.is_empty() {
        Err(none())
    } else {
        Ok(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        let repo = Repo::at(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()).unwrap();
        Environment::load(&repo, "staging").unwrap()
    }

    const SEALED: &str = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: redis-secret\n  namespace: staging\nspec:\n  encryptedData:\n    password: AgBx\n";

    #[test]
    fn empty_directory_points_at_secrets_init() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitkeep"), "").unwrap();
        let err = read_dir(dir.path(), &env()).unwrap_err().to_string();
        assert!(err.contains("kubectl duli secrets init staging"), "{err}");
    }

    #[test]
    fn sealed_files_load_and_other_namespaces_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis-secret.yml"), SEALED).unwrap();
        let objects = read_dir(dir.path(), &env()).unwrap();
        assert_eq!(objects.len(), 1);
        std::fs::write(
            dir.path().join("other.yml"),
            SEALED.replace("namespace: staging", "namespace: prod"),
        )
        .unwrap();
        let err = read_dir(dir.path(), &env()).unwrap_err().to_string();
        assert!(err.contains("sealed for namespace `prod`"), "{err}");
    }
}

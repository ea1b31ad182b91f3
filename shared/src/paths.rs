//! Every path of the repository layout, named once: relative consts for messages and docs, and methods on
//! [`Repo`] for the absolute paths.
//!
//! ```text
//! helm/                              CHARTS_DIR        charts, one directory each (Chart.yaml)
//! helm/<chart>/values-<env>.yml      Repo::env_values_file
//! helm/secrets/sealed/<env>/*.yml    SEALED_DIR        SealedSecrets per environment (+ `shared/`)
//! gitops/                            GITOPS_DIR
//! gitops/environments/<env>.yml      ENVIRONMENTS_DIR  the environments
//! gitops/applications/*.yml.j2       APPLICATIONS_DIR  ArgoCD Application templates
//! gitops/platform.yml                PLATFORM_CATALOG_FILE
//! gitops/secrets.yml                 SECRET_CATALOG_FILE
//! ```

use std::path::PathBuf;

use crate::repo::Repo;

/// `helm/`: the charts.
pub const CHARTS_DIR: &str = "helm";
/// `gitops/`: ArgoCD templates and environment data.
pub const GITOPS_DIR: &str = "gitops";
/// `gitops/environments/`: one `<env>.yml` per environment.
pub const ENVIRONMENTS_DIR: &str = "gitops/environments";
/// Extension of environment files.
pub const ENVIRONMENT_EXTENSION: &str = "yml";
/// `gitops/applications/`: `<component>.yml.j2` ArgoCD Application templates.
pub const APPLICATIONS_DIR: &str = "gitops/applications";
/// Suffix of Application templates (the component is the file name without it).
pub const APPLICATION_TEMPLATE_SUFFIX: &str = ".yml.j2";
/// `gitops/platform.yml`: the platform catalog (operators and platform charts).
pub const PLATFORM_CATALOG_FILE: &str = "gitops/platform.yml";
/// `gitops/secrets.yml`: the secret catalog (which Secrets each environment has).
pub const SECRET_CATALOG_FILE: &str = "gitops/secrets.yml";
/// `helm/secrets/sealed/`: SealedSecrets, one directory per environment.
pub const SEALED_DIR: &str = "helm/secrets/sealed";
/// The sealed directory shared by all environments (`helm/secrets/sealed/shared`).
pub const SHARED_SEALED: &str = "shared";
/// A chart's manifest file.
pub const CHART_FILE: &str = "Chart.yaml";
/// A chart's default values.
pub const CHART_VALUES_FILE: &str = "values.yaml";
/// A chart's vendored dependencies.
pub const CHART_VENDOR_DIR: &str = "charts";
/// The parts whose presence makes a directory a repository, in the order they are checked.
pub const REPO_MARKERS: [&str; 2] = [CHARTS_DIR, ENVIRONMENTS_DIR];

impl Repo {
    /// `gitops/environments/`.
    pub fn environments_dir(&self) -> PathBuf {
        self.root().join(ENVIRONMENTS_DIR)
    }

    /// `gitops/environments/<env>.yml`.
    pub fn environment_file(&self, env: &str) -> PathBuf {
        self.environments_dir()
            .join(format!("{env}.{ENVIRONMENT_EXTENSION}"))
    }

    /// `gitops/applications/`.
    pub fn applications_dir(&self) -> PathBuf {
        self.root().join(APPLICATIONS_DIR)
    }

    /// `gitops/platform.yml`.
    pub fn platform_catalog_file(&self) -> PathBuf {
        self.root().join(PLATFORM_CATALOG_FILE)
    }

    /// `gitops/secrets.yml`.
    pub fn secret_catalog_file(&self) -> PathBuf {
        self.root().join(SECRET_CATALOG_FILE)
    }

    /// `helm/secrets/sealed/`.
    pub fn sealed_dir(&self) -> PathBuf {
        self.root().join(SEALED_DIR)
    }

    /// `helm/secrets/sealed/<env>/` (`shared` for the shared directory).
    pub fn sealed_env_dir(&self, env: &str) -> PathBuf {
        self.sealed_dir().join(env)
    }

    /// `helm/secrets/sealed/shared/`.
    pub fn shared_sealed_dir(&self) -> PathBuf {
        self.sealed_env_dir(SHARED_SEALED)
    }

    /// `helm/<chart>/`.
    pub fn chart_dir(&self, chart: &str) -> PathBuf {
        self.charts_dir().join(chart)
    }

    /// The environment's values file of a chart directory: `values-<env>.yml`, else `values-<env>.yaml`,
    /// if one exists.
    pub fn env_values_file(chart_dir: &std::path::Path, env: &str) -> Option<PathBuf> {
        ["yml", "yaml"]
            .iter()
            .map(|ext| chart_dir.join(format!("values-{env}.{ext}")))
            .find(|path| path.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, Repo) {
        let tmp = tempfile::tempdir().unwrap();
        for marker in REPO_MARKERS {
            std::fs::create_dir_all(tmp.path().join(marker)).unwrap();
        }
        let repo = Repo::at(tmp.path()).unwrap();
        (tmp, repo)
    }

    #[test]
    fn every_path_is_under_the_root_where_the_layout_says() {
        let (_tmp, repo) = repo();
        let rel = |path: PathBuf| {
            path.strip_prefix(repo.root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(
            rel(repo.environment_file("staging")),
            "gitops/environments/staging.yml"
        );
        assert_eq!(rel(repo.applications_dir()), "gitops/applications");
        assert_eq!(rel(repo.platform_catalog_file()), "gitops/platform.yml");
        assert_eq!(rel(repo.secret_catalog_file()), "gitops/secrets.yml");
        assert_eq!(rel(repo.sealed_env_dir("prod")), "helm/secrets/sealed/prod");
        assert_eq!(rel(repo.shared_sealed_dir()), "helm/secrets/sealed/shared");
        assert_eq!(rel(repo.chart_dir("backend")), "helm/backend");
        assert_eq!(rel(repo.charts_dir()), CHARTS_DIR);
        assert_eq!(rel(repo.gitops_dir()), GITOPS_DIR);
    }

    #[test]
    fn the_real_repository_has_this_layout() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let repo = Repo::at(&root).unwrap();
        for file in [
            repo.environment_file("staging"),
            repo.platform_catalog_file(),
            repo.secret_catalog_file(),
        ] {
            assert!(file.is_file(), "{}", file.display());
        }
        for dir in [
            repo.applications_dir(),
            repo.sealed_env_dir("staging"),
            repo.shared_sealed_dir(),
        ] {
            assert!(dir.is_dir(), "{}", dir.display());
        }
        assert!(repo.chart_dir("secrets").join(CHART_FILE).is_file());
    }

    #[test]
    fn values_files_prefer_yml() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Repo::env_values_file(tmp.path(), "staging"), None);
        std::fs::write(tmp.path().join("values-staging.yaml"), "").unwrap();
        assert!(
            Repo::env_values_file(tmp.path(), "staging")
                .unwrap()
                .ends_with("values-staging.yaml")
        );
        std::fs::write(tmp.path().join("values-staging.yml"), "").unwrap();
        assert!(
            Repo::env_values_file(tmp.path(), "staging")
                .unwrap()
                .ends_with("values-staging.yml")
        );
    }
}

//! What `up` would apply, computed from the repository alone (no cluster): the namespaces, the
//! environment's SealedSecrets, the AppProjects and Applications rendered from `gitops/applications` with
//! the same renderer as `helm duli-render`, grouped into components and sync waves, and the platform charts.
//!
//! `plan`, `up`, `status`, `down` and `list` all start here, so they agree on what belongs to an environment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use serde::Serialize;

use crate::platform::{self, PlatformCatalog, PlatformChart};
use crate::secrets::{self, SealedSecrets};
use shared::environment::Environment;
use shared::repo::Repo;

/// The label naming an Application's component.
pub const COMPONENT_LABEL: &str = "duli.one/component";
/// The label saying whether an Application is shared by all environments or belongs to one.
pub const SCOPE_LABEL: &str = "duli.one/scope";
/// The label naming an Application's environment (the descriptor's too).
pub use shared::descriptor::ENVIRONMENT_LABEL;
/// The label saying which tool created an object outside Argo CD (value `duli`, `namespaces::MANAGED_BY`).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Argo CD's sync-wave annotation (a string holding an integer, default 0).
pub const WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

/// Errors computing the desired state.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    /// Rendering `gitops/applications` failed.
    #[error("cannot render gitops/applications for `{env}`: {source}")]
    Render {
        /// The environment.
        env: String,
        /// The renderer's error (template, line, message).
        #[source]
        source: helm_duli_render::gitops::GitopsError,
    },
    /// A rendered object is not what `up` can apply.
    #[error("{file}: {problem}")]
    Invalid {
        /// The template.
        file: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The platform catalog could not be read.
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    /// A chart mirror (`--chart-mirror`, `DULI_CHART_MIRRORS`, `chart_mirrors`) is invalid.
    #[error(transparent)]
    Mirror(#[from] helm_duli_render::deps::MirrorError),
}

/// Whether a component is shared by all environments or belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Shared operators and platform pieces (no environment prefix, AppProject `platform`).
    Shared,
    /// One environment's instances and applications (`<env>-<component>`).
    Environment,
}

/// One component: an Argo CD Application and where it deploys.
#[derive(Debug, Clone)]
pub struct Component {
    /// `duli.one/component` (e.g. `postgres-instance`).
    pub name: String,
    /// The Application's name (e.g. `staging-postgres-instance`).
    pub app: String,
    /// Shared or per environment.
    pub scope: Scope,
    /// The sync wave.
    pub wave: i32,
    /// `spec.destination.namespace`.
    pub destination: String,
    /// The Helm release name Argo CD uses (`spec.source.helm.releaseName`, else the Application's name).
    pub release: String,
    /// The template it was rendered from.
    pub file: String,
    /// The Application object.
    pub object: DynamicObject,
}

/// Everything `up` would apply to one environment.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The environment.
    pub env: Environment,
    /// The environment namespace and the system namespaces.
    pub namespaces: Vec<DynamicObject>,
    /// The environment's SealedSecrets (or where they should be).
    pub secrets: SealedSecrets,
    /// AppProjects from `gitops/applications`.
    pub projects: Vec<DynamicObject>,
    /// Applications, sorted by wave then name.
    pub components: Vec<Component>,
    /// The platform charts that apply to this environment's provider.
    pub platform: Vec<PlatformChart>,
    /// The platform catalog file.
    pub platform_file: PathBuf,
}

impl Desired {
    /// Compute the desired state of `env`; `platform_file` overrides `gitops/platform.yml`.
    pub fn load(repo: &Repo, env: &Environment, platform_file: Option<&Path>) -> Result<Self, DesiredError> {
        let platform_file = platform_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo.platform_catalog_file());
        let catalog = PlatformCatalog::load(&platform_file)?;
        let platform = catalog.for_provider(&env.provider);
        let (projects, components) = render(repo, env)?;
        let namespaces = crate::namespaces::desired(env, system_namespaces(env, &components, &platform));
        let mut secrets = secrets::load(repo, env);
        if let Ok(objects) = &mut secrets.objects {
            for object in objects {
                stamp_environment(object, env);
            }
        }
        Ok(Desired {
            env: env.clone(),
            namespaces,
            secrets,
            projects,
            components,
            platform,
            platform_file,
        })
    }

    /// Point the platform charts at their mirrors: `--chart-mirror` values, then `DULI_CHART_MIRRORS`, then
    /// the environment file's `chart_mirrors` (the setting `helm duli-render` reads too). An https mirror
    /// becomes `--repo MIRROR`, an `oci://` one the chart reference `MIRROR/CHART`.
    pub fn apply_chart_mirrors(&mut self, flags: &[String]) -> Result<(), DesiredError> {
        let mirrors = helm_duli_render::deps::ChartMirrors::from_flags_env_and_file(
            flags,
            &self.env.chart_mirrors,
            &self.env.source,
        )?;
        for chart in &mut self.platform {
            if !chart.is_local() {
                chart.repo = mirrors.apply(&chart.repo);
            }
        }
        Ok(())
    }

    /// The components of this environment only (not the shared ones).
    pub fn env_components(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.scope == Scope::Environment)
    }

    /// Components grouped by wave, lowest first.
    pub fn waves(&self) -> Vec<(i32, Vec<&Component>)> {
        waves(self.components.iter())
    }
}

/// Label an object the repository declares for `env` alone (its SealedSecrets) the way the Applications'
/// templates label themselves, so that `up --prune` can tell it apart once the repository drops it.
fn stamp_environment(object: &mut DynamicObject, env: &Environment) {
    let labels = object.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(MANAGED_BY_LABEL.into(), crate::namespaces::MANAGED_BY.into());
    labels.insert(ENVIRONMENT_LABEL.into(), env.name.clone());
    labels.insert(SCOPE_LABEL.into(), "environment".into());
}

/// Group components by wave, lowest first (Argo CD's order), names sorted within a wave.
pub fn waves<'a>(components: impl Iterator<Item = &'a Component>) -> Vec<(i32, Vec<&'a Component>)> {
    let mut by_wave: BTreeMap<i32, Vec<&Component>> = BTreeMap::new();
    for component in components {
        by_wave.entry(component.wave).or_default().push(component);
    }
    by_wave
        .into_iter()
        .map(|(wave, mut list)| {
            list.sort_by(|a, b| a.app.cmp(&b.app));
            (wave, list)
        })
        .collect()
}

/// Render `gitops/applications` for `env` and sort what comes out into AppProjects and components.
pub fn render(repo: &Repo, env: &Environment) -> Result<(Vec<DynamicObject>, Vec<Component>), DesiredError> {
    let rendered = helm_duli_render::gitops::render_all(repo.root(), &env.source).map_err(|source| {
        DesiredError::Render {
            env: env.name.clone(),
            source,
        }
    })?;
    let mut projects = Vec::new();
    let mut components = Vec::new();
    for template in rendered {
        for object in template.objects {
            let invalid = |problem: String| DesiredError::Invalid {
                file: template.file.clone(),
                problem,
            };
            let dynamic: DynamicObject = serde_json::from_value(object.value.clone())
                .map_err(|err| invalid(format!("{} is not a Kubernetes object: {err}", object.id())))?;
            match (object.api_version(), object.kind()) {
                ("argoproj.io/v1alpha1", "AppProject") => projects.push(dynamic),
                ("argoproj.io/v1alpha1", "Application") => {
                    components.push(component(&template.file, dynamic).map_err(invalid)?)
                }
                (api_version, kind) => {
                    return Err(invalid(format!(
                        "{kind} ({api_version}) {}: gitops/applications may hold only Argo CD Applications and AppProjects",
                        object.name()
                    )));
                }
            }
        }
    }
    components.sort_by(|a, b| (a.wave, &a.app).cmp(&(b.wave, &b.app)));
    Ok((projects, components))
}

/// A component from an Application object (rendered or live); `file` names its template.
pub fn component(file: &str, object: DynamicObject) -> Result<Component, String> {
    let app = object.metadata.name.clone().unwrap_or_default();
    let labels = object.metadata.labels.clone().unwrap_or_default();
    let name = labels
        .get(COMPONENT_LABEL)
        .cloned()
        .ok_or_else(|| format!("Application {app} has no label {COMPONENT_LABEL}"))?;
    let scope = match labels.get(SCOPE_LABEL).map(String::as_str) {
        Some("shared") => Scope::Shared,
        Some("environment") => Scope::Environment,
        other => {
            return Err(format!(
                "Application {app}: label {SCOPE_LABEL} must be `shared` or `environment`, not {other:?}"
            ));
        }
    };
    let wave = match object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(WAVE_ANNOTATION))
    {
        None => 0,
        Some(text) => text.trim().parse().map_err(|_| {
            format!("Application {app}: annotation {WAVE_ANNOTATION} is `{text}`, not an integer")
        })?,
    };
    let destination = object
        .data
        .pointer("/spec/destination/namespace")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("Application {app} has no spec.destination.namespace"))?
        .to_string();
    let release = object
        .data
        .pointer("/spec/source/helm/releaseName")
        .and_then(|v| v.as_str())
        .unwrap_or(&app)
        .to_string();
    Ok(Component {
        name,
        app,
        scope,
        wave,
        destination,
        release,
        file: file.to_string(),
        object,
    })
}

/// The shared namespaces `env` needs: Argo CD's, the platform charts', and the shared components'
/// destinations.
fn system_namespaces(
    env: &Environment,
    components: &[Component],
    platform: &[PlatformChart],
) -> BTreeSet<String> {
    let mut system: BTreeSet<String> = BTreeSet::new();
    system.insert(env.gitops.argocd_namespace.clone());
    system.extend(platform.iter().map(|c| c.namespace.clone()));
    system.extend(
        components
            .iter()
            .filter(|c| c.scope == Scope::Shared)
            .map(|c| c.destination.clone()),
    );
    system
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> Repo {
        Repo::at(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()).unwrap()
    }

    #[test]
    fn chart_mirrors_point_platform_charts_at_the_mirror() {
        let repo = repo();
        let mut env = Environment::load(&repo, "staging").unwrap();
        env.provider = "generic".into();
        env.chart_mirrors =
            shared::environment::ChartMirrorEntries::List(vec!["*=http://file.example".into()]);
        let mut desired = Desired::load(&repo, &env, None).unwrap();
        let names: Vec<&str> = desired.platform.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["cert-manager", "sealed-secrets-controller", "argocd"],
            "generic: no DigitalOcean charts"
        );
        desired
            .apply_chart_mirrors(&["https://charts.jetstack.io=oci://127.0.0.1:5000/jetstack".into()])
            .unwrap();
        let repos: Vec<&str> = desired.platform.iter().map(|c| c.repo.as_str()).collect();
        assert_eq!(
            repos,
            [
                "oci://127.0.0.1:5000/jetstack",
                "http://file.example",
                "http://file.example"
            ]
        );
        let err = desired
            .apply_chart_mirrors(&["bad".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--chart-mirror") && err.contains("`bad`"), "{err}");
    }

    #[test]
    fn the_repository_renders_into_waves_of_components() {
        let repo = repo();
        let env = Environment::load(&repo, "staging").unwrap();
        let (_projects, components) = render(&repo, &env).unwrap();
        assert!(!components.is_empty());
        for component in &components {
            if component.scope == Scope::Environment {
                assert!(component.app.starts_with("staging-"), "{}", component.app);
                assert_eq!(component.destination, "staging", "{}", component.app);
            }
        }
        let waves = waves(components.iter());
        let order: Vec<i32> = waves.iter().map(|(wave, _)| *wave).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
    }

    #[test]
    fn shared_components_render_identically_for_both_environments() {
        let repo = repo();
        let shared = |name: &str| {
            let env = Environment::load(&repo, name).unwrap();
            let (_, components) = render(&repo, &env).unwrap();
            components
                .into_iter()
                .filter(|c| c.scope == Scope::Shared)
                .map(|c| serde_json::to_value(&c.object).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(shared("staging"), shared("prod"));
    }

    #[test]
    fn namespaces_env_first_then_system_namespaces_without_kubernetes_ones() {
        let repo = Repo::at(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()).unwrap();
        let env = Environment::load(&repo, "staging").unwrap();
        let (_, components) = render(&repo, &env).unwrap();
        let namespaces = crate::namespaces::desired(&env, system_namespaces(&env, &components, &[]));
        let names: Vec<_> = namespaces
            .iter()
            .map(|n| n.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names[0], "staging");
        assert!(names.contains(&"argocd".to_string()));
        assert!(
            !names.iter().any(|n| n.starts_with("kube-") || n == "prod"),
            "{names:?}"
        );
        let labels = namespaces[0].metadata.labels.clone().unwrap();
        assert_eq!(labels["tier"], "non-production");
        assert_eq!(labels["environment"], "staging");
        let system = namespaces[1].metadata.labels.clone().unwrap();
        assert_eq!(system["environment"], "shared");
    }
}

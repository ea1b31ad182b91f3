//! Phase 2, platform: the shared upstream charts (cert-manager, Argo CD, the sealed-secrets controller and,
//! for provider `digitalocean`, the CSI driver and cloud controller manager) installed with
//! `helm upgrade --install` at the version pinned in `gitops/platform.yml`.
//!
//! A release already deployed at the pinned version with the same values is skipped without running helm
//! for it, so the phase costs one `helm list` (plus one `helm get values` per release) when nothing changed.
//! A release left `pending-*` by a killed run is recovered first (a pending install is uninstalled, a pending
//! upgrade rolled back), which is what makes a killed `up` resumable here too. Provider charts run after the
//! others, once their token Secret is in place.
//!
//! A catalog entry's `repo` may be a local chart directory (absolute, or relative to the catalog file): the
//! tests install small fixture charts through real helm that way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::join_all;
use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::apply::{Applier, ApplyResult, Counts};
use crate::helm::{Helm, HelmError};
use crate::provider::{ProviderSecret, provider_secret};

/// Errors of the platform phase.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The catalog could not be read or parsed.
    #[error("invalid platform catalog {path}: {message}")]
    Catalog {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// helm is not installed.
    #[error(transparent)]
    HelmMissing(#[from] shared::tools::ToolNotFound),
    /// A helm command failed.
    #[error("`{command}` failed: {message}")]
    Helm {
        /// The command line.
        command: String,
        /// helm's error output.
        message: String,
    },
    /// A client flag helm cannot take (the platform phase runs helm).
    #[error("the platform phase runs helm, and {0}")]
    HelmFlags(String),
    /// A provider chart needs a token Secret that is nowhere to be found.
    #[error(
        "Secret {namespace}/{name} (the {provider} API token the {provider} charts read) does not exist: run \
         `kubectl duli secrets init ENV` to seal it into helm/secrets/sealed/shared/{name}.yml, or set {env_var}"
    )]
    TokenMissing {
        /// The provider.
        provider: String,
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The environment variable that may hold the token.
        env_var: String,
    },
    /// Applying the token Secret failed.
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyErrors),
    /// Reading the token Secret failed.
    #[error(transparent)]
    Api(#[from] shared::api::ApiError),
}

impl From<HelmError> for PlatformError {
    fn from(err: HelmError) -> Self {
        match err {
            HelmError::Missing(missing) => PlatformError::HelmMissing(missing),
            HelmError::Failed { command, message } => PlatformError::Helm { command, message },
            HelmError::Flags(message) => PlatformError::HelmFlags(message),
        }
    }
}

/// `gitops/platform.yml`.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformCatalog {
    /// The charts, in install order.
    pub charts: Vec<PlatformChart>,
}

/// One upstream chart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformChart {
    /// The release name.
    pub name: String,
    /// Helm repository URL, `oci://` registry, or a local chart directory.
    pub repo: String,
    /// The chart's name in the repository.
    pub chart: String,
    /// The pinned chart version.
    pub version: String,
    /// The release namespace.
    pub namespace: String,
    /// Providers this chart is limited to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Values passed to helm as a values file.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub values: Value,
    /// The catalog's directory, for local chart paths.
    #[serde(skip)]
    pub base: PathBuf,
}

impl PlatformCatalog {
    /// Read and check a catalog file.
    pub fn load(path: &Path) -> Result<Self, PlatformError> {
        let invalid = |message: String| PlatformError::Catalog {
            path: path.to_path_buf(),
            message,
        };
        let text =
            shared::fsio::read_to_string_bounded(path, shared::fsio::CONFIG_FILE_LIMIT, "platform catalog")
                .map_err(|err| invalid(err.to_string()))?;
        let mut catalog: PlatformCatalog =
            serde_saphyr::from_str(&text).map_err(|err| invalid(shared::yaml_error::describe(&err)))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for (index, chart) in catalog.charts.iter_mut().enumerate() {
            chart.base = base.clone();
            for (field, value) in [
                ("name", &chart.name),
                ("chart", &chart.chart),
                ("namespace", &chart.namespace),
                ("repo", &chart.repo),
            ] {
                if value.trim().is_empty() {
                    return Err(invalid(format!("charts[{index}].{field} is empty")));
                }
            }
            if chart.version.trim().is_empty() && !chart.is_local() {
                return Err(invalid(format!(
                    "charts[{index}] ({}): version must be pinned",
                    chart.name
                )));
            }
            if !(chart.values.is_null() || chart.values.is_object()) {
                return Err(invalid(format!(
                    "charts[{index}] ({}): values must be a mapping",
                    chart.name
                )));
            }
        }
        Ok(catalog)
    }

    /// The charts that apply to `provider`, in catalog order.
    pub fn for_provider(&self, provider: &str) -> Vec<PlatformChart> {
        self.charts
            .iter()
            .filter(|c| c.providers.is_empty() || c.providers.iter().any(|p| p == provider))
            .cloned()
            .collect()
    }
}

impl PlatformChart {
    /// True when `repo` is neither a URL nor an OCI reference: a local chart directory.
    pub fn is_local(&self) -> bool {
        !self.repo.contains("://")
    }

    /// The local chart directory (`repo`, or `repo/chart` when that is the chart).
    pub fn local_dir(&self) -> PathBuf {
        let repo = self.base.join(&self.repo);
        let nested = repo.join(&self.chart);
        if nested.join("Chart.yaml").is_file() {
            nested
        } else {
            repo
        }
    }

    /// True for charts limited to some providers (they need the provider's token Secret).
    pub fn is_provider_chart(&self) -> bool {
        !self.providers.is_empty()
    }

    fn values_or_empty(&self) -> Value {
        if self.values.is_null() {
            json!({})
        } else {
            self.values.clone()
        }
    }
}

/// What the platform phase would do with one chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChartAction {
    /// No release: install.
    Install,
    /// Another version, other values, or a failed release: upgrade.
    Upgrade,
    /// A killed run left the release pending: recover, then install or upgrade.
    Recover,
    /// Deployed at the pinned version with the same values: skip.
    UpToDate,
}

/// The plan for one chart.
#[derive(Debug, Clone, Serialize)]
pub struct ChartPlan {
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
    /// The pinned version.
    pub version: String,
    /// The deployed chart (`name-version`) and status, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed: Option<String>,
    /// What would happen.
    pub action: ChartAction,
    /// Why, in a few words.
    pub reason: String,
}

/// Decide what to do with each chart.
pub async fn plan(helm: &Helm, charts: &[PlatformChart]) -> Result<Vec<ChartPlan>, PlatformError> {
    let releases = helm.releases().await?;
    let plans = charts.iter().map(|chart| async {
        let release = releases
            .iter()
            .find(|r| r.name == chart.name && r.namespace == chart.namespace);
        let deployed = release.map(|r| format!("{} ({})", r.chart, r.status));
        let (action, reason) = match release {
            None => (ChartAction::Install, "not installed".to_string()),
            Some(r) if r.status.starts_with("pending") => (
                ChartAction::Recover,
                format!("left {} by an interrupted run", r.status),
            ),
            Some(r) if r.status != "deployed" => (ChartAction::Upgrade, format!("release is {}", r.status)),
            Some(r) if !chart.version.is_empty() && !r.chart.ends_with(&format!("-{}", chart.version)) => {
                (ChartAction::Upgrade, format!("{} → {}", r.chart, chart.version))
            }
            Some(_) => {
                let live = helm.values(&chart.name, &chart.namespace).await?;
                if live == chart.values_or_empty() {
                    (
                        ChartAction::UpToDate,
                        "at the pinned version with the same values".to_string(),
                    )
                } else {
                    (ChartAction::Upgrade, "values changed".to_string())
                }
            }
        };
        Ok::<_, PlatformError>(ChartPlan {
            name: chart.name.clone(),
            namespace: chart.namespace.clone(),
            version: chart.version.clone(),
            deployed,
            action,
            reason,
        })
    });
    join_all(plans).await.into_iter().collect()
}

/// Install or upgrade one chart (after recovering a pending release).
async fn converge_chart(
    helm: &Helm,
    chart: &PlatformChart,
    plan: &ChartPlan,
    timeout: Duration,
) -> Result<ApplyResult, PlatformError> {
    let name = chart.name.clone();
    let namespace = chart.namespace.clone();
    match plan.action {
        ChartAction::UpToDate => return Ok(ApplyResult::Unchanged),
        ChartAction::Recover
            if plan
                .deployed
                .as_deref()
                .is_some_and(|d| d.contains("pending-install")) =>
        {
            tracing::info!(target: "duli::progress", "platform: {name}: removing the release an interrupted install left behind");
            helm.run(&[
                "uninstall".into(),
                name.clone(),
                "-n".into(),
                namespace.clone(),
                "--ignore-not-found".into(),
            ])
            .await?;
        }
        ChartAction::Recover => {
            tracing::info!(target: "duli::progress", "platform: {name}: rolling back the upgrade an interrupted run left pending");
            helm.run(&["rollback".into(), name.clone(), "-n".into(), namespace.clone()])
                .await?;
        }
        ChartAction::Install | ChartAction::Upgrade => {}
    }
    let mut args: Vec<String> = vec!["upgrade".into(), "--install".into(), name.clone()];
    if chart.is_local() {
        args.push(chart.local_dir().display().to_string());
    } else if chart.repo.starts_with("oci://") {
        args.push(format!("{}/{}", chart.repo.trim_end_matches('/'), chart.chart));
        args.extend(["--version".into(), chart.version.clone()]);
    } else {
        args.push(chart.chart.clone());
        args.extend([
            "--repo".into(),
            chart.repo.clone(),
            "--version".into(),
            chart.version.clone(),
        ]);
    }
    args.extend([
        "--namespace".into(),
        namespace,
        "--create-namespace".into(),
        // Values go in on stdin: no temporary file for a killed run to leave behind.
        "--values".into(),
        "-".into(),
        // `--wait` alone means "wait for resources" in helm 3 and 4 alike (helm 4: the watcher strategy).
        "--wait".into(),
        "--timeout".into(),
        format!("{}s", timeout.as_secs().max(1)),
    ]);
    let values = serde_json::to_vec(&chart.values_or_empty()).unwrap_or_default();
    match helm.run_with_input(&args, Some(values.clone())).await {
        // helm fails loading the chart, before it touches the cluster: trying again is safe.
        Err(HelmError::Failed { message, .. })
            if helm_duli_render::deps::wants_plain_http(&chart.repo, &message) =>
        {
            args.push("--plain-http".into());
            helm.run_with_input(&args, Some(values)).await?;
        }
        result => {
            result?;
        }
    }
    Ok(if plan.action == ChartAction::Install {
        ApplyResult::Created
    } else {
        ApplyResult::Changed
    })
}

/// Make sure the provider's token Secret exists: keep a live one; else apply the sealed one from
/// `helm/secrets/sealed/shared/`; else create it from the token in the environment variable.
pub async fn ensure_provider_secret(
    applier: &Applier,
    secret: &ProviderSecret,
    sealed_dir: &Path,
) -> Result<ApplyResult, PlatformError> {
    if provider_secret_exists(applier, secret).await? {
        return Ok(ApplyResult::Unchanged);
    }
    let object = provider_secret_source(secret, sealed_dir)?;
    let applied = applier.apply_all(std::slice::from_ref(&object), false).await?;
    Ok(applied
        .first()
        .map(|a| a.outcome)
        .unwrap_or(ApplyResult::Unchanged))
}

/// True when the provider's token Secret is in the cluster.
pub async fn provider_secret_exists(
    applier: &Applier,
    secret: &ProviderSecret,
) -> Result<bool, PlatformError> {
    let gvk = kube::api::GroupVersionKind::gvk("", "v1", "Secret");
    Ok(applier
        .resolver()
        .exists(&gvk, Some(secret.namespace), secret.name)
        .await?)
}

/// Where the token Secret would come from, without a cluster: the sealed file, else the environment variable.
pub fn provider_secret_source(
    secret: &ProviderSecret,
    sealed_dir: &Path,
) -> Result<DynamicObject, PlatformError> {
    let missing = || PlatformError::TokenMissing {
        provider: secret.provider.into(),
        namespace: secret.namespace.into(),
        name: secret.name.into(),
        env_var: secret.env_var.into(),
    };
    for extension in ["yml", "yaml"] {
        let path = sealed_dir.join(format!("{}.{extension}", secret.name));
        if let Ok(text) = shared::fsio::read_to_string_bounded(
            &path,
            shared::fsio::CONFIG_FILE_LIMIT,
            "sealed provider secret",
        ) {
            let object: DynamicObject =
                serde_saphyr::from_str(&text).map_err(|err| PlatformError::Catalog {
                    path: path.clone(),
                    message: format!("not a SealedSecret: {}", shared::yaml_error::describe(&err)),
                })?;
            return Ok(object);
        }
    }
    let token = std::env::var(secret.env_var)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(missing)?;
    let object = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret.name, "namespace": secret.namespace, "labels": {"app.kubernetes.io/managed-by": "duli"}},
        "type": "Opaque",
        "stringData": {secret.key: token.trim()},
    });
    serde_json::from_value(object).map_err(|err| PlatformError::Helm {
        command: "build Secret".into(),
        message: err.to_string(),
    })
}

/// Run the platform phase. The shared charts install concurrently; the provider charts start as soon as
/// their token Secret is in place — which, when it comes sealed, is as soon as the sealed-secrets chart has
/// brought the SealedSecret kind, not after every other chart (Argo CD's install is the slow one).
pub async fn converge(
    helm: &Helm,
    applier: &Applier,
    charts: &[PlatformChart],
    provider: &str,
    sealed_shared_dir: &Path,
    timeout: Duration,
) -> Result<Counts, PlatformError> {
    let plans = plan(helm, charts).await?;
    let stage = |provider_stage: bool| -> Vec<(&PlatformChart, &ChartPlan)> {
        charts
            .iter()
            .zip(&plans)
            .filter(|(chart, _)| chart.is_provider_chart() == provider_stage)
            .collect()
    };
    let shared_done = std::sync::atomic::AtomicBool::new(false);
    let shared = async {
        let results = join_all(
            stage(false)
                .into_iter()
                .map(|(chart, plan)| install(helm, chart, plan, timeout)),
        )
        .await;
        shared_done.store(true, std::sync::atomic::Ordering::SeqCst);
        results
    };
    let providers = async {
        let mut results = Vec::new();
        let charts = stage(true);
        if charts.is_empty() {
            return results;
        }
        if let Some(secret) = provider_secret(provider) {
            results
                .push(provider_secret_when_possible(applier, &secret, sealed_shared_dir, &shared_done).await);
        }
        if results.iter().all(Result::is_ok) {
            results.extend(
                join_all(
                    charts
                        .into_iter()
                        .map(|(chart, plan)| install(helm, chart, plan, timeout)),
                )
                .await,
            );
        }
        results
    };
    let (shared, providers) = tokio::join!(shared, providers);
    let mut counts = Counts::default();
    for result in shared.into_iter().chain(providers) {
        match result {
            Ok(outcome) => counts.add(outcome),
            Err(err) => return Err(with_server_state(err, applier.resolver().client()).await),
        }
    }
    Ok(counts)
}

/// How long the check after a failed helm command may take; `up` keeps this much of `--timeout` for it.
pub const SERVER_CHECK: Duration = Duration::from_secs(1);

/// What `up` keeps of `--timeout` after helm's own `--timeout` for helm to record a failed release and exit
/// (against a server that just went away that takes seconds on a loaded machine), so helm's reason, not
/// the command's deadline, is what the user reads.
pub const HELM_EXIT: Duration = Duration::from_secs(3);

/// A failed helm command whose own reason is a timeout ("context deadline exceeded") does not say that
/// the API server went away meanwhile: ask it once, and when it does not answer, say so.
async fn with_server_state(err: PlatformError, client: &kube::Client) -> PlatformError {
    let PlatformError::Helm { command, message } = err else {
        return err;
    };
    match tokio::time::timeout(SERVER_CHECK, client.apiserver_version()).await {
        Ok(Ok(_)) => PlatformError::Helm { command, message },
        Ok(Err(probe)) => PlatformError::Helm {
            command,
            message: server_gone(&message, &shared::cluster::describe_api_error(&probe)),
        },
        Err(_) => PlatformError::Helm {
            command,
            message: server_gone(&message, "it did not answer within 1s"),
        },
    }
}

fn server_gone(helm_message: &str, why: &str) -> String {
    format!(
        "{helm_message} — the API server is not answering now ({why}); run the same command again once it is back"
    )
}

/// [`ensure_provider_secret`], waiting (while the other charts install) for the SealedSecret kind when the
/// token comes sealed.
async fn provider_secret_when_possible(
    applier: &Applier,
    secret: &ProviderSecret,
    sealed_dir: &Path,
    shared_done: &std::sync::atomic::AtomicBool,
) -> Result<ApplyResult, PlatformError> {
    loop {
        let last_try = shared_done.load(std::sync::atomic::Ordering::SeqCst);
        match ensure_provider_secret(applier, secret, sealed_dir).await {
            Err(PlatformError::Apply(errors))
                if !last_try
                    && errors
                        .errors
                        .iter()
                        .all(|e| matches!(e, crate::apply::ApplyError::NotServed { .. })) =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                applier.resolver().invalidate().await;
            }
            other => return other,
        }
    }
}

async fn install(
    helm: &Helm,
    chart: &PlatformChart,
    plan: &ChartPlan,
    timeout: Duration,
) -> Result<ApplyResult, PlatformError> {
    if plan.action != ChartAction::UpToDate {
        tracing::info!(target: "duli::progress", "platform: {} {} ({}) …", verb(plan.action), chart.name, plan.reason);
    }
    let started = std::time::Instant::now();
    let outcome = converge_chart(helm, chart, plan, timeout).await?;
    match outcome {
        ApplyResult::Unchanged => {
            tracing::info!(target: "duli::progress", "platform: {} {} up to date", chart.name, chart.version)
        }
        _ => tracing::info!(
            target: "duli::progress",
            "platform: {} {} {} in {:.1}s", chart.name, chart.version, past(outcome), started.elapsed().as_secs_f64()
        ),
    }
    Ok(outcome)
}

fn verb(action: ChartAction) -> &'static str {
    match action {
        ChartAction::Install => "installing",
        ChartAction::Upgrade => "upgrading",
        ChartAction::Recover => "recovering",
        ChartAction::UpToDate => "checking",
    }
}

fn past(outcome: ApplyResult) -> &'static str {
    match outcome {
        ApplyResult::Created => "installed",
        ApplyResult::Changed => "upgraded",
        ApplyResult::Unchanged => "up to date",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_catalog_parses_and_filters_by_provider() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let catalog = PlatformCatalog::load(&root.join(shared::paths::PLATFORM_CATALOG_FILE)).unwrap();
        let digitalocean = catalog.for_provider("digitalocean");
        let other = catalog.for_provider("kind");
        assert!(digitalocean.len() > other.len());
        assert!(other.iter().all(|c| !c.is_provider_chart()));
        assert!(digitalocean.iter().all(|c| !c.is_local()));
    }

    #[test]
    fn local_charts_resolve_relative_to_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("charts/demo")).unwrap();
        std::fs::write(
            dir.path().join("charts/demo/Chart.yaml"),
            "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
        )
        .unwrap();
        let file = dir.path().join("platform.yml");
        std::fs::write(
            &file,
            "charts:\n- {name: demo, repo: charts, chart: demo, version: 0.1.0, namespace: demo}\n",
        )
        .unwrap();
        let catalog = PlatformCatalog::load(&file).unwrap();
        assert!(catalog.charts[0].is_local());
        assert_eq!(catalog.charts[0].local_dir(), dir.path().join("charts/demo"));
    }

    #[test]
    fn a_missing_token_says_where_it_can_come_from() {
        let secret = ProviderSecret {
            env_var: "DULI_TEST_TOKEN_THAT_IS_NOT_SET",
            ..provider_secret("digitalocean").unwrap()
        };
        let err = provider_secret_source(&secret, Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kube-system/digitalocean-csi-secret"), "{err}");
        assert!(err.contains("kubectl duli secrets init"), "{err}");
    }
}

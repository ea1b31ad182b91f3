//! The environment descriptor (`shared::descriptor`): published by `up` in the namespaces phase, shown by
//! `plan`; and `status`/`list` of environments read from the cluster when there is no repository.
//!
//! Without a repository nothing can be rendered, so the components are the live Argo CD Applications
//! `up` applied: the environment's (label `environment: ENV`) and the shared ones, in the environment's
//! Argo CD namespace. What was never applied cannot show as missing there; `status` from the repository
//! can.

use std::collections::BTreeMap;

use kube::api::{DynamicObject, ListParams};

use crate::apply::{Applier, Counts, Resolver};
use crate::desired::{self, Component, Scope};
use crate::list::EnvRow;
use crate::status::{StatusOptions, StatusReport};
use crate::{EnvError, components, list, status};
use shared::api::{ApiClient, Call};
use shared::cluster::Cluster;
use shared::descriptor::EnvironmentSource;
use shared::environment::Environment;
use shared::repo::Repo;

/// The descriptor `up` applies for `env`, built before anything is applied so that a field that could
/// hold a credential stops `up` with nothing half-done.
pub fn object(repo: &Repo, env: &Environment) -> Result<DynamicObject, EnvError> {
    let map = shared::descriptor::to_config_map(env, shared::descriptor::revision(repo).as_deref())?;
    let value = serde_json::to_value(&map).map_err(|err| EnvError::Output(err.into()))?;
    let mut object: DynamicObject =
        serde_json::from_value(value).map_err(|err| EnvError::Output(err.into()))?;
    object.types = Some(kube::api::TypeMeta {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
    });
    Ok(object)
}

/// Apply the descriptor (server-side apply, field manager `duli`), once its namespace exists.
pub async fn publish(applier: &Applier, object: &DynamicObject) -> Result<Counts, EnvError> {
    let applied = applier.apply_all(std::slice::from_ref(object), false).await?;
    Ok(crate::apply::count(&applied))
}

/// The environments of the cluster's descriptors when no repository is found (`None`: there is one, and
/// the command runs from it).
pub fn source_without_repo(common: &shared::cli::CommonArgs) -> Result<Option<EnvironmentSource>, EnvError> {
    let source = EnvironmentSource::locate(common)?;
    Ok(source.repo().is_none().then_some(source))
}

/// `status ENV` from the descriptor and the live Applications.
pub async fn status(
    source: &EnvironmentSource,
    api: &ApiClient,
    cluster: &Cluster,
    opts: &StatusOptions,
) -> Result<StatusReport, EnvError> {
    let env = source.load_one(api, cluster, &opts.env).await?;
    let resolver = Resolver::new(api.clone());
    let components = live_components(&resolver, &env).await?;
    status::report(&resolver, &env, &components).await
}

/// `list` from the descriptors and the live Applications.
pub async fn list(
    source: &EnvironmentSource,
    api: &ApiClient,
    cluster: &Cluster,
) -> Result<Vec<EnvRow>, EnvError> {
    let resolver = Resolver::new(api.clone());
    let mut rows = Vec::new();
    for env in source.from_cluster(api, cluster, None).await? {
        let components = live_components(&resolver, &env).await?;
        rows.push(list::row(&resolver, &env, &components).await?);
    }
    Ok(rows)
}

/// The Applications `up` applied for `env` (its own and the shared ones), as components.
async fn live_components(resolver: &Resolver, env: &Environment) -> Result<Vec<Component>, EnvError> {
    let namespace = env.gitops.argocd_namespace.as_str();
    let Some((api, resource)) = resolver
        .api(&components::application_gvk(), Some(namespace))
        .await?
    else {
        return Ok(Vec::new());
    };
    let call = Call::for_resource("list", &resource, Some(namespace), None);
    let params = ListParams::default().labels(desired::COMPONENT_LABEL);
    let list = resolver.api_client().call(&call, || api.list(&params)).await?;
    let mut found = Vec::new();
    for item in list.items {
        let labels: BTreeMap<String, String> = item.metadata.labels.clone().unwrap_or_default();
        let mine = labels.get(desired::ENVIRONMENT_LABEL) == Some(&env.name);
        let shared = labels.get(desired::SCOPE_LABEL).map(String::as_str) == Some("shared");
        if !(mine || shared) {
            continue;
        }
        let file = format!(
            "live Application {namespace}/{}",
            item.metadata.name.as_deref().unwrap_or_default()
        );
        // An Application that does not read as one of ours is left out, not an error: it is not ours.
        if let Ok(component) = desired::component(&file, item)
            && (component.scope == Scope::Shared || mine)
        {
            found.push(component);
        }
    }
    found.sort_by(|a, b| (a.wave, &a.app).cmp(&(b.wave, &b.app)));
    Ok(found)
}

//! The render pipeline behind [`super::render`]: select, render (or take from the cache), validate,
//! check policies, assemble the output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::cache::{Cache, KeyBuilder};
use super::charts::{self, Chart};
use super::crds::{self, CrdStore};
use super::deps::{self, ChartMirrors, ChartStore, Fetcher, ResolvedChart};
use super::findings::Finding;
use super::helm::Helm;
use super::manifests::{self, Object};
use super::policy::{self, Located};
use super::report::{ApplicationReport, ChartReport, ChartStatus, CrdReport, Report};
use super::values::{self, Layers};
use super::{RenderError, RenderOptions, Rendered, confine, diff, gitops, output, platform, report};
use shared::environment::Environment;
use shared::repo::Repo;

/// The group name of the ArgoCD Application templates (output directory, `--chart` name).
pub const APPLICATIONS: &str = "applications";

/// One chart to render, with its inputs and cache keys.
struct Job<'a> {
    chart: &'a Chart,
    /// The release namespace (the environment's, a platform entry's, or the destination of the Argo CD
    /// Application that deploys the chart).
    namespace: String,
    /// The release name (the chart's directory name, or its Application's release name).
    release: String,
    /// For a wrapper chart: its upstream charts, copied into a temporary `charts/` to render.
    resolved: Option<&'a ResolvedChart>,
    /// A `gitops/platform.yml` entry (no policy checks: upstream's chart, not ours).
    platform: bool,
    layers: Layers,
    render_key: String,
    /// What the CRDs in `crds/` of the chart and its subcharts depend on (see [`ShippedCrds`]).
    crd_key: String,
    validate_key: Option<String>,
    /// Shared, not copied: a render of the run may serve both environments, and validation, CRD reading
    /// and the output all read the same objects.
    objects: Option<Arc<Vec<Object>>>,
    findings: Option<Vec<Finding>>,
    duration: Duration,
}

impl Job<'_> {
    /// Whether the chart wraps upstream charts: resolved from the chart store, or vendored in `charts/`.
    fn wraps_upstream(&self) -> bool {
        self.resolved.is_some() || self.chart.dir.join("charts").is_dir()
    }
}

/// What the renders of several environments in one run share: the helm job slots (so `--jobs` bounds
/// the whole run) and the CRDs (parsed once).
#[derive(Clone)]
pub struct Shared {
    slots: Arc<tokio::sync::Semaphore>,
    crds: Arc<tokio::sync::OnceCell<Arc<CrdStore>>>,
    fetches: deps::FetchMemo,
    renders: RenderMemo,
    shipped_crds: ShippedCrds,
}

/// Renders of one run by render key.
type RenderMemo = Arc<tokio::sync::Mutex<BTreeMap<String, Arc<tokio::sync::OnceCell<Arc<Vec<Object>>>>>>>;

/// The CRDs in `crds/` of a chart and of its enabled subcharts, read once per run for each set of inputs
/// (chart tree, upstream packages, values file contents): a shared chart whose values files say the same
/// in every environment, and every platform chart, is read once, not once per environment.
#[derive(Clone, Default)]
struct ShippedCrds(Arc<std::sync::Mutex<BTreeMap<String, ShippedSlot>>>);

/// One [`ShippedCrds`] entry: locked while it is read, so a concurrent environment waits for it.
type ShippedSlot = Arc<std::sync::Mutex<Option<CrdStore>>>;

impl ShippedCrds {
    /// The store for `key`, read by `read` unless an earlier (or concurrent: it waits) read of the run
    /// has it; a failed read is not kept, so every environment reports its own error.
    fn get_or_read(
        &self,
        key: &str,
        read: impl FnOnce() -> Result<CrdStore, RenderError>,
    ) -> Result<CrdStore, RenderError> {
        let cell = self
            .0
            .lock()
            .expect("shipped CRDs lock")
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut slot = cell.lock().expect("shipped CRDs lock");
        if let Some(store) = &*slot {
            return Ok(store.clone());
        }
        let store = read()?;
        *slot = Some(store.clone());
        Ok(store)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("slots", &self.slots.available_permits())
            .finish()
    }
}

impl Shared {
    /// `jobs` helm processes at a time.
    pub fn new(jobs: usize) -> Self {
        Shared {
            slots: Arc::new(tokio::sync::Semaphore::new(jobs.max(1))),
            crds: Arc::new(tokio::sync::OnceCell::new()),
            fetches: deps::FetchMemo::default(),
            renders: RenderMemo::default(),
            shipped_crds: ShippedCrds::default(),
        }
    }

    /// The CRD store, loaded on first use (files on a blocking thread, then the cluster if asked).
    async fn crd_store(
        &self,
        files: Vec<PathBuf>,
        options: &RenderOptions,
    ) -> Result<Arc<CrdStore>, RenderError> {
        let threads = options.jobs;
        let store = self
            .crds
            .get_or_try_init(|| async move {
                let start = Instant::now();
                let count = files.len();
                let mut store = tokio::task::spawn_blocking(move || CrdStore::load(&files, threads))
                    .await
                    .expect("CRD loading panicked")?;
                tracing::debug!("loaded {count} CRD files in {:?}", start.elapsed());
                if options.crds_from_cluster {
                    store.add_from_cluster(&options.cluster_target()).await?;
                }
                Ok::<_, RenderError>(Arc::new(store))
            })
            .await?;
        Ok(store.clone())
    }
}

/// Render, validate and check one environment; compare with `--diff`, write `--out` and `--report`.
pub async fn render(repo: &Repo, options: &RenderOptions) -> Result<Rendered, RenderError> {
    let mut all = render_many(repo, options, std::slice::from_ref(&options.env)).await?;
    Ok(all.remove(0))
}

/// Render several environments in one run (sharing helm slots and CRDs); nothing is written unless all
/// of them render. `--report` then holds `{"environments": [...]}` when there is more than one.
pub async fn render_many(
    repo: &Repo,
    options: &RenderOptions,
    envs: &[String],
) -> Result<Vec<Rendered>, RenderError> {
    let shared = Shared::new(options.jobs);
    let renders = envs.iter().map(|env| {
        let shared = shared.clone();
        let mut options = options.clone();
        options.env = env.clone();
        async move { render_with(repo, &options, &shared).await }
    });
    let mut rendered = Vec::new();
    for result in futures::future::join_all(renders).await {
        rendered.push(result?);
    }
    if let Some(out) = &options.out {
        for one in &mut rendered {
            one.written = Some(output::write(out, &one.report.env, &one.full_tree)?);
        }
    }
    if let Some(path) = &options.report {
        let reports: Vec<&Report> = rendered.iter().map(|r| &r.report).collect();
        report::write(path, &reports)?;
    }
    Ok(rendered)
}

/// Render one environment with `shared` resources; writes nothing.
pub async fn render_with(
    repo: &Repo,
    options: &RenderOptions,
    shared: &Shared,
) -> Result<Rendered, RenderError> {
    let started = Instant::now();
    let env = Environment::load(repo, &options.env)?;
    for rule in &options.policy_skip {
        if policy::rule(rule).is_none() {
            let known: Vec<&str> = policy::RULES.iter().map(|r| r.id).collect();
            return Err(RenderError::UnknownRule {
                rule: rule.clone(),
                known: known.join(", "),
            });
        }
    }
    values::check_set(&options.set)?;
    if let Some(out) = &options.out {
        output::check_writable(out, &env.name)?;
    }
    if let Some(namespace) = &options.helm_env.namespace
        && namespace != &env.namespace
        && namespace != "default"
    {
        tracing::warn!(
            "-n/--namespace {namespace} ignored: environment `{}` renders into namespace `{}`",
            env.name,
            env.namespace
        );
    }

    let all = charts::discover(&repo.charts_dir())?;
    let (selected, with_applications) = select(&all, &options.charts, repo)?;
    // Before anything reads them (the cache key walks the chart, helm renders it).
    for chart in &selected {
        confine::check_tree(repo.root(), &chart.dir)?;
    }
    // Always: the Applications say which namespace each chart renders into, `--chart` subset or not.
    confine::check_tree(repo.root(), &repo.applications_dir())?;
    let cache = Cache::new(options.cache_dir.clone(), options.use_cache);
    let mirrors =
        ChartMirrors::from_flags_env_and_file(&options.chart_mirrors, &env.chart_mirrors, &env.source)?;
    let catalog_file = repo.platform_catalog_file();
    let platform_entries = if options.platform && options.charts.is_empty() {
        platform::load(&catalog_file, &env.provider)?
    } else {
        Vec::new()
    };
    for entry in &platform_entries {
        if all.iter().any(|c| c.name == entry.name) || entry.name == APPLICATIONS {
            return Err(platform::PlatformError {
                path: catalog_file.clone(),
                message: format!(
                    "entry `{}` has the name of a chart in helm/; rename it (names are output directories)",
                    entry.name
                ),
            }
            .into());
        }
    }

    // Upstream charts: wrapper dependencies and platform charts, from the chart cache or fetched.
    let wrappers: Vec<&Chart> = selected.iter().copied().filter(|c| c.is_external()).collect();
    let (wrappers, skipped): (Vec<&Chart>, Vec<&Chart>) =
        wrappers.into_iter().partition(|_| options.upstream);
    // Charts of helm/ that need nothing fetched.
    let plain: Vec<&Chart> = selected.iter().copied().filter(|c| !c.is_external()).collect();
    let helm = if plain.is_empty() && wrappers.is_empty() && platform_entries.is_empty() {
        None
    } else {
        Some(Helm::locate()?)
    };
    let fetcher = match &helm {
        Some(helm) if !wrappers.is_empty() || !platform_entries.is_empty() => Some(Fetcher::new(
            helm.clone(),
            mirrors,
            ChartStore::for_cache_dir(options.cache_dir.as_deref()),
            options.offline,
            options.fetch_timeout,
            shared.fetches.clone(),
        )),
        _ => None,
    };
    let mut resolved: BTreeMap<String, ResolvedChart> = BTreeMap::new();
    // Charts (and platform entries) left out, with the reason.
    let mut unavailable: BTreeMap<String, String> = BTreeMap::new();
    for chart in skipped {
        unavailable.insert(chart.name.clone(), "upstream charts are not resolved here".into());
    }
    // Platform values files (inline `values` in the catalog), alive until helm has read them.
    let values_dir = tempfile::Builder::new()
        .prefix("duli-render-values-")
        .tempdir()
        .map_err(|err| {
            RenderError::Platform(platform::PlatformError {
                path: catalog_file.clone(),
                message: format!("cannot create a temporary directory for its values: {err}"),
            })
        })?;

    // Inputs and cache keys.
    let crd_files = if options.validate {
        crds::files(&options.crds)?
    } else {
        Vec::new()
    };
    let crd_fingerprint =
        (options.validate && !options.crds_from_cluster).then(|| crds::fingerprint(&crd_files));
    let validate_key = |seed: &str| {
        crd_fingerprint
            .as_ref()
            .map(|fp| KeyBuilder::new().text("seed", seed).text("crds", fp).finish())
    };
    // Rendered first (jinja, no helm): Argo CD installs each chart with its Application's release name
    // into its destination namespace, so `helm template` gets the same.
    let applications = gitops::render_all(repo.root(), &env.source)?;
    let destinations = gitops::destinations(&applications);
    let applications = if with_applications {
        applications
    } else {
        Vec::new()
    };
    let job_inputs = JobInputs {
        env: &env,
        options,
        destinations: &destinations,
        cache: &cache,
        helm_identity: helm.as_ref().map(Helm::identity).unwrap_or_default(),
        values_dir: values_dir.path(),
        catalog_file: &catalog_file,
    };

    // The charts that need nothing fetched render while the upstream ones are fetched: fetching waits on
    // the network (or a mirror) far more than it uses the CPU.
    let mut plain_jobs = plain
        .iter()
        .map(|chart| job_inputs.job(chart, None, None))
        .collect::<Result<Vec<_>, _>>()?;
    let fetch = async {
        let fetcher = fetcher.as_ref()?;
        let wrapper_results =
            futures::future::join_all(wrappers.iter().map(|chart| deps::resolve(chart, fetcher)));
        let catalog_dir = catalog_file.parent().unwrap_or(repo.root());
        let platform_results = futures::future::join_all(platform_entries.iter().map(|entry| async move {
            match entry.local_dir(catalog_dir) {
                Some(dir) => Ok(dir),
                None => {
                    deps::resolve_package(&entry.name, &entry.repo, &entry.chart, &entry.version, fetcher)
                        .await
                        .map(|package| package.tgz_path)
                }
            }
        }));
        Some(futures::join!(wrapper_results, platform_results))
    };
    let early_renders = render_misses(&plain_jobs, helm.as_ref(), shared);
    let (fetched, early_renders) = futures::join!(fetch, early_renders);

    let mut platform_charts: Vec<Chart> = Vec::new();
    if let Some((wrapper_results, platform_results)) = fetched {
        for (chart, result) in wrappers.iter().zip(wrapper_results) {
            match result {
                Ok(one) => {
                    resolved.insert(chart.name.clone(), one);
                }
                Err(err) if err.is_unavailable() => {
                    unavailable.insert(chart.name.clone(), err.to_string());
                }
                Err(err) => return Err(err.into()),
            }
        }
        for (entry, result) in platform_entries.iter().zip(platform_results) {
            match result {
                Ok(dir) => platform_charts.push(Chart {
                    name: entry.name.clone(),
                    dir,
                    chart_name: entry.chart.clone(),
                    version: entry.version.clone(),
                    missing_dependencies: Vec::new(),
                }),
                Err(err) if err.is_unavailable() => {
                    unavailable.insert(entry.name.clone(), err.to_string());
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    if options.strict_deps
        && let Some(chart) = selected.iter().find(|c| unavailable.contains_key(&c.name))
    {
        let upstream: Vec<String> = chart
            .missing_dependencies
            .iter()
            .map(|d| format!("{} {}", d.name, d.version))
            .collect();
        return Err(RenderError::ExternalDependency {
            chart: chart.name.clone(),
            upstream: upstream.join(", "),
            reason: unavailable[&chart.name].clone(),
        });
    }
    if options.strict_deps
        && let Some(entry) = platform_entries
            .iter()
            .find(|e| unavailable.contains_key(&e.name))
    {
        return Err(RenderError::ExternalDependency {
            chart: entry.name.clone(),
            upstream: format!("{} {}", entry.chart, entry.version),
            reason: unavailable[&entry.name].clone(),
        });
    }
    let rendered_early = early_renders.len();
    apply_renders(&mut plain_jobs, early_renders, &cache)?;

    // Every job in the order of the report: helm/'s charts as selected, then the platform's.
    let mut plain_jobs = plain_jobs.into_iter();
    let mut jobs = Vec::new();
    for chart in &selected {
        if !chart.is_external() {
            jobs.push(plain_jobs.next().expect("a job for every plain chart"));
        } else if let Some(one) = resolved.get(&chart.name) {
            jobs.push(job_inputs.job(chart, None, Some(one))?);
        }
    }
    for chart in &platform_charts {
        let entry = platform_entries
            .iter()
            .find(|e| e.name == chart.name)
            .expect("platform charts come from entries");
        jobs.push(job_inputs.job(chart, Some(entry), None)?);
    }
    // CRDs the charts ship validate the custom resources of every chart of the run, so a chart's
    // validation depends on which charts are in the run and on all of their inputs: a changed operator
    // chart (or `--chart` picking a subset) must not reuse findings made with other CRDs.
    let mut run_keys: Vec<&str> = jobs.iter().map(|j| j.render_key.as_str()).collect();
    run_keys.sort_unstable();
    let run_key = KeyBuilder::new().text("charts", &run_keys.join(",")).finish();
    for job in &mut jobs {
        job.validate_key = validate_key(&format!("{}\0{run_key}", job.render_key));
        job.findings = match (&job.objects, &job.validate_key) {
            (Some(_), Some(key)) => cache.get("validate", key),
            _ => None,
        };
    }
    let app_objects: Arc<Vec<Object>> =
        Arc::new(applications.iter().flat_map(|a| a.objects.clone()).collect());
    let app_text: String = applications.iter().map(|a| a.text.as_str()).collect();
    let app_validate_key = validate_key(&format!("applications\0{app_text}\0{run_key}"));
    let mut app_findings: Option<Vec<Finding>> = match &app_validate_key {
        Some(key) if !app_objects.is_empty() => cache.get("validate", key),
        _ if app_objects.is_empty() => Some(Vec::new()),
        _ => None,
    };

    // Where each CRD came from, as the last run with the same charts and CRDs found it.
    let crd_report_key = validate_key(&format!("crds\0{run_key}"));
    let cached_crd_report: Option<Vec<CrdReport>> =
        crd_report_key.as_ref().and_then(|key| cache.get("validate", key));
    // CRDs load in the background while helm runs, and only when some validation (or, for --report,
    // where the CRDs came from) is not cached.
    let need_store = options.validate
        && (jobs.iter().any(|j| j.findings.is_none())
            || app_findings.is_none()
            || (options.report.is_some() && cached_crd_report.is_none()));
    let store_task = need_store.then(|| {
        let shared = shared.clone();
        let options = options.clone();
        let files = crd_files.clone();
        tokio::spawn(async move { shared.crd_store(files, &options).await })
    });

    // Render what the cache does not have (the plain charts have been).
    let renders = render_misses(&jobs, helm.as_ref(), shared).await;
    let rendered = rendered_early + renders.len();
    tracing::debug!("rendered {rendered} charts in {:?}", started.elapsed());
    apply_renders(&mut jobs, renders, &cache)?;

    // Validate what the cache does not have.
    let mut crd_report = cached_crd_report.unwrap_or_default();
    if let Some(task) = store_task {
        let store = task.await.expect("CRD loading panicked")?;
        // CRDs the charts themselves ship count too, for this environment only: those their templates
        // render, and those in `crds/` of the chart and of its enabled subcharts, which helm installs
        // but `helm template` leaves out. An explicit `--crds` file (or the cluster) wins over them.
        let inputs: Vec<CrdInput> = jobs
            .iter()
            .map(|j| CrdInput {
                chart: j.chart.clone(),
                key: j.crd_key.clone(),
                resolved: j.resolved.cloned(),
                files: j.layers.files.clone(),
                objects: j.objects.clone().unwrap_or_default(),
            })
            .collect();
        let threads = options.jobs.max(1);
        let start = Instant::now();
        let shipped = shared.shipped_crds.clone();
        let stores = tokio::task::spawn_blocking(move || chart_crd_stores(&inputs, &shipped, threads))
            .await
            .expect("chart CRD loading panicked");
        let mut rendered_crds = CrdStore::default();
        for one in stores {
            rendered_crds.extend(one?);
        }
        tracing::debug!("read the charts' CRDs in {:?}", start.elapsed());
        for object in app_objects.iter() {
            rendered_crds.add(&object.value, &format!("{APPLICATIONS} ({})", object.source));
        }
        crd_report = crd_sources(
            &store,
            &rendered_crds,
            jobs.iter()
                .flat_map(|j| j.objects.iter().flat_map(|o| o.iter()))
                .chain(app_objects.iter()),
        );
        if let Some(key) = &crd_report_key {
            cache.put("validate", key, &crd_report);
        }
        for entry in &crd_report {
            match &entry.instead_of {
                Some(chart) => tracing::info!(
                    "CRD {} {}: from {} (wins over the one from {chart})",
                    entry.api_version,
                    entry.kind,
                    entry.source
                ),
                None => tracing::info!("CRD {} {}: from {}", entry.api_version, entry.kind, entry.source),
            }
        }
        let stores = [store, Arc::new(rendered_crds)];
        let pending: Vec<(usize, Arc<Vec<Object>>)> = jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.findings.is_none())
            .map(|(i, j)| (i, j.objects.clone().unwrap_or_default()))
            .chain(app_findings.is_none().then(|| (usize::MAX, app_objects.clone())))
            .collect();
        let names: Vec<String> = pending
            .iter()
            .map(|(i, _)| {
                jobs.get(*i)
                    .map_or(APPLICATIONS.to_string(), |j| j.chart.name.clone())
            })
            .collect();
        let threads = options.jobs.max(1);
        let start = Instant::now();
        let results = tokio::task::spawn_blocking(move || {
            super::validate::validate_groups(&stores, &pending, &names, threads)
        })
        .await
        .expect("validation panicked");
        tracing::debug!("validated {} groups in {:?}", results.len(), start.elapsed());
        for (index, found) in results {
            if index == usize::MAX {
                if let Some(key) = &app_validate_key {
                    cache.put("validate", key, &found);
                }
                app_findings = Some(found);
            } else {
                if let Some(key) = &jobs[index].validate_key {
                    cache.put("validate", key, &found);
                }
                jobs[index].findings = Some(found);
            }
        }
    }

    // Policy over everything, then skip what was asked.
    let mut groups: Vec<(String, Arc<Vec<Object>>)> = jobs
        .iter()
        .map(|j| (j.chart.name.clone(), j.objects.clone().unwrap_or_default()))
        .collect();
    if with_applications {
        groups.push((APPLICATIONS.to_string(), app_objects.clone()));
    }
    let platform_names: BTreeSet<&str> = jobs
        .iter()
        .filter(|j| j.platform)
        .map(|j| j.chart.name.as_str())
        .collect();
    // The policies are this repository's rules for what its templates produce: objects of platform
    // charts and of upstream subcharts (`CHART/charts/…`) are validated, not policed.
    let located: Vec<Located<'_>> = groups
        .iter()
        .filter(|(chart, _)| !platform_names.contains(chart.as_str()))
        .flat_map(|(chart, objects)| {
            let upstream = format!("{chart}/charts/");
            objects
                .iter()
                .filter(move |object| !object.source.starts_with(&upstream))
                .map(move |object| Located { chart, object })
        })
        .collect();
    let mut found: Vec<Finding> = jobs
        .iter()
        .flat_map(|j| j.findings.clone().unwrap_or_default())
        .collect();
    found.extend(app_findings.unwrap_or_default());
    let other_envs: Vec<String> = environment_names(repo)
        .into_iter()
        .filter(|name| name != &env.name)
        .collect();
    found.extend(policy::check(&env, &other_envs, &located));
    for job in jobs.iter().filter(|j| !j.platform && j.wraps_upstream()) {
        // A function of the chart's tree and values files, which the render key covers, and of the
        // environment, whose values file the findings name.
        let key = KeyBuilder::new()
            .text("upstream-values", &job.render_key)
            .text("env", &env.name)
            .finish();
        let upstream = cache.get("validate", &key).unwrap_or_else(|| {
            let upstream = upstream_findings(job.chart, job.resolved, &env.name, &options.values);
            cache.put("validate", &key, &upstream);
            upstream
        });
        found.extend(upstream);
    }
    // The inline values of gitops/platform.yml against the charts they configure; a function of the
    // platform jobs' render keys (package digest and values), so a warm run reads no package.
    if !platform_charts.is_empty() {
        let mut key = KeyBuilder::new();
        for job in jobs.iter().filter(|j| j.platform) {
            key.text("platform-values", &job.render_key);
        }
        let key = key.finish();
        let platform_findings: Vec<Finding> = cache.get("validate", &key).unwrap_or_else(|| {
            let locate = |name: &str, version: &str| {
                platform_charts
                    .iter()
                    .find(|c| c.chart_name == name && c.version == version)
                    .map(|c| c.dir.clone())
            };
            let checked = super::upstream_values::check_platform(&catalog_file, &locate);
            let found: Vec<Finding> = match checked {
                Ok((keys, _)) => keys.iter().map(|(chart, key)| key.finding(chart)).collect(),
                Err(err) => {
                    tracing::warn!("platform values not checked against their charts: {err}");
                    Vec::new()
                }
            };
            cache.put("validate", &key, &found);
            found
        });
        found.extend(platform_findings);
    }
    let (exemptions, exemption_findings) = policy::exemptions(&located);
    found.extend(exemption_findings);
    found.retain(|f| {
        !options.policy_skip.contains(&f.rule)
            && !exemptions
                .iter()
                .any(|e| e.chart == f.chart && e.object == f.object && e.rules.contains(&f.rule))
    });
    let order: BTreeMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    found.sort_by(|a, b| {
        let rank = |f: &Finding| order.get(f.chart.as_str()).copied().unwrap_or(usize::MAX);
        (rank(a), &a.file, &a.object, &a.rule, &a.message).cmp(&(
            rank(b),
            &b.file,
            &b.object,
            &b.rule,
            &b.message,
        ))
    });
    found.dedup();

    // Output.
    let mut tree = output::Tree::new();
    for (name, objects) in &groups {
        if name == APPLICATIONS {
            for application in &applications {
                tree.insert(
                    format!("{APPLICATIONS}/{}.yml", application.component),
                    application.text.clone(),
                );
            }
        } else {
            output::add_objects(&mut tree, name, objects);
        }
    }
    let scope: BTreeSet<String> = groups.iter().map(|(name, _)| name.clone()).collect();
    let partial = !options.charts.is_empty();
    let in_scope = |path: &String| scope.contains(path.split('/').next().unwrap_or_default());
    let diff = match &options.diff {
        Some(dir) => {
            let root = dir.join(&env.name);
            let mut old = output::read(&root).map_err(|source| RenderError::Diff {
                path: root.clone(),
                source,
            })?;
            if partial {
                old.retain(|path, _| in_scope(path));
            }
            let how = diff::Compare {
                secrets: if options.show_secrets {
                    diff::SecretValues::Shown
                } else {
                    diff::SecretValues::Redacted
                },
                // Upstream charts: the platform's, and those our wrappers bring.
                upstream: jobs
                    .iter()
                    .filter(|j| j.platform || j.wraps_upstream())
                    .map(|j| j.chart.name.clone())
                    .collect(),
            };
            let compared = diff::compare(&env.name, &old, &tree, &how);
            for field in &compared.nondeterministic {
                tracing::info!("non-deterministic (not a change): {} {}", field.file, field.path);
            }
            Some(compared)
        }
        None => None,
    };
    // What `--out` will write: with a chart subset, the other charts' earlier files stay.
    let mut full_tree = tree.clone();
    if let Some(out) = &options.out
        && partial
        && let Ok(old) = output::read(&out.join(&env.name))
    {
        full_tree.extend(old.into_iter().filter(|(path, _)| !in_scope(path)));
    }

    let report_entries = selected
        .iter()
        .map(|chart| (chart.name.clone(), chart.missing_dependencies.clone(), false))
        .chain(platform_entries.iter().map(|entry| {
            let upstream = vec![charts::Dependency {
                name: entry.chart.clone(),
                version: entry.version.clone(),
                repository: entry.repo.clone(),
                alias: None,
            }];
            (entry.name.clone(), upstream, true)
        }));
    let mut charts_report: Vec<ChartReport> = report_entries
        .map(|(name, upstream, is_platform)| {
            let job = jobs.iter().find(|j| j.chart.name == name);
            let cached = job.is_some_and(|j| j.duration.is_zero());
            ChartReport {
                status: match job {
                    None => ChartStatus::External,
                    Some(_) if cached => ChartStatus::Cached,
                    Some(_) => ChartStatus::Rendered,
                },
                cached,
                duration_ms: job.map(|j| j.duration.as_millis() as u64).unwrap_or_default(),
                objects: job
                    .and_then(|j| j.objects.as_ref())
                    .into_iter()
                    .flat_map(|o| o.iter())
                    .map(Object::id)
                    .collect(),
                upstream: if job.is_none() { upstream } else { Vec::new() },
                reason: unavailable.get(&name).cloned(),
                resolved: resolved
                    .get(&name)
                    .map(|r| r.upstream.clone())
                    .unwrap_or_default(),
                platform: is_platform,
                name,
            }
        })
        .collect();
    charts_report.sort_by(|a, b| a.name.cmp(&b.name));
    let mut report = Report {
        env: env.name.clone(),
        namespace: env.namespace.clone(),
        // The helm that rendered, if any chart was.
        helm_bin: helm
            .as_ref()
            .filter(|_| !jobs.is_empty())
            .map(|h| h.bin.display().to_string()),
        helm_env: options.helm_env.clone(),
        skipped_rules: options.policy_skip.clone(),
        exemptions,
        validated: options.validate,
        charts: charts_report,
        applications: applications
            .iter()
            .map(|a| ApplicationReport {
                component: a.component.clone(),
                file: a.file.clone(),
                objects: a.objects.iter().map(Object::id).collect(),
            })
            .collect(),
        crds: crd_report,
        findings: found,
        nondeterministic_fields: diff
            .as_ref()
            .map(|d| d.nondeterministic.clone())
            .unwrap_or_default(),
        totals: Default::default(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    report.count();
    Ok(Rendered {
        report,
        groups,
        tree,
        full_tree,
        diff,
        written: None,
    })
}

/// What every [`Job`] of one environment's render is made from.
struct JobInputs<'r> {
    env: &'r Environment,
    options: &'r RenderOptions,
    destinations: &'r BTreeMap<String, gitops::Destination>,
    cache: &'r Cache,
    helm_identity: String,
    /// Where a platform entry's inline values are written for helm.
    values_dir: &'r std::path::Path,
    catalog_file: &'r std::path::Path,
}

impl JobInputs<'_> {
    /// The job for a chart of helm/ (with its upstream charts when it wraps some), or for a platform
    /// `entry`; its objects when the render cache has them.
    fn job<'a>(
        &self,
        chart: &'a Chart,
        entry: Option<&platform::PlatformEntry>,
        resolved: Option<&'a ResolvedChart>,
    ) -> Result<Job<'a>, RenderError> {
        let (options, env) = (self.options, self.env);
        let mut key = KeyBuilder::new();
        let (mut layers, namespace, release) = match entry {
            Some(entry) => {
                let file = self.values_dir.join(format!("{}.yaml", entry.name));
                let text = serde_json::to_string(&entry.values).expect("values serialize");
                std::fs::write(&file, &text).map_err(|err| {
                    RenderError::Platform(platform::PlatformError {
                        path: self.catalog_file.to_path_buf(),
                        message: format!("cannot write the values of `{}`: {err}", entry.name),
                    })
                })?;
                // The package path holds its sha256; a local chart directory is hashed whole.
                if chart.dir.is_dir() {
                    key.tree("chart", &chart.dir);
                } else {
                    key.text("package", &chart.dir.display().to_string());
                }
                key.text("platform-values", &text);
                let layers = Layers {
                    files: vec![file],
                    set: Vec::new(),
                    capabilities: Vec::new(),
                };
                (layers, entry.namespace.clone(), chart.name.clone())
            }
            None => {
                key.tree("chart", &chart.dir);
                // A chart no Application deploys renders into the environment's namespace, as its own
                // release.
                let (namespace, release) = match self.destinations.get(&chart.name) {
                    Some(to) => (to.namespace.clone(), to.release.clone()),
                    None => (env.namespace.clone(), chart.name.clone()),
                };
                (
                    values::layers(chart, &env.name, &options.values, &options.set)?,
                    namespace,
                    release,
                )
            }
        };
        // The chart (tree or package, and a platform entry's values) so far; the shipped CRDs add the
        // upstream packages and the contents of the values files, none of the environment's other inputs.
        let mut crd_key = key.clone();
        // --kube-version/--api-versions: what every chart, ours or upstream, renders for.
        layers.capabilities = options.capability_args();
        for arg in &layers.capabilities {
            key.text("capabilities", arg);
        }
        if let Some(resolved) = resolved {
            key.text("upstream", &resolved.key());
            crd_key.text("upstream", &resolved.key());
        }
        for file in &layers.files {
            crd_key.file("values", file);
        }
        let crd_key = crd_key.finish();
        if entry.is_none() {
            // Only what helm reads: the values files' contents, not their paths or the environment
            // file, so a chart whose inputs are the same in two environments of a run renders once.
            for file in &layers.files {
                key.file("values", file);
            }
            for item in &layers.set {
                key.text("set", item);
            }
        }
        key.text("namespace", &namespace)
            .text("release", &release)
            .text("helm", &self.helm_identity);
        let render_key = key.finish();
        let objects: Option<Vec<Object>> = self.cache.get("render", &render_key);
        let objects = objects.map(Arc::new);
        Ok(Job {
            chart,
            namespace,
            release,
            resolved,
            platform: entry.is_some(),
            layers,
            render_key,
            crd_key,
            validate_key: None,
            objects,
            findings: None,
            duration: Duration::ZERO,
        })
    }
}

/// One render: the job's index, its objects or error, and how long it took.
type RenderResult = (usize, Result<Arc<Vec<Object>>, RenderError>, Duration);

/// Render the jobs whose objects the cache does not have, every helm process of the run taking one of
/// the shared slots.
async fn render_misses(jobs: &[Job<'_>], helm: Option<&Helm>, shared: &Shared) -> Vec<RenderResult> {
    let Some(helm) = helm else {
        return Vec::new();
    };
    let misses = (0..jobs.len()).filter(|&i| jobs[i].objects.is_none());
    futures::stream::iter(misses.map(|index| {
        let job = &jobs[index];
        async move {
            let start = Instant::now();
            // Environments rendering at once share renders with the same key (the platform charts' do
            // not depend on the environment): the first renders, the others wait for it.
            let cell = shared
                .renders
                .lock()
                .await
                .entry(job.render_key.clone())
                .or_default()
                .clone();
            let result = cell
                .get_or_try_init(|| async {
                    let _slot = shared
                        .slots
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    let text = match job.resolved.map(ResolvedChart::materialize).transpose() {
                        Err(err) => Err(RenderError::from(err)),
                        Ok(copy) => {
                            let dir = copy.as_ref().map_or(&job.chart.dir, |(_, dir)| dir);
                            helm.template(&job.release, dir, &job.namespace, &job.layers)
                                .await
                                .map_err(RenderError::from)
                        }
                    }?;
                    manifests::split(&text, &job.chart.name)
                        .map(Arc::new)
                        .map_err(|source| RenderError::Manifest {
                            chart: job.chart.name.clone(),
                            source,
                        })
                })
                .await
                .cloned();
            (index, result, start.elapsed())
        }
    }))
    .buffer_unordered(usize::MAX)
    .collect()
    .await
}

/// Keep what [`render_misses`] rendered (and put it in the cache); the first error, in job order.
fn apply_renders(
    jobs: &mut [Job<'_>],
    mut renders: Vec<RenderResult>,
    cache: &Cache,
) -> Result<(), RenderError> {
    renders.sort_by_key(|(index, _, _)| *index);
    for (index, result, duration) in renders {
        let objects = result?;
        cache.put("render", &jobs[index].render_key, &*objects);
        jobs[index].objects = Some(objects);
        jobs[index].duration = duration;
    }
    Ok(())
}

/// Our values checked against the upstream charts a chart vendors in `charts/` (packages or
/// directories, as `helm dependency build` leaves them): a key the upstream chart does not have is a
/// `values-unknown` warning. Charts without vendored upstream charts are not checked here (see
/// [`super::upstream_values::check_chart_dir`] to check against a cache or a chart repository). A
/// package that cannot be read is logged and skips the check: rendering reports the real problem.
fn upstream_findings(
    chart: &Chart,
    resolved: Option<&ResolvedChart>,
    env: &str,
    extra: &[PathBuf],
) -> Vec<Finding> {
    use super::upstream_values::{ChartsIn, Locate, check_chart_dir, check_wrapper};
    let vendor = chart.dir.join("charts");
    // The packages the chart store resolved, else what the chart vendors in `charts/`.
    let in_store = |name: &str, version: &str| {
        resolved.and_then(|r| {
            r.upstream
                .iter()
                .find(|u| u.name == name && u.version == version)
                .map(|u| u.tgz_path.clone())
        })
    };
    let vendored = ChartsIn(vendor.clone());
    let locate: &dyn Locate = if resolved.is_some() {
        &in_store
    } else if vendor.is_dir() {
        &vendored
    } else {
        return Vec::new();
    };
    let checked = check_chart_dir(&chart.dir, &[env], locate).and_then(|(mut found, _)| {
        // `--values` files reach every chart: check their sections too.
        if !extra.is_empty() {
            let (upstreams, _) = super::upstream_values::upstreams_of(&chart.dir, locate)?;
            let files: Vec<(String, PathBuf)> = extra
                .iter()
                .map(|f| (f.display().to_string(), f.clone()))
                .collect();
            found.extend(check_wrapper(&files, &upstreams)?);
        }
        Ok(found)
    });
    match checked {
        Ok(found) => found.iter().map(|key| key.finding(&chart.name)).collect(),
        Err(err) => {
            tracing::warn!(
                "chart `{}`: values not checked against its upstream charts: {err}",
                chart.name
            );
            Vec::new()
        }
    }
}

/// What [`chart_crds`] reads for one chart.
struct CrdInput {
    chart: Chart,
    /// [`Job::crd_key`].
    key: String,
    /// A wrapper's upstream packages (from the chart store), when it has them.
    resolved: Option<ResolvedChart>,
    /// Its values files, highest priority last.
    files: Vec<PathBuf>,
    /// What its templates rendered (the CRDs among them count).
    objects: Arc<Vec<Object>>,
}

/// The CRDs each chart ships ([`chart_crds`]), read on up to `threads` threads, in input order.
fn chart_crd_stores(
    inputs: &[CrdInput],
    shipped: &ShippedCrds,
    threads: usize,
) -> Vec<Result<CrdStore, RenderError>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(inputs.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else {
                        break;
                    };
                    let store = chart_crds(input, shipped);
                    results.lock().expect("results lock").push((i, store));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, store)| store).collect()
}

/// The CRDs a chart ships: `crds/` of the chart and its enabled vendored subcharts (with the chart's
/// values `files`, `--set` aside, deciding which are enabled; once per run for the same inputs), then the
/// rendered ones (`objects`).
fn chart_crds(input: &CrdInput, shipped: &ShippedCrds) -> Result<CrdStore, RenderError> {
    let mut store = shipped.get_or_read(&input.key, || crds_in_chart_dirs(input))?;
    let rendered = input.objects.iter();
    for object in rendered.filter(|o| o.kind() == "CustomResourceDefinition") {
        store.add(&object.value, &rendered_source(&input.chart, object));
    }
    Ok(store)
}

/// The CRDs in `crds/` of the chart and of its enabled vendored subcharts.
fn crds_in_chart_dirs(input: &CrdInput) -> Result<CrdStore, RenderError> {
    let (chart, files) = (&input.chart, &input.files);
    let mut store = CrdStore::default();
    // A wrapper whose upstream packages sit in the chart store: read them from a copy with `charts/`
    // filled, as helm sees it; a platform entry is its package itself.
    let copy = input
        .resolved
        .as_ref()
        .map(ResolvedChart::materialize)
        .transpose()?;
    let dir = copy.as_ref().map_or(&chart.dir, |(_, dir)| dir);
    if dir.is_file() || dir.join("charts").is_dir() || dir.join("crds").is_dir() {
        // Highest priority first; the chart's values.yaml comes last from the chart itself.
        let mut values = Vec::new();
        for file in files.iter().rev() {
            let text =
                shared::fsio::read_to_string_bounded(file, shared::fsio::CONFIG_FILE_LIMIT, "values file")
                    .map_err(|source| values::ValuesError::Read {
                        chart: chart.name.clone(),
                        path: file.clone(),
                        source,
                    })?;
            // Checked by values::layers already; a file that does not parse enables nothing here.
            values.push(serde_saphyr::from_str::<serde_json::Value>(&text).unwrap_or_default());
        }
        let values: Vec<&serde_json::Value> = values.iter().collect();
        store.add_chart_dir(dir, &values)?;
    }
    Ok(store)
}

/// Where a CRD rendered by `chart` comes from: the chart (and version) named by its `helm.sh/chart`
/// label, else the subchart its template is in (`db/charts/cloudnative-pg/templates/…`), else `chart`.
fn rendered_source(chart: &Chart, object: &Object) -> String {
    let from = object
        .labels()
        .get("helm.sh/chart")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let (_, inner) = object.source.rsplit_once("/charts/")?;
            let name = inner.split('/').next()?.to_string();
            let prefix = format!("{name}-");
            let version = std::fs::read_dir(chart.dir.join("charts"))
                .into_iter()
                .flatten()
                .flatten()
                .find_map(|entry| {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    Some(file.strip_prefix(&prefix)?.strip_suffix(".tgz")?.to_string())
                });
            Some(match version {
                Some(version) => format!("{name} {version}"),
                None => name,
            })
        })
        .unwrap_or_else(|| format!("{} {}", chart.chart_name, chart.version));
    format!("chart {from} (rendered by `{}`, {})", chart.name, object.source)
}

/// The CRDs of the render (every one the charts ship, and every other one an object uses) with where
/// each came from: `explicit` (`--crds`, the cluster) wins over `shipped`.
fn crd_sources<'a>(
    explicit: &CrdStore,
    shipped: &CrdStore,
    objects: impl Iterator<Item = &'a Object>,
) -> Vec<CrdReport> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for object in objects {
        *counts
            .entry((object.api_version().to_string(), object.kind().to_string()))
            .or_default() += 1;
    }
    let mut kinds: BTreeSet<(String, String)> = shipped
        .sources()
        .map(|((group, version, kind), _)| {
            let api_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            (api_version, kind.clone())
        })
        .collect();
    kinds.extend(
        counts
            .keys()
            .filter(|(api_version, kind)| explicit.knows(api_version, kind))
            .cloned(),
    );
    kinds
        .into_iter()
        .filter_map(|(api_version, kind)| {
            let chart = shipped.source_of(&api_version, &kind);
            let (source, instead_of) = match explicit.source_of(&api_version, &kind) {
                Some(explicit) => (explicit.to_string(), chart.map(str::to_string)),
                None => (chart?.to_string(), None),
            };
            let objects = counts
                .get(&(api_version.clone(), kind.clone()))
                .copied()
                .unwrap_or(0);
            Some(CrdReport {
                api_version,
                kind,
                source,
                instead_of,
                objects,
            })
        })
        .collect()
}

/// The charts `--chart` selects (all when empty), and whether the Application templates are included.
fn select<'a>(
    all: &'a [Chart],
    wanted: &[String],
    repo: &Repo,
) -> Result<(Vec<&'a Chart>, bool), RenderError> {
    if wanted.is_empty() {
        return Ok((all.iter().collect(), true));
    }
    for name in wanted {
        if name != APPLICATIONS && !all.iter().any(|c| &c.name == name) {
            let mut known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
            known.push(APPLICATIONS);
            return Err(RenderError::UnknownChart {
                name: name.clone(),
                dir: repo.charts_dir(),
                known: known.join(", "),
            });
        }
    }
    let selected = all.iter().filter(|c| wanted.contains(&c.name)).collect();
    Ok((selected, wanted.iter().any(|w| w == APPLICATIONS)))
}

/// The CRD directories from `DULI_CRDS` (a path list), for callers building [`RenderOptions`].
pub fn crds_from_env() -> Vec<PathBuf> {
    std::env::var_os("DULI_CRDS")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the repository's environments (file stems in `gitops/environments`).
fn environment_names(repo: &Repo) -> Vec<String> {
    std::fs::read_dir(repo.environments_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension()? == shared::paths::ENVIRONMENT_EXTENSION)
                .then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect()
}

//! Upstream charts (issue #16): wrapper charts resolve their `Chart.lock` dependencies and platform charts
//! render, fetched by real helm from `../shared/charts/repo` served on 127.0.0.1 as a mirror of every
//! upstream repository; the chart cache serves later runs offline.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::chartrepo::{ChartRepoServer, shared_chart_repo};

use crate::common::{self, assert_exit_2, copy_dir, read_json, run, workspace};

/// A copy of this repository's `helm/` and `gitops/` (both environments with `provider`), plus a cache
/// directory, in a temporary directory.
struct RepoCopy {
    tmp: tempfile::TempDir,
}

impl RepoCopy {
    fn new(provider: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["helm", "gitops"] {
            copy_dir(&workspace().join(dir), &tmp.path().join("repo").join(dir));
        }
        for env in ["staging", "prod"] {
            let path = tmp.path().join(format!("repo/gitops/environments/{env}.yml"));
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace("provider: digitalocean", &format!("provider: {provider}"));
            std::fs::write(&path, text).unwrap();
        }
        RepoCopy { tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("repo")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `helm-duli-render ARGS --repo … --cache-dir …` with helm 4, allowed to fetch.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::binary());
        common::isolate(&mut cmd, &common::helm4());
        cmd.env_remove("DULI_RENDER_OFFLINE");
        cmd.args(args)
            .arg("--repo")
            .arg(self.root())
            .arg("--cache-dir")
            .arg(self.path("cache"));
        cmd
    }

    /// Render `args` with a report; exit code, stderr, report.
    fn render(&self, args: &[&str]) -> (i32, String, Value) {
        let report = self.path("report.json");
        let _ = std::fs::remove_file(&report);
        let (code, _, stderr) = run(self.cmd(args).arg("--report").arg(&report));
        let report = if report.exists() {
            read_json(&report)
        } else {
            Value::Null
        };
        (code, stderr, report)
    }
}

fn mirror(server: &ChartRepoServer) -> String {
    format!("*={}", server.url)
}

fn chart<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

#[test]
fn wrapper_charts_resolve_through_a_mirror_then_from_the_chart_cache_offline() {
    let repo = RepoCopy::new("digitalocean");
    let server = ChartRepoServer::serve(&shared_chart_repo());
    let select = [
        "staging",
        "--chart",
        "postgres-operator",
        "--chart",
        "rabbitmq-topology-operator",
    ];
    let mirror = mirror(&server);
    let mut args = select.to_vec();
    args.extend(["--chart-mirror", &mirror, "--no-validate"]);
    let (code, stderr, report) = repo.render(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["external"], 0, "{report}");
    assert_eq!(report["totals"]["rendered"], 2, "{report}");
    let postgres = chart(&report, "postgres-operator");
    assert_eq!(postgres["resolved"][0]["name"], "cloudnative-pg");
    // The digest of the repository index, for the package the cache holds.
    assert_eq!(
        postgres["resolved"][0]["digest"],
        "81fbb5ded7dccfd90e3d472b947381efecfd3251a70a44644a43121d5bf97576"
    );
    let objects: Vec<&str> = postgres["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(
        objects.iter().any(|o| o.starts_with("Deployment/")),
        "{objects:?}"
    );
    let topology = chart(&report, "rabbitmq-topology-operator");
    assert_eq!(topology["resolved"][0]["alias"], "topology");
    let fetched = server.requests();
    assert!(fetched >= 2, "index and packages were fetched: {fetched}");

    // Again, rendering everything (--no-cache): the packages come from the chart cache.
    args.push("--no-cache");
    let (code, stderr, report) = repo.render(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["rendered"], 2, "{report}");
    assert_eq!(server.requests(), fetched, "the second run asked the mirror");

    // Without the mirror and offline: still rendered, from the chart cache.
    drop(server);
    let mut offline = select.to_vec();
    offline.extend(["--no-validate", "--no-cache", "--offline"]);
    let (code, stderr, report) = repo.render(&offline);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["rendered"], 2, "{report}");

    // Offline with an empty chart cache: external, with the reason; --strict-deps fails.
    std::fs::remove_dir_all(repo.path("cache")).unwrap();
    let (code, stderr, report) = repo.render(&offline);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["external"], 2, "{report}");
    let reason = chart(&report, "postgres-operator")["reason"].as_str().unwrap();
    assert!(
        reason.contains("cloudnative-pg 0.26.1") && reason.contains("offline"),
        "{reason}"
    );
    offline.push("--strict-deps");
    let (code, stderr, _) = repo.render(&offline);
    assert_exit_2(
        code,
        &stderr,
        &["chart `postgres-operator` depends on cloudnative-pg 0.26.1"],
    );
}

#[test]
fn a_chart_lock_out_of_date_with_chart_yaml_is_an_error_naming_the_chart() {
    let repo = RepoCopy::new("digitalocean");
    let chart_yaml = repo.root().join("helm/redis-operator/Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(&chart_yaml, text.replace("version: 0.24.0", "version: 0.24.1")).unwrap();
    let (code, stderr, _) = repo.render(&["staging", "--chart", "redis-operator", "--offline"]);
    assert_exit_2(
        code,
        &stderr,
        &[
            "chart `redis-operator`: Chart.lock is out of date",
            "helm duli-render deps redis-operator",
        ],
    );
}

#[test]
fn deps_rewrites_chart_lock_against_the_upstream_url() {
    let repo = RepoCopy::new("digitalocean");
    let server = ChartRepoServer::serve(&shared_chart_repo());
    let lock = repo.root().join("helm/loki/Chart.lock");
    let committed = std::fs::read_to_string(&lock).unwrap();
    std::fs::remove_file(&lock).unwrap();
    let (code, _, stderr) = run(&mut repo.cmd(&["deps", "loki", "--chart-mirror", &mirror(&server)]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("loki: wrote"), "{stderr}");
    let written = std::fs::read_to_string(&lock).unwrap();
    let digest = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("digest:"))
            .map(str::to_string)
    };
    // The same Chart.yaml gives the committed digest; the URLs are the upstream ones, not the mirror.
    assert_eq!(digest(&written), digest(&committed));
    assert!(
        written.contains("repository: https://grafana.github.io/helm-charts")
            && !written.contains("127.0.0.1"),
        "{written}"
    );
    // And the render accepts it, from the chart cache `deps` filled.
    let (code, stderr, report) = repo.render(&["staging", "--chart", "loki", "--offline", "--no-validate"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["rendered"], 1, "{report}");
}

#[test]
fn a_broken_mirror_is_one_sentence_within_the_timeout() {
    let repo = RepoCopy::new("digitalocean");
    let broken = ChartRepoServer::broken();
    let closed = format!("*=http://127.0.0.1:{}", testkit::servers::closed_port());
    let (_silent, silent_url) = testkit::servers::silent_server();
    let silent = format!("*={silent_url}");
    for (mirror, timeout) in [(mirror(&broken), "60s"), (closed, "60s"), (silent, "3s")] {
        let started = Instant::now();
        let (code, stderr, _) = repo.render(&[
            "staging",
            "--chart",
            "postgres-operator",
            "--chart-mirror",
            &mirror,
            "--fetch-timeout",
            timeout,
        ]);
        let url = mirror.trim_start_matches("*=");
        assert_exit_2(
            code,
            &stderr,
            &[&format!(
                "chart `postgres-operator`: cannot fetch cloudnative-pg 0.26.1 from mirror {url}"
            )],
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
        if timeout == "3s" {
            assert!(stderr.contains("no answer within 3s"), "{stderr}");
            assert!(
                started.elapsed() < Duration::from_secs(3 + 30),
                "{:?}",
                started.elapsed()
            );
        }
    }
    // An invalid mirror entry is named, with where it came from.
    let (code, stderr, _) = repo.render(&["staging", "--chart-mirror", "nonsense"]);
    assert_exit_2(code, &stderr, &["--chart-mirror", "`nonsense`"]);
}

/// Issue #16's "done when": the whole repository, both environments, provider generic, through the mirror and
/// without `--crds`, renders every chart with 0 external and 0 findings, every custom resource validated by a
/// CRD a chart ships (Keycloak's from `helm/keycloak-operator/crds/`); offline, from the chart cache.
#[test]
fn staging_and_prod_render_every_chart_and_the_platform_charts_with_none_external_and_no_findings() {
    let repo = RepoCopy::new("generic");
    let server = ChartRepoServer::serve(&shared_chart_repo());
    let out = repo.path("out");
    let mirror = mirror(&server);
    let args = [
        "staging",
        "prod",
        "--chart-mirror",
        &mirror,
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stderr, report) = repo.render(&args);
    assert_eq!(code, 0, "{stderr}");
    let check = |report: &Value| {
        for env in report["environments"].as_array().unwrap() {
            let totals = &env["totals"];
            assert_eq!(totals["charts"], 18, "{totals}");
            assert_eq!(totals["external"], 0, "{totals}");
            // provider generic: cert-manager, sealed-secrets and argo-cd, no DigitalOcean charts.
            assert_eq!(totals["platform"], 3, "{totals}");
            assert_eq!(totals["platform_external"], 0, "{totals}");
            assert_eq!(totals["findings"], 0, "{}", env["findings"]);
            let name = env["env"].as_str().unwrap();
            for platform in ["cert-manager", "sealed-secrets-controller", "argocd"] {
                let entry = chart(env, platform);
                assert_eq!(entry["platform"], true);
                assert!(!entry["objects"].as_array().unwrap().is_empty(), "{entry}");
                assert!(
                    out.join(name).join(platform).is_dir(),
                    "--out lays out {platform}"
                );
            }
            // The Keycloak CRDs come from the keycloak-operator chart, not from a second source.
            let crds = env["crds"].as_array().unwrap();
            for kind in ["Keycloak", "KeycloakRealmImport"] {
                let crd = crds
                    .iter()
                    .find(|c| c["kind"] == kind)
                    .unwrap_or_else(|| panic!("no {kind} CRD in {crds:?}"));
                let source = crd["source"].as_str().unwrap();
                assert!(
                    source.starts_with("chart keycloak-operator ") && source.contains("crds/"),
                    "{kind}: {source}"
                );
            }
            let keycloak = crds.iter().find(|c| c["kind"] == "Keycloak").unwrap();
            assert_eq!(keycloak["objects"], 1, "{keycloak}");
        }
    };
    check(&report);
    assert!(stderr.contains("platform: 3 charts (0 external)"), "{stderr}");
    assert!(stderr.contains("0 findings"), "{stderr}");

    // Offline, without the mirror, rendering everything again: from the chart cache.
    drop(server);
    let (code, stderr, report) = repo.render(&["staging", "prod", "--offline", "--no-cache"]);
    assert_eq!(code, 0, "{stderr}");
    check(&report);
}

/// Argo CD renders each chart into its Application's `spec.destination.namespace`, and so does render: an
/// operator chart's objects land in its fixed namespace in both environments, an environment chart's in the
/// environment's namespace. A chart whose helm inputs are the same in both environments (values files
/// with the same contents, same namespace and release) goes through `helm template` once per run: a
/// `HELM_BIN` wrapper counts the invocations (a test double for counting; the real helm renders).
#[test]
fn charts_render_into_their_applications_namespace_and_shared_inputs_render_once() {
    use std::os::unix::fs::PermissionsExt;
    let repo = RepoCopy::new("generic");
    let server = ChartRepoServer::serve(&shared_chart_repo());
    let log = repo.path("helm-template.log");
    let helm = repo.path("counting-helm");
    std::fs::write(
        &helm,
        format!(
            "#!/bin/sh\nif [ \"$1\" = template ]; then echo \"$2\" >> '{}'; fi\nexec '{}' \"$@\"\n",
            log.display(),
            common::helm4().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let report = repo.path("report.json");
    let mirror = mirror(&server);
    let mut cmd = repo.cmd(&["staging", "prod", "--chart-mirror", &mirror, "--no-validate"]);
    cmd.env("HELM_BIN", &helm).arg("--report").arg(&report);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let report = read_json(&report);
    let envs = report["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2);
    for env in envs {
        let name = env["env"].as_str().unwrap();
        let objects = |chart_name: &str| chart(env, chart_name)["objects"].to_string();
        // postgres-operator's Application: destination cnpg-system.
        let operator = objects("postgres-operator");
        assert!(
            operator.contains("\"Deployment/cnpg-system/"),
            "{name}: {operator}"
        );
        assert!(!operator.contains(&format!("/{name}/")), "{name}: {operator}");
        // backend's Application: destination the environment's namespace.
        let backend = objects("backend");
        assert!(
            backend.contains(&format!("\"Deployment/{name}/")),
            "{name}: {backend}"
        );
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let runs = |release: &str| text.lines().filter(|l| *l == release).count();
    // Values files byte-identical in staging and prod, fixed destination: once for both.
    for shared in [
        "argocd-ingress",
        "cert-manager-issuers",
        "keycloak-operator",
        "kube-prometheus-stack",
        "loki",
        "postgres-operator",
        "rabbitmq-operator",
        "rabbitmq-topology-operator",
        "redis-operator",
    ] {
        assert_eq!(
            runs(shared),
            1,
            "{shared} rendered {} times:\n{text}",
            runs(shared)
        );
    }
    // Different values and namespaces: once per environment.
    assert_eq!(runs("backend"), 2, "{text}");
    assert_eq!(runs("secrets"), 2, "{text}");
}

/// A platform chart from an `oci://` repository (as the DigitalOcean drivers are), fetched through an OCI
/// mirror: a real registry (the distribution registry) on 127.0.0.1, the chart pushed into it by helm.
/// The mirror speaks plain HTTP on a loopback address, which helm pull is told to use (as Docker does);
/// a chart the registry does not hold is external, with helm's reason; the chart cache serves the next
/// run offline.
#[test]
fn a_platform_chart_from_an_oci_registry_renders_through_an_oci_mirror() {
    let repo = RepoCopy::new("generic");
    let catalog = repo.root().join("gitops/platform.yml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    let upstream = "oci://registry.example.com/bitnami-labs";
    std::fs::write(
        &catalog,
        text.replace(
            "repo: https://bitnami-labs.github.io/sealed-secrets",
            &format!("repo: {upstream}"),
        ),
    )
    .unwrap();
    let registry = testkit::registry::OciRegistry::start();
    let server = ChartRepoServer::serve(&shared_chart_repo());
    let (every, oci) = (mirror(&server), format!("{upstream}={}", registry.url("mirror")));
    let args = [
        "staging",
        "--chart-mirror",
        &every,
        "--chart-mirror",
        &oci,
        "--no-validate",
    ];

    // Not pushed yet: external, with what helm said; --strict-deps fails naming the entry.
    let (code, stderr, report) = repo.render(&args);
    assert_eq!(code, 0, "{stderr}");
    let entry = chart(&report, "sealed-secrets-controller");
    assert_eq!(entry["status"], "external", "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.contains("sealed-secrets 2.18.5") && reason.contains("not found"),
        "{reason}"
    );

    let package = shared_chart_repo().join("sealed-secrets-2.18.5.tgz");
    registry.push(&common::helm4(), &package, "mirror");
    let (code, stderr, report) = repo.render(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["totals"]["platform_external"], 0, "{report}");
    let entry = chart(&report, "sealed-secrets-controller");
    assert_eq!(entry["status"], "rendered", "{entry}");
    assert!(
        entry["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "Deployment/kube-system/sealed-secrets-controller"),
        "{entry}"
    );

    // Offline, the registry gone: from the chart cache.
    drop(registry);
    let (code, stderr, report) = repo.render(&["staging", "--offline", "--no-cache", "--no-validate"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(chart(&report, "sealed-secrets-controller")["status"], "rendered");
}

//! CRDs from the charts themselves (issue #16): a chart that vendors the real upstream packages of
//! `../shared/charts/repo` (cloudnative-pg renders its CRDs from templates; sealed-secrets ships them in
//! `crds/`, which `helm template` leaves out) validates its custom resources with no `--crds`, and says
//! where each CRD came from; an explicit `--crds` wins over a chart's.

use crate::common;

use std::path::Path;

use serde_json::Value;

const CHART: &str = "apiVersion: v2
name: db
description: Fixture for CRDs from charts - vendors cloudnative-pg and sealed-secrets.
version: 0.1.0
dependencies:
  - name: cloudnative-pg
    version: 0.26.1
    repository: https://cloudnative-pg.github.io/charts
  - name: sealed-secrets
    version: 2.18.5
    repository: https://bitnami-labs.github.io/sealed-secrets
";

const TEMPLATE: &str = "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: db-pg
spec:
  instances: \"three\"
  storage:
    size: 10Gi
---
apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: db-credentials
spec:
  encryptedData:
    password: 12
";

/// The fixture repository plus `helm/db`, vendoring the two real packages.
fn repo() -> common::FixtureRepo {
    let repo = common::FixtureRepo::new();
    repo.write("helm/db/Chart.yaml", CHART);
    repo.write("helm/db/values.yaml", "{}\n");
    repo.write("helm/db/templates/resources.yaml", TEMPLATE);
    let packages = common::workspace().join("../shared/charts/repo");
    std::fs::create_dir_all(repo.root().join("helm/db/charts")).unwrap();
    for package in ["cloudnative-pg-0.26.1.tgz", "sealed-secrets-2.18.5.tgz"] {
        std::fs::copy(
            packages.join(package),
            repo.root().join("helm/db/charts").join(package),
        )
        .unwrap();
    }
    repo
}

/// Render `--chart db` (no `--crds`, no `DULI_CRDS`) with `extra` arguments; exit code, stderr, report.
fn render(repo: &common::FixtureRepo, extra: &[&Path]) -> (i32, String, Value) {
    render_charts(repo, &["db"], extra)
}

/// Render `charts` with `extra` arguments, the cache on; exit code, stderr, report.
fn render_charts(repo: &common::FixtureRepo, charts: &[&str], extra: &[&Path]) -> (i32, String, Value) {
    let report = repo.path("report.json");
    let mut cmd = std::process::Command::new(common::binary());
    common::isolate(&mut cmd, &common::helm4());
    for chart in charts {
        cmd.args(["--chart", chart]);
    }
    cmd.env("DULI_RENDER_CACHE", repo.cache())
        .args(["staging", "-v", "--repo"])
        .arg(repo.root())
        .arg("--report")
        .arg(&report);
    for arg in extra {
        cmd.arg(arg);
    }
    let (code, _, stderr) = common::run(&mut cmd);
    (code, stderr, common::read_json(&report))
}

fn crd<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["crds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no CRD {kind} in {:#}", report["crds"]))
}

fn schema_findings<'a>(report: &'a Value, object: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "schema" && f["object"].as_str().unwrap().starts_with(object))
        .collect()
}

#[test]
fn custom_resources_are_validated_against_the_crds_their_charts_ship_with_the_source_named() {
    let repo = repo();
    let (code, stderr, report) = render(&repo, &[]);
    assert_eq!(code, 1, "{stderr}");

    // Rendered by cloudnative-pg's templates.
    let cluster = crd(&report, "Cluster");
    assert_eq!(cluster["api_version"], "postgresql.cnpg.io/v1");
    let source = cluster["source"].as_str().unwrap();
    assert!(
        source.starts_with(
            "chart cloudnative-pg 0.26.1 (rendered by `db`, db/charts/cloudnative-pg/templates/"
        ),
        "{source}"
    );
    assert_eq!(cluster["objects"], 1);
    assert!(cluster.get("instead_of").is_none(), "{cluster}");
    let found = schema_findings(&report, "Cluster/");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]["message"].as_str().unwrap().contains("spec.instances"),
        "{}",
        found[0]
    );
    assert!(
        found[0]["fix"]
            .as_str()
            .unwrap()
            .contains("CRD from chart cloudnative-pg 0.26.1"),
        "{}",
        found[0]
    );

    // Shipped in sealed-secrets' crds/ directory, which helm template does not print.
    let sealed = crd(&report, "SealedSecret");
    assert_eq!(
        sealed["source"], "chart db 0.1.0 → sealed-secrets 2.18.5, crds/bitnami.com_sealedsecrets.yaml",
        "{sealed}"
    );
    let found = schema_findings(&report, "SealedSecret/");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("spec.encryptedData.password"),
        "{}",
        found[0]
    );

    // No custom resource lacks its CRD, and -v says where each came from.
    let missing: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "crd-missing")
        .collect();
    assert!(missing.is_empty(), "{missing:#?}");
    assert!(
        stderr.contains("CRD bitnami.com/v1alpha1 SealedSecret: from chart db 0.1.0 → sealed-secrets 2.18.5"),
        "{stderr}"
    );
}

#[test]
fn an_explicit_crds_file_wins_over_the_one_a_chart_ships_and_the_report_says_so() {
    let repo = repo();
    let dir = repo.path("crds");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cnpg-cluster.yaml");
    std::fs::copy(
        common::crds().join("cloudnative-pg/postgresql.cnpg.io_clusters.yaml"),
        &file,
    )
    .unwrap();
    let (code, stderr, report) = render(&repo, &[Path::new("--crds"), &dir]);
    assert_eq!(code, 1, "{stderr}");
    let cluster = crd(&report, "Cluster");
    assert_eq!(
        cluster["source"],
        file.display().to_string().as_str(),
        "{cluster}"
    );
    assert!(
        cluster["instead_of"]
            .as_str()
            .unwrap()
            .starts_with("chart cloudnative-pg 0.26.1"),
        "{cluster}"
    );
    let found = schema_findings(&report, "Cluster/");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]["fix"].as_str().unwrap().contains("cnpg-cluster.yaml"),
        "{}",
        found[0]
    );
    // The kinds --crds does not have still come from the charts.
    assert!(
        crd(&report, "SealedSecret")["source"]
            .as_str()
            .unwrap()
            .contains("sealed-secrets 2.18.5")
    );
}

#[test]
fn the_pipeline_checks_our_values_against_the_vendored_upstream_charts() {
    let repo = repo();
    repo.write(
        "helm/db/values-staging.yml",
        "cloudnative-pg:\n  replicaCount: 1\n  replicaCountt: 2\n  podAnnotations: {free: form}\nsealed-secrets:\n  fullnameOverride: sealed-secrets-controller\n",
    );
    let (code, stderr, report) = render(&repo, &[]);
    assert_eq!(code, 1, "{stderr}");
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "values-unknown")
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["severity"], "warning");
    assert_eq!(found[0]["file"], "db/values-staging.yml");
    assert_eq!(found[0]["object"], "values cloudnative-pg.replicaCountt");
    assert_eq!(found[0]["fix"], "did you mean `cloudnative-pg.replicaCount`?");
    // A warm run reports it from the cache.
    let (_, stderr, warm) = render(&repo, &[]);
    assert_eq!(warm["charts"][0]["status"], "cached", "{stderr}");
    assert_eq!(warm["findings"], report["findings"]);
    // The rule can be skipped like any other.
    let (_, stderr, report) = render(&repo, &[Path::new("--policy-skip"), Path::new("values-unknown")]);
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "values-unknown"),
        "{stderr}"
    );
}

#[test]
fn findings_cached_without_the_operator_chart_are_not_reused_when_it_renders_too() {
    // `pg` holds a Cluster; its CRD comes only from `db` (cloudnative-pg). Validated alone, the Cluster
    // has no CRD; rendered with `db`, it must be validated again, not taken from the cache.
    let repo = repo();
    repo.write("helm/pg/Chart.yaml", "apiVersion: v2\nname: pg\nversion: 0.1.0\n");
    repo.write("helm/pg/values.yaml", "{}\n");
    repo.write(
        "helm/pg/templates/cluster.yaml",
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\nspec:\n  instances: 2\n  storage:\n    size: 1Gi\n",
    );
    let rules = |report: &Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["chart"] == "pg" && (f["rule"] == "crd-missing" || f["rule"] == "schema"))
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, stderr, alone) = render_charts(&repo, &["pg"], &[]);
    assert_eq!(rules(&alone), ["crd-missing"], "{stderr}");
    let (_, stderr, together) = render_charts(&repo, &["pg", "db"], &[]);
    assert_eq!(rules(&together), Vec::<String>::new(), "{stderr}");
    let pg = together["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pg")
        .unwrap();
    assert_eq!(pg["status"], "cached", "the render itself is reused");
    assert_eq!(crd(&together, "Cluster")["objects"], 2);
}

#[test]
fn a_warm_run_reports_the_same_crd_sources_and_findings_from_the_cache() {
    let repo = repo();
    let (cold_code, _, cold) = render(&repo, &[]);
    let (warm_code, stderr, warm) = render(&repo, &[]);
    assert_eq!((cold_code, warm_code), (1, 1), "{stderr}");
    assert_eq!(warm["charts"][0]["status"], "cached", "{stderr}");
    assert!(
        !stderr.contains("CRD postgresql.cnpg.io/v1 Cluster: from"),
        "nothing re-read: {stderr}"
    );
    assert_eq!(cold["crds"], warm["crds"]);
    assert_eq!(cold["findings"], warm["findings"]);
}

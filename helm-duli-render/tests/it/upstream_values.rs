//! Values checked against the upstream charts (issue #16): the real chart packages of
//! `../shared/charts/repo` (read as `.tgz`, unpacked in memory) against the repository's wrapper values
//! and `gitops/platform.yml`.

use std::path::{Path, PathBuf};

use helm_duli_render::upstream_values::{self, ChartsIn, UpstreamChartDir};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The static chart repository of the real upstream charts.
fn chart_repo() -> PathBuf {
    workspace().join("../shared/charts/repo")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn a_misspelled_key_in_a_wrapper_values_file_is_a_warning_with_file_path_and_nearest_key() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("loki");
    copy_dir(&workspace().join("helm/loki"), &chart);
    let values = std::fs::read_to_string(chart.join("values.yaml")).unwrap();
    let typo = values.replacen(
        "  singleBinary:\n    replicas: 1\n",
        "  singleBinary:\n    replicass: 1\n",
        1,
    );
    assert_ne!(
        typo, values,
        "helm/loki/values.yaml no longer sets loki.singleBinary.replicas"
    );
    std::fs::write(chart.join("values.yaml"), typo).unwrap();

    let (found, missing) =
        upstream_values::check_chart_dir(&chart, &["staging", "prod"], &ChartsIn(chart_repo())).unwrap();
    assert!(missing.is_empty(), "{missing:?}");
    let typo: Vec<_> = found.iter().filter(|k| k.path.contains("replicass")).collect();
    assert_eq!(typo.len(), 1, "{found:#?}");
    assert_eq!(typo[0].file, "loki/values.yaml");
    assert_eq!(typo[0].path, "loki.singleBinary.replicass");
    assert_eq!(typo[0].nearest.as_deref(), Some("loki.singleBinary.replicas"));
    assert_eq!(typo[0].chart, "loki 6.29.0");
    let finding = typo[0].finding("loki");
    assert_eq!(finding.rule, "values-unknown");
    assert_eq!(finding.severity, helm_duli_render::Severity::Warning);
    let text = finding.to_string();
    assert!(
        text.contains("loki/values.yaml") && text.contains("did you mean `loki.singleBinary.replicas`"),
        "{text}"
    );
}

#[test]
fn a_misspelled_key_in_a_subchart_of_an_upstream_package_is_checked_against_the_subchart() {
    // kube-prometheus-stack carries grafana in charts/: `grafana.admin.existingSecret` is grafana's value.
    let kps = UpstreamChartDir::open(&chart_repo().join("kube-prometheus-stack-77.14.0.tgz")).unwrap();
    assert!(
        kps.subcharts.contains_key("grafana"),
        "{:?}",
        kps.subcharts.keys()
    );
    let ours = serde_json::json!({
        "grafana": {"admin": {"existingSecret": "grafana-admin", "passwordKy": "x"}},
        "prometheus": {"prometheusSpec": {"retention": "15d", "retentionn": "1d"}},
    });
    let found = upstream_values::unknown_keys(&ours, &kps, "values.yaml", "kube-prometheus-stack");
    let paths: Vec<(&str, Option<&str>, &str)> = found
        .iter()
        .map(|k| (k.path.as_str(), k.nearest.as_deref(), k.chart.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            (
                "kube-prometheus-stack.grafana.admin.passwordKy",
                Some("kube-prometheus-stack.grafana.admin.passwordKey"),
                "kube-prometheus-stack 77.14.0 → grafana 10.0.0"
            ),
            (
                "kube-prometheus-stack.prometheus.prometheusSpec.retentionn",
                Some("kube-prometheus-stack.prometheus.prometheusSpec.retention"),
                "kube-prometheus-stack 77.14.0"
            ),
        ]
    );
}

#[test]
fn a_typo_in_platform_values_is_found_through_the_charts_values_schema() {
    // cert-manager ships a values.schema.json with additionalProperties: false.
    let tmp = tempfile::tempdir().unwrap();
    let platform = tmp.path().join("platform.yml");
    let text = std::fs::read_to_string(workspace().join("gitops/platform.yml")).unwrap();
    let typo = text.replacen(
        "      crds:\n        enabled: true\n",
        "      crds:\n        enable: true\n",
        1,
    );
    assert_ne!(
        typo, text,
        "gitops/platform.yml no longer sets cert-manager's crds.enabled"
    );
    std::fs::write(&platform, typo).unwrap();
    let (found, _) = upstream_values::check_platform(&platform, &ChartsIn(chart_repo())).unwrap();
    let keys: Vec<(&str, &str, Option<&str>)> = found
        .iter()
        .map(|(entry, k)| (entry.as_str(), k.path.as_str(), k.nearest.as_deref()))
        .collect();
    assert_eq!(
        keys,
        [(
            "platform/cert-manager",
            "charts[0].values.crds.enable",
            Some("charts[0].values.crds.enabled")
        )]
    );
}

/// The repository's own values, every wrapper chart and every platform entry whose chart is in the local
/// repository, hold no key the upstream charts lack (the DigitalOcean charts are not in it).
#[test]
fn the_repositorys_own_values_have_no_unknown_keys() {
    let mut report = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace().join("helm")).unwrap() {
        let dir = entry.unwrap().path();
        let (found, missing) =
            upstream_values::check_chart_dir(&dir, &["staging", "prod"], &ChartsIn(chart_repo())).unwrap();
        assert!(missing.is_empty(), "{}: {missing:?}", dir.display());
        let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
        checked += usize::from(chart_yaml.contains("dependencies:"));
        report.extend(
            found
                .iter()
                .map(|k| format!("{}: {} ({:?})", k.file, k.path, k.nearest)),
        );
    }
    assert_eq!(checked, 6, "the six wrapper charts");
    let (found, missing) =
        upstream_values::check_platform(&workspace().join("gitops/platform.yml"), &ChartsIn(chart_repo()))
            .unwrap();
    assert_eq!(
        missing,
        [
            "csi-digitalocean 4.14.0",
            "digitalocean-cloud-controller-manager 0.1.64"
        ]
    );
    report.extend(
        found
            .iter()
            .map(|(e, k)| format!("{e}: {} ({:?})", k.path, k.nearest)),
    );
    assert!(
        report.is_empty(),
        "unknown keys in the repository's values:\n{}",
        report.join("\n")
    );
}

//! Output that upstream charts generate at random (issue #16): the real grafana chart of
//! `../shared/charts/repo`, rendered twice by helm 4 with the same inputs, differs (its admin password and
//! the checksum annotation derived from it); `--diff` reports those as non-deterministic fields, not as
//! changes, while a real change still is one.

use crate::common;

use helm_duli_render::{diff, manifests, output};

/// `helm template grafana <package>` as the `--out` tree would lay it out.
fn render_grafana(set: &[&str]) -> output::Tree {
    let package = common::workspace().join("../shared/charts/repo/grafana-10.0.0.tgz");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::helm4());
    for var in ["HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"] {
        cmd.env(var, home.path());
    }
    cmd.args(["template", "grafana"])
        .arg(&package)
        .args(["--namespace", "monitoring"]);
    for item in set {
        cmd.args(["--set", item]);
    }
    let (code, stdout, stderr) = common::run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let objects = manifests::split(&stdout, "grafana").unwrap();
    let mut tree = output::Tree::new();
    output::add_objects(&mut tree, "grafana", &objects);
    tree
}

/// Shown Secret values, the grafana directory taken for an upstream chart (it is one).
fn upstream() -> diff::Compare {
    diff::Compare {
        secrets: diff::SecretValues::Shown,
        upstream: ["grafana".to_string()].into(),
    }
}

#[test]
fn the_real_grafana_chart_rendered_twice_differs_only_in_non_deterministic_fields() {
    let first = render_grafana(&[]);
    let second = render_grafana(&[]);
    assert_ne!(
        first, second,
        "grafana's admin password is random on every render"
    );

    let compared = diff::compare("staging", &first, &second, &upstream());
    assert!(compared.is_empty(), "{}", compared.text);
    let fields: Vec<(&str, &str)> = compared
        .nondeterministic
        .iter()
        .map(|f| (f.file.as_str(), f.path.as_str()))
        .collect();
    assert!(
        fields
            .iter()
            .any(|(file, path)| file.starts_with("grafana/secret-") && *path == "data.admin-password"),
        "{fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|(file, path)| file.starts_with("grafana/deployment-")
                && path.starts_with("spec.template.metadata.annotations.checksum/")),
        "{fields:?}"
    );

    // A real change (and only it) is still a change.
    let third = render_grafana(&["replicas=2"]);
    let compared = diff::compare("staging", &first, &third, &upstream());
    assert_eq!(compared.changed.len(), 1, "{:?}", compared.changed);
    assert!(
        compared.changed[0].starts_with("grafana/deployment-"),
        "{:?}",
        compared.changed
    );
    assert!(compared.text.contains("+  replicas: 2"), "{}", compared.text);
}

//! `helm-duli-render` end to end on the fixture charts (tests/fixtures/repo) through the real helm 4:
//! validation, one failing fixture per policy rule, external charts, bad input, the cache, determinism,
//! `--diff`, `--out` and `--report`.

use crate::common;

use std::collections::BTreeSet;

use crate::common::{FixtureRepo, assert_exit_2, assert_finding, chart_args, findings, read_json, run};

/// One failing chart per validation rule: a misspelled CNPG field, a wrong RabbitMQ type, a core-type typo,
/// an unknown CRD.
fn validation_fixtures() -> Vec<String> {
    chart_args(&["cnpg-typo", "rabbitmq-type", "core-typo", "unknown-crd"])
}

const VALIDATION_RULES: &[&str] = &["schema", "crd-missing", "core-type", "api-unknown"];

#[test]
fn validation_catches_misspelled_cnpg_field_wrong_rabbitmq_type_core_typo_and_unknown_crd() {
    let repo = FixtureRepo::new();
    let report = repo.path("report.json");
    let (code, stdout, stderr) = run(repo
        .cmd("staging")
        .args(validation_fixtures())
        .arg("--report")
        .arg(&report));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("kind: Cluster"),
        "the stream still comes out: {stdout}"
    );
    let report = read_json(&report);
    let found = findings(&report);
    let messages: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect();
    assert_finding(&found, "schema", "cnpg-typo", "Cluster/database");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("unknown field `spec.instancez`")),
        "{messages:?}"
    );
    assert!(stderr.contains("did you mean `instances`"), "{stderr}");
    assert_finding(&found, "schema", "rabbitmq-type", "RabbitmqCluster/queue");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.replicas") && m.contains("\"three\" is not of type \"integer\"")),
        "{messages:?}"
    );
    assert_finding(&found, "core-type", "core-typo", "Deployment/core-typo");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("spec.template.spec.containers[0].imagePullPolicyy")),
        "{messages:?}"
    );
    assert_finding(&found, "crd-missing", "unknown-crd", "Widget/gadget");
    let files: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert!(files.contains("cnpg-typo/templates/custom.yaml"), "{files:?}");

    // The same charts are clean without validation: the findings above come from it.
    let (code, _, stderr) = run(repo
        .cmd("staging")
        .args(validation_fixtures())
        .arg("--no-validate"));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_good_fixture_and_its_application_are_clean_in_both_environments() {
    let repo = FixtureRepo::new();
    for env in ["staging", "prod"] {
        let report = repo.path(&format!("{env}.json"));
        let (code, stdout, stderr) = run(repo
            .cmd(env)
            .args(["--chart", "good", "--chart", "applications"])
            .arg("--report")
            .arg(&report));
        assert_eq!(code, 0, "{env}: {stderr}");
        assert!(stdout.contains(&format!("name: {env}-good")), "{stdout}");
        assert_eq!(findings(&read_json(&report)), vec![], "{env}");
    }
}

#[test]
fn each_policy_rule_has_a_failing_fixture_and_can_be_skipped() {
    let repo = FixtureRepo::new();
    let cases = [
        (
            "configmap-secret",
            "policy-configmap-secret",
            "staging",
            "DATABASE_PASSWORD",
        ),
        (
            "standard-labels",
            "policy-standard-labels",
            "staging",
            "missing labels app.kubernetes.io/name",
        ),
        ("sealed-secret", "policy-sealed-secret", "staging", "plain Secret"),
        ("image-tag", "policy-image-tag", "prod", "uses the `latest` tag"),
        (
            "resources",
            "policy-resources",
            "prod",
            "no resource requests or limits",
        ),
        ("pdb", "policy-pdb", "prod", "no PodDisruptionBudget"),
    ];
    for (rule, chart, env, message) in cases {
        let report = repo.path(&format!("{rule}.json"));
        let (code, _, stderr) = run(repo
            .cmd(env)
            .args(["--chart", chart])
            .arg("--report")
            .arg(&report));
        assert_eq!(code, 1, "{rule}: {stderr}");
        let report = read_json(&report);
        let rules: BTreeSet<String> = findings(&report).into_iter().map(|(rule, _, _)| rule).collect();
        assert_eq!(rules, BTreeSet::from([rule.to_string()]), "{rule}: {stderr}");
        let finding = &report["findings"][0];
        assert!(
            finding["message"].as_str().unwrap().contains(message),
            "{rule}: {finding}"
        );
        assert!(!finding["fix"].as_str().unwrap().is_empty(), "{rule}: {finding}");
        assert!(
            finding["file"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{chart}/templates/")),
            "{rule}: {finding}"
        );
        assert!(stderr.contains(&format!("[{rule}]")), "{stderr}");
        let (code, _, stderr) = run(repo.cmd(env).args(["--chart", chart, "--policy-skip", rule]));
        assert_eq!(code, 0, "{rule} skipped: {stderr}");
    }
    // The production rules do not apply to staging.
    for chart in ["policy-image-tag", "policy-resources", "policy-pdb"] {
        let (code, _, stderr) = run(repo.cmd("staging").args(["--chart", chart]));
        assert_eq!(code, 0, "{chart} in staging: {stderr}");
    }
}

#[test]
fn unvendored_upstream_charts_are_external_unless_strict() {
    let repo = FixtureRepo::new();
    let report = repo.path("report.json");
    let (code, stdout, stderr) = run(repo
        .cmd("staging")
        .args(["--chart", "upstream"])
        .arg("--report")
        .arg(&report));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    let report = read_json(&report);
    assert_eq!(report["charts"][0]["status"], "external");
    assert_eq!(report["charts"][0]["upstream"][0]["name"], "loki");
    assert_eq!(report["charts"][0]["upstream"][0]["version"], "6.16.0");
    assert_eq!(report["totals"]["external"], 1);
    let (code, _, stderr) = run(repo.cmd("staging").args(["--chart", "upstream", "--strict-deps"]));
    assert_exit_2(code, &stderr, &["chart `upstream` depends on loki 6.16.0"]);
}

/// Seed `out/staging` with an earlier render, run `args`, and check: exit 2, the message, and the earlier
/// render untouched.
fn assert_bad_input(repo: &FixtureRepo, env: &str, args: &[&str], expected: &[&str]) {
    let _ = std::fs::remove_dir_all(repo.path("out"));
    let out = repo.earlier_render();
    let before = snapshot(&out);
    let (code, stdout, stderr) = run(repo.cmd(env).args(args).arg("--out").arg(&out));
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert_eq!(stdout, "", "{args:?}");
    for text in expected {
        assert!(stderr.contains(text), "{args:?}: expected `{text}` in: {stderr}");
    }
    assert_eq!(snapshot(&out), before, "{args:?} changed the earlier output");
}

/// Every path and file content under `dir`.
fn snapshot(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    fn walk(root: &std::path::Path, dir: &std::path::Path, files: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                files.push((name, String::new()));
                walk(root, &path, files);
            } else {
                files.push((name, std::fs::read_to_string(&path).unwrap_or_default()));
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut files);
    }
    files.sort();
    files
}

#[test]
fn bad_input_exits_2_names_the_problem_and_writes_nothing() {
    let repo = FixtureRepo::new();
    assert_bad_input(&repo, "qa", &[], &["unknown environment `qa`", "prod, staging"]);
    assert_bad_input(
        &repo,
        "staging",
        &["--chart", "template-error"],
        &[
            "chart `template-error`",
            "template-error/templates/configmap.yaml line 6",
            "nil pointer",
        ],
    );
    assert_bad_input(
        &repo,
        "staging",
        &["--chart", "values-error"],
        &["chart `values-error`", "values-staging.yml", "line 3"],
    );
    assert_bad_input(
        &repo,
        "staging",
        &["--chart", "nope"],
        &["unknown chart `nope`", "good", "applications"],
    );
    assert_bad_input(
        &repo,
        "staging",
        &["--policy-skip", "no-such-rule"],
        &["unknown rule `no-such-rule`", "image-tag"],
    );
    assert_bad_input(
        &repo,
        "staging",
        &["--set", "novalue"],
        &["--set `novalue` is not KEY=VALUE"],
    );

    let broken = repo.path("broken-crds");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("ok.yaml"), "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    std::fs::write(
        broken.join("broken.yaml"),
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: [x\n",
    )
    .unwrap();
    let broken_arg = broken.display().to_string();
    assert_bad_input(
        &repo,
        "staging",
        &["--chart", "good", "--no-cache", "--crds", &broken_arg],
        &["broken CRD file", "broken.yaml", "line"],
    );

    // helm missing: HELM_BIN names nothing.
    let out = repo.path("out");
    let before = snapshot(&out);
    let (code, _, stderr) = run(repo
        .cmd("staging")
        .args(["--chart", "good"])
        .arg("--out")
        .arg(&out)
        .env("HELM_BIN", "/nonexistent/helm"));
    assert_exit_2(
        code,
        &stderr,
        &["/nonexistent/helm", "not found", "install-tools"],
    );
    assert_eq!(snapshot(&out), before);

    // --out that cannot be written: its parent is a file.
    std::fs::write(repo.path("a-file"), "x").unwrap();
    let (code, _, stderr) = repo.render_good("--out", &repo.path("a-file/out"));
    assert_exit_2(code, &stderr, &["cannot write --out", "a-file/out"]);
}

#[test]
fn undefined_jinja_variable_names_file_and_line() {
    let repo = FixtureRepo::new();
    let broken = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/applications-broken/broken.yml.j2"),
    )
    .unwrap();
    repo.write("gitops/applications/broken.yml.j2", &broken);
    let (code, stdout, stderr) = run(repo.cmd("staging").args(["--chart", "applications"]));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("gitops/applications/broken.yml.j2 line 10"),
        "{stderr}"
    );
    assert!(stderr.contains("undefined"), "{stderr}");
}

#[test]
fn two_renders_are_byte_identical_cached_or_not() {
    let repo = FixtureRepo::new();
    let charts = chart_args(&["good", "policy-pdb", "cnpg-typo", "applications"]);
    let (_, first, _) = run(repo.cmd("prod").args(&charts).arg("--no-cache"));
    let (_, second, _) = run(repo.cmd("prod").args(&charts));
    let (_, third, _) = run(repo.cmd("prod").args(&charts));
    assert!(first.contains("kind: Deployment"));
    assert_eq!(first, second);
    assert_eq!(first, third);
    run(repo
        .cmd("prod")
        .args(&charts)
        .arg("--no-cache")
        .arg("--out")
        .arg(repo.path("a")));
    run(repo.cmd("prod").args(&charts).arg("--out").arg(repo.path("b")));
    let (a, b) = (snapshot(&repo.path("a")), snapshot(&repo.path("b")));
    assert_eq!(a, b);
    let names: Vec<&str> = a.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"prod/good/deployment-good.yml"), "{names:?}");
    assert!(names.contains(&"prod/applications/good.yml"), "{names:?}");
    assert!(
        names.contains(&"prod/cnpg-typo/cluster-database.yml"),
        "{names:?}"
    );
    let deployment = &a
        .iter()
        .find(|(name, _)| name == "prod/good/deployment-good.yml")
        .unwrap()
        .1;
    assert!(
        deployment.starts_with("# Source: good/templates/deployment.yaml\napiVersion: apps/v1\n"),
        "{deployment}"
    );
    // No temporary siblings are left behind.
    let top: Vec<String> = std::fs::read_dir(repo.path("a"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    assert_eq!(top, ["prod"]);
}

/// The status of chart `good` in a fresh report.
fn good_status(repo: &FixtureRepo, args: &[&str], helm: Option<&std::path::Path>) -> (String, String) {
    let report = repo.path("cache-report.json");
    let mut cmd = repo.cmd("staging");
    cmd.args(["--chart", "good"])
        .args(args)
        .arg("--report")
        .arg(&report);
    if let Some(helm) = helm {
        cmd.env("HELM_BIN", helm);
    }
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    (
        read_json(&report)["charts"][0]["status"]
            .as_str()
            .unwrap()
            .to_string(),
        stdout,
    )
}

#[test]
fn every_cached_input_invalidates_the_cache_when_changed() {
    let repo = FixtureRepo::new();
    std::fs::write(repo.path("extra.yml"), "replicas: 1\n").unwrap();
    let extra = repo.path("extra.yml").display().to_string();
    let args = ["--values", &extra, "--set", "config.EXTRA=a"];
    let status = |repo: &FixtureRepo| good_status(repo, &args, None).0;
    assert_eq!(status(&repo), "rendered");
    assert_eq!(status(&repo), "cached");

    type Change = Box<dyn Fn(&FixtureRepo)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "template",
            Box::new(|r| r.write("helm/good/templates/extra.yaml", "# a new template\n")),
        ),
        (
            "values.yaml",
            Box::new(|r| r.replace("helm/good/values.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn")),
        ),
        (
            "values-staging.yml",
            Box::new(|r| {
                r.write(
                    "helm/good/values-staging.yml",
                    &format!("{}replicas: 1\n", r.read("helm/good/values-staging.yml")),
                )
            }),
        ),
        (
            "--values file",
            Box::new(|r| std::fs::write(r.path("extra.yml"), "replicas: 1\n# changed\n").unwrap()),
        ),
        (
            "destination namespace of good's Application",
            Box::new(|r| {
                r.replace(
                    "gitops/applications/good.yml.j2",
                    "namespace: {{ namespace }}\n  syncPolicy",
                    "namespace: good-system\n  syncPolicy",
                )
            }),
        ),
    ];
    for (what, change) in changes {
        change(&repo);
        assert_eq!(status(&repo), "rendered", "changing the {what} must re-render");
        assert_eq!(status(&repo), "cached", "after changing the {what}");
    }
    // helm reads none of the environment file: a key it does not pass to the chart misses nothing.
    repo.replace(
        "gitops/environments/staging.yml",
        "log_level: debug",
        "log_level: info",
    );
    assert_eq!(
        status(&repo),
        "cached",
        "the environment file is not a helm input"
    );
    // --set values.
    assert_eq!(
        good_status(&repo, &["--values", &extra, "--set", "config.EXTRA=b"], None).0,
        "rendered"
    );
    assert_eq!(
        good_status(&repo, &["--values", &extra, "--set", "config.EXTRA=b"], None).0,
        "cached"
    );
    // The helm version: the same inputs through helm 3.17.
    let helm3 = common::helm3();
    assert_eq!(good_status(&repo, &args, Some(&helm3)).0, "rendered");
    assert_eq!(good_status(&repo, &args, Some(&helm3)).0, "cached");
    // --no-cache renders anyway, and cached output equals a fresh render.
    let (cached_status, cached) = good_status(&repo, &args, None);
    let (fresh_status, fresh) = good_status(&repo, &[&args[..], &["--no-cache"]].concat(), None);
    assert_eq!(
        (cached_status.as_str(), fresh_status.as_str()),
        ("cached", "rendered")
    );
    assert_eq!(cached, fresh);
    // A changed value shows up in the output, never a stale one.
    let (_, three) = good_status(&repo, &["--set", "replicas=3"], None);
    assert!(three.contains("replicas: 3"), "{three}");
}

#[test]
fn diff_shows_a_changed_replica_count() {
    let repo = FixtureRepo::new();
    let out = repo.path("out");
    let (code, _, stderr) = repo.render_good("--out", &out);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = repo.render_good("--diff", &out);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    let (code, stdout, stderr) = run(repo
        .cmd("staging")
        .args(["--chart", "good", "--set", "replicas=3"])
        .arg("--diff")
        .arg(&out));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("--- a/staging/good/deployment-good.yml\n+++ b/staging/good/deployment-good.yml\n"),
        "{stdout}"
    );
    assert!(stdout.contains("-  replicas: 1\n+  replicas: 3\n"), "{stdout}");
    assert!(
        !stdout.contains("configmap-good"),
        "only the changed object: {stdout}"
    );
    assert!(stderr.contains("diff: 1 changed, 0 added, 0 removed"), "{stderr}");
    let (code, _, stderr) = repo.render_good("--diff", &repo.path("nothing-here"));
    assert_exit_2(code, &stderr, &["cannot read the earlier render", "nothing-here"]);
}

/// A Secret's values stay out of `--diff` (a CI log) unless `--show-secrets`: the changed key is marked
/// with its length, the unchanged one shows as REDACTED.
#[test]
fn diff_redacts_secret_values_unless_asked() {
    let repo = FixtureRepo::new();
    let out = repo.path("out");
    let secret = |password: &str| {
        run(repo
            .cmd("staging")
            // The policy against plain Secrets is not what this test is about.
            .args(["--chart", "good", "--policy-skip", "sealed-secret"])
            .args(["--set", "secret.user=admin", "--set"])
            .arg(format!("secret.password={password}"))
            .arg("--out")
            .arg(&out))
    };
    let (code, _, stderr) = secret("hunter2");
    assert_eq!(code, 0, "{stderr}");
    let diff = |extra: &[&str]| {
        run(repo
            .cmd("staging")
            .args([
                "--chart",
                "good",
                "--policy-skip",
                "sealed-secret",
                "--set",
                "secret.user=admin",
                "--set",
                "secret.password=correcthorse",
            ])
            .args(extra)
            .arg("--diff")
            .arg(&out))
    };
    let (code, stdout, stderr) = diff(&[]);
    assert_eq!(code, 1, "{stderr}");
    for clear in ["hunter2", "correcthorse", "admin"] {
        assert!(!stdout.contains(clear), "{clear} in the diff: {stdout}");
        assert!(!stderr.contains(clear), "{clear} on stderr: {stderr}");
    }
    assert!(
        stdout.contains("-  password: \"-------- # (7 bytes)\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  password: \"++++++++ # (12 bytes)\""),
        "{stdout}"
    );
    assert!(stdout.contains("   user: \"REDACTED # (5 bytes)\""), "{stdout}");
    let (code, stdout, stderr) = diff(&["--show-secrets"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("+  password: correcthorse"), "{stdout}");
    // --show-secrets means nothing without --diff.
    let (code, _, stderr) = run(repo.cmd("staging").args(["--chart", "good", "--show-secrets"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--diff"), "{stderr}");
}

/// `--kube-version` and `--api-versions` reach helm as its Capabilities (and are part of the cache key:
/// the second render with other capabilities is not served from the first one's cache); a version helm
/// would refuse is refused up front.
#[test]
fn kube_version_and_api_versions_are_the_charts_capabilities() {
    let repo = FixtureRepo::new();
    let chart = repo.root().join("helm/caps");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: caps\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caps\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n  monitoring: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n",
    )
    .unwrap();
    let render = |extra: &[&str]| {
        run(repo
            .cmd("staging")
            .args(["--chart", "caps", "--no-validate"])
            .args(extra))
    };
    let (_, stdout, stderr) = render(&[]);
    assert!(stdout.contains("monitoring: \"false\""), "{stdout}{stderr}");
    let (_, stdout, stderr) = render(&[
        "--kube-version",
        "v1.31.4",
        "--api-versions",
        "monitoring.coreos.com/v1",
    ]);
    assert!(stdout.contains("kube: \"v1.31.4\""), "{stdout}{stderr}");
    assert!(stdout.contains("monitoring: \"true\""), "{stdout}{stderr}");
    let (code, _, stderr) = render(&["--kube-version", "latest"]);
    assert_exit_2(code, &stderr, &["`latest` is not a Kubernetes version"]);
}

#[test]
fn out_with_a_chart_subset_keeps_the_other_charts() {
    let repo = FixtureRepo::new();
    let out = repo.path("out");
    run(repo
        .cmd("staging")
        .args(chart_args(&["good", "policy-pdb", "applications"]))
        .arg("--out")
        .arg(&out));
    let (code, _, stderr) = run(repo
        .cmd("staging")
        .args(["--chart", "good", "--set", "replicas=2"])
        .arg("--out")
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let files: Vec<String> = snapshot(&out).into_iter().map(|(name, _)| name).collect();
    assert!(
        files.contains(&"staging/policy-pdb/deployment-policy-pdb.yml".to_string()),
        "{files:?}"
    );
    assert!(
        files.contains(&"staging/applications/good.yml".to_string()),
        "{files:?}"
    );
    let deployment = std::fs::read_to_string(out.join("staging/good/deployment-good.yml")).unwrap();
    assert!(deployment.contains("replicas: 2"), "{deployment}");
}

#[test]
fn report_has_charts_objects_durations_cache_and_totals() {
    let repo = FixtureRepo::new();
    let report = repo.path("report.json");
    let (code, _, stderr) = run(repo
        .cmd("prod")
        .args(chart_args(&["good", "policy-pdb", "upstream", "applications"]))
        .arg("--report")
        .arg(&report));
    assert_eq!(code, 1, "{stderr}");
    let report = read_json(&report);
    assert_eq!(report["env"], "prod");
    assert_eq!(report["namespace"], "prod");
    let good = report["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "good")
        .unwrap();
    assert_eq!(good["status"], "rendered");
    assert_eq!(good["cached"], false);
    assert!(good["duration_ms"].as_u64().is_some());
    let objects: Vec<&str> = good["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        ["PodDisruptionBudget/good", "ConfigMap/good", "Deployment/good"]
    );
    assert_eq!(report["applications"][0]["component"], "good");
    assert_eq!(
        report["applications"][0]["objects"][0],
        "Application/argocd/prod-good"
    );
    assert_eq!(report["totals"]["charts"], 3);
    assert_eq!(report["totals"]["rendered"], 2);
    assert_eq!(report["totals"]["external"], 1);
    assert_eq!(report["totals"]["objects"], 6);
    assert_eq!(report["totals"]["findings"], 1);
    assert_eq!(report["totals"]["errors"], 1);
    let finding = &report["findings"][0];
    assert_eq!(finding["rule"], "pdb");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["object"], "Deployment/policy-pdb");
    assert_eq!(finding["file"], "policy-pdb/templates/deployment.yaml");
    assert!(VALIDATION_RULES.iter().all(|rule| finding["rule"] != *rule));
}

#[test]
fn several_environments_render_in_one_run_and_fail_together() {
    let repo = FixtureRepo::new();
    let out = repo.path("out");
    let report = repo.path("report.json");
    let (code, stdout, stderr) = run(repo
        .cmd("staging")
        .args(["prod", "--chart", "good", "--chart", "applications"])
        .arg("--out")
        .arg(&out)
        .arg("--report")
        .arg(&report));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "");
    assert!(out.join("staging/good/deployment-good.yml").is_file());
    assert!(out.join("prod/applications/good.yml").is_file());
    let report = read_json(&report);
    let envs: Vec<&str> = report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["env"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["staging", "prod"]);
    let prod = std::fs::read_to_string(out.join("prod/good/deployment-good.yml")).unwrap();
    assert!(prod.contains("replicas: 2") && prod.contains(":v1.0.0"), "{prod}");

    // One bad environment: exit 2 and neither environment's output changes.
    let before = snapshot(&out);
    let (code, _, stderr) = run(repo
        .cmd("staging")
        .args(["qa", "--chart", "good", "--set", "replicas=5"])
        .arg("--out")
        .arg(&out));
    assert_exit_2(code, &stderr, &["unknown environment `qa`"]);
    assert_eq!(snapshot(&out), before);
}

/// `duli.one/policy-skip` exempts one object from the rules it names, when it says why
/// (`duli.one/policy-skip-reason`; the report lists the exemption); without a reason, or naming a rule that
/// does not exist, the exemption is not applied and a `policy-skip` warning says so.
#[test]
fn an_annotation_with_a_reason_exempts_one_object_from_a_rule() {
    let repo = FixtureRepo::new();
    let template = repo
        .root()
        .join("helm/policy-image-tag/templates/deployment.yaml");
    let text = std::fs::read_to_string(&template).unwrap().replacen(
        "metadata:\n  name: {{ .Release.Name }}\n",
        "metadata:\n  name: {{ .Release.Name }}\n  {{- with .Values.annotations }}\n  annotations:\n    {{- toYaml . | nindent 4 }}\n  {{- end }}\n",
        1,
    );
    std::fs::write(&template, text).unwrap();
    let render = |annotations: &str| {
        let values = repo.path("annotations.yml");
        std::fs::write(&values, format!("annotations:\n{annotations}")).unwrap();
        let report = repo.path("report.json");
        let (code, _, stderr) = run(repo
            .cmd("prod")
            .args(["--chart", "policy-image-tag", "--values"])
            .arg(&values)
            .arg("--report")
            .arg(&report));
        (code, stderr, read_json(&report))
    };
    let rules = |report: &serde_json::Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    };

    let (code, stderr, report) = render(
        "  duli.one/policy-skip: image-tag\n  duli.one/policy-skip-reason: the vendor publishes only latest\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rules(&report), Vec::<String>::new(), "{stderr}");
    assert_eq!(
        report["exemptions"][0]["reason"],
        "the vendor publishes only latest"
    );
    assert_eq!(report["exemptions"][0]["object"], "Deployment/policy-image-tag");

    let (code, stderr, report) = render("  duli.one/policy-skip: image-tag\n");
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["image-tag", "policy-skip"], "{stderr}");
    assert!(stderr.contains("has no duli.one/policy-skip-reason"), "{stderr}");

    let (code, stderr, report) =
        render("  duli.one/policy-skip: image-tag,imagetag\n  duli.one/policy-skip-reason: vendor\n");
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["policy-skip"], "{stderr}");
    assert!(stderr.contains("names unknown rules: `imagetag`"), "{stderr}");
}

//! `-o json|sarif|junit`: the findings as one document on stdout, read back by the tools pipelines use
//! (Microsoft's `sarif-tools` reader for SARIF, `junitparser` for JUnit XML; both from the test venv,
//! `$DULI_PYTHON`), and agreeing with `--report`. The SARIF is validated by Microsoft's SARIF Multitool
//! (the OASIS 2.1.0 schema plus its SARIF and GitHub code-scanning rules; `.ci/install-tools --test`).

use crate::common::{self, FixtureRepo, read_json, run};

/// A chart with one finding in prod (its image uses `latest`) and a clean one.
fn render(repo: &FixtureRepo, format: &str) -> (i32, String, String) {
    run(repo
        .cmd("prod")
        .args(["--chart", "policy-image-tag", "--chart", "good", "-o", format])
        .arg("--report")
        .arg(repo.path(&format!("{format}.json"))))
}

/// Run `script` with the test venv's python on `file`; its stdout.
fn python(script: &str, file: &std::path::Path) -> String {
    let python = std::env::var("DULI_PYTHON").unwrap_or_else(|_| "python3".into());
    let (code, stdout, stderr) = run(std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(file));
    assert_eq!(
        code, 0,
        "{python}: {stderr} (pip install -r .ci/requirements-test.txt, or point DULI_PYTHON at a python that has it)"
    );
    stdout
}

#[test]
fn sarif_is_read_by_sarif_tools_with_the_finding_at_its_file() {
    let repo = FixtureRepo::new();
    let (code, stdout, stderr) = render(&repo, "sarif");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        !stderr.contains("fix:"),
        "findings go into the document, not onto stderr: {stderr}"
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let file = repo.path("out.sarif");
    std::fs::write(&file, &stdout).unwrap();
    let read = python(
        "import sys\nfrom sarif import loader\nf = loader.load_sarif_file(sys.argv[1])\nfor r in f.get_records():\n    print(r['Code'], r['Severity'], r['Location'])\nprint('count', f.get_result_count())",
        &file,
    );
    assert_eq!(
        read,
        "image-tag error helm/policy-image-tag/templates/deployment.yaml\ncount 1\n"
    );
    let report = read_json(&repo.path("sarif.json"));
    assert_eq!(report["findings"].as_array().unwrap().len(), 1);
}

/// `Sarif.Multitool validate` over `file` with the SARIF and GitHub rules: what it reports, one line each
/// (`RULE level: message`); empty when the file is valid.
fn multitool_validate(file: &std::path::Path) -> Vec<String> {
    let result = file.with_extension("validation.sarif");
    let (code, stdout, stderr) = run(std::process::Command::new(testkit::tools::sarif_multitool())
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .args([
            "validate",
            "--rule-kind",
            "Sarif;Gh",
            "--log",
            "ForceOverwrite",
            "-o",
        ])
        .arg(&result)
        .arg(file));
    assert_eq!(code, 0, "the validator itself failed: {stdout}{stderr}");
    let log = read_json(&result);
    log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}: {}", r["ruleId"], r["level"], r["message"]))
        .collect()
}

#[test]
fn sarif_passes_the_sarif_multitool_with_github_code_scanning_rules() {
    let repo = FixtureRepo::new();
    let (code, stdout, stderr) = render(&repo, "sarif");
    assert_eq!(code, 1, "{stderr}");
    let file = repo.path("out.sarif");
    std::fs::write(&file, &stdout).unwrap();
    assert_eq!(multitool_validate(&file), Vec::<String>::new());

    // The validator does catch what code scanning needs: without the rules' help and the results' start
    // line it reports GitHub errors.
    let mut doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for rule in doc["runs"][0]["tool"]["driver"]["rules"].as_array_mut().unwrap() {
        rule.as_object_mut().unwrap().remove("help");
    }
    for result in doc["runs"][0]["results"].as_array_mut().unwrap() {
        let location = &mut result["locations"][0]["physicalLocation"];
        location.as_object_mut().unwrap().remove("region");
    }
    let broken = repo.path("broken.sarif");
    std::fs::write(&broken, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let problems = multitool_validate(&broken);
    assert!(
        problems.iter().any(|p| p.contains("MissingHelp"))
            && problems.iter().any(|p| p.contains("MissingRegion")),
        "{problems:#?}"
    );
}

#[test]
fn junit_has_a_case_per_object_and_a_failure_per_finding() {
    let repo = FixtureRepo::new();
    let (code, stdout, stderr) = render(&repo, "junit");
    assert_eq!(code, 1, "{stderr}");
    let file = repo.path("out.xml");
    std::fs::write(&file, &stdout).unwrap();
    let read = python(
        "import sys\nfrom junitparser import JUnitXml\nfor s in JUnitXml.fromfile(sys.argv[1]):\n    print(s.name, s.tests, s.failures)\n    for c in s:\n        for r in c.result:\n            print(c.classname, c.name, r.type, r.message.split(']')[0] + ']')",
        &file,
    );
    assert_eq!(
        read,
        "prod 6 1\nprod.policy-image-tag Deployment/policy-image-tag error [image-tag]\n"
    );
}

#[test]
fn json_is_the_reports_of_every_environment() {
    let repo = FixtureRepo::new();
    let (code, stdout, stderr) = render(&repo, "json");
    assert_eq!(code, 1, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let report = common::read_json(&repo.path("json.json"));
    assert_eq!(doc["environments"][0]["findings"], report["findings"]);
    assert_eq!(doc["environments"][0]["env"], "prod");
    // text stays the default: manifests on stdout, findings on stderr.
    let (code, stdout, stderr) = render(&repo, "text");
    assert_eq!(code, 1);
    assert!(stdout.contains("kind: Deployment"), "{stdout}");
    assert!(stderr.contains("error [image-tag]"), "{stderr}");
}

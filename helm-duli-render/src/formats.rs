//! `-o json|sarif|junit`: a run's findings as one document on stdout, for pipelines (`-o text`, the
//! default, prints the manifests on stdout and the findings on stderr).
//!
//! - `json`: `{"environments": [REPORT…]}`, each the `--report` document.
//! - `sarif`: SARIF 2.1.0, one run, the rules of [`crate::policy::RULES`], one result per finding with its
//!   file (repository-relative, for code-scanning annotations) and the object as a logical location.
//! - `junit`: one `<testsuite>` per environment, one `<testcase>` per rendered object, a `<failure>` per
//!   finding (CI systems show objects with findings as failed tests).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Value, json};

use crate::findings::{Finding, Severity};
use crate::report::Report;

/// How `helm duli-render` prints a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Manifests (or the diff) on stdout, findings and the summary on stderr.
    #[default]
    Text,
    /// The reports of every environment as one JSON document.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning, GitLab, Azure DevOps).
    Sarif,
    /// JUnit XML (Jenkins, GitLab, CircleCI test reports).
    Junit,
}

/// The document for `format` (not [`OutputFormat::Text`]).
pub fn document(format: OutputFormat, reports: &[&Report]) -> String {
    match format {
        OutputFormat::Text => String::new(),
        OutputFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&json!({ "environments": reports })).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Sarif => sarif(reports),
        OutputFormat::Junit => junit(reports),
    }
}

/// The repository-relative file a finding points at: chart files live under `helm/`, Application
/// templates under `gitops/applications/`.
fn repo_path(finding: &Finding) -> String {
    if finding.file.starts_with("gitops/") || finding.file.starts_with("helm/") {
        finding.file.clone()
    } else if finding.chart == crate::APPLICATIONS {
        format!("gitops/applications/{}", finding.file)
    } else {
        format!("helm/{}", finding.file)
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn sarif(reports: &[&Report]) -> String {
    let rules: Vec<Value> = crate::policy::RULES
        .iter()
        .map(|rule| {
            let full = format!(
                "helm duli-render checks that {}. A finding is {} by default.",
                rule.summary,
                match rule.severity {
                    Severity::Error => "an error (exit 1)",
                    Severity::Warning => "a warning",
                }
            );
            let help = format!(
                "Each finding says how to fix it. To exempt one object, annotate it with \
                 `duli.one/policy-skip: {id}` and say why in `duli.one/policy-skip-reason`; \
                 `--policy-skip {id}` skips the rule for a whole run.",
                id = rule.id
            );
            json!({
                "id": rule.id,
                "shortDescription": { "text": rule.summary },
                "fullDescription": { "text": full },
                "help": { "text": help },
                "defaultConfiguration": { "level": level(rule.severity) },
            })
        })
        .collect();
    let results: Vec<Value> = reports
        .iter()
        .flat_map(|report| report.findings.iter().map(move |f| (report.env.as_str(), f)))
        .map(|(env, finding)| {
            json!({
                "ruleId": finding.rule,
                "ruleIndex": crate::policy::RULES.iter().position(|r| r.id == finding.rule),
                "level": level(finding.severity),
                "message": { "text": format!("{} ({}: {}). Fix: {}", finding.message, env, finding.object, finding.fix) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": repo_path(finding), "uriBaseId": "%SRCROOT%" },
                        // Findings are about a rendered object, not a line of its template: the file's
                        // start (code-scanning services require a start line).
                        "region": { "startLine": 1 },
                    },
                    "logicalLocations": [{ "name": finding.object, "kind": "resource" }],
                }],
                "properties": { "environment": env, "chart": finding.chart },
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "helm-duli-render",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/duli-one/duli",
                    "rules": rules,
                }
            },
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn junit(reports: &[&Report]) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_junit(&mut writer, reports);
    let mut text = String::from_utf8(writer.into_inner()).unwrap_or_default();
    text.push('\n');
    text
}

fn write_junit(writer: &mut Writer<Vec<u8>>, reports: &[&Report]) -> std::io::Result<()> {
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    // Each environment's cases once: the totals and the suites read the same lists.
    let per_env: Vec<(&Report, Vec<Case<'_>>)> = reports.iter().map(|r| (*r, cases(r))).collect();
    let failed = |cases: &[Case<'_>]| cases.iter().filter(|c| !c.2.is_empty()).count();
    let total_tests: usize = per_env.iter().map(|(_, cases)| cases.len()).sum();
    let total_failures: usize = per_env.iter().map(|(_, cases)| failed(cases)).sum();
    let mut suites = BytesStart::new("testsuites");
    suites.push_attribute(("name", "helm-duli-render"));
    suites.push_attribute(("tests", total_tests.to_string().as_str()));
    suites.push_attribute(("failures", total_failures.to_string().as_str()));
    writer.write_event(Event::Start(suites))?;
    for (report, cases) in &per_env {
        let failures = failed(cases);
        let mut suite = BytesStart::new("testsuite");
        suite.push_attribute(("name", report.env.as_str()));
        suite.push_attribute(("tests", cases.len().to_string().as_str()));
        suite.push_attribute(("failures", failures.to_string().as_str()));
        suite.push_attribute(("errors", "0"));
        suite.push_attribute((
            "time",
            format!("{:.3}", report.duration_ms as f64 / 1000.0).as_str(),
        ));
        writer.write_event(Event::Start(suite))?;
        for (chart, object, findings) in cases {
            let mut case = BytesStart::new("testcase");
            case.push_attribute(("classname", format!("{}.{chart}", report.env).as_str()));
            case.push_attribute(("name", object.as_str()));
            if findings.is_empty() {
                writer.write_event(Event::Empty(case))?;
                continue;
            }
            writer.write_event(Event::Start(case))?;
            for finding in findings {
                let mut failure = BytesStart::new("failure");
                failure.push_attribute((
                    "message",
                    format!("[{}] {}", finding.rule, finding.message).as_str(),
                ));
                failure.push_attribute(("type", level(finding.severity)));
                writer.write_event(Event::Start(failure))?;
                writer.write_event(Event::Text(BytesText::new(&format!(
                    "{}\nfile: {}\nfix: {}",
                    finding.message,
                    repo_path(finding),
                    finding.fix
                ))))?;
                writer.write_event(Event::End(BytesEnd::new("failure")))?;
            }
            writer.write_event(Event::End(BytesEnd::new("testcase")))?;
        }
        writer.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    writer.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(())
}

/// The test cases of one environment: (chart, object, its findings), every rendered object once, plus
/// findings about no rendered object (a values file, a chart that failed) as their own cases.
/// One JUnit test case: (chart, object, its findings).
type Case<'a> = (String, String, Vec<&'a Finding>);

fn cases(report: &Report) -> Vec<Case<'_>> {
    let mut cases: Vec<Case<'_>> = report
        .charts
        .iter()
        .flat_map(|chart| {
            chart
                .objects
                .iter()
                .map(|o| (chart.name.clone(), o.clone(), Vec::new()))
        })
        .chain(report.applications.iter().flat_map(|app| {
            app.objects
                .iter()
                .map(|o| (crate::APPLICATIONS.to_string(), o.clone(), Vec::new()))
        }))
        .collect();
    for finding in &report.findings {
        match cases
            .iter_mut()
            .find(|(chart, object, _)| *chart == finding.chart && *object == finding.object)
        {
            Some(case) => case.2.push(finding),
            None => cases.push((finding.chart.clone(), finding.object.clone(), vec![finding])),
        }
    }
    cases
}

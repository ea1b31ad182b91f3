//! Phase 7, summary: how long each phase took, what it created, changed or left alone, and the
//! environment's endpoints, internal and external — what the playbook's export_connection printed.
//!
//! Tables go to stdout (or the same data as `-o json|yaml`); the log file's path goes to stderr last.

use std::io::Write;

use crate::write_document;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::Phase;
use crate::apply::{Counts, ObjectId};
use shared::environment::{Endpoints, Environment};
use shared::output::{self, OutputFormat};

/// One phase's result.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    /// The phase.
    pub phase: Phase,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Objects (or releases) created.
    pub created: usize,
    /// Objects (or releases) changed.
    pub changed: usize,
    /// Objects (or releases) left as they were.
    pub unchanged: usize,
    /// A short note (e.g. "12 components ready").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl PhaseSummary {
    /// A phase that took `elapsed` with `counts`.
    pub fn new(phase: Phase, elapsed: Duration, counts: Counts, note: Option<String>) -> Self {
        PhaseSummary {
            phase,
            seconds: (elapsed.as_secs_f64() * 100.0).round() / 100.0,
            created: counts.created,
            changed: counts.changed,
            unchanged: counts.unchanged,
            note,
        }
    }
}

/// The result of `up`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The environment.
    pub environment: String,
    /// Its namespace.
    pub namespace: String,
    /// True when every selected phase finished (and, with the wait phase, everything is ready).
    pub ready: bool,
    /// Total wall time in seconds.
    pub seconds: f64,
    /// Per phase.
    pub phases: Vec<PhaseSummary>,
    /// Totals over all phases.
    pub totals: Counts,
    /// The environment's endpoints.
    pub endpoints: Endpoints,
    /// What `--prune` deleted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<ObjectId>,
    /// The log file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_file: Option<PathBuf>,
}

impl Summary {
    /// A summary of `env` from its phases.
    pub fn new(
        env: &Environment,
        phases: Vec<PhaseSummary>,
        elapsed: Duration,
        ready: bool,
        log_file: Option<PathBuf>,
    ) -> Self {
        let mut totals = Counts::default();
        for phase in &phases {
            totals.merge(Counts {
                created: phase.created,
                changed: phase.changed,
                unchanged: phase.unchanged,
            });
        }
        Summary {
            environment: env.name.clone(),
            namespace: env.namespace.clone(),
            ready,
            seconds: (elapsed.as_secs_f64() * 100.0).round() / 100.0,
            phases,
            totals,
            endpoints: env.endpoints.clone(),
            pruned: Vec::new(),
            log_file,
        }
    }

    /// Print as tables or as a document.
    pub fn print(&self, format: OutputFormat, out: &mut dyn Write) -> anyhow::Result<()> {
        if !format.is_table() {
            return write_document(out, self, format);
        }
        let mut phases = output::table(["PHASE", "DURATION", "CREATED", "CHANGED", "UNCHANGED", "NOTE"]);
        for phase in &self.phases {
            phases.add_row(vec![
                phase.phase.to_string(),
                format!("{:.1}s", phase.seconds),
                phase.created.to_string(),
                phase.changed.to_string(),
                phase.unchanged.to_string(),
                phase.note.clone().unwrap_or_default(),
            ]);
        }
        phases.add_row(vec![
            "total".to_string(),
            format!("{:.1}s", self.seconds),
            self.totals.created.to_string(),
            self.totals.changed.to_string(),
            self.totals.unchanged.to_string(),
            String::new(),
        ]);
        writeln!(
            out,
            "{} ({}): {}",
            self.environment,
            self.namespace,
            if self.ready { "up" } else { "not ready" }
        )?;
        writeln!(out, "{phases}")?;
        if !self.pruned.is_empty() {
            let names: Vec<String> = self.pruned.iter().map(ToString::to_string).collect();
            writeln!(out, "pruned: {}", names.join(", "))?;
        }
        writeln!(out, "{}", endpoints_table(&self.endpoints))?;
        out.flush()?;
        Ok(())
    }
}

/// The endpoints as a table: service, role, internal, external.
pub fn endpoints_table(endpoints: &Endpoints) -> output::Table {
    let mut table = output::table(["SERVICE", "INTERNAL", "EXTERNAL"]);
    for (service, e) in [
        ("postgres", &endpoints.postgres),
        ("redis", &endpoints.redis),
        ("rabbitmq", &endpoints.rabbitmq),
    ] {
        table.add_row(vec![service.to_string(), e.internal.clone(), e.external.clone()]);
        if let Some(read_only) = &e.read_only {
            table.add_row(vec![
                format!("{service} (read-only)"),
                read_only.clone(),
                String::new(),
            ]);
        }
        if let Some(management) = &e.management {
            table.add_row(vec![
                format!("{service} (management)"),
                management.clone(),
                String::new(),
            ]);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::repo::Repo;
    use std::path::Path;

    #[test]
    fn json_summary_has_phases_totals_and_endpoints() {
        let repo = Repo::at(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()).unwrap();
        let env = Environment::load(&repo, "staging").unwrap();
        let phases = vec![
            PhaseSummary::new(
                Phase::Namespaces,
                Duration::from_millis(120),
                Counts {
                    created: 2,
                    changed: 0,
                    unchanged: 5,
                },
                None,
            ),
            PhaseSummary::new(
                Phase::Gitops,
                Duration::from_millis(300),
                Counts {
                    created: 0,
                    changed: 1,
                    unchanged: 9,
                },
                None,
            ),
        ];
        let summary = Summary::new(&env, phases, Duration::from_secs(1), true, None);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["totals"]["created"], 2);
        assert_eq!(json["totals"]["changed"], 1);
        assert_eq!(json["phases"][0]["phase"], "namespaces");
        assert_eq!(
            json["endpoints"]["postgres"]["external"],
            "db-staging.duli.one:5432"
        );
        let table = endpoints_table(&env.endpoints).to_string();
        assert!(table.contains("queue.staging.svc.cluster.local:15672"), "{table}");
        // Printed to the writer it is given (a command runs in-process), the same bytes as JSON.
        let mut out = Vec::new();
        summary.print(OutputFormat::Json, &mut out).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap(), json);
        let mut out = Vec::new();
        summary.print(OutputFormat::Table, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("staging (staging): up\n"), "{text}");
        assert!(text.contains(&table), "{text}");
    }
}

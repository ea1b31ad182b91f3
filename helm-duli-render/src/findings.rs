//! Findings: what validation and policy checks report about a rendered object.
//!
//! Every finding names the rule that produced it (so `--policy-skip RULE` can silence it), how bad it is,
//! the object (`Kind/namespace/name`), the file it was rendered from, what is wrong and how to fix it.

use serde::{Deserialize, Serialize};

/// How serious a finding is. Both make the run exit 1; the severity tells a reader what to fix first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Will break or endanger the deployment.
    Error,
    /// Against the platform's conventions.
    Warning,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in the rendered output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id, e.g. `schema` or `image-tag` (see [`super::policy::RULES`]).
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// The chart (or `applications`) the object came from.
    pub chart: String,
    /// The object, as `Kind/namespace/name` (`Kind/name` for cluster-scoped ones).
    pub object: String,
    /// The template file it was rendered from, e.g. `backend/templates/deployment.yaml`.
    pub file: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] {} ({}): {}\n    fix: {}",
            self.severity, self.rule, self.object, self.file, self.message, self.fix
        )
    }
}

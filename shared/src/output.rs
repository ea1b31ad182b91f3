//! Printing results: tables for people, `-o json|yaml` for programs.
//!
//! Data goes to stdout, progress and logs to stderr. Tables use one style across all plugins.

use std::io::Write;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// `-o` values every plugin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    #[default]
    Table,
    /// JSON (stable field names, documented in the README).
    Json,
    /// YAML (the same document as JSON).
    Yaml,
}

/// A table with the house style and the given header.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header);
    table
}

/// Serialize `value` as JSON or YAML to a string (with a trailing newline).
pub fn to_document<T: Serialize>(value: &T, format: OutputFormat) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(value)?;
            text.push('\n');
            text
        }
        OutputFormat::Yaml | OutputFormat::Table => serde_saphyr::to_string(value)?,
    })
}

/// Print `value` as JSON or YAML on stdout.
pub fn print_document<T: Serialize>(value: &T, format: OutputFormat) -> anyhow::Result<()> {
    let text = to_document(value, format)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// A human duration like `3d`, `5h`, `12m`, `40s` (kubectl's AGE column style).
pub fn human_age(seconds: i64) -> String {
    match seconds {
        s if s < 0 => "0s".to_string(),
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(5 * 3600), "5h");
        assert_eq!(human_age(3 * 86400), "3d");
    }

    #[test]
    fn json_and_yaml_carry_the_same_fields() {
        #[derive(Serialize)]
        struct Row {
            service: &'static str,
            ready: bool,
        }
        let row = Row {
            service: "postgres",
            ready: true,
        };
        let json = to_document(&row, OutputFormat::Json).unwrap();
        assert!(json.contains("\"service\": \"postgres\""));
        let yaml = to_document(&row, OutputFormat::Yaml).unwrap();
        assert!(yaml.contains("service: postgres"), "{yaml}");
        assert!(yaml.contains("ready: true"), "{yaml}");
    }
}

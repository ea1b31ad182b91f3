//! Printing results: tables for people, `-o json|yaml` for programs, and the one colour decision.
//!
//! Data goes to stdout, progress and logs to stderr. Tables use one style across all plugins: box drawing
//! on a terminal, kubectl's plain aligned columns (`awk`/`grep` friendly) everywhere else.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use clap::ValueEnum;
use comfy_table::{Attribute, Cell, ContentArrangement, presets};
use serde::Serialize;

/// `-o` values every plugin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    #[default]
    Table,
    /// Tables with the extra columns (endpoints, details), like kubectl's `-o wide`.
    Wide,
    /// JSON (stable field names, documented in the README).
    Json,
    /// YAML (the same document as JSON).
    Yaml,
}

impl OutputFormat {
    /// True for the table formats (`table`, `wide`).
    pub fn is_table(self) -> bool {
        matches!(self, OutputFormat::Table | OutputFormat::Wide)
    }

    /// True for `-o wide`.
    pub fn is_wide(self) -> bool {
        self == OutputFormat::Wide
    }
}

/// `--color`: when output may carry ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Only on a terminal, and not when `NO_COLOR` is set (`CLICOLOR_FORCE` forces it on).
    #[default]
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// The standard streams colour is decided for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Data.
    Stdout,
    /// Logs and progress.
    Stderr,
}

static COLOR: OnceLock<ColorChoice> = OnceLock::new();

/// Record the process's `--color` choice (the runner does this before logging starts). Only the first
/// call counts, so logging and tables cannot disagree.
pub fn set_color_choice(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// The process's `--color` choice (`auto` until [`set_color_choice`]).
pub fn color_choice() -> ColorChoice {
    COLOR.get().copied().unwrap_or_default()
}

/// True when `stream` may carry ANSI codes: `--color always`; or `auto` with `NO_COLOR` unset and either
/// `CLICOLOR_FORCE` set or the stream a terminal. `NO_COLOR` wins over `CLICOLOR_FORCE` (as in anstream).
pub fn colors_on(stream: Stream) -> bool {
    decide_color(color_choice(), stream_is_terminal(stream))
}

fn decide_color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if anstyle_query::no_color() => false,
        ColorChoice::Auto => anstyle_query::clicolor_force() || terminal,
    }
}

fn stream_is_terminal(stream: Stream) -> bool {
    match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    }
}

/// A table in the house style: [`table`] makes one. Rows are added through `Deref` to comfy-table's
/// `Table`; `Display` prints box drawing on a terminal and kubectl's plain columns otherwise.
#[derive(Debug, Clone)]
pub struct Table {
    inner: comfy_table::Table,
    boxed: bool,
}

impl std::ops::Deref for Table {
    type Target = comfy_table::Table;
    fn deref(&self) -> &comfy_table::Table {
        &self.inner
    }
}

impl std::ops::DerefMut for Table {
    fn deref_mut(&mut self) -> &mut comfy_table::Table {
        &mut self.inner
    }
}

/// Below this many columns a terminal's width is not believed (wrapping to it would be unreadable).
const MIN_WRAP_WIDTH: u16 = 40;

/// kubectl's gap between columns (its tabwriter pads with three spaces).
const PLAIN_GAP: u16 = 3;

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.boxed {
            return self.inner.fmt(f);
        }
        // Plain columns: no borders, three spaces between columns, no trailing blanks, one line per row.
        let mut plain = self.inner.clone();
        for column in plain.column_iter_mut() {
            column.set_padding((0, PLAIN_GAP));
        }
        f.write_str(&plain.trim_fmt())
    }
}

/// A table with the house style and the given header: box drawing when stdout is a terminal, plain
/// aligned columns otherwise. A bold header when stdout may carry colour ([`colors_on`]).
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    table_for(
        header,
        stream_is_terminal(Stream::Stdout),
        colors_on(Stream::Stdout),
    )
}

/// [`table`] for an explicit terminal and colour decision (tests, and output that is not stdout).
pub fn table_for<I, S>(header: I, terminal: bool, color: bool) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    let mut inner = comfy_table::Table::new();
    if color {
        inner.enforce_styling();
    }
    if terminal {
        // Wrapped to the terminal's width (comfy-table asks the terminal); a terminal that reports no
        // usable width (a fresh pseudo-terminal says 0 columns) gets unwrapped rows, not one letter a line.
        let arrangement = match inner.width() {
            Some(width) if width >= MIN_WRAP_WIDTH => ContentArrangement::Dynamic,
            _ => ContentArrangement::Disabled,
        };
        inner
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(arrangement);
    } else {
        // No width lookup and no wrapping: one line per row, whatever the width of a cell.
        inner
            .force_no_tty()
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
    }
    let header: Vec<Cell> = header
        .into_iter()
        .map(|cell| {
            let cell: Cell = cell.into();
            if color {
                cell.add_attribute(Attribute::Bold)
            } else {
                cell
            }
        })
        .collect();
    inner.set_header(header);
    Table {
        inner,
        boxed: terminal,
    }
}

/// Serialize `value` as JSON or YAML to a string (with a trailing newline).
pub fn to_document<T: Serialize>(value: &T, format: OutputFormat) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(value)?;
            text.push('\n');
            text
        }
        OutputFormat::Yaml | OutputFormat::Table | OutputFormat::Wide => serde_saphyr::to_string(value)?,
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
    fn plain_tables_are_kubectl_columns_without_box_drawing() {
        let mut table = table_for(["NAME", "READY", "MESSAGE"], false, false);
        table.add_row(["postgres", "yes", "all instances ready"]);
        table.add_row(["rabbitmq-long-name", "NO", "-"]);
        let text = table.to_string();
        assert_eq!(
            text,
            "NAME                 READY   MESSAGE\n\
             postgres             yes     all instances ready\n\
             rabbitmq-long-name   NO      -"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn terminal_tables_draw_boxes_and_colour_only_when_asked() {
        let mut table = table_for(["NAME", "READY"], true, false);
        table.add_row(["postgres", "yes"]);
        let text = table.to_string();
        assert!(text.contains('│') && text.contains("postgres"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        let coloured = table_for(["NAME"], false, true).to_string();
        assert!(coloured.contains("\u{1b}[1m"), "{coloured:?}");
    }

    #[test]
    fn colour_choice_always_and_never_win_auto_follows_the_terminal() {
        assert!(decide_color(ColorChoice::Always, false));
        assert!(!decide_color(ColorChoice::Never, true));
        // The test process may or may not have NO_COLOR/CLICOLOR_FORCE set: auto follows them, so only
        // the case they cannot change is asserted.
        if std::env::var_os("NO_COLOR").is_none() && std::env::var_os("CLICOLOR_FORCE").is_none() {
            assert!(decide_color(ColorChoice::Auto, true));
            assert!(!decide_color(ColorChoice::Auto, false));
        }
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

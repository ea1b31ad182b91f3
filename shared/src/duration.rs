//! One duration grammar for every flag of every plugin (`--timeout`, `--wait`, …).
//!
//! Accepted: a number with a unit — `500ms`, `90s`, `2m`, `1h`, `1.5h` — or several of them — `1h30m`,
//! `1m 30s` — or a bare number of seconds (`10`, `2.5`), as kubectl takes them. jiff parses the text, so its
//! friendly spellings (`5 minutes`, `1h 30m`) and ISO 8601 (`PT1H30M`) work too. Rejected with one sentence
//! naming the text and giving examples: empty, negative, unknown units (`3d`: a day is not a fixed length
//! for a timeout), and zero where zero means nothing.
//!
//! Two clap `value_parser`s, both for `Duration` fields:
//! - [`parse_duration`]: a positive duration (`--timeout` of a command that must end).
//! - [`parse_duration_or_zero`]: kubectl's `0` meaning "no limit" is `Duration::ZERO`; [`limit`] turns the
//!   field into `Option<Duration>` where it is used. [`parse_optional_duration`] is the same as a plain
//!   function returning `None` for zero.
//!
//! ```
//! use std::time::Duration;
//! use shared::duration::{parse_duration, parse_optional_duration};
//! assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
//! assert_eq!(parse_optional_duration("0").unwrap(), None);
//! assert!(parse_duration("3d").unwrap_err().to_string().contains("`3d`"));
//! ```

use std::time::Duration;

/// The examples every message gives.
const EXAMPLES: &str = "such as 90s, 500ms, 2m, 1h30m or 1.5h";

/// A text that is not a duration this grammar accepts; its message is one sentence naming the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("an empty value is not a duration: give one {EXAMPLES}")]
    Empty,
    /// A leading minus.
    #[error("`{0}` is negative: give a duration {EXAMPLES}")]
    Negative(String),
    /// Zero where a limit must be given.
    #[error("`{0}` must be greater than zero: give a duration {EXAMPLES}")]
    Zero(String),
    /// Not a number with a known unit (ms, s, m, h).
    #[error("`{0}` is not a duration: use a number with a unit (ms, s, m, h) {EXAMPLES}")]
    Invalid(String),
    /// More than this program can count.
    #[error("`{0}` is too long a duration: give one {EXAMPLES}")]
    TooLong(String),
}

/// A positive duration: `90s`, `1h30m`, `500ms`, `2m`, `1.5h`, bare seconds `10`. Zero is an error.
///
/// Usable as `#[arg(value_parser = shared::duration::parse_duration)]`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    match parse_optional_duration(text)? {
        Some(duration) => Ok(duration),
        None => Err(DurationError::Zero(text.trim().to_string())),
    }
}

/// Like [`parse_duration`], but zero (`0`, `0s`) is allowed and means "no limit" (kubectl's
/// `--timeout=0`): `Duration::ZERO`. Read the field with [`limit`].
///
/// Usable as `#[arg(value_parser = shared::duration::parse_duration_or_zero)]` on a `Duration` field.
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, DurationError> {
    Ok(parse_optional_duration(text)?.unwrap_or(Duration::ZERO))
}

/// `None` for the "no limit" zero of [`parse_duration_or_zero`], else the duration.
pub fn limit(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

/// Like [`parse_duration`], but zero (`0`, `0s`) means "no limit", as kubectl's `--timeout=0`: `None`.
pub fn parse_optional_duration(text: &str) -> Result<Option<Duration>, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(trimmed.to_string()));
    }
    let invalid = || DurationError::Invalid(trimmed.to_string());
    let duration = if let Some(seconds) = bare_seconds(trimmed) {
        Duration::try_from_secs_f64(seconds).map_err(|_| DurationError::TooLong(trimmed.to_string()))?
    } else {
        let signed = match trimmed.parse::<jiff::SignedDuration>() {
            Ok(signed) => signed,
            // jiff takes a fraction on the last unit only; the older env grammar also took `1.5h30m`.
            Err(_) => compact(trimmed).ok_or_else(invalid)?,
        };
        if signed.is_negative() {
            return Err(DurationError::Negative(trimmed.to_string()));
        }
        Duration::try_from(signed).map_err(|_| invalid())?
    };
    Ok((!duration.is_zero()).then_some(duration))
}

/// `10`, `2.5`: seconds, as kubectl takes a bare number.
fn bare_seconds(text: &str) -> Option<f64> {
    if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') || !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|s| s.is_finite())
}

/// `1.5h30m`: number-unit pairs where any number may have a fraction (units ms, s, m, h).
fn compact(text: &str) -> Option<jiff::SignedDuration> {
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * factor;
        rest = tail;
    }
    jiff::SignedDuration::try_from_secs_f64(total).ok()
}

/// A duration the way the messages of every plugin write it: `90s`, `2m`, `1h30m`, `500ms`.
pub fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let seconds = duration.as_secs();
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    if h > 0 {
        text.push_str(&format!("{h}h"));
    }
    if m > 0 {
        text.push_str(&format!("{m}m"));
    }
    if s > 0 || text.is_empty() {
        text.push_str(&format!("{s}s"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_forms_the_issue_names() {
        assert_eq!(parse_duration("90s").unwrap(), secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), secs(120));
        assert_eq!(parse_duration("1.5h").unwrap(), secs(5400));
    }

    /// Everything `envctl::args::parse_duration` accepted.
    #[test]
    fn the_old_env_grammar() {
        assert_eq!(parse_duration("15m").unwrap(), secs(900));
        assert_eq!(parse_duration("1h").unwrap(), secs(3600));
        assert_eq!(parse_duration("10").unwrap(), secs(10));
        assert_eq!(parse_duration(" 30s ").unwrap(), secs(30));
        assert_eq!(parse_duration("1h30m15s").unwrap(), secs(5415));
        assert_eq!(parse_duration("1m500ms").unwrap(), Duration::from_millis(60_500));
        assert_eq!(parse_duration("1.5h30m").unwrap(), secs(7200));
        assert_eq!(parse_duration("0.5m").unwrap(), secs(30));
    }

    /// Everything `db::parse_duration` (also used by `secrets --timeout`) and kube-standin accepted.
    #[test]
    fn the_old_db_and_secrets_grammar() {
        assert_eq!(parse_duration("10s").unwrap(), secs(10));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5ms").unwrap(), Duration::from_micros(1500));
        assert_eq!(parse_duration("30s").unwrap(), secs(30));
    }

    #[test]
    fn jiff_spellings_are_accepted_too() {
        assert_eq!(parse_duration("1h 30m").unwrap(), secs(5400));
        assert_eq!(parse_duration("5 minutes").unwrap(), secs(300));
        assert_eq!(parse_duration("PT1H30M").unwrap(), secs(5400));
    }

    #[test]
    fn zero_is_none_where_it_means_no_limit_and_an_error_elsewhere() {
        for zero in ["0", "0s", "0ms", "0h0m"] {
            assert_eq!(parse_optional_duration(zero).unwrap(), None, "{zero}");
            let err = parse_duration(zero).unwrap_err();
            assert!(matches!(err, DurationError::Zero(_)), "{zero}: {err}");
        }
        assert_eq!(parse_optional_duration("5s").unwrap(), Some(secs(5)));
    }

    #[test]
    fn bad_input_is_one_sentence_naming_the_text_with_examples() {
        for (text, says) in [
            ("", "empty"),
            ("  ", "empty"),
            ("-5s", "negative"),
            ("-1", "negative"),
            ("3d", "not a duration"),
            ("soon", "not a duration"),
            ("10x", "not a duration"),
            ("s", "not a duration"),
            ("1..5s", "not a duration"),
            ("1h-30m", "not a duration"),
        ] {
            let message = parse_duration(text).unwrap_err().to_string();
            assert!(message.contains(says), "{text:?}: {message}");
            assert!(message.contains("90s") && message.contains("1h30m"), "{message}");
            if !text.trim().is_empty() {
                assert!(message.contains(&format!("`{}`", text.trim())), "{message}");
            }
            assert!(!message.contains('\n'), "{message}");
        }
        assert!(matches!(parse_duration("1e400"), Err(DurationError::Invalid(_))));
        assert!(matches!(
            parse_duration("99999999999999999999999"),
            Err(DurationError::TooLong(_))
        ));
    }

    #[test]
    fn works_as_a_clap_value_parser() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[arg(long, default_value = "10s", value_parser = parse_duration)]
            timeout: Duration,
            #[arg(long, default_value = "0", value_parser = parse_duration_or_zero)]
            wait: Duration,
        }
        let cli = Cli::try_parse_from(["x", "--timeout", "1h30m"]).unwrap();
        assert_eq!(cli.timeout, secs(5400));
        assert_eq!(limit(cli.wait), None);
        let cli = Cli::try_parse_from(["x", "--wait", "2m"]).unwrap();
        assert_eq!(limit(cli.wait), Some(secs(120)));
        let err = Cli::try_parse_from(["x", "--timeout", "3d"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`3d` is not a duration"), "{err}");
    }

    #[test]
    fn human_reads_back() {
        assert_eq!(human(Duration::from_millis(500)), "500ms");
        assert_eq!(human(secs(90)), "1m30s");
        assert_eq!(human(secs(5400)), "1h30m");
        assert_eq!(human(secs(3600)), "1h");
    }

    proptest! {
        #[test]
        fn human_output_parses_back_to_whole_seconds(s in 1u64..1_000_000) {
            prop_assert_eq!(parse_duration(&human(secs(s))).unwrap(), secs(s));
        }

        #[test]
        fn compound_forms_add_up(h in 0u64..100, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let expected = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            let parsed = parse_optional_duration(&text).unwrap();
            prop_assert_eq!(parsed, (!expected.is_zero()).then_some(expected));
        }

        #[test]
        fn never_panics(text in ".{0,24}") {
            let _ = parse_optional_duration(&text);
        }
    }
}

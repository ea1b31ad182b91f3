//! Durations on the command line, as kubectl writes them (`--timeout 90s`, `15m`, `1h30m`, `500ms`).
//!
//! A leaf module: the option structs' flags parse with it, and so do the benches.

use std::time::Duration;

/// Parse a kubectl-style duration: `90s`, `15m`, `1h`, `1h30m`, `500ms`, or bare seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let zero = || format!("`{text}`: the timeout must be greater than zero");
    if let Ok(seconds) = text.parse::<u64>() {
        return if seconds == 0 {
            Err(zero())
        } else {
            Ok(Duration::from_secs(seconds))
        };
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            "ms"
        } else {
            match c {
                'h' => "h",
                'm' => "m",
                's' => "s",
                _ => return Err(format!("`{text}` is not a duration like 90s, 15m or 1h30m")),
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration like 90s, 15m or 1h30m"))?;
        number.clear();
        any = true;
        total += Duration::from_secs_f64(match unit {
            "h" => value * 3600.0,
            "m" => value * 60.0,
            "s" => value,
            _ => value / 1000.0,
        });
    }
    if !number.is_empty() || !any {
        return Err(format!("`{text}` is not a duration like 90s, 15m or 1h30m"));
    }
    if total.is_zero() {
        return Err(zero());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("15").is_ok());
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("must be greater than zero")
        );
        assert!(parse_duration("0").unwrap_err().contains("greater than zero"));
    }
}

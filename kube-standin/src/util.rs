//! Small helpers shared by the modules: timestamps, random names, durations, URL decoding and JSON paths.
//!
//! Dates go through `jiff`; the rest is small on purpose: the stand-in needs only RFC 3339 "now",
//! lowercase random suffixes and the few query-string rules the Kubernetes clients actually use.

use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;
use serde_json::{Map, Value};

/// The current time as RFC 3339 with a `Z` suffix and whole seconds, like the API server writes it.
pub fn now_rfc3339() -> String {
    whole_seconds(Timestamp::now().as_second())
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(secs: u64) -> String {
    whole_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// `jiff` prints a whole-second instant in UTC exactly as the API server does; instants past its range
/// (late 9999) fall back to the epoch rather than panic.
fn whole_seconds(secs: i64) -> String {
    Timestamp::from_second(secs)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

/// `n` characters from the alphabet the API server uses for `generateName` suffixes.
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random UUID (version 4) in its canonical textual form.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses durations such as `500ms`, `2s`, `1m`, `1h`, `1.5s`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms or 2s"))?;
    let factor = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(value * factor))
}

/// Decodes `%XX` escapes (and optionally `+` as space, for query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string into decoded `(key, value)` pairs, keeping repeats (`ports=1&ports=2`).
pub fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Reads `a.b.c` style nested fields.
pub fn get_path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// The string at a nested path, if it is a string.
pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get_path(v, path).and_then(Value::as_str)
}

/// Returns the object at `path`, creating empty objects on the way (replacing non-objects).
pub fn ensure_object<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = v;
    for key in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = cur
            .as_object_mut()
            .expect("just made an object")
            .entry(key.to_string())
            .or_insert(Value::Null);
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut().expect("just made an object")
}

/// The `metadata` map of an object (created if missing).
pub fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    ensure_object(v, &["metadata"])
}

/// A copy of `v` without the given top-level keys, for "did anything but X change" comparisons.
pub fn without_keys(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The canonical Kubernetes version order: GA before beta before alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let (level, n) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (level, major, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(253_402_207_200), "9999-12-30T22:00:00Z");
        assert_eq!(format_rfc3339(u64::MAX), "1970-01-01T00:00:00Z");
        let now = now_rfc3339();
        assert!(
            now.len() == 20 && now.ends_with('Z') && now.starts_with("20"),
            "{now}"
        );
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("2 weeks").is_err());
    }

    #[test]
    fn decodes_queries() {
        let q = parse_query(Some(
            "labelSelector=app%3Dx%2Ctier+in+%28a%29&ports=1&ports=2&watch",
        ));
        assert_eq!(q[0], ("labelSelector".into(), "app=x,tier in (a)".into()));
        assert_eq!(q[1].1, "1");
        assert_eq!(q[2].1, "2");
        assert_eq!(q[3], ("watch".into(), String::new()));
        assert_eq!(percent_decode("http%3Aname%3A", false), "http:name:");
    }

    #[test]
    fn orders_versions_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1beta1", "v2", "v1", "v2beta2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v1beta1", "v1alpha1"]);
    }

    #[test]
    fn uids_look_like_uuids() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}

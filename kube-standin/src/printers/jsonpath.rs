//! The JSONPath subset CRD `additionalPrinterColumns` use (the API server accepts "simple" paths only):
//! `.a.b`, `.a[0]`, `.a[*]`, `.a['b.c']`, and filters `[?(@.type == "Ready")]` / `!=`, optionally
//! wrapped in `{...}`. Evaluation returns every match, in document order.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses a column path; the message names what is wrong.
    pub fn parse(path: &str) -> Result<Self, String> {
        let mut s = path.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            s = inner.trim();
        }
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let mut steps = Vec::new();
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    if name.is_empty() {
                        return Err(format!("empty field name in JSONPath {path:?}"));
                    }
                    steps.push(Step::Field(name));
                }
                '[' => {
                    let close = find_bracket_end(&chars, i)
                        .ok_or_else(|| format!("unclosed '[' in JSONPath {path:?}"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    steps.push(parse_bracket(inner.trim(), path)?);
                    i = close + 1;
                }
                c => return Err(format!("unexpected {c:?} in JSONPath {path:?}")),
            }
        }
        Ok(JsonPath(steps))
    }

    /// Every value the path reaches in `doc`.
    pub fn find<'a>(&self, doc: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![doc];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(name) => {
                        if let Some(x) = v.get(name) {
                            next.push(x);
                        }
                    }
                    Step::Index(n) => {
                        if let Some(a) = v.as_array() {
                            let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                            if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                                next.push(x);
                            }
                        }
                    }
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Filter { path, equal, value } => {
                        if let Some(a) = v.as_array() {
                            for item in a {
                                let got = path.iter().try_fold(item, |acc, k| acc.get(k));
                                let same = got.is_some_and(|g| loosely_equal(g, value));
                                if got.is_some() && same == *equal {
                                    next.push(item);
                                }
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn find_bracket_end(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

fn parse_bracket(inner: &str, path: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name.to_string()));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    let filter = inner
        .strip_prefix("?(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("unsupported [{inner}] in JSONPath {path:?}"))?;
    let (lhs, rhs, equal) = if let Some((l, r)) = filter.split_once("==") {
        (l, r, true)
    } else if let Some((l, r)) = filter.split_once("!=") {
        (l, r, false)
    } else {
        return Err(format!("unsupported filter {filter:?} in JSONPath {path:?}"));
    };
    let field = lhs
        .trim()
        .strip_prefix("@.")
        .ok_or_else(|| format!("a filter must compare @.field in JSONPath {path:?}"))?;
    let rhs = rhs.trim();
    let value = match unquote(rhs) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str(rhs)
            .map_err(|_| format!("unsupported filter value {rhs:?} in JSONPath {path:?}"))?,
    };
    Ok(Step::Filter {
        path: field.split('.').map(str::to_string).collect(),
        equal,
        value,
    })
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// How kubectl's JSONPath printer renders one value: strings raw, everything else as Go's `fmt` would
/// (`map[k:v]`, `[a b]`), which is what a `string` column shows.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(to_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{k}:{}", to_text(&m[*k]))).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_the_paths_crds_declare() {
        let doc = json!({"status": {"instances": 3, "conditions": [
            {"type": "Progressing", "status": "False"},
            {"type": "Ready", "status": "True", "message": "ok"}
        ]}, "spec": {"a.b": 1, "list": [1, 2]}});
        let one = |p: &str| {
            JsonPath::parse(p)
                .unwrap()
                .find(&doc)
                .first()
                .map(|v| (*v).clone())
        };
        assert_eq!(one(".status.instances"), Some(json!(3)));
        assert_eq!(one("{.status.instances}"), Some(json!(3)));
        assert_eq!(
            one(".status.conditions[?(@.type == \"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            one(".status.conditions[?(@.type=='Ready')].message"),
            Some(json!("ok"))
        );
        assert_eq!(one(".status.conditions[0].status"), Some(json!("False")));
        assert_eq!(one(".status.conditions[-1].type"), Some(json!("Ready")));
        assert_eq!(one(".spec['a.b']"), Some(json!(1)));
        assert_eq!(JsonPath::parse(".spec.list[*]").unwrap().find(&doc).len(), 2);
        assert_eq!(one(".status.missing"), None);
        assert!(JsonPath::parse(".a[").is_err());
        assert!(JsonPath::parse(".a[?(@.x > 1)]").is_err());
        assert_eq!(to_text(&json!({"b": [1, "x"], "a": true})), "map[a:true b:[1 x]]");
    }
}

//! Kubernetes object names, checked by the API server's own rules (apimachinery's
//! `IsDNS1123Subdomain`, `IsDNS1123Label`), so that nothing the API server would refuse is written or
//! reported as fine.
//!
//! - DNS-1123 subdomain (most kinds: ConfigMap, Secret, Deployment, custom resources …): non-empty, at most
//!   253 characters, lowercase ASCII letters, digits, `-` and `.`, starting and ending with a letter or
//!   digit, each `.`-separated part non-empty and not starting or ending with `-`.
//! - DNS-1123 label (Namespace, Service): non-empty, at most 63 characters, lowercase ASCII letters, digits
//!   and `-`, starting and ending with a letter or digit.
//!
//! [`validate_object_name`] picks the rule per kind; messages name the kind, the name (escaped, so control
//! characters are not echoed raw) and the rule.

use std::fmt;

/// Longest DNS-1123 subdomain.
pub const MAX_SUBDOMAIN: usize = 253;
/// Longest DNS-1123 label.
pub const MAX_LABEL: usize = 63;

/// The naming rule a kind's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain: up to 253 characters, dots allowed.
    Subdomain,
    /// DNS-1123 label: up to 63 characters, no dots.
    Label,
}

impl NameRule {
    /// The rule the API server applies to `kind`'s names (`Namespace`, `Service`: label; else subdomain).
    pub fn for_kind(kind: &str) -> Self {
        match kind {
            "Namespace" | "Service" => NameRule::Label,
            _ => NameRule::Subdomain,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            NameRule::Subdomain => {
                "a DNS-1123 subdomain: at most 253 characters, lowercase letters, digits, '-' and '.', \
                 starting and ending with a letter or digit"
            }
            NameRule::Label => {
                "a DNS-1123 label: at most 63 characters, lowercase letters, digits and '-', starting and \
                 ending with a letter or digit"
            }
        }
    }
}

/// A name the API server would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} name {} is invalid: {problem}; it must be {}", shown(name), rule.describe())]
pub struct NameError {
    /// The kind (`ConfigMap`, `Namespace`), or what the name is for (`--name`).
    pub kind: String,
    /// The name given.
    pub name: String,
    /// The rule it breaks.
    pub rule: NameRule,
    /// What is wrong: `it is empty`, `it is 300 characters long`, `it contains 'É'`.
    pub problem: String,
}

/// A name for a message: quoted, with control and non-ASCII characters escaped.
fn shown(name: &str) -> String {
    if name.is_empty() {
        return "\"\"".to_string();
    }
    format!("{:?}", Escaped(name))
}

struct Escaped<'a>(&'a str);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars().take(80) {
            if c.is_ascii_graphic() || c == ' ' {
                write!(f, "{c}")?;
            } else {
                write!(f, "{}", c.escape_unicode())?;
            }
        }
        if self.0.chars().count() > 80 {
            f.write_str("…")?;
        }
        f.write_str("\"")
    }
}

fn problem(name: &str, rule: NameRule) -> Option<String> {
    let max = match rule {
        NameRule::Subdomain => MAX_SUBDOMAIN,
        NameRule::Label => MAX_LABEL,
    };
    if name.is_empty() {
        return Some("it is empty".to_string());
    }
    if name.len() > max {
        return Some(format!("it is {} characters long", name.chars().count()));
    }
    if let Some(bad) = name.chars().find(|c| {
        !(c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || *c == '-'
            || (*c == '.' && rule == NameRule::Subdomain))
    }) {
        let shown = if bad.is_ascii_graphic() {
            format!("'{bad}'")
        } else if bad == ' ' {
            "a space".to_string()
        } else {
            format!("'{}'", bad.escape_unicode())
        };
        return Some(format!("it contains {shown}"));
    }
    let parts: Vec<&str> = match rule {
        NameRule::Subdomain => name.split('.').collect(),
        NameRule::Label => vec![name],
    };
    for part in parts {
        if part.is_empty() {
            return Some("it has an empty part between dots".to_string());
        }
        if part.starts_with('-') || part.ends_with('-') {
            return Some("a part starts or ends with '-'".to_string());
        }
    }
    None
}

fn check(kind: &str, name: &str, rule: NameRule) -> Result<(), NameError> {
    match problem(name, rule) {
        None => Ok(()),
        Some(problem) => Err(NameError {
            kind: kind.to_string(),
            name: name.to_string(),
            rule,
            problem,
        }),
    }
}

/// True when `name` is a DNS-1123 subdomain.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    problem(name, NameRule::Subdomain).is_none()
}

/// True when `name` is a DNS-1123 label.
pub fn is_dns1123_label(name: &str) -> bool {
    problem(name, NameRule::Label).is_none()
}

/// Check `name` as a DNS-1123 subdomain; `kind` names it in the message.
pub fn validate_dns1123_subdomain(kind: &str, name: &str) -> Result<(), NameError> {
    check(kind, name, NameRule::Subdomain)
}

/// Check `name` as a DNS-1123 label; `kind` names it in the message.
pub fn validate_dns1123_label(kind: &str, name: &str) -> Result<(), NameError> {
    check(kind, name, NameRule::Label)
}

/// Check the name of an object of `kind` (`ConfigMap`, `Namespace`, `SealedSecret`…) by the rule the API
/// server applies to that kind.
pub fn validate_object_name(kind: &str, name: &str) -> Result<(), NameError> {
    check(kind, name, NameRule::for_kind(kind))
}

/// Check a namespace name (a DNS-1123 label); `what` names where it came from (`-n`, `metadata.namespace`).
pub fn validate_namespace(what: &str, namespace: &str) -> Result<(), NameError> {
    check(what, namespace, NameRule::Label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_api_servers_examples() {
        for good in [
            "a",
            "abc",
            "a-b",
            "0",
            "a.b",
            "my-app.example.com",
            &"a".repeat(253),
        ] {
            assert!(is_dns1123_subdomain(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "a_b",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a.-b",
            "é",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
        for good in ["a", "a-b", "0a", &"a".repeat(63)] {
            assert!(is_dns1123_label(good), "{good}");
        }
        for bad in ["", "a.b", "A", "-a", "a-", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }

    #[test]
    fn the_rule_follows_the_kind() {
        let dotted = "db.staging";
        assert!(validate_object_name("ConfigMap", dotted).is_ok());
        assert!(validate_object_name("SealedSecret", dotted).is_ok());
        let err = validate_object_name("Namespace", dotted).unwrap_err();
        assert_eq!(err.rule, NameRule::Label);
        assert!(validate_object_name("Service", dotted).is_err());
    }

    #[test]
    fn messages_name_kind_name_problem_and_rule() {
        let err = validate_object_name("ConfigMap", "").unwrap_err().to_string();
        assert_eq!(
            err,
            "ConfigMap name \"\" is invalid: it is empty; it must be a DNS-1123 subdomain: at most 253 \
             characters, lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        );
        let err = validate_object_name("Secret", "caf\u{e9}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("it contains '\\u{e9}'"), "{err}");
        let err = validate_namespace("-n", "a\u{1b}[31m").unwrap_err().to_string();
        assert!(!err.contains('\u{1b}') && err.starts_with("-n name"), "{err}");
        let err = validate_object_name("Secret", &"a".repeat(300))
            .unwrap_err()
            .to_string();
        assert!(err.contains("300 characters long") && err.contains('…'), "{err}");
    }

    fn reference_subdomain(name: &str) -> bool {
        // apimachinery's regex, spelled out: label(.label)*, label = [a-z0-9]([-a-z0-9]*[a-z0-9])?
        let label = |part: &str| {
            let bytes = part.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        };
        name.len() <= 253 && name.split('.').all(label)
    }

    proptest! {
        #[test]
        fn subdomain_agrees_with_the_reference(name in "[a-z0-9.A-Z_-]{0,12}|[a-z.-]{250,256}") {
            prop_assert_eq!(is_dns1123_subdomain(&name), reference_subdomain(&name));
        }

        #[test]
        fn every_label_is_a_subdomain(name in "[a-z0-9-]{0,70}") {
            if is_dns1123_label(&name) {
                prop_assert!(is_dns1123_subdomain(&name));
                prop_assert!(name.len() <= 63);
            }
        }

        #[test]
        fn messages_are_one_printable_line(kind in "[A-Za-z]{1,12}", name in "\\PC{0,40}|.{0,40}") {
            if let Err(err) = validate_object_name(&kind, &name) {
                let text = err.to_string();
                prop_assert!(!text.chars().any(char::is_control), "{}", text);
                prop_assert!(text.starts_with(&kind));
            }
        }
    }
}

//! YAML parse errors as people editing the file need them: one line with the position, no source snippet
//! (the line may hold a password), and the parser's advice about its own options ("set
//! DuplicateKeyPolicy", "budget breached") replaced by what happened and what to do.

const ALIAS_BOMB: &str = "it expands to too much data through anchors and aliases (a \"billion laughs\" YAML bomb?); \
                          write the values out instead of aliasing them";

/// The parser's safety budget (its `Debug` name of the breach) as what the file does wrong.
fn budget_breach(breach: &str) -> &'static str {
    let kind = breach.split([' ', '{', '(']).next().unwrap_or_default();
    match kind {
        "Depth" | "InclusionDepth" => "it nests mappings and sequences too deeply; flatten it",
        "Documents" => "it holds too many YAML documents; split it into several files",
        "CommentBytes" | "InputBytes" => "it is too large to read safely; split it into smaller files",
        "SequenceUnbalanced" => "its sequences and mappings do not close; check the brackets and indentation",
        _ => ALIAS_BOMB,
    }
}

/// One sentence for a serde-saphyr error: what is wrong, at which line and column.
pub fn describe(err: &serde_saphyr::Error) -> String {
    let message = err.to_string();
    let first = message.lines().next().unwrap_or("malformed YAML").trim_end();
    // The parser starts with `error:`, which reads as a second error inside the caller's message.
    let mut first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if let Some(breach) = first.split("budget breached: ").nth(1) {
        first = budget_breach(breach).to_string();
    } else if first.contains("alias replay limit") || first.contains("alias expansion limit") {
        first = ALIAS_BOMB.to_string();
    } else if first.contains("recursion limit exceeded") {
        first = budget_breach("Depth").to_string();
    } else if let Some((_, rest)) = first.split_once("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest)
            .trim();
        let key = key.split(" at line").next().unwrap_or(key);
        let at = match (rest.find(" at line"), err.location()) {
            (Some(i), _) => rest[i..].to_string(),
            (None, Some(at)) => format!(" at line {}, column {}", at.line(), at.column()),
            (None, None) => String::new(),
        };
        first = format!("key `{key}` is given twice in one mapping{at}; give each key once");
    }
    match err.location() {
        Some(at) if !first.contains("line") => {
            format!("{first} (line {}, column {})", at.line(), at.column())
        }
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> String {
        describe(&serde_saphyr::from_str::<serde_json::Value>(text).unwrap_err())
    }

    #[test]
    fn duplicate_keys_read_as_advice_for_the_file_not_the_parser() {
        let message = parse_error("namespace: a\nnamespace: b\n");
        assert!(
            message.starts_with("key `namespace` is given twice in one mapping")
                && message.contains("line 2")
                && message.ends_with("give each key once"),
            "{message}"
        );
        assert!(!message.contains("DuplicateKeyPolicy"), "{message}");
    }

    #[test]
    fn a_yaml_bomb_is_named_as_such() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            bomb.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{previous}"); 10].join(", ")
            ));
        }
        let message = parse_error(&bomb);
        assert!(
            message.contains("YAML bomb") && !message.contains("budget"),
            "{message}"
        );
    }

    #[test]
    fn budget_breaches_say_what_the_file_does() {
        assert!(budget_breach("Depth { depth: 2000 }").contains("too deeply"));
        assert!(budget_breach("Documents { documents: 9 }").contains("too many YAML documents"));
        assert!(budget_breach("InputBytes { input_bytes: 1 }").contains("too large"));
        assert!(budget_breach("Aliases { aliases: 1 }").contains("YAML bomb"));
        // Replayed aliases count as events and nodes: that is how a bomb shows.
        assert!(budget_breach("Nodes { nodes: 1 }").contains("YAML bomb"));
        let deep = format!("{}x{}", "[".repeat(3000), "]".repeat(3000));
        assert!(
            parse_error(&deep).contains("too deeply"),
            "{}",
            parse_error(&deep)
        );
    }

    #[test]
    fn the_source_line_is_not_quoted() {
        let message = parse_error("password: hunter2-secret\n  broken: [\n");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("line"), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.starts_with("line 2"), "{message}");
    }
}

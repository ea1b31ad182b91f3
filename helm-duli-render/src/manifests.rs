//! Splitting rendered multi-document YAML into objects.
//!
//! `helm template` writes `---` separators and a `# Source: chart/templates/file.yaml` comment before
//! each document; the splitter keeps that file name with every object so findings and output files can
//! point at the template. Each document is parsed with serde-saphyr (duplicate keys rejected, budget
//! limits on), empty documents are dropped, and the document's own text is kept for output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Errors parsing rendered YAML.
#[derive(Debug, thiserror::Error)]
#[error("{file}: rendered document {index} is not valid YAML: {message}")]
pub struct ManifestError {
    /// The template (or file) the document came from.
    pub file: String,
    /// 1-based index of the document in the stream.
    pub index: usize,
    /// The parser's message (line and column are relative to the rendered document).
    pub message: String,
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// The template file it came from (`# Source:`), or the stream's name.
    pub source: String,
    /// The document text as rendered (without separator and `# Source:` line).
    pub text: String,
    /// The parsed document.
    pub value: Value,
}

impl Object {
    /// `apiVersion`, or "".
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `kind`, or "".
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or_default()
    }

    /// `metadata.name`, or "".
    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.value.pointer("/metadata/namespace").and_then(Value::as_str)
    }

    /// `Kind/namespace/name`, or `Kind/name` without a namespace.
    pub fn id(&self) -> String {
        match self.namespace() {
            Some(namespace) => format!("{}/{}/{}", self.kind(), namespace, self.name()),
            None => format!("{}/{}", self.kind(), self.name()),
        }
    }

    /// `metadata.labels`, as a map (empty when absent).
    pub fn labels(&self) -> serde_json::Map<String, Value> {
        self.value
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// Split a rendered stream into objects. `default_source` names documents without a `# Source:` line.
pub fn split(text: &str, default_source: &str) -> Result<Vec<Object>, ManifestError> {
    let mut objects = Vec::new();
    for (index, (source, body)) in (1..).zip(documents(text)) {
        let source = source.unwrap_or(default_source).to_string();
        let parsed: Vec<Value> = serde_saphyr::from_str_multiple(&body).map_err(|err| ManifestError {
            file: source.clone(),
            index,
            message: shared::yaml_error::describe(&err),
        })?;
        let parsed: Vec<Value> = parsed.into_iter().filter(|value| !value.is_null()).collect();
        // A `...` (or `---<TAB>`) line inside one rendered document starts another YAML document; both
        // would carry the whole text, so the output would hold each of them twice.
        if parsed.len() > 1 {
            return Err(ManifestError {
                file: source,
                index,
                message: format!(
                    "it holds {} YAML documents (a `...` or `---` marker line inside it); start each object with a line of `---`",
                    parsed.len()
                ),
            });
        }
        for value in parsed {
            if !value.is_object() {
                return Err(ManifestError {
                    file: source,
                    index,
                    message: "the document is not a mapping".into(),
                });
            }
            objects.push(Object {
                source: source.clone(),
                text: body.clone(),
                value,
            });
        }
    }
    Ok(objects)
}

/// The documents of a stream, each with its `# Source:` file (if any) and its text.
fn documents(text: &str) -> Vec<(Option<&str>, String)> {
    fn flush<'t>(source: &mut Option<&'t str>, body: &mut String, docs: &mut Vec<(Option<&'t str>, String)>) {
        if !body.trim().is_empty() {
            let mut text = std::mem::take(body);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            docs.push((source.take(), text));
        }
        *source = None;
        body.clear();
    }
    let mut docs = Vec::new();
    let mut source = None;
    let mut body = String::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare.starts_with("--- ") {
            flush(&mut source, &mut body, &mut docs);
            continue;
        }
        if let Some(file) = bare.strip_prefix("# Source: ")
            && body.trim().is_empty()
        {
            source = Some(file.trim());
            continue;
        }
        body.push_str(line);
    }
    flush(&mut source, &mut body, &mut docs);
    docs
}

/// Remove keys whose value is null, recursively (the API server drops them too).
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_helm_output_keeping_sources_and_text() {
        let text = "---\n# Source: app/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n\
                    ---\n# Source: app/templates/empty.yaml\n---\n# Source: app/templates/b.yaml\n\
                    apiVersion: v1\nkind: Service\nmetadata:\n  name: b\n  namespace: x\n";
        let objects = split(text, "stream").unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].source, "app/templates/a.yaml");
        assert_eq!(objects[0].id(), "ConfigMap/a");
        assert_eq!(
            objects[0].text,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        );
        assert_eq!(objects[1].id(), "Service/x/b");
    }

    #[test]
    fn yaml_errors_name_the_template() {
        let text = "---\n# Source: app/templates/bad.yaml\nkind: ConfigMap\nkind: Secret\n";
        let err = split(text, "stream").unwrap_err().to_string();
        assert!(err.contains("app/templates/bad.yaml"), "{err}");
    }

    #[test]
    fn a_document_holding_two_yaml_documents_is_an_error_not_printed_twice() {
        // Found by the manifest_stream fuzz target: the `...` line made one document parse as two YAML
        // documents, and both objects carried the whole text, so the stream printed each of them twice.
        let fuzz = "---\n#\n   S/urce: app/---\n# Sot\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n...\n\n\n\n\n\n\
                    # Soture\n\n\n\n\n\n\n\n\n\n\n\n\n::\n\n\n\r\n\n\n\n\n\n c--\n";
        let err = split(fuzz, "stream").unwrap_err().to_string();
        assert!(
            err.contains("stream: rendered document 1") && err.contains("2 YAML documents"),
            "{err}"
        );
        let text = "---\n# Source: app/templates/two.yaml\nkind: A\n...\nkind: B\n";
        let err = split(text, "stream").unwrap_err().to_string();
        assert!(err.contains("app/templates/two.yaml"), "{err}");
        // A document end marker with nothing after it is still one document.
        let objects = split("kind: A\n...\n", "stream").unwrap();
        assert_eq!(objects.len(), 1);
        let again = split(
            &super::super::output::stream(&[("c".into(), std::sync::Arc::new(objects.clone()))]),
            "stream",
        )
        .unwrap();
        assert_eq!(again, objects);
    }

    #[test]
    fn documents_without_source_use_the_default() {
        let objects = split("kind: A\n---\nkind: B\n", "apps/x.yml.j2").unwrap();
        assert_eq!(objects.len(), 2);
        assert!(objects.iter().all(|o| o.source == "apps/x.yml.j2"));
    }
}

//! Secrets in, SealedSecrets out, in kubeseal's shape; and updating keys of an existing SealedSecret file
//! without touching the rest of it.
//!
//! Input: YAML (multi-document) or JSON (concatenated objects), `kind: Secret` or a `List` of them, `data`
//! (base64) and `stringData` (text; sealed after `data`, so it wins). Output JSON has kubeseal's field
//! order (kind, apiVersion, metadata, spec{template, encryptedData}), sorted maps, Go's HTML escaping and
//! a trailing newline; YAML has sorted keys and a leading `---`. Error messages name the input, document
//! and field, never a value.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::format::{
    CLUSTER_WIDE_ANNOTATION, FormatError, NAMESPACE_WIDE_ANNOTATION, Scope, Sealer, is_valid_key,
};
use crate::yaml;

/// apiVersion of SealedSecrets.
pub const API_VERSION: &str = "bitnami.com/v1alpha1";
/// kind of SealedSecrets.
pub const KIND: &str = "SealedSecret";

/// Template annotations that leak plaintext and are never copied (#227).
const DROPPED_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
];

/// Errors reading Secrets or SealedSecrets, or merging into one.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Nothing to read.
    #[error(
        "no Secret found in {source_desc}: the input is empty; pass a Secret manifest (stdin or -f FILE) or --name with --from-literal/--from-file/--from-env-file"
    )]
    Empty {
        /// The input.
        source_desc: String,
    },
    /// Not parseable.
    #[error("{source_desc} is not valid {format}: {message}")]
    Syntax {
        /// The input.
        source_desc: String,
        /// YAML or JSON.
        format: &'static str,
        /// The parser's message (position, no content).
        message: String,
    },
    /// A document that is not a Secret.
    #[error("document {doc} of {source_desc} is {found}, not a Secret (apiVersion: v1, kind: Secret)")]
    NotASecret {
        /// The input.
        source_desc: String,
        /// 1-based document number.
        doc: usize,
        /// What it is instead.
        found: String,
    },
    /// A field breaks a rule.
    #[error("document {doc} of {source_desc}: field `{field}`: {problem}")]
    Field {
        /// The input.
        source_desc: String,
        /// 1-based document number.
        doc: usize,
        /// Dotted field path.
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The merge target is not a SealedSecret.
    #[error(
        "{source_desc} is not a SealedSecret ({problem}); --merge-into needs a file holding exactly one SealedSecret"
    )]
    NotSealedSecret {
        /// The file.
        source_desc: String,
        /// What was found.
        problem: String,
    },
    /// A document of a file read for verify/unseal is not a SealedSecret.
    #[error(
        "{source_desc} is not a SealedSecret ({problem}); pass SealedSecret files (bitnami.com/v1alpha1)"
    )]
    NoSealedSecret {
        /// The file (and document).
        source_desc: String,
        /// What was found.
        problem: String,
    },
    /// Input and target disagree.
    #[error("{what} mismatch: {source_desc} has {existing} but the input has {input}; {hint}")]
    Mismatch {
        /// The file.
        source_desc: String,
        /// name, namespace, scope or type.
        what: &'static str,
        /// The file's value.
        existing: String,
        /// The input's value.
        input: String,
        /// What to do.
        hint: &'static str,
    },
    /// Sealing a value failed.
    #[error("cannot seal key `{key}`: {error}")]
    Seal {
        /// The key.
        key: String,
        /// Why.
        error: FormatError,
    },
}

/// Document format (`--format json|yaml`, kubeseal's flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DocFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl DocFormat {
    /// JSON when the text starts with `{` or `[`, else YAML.
    pub fn detect(text: &str) -> Self {
        match text.trim_start().chars().next() {
            Some('{' | '[') => DocFormat::Json,
            _ => DocFormat::Yaml,
        }
    }

    /// From a file extension: `.json` → JSON, `.yaml`/`.yml` → YAML.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "json" => Some(DocFormat::Json),
            "yaml" | "yml" => Some(DocFormat::Yaml),
            _ => None,
        }
    }
}

/// One input Secret, decoded.
#[derive(Clone, Default)]
pub struct SecretInput {
    /// metadata.name (empty when not given).
    pub name: String,
    /// metadata.namespace (empty when not given).
    pub namespace: String,
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// metadata.annotations.
    pub annotations: BTreeMap<String, String>,
    /// metadata.finalizers.
    pub finalizers: Vec<String>,
    /// type.
    pub secret_type: Option<String>,
    /// immutable.
    pub immutable: Option<bool>,
    /// The plaintext values (data decoded, then stringData).
    pub items: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretInput")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("keys", &self.items.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Parse one or more Secrets from YAML or JSON text; `source_desc` names the input in messages.
pub fn parse_secrets(text: &str, source_desc: &str) -> Result<Vec<SecretInput>, ManifestError> {
    let docs = parse_documents(text, source_desc)?;
    let mut secrets = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let doc_number = index + 1;
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            for item in doc.get("items").and_then(Value::as_array).into_iter().flatten() {
                secrets.push(secret_from_value(item, source_desc, doc_number)?);
            }
        } else {
            secrets.push(secret_from_value(&doc, source_desc, doc_number)?);
        }
    }
    if secrets.is_empty() {
        return Err(ManifestError::Empty {
            source_desc: source_desc.to_string(),
        });
    }
    Ok(secrets)
}

/// The non-empty documents of a YAML or JSON text.
pub(crate) fn parse_documents(text: &str, source_desc: &str) -> Result<Vec<Value>, ManifestError> {
    if text.trim().is_empty() {
        return Err(ManifestError::Empty {
            source_desc: source_desc.to_string(),
        });
    }
    let syntax = |format, message: String| ManifestError::Syntax {
        source_desc: source_desc.to_string(),
        format,
        message,
    };
    let docs: Vec<Value> = match DocFormat::detect(text) {
        DocFormat::Json => serde_json::Deserializer::from_str(text)
            .into_iter::<UniqueKeys>()
            .map(|doc| doc.map(|doc| doc.0))
            .collect::<Result<_, _>>()
            .map_err(|err| syntax("JSON", err.to_string()))?,
        DocFormat::Yaml => {
            let options = serde_saphyr::options! { with_snippet: false };
            serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(text, options)
                .map_err(|err| syntax("YAML", shared::yaml_error::describe(&err)))?
        }
    };
    Ok(docs.into_iter().filter(|doc| !doc.is_null()).collect())
}

/// A JSON document whose objects must not repeat a key: serde_json would keep the last value silently,
/// and a Secret given `password` twice should not seal whichever came last.
struct UniqueKeys(Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "key `{key}` is given twice in one object; give each key once"
                )));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn kind_of(value: &Value) -> String {
    match (
        value.get("apiVersion").and_then(Value::as_str),
        value.get("kind").and_then(Value::as_str),
    ) {
        (Some(api), Some(kind)) => format!("a {kind} ({api})"),
        (None, Some(kind)) => format!("a {kind}"),
        _ if value.is_object() => "an object without kind".to_string(),
        _ => format!("a {}", json_type(value)),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

fn secret_from_value(value: &Value, source_desc: &str, doc: usize) -> Result<SecretInput, ManifestError> {
    let field_err = |field: &str, problem: String| ManifestError::Field {
        source_desc: source_desc.to_string(),
        doc,
        field: field.to_string(),
        problem,
    };
    let is_secret = value.get("kind").and_then(Value::as_str) == Some("Secret")
        && value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|api| api == "v1");
    if !is_secret {
        return Err(ManifestError::NotASecret {
            source_desc: source_desc.to_string(),
            doc,
            found: kind_of(value),
        });
    }
    let string_map = |field: &str, value: Option<&Value>| -> Result<Vec<(String, Value)>, ManifestError> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(map)) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Some(other) => Err(field_err(
                field,
                format!("is a {}, expected a mapping", json_type(other)),
            )),
        }
    };
    let text_field = |field: &str, value: Option<&Value>| -> Result<Option<String>, ManifestError> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(field_err(
                field,
                format!("is a {}, expected a string", json_type(other)),
            )),
        }
    };
    let metadata = value.get("metadata");
    let mut secret = SecretInput {
        name: text_field("metadata.name", metadata.and_then(|m| m.get("name")))?.unwrap_or_default(),
        namespace: text_field("metadata.namespace", metadata.and_then(|m| m.get("namespace")))?
            .unwrap_or_default(),
        secret_type: text_field("type", value.get("type"))?,
        ..SecretInput::default()
    };
    for (section, target) in [
        ("labels", &mut secret.labels),
        ("annotations", &mut secret.annotations),
    ] {
        let field = format!("metadata.{section}");
        for (key, entry) in string_map(&field, metadata.and_then(|m| m.get(section)))? {
            let text = text_field(&format!("{field}.{key}"), Some(&entry))?
                .ok_or_else(|| field_err(&format!("{field}.{key}"), "is null, expected a string".into()))?;
            target.insert(key, text);
        }
    }
    if let Some(finalizers) = metadata
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
    {
        secret.finalizers = finalizers
            .iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
    }
    secret.immutable = match value.get("immutable") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(field_err(
                "immutable",
                format!("is a {}, expected true or false", json_type(other)),
            ));
        }
    };
    for (key, entry) in string_map("data", value.get("data"))? {
        let field = format!("data.{key}");
        check_key(&key).map_err(|problem| field_err(&field, problem))?;
        let encoded = match entry {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => {
                return Err(field_err(
                    &field,
                    format!("is a {}, expected a base64 string", json_type(&other)),
                ));
            }
        };
        let decoded = STANDARD.decode(encoded.trim()).map_err(|_| {
            field_err(
                &field,
                "is not valid base64 (data values are base64-encoded; put plain text under stringData)"
                    .into(),
            )
        })?;
        secret.items.insert(key, decoded);
    }
    for (key, entry) in string_map("stringData", value.get("stringData"))? {
        let field = format!("stringData.{key}");
        check_key(&key).map_err(|problem| field_err(&field, problem))?;
        let text = match entry {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => {
                return Err(field_err(
                    &field,
                    format!(
                        "is a {}, expected a string; quote the value in YAML (e.g. \"5432\", \"yes\")",
                        json_type(&other)
                    ),
                ));
            }
        };
        secret.items.insert(key, text.into_bytes());
    }
    Ok(secret)
}

/// Check a Secret key name, with a sentence saying what is allowed.
pub fn check_key(key: &str) -> Result<(), String> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(format!(
            "key `{key}` is not allowed in a Secret: use 1-253 letters, digits, '-', '_' or '.', not starting with '..'"
        ))
    }
}

/// The scope to seal `secret` with: `flag` when given, else the input's scope annotations. A flag that
/// contradicts the annotations is an error rather than a silent re-scope.
pub fn resolve_scope(
    secret: &SecretInput,
    flag: Option<Scope>,
    source_desc: &str,
) -> Result<Scope, ManifestError> {
    let annotated = Scope::from_annotations(&secret.annotations);
    let has_annotation = [NAMESPACE_WIDE_ANNOTATION, CLUSTER_WIDE_ANNOTATION]
        .iter()
        .any(|name| secret.annotations.get(*name).is_some_and(|value| value == "true"));
    match flag {
        Some(flag) if has_annotation && flag != annotated => Err(ManifestError::Mismatch {
            source_desc: source_desc.to_string(),
            what: "scope",
            existing: format!("annotations for {annotated}"),
            input: format!("--scope {flag}"),
            hint: "remove the scope annotation from the input or the --scope flag",
        }),
        Some(flag) => Ok(flag),
        None => Ok(annotated),
    }
}

/// Seal one Secret into a SealedSecret document (JSON field order as kubeseal writes it).
pub fn seal_secret(secret: &SecretInput, scope: Scope, sealer: &Sealer) -> Result<Value, ManifestError> {
    let label = scope.label(&secret.namespace, &secret.name);
    let encrypted = seal_items(sealer, &label, &secret.items)?;
    Ok(sealed_document(secret, scope, &encrypted))
}

/// Seal every value under one label; many values are spread over the cores (each RSA-4096 wrap costs
/// about a third of a millisecond).
pub fn seal_items(
    sealer: &Sealer,
    label: &[u8],
    items: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, String>, ManifestError> {
    let items: Vec<(&String, &Vec<u8>)> = items.iter().collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().div_ceil(16))
        .max(1);
    let chunk = items.len().div_ceil(workers).max(1);
    let seal_chunk = |chunk: &[(&String, &Vec<u8>)]| -> Result<Vec<(String, String)>, ManifestError> {
        chunk
            .iter()
            .map(|(key, plaintext)| {
                let sealed = sealer
                    .seal_base64(label, plaintext)
                    .map_err(|error| ManifestError::Seal {
                        key: (*key).clone(),
                        error,
                    })?;
                Ok(((*key).clone(), sealed))
            })
            .collect()
    };
    let results: Vec<Result<Vec<(String, String)>, ManifestError>> = if workers == 1 {
        vec![seal_chunk(&items)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(chunk)
                .map(|part| scope.spawn(move || seal_chunk(part)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("sealing thread panicked"))
                .collect()
        })
    };
    let mut encrypted = BTreeMap::new();
    for result in results {
        encrypted.extend(result?);
    }
    Ok(encrypted)
}

/// The SealedSecret document for already-sealed values.
pub fn sealed_document(secret: &SecretInput, scope: Scope, encrypted: &BTreeMap<String, String>) -> Value {
    let mut annotations = secret.annotations.clone();
    for dropped in DROPPED_ANNOTATIONS {
        annotations.remove(dropped);
    }
    for other in [NAMESPACE_WIDE_ANNOTATION, CLUSTER_WIDE_ANNOTATION] {
        if scope.annotation() != Some(other) {
            annotations.remove(other);
        }
    }
    let mut top = Map::new();
    top.insert("name".into(), json!(secret.name));
    if !secret.namespace.is_empty() {
        top.insert("namespace".into(), json!(secret.namespace));
    }
    if let Some(annotation) = scope.annotation() {
        annotations.insert(annotation.to_string(), "true".to_string());
        top.insert("annotations".into(), json!({ annotation: "true" }));
    }
    let mut template_meta = Map::new();
    template_meta.insert("name".into(), json!(secret.name));
    if !secret.namespace.is_empty() {
        template_meta.insert("namespace".into(), json!(secret.namespace));
    }
    if !secret.labels.is_empty() {
        template_meta.insert("labels".into(), json!(secret.labels));
    }
    if !annotations.is_empty() {
        template_meta.insert("annotations".into(), json!(annotations));
    }
    if !secret.finalizers.is_empty() {
        template_meta.insert("finalizers".into(), json!(secret.finalizers));
    }
    let mut template = Map::new();
    template.insert("metadata".into(), Value::Object(template_meta));
    if let Some(secret_type) = &secret.secret_type {
        template.insert("type".into(), json!(secret_type));
    }
    if let Some(immutable) = secret.immutable {
        template.insert("immutable".into(), json!(immutable));
    }
    json!({
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": top,
        "spec": { "template": template, "encryptedData": encrypted },
    })
}

/// Render documents in `format`: JSON pretty (2 spaces, Go's escaping, newline after each), or YAML
/// documents each starting with `---`.
pub fn render(docs: &[Value], format: DocFormat) -> String {
    docs.iter()
        .map(|doc| match format {
            DocFormat::Json => go_json(doc),
            DocFormat::Yaml => yaml::document(doc),
        })
        .collect()
}

/// JSON as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped (they occur only in strings).
fn go_json(doc: &Value) -> String {
    let text = serde_json::to_string_pretty(doc).unwrap_or_default();
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// An existing SealedSecret file.
#[derive(Debug, Clone)]
pub struct SealedFile {
    /// The file's format.
    pub format: DocFormat,
    /// Its text as read.
    pub text: String,
    /// The parsed document.
    pub doc: Value,
    /// metadata.name.
    pub name: String,
    /// metadata.namespace.
    pub namespace: String,
    /// The scope its annotations select.
    pub scope: Scope,
    /// Where it came from.
    pub source_desc: String,
}

impl SealedFile {
    /// Parse a file holding exactly one SealedSecret.
    pub fn parse(text: &str, source_desc: &str) -> Result<Self, ManifestError> {
        let not_sealed = |problem: String| ManifestError::NotSealedSecret {
            source_desc: source_desc.to_string(),
            problem,
        };
        let mut docs = match parse_documents(text, source_desc) {
            Ok(docs) => docs,
            Err(ManifestError::Empty { .. }) => return Err(not_sealed("it is empty".into())),
            Err(err) => return Err(err),
        };
        if docs.len() != 1 {
            return Err(not_sealed(format!("it holds {} documents", docs.len())));
        }
        Self::from_doc(docs.remove(0), text, source_desc)
    }

    /// Every SealedSecret of a file of one or more documents (a YAML stream, concatenated JSON, or a
    /// `List`), in order; `source_desc` of each names the document when there are several.
    pub fn parse_all(text: &str, source_desc: &str) -> Result<Vec<Self>, ManifestError> {
        let docs = match parse_documents(text, source_desc) {
            Ok(docs) => docs,
            Err(ManifestError::Empty { .. }) => {
                return Err(ManifestError::NoSealedSecret {
                    source_desc: source_desc.to_string(),
                    problem: "it is empty".into(),
                });
            }
            Err(err) => return Err(err),
        };
        let items = unwrap_lists(docs);
        let several = items.len() > 1;
        items
            .into_iter()
            .enumerate()
            .map(|(index, doc)| {
                let desc = if several {
                    format!("{source_desc} (document {})", index + 1)
                } else {
                    source_desc.to_string()
                };
                let text = match DocFormat::detect(text) {
                    DocFormat::Json => go_json(&doc),
                    DocFormat::Yaml => yaml::document(&doc),
                };
                Self::from_doc(doc, &text, &desc).map_err(|err| match err {
                    ManifestError::NotSealedSecret { source_desc, problem } => {
                        ManifestError::NoSealedSecret { source_desc, problem }
                    }
                    other => other,
                })
            })
            .collect()
    }

    fn from_doc(doc: Value, text: &str, source_desc: &str) -> Result<Self, ManifestError> {
        let not_sealed = |problem: String| ManifestError::NotSealedSecret {
            source_desc: source_desc.to_string(),
            problem,
        };
        if doc.get("kind").and_then(Value::as_str) != Some(KIND)
            || doc.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION)
        {
            return Err(not_sealed(format!("it is {}", kind_of(&doc))));
        }
        if !doc.pointer("/spec/encryptedData").is_some_and(Value::is_object) {
            return Err(not_sealed(
                "spec.encryptedData is missing or not a mapping".into(),
            ));
        }
        let meta_str = |field: &str| {
            doc.pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let annotations: BTreeMap<String, String> = doc
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let name = meta_str("name");
        if name.is_empty() {
            return Err(not_sealed("metadata.name is missing".into()));
        }
        Ok(SealedFile {
            format: DocFormat::detect(text),
            text: text.to_string(),
            namespace: meta_str("namespace"),
            scope: Scope::from_annotations(&annotations),
            name,
            doc,
            source_desc: source_desc.to_string(),
        })
    }

    /// The keys of `spec.encryptedData`, in file order.
    pub fn keys(&self) -> Vec<String> {
        self.encrypted_map()
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// One encrypted value.
    pub fn encrypted(&self, key: &str) -> Option<&str> {
        self.encrypted_map()?.get(key)?.as_str()
    }

    fn encrypted_map(&self) -> Option<&Map<String, Value>> {
        self.doc.pointer("/spec/encryptedData")?.as_object()
    }

    /// The OAEP label the controller will use for this file.
    pub fn label(&self) -> Vec<u8> {
        self.scope.label(&self.namespace, &self.name)
    }

    /// Check that `secret` (and the `--scope` flag) fit this file: a different name, namespace, scope or type
    /// is an error. Returns the scope to seal with (the file's).
    pub fn check_input(&self, secret: &SecretInput, flag: Option<Scope>) -> Result<Scope, ManifestError> {
        let mismatch = |what, existing: String, input: String, hint| ManifestError::Mismatch {
            source_desc: self.source_desc.clone(),
            what,
            existing,
            input,
            hint,
        };
        if !secret.name.is_empty() && secret.name != self.name {
            return Err(mismatch(
                "name",
                format!("`{}`", self.name),
                format!("`{}`", secret.name),
                "a renamed strict-scope secret cannot be decrypted; seal into a new file instead",
            ));
        }
        if !secret.namespace.is_empty() && !self.namespace.is_empty() && secret.namespace != self.namespace {
            return Err(mismatch(
                "namespace",
                format!("`{}`", self.namespace),
                format!("`{}`", secret.namespace),
                "values sealed for another namespace cannot be decrypted; seal into a new file instead",
            ));
        }
        let has_annotation = [NAMESPACE_WIDE_ANNOTATION, CLUSTER_WIDE_ANNOTATION]
            .iter()
            .any(|name| secret.annotations.get(*name).is_some_and(|value| value == "true"));
        let input_scope = match flag {
            Some(flag) => Some(flag),
            None if has_annotation => Some(Scope::from_annotations(&secret.annotations)),
            None => None,
        };
        if let Some(input_scope) = input_scope
            && input_scope != self.scope
        {
            return Err(mismatch(
                "scope",
                self.scope.to_string(),
                input_scope.to_string(),
                "values of one SealedSecret must share its scope; drop --scope or seal into a new file",
            ));
        }
        if let (Some(input_type), Some(existing)) = (
            &secret.secret_type,
            self.doc.pointer("/spec/template/type").and_then(Value::as_str),
        ) && input_type != existing
        {
            return Err(mismatch(
                "type",
                existing.to_string(),
                input_type.clone(),
                "drop --type or fix the input",
            ));
        }
        Ok(self.scope)
    }

    /// The file's text with `updates` (key → sealed base64) set in `spec.encryptedData` and `secret`'s
    /// labels, annotations and type merged into the template. Keys not updated keep their bytes; a
    /// block-style YAML file is edited in place, line by line.
    pub fn merged_text(&self, updates: &BTreeMap<String, String>, secret: Option<&SecretInput>) -> String {
        let mut doc = self.doc.clone();
        if let Some(Value::Object(map)) = doc.pointer_mut("/spec/encryptedData") {
            let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b);
            for (key, value) in updates {
                if let Some(existing) = map.get_mut(key) {
                    *existing = json!(value);
                } else {
                    let at = if sorted {
                        map.keys().position(|existing| existing > key)
                    } else {
                        None
                    };
                    map.shift_insert(at.unwrap_or(map.len()), key.clone(), json!(value));
                }
            }
        }
        let template_changed = secret.is_some_and(|secret| merge_template(&mut doc, secret));
        match self.format {
            DocFormat::Json => go_json(&doc),
            DocFormat::Yaml => {
                let edited = (!template_changed)
                    .then(|| yaml::set_encrypted_data(&self.text, updates))
                    .flatten();
                match edited {
                    Some(text) if reads_back_as(&text, &doc) => text,
                    _ => yaml::document(&doc),
                }
            }
        }
    }
}

fn reads_back_as(text: &str, expected: &Value) -> bool {
    serde_saphyr::from_str::<Value>(text).is_ok_and(|doc| &doc == expected)
}

/// Merge the input's labels, annotations and type into the template; true when anything changed.
fn merge_template(doc: &mut Value, secret: &SecretInput) -> bool {
    let Some(template) = doc.pointer_mut("/spec/template").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    if let Some(secret_type) = &secret.secret_type
        && !template.contains_key("type")
    {
        template.insert("type".into(), json!(secret_type));
        changed = true;
    }
    let meta = template.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return changed;
    };
    for (section, entries) in [("labels", &secret.labels), ("annotations", &secret.annotations)] {
        for (key, value) in entries {
            let skip = DROPPED_ANNOTATIONS.contains(&key.as_str())
                || key == NAMESPACE_WIDE_ANNOTATION
                || key == CLUSTER_WIDE_ANNOTATION;
            if section == "annotations" && skip {
                continue;
            }
            let map = meta.entry(section).or_insert_with(|| json!({}));
            if let Some(map) = map.as_object_mut()
                && map.get(key).and_then(Value::as_str) != Some(value.as_str())
            {
                map.insert(key.clone(), json!(value));
                changed = true;
            }
        }
    }
    changed
}

/// The documents with every `kind: List` replaced by its items (as `kubectl get -o yaml` writes several
/// objects).
pub(crate) fn unwrap_lists(docs: Vec<Value>) -> Vec<Value> {
    let mut items = Vec::new();
    for doc in docs {
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            items.extend(
                doc.get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        } else {
            items.push(doc);
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::open_base64;
    use crate::testkeys;

    fn sealer() -> (Sealer, rsa::PrivateKey) {
        let private = testkeys::rsa_2048().private_key();
        (Sealer::new(rsa::PublicKey::from(&private)), private)
    }

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: staging\n  labels: {app: db}\n  \
        annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{\"leak\": 1}'\n    note: x\ntype: Opaque\n\
        data:\n  user: YXBw\n  both: b2xk\nstringData:\n  both: new\n  empty: ''\n";

    #[test]
    fn parses_data_and_string_data_with_string_data_winning() {
        let secrets = parse_secrets(SECRET, "stdin").unwrap();
        assert_eq!(secrets.len(), 1);
        let secret = &secrets[0];
        assert_eq!(
            (secret.name.as_str(), secret.namespace.as_str()),
            ("db", "staging")
        );
        assert_eq!(secret.items["user"], b"app");
        assert_eq!(secret.items["both"], b"new");
        assert_eq!(secret.items["empty"], b"");
    }

    #[test]
    fn seals_in_kubeseal_shape() {
        let (sealer, private) = sealer();
        let secret = &parse_secrets(SECRET, "stdin").unwrap()[0];
        let doc = seal_secret(secret, Scope::NamespaceWide, &sealer).unwrap();
        let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata", "spec"]);
        assert_eq!(
            doc["metadata"]["annotations"],
            json!({NAMESPACE_WIDE_ANNOTATION: "true"})
        );
        let template = &doc["spec"]["template"]["metadata"];
        assert_eq!(template["labels"], json!({"app": "db"}));
        assert_eq!(
            template["annotations"],
            json!({"note": "x", NAMESPACE_WIDE_ANNOTATION: "true"})
        );
        assert_eq!(doc["spec"]["template"]["type"], "Opaque");
        let value = doc["spec"]["encryptedData"]["user"].as_str().unwrap();
        assert_eq!(open_base64(&private, b"staging", value).unwrap(), b"app");
        let json = render(std::slice::from_ref(&doc), DocFormat::Json);
        assert!(
            json.starts_with(
                "{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n"
            ),
            "{json}"
        );
        assert!(json.ends_with("}\n"));
        let yaml = render(std::slice::from_ref(&doc), DocFormat::Yaml);
        assert!(
            yaml.starts_with("---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n"),
            "{yaml}"
        );
        assert!(!yaml.contains("leak") && !json.contains("leak"));
    }

    #[test]
    fn many_values_are_sealed_in_parallel_and_all_open() {
        let (sealer, private) = sealer();
        let items: BTreeMap<String, Vec<u8>> = (0..40)
            .map(|i| (format!("k{i:02}"), format!("v{i}").into_bytes()))
            .collect();
        let sealed = seal_items(&sealer, b"ns/name", &items).unwrap();
        assert_eq!(sealed.len(), 40);
        for (key, value) in &items {
            assert_eq!(&open_base64(&private, b"ns/name", &sealed[key]).unwrap(), value);
        }
    }

    #[test]
    fn bad_inputs_name_document_and_field() {
        let cases = [
            ("", "the input is empty"),
            (
                "kind: ConfigMap\napiVersion: v1\n",
                "document 1 of in.yml is a ConfigMap (v1), not a Secret",
            ),
            (
                "kind: Secret\ndata:\n  'a b': eA==\n",
                "field `data.a b`: key `a b` is not allowed",
            ),
            (
                "kind: Secret\ndata:\n  a: '%%%'\n",
                "field `data.a`: is not valid base64",
            ),
            (
                "kind: Secret\nstringData:\n  port: 5432\n",
                "field `stringData.port`: is a number, expected a string",
            ),
            ("kind: Secret\nstringData: [1]\n", "field `stringData`: is a list"),
            (
                "kind: Secret\nstringData:\n  a: [unclosed\n",
                "in.yml is not valid YAML",
            ),
            ("{\"kind\": \"Secret\",", "in.yml is not valid JSON"),
            (
                "kind: Secret\nstringData:\n  a: x\n  a: y\n",
                "key `a` is given twice in one mapping at line 4",
            ),
            (
                "{\"kind\": \"Secret\", \"stringData\": {\"a\": \"x\", \"a\": \"y\"}}",
                "key `a` is given twice in one object",
            ),
            (
                "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n\
                 d: &d [*c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e]\n\
                 g: [*f, *f, *f, *f, *f, *f, *f, *f]\n",
                "YAML bomb",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_secrets(text, "in.yml").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn yaml_errors_do_not_echo_the_input() {
        let err = parse_secrets("kind: Secret\nstringData:\n  a: hunter2\n   b: [x\n", "in.yml").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn multi_document_yaml_json_stream_and_lists() {
        let two = "kind: Secret\nmetadata: {name: a}\n---\n---\nkind: Secret\nmetadata: {name: b}\n";
        assert_eq!(parse_secrets(two, "x").unwrap().len(), 2);
        let stream = "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"a\"}}\n{\"kind\":\"Secret\",\"metadata\":{\"name\":\"b\"}}";
        assert_eq!(parse_secrets(stream, "x").unwrap().len(), 2);
        let list = "kind: List\nitems:\n- kind: Secret\n  metadata: {name: a}\n";
        assert_eq!(parse_secrets(list, "x").unwrap()[0].name, "a");
    }

    #[test]
    fn explicit_scope_contradicting_annotations_is_an_error() {
        let mut secret = parse_secrets(SECRET, "x").unwrap().remove(0);
        assert_eq!(resolve_scope(&secret, None, "x").unwrap(), Scope::Strict);
        assert_eq!(
            resolve_scope(&secret, Some(Scope::ClusterWide), "x").unwrap(),
            Scope::ClusterWide
        );
        secret
            .annotations
            .insert(CLUSTER_WIDE_ANNOTATION.into(), "true".into());
        assert_eq!(resolve_scope(&secret, None, "x").unwrap(), Scope::ClusterWide);
        let err = resolve_scope(&secret, Some(Scope::Strict), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scope mismatch"), "{err}");
    }

    fn sealed_file(format: DocFormat) -> (SealedFile, Sealer) {
        let (sealer, _) = sealer();
        let secret = &parse_secrets(SECRET, "x").unwrap()[0];
        let doc = seal_secret(secret, Scope::Strict, &sealer).unwrap();
        let text = render(&[doc], format);
        (SealedFile::parse(&text, "db.yml").unwrap(), sealer)
    }

    #[test]
    fn merge_keeps_other_lines_byte_identical() {
        for format in [DocFormat::Yaml, DocFormat::Json] {
            let (file, _) = sealed_file(format);
            let updates = BTreeMap::from([
                ("user".to_string(), "NEW".to_string()),
                ("added".to_string(), "ADD".to_string()),
            ]);
            let merged = file.merged_text(&updates, None);
            let old: Vec<&str> = file.text.lines().collect();
            let new: Vec<&str> = merged.lines().collect();
            let changed: Vec<&&str> = new.iter().filter(|line| !old.contains(line)).collect();
            assert_eq!(changed.len(), 2, "{format:?}: {merged}");
            let reparsed = SealedFile::parse(&merged, "db.yml").unwrap();
            assert_eq!(reparsed.keys(), ["added", "both", "empty", "user"]);
            for key in ["both", "empty"] {
                assert_eq!(reparsed.encrypted(key), file.encrypted(key));
            }
            assert_eq!(reparsed.format, format);
        }
    }

    #[test]
    fn merge_target_must_be_a_matching_sealed_secret() {
        let err = SealedFile::parse(SECRET, "s.yml").unwrap_err().to_string();
        assert!(
            err.contains("s.yml is not a SealedSecret (it is a Secret (v1))"),
            "{err}"
        );
        let (file, _) = sealed_file(DocFormat::Yaml);
        let mut other = SecretInput {
            name: "db2".into(),
            ..SecretInput::default()
        };
        assert!(
            file.check_input(&other, None)
                .unwrap_err()
                .to_string()
                .contains("name mismatch")
        );
        other.name = "db".into();
        other.namespace = "prod".into();
        assert!(
            file.check_input(&other, None)
                .unwrap_err()
                .to_string()
                .contains("namespace mismatch")
        );
        other.namespace = String::new();
        assert!(
            file.check_input(&other, Some(Scope::ClusterWide))
                .unwrap_err()
                .to_string()
                .contains("scope mismatch")
        );
        assert_eq!(file.check_input(&other, None).unwrap(), Scope::Strict);
    }

    #[test]
    fn names_yaml_cannot_hold_raw_are_written_escaped() {
        // Found by the sealed_secret fuzz target (existing file \0 Secret input \0 updates): the Secret named
        // "\u{7f}additionalProperties: ther" was written as YAML with a raw DEL, which YAML parsers reject.
        let fuzz = "{\n  \"kind\": \"SealedSecret\",\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n  \"metad,\n  \
                    \"\": \"AgA1\\u003c2\"\n    }\n  }\n}\n\0\
                    {\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metmadata\":{\"name\":\"queue\"},\"type\":\"Opaque\",\
                    \"stringData\":{\"password\":\"p\\u2028w<d>&\"}}\n\
                    {\"kind\":\"Secret\",\"metadata\":{\"name\":\"\u{7f}additionalProperties: ther\"}}\0password=AgB2\n";
        let input = fuzz.split('\0').nth(1).unwrap();
        for secret in parse_secrets(input, "input").unwrap() {
            let scope = resolve_scope(&secret, None, "input").unwrap();
            let doc = sealed_document(&secret, scope, &BTreeMap::new());
            let yaml = render(std::slice::from_ref(&doc), DocFormat::Yaml);
            let back: Value = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
            assert_eq!(back, doc);
            if !secret.name.is_empty() {
                assert_eq!(SealedFile::parse(&yaml, "written").unwrap().name, secret.name);
            }
        }
    }
}

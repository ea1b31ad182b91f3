//! Fuzz CRD-schema conversion and custom-resource validation of `helm duli-render`:
//! `CrdStore::load` (the `--crds` file loader: description stripping, YAML without a budget, every
//! `CustomResourceDefinition` document), `CrdStore::validate` (trim → `schema::rewrite` → compile →
//! prune nulls → validate → describe with "did you mean" hints), and the `schema` functions directly.
//!
//! Input: one YAML stream, as a `--crds` file or a chart's output holds it: CRD documents and objects.
//! Objects without `kind` get the first CRD's group/version/kind, so mutations of the object reach the
//! validator. A first document that is not a CRD but looks like a schema (`type` or `properties`) is
//! wrapped into a CRD of kind `Fuzz`.
//!
//! Invariant (the promise of `schema::trim`): validating against the schema trimmed to the object's
//! shape gives the same verdict, at the same paths, as validating against the whole schema.
#![no_main]

use std::sync::OnceLock;

use helm_duli_render::crds::CrdStore;
use helm_duli_render::schema;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch directory"))
}

/// apiVersion, kind and version schema of the first CRD version.
fn first_version(crd: &Value) -> Option<(String, String, Value)> {
    let spec = crd.get("spec")?;
    let group = spec.pointer("/group")?.as_str()?;
    let kind = spec.pointer("/names/kind")?.as_str()?;
    let shared = spec.pointer("/validation/openAPIV3Schema");
    let (version, openapi) = match spec.get("versions").and_then(Value::as_array) {
        Some(versions) => {
            let first = versions
                .iter()
                .find(|v| v.get("name").and_then(Value::as_str).is_some())?;
            (
                first["name"].as_str()?.to_string(),
                first.pointer("/schema/openAPIV3Schema").or(shared),
            )
        }
        None => (spec.get("version")?.as_str()?.to_string(), shared),
    };
    let openapi = openapi.cloned()?;
    let api_version = if group.is_empty() {
        version
    } else {
        format!("{group}/{version}")
    };
    Some((api_version, kind.to_string(), openapi))
}

fn verdict(validator: &jsonschema::Validator, instance: &Value) -> (bool, Vec<String>) {
    let mut paths: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| error.instance_path().to_string())
        .collect();
    paths.sort();
    (validator.is_valid(instance), paths)
}

/// The `--crds` loader reads the stream from a file.
fn load(text: &str) -> Option<CrdStore> {
    let path = scratch().path().join("crds.yaml");
    std::fs::write(&path, text).expect("write scratch file");
    match CrdStore::load(std::slice::from_ref(&path), 1) {
        Ok(store) => Some(store),
        Err(err) => {
            let _ = err.to_string();
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The loader first, on the text as it is: it parses without size limits (CRDs are large) but with an
    // alias limit, so YAML bombs and deep nesting must be stopped there.
    let raw = load(text);
    // The harness's own parse, to reach the validator: aliases bounded like the loader's, since the
    // parser's default budget lets a bomb expand for over 10 s under AddressSanitizer (0.3 s in a release
    // build), which libFuzzer would report as a hang of ours.
    let options = serde_saphyr::options! {
        alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: 10_000 },
    };
    let Ok(mut docs) = serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(text, options)
    else {
        return;
    };
    docs.retain(|doc| !doc.is_null());
    if docs.is_empty() || docs.len() > 16 {
        return;
    }
    // A bare schema as first document: wrap it into a CRD.
    let wrapped = docs[0].get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition")
        && (docs[0].get("type").is_some() || docs[0].get("properties").is_some());
    let store = if wrapped {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "fuzzes.fuzz.duli.one"},
            "spec": {
                "group": "fuzz.duli.one",
                "names": {"kind": "Fuzz", "plural": "fuzzes"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": docs[0].clone()}}],
            },
        });
        docs[0] = crd;
        let file_text: String = docs
            .iter()
            .map(|doc| serde_json::to_string(doc).expect("JSON") + "\n---\n")
            .collect();
        load(&file_text)
    } else {
        raw
    };
    let Some(store) = store else {
        return;
    };
    // The CRDs a chart renders are added document by document.
    let mut rendered = CrdStore::default();
    for doc in &docs {
        rendered.add(doc, "fuzz");
    }
    assert_eq!(
        rendered.len(),
        store.len(),
        "the file loader and add() disagree on the CRDs"
    );

    let first = docs
        .iter()
        .find(|doc| doc.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .and_then(first_version);
    for doc in &docs {
        if doc.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
            continue;
        }
        let mut object = doc.clone();
        if let (Some(map), Some((api_version, kind, _))) = (object.as_object_mut(), &first)
            && !map.contains_key("kind")
        {
            map.insert("apiVersion".into(), json!(api_version));
            map.insert("kind".into(), json!(kind));
        }
        if let Some(violations) = store.validate(&object) {
            for violation in violations {
                assert!(!violation.path.is_empty());
                assert!(!violation.message.is_empty());
            }
        }

        // Trimming must not change the verdict.
        let Some((api_version, kind, openapi)) = &first else {
            continue;
        };
        if object.get("apiVersion").and_then(Value::as_str) != Some(api_version)
            || object.get("kind").and_then(Value::as_str) != Some(kind)
            || openapi.to_string().contains("\"$ref\"")
        {
            continue;
        }
        let (Ok(full), Ok(trimmed)) = (
            schema::compile(&schema::rewrite(openapi)),
            schema::compile(&schema::rewrite(&schema::trim(openapi, &object))),
        ) else {
            continue;
        };
        let mut instance = object.clone();
        schema::prune_nulls(&mut instance, openapi);
        assert_eq!(
            verdict(&full, &instance),
            verdict(&trimmed, &instance),
            "trimming the schema changed the validation result"
        );
    }
});

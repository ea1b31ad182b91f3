//! Fuzz SealedSecret and Secret parsing of `kubectl duli secrets`: `manifest::parse_secrets` (the Secret
//! manifests `seal` reads: YAML streams, JSON streams, `List`s, `data` base64, `stringData`),
//! `SealedFile::parse` / `check_input` / `merged_text` (`seal --merge-into`, with the in-place YAML edit
//! `yaml::set_encrypted_data`), and the YAML writer (`yaml::document`, `yaml::scalar`).
//!
//! Input: NUL-separated parts: `existing SealedSecret file \0 Secret manifest \0 updates`, the updates one
//! `KEY=SEALED` per line (only valid Secret keys and base64 values are used, as `seal` produces them).
//!
//! Invariants:
//! - a SealedSecret duli writes (YAML and JSON) reads back as the same document and as a SealedFile
//!   with the same name, namespace and scope;
//! - `merged_text` gives a SealedSecret of the same format holding every update, with the other keys
//!   unchanged, as `seal --merge-into` promises.
#![no_main]

use std::collections::BTreeMap;

use kubectl_duli_secrets::format::{Scope, is_valid_key};
use kubectl_duli_secrets::manifest::{self, DocFormat, SealedFile, SecretInput};
use kubectl_duli_secrets::yaml;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn is_base64_text(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The sealed values `seal` would produce for `secret` (stand-ins: sealing itself is RSA, not parsing).
fn stand_in_encrypted(secret: &SecretInput) -> BTreeMap<String, String> {
    secret
        .items
        .iter()
        .map(|(key, value)| (key.clone(), format!("AgB{}", value.len())))
        .collect()
}

fn check_written(doc: &Value, secret: &SecretInput, scope: Scope) {
    for format in [DocFormat::Yaml, DocFormat::Json] {
        let text = manifest::render(std::slice::from_ref(doc), format);
        let back: Value = match format {
            DocFormat::Yaml => serde_saphyr::from_str(&text).expect("duli's YAML parses"),
            DocFormat::Json => serde_json::from_str(&text).expect("duli's JSON parses"),
        };
        assert_eq!(
            &back, doc,
            "the written {format:?} does not read back as the document:\n{text}"
        );
        if secret.name.is_empty() {
            continue;
        }
        let file = SealedFile::parse(&text, "written").expect("duli's SealedSecret parses as one");
        assert_eq!(
            (file.name.as_str(), file.namespace.as_str()),
            (secret.name.as_str(), secret.namespace.as_str())
        );
        assert_eq!(file.scope, scope);
        assert_eq!(file.format, format);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let existing = parts.next().unwrap_or_default();
    let input = parts.next().unwrap_or_default();
    let updates: BTreeMap<String, String> = parts
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(key, value)| is_valid_key(key) && is_base64_text(value))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();

    // The Secret manifests `seal` reads, and the SealedSecrets it writes for them.
    let secrets = match manifest::parse_secrets(input, "input") {
        Ok(secrets) => secrets,
        Err(err) => {
            let _ = err.to_string();
            Vec::new()
        }
    };
    for secret in &secrets {
        for key in secret.items.keys() {
            assert!(
                manifest::check_key(key).is_ok(),
                "parse_secrets let an invalid key through: {key:?}"
            );
        }
        if let Ok(scope) = manifest::resolve_scope(secret, None, "input") {
            let doc = manifest::sealed_document(secret, scope, &stand_in_encrypted(secret));
            check_written(&doc, secret, scope);
        }
    }

    // --merge-into an existing file.
    let file = match SealedFile::parse(existing, "existing") {
        Ok(file) => file,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let keys = file.keys();
    let _ = file.label();
    let secret = secrets.first();
    if let Some(secret) = secret {
        let _ = file.check_input(secret, None);
        let _ = file.check_input(secret, Some(Scope::ClusterWide));
    }
    let merged = file.merged_text(&updates, secret);
    let reparsed = SealedFile::parse(&merged, "merged").unwrap_or_else(|err| {
        panic!("merged_text wrote a file that is not a SealedSecret ({err}):\n{merged}")
    });
    assert_eq!(reparsed.format, file.format);
    assert_eq!(
        (reparsed.name.as_str(), reparsed.namespace.as_str()),
        (file.name.as_str(), file.namespace.as_str())
    );
    for (key, value) in &updates {
        assert_eq!(
            reparsed.encrypted(key),
            Some(value.as_str()),
            "update of `{key}` lost:\n{merged}"
        );
    }
    for key in keys.iter().filter(|key| !updates.contains_key(*key)) {
        assert_eq!(
            reparsed.encrypted(key),
            file.encrypted(key),
            "untouched key `{key}` changed:\n{merged}"
        );
    }
    // The YAML writer on its own: any string is written as a scalar that reads back as itself.
    for key in &keys {
        let line = format!("k: {}\n", yaml::scalar(key));
        let back: BTreeMap<String, String> = serde_saphyr::from_str(&line).expect("a written scalar parses");
        assert_eq!(
            back.get("k"),
            Some(key),
            "yaml::scalar({key:?}) does not read back"
        );
    }
});

//! Fuzz the protobuf request-body decoder (`kube_standin::protobuf::Schemas::decode_body`) with the real
//! Kubernetes schemas (`shared/reference/k8s-protos` beside the repository).
//!
//! Input: a whole request body (magic `k8s\0` + `runtime.Unknown`), seeded with bodies captured from
//! kubectl and helm (`kube-standin/tests/fixtures/protobuf/`).
//!
//! Invariants: no panic; every body is either an object with `apiVersion` and `kind` (those of the
//! envelope) or a 400/415 `Status`, never another error.
#![no_main]

use std::sync::OnceLock;

use kube_standin::protobuf::Schemas;
use libfuzzer_sys::fuzz_target;

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = kube_standin::shared_protos_dir();
        Schemas::compile(&dir).unwrap_or_else(|e| panic!("k8s protos at {}: {e}", dir.display()))
    })
}

fuzz_target!(|body: &[u8]| {
    match schemas().decode_body(body) {
        Ok(object) => {
            assert!(object["apiVersion"].is_string() && object["kind"].is_string(), "{object}");
            let status = serde_json::to_string(&object).expect("decoded JSON serializes");
            assert!(!status.is_empty());
        }
        Err(e) => assert!(matches!(e.code, 400 | 415), "unexpected {} for a protobuf body: {e}", e.code),
    }
});

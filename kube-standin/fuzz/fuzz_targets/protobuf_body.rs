//! Fuzz the protobuf request-body decoder (`kube_standin::protobuf::Schemas::decode_body`) with the real
//! Kubernetes schemas (`shared/reference/k8s-protos` beside the repository).
//!
//! Input: a whole request body (magic `k8s\0` + `runtime.Unknown`), seeded with bodies captured from
//! kubectl and helm (`kube-standin/tests/fixtures/protobuf/`).
//!
//! Invariants: no panic; every body is either an object with `apiVersion` and `kind` (those of the
//! envelope) or a 400/415 `Status`, never another error; a decoded object the encoder (protobuf answers)
//! accepts encodes into a body that decodes again, as the same kind.
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
            assert!(
                object["apiVersion"].is_string() && object["kind"].is_string(),
                "{object}"
            );
            serde_json::to_string(&object).expect("decoded JSON serializes");
            if let Ok(answer) = schemas().encode_object(&object) {
                let again = schemas()
                    .decode_body(&answer)
                    .unwrap_or_else(|e| panic!("an encoded answer does not decode: {e}\n{object}"));
                assert_eq!(again["kind"], object["kind"]);
            }
        }
        Err(e) => assert!(
            matches!(e.code, 400 | 415),
            "unexpected {} for a protobuf body: {e}",
            e.code
        ),
    }
});

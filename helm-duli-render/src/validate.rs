//! Validation of rendered objects: custom resources against their CRD ([`super::crds`]), built-in objects
//! against their k8s-openapi type ([`super::core`]); groups of objects are spread over threads.

use std::sync::Arc;

use super::core;
use super::crds::CrdStore;
use super::findings::Finding;
use super::manifests::Object;
use super::policy::{self, Located};

/// Validate groups of objects on up to `threads` threads; returns `(group index, findings)`.
pub(super) fn validate_groups(
    stores: &[Arc<CrdStore>],
    pending: &[(usize, Arc<Vec<Object>>)],
    names: &[String],
    threads: usize,
) -> Vec<(usize, Vec<Finding>)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(pending.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((index, objects)) = pending.get(i) else {
                        break;
                    };
                    let found: Vec<Finding> = objects
                        .iter()
                        .flat_map(|object| {
                            validate_object(
                                stores,
                                Located {
                                    chart: &names[i],
                                    object,
                                },
                            )
                        })
                        .collect();
                    results.lock().expect("results lock").push((*index, found));
                }
            });
        }
    });
    results.into_inner().expect("results lock")
}

/// Validate one object: custom resources against their CRD, built-in objects against their type.
pub fn validate_object(stores: &[Arc<CrdStore>], at: Located<'_>) -> Vec<Finding> {
    let (api_version, kind) = (at.object.api_version(), at.object.kind());
    if api_version.is_empty() || kind.is_empty() {
        return vec![policy::finding(
            "core-type",
            at,
            "the object has no apiVersion or kind".into(),
            "every rendered document must be a Kubernetes object with apiVersion and kind",
        )];
    }
    if let Some(violations) = stores.iter().find_map(|store| store.validate(&at.object.value)) {
        return violations
            .into_iter()
            .map(|v| policy::finding("schema", at, v.message, v.fix))
            .collect();
    }
    if let Some(violations) = core::validate(&at.object.value) {
        return violations
            .into_iter()
            .map(|v| policy::finding("core-type", at, v.message, v.fix))
            .collect();
    }
    if core::is_builtin_group(api_version) {
        return vec![policy::finding(
            "api-unknown",
            at,
            format!("{api_version} {kind} is not an API of Kubernetes 1.33"),
            "use the current apiVersion for this kind (kubectl api-resources lists them)",
        )];
    }
    vec![policy::finding(
        "crd-missing",
        at,
        format!("no CRD known for {api_version} {kind}, so it cannot be validated"),
        "pass the CRD with --crds DIR (or DULI_CRDS), or use --crds-from-cluster",
    )]
}

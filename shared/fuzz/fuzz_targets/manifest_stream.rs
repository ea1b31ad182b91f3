//! Fuzz the rendered-manifest path of `helm duli-render`: `helm_duli_render::manifests::split` (helm's
//! multi-document output, `# Source:` comments, duplicate keys, non-mapping documents), then what the
//! pipeline does with every object: built-in validation (`validate_object` without CRDs, which runs the
//! k8s-openapi round trip), the policy rules (for the production environment, so every rule runs), and
//! the output tree and stream.
//!
//! Invariant: the stream duli prints splits back into the same objects (source and value), so
//! `helm duli-render ENV | kubectl apply -f -` applies exactly what was validated.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use helm_duli_render::manifests::{self, Object};
use helm_duli_render::policy::{self, Located};
use helm_duli_render::{output, validate_object};
use libfuzzer_sys::fuzz_target;
use shared::environment::Environment;

fn prod() -> &'static Environment {
    static ENV: OnceLock<Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        let text = include_str!("../../../gitops/environments/prod.yml");
        Environment::from_yaml(text, Path::new("prod.yml")).expect("gitops/environments/prod.yml loads")
    })
}

fn summary(objects: &[Object]) -> Vec<(&str, &serde_json::Value)> {
    objects.iter().map(|o| (o.source.as_str(), &o.value)).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let objects = match manifests::split(text, "fuzz") {
        Ok(objects) => objects,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    for object in &objects {
        assert!(object.value.is_object(), "split returned a non-mapping document");
        let _ = (object.id(), object.labels());
        let mut value = object.value.clone();
        manifests::strip_nulls(&mut value);
    }

    // Output: the tree for --out and the stream for stdout.
    let groups = vec![("fuzz".to_string(), objects)];
    let mut tree = output::Tree::new();
    output::add_objects(&mut tree, "fuzz", &groups[0].1);
    let stream = output::stream(&groups);
    let again = manifests::split(&stream, "fuzz").expect("duli's own output stream parses");
    assert_eq!(
        summary(&again),
        summary(&groups[0].1),
        "the printed stream does not split back into the validated objects"
    );

    // Validation and policy, as the pipeline runs them.
    let located: Vec<Located<'_>> = groups[0]
        .1
        .iter()
        .map(|object| Located {
            chart: "fuzz",
            object,
        })
        .collect();
    for &at in &located {
        for finding in validate_object(&[], at) {
            let _ = finding.to_string();
        }
    }
    for finding in policy::check(prod(), &["staging".to_string()], &located) {
        let _ = finding.to_string();
    }
});

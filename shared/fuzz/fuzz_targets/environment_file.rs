//! Fuzz the environment-file loader (`Environment::from_yaml`): any text must give an environment or an
//! error, never a panic.
//!
//! Input: the file's text. It is loaded twice: under a path without a file name (the name/file-stem
//! check is skipped, so mutations reach the field validation) and under `staging.yml`, as `load` does.
#![no_main]

use std::path::Path;

use shared::environment::Environment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for path in [Path::new(""), Path::new("gitops/environments/staging.yml")] {
        if let Ok(env) = Environment::from_yaml(text, path) {
            // What the plugins read right after loading.
            let _ = env.is_production();
            let _ = env.tier.as_label();
            assert!(shared::environment::is_dns_label(&env.namespace));
        }
    }
});

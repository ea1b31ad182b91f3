//! Fuzz the values layering of `helm duli-render` (`helm_duli_render::values::layers`): the chart's
//! `values.yaml`, then `values-<env>.yml`, then `--values FILE`s, then `--set` items. duli checks every
//! layer (YAML, duplicate keys, a mapping, `KEY=VALUE`) before helm merges them; any input must give
//! layers or a `ValuesError`, never a panic.
//!
//! Input: NUL-separated parts (NUL never occurs in a valid YAML file):
//! `values.yaml \0 values-fuzz.yml \0 --values file \0 … \0 --set items, one per line`.
//! An empty first or second part means the chart has no such file; with fewer than three parts there
//! are no `--values` files and no `--set` items.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use helm_duli_render::charts::Chart;
use helm_duli_render::values;
use libfuzzer_sys::fuzz_target;

/// One scratch chart directory per process, rewritten for every input.
fn scratch() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch directory"))
}

fn put(path: &PathBuf, text: Option<&str>) {
    match text {
        Some(text) => std::fs::write(path, text).expect("write scratch file"),
        None => {
            let _ = std::fs::remove_file(path);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<&str> = text.split('\0').collect();
    let present = |i: usize| parts.get(i).copied().filter(|p| !p.is_empty());
    let (extra, set): (&[&str], Vec<String>) = if parts.len() >= 3 {
        let last = parts[parts.len() - 1];
        (
            &parts[2..parts.len() - 1],
            last.lines().map(str::to_string).collect(),
        )
    } else {
        (&[], Vec::new())
    };
    if extra.len() > 4 {
        return;
    }

    let root = scratch().path();
    let chart_dir = root.join("chart");
    std::fs::create_dir_all(&chart_dir).expect("scratch chart dir");
    put(&chart_dir.join("values.yaml"), present(0));
    put(&chart_dir.join("values-fuzz.yml"), present(1));
    let mut extra_files = Vec::new();
    for (i, part) in extra.iter().enumerate() {
        let path = root.join(format!("extra-{i}.yaml"));
        put(&path, Some(part));
        extra_files.push(path);
    }

    let chart = Chart {
        name: "fuzz".into(),
        dir: chart_dir.clone(),
        chart_name: "fuzz".into(),
        version: "0.1.0".into(),
        missing_dependencies: Vec::new(),
    };
    let checked_set = values::check_set(&set);
    match values::layers(&chart, "fuzz", &extra_files, &set) {
        Ok(layers) => {
            // The layers are what helm gets, in helm's order: the env file first, then --values, then --set.
            assert!(
                checked_set.is_ok(),
                "layers accepted a --set item check_set rejects"
            );
            let env_file = usize::from(present(1).is_some());
            assert_eq!(layers.files.len(), env_file + extra_files.len());
            assert_eq!(&layers.files[env_file..], &extra_files[..]);
            assert_eq!(layers.set, set);
            for item in &layers.set {
                let (key, _) = item.split_once('=').expect("a checked --set item has `=`");
                assert!(!key.is_empty());
            }
        }
        Err(err) => {
            // Every message names what to fix; rendering it must not panic either.
            let _ = err.to_string();
        }
    }
});

//! `.ci/release` from the binary under test: the archive and its checksum, a krew manifest that matches
//! both, the archive installed the way krew installs it and run through real kubectl, and the helm plugin
//! archive installed with real helm 3.17 and 4.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use testkit::paths::workspace;
use testkit::process::run;
use testkit::tools::{helm3, helm4, kubectls};

use crate::{binary, path_with};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `.ci/release --binary <the test binary> --out DIR`: the three artefact paths it prints.
fn release(out: &Path) -> Vec<PathBuf> {
    let (code, stdout, stderr) = run(Command::new("bash")
        .arg(workspace().join(".ci/release"))
        .arg("--binary")
        .arg(binary())
        .arg("--out")
        .arg(out)
        .env("DULI_RELEASE_URL", "https://example.invalid/releases"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    stdout.lines().map(PathBuf::from).collect()
}

fn sha256_hex(path: &Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let (code, _, stderr) = run(Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(into));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_krew_archive_and_manifest_install_and_run_through_kubectl() {
    let out = tempfile::tempdir().unwrap();
    let artefacts = release(out.path());
    let [archive, _, manifest] = artefacts.as_slice() else {
        panic!("three artefacts expected: {artefacts:?}");
    };
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("duli-v{VERSION}-linux-")), "{name}");

    // The checksum file and the manifest agree with the archive.
    let sha = sha256_hex(archive);
    let recorded = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
    assert_eq!(recorded, format!("{sha}  {name}\n"));
    assert_eq!(
        manifest.file_name().unwrap(),
        "duli.yaml",
        "krew: file name = plugin name"
    );
    let doc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    assert_eq!(doc["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(doc["kind"], "Plugin");
    assert_eq!(doc["metadata"]["name"], "duli");
    assert_eq!(doc["spec"]["version"], format!("v{VERSION}"));
    let platform = &doc["spec"]["platforms"][0];
    assert_eq!(platform["sha256"], sha.as_str());
    assert_eq!(
        platform["uri"],
        format!("https://example.invalid/releases/v{VERSION}/{name}")
    );
    assert_eq!(platform["selector"]["matchLabels"]["os"], "linux");
    assert_eq!(platform["bin"], "kubectl-duli");

    // Installed as krew does: the archive unpacked into its store, the files the manifest names copied,
    // `bin` linked onto PATH as kubectl-<plugin name>.
    let store = out.path().join("store");
    untar(archive, &store);
    assert!(store.join("LICENSE").is_file() && store.join("README.md").is_file());
    let on_path = out.path().join("bin");
    std::fs::create_dir_all(&on_path).unwrap();
    std::os::unix::fs::symlink(
        store.join(platform["bin"].as_str().unwrap()),
        on_path.join("kubectl-duli"),
    )
    .unwrap();
    for (version, kubectl) in kubectls() {
        for slice in ["env", "db", "secrets"] {
            let (code, stdout, stderr) = run(Command::new(&kubectl)
                .args(["duli", slice, "--version"])
                .env("PATH", path_with(&on_path)));
            assert_eq!(code, 0, "kubectl {version} duli {slice}: {stderr}");
            assert_eq!(stdout, format!("kubectl-duli-{slice} {VERSION}\n"));
        }
    }

    // A second release of the same binary is byte-identical (reproducible archives).
    let again = tempfile::tempdir().unwrap();
    let second = release(again.path());
    assert_eq!(sha256_hex(&second[0]), sha, "the archive is not reproducible");
}

#[test]
fn the_helm_plugin_archive_installs_on_helm_3_and_4() {
    let out = tempfile::tempdir().unwrap();
    let artefacts = release(out.path());
    let plugin_archive = &artefacts[1];
    assert_eq!(
        plugin_archive.file_name().unwrap().to_string_lossy(),
        format!("duli-render-{VERSION}.tgz")
    );
    for (name, helm) in [("helm 4", helm4()), ("helm 3.17", helm3())] {
        let home = tempfile::tempdir().unwrap();
        untar(plugin_archive, &home.path().join("src"));
        let helm_cmd = || {
            let mut cmd = Command::new(&helm);
            for (var, dir) in [
                ("HELM_PLUGINS", "data/plugins"),
                ("HELM_DATA_HOME", "data"),
                ("HELM_CONFIG_HOME", "config"),
                ("HELM_CACHE_HOME", "cache"),
            ] {
                cmd.env(var, home.path().join(dir));
            }
            // Nothing on PATH to link and no repository to build from: the archive's own binary is used.
            cmd.env("PATH", "/usr/bin:/bin");
            cmd
        };
        let (code, stdout, stderr) = run(helm_cmd()
            .args(["plugin", "install"])
            .arg(home.path().join("src/duli-render")));
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("duli-render {VERSION}: using ")),
            "{name}: {stdout}"
        );
        let (code, stdout, stderr) = run(helm_cmd().args(["duli-render", "--version"]));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(stdout, format!("helm-duli-render {VERSION}\n"), "{name}");
    }
}

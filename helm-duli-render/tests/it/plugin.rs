//! `helm duli-render` as a real helm plugin, on helm 4.1 and 3.17: install from the plugin directory,
//! `--help` reaches our binary, helm's global flags arrive through the environment, and this repository's
//! own charts render and validate cleanly for both environments.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{crds, findings, read_json, run, workspace};

/// An isolated helm: its own plugin, data, config and cache homes, with our plugin installed.
struct PluginHelm {
    helm: PathBuf,
    tmp: tempfile::TempDir,
}

/// The repository's plugin directory as a clone has it (plugin.yaml and its install hook, no binary), copied
/// to `into`: helm symlinks a local plugin directory, and the hook writes into it.
fn copy_plugin_dir(into: &Path) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(into.join("scripts")).unwrap();
    std::fs::copy(here.join("plugin.yaml"), into.join("plugin.yaml")).unwrap();
    std::fs::copy(
        here.join("scripts/install-binary.sh"),
        into.join("scripts/install-binary.sh"),
    )
    .unwrap();
}

impl PluginHelm {
    /// Our plugin installed the way a release archive carries it: the binary already in `bin/`.
    fn install(helm: PathBuf) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let plugin = tmp.path().join("src/duli-render");
        copy_plugin_dir(&plugin);
        std::fs::create_dir_all(plugin.join("bin")).unwrap();
        std::fs::copy(common::binary(), plugin.join("bin/duli-render")).unwrap();
        let this = PluginHelm { helm, tmp };
        let (code, stdout, stderr) = run(this.cmd().args(["plugin", "install"]).arg(&plugin));
        assert_eq!(code, 0, "helm plugin install failed: {stdout}{stderr}");
        assert!(
            stdout.contains("duli-render 0.1.0: using "),
            "the install hook did not run: {stdout}{stderr}"
        );
        let (code, stdout, stderr) = run(this.cmd().args(["plugin", "list"]));
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("duli-render") && stdout.contains("0.1.0"),
            "{stdout}"
        );
        assert!(
            !stderr.to_lowercase().contains("warn"),
            "plugin list warns: {stderr}"
        );
        this
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.helm);
        common::isolate(&mut cmd, &self.helm);
        cmd.env_remove("HELM_BIN");
        for (var, dir) in [
            ("HELM_PLUGINS", "data/plugins"),
            ("HELM_DATA_HOME", "data"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_CACHE_HOME", "cache"),
        ] {
            let path = self.tmp.path().join(dir);
            std::fs::create_dir_all(&path).unwrap();
            cmd.env(var, path);
        }
        cmd.env("DULI_RENDER_CACHE", self.tmp.path().join("render-cache"));
        cmd
    }
}

fn helms() -> [(&'static str, PathBuf); 2] {
    [("helm 4", common::helm4()), ("helm 3.17", common::helm3())]
}

#[test]
fn helm_installs_the_plugin_and_runs_our_binary() {
    for (name, helm) in helms() {
        let helm = PluginHelm::install(helm);
        let (code, stdout, stderr) = run(helm.cmd().args(["duli-render", "--help"]));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(
            stdout.contains("Render and validate every chart and ArgoCD Application"),
            "{name}: {stdout}"
        );
        assert!(stdout.contains("--policy-skip"), "{name}: {stdout}");
        let (code, stdout, _) = run(helm.cmd().args(["duli-render", "--version"]));
        assert_eq!(code, 0, "{name}");
        assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{name}: {stdout}");
    }
}

/// A clone's plugin directory has no binary: the install hook links `helm-duli-render` from PATH (where
/// `.ci/install`, krew or `cargo install` put it); with none there (and no repository to build it from)
/// the install fails saying what to do.
#[test]
fn the_install_hook_finds_the_binary_on_path_or_says_what_to_do() {
    for (name, helm_bin) in helms() {
        let helm = PluginHelm {
            helm: helm_bin,
            tmp: tempfile::tempdir().unwrap(),
        };
        let plugin = helm.tmp.path().join("src/duli-render");
        copy_plugin_dir(&plugin);
        let on_path = helm.tmp.path().join("path");
        std::fs::create_dir_all(&on_path).unwrap();
        let path_without_it = format!("{}:/usr/bin:/bin", on_path.display());

        let (code, stdout, stderr) = run(helm
            .cmd()
            .env("PATH", &path_without_it)
            .args(["plugin", "install"])
            .arg(&plugin));
        assert_ne!(code, 0, "{name}: installed without a binary: {stdout}{stderr}");
        assert!(
            stderr.contains("error: no duli-render 0.1.0 binary: install the plugins first"),
            "{name}: {stdout}{stderr}"
        );
        assert!(!plugin.join("bin/duli-render").exists(), "{name}");
        // Helm 3.17 and 4 alike keep a plugin whose install hook failed listed (the message says to
        // uninstall it before trying again); without its binary it does not run.
        let (_, listed, _) = run(helm.cmd().args(["plugin", "list"]));
        assert!(listed.contains("duli-render"), "{name}: {listed}");
        let (code, _, stderr) = run(helm.cmd().args(["duli-render", "--version"]));
        assert_ne!(code, 0, "{name}: a plugin without its binary ran: {stderr}");
        let (code, _, stderr) = run(helm.cmd().args(["plugin", "uninstall", "duli-render"]));
        assert_eq!(code, 0, "{name}: {stderr}");

        std::os::unix::fs::symlink(common::binary(), on_path.join("helm-duli-render")).unwrap();
        let (code, stdout, stderr) = run(helm
            .cmd()
            .env("PATH", &path_without_it)
            .args(["plugin", "install"])
            .arg(&plugin));
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
        assert!(stdout.contains("duli-render 0.1.0: linked "), "{name}: {stdout}");
        let (code, stdout, stderr) = run(helm.cmd().args(["duli-render", "--version"]));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.contains("helm-duli-render 0.1.0"), "{name}: {stdout}");
        std::fs::remove_dir_all(helm.tmp.path().join("data")).unwrap();
        std::fs::remove_dir_all(&on_path).unwrap();
    }
}

#[test]
fn helm_global_flags_reach_the_plugin() {
    for (name, helm_bin) in helms() {
        let helm = PluginHelm::install(helm_bin.clone());
        let (code, stdout, stderr) = run(helm.cmd().args([
            "-n",
            "foo",
            "--kube-context",
            "bar",
            "duli-render",
            "--print-helm-env",
        ]));
        assert_eq!(code, 0, "{name}: {stderr}");
        let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(seen["namespace"], "foo", "{name}: {seen}");
        assert_eq!(seen["kube_context"], "bar", "{name}: {seen}");
        assert_eq!(seen["bin"], helm_bin.display().to_string(), "{name}: {seen}");
        assert!(
            seen["plugin_dir"].as_str().unwrap().ends_with("duli-render"),
            "{name}: {seen}"
        );
        assert_eq!(seen["debug"], false, "{name}");
        let (_, stdout, _) = run(helm.cmd().args(["--debug", "duli-render", "--print-helm-env"]));
        let seen: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(seen["debug"], true, "{name}: {seen}");

        // A real render through the plugin: the report records what helm handed over and the helm used.
        let repo = common::FixtureRepo::new();
        let report = repo.path("report.json");
        let (code, stdout, stderr) = run(helm
            .cmd()
            .args([
                "duli-render",
                "staging",
                "--chart",
                "good",
                "-n",
                "foo",
                "--kube-context",
                "bar",
                "--repo",
            ])
            .arg(repo.root())
            .arg("--crds")
            .arg(crds())
            .arg("--report")
            .arg(&report));
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(stdout.contains("kind: Deployment"), "{name}: {stdout}");
        assert!(stderr.contains("-n/--namespace foo ignored"), "{name}: {stderr}");
        let report = read_json(&report);
        assert_eq!(report["helm_env"]["namespace"], "foo", "{name}");
        assert_eq!(report["helm_env"]["kube_context"], "bar", "{name}");
        assert_eq!(report["helm_bin"], helm_bin.display().to_string(), "{name}");
        assert_eq!(
            report["namespace"], "staging",
            "{name}: the environment decides the namespace"
        );
    }
}

/// Rules about the objects' validity; policy findings are listed but do not fail this test.
const VALIDATION_RULES: &[&str] = &["schema", "crd-missing", "core-type", "api-unknown"];

#[test]
fn this_repositorys_charts_render_and_validate_for_both_environments() {
    for (name, helm_bin) in helms() {
        let helm = PluginHelm::install(helm_bin);
        for env in ["staging", "prod"] {
            let out = helm.tmp.path().join("out");
            let report = helm.tmp.path().join(format!("{env}.json"));
            let (code, _, stderr) = run(helm
                .cmd()
                .args(["duli-render", env, "--no-cache", "--repo"])
                .arg(workspace())
                .arg("--crds")
                .arg(crds())
                .arg("--out")
                .arg(&out)
                .arg("--report")
                .arg(&report));
            assert!(code == 0 || code == 1, "{name} {env}: exit {code}: {stderr}");
            let report = read_json(&report);
            let invalid: Vec<String> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| VALIDATION_RULES.contains(&f["rule"].as_str().unwrap()))
                .map(|f| {
                    format!(
                        "chart {}: {} ({}): {}",
                        f["chart"], f["object"], f["file"], f["message"]
                    )
                })
                .collect();
            assert!(
                invalid.is_empty(),
                "{name} {env}: charts with invalid objects:\n{}",
                invalid.join("\n")
            );
            let policy = findings(&report);
            if !policy.is_empty() {
                eprintln!("{name} {env}: {} policy findings: {policy:?}", policy.len());
            }
            let charts = report["charts"].as_array().unwrap();
            assert!(
                charts.iter().any(|c| c["status"] == "rendered"),
                "{name} {env}: nothing rendered"
            );
            for chart in charts.iter().filter(|c| c["status"] == "rendered") {
                let dir = out.join(env).join(chart["name"].as_str().unwrap());
                assert_eq!(
                    std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
                    chart["objects"].as_array().unwrap().len(),
                    "{name} {env}: one file per object in {}",
                    dir.display()
                );
            }
            for chart in charts.iter().filter(|c| c["status"] == "external") {
                assert!(
                    !chart["upstream"].as_array().unwrap().is_empty(),
                    "{name} {env}: {chart}"
                );
            }
            assert_eq!(report["namespace"], env);
        }
    }
}

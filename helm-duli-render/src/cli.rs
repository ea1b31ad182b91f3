//! The command line of `helm duli-render`: [`Cli`] flattens [`RenderOptions`], so clap parses straight into
//! the options the pipeline takes; only what is not a render option (the environments, the repository,
//! logging, `--list-rules`, completions) is declared here.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use shared::cli::CompletionShell;

use super::RenderOptions;

/// Render and validate every chart and ArgoCD Application of a duli environment.
///
/// Renders `helm/*` with `values-<ENV>.yml` and `gitops/applications/*.yml.j2` with the environment file,
/// validates custom resources against their CRDs and built-in objects against Kubernetes 1.33, and checks
/// the platform policies. Exit codes: 0 clean, 1 findings or a diff, 2 error.
#[derive(Debug, Parser)]
#[command(
    name = "helm-duli-render",
    bin_name = "helm duli-render",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// The environment to render (a file in gitops/environments/, e.g. staging or prod); several render
    /// in one run, sharing helm slots and CRDs.
    #[arg(value_name = "ENV", required_unless_present_any = ["print_helm_env", "list_rules"])]
    pub envs: Vec<String>,
    /// What to render and how; `env` is each of [`Cli::envs`] in turn.
    #[command(flatten)]
    pub render: RenderOptions,
    // `display_order` keeps the help listing where it was before the flags moved into `RenderOptions`:
    // clap numbers flags in declaration order and breaks ties by name, so 10 lands between --policy-skip
    // and --strict-deps, 13 between --jobs and --kube-context (tested below).
    /// Print the rules and exit.
    #[arg(long, display_order = 10)]
    pub list_rules: bool,
    /// The repository holding helm/ and gitops/ (default: found by walking up from the current directory).
    #[arg(long, value_name = "DIR", env = "DULI_REPO", display_order = 13)]
    pub repo: Option<PathBuf>,
    /// How the run is printed (`-o`).
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value_t = crate::formats::OutputFormat::Text,
        help = "text: manifests (or the diff) on stdout, findings on stderr; json|sarif|junit: the findings of every environment as one document on stdout (manifests only with --out)"
    )]
    pub output: crate::formats::OutputFormat,
    /// More logging on stderr (-v info, -vv debug); helm's --debug counts as -vv.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colour on stderr: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, default_value_t = shared::output::ColorChoice::Auto, value_name = "WHEN", display_order = 90)]
    pub color: shared::output::ColorChoice,
    /// Print what helm handed over (HELM_NAMESPACE, HELM_KUBECONTEXT, …) as JSON and exit.
    #[arg(long, hide = true)]
    pub print_helm_env: bool,
    /// `completion SHELL`, or none to render.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The binary's entry point, given its whole command line (`args[0]` included): parse it, run
/// [`crate::run`] through [`shared::runner::Runner`] with stdout as [`shared::fsio::Stdout`], and return
/// its exit code.
pub fn entry(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let cli = Cli::parse_from(args);
    shared::runner::Runner::new("helm duli-render")
        .verbose(cli.log_level())
        .color(cli.color)
        .run(crate::run(cli, shared::fsio::Stdout::new(), std::io::stderr()))
}

impl Cli {
    /// The log level: `-v` count, at least debug (2) when helm runs with `--debug`.
    pub fn log_level(&self) -> u8 {
        if self.render.helm_env.debug {
            self.verbose.max(2)
        } else {
            self.verbose
        }
    }
}

/// The subcommands besides rendering.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Refresh Chart.lock of wrapper charts: fetch each upstream dependency (through a mirror) into the
    /// chart cache and write Chart.lock against the upstream URLs.
    Deps(DepsArgs),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// `helm duli-render deps [CHART…]`.
#[derive(Debug, clap::Args)]
pub struct DepsArgs {
    /// The charts (directory names under helm/); none: every chart with upstream dependencies.
    #[arg(value_name = "CHART")]
    pub charts: Vec<String>,
    /// The repository holding helm/ (default: found by walking up from the current directory).
    #[arg(long, value_name = "DIR", env = "DULI_REPO")]
    pub repo: Option<PathBuf>,
    /// Chart repository mirrors, as for rendering (also $DULI_CHART_MIRRORS).
    #[arg(long = "chart-mirror", value_name = "FROM=TO")]
    pub chart_mirrors: Vec<String>,
    /// The cache directory (the chart cache is its `charts/`).
    #[arg(long, value_name = "DIR", env = "DULI_RENDER_CACHE")]
    pub cache_dir: Option<PathBuf>,
    /// Give up fetching one upstream chart after DURATION.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = shared::duration::parse_duration)]
    pub fetch_timeout: std::time::Duration,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("helm-duli-render").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_parse_straight_into_render_options() {
        let cli = parse(&[
            "staging",
            "prod",
            "--chart",
            "a",
            "-f",
            "v.yml",
            "--set",
            "k=v",
            "--no-validate",
            "--no-cache",
            "-j",
            "0",
            "--policy-skip",
            "image-tag",
            "--crds",
            "c",
            "--kube-context",
            "ctx",
        ]);
        assert_eq!(cli.envs, ["staging", "prod"]);
        let options = &cli.render;
        assert_eq!(options.charts, ["a"]);
        assert_eq!(options.values, [std::path::PathBuf::from("v.yml")]);
        assert_eq!(options.set, ["k=v"]);
        assert!(!options.validate && !options.use_cache);
        assert_eq!(options.jobs, 1, "-j 0 means one job");
        assert_eq!(options.policy_skip, ["image-tag"]);
        assert_eq!(options.crds, [std::path::PathBuf::from("c")]);
        assert_eq!(options.cluster_target().context.as_deref(), Some("ctx"));
    }

    #[test]
    fn defaults_match_render_options_new() {
        let parsed = parse(&["staging"]).render;
        let built = super::RenderOptions::new("");
        assert!(parsed.validate && parsed.use_cache && !parsed.strict_deps && !parsed.crds_from_cluster);
        assert_eq!(parsed.jobs, built.jobs);
        assert_eq!(parsed.helm_env, built.helm_env);
    }

    #[test]
    fn helm_settings_are_the_fallback_for_the_cluster() {
        let mut options = parse(&["staging", "--kubeconfig", "mine"]).render;
        options.helm_env.kube_context = Some("helms".into());
        options.helm_env.kubeconfig = Some("helms-config".into());
        let target = options.cluster_target();
        assert_eq!(target.context.as_deref(), Some("helms"));
        assert_eq!(target.kubeconfig, Some("mine".into()));
    }

    #[test]
    fn help_lists_flags_in_their_documented_order() {
        let help = Cli::command().render_long_help().to_string();
        // The line declaring the flag (`      --repo <DIR>` or `  -j, --jobs <N>`), not a mention in a help text.
        let at = |flag: &str| {
            let declares = |text: &str| text.split(' ').next() == Some(flag);
            help.lines()
                .position(|line| {
                    let line = line.trim_start();
                    declares(line) || line.get(4..).is_some_and(declares)
                })
                .unwrap_or_else(|| panic!("{flag} missing from help"))
        };
        assert!(at("--policy-skip") < at("--list-rules") && at("--list-rules") < at("--strict-deps"));
        assert!(at("--jobs") < at("--repo") && at("--repo") < at("--kube-context"));
    }
}

//! The flags every plugin shares, so that all of them behave like kubectl and like each other.
//!
//! kubectl hands its own flags to a plugin as plain arguments (`kubectl duli db status staging --context c`
//! gives the plugin `status staging --context c`), so each plugin parses them itself; these groups are
//! flattened into each plugin's clap parser as `global` flags, valid before or after the subcommand.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cluster::ClusterTarget;
use crate::output::OutputFormat;

/// The flags every plugin takes beside its subcommand: cluster selection and the common ones, flattened
/// into the plugin's parser as one field.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// `--kubeconfig`, `--context`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `-o`, `-v`, `--yes`, `--repo`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// kubectl's cluster-selection flags.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// The cluster these flags select.
    pub fn target(&self) -> ClusterTarget {
        ClusterTarget {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// Flags about output, verbosity, confirmation and the repository.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// More logging on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Answer yes to confirmations (for pipelines; required for prod without a terminal).
    #[arg(long, global = true)]
    pub yes: bool,
    /// The repository holding helm/ and gitops/ (default: found by walking up from the current directory).
    #[arg(long, global = true, value_name = "DIR", env = "DULI_REPO")]
    pub repo: Option<PathBuf>,
}

impl CommonArgs {
    /// Locate the repository from `--repo` or the current directory.
    pub fn locate_repo(&self) -> Result<crate::repo::Repo, crate::repo::RepoError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        crate::repo::Repo::locate(self.repo.as_deref(), &cwd)
    }
}

/// Shells a `completion` subcommand can generate scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Write a completion script for `cmd` to stdout, for the executable's own name (`kubectl-duli-env`):
/// clap's display name `kubectl duli env` has spaces, which completion scripts cannot key on.
pub fn print_completion(shell: CompletionShell, cmd: &clap::Command) {
    let name = cmd.get_name().to_string();
    let mut cmd = cmd.clone().bin_name(&name);
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
}

//! The flags every plugin shares, so that all of them behave like kubectl and like each other.
//!
//! kubectl hands its own flags to a plugin as plain arguments (`kubectl duli db status staging --context c`
//! gives the plugin `status staging --context c`), so each plugin parses them itself; these groups are
//! flattened into each plugin's clap parser as `global` flags, valid before or after the subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cluster::{ClientOverrides, ClusterTarget, Token};
use crate::output::{ColorChoice, OutputFormat};

/// The flags every plugin takes beside its subcommand: cluster selection and the common ones, flattened
/// into the plugin's parser as one field.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// `--kubeconfig`, `--context` and kubectl's other client flags (`--server`, `--token`, `--as`, …).
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `-o`, `-v`, `--color`, `--yes`, `--repo`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// kubectl's client flags (`kubectl options`): which kubeconfig, context, cluster and user, and what to
/// override of them. `-n/--namespace` is not here: db and env take the namespace from the environment, and
/// secrets declares its own per subcommand.
///
/// Flags win over the kubeconfig, as in kubectl; `--token` is never printed (its `Debug` is redacted) and
/// is handed to helm through its environment, never its arguments.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Cluster options (as kubectl's)")]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The address of the API server (overrides the kubeconfig's; works without a kubeconfig).
    #[arg(long, global = true, value_name = "URL", alias = "api-server")]
    pub server: Option<String>,
    /// Bearer token for the API server (prefer a kubeconfig: a flag's value is visible to other local users).
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<Token>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation (repeat for several).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", global = true, value_name = "UID")]
    pub as_uid: Option<String>,
    /// Path to a certificate file for the certificate authority.
    #[arg(long, global = true, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,
    /// Path to a client certificate file for TLS.
    #[arg(long, global = true, value_name = "FILE")]
    pub client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS.
    #[arg(long, global = true, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Do not check the server's certificate (insecure: only for test clusters).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
    /// How long one request may take (30s, 1m, 500ms; 0: no limit of its own).
    #[arg(long, global = true, value_name = "DURATION", value_parser = crate::duration::parse_duration_or_zero)]
    pub request_timeout: Option<Duration>,
}

impl ClusterArgs {
    /// The cluster these flags select.
    pub fn target(&self) -> ClusterTarget {
        ClusterTarget {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            overrides: ClientOverrides {
                cluster: self.cluster.clone(),
                user: self.user.clone(),
                server: self.server.clone(),
                token: self.token.clone(),
                as_user: self.as_user.clone(),
                as_groups: self.as_group.clone(),
                as_uid: self.as_uid.clone(),
                certificate_authority: self.certificate_authority.clone(),
                client_certificate: self.client_certificate.clone(),
                client_key: self.client_key.clone(),
                insecure_skip_tls_verify: self.insecure_skip_tls_verify,
                request_timeout: self.request_timeout.and_then(crate::duration::limit),
            },
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
    /// When to use colour: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
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

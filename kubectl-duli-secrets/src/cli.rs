//! The command line: the parser, its subcommands, and the option structs the commands take.
//!
//! Each command's options derive their flags here directly (the doc comments are the help text), so a
//! new flag is one field in one place; the commands read the same struct (`seal::seal` takes
//! [`SealOptions`]). Only the flags every plugin shares come from [`shared::cli`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shared::cli::{ClusterArgs, CommonArgs, CompletionShell};

use crate::cert::CertCache;
use crate::controller::{DEFAULT_NAME, DEFAULT_NAMESPACE};
use crate::format::Scope;

/// Seal, verify, rotate and audit the SealedSecrets of a duli environment.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-duli-secrets",
    bin_name = "kubectl duli secrets",
    version,
    about
)]
pub struct Cli {
    /// `--kubeconfig`, `--context`.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// `-o`, `-v`, `--yes`, `--repo`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where the sealing certificate comes from.
    #[command(flatten)]
    pub cert: CertOptions,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the sealing certificate comes from, with kubeseal's flag and environment names.
#[derive(Debug, Clone, Default, Args)]
pub struct CertOptions {
    /// Certificate file or URL (file://, http://, https://) instead of asking the cluster.
    #[arg(long, global = true, env = "SEALED_SECRETS_CERT", value_name = "FILE|URL")]
    pub cert: Option<String>,
    /// The controller Service to ask.
    #[command(flatten)]
    pub controller: Controller,
    /// Use the certificate cached for the kubeconfig context; never contact the cluster.
    #[arg(long, global = true)]
    pub offline: bool,
    /// The certificate cache (none: the user's cache directory).
    #[arg(skip)]
    pub cache: Option<CertCache>,
}

/// Which controller Service to talk to, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Controller {
    /// Name of the sealed-secrets controller Service.
    #[arg(
        id = "controller_name",
        long = "controller-name",
        value_name = "CONTROLLER_NAME",
        global = true,
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = DEFAULT_NAME
    )]
    pub name: String,
    /// Namespace of the sealed-secrets controller Service.
    #[arg(
        id = "controller_namespace",
        long = "controller-namespace",
        value_name = "CONTROLLER_NAMESPACE",
        global = true,
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = DEFAULT_NAMESPACE
    )]
    pub namespace: String,
    /// Deadline for each exchange with the controller through the API server (30s, 500ms, 2m).
    // The deadline covers the Service lookup, the proxied request and every retry (shared::api); the
    // runner ends the whole command shortly after it (one exchange per file for verify/rotate), so even
    // a hanging exec credential plugin cannot outlive it.
    #[arg(long, global = true, default_value = "30s", value_parser = shared::duration::parse_duration)]
    pub timeout: Duration,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Seal a Secret (stdin, -f FILE, or --name with --from-literal/--from-file/--from-env-file/--prompt).
    ///
    /// Output is YAML unless -o json or an --out FILE ending in .json; --merge-into keeps the file's format.
    Seal(SealOptions),
    /// Seal one value read from stdin (or --from-file) and print the bare encrypted string.
    Raw(RawOptions),
    /// Print the controller's certificate (and cache it for offline sealing).
    FetchCert,
    /// Ask the controller whether it can decrypt SealedSecret files (exit 1 if one does not).
    Verify(VerifyOptions),
    /// Re-encrypt SealedSecret files with the controller's newest key.
    Rotate(RotateOptions),
    /// Generate an environment's credentials from gitops/secrets.yml and seal them into helm/secrets/sealed/ENV/.
    Init(InitOptions),
    /// Scan the rendered environment (and the live ConfigMaps) for secret-looking values (exit 1 on findings).
    Audit(AuditOptions),
    /// Print a shell completion script.
    Completion {
        /// The shell.
        shell: CompletionShell,
    },
}

/// What `seal` reads and where it writes (the output format comes from `-o`).
#[derive(Debug, Clone, Default, Args)]
pub struct SealOptions {
    /// Secret manifest to read (YAML or JSON, several documents allowed); default stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Secret name (required when building from values; overrides the manifest's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace (default: the manifest's, else the kubeconfig context's, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Scope (default: the input's scope annotations, else strict).
    #[arg(long, value_enum)]
    pub scope: Option<Scope>,
    /// Secret type (e.g. kubernetes.io/basic-auth).
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    /// KEY=VALUE (visible in your shell history and process list; prefer --from-env-file or --prompt).
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    pub literals: Vec<String>,
    /// [KEY=]PATH: the file's bytes (KEY defaults to the file name; PATH `-` is stdin).
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    pub from_files: Vec<String>,
    /// File of KEY=VALUE lines (`-` is stdin).
    #[arg(long = "from-env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,
    /// Ask for KEY's value on the terminal, hidden.
    #[arg(long = "prompt", value_name = "KEY")]
    pub prompts: Vec<String>,
    /// Seal a Secret without data.
    #[arg(long)]
    pub allow_empty_data: bool,
    /// Update or add keys of this SealedSecret file; other keys stay byte-identical.
    #[arg(long, value_name = "FILE", conflicts_with = "out")]
    pub merge_into: Option<PathBuf>,
    /// Write to FILE (atomically) instead of stdout.
    #[arg(long, short = 'w', value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// What `raw` seals.
#[derive(Debug, Clone, Default, Args)]
pub struct RawOptions {
    /// Secret name (required for --scope strict).
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace (required unless --scope cluster-wide).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Scope.
    #[arg(long, value_enum, default_value_t = Scope::Strict)]
    pub scope: Scope,
    /// Read the value from PATH instead of stdin.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Allow an empty value.
    #[arg(long = "allow-empty-data")]
    pub allow_empty: bool,
}

/// The files `verify` asks about.
#[derive(Debug, Clone, Default, Args)]
pub struct VerifyOptions {
    /// SealedSecret files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The files `rotate` re-encrypts, and where the result goes.
#[derive(Debug, Clone, Default, Args)]
pub struct RotateOptions {
    /// SealedSecret files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Rewrite the files (atomically) instead of printing the result.
    #[arg(long, short = 'i')]
    pub in_place: bool,
}

/// What `init` generates (the prod guard's `--yes` comes from the common flags).
#[derive(Debug, Clone, Default, Args)]
pub struct InitOptions {
    /// The environment (gitops/environments/ENV.yml).
    pub env: String,
    /// Regenerate these keys (KEY or SECRET/KEY; repeatable) instead of keeping their sealed values.
    #[arg(long, value_name = "KEY", num_args = 1..)]
    pub rotate: Vec<String>,
    /// Values for `prompt` keys as KEY=VALUE or SECRET/KEY=VALUE lines (`-` is stdin).
    #[arg(long = "from-env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,
}

/// What `audit` scans.
#[derive(Debug, Clone, Default, Args)]
pub struct AuditOptions {
    /// The environment (default: all environments).
    pub env: Option<String>,
    /// Skip the live ConfigMaps scan.
    #[arg(long = "no-live", action = clap::ArgAction::SetFalse)]
    pub live: bool,
}

impl Command {
    /// The subcommand as typed (`seal`, `fetch-cert`), for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Seal(_) => "seal",
            Command::Raw(_) => "raw",
            Command::FetchCert => "fetch-cert",
            Command::Verify(_) => "verify",
            Command::Rotate(_) => "rotate",
            Command::Init(_) => "init",
            Command::Audit(_) => "audit",
            Command::Completion { .. } => "completion",
        }
    }
}

/// Print clap's error and exit; invalid UTF-8 is reported naming the argument (clap only says "one or more
/// arguments").
pub fn exit_on_parse_error(err: clap::Error) -> ! {
    if err.kind() == clap::error::ErrorKind::InvalidUtf8
        && let Some(which) = first_non_utf8_argument(std::env::args_os().skip(1))
    {
        eprintln!("error: {which} is not valid UTF-8 text; pass it as UTF-8");
        std::process::exit(i32::from(shared::error::EXIT_ERROR));
    }
    err.exit()
}

/// `the value of --name` / `argument 3` for the first argument that is not UTF-8.
pub fn first_non_utf8_argument(args: impl IntoIterator<Item = std::ffi::OsString>) -> Option<String> {
    let mut previous: Option<String> = None;
    for (index, arg) in args.into_iter().enumerate() {
        match arg.to_str() {
            Some(text) => previous = Some(text.to_string()),
            None => {
                use std::os::unix::ffi::OsStrExt;
                let bytes = arg.as_bytes();
                // `--name=VALUE` in one argument, else the flag just before it.
                if bytes.starts_with(b"-")
                    && let Some(eq) = bytes.iter().position(|b| *b == b'=')
                    && let Ok(flag) = std::str::from_utf8(&bytes[..eq])
                {
                    return Some(format!("the value of {flag}"));
                }
                return Some(match previous {
                    Some(flag) if flag.starts_with('-') && !flag.contains('=') => {
                        format!("the value of {flag}")
                    }
                    _ => format!("argument {}", index + 1),
                });
            }
        }
    }
    None
}

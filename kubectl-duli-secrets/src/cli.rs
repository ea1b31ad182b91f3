//! The command line: the parser, its subcommands, and the option structs the commands take.
//!
//! Each command's options derive their flags here directly (the doc comments are the help text), so a
//! new flag is one field in one place; the commands read the same struct (`seal::seal` takes
//! [`SealOptions`]). Only the flags every plugin shares come from [`shared::cli`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use shared::cli::{CompletionShell, GlobalArgs};

use crate::cert::CertCache;
use crate::controller::{DEFAULT_NAME, DEFAULT_NAMESPACE};
use crate::format::Scope;
use crate::manifest::DocFormat;
use shared::runner::Runner;

/// Seal, verify, rotate, unseal and audit the SealedSecrets of a duli environment.
///
/// Without a subcommand it takes kubeseal's own flags and does what kubeseal does with them
/// (`kubectl duli secrets --format yaml --cert c.pem < secret.yaml`, `--raw`, `--fetch-cert`,
/// `--validate`, `--re-encrypt`, `--recovery-unseal --recovery-private-key FILE`, `--merge-into`).
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-duli-secrets",
    bin_name = "kubectl duli secrets",
    version,
    about
)]
pub struct Cli {
    /// `--kubeconfig`, `--context`, `-o`, `-v`, `--yes`, `--repo`.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Where the sealing certificate comes from.
    #[command(flatten)]
    pub cert: CertOptions,
    /// Format of SealedSecret and Secret documents written (kubeseal's `--format`; `-o json|yaml` too).
    #[arg(
        long = "format",
        global = true,
        value_enum,
        ignore_case = true,
        env = "SEALED_SECRETS_FORMAT",
        value_name = "FORMAT"
    )]
    pub format: Option<DocFormat>,
    /// kubeseal's mode flags, used when no subcommand is given.
    #[command(flatten)]
    pub kubeseal: KubesealArgs,
    /// The subcommand (none: kubeseal's flags choose what to do, sealing stdin by default).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Set by [`Cli::resolve`] when kubeseal's flags chose the command (kubeseal's default output is JSON).
    #[arg(skip)]
    pub kubeseal_mode: bool,
}

/// kubeseal's flags for a command line without a subcommand: `kubeseal ARGS` and
/// `kubectl duli secrets ARGS` do the same. Each is also read from kubeseal's `SEALED_SECRETS_<FLAG>`
/// environment variable (kubeseal's pflagenv convention: upper case, `-` as `_`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "kubeseal mode (no subcommand)")]
pub struct KubesealArgs {
    /// Encrypt one value (stdin or --from-file) and print the bare encrypted string (`raw`).
    #[arg(long, env = "SEALED_SECRETS_RAW")]
    pub raw: bool,
    /// Print the controller's certificate (`fetch-cert`).
    #[arg(long = "fetch-cert", env = "SEALED_SECRETS_FETCH_CERT")]
    pub fetch_cert: bool,
    /// Ask the controller whether it can decrypt the SealedSecret on stdin or -f (`verify`).
    #[arg(long, env = "SEALED_SECRETS_VALIDATE")]
    pub validate: bool,
    /// Re-encrypt the SealedSecret on stdin or -f with the newest key (`rotate`); -f without -w rewrites
    /// the file. With --recovery-private-key: offline, re-sealed with --cert.
    #[arg(long = "re-encrypt", alias = "rotate", env = "SEALED_SECRETS_RE_ENCRYPT")]
    pub re_encrypt: bool,
    /// Decrypt the SealedSecret on stdin or -f with --recovery-private-key (`unseal`).
    #[arg(long = "recovery-unseal", env = "SEALED_SECRETS_RECOVERY_UNSEAL")]
    pub recovery_unseal: bool,
    /// Backed-up controller private key: PEM, or the key Secret / List of them as kubectl exports it
    /// (repeatable or comma-separated).
    #[arg(
        long = "recovery-private-key",
        value_name = "FILE",
        value_delimiter = ',',
        env = "SEALED_SECRETS_RECOVERY_PRIVATE_KEY"
    )]
    pub recovery_private_keys: Vec<PathBuf>,
    /// Input file (a Secret, or a SealedSecret for --validate/--re-encrypt/--recovery-unseal); default stdin.
    #[arg(
        short = 'f',
        long = "secret-file",
        value_name = "FILE",
        env = "SEALED_SECRETS_SECRET_FILE"
    )]
    pub secret_file: Option<PathBuf>,
    /// Output file (written atomically); `.yaml`/`.yml` select YAML.
    #[arg(
        short = 'w',
        long = "sealed-secret-file",
        value_name = "FILE",
        env = "SEALED_SECRETS_SEALED_SECRET_FILE"
    )]
    pub sealed_secret_file: Option<PathBuf>,
    /// Name of the sealed secret (overrides the input's; required with --raw and strict scope).
    #[arg(long, env = "SEALED_SECRETS_NAME")]
    pub name: Option<String>,
    /// Namespace (used when the input has none; required with --raw unless cluster-wide).
    #[arg(short = 'n', long, env = "SEALED_SECRETS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Scope: strict, namespace-wide, cluster-wide (default: the input's annotations, else strict).
    #[arg(long, value_enum, env = "SEALED_SECRETS_SCOPE")]
    pub scope: Option<Scope>,
    /// (only with --raw) [KEY=]PATH of the one value to encrypt.
    #[arg(
        long = "from-file",
        value_name = "[KEY=]PATH",
        value_delimiter = ',',
        env = "SEALED_SECRETS_FROM_FILE"
    )]
    pub from_file: Vec<String>,
    /// Merge the input Secret's items into this SealedSecret file in place.
    #[arg(long = "merge-into", value_name = "FILE", env = "SEALED_SECRETS_MERGE_INTO")]
    pub merge_into: Option<PathBuf>,
    /// Allow a Secret without data.
    #[arg(long = "allow-empty-data", env = "SEALED_SECRETS_ALLOW_EMPTY_DATA")]
    pub allow_empty_data: bool,
}

/// The ids of [`KubesealArgs`], to refuse them next to a subcommand (they would be ignored there).
const KUBESEAL_MODE_FLAGS: [(&str, &str); 14] = [
    ("raw", "--raw"),
    ("fetch_cert", "--fetch-cert"),
    ("validate", "--validate"),
    ("re_encrypt", "--re-encrypt"),
    ("recovery_unseal", "--recovery-unseal"),
    ("recovery_private_keys", "--recovery-private-key"),
    ("secret_file", "-f/--secret-file"),
    ("sealed_secret_file", "-w/--sealed-secret-file"),
    ("name", "--name"),
    ("namespace", "-n/--namespace"),
    ("scope", "--scope"),
    ("from_file", "--from-file"),
    ("merge_into", "--merge-into"),
    ("allow_empty_data", "--allow-empty-data"),
];

impl Cli {
    /// Parse `args` (the first is the program name); kubeseal-mode flags typed before a subcommand are
    /// an error (they belong after it: `seal --name x`, not `--name x seal`).
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut command))?;
        if let Some(subcommand) = &cli.command
            && let Some(flag) = typed_mode_flag(&matches)
        {
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} before the `{}` subcommand is kubeseal's mode flag; put the subcommand's own \
                     flags after it, or drop the subcommand to use kubeseal's flags",
                    subcommand.name()
                ),
            ));
        }
        Ok(cli)
    }

    /// The command to run: the subcommand, else the one kubeseal's flags select (in kubeseal's order:
    /// --recovery-unseal, --validate, --re-encrypt, --fetch-cert, --merge-into, --raw, else seal).
    pub fn resolve(&mut self) -> Result<(), String> {
        if self.command.is_some() {
            return Ok(());
        }
        self.command = Some(self.kubeseal.command()?);
        self.kubeseal_mode = true;
        Ok(())
    }

    /// The command [`Cli::resolve`] chose.
    pub fn chosen(&self) -> Option<&Command> {
        self.command.as_ref()
    }

    /// The format of documents written: `--format`, else `-o json|yaml`, else none (the output file's
    /// extension, else YAML). In kubeseal mode as kubeseal: an output file ending `.yaml`/`.yml` (`-w`, or
    /// `-f` rewritten by `--re-encrypt`) is YAML, anything else JSON.
    pub fn doc_format(&self) -> Option<DocFormat> {
        use shared::output::OutputFormat;
        let kubeseal_default = || {
            let args = &self.kubeseal;
            let output = args
                .sealed_secret_file
                .as_ref()
                .or(args.secret_file.as_ref().filter(|_| args.re_encrypt));
            match output
                .and_then(|path| path.extension())
                .and_then(|ext| ext.to_str())
            {
                Some("yaml" | "yml") => DocFormat::Yaml,
                _ => DocFormat::Json,
            }
        };
        self.format
            .or(match self.global.common.output {
                OutputFormat::Json => Some(DocFormat::Json),
                OutputFormat::Yaml => Some(DocFormat::Yaml),
                OutputFormat::Table | OutputFormat::Wide => None,
            })
            .or_else(|| self.kubeseal_mode.then(kubeseal_default))
    }
}

/// The first kubeseal-mode flag typed on the command line (not from the environment).
fn typed_mode_flag(matches: &ArgMatches) -> Option<&'static str> {
    KUBESEAL_MODE_FLAGS
        .iter()
        .find(|(id, _)| matches.value_source(id) == Some(ValueSource::CommandLine))
        .map(|(_, flag)| *flag)
}

impl KubesealArgs {
    /// The command these flags select, as kubeseal would run it.
    pub fn command(&self) -> Result<Command, String> {
        if !self.from_file.is_empty() && !self.raw {
            return Err("--from-file requires --raw".into());
        }
        let input = self.secret_file.clone();
        let stdin_or_file = || vec![input.clone().unwrap_or_else(|| PathBuf::from("-"))];
        if !self.recovery_private_keys.is_empty() && !self.recovery_unseal && !self.re_encrypt {
            // Parsing happens before logging is set up: straight to stderr, as kubeseal does.
            eprintln!(
                "warning: ignoring --recovery-private-key because unseal command not chosen with --recovery-unseal"
            );
        }
        if self.recovery_unseal {
            if self.recovery_private_keys.is_empty() {
                return Err(
                    "--recovery-unseal needs --recovery-private-key FILE (the controller's backed-up key)"
                        .into(),
                );
            }
            return Ok(Command::Unseal(UnsealOptions {
                files: stdin_or_file(),
                private_keys: self.recovery_private_keys.clone(),
                out: self.sealed_secret_file.clone(),
            }));
        }
        if self.validate {
            return Ok(Command::Verify(VerifyOptions {
                files: stdin_or_file(),
            }));
        }
        if self.re_encrypt {
            // kubeseal #405: -f without -w rewrites the input file.
            let in_place = self.sealed_secret_file.is_none() && input.is_some();
            return Ok(Command::Rotate(RotateOptions {
                files: stdin_or_file(),
                in_place,
                out: self.sealed_secret_file.clone(),
                private_keys: self.recovery_private_keys.clone(),
            }));
        }
        if self.fetch_cert {
            return Ok(Command::FetchCert);
        }
        if self.raw {
            let from_file = match self.from_file.as_slice() {
                [] => None,
                // kubectl's [KEY=]PATH: kubeseal ignores the key; its documented `/dev/stdin` is our `-`
                // (a pipe, which file reads refuse).
                [spec] => Some(
                    match spec.split_once('=').map_or(spec.as_str(), |(_, path)| path) {
                        "/dev/stdin" => PathBuf::from("-"),
                        path => PathBuf::from(path),
                    },
                ),
                _ => {
                    return Err(
                        "must provide only one --from-file when encrypting a single item with --raw".into(),
                    );
                }
            };
            return Ok(Command::Raw(RawOptions {
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                scope: self.scope.unwrap_or_default(),
                from_file,
                allow_empty: self.allow_empty_data,
            }));
        }
        Ok(Command::Seal(SealOptions {
            file: input,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            scope: self.scope,
            allow_empty_data: self.allow_empty_data,
            out: self
                .sealed_secret_file
                .clone()
                .filter(|_| self.merge_into.is_none()),
            merge_into: self.merge_into.clone(),
            ..SealOptions::default()
        }))
    }
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
#[derive(Debug, Clone, Subcommand)]
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
    /// Re-encrypt SealedSecret files with the controller's newest key (offline with --private-key and
    /// --cert).
    Rotate(RotateOptions),
    /// Decrypt SealedSecrets offline with backed-up controller private keys (disaster recovery).
    ///
    /// Prints the Secrets (plaintext) or writes them to -w FILE (mode 0600). kubeseal: `--recovery-unseal
    /// --recovery-private-key FILE`.
    Unseal(UnsealOptions),
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
    #[arg(
        short = 'f',
        long = "file",
        visible_alias = "secret-file",
        value_name = "FILE"
    )]
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
    #[arg(long, short = 'w', visible_alias = "sealed-secret-file", value_name = "FILE")]
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
    /// SealedSecret files (several documents each allowed; `-` is stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The files `rotate` re-encrypts, and where the result goes.
#[derive(Debug, Clone, Default, Args)]
pub struct RotateOptions {
    /// SealedSecret files (`-` is stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Rewrite the files (atomically) instead of printing the result.
    #[arg(long, short = 'i', conflicts_with = "out")]
    pub in_place: bool,
    /// Write the result to FILE (atomically; one input file only).
    #[arg(long, short = 'w', visible_alias = "sealed-secret-file", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Offline: decrypt with these backed-up controller private keys and re-seal with the certificate
    /// (--cert), no controller needed (repeatable or comma-separated).
    #[arg(
        long = "private-key",
        short = 'k',
        visible_alias = "recovery-private-key",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub private_keys: Vec<PathBuf>,
}

/// What `unseal` decrypts, with which keys, and where the plaintext goes.
#[derive(Debug, Clone, Default, Args)]
pub struct UnsealOptions {
    /// SealedSecret files (several documents each allowed; `-` is stdin, the default).
    #[arg(value_name = "FILE", default_value = "-")]
    pub files: Vec<PathBuf>,
    /// Backed-up controller private key: PEM (PKCS#1 or PKCS#8), or the key Secret / List of them as
    /// `kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` exports it
    /// (repeatable or comma-separated).
    #[arg(
        long = "private-key",
        short = 'k',
        visible_alias = "recovery-private-key",
        value_name = "FILE",
        value_delimiter = ',',
        required = true
    )]
    pub private_keys: Vec<PathBuf>,
    /// Write the Secrets to FILE (atomically, mode 0600) instead of stdout.
    #[arg(long, short = 'w', visible_alias = "sealed-secret-file", value_name = "FILE")]
    pub out: Option<PathBuf>,
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
            Command::Unseal(_) => "unseal",
            Command::Init(_) => "init",
            Command::Audit(_) => "audit",
            Command::Completion { .. } => "completion",
        }
    }
}

/// Print clap's error and exit; invalid UTF-8 is reported naming the argument (clap only says "one or more
/// arguments").
pub fn exit_on_parse_error(err: clap::Error, args: &[std::ffi::OsString]) -> ! {
    if err.kind() == clap::error::ErrorKind::InvalidUtf8
        && let Some(which) = first_non_utf8_argument(args.iter().skip(1).cloned())
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

/// How long after `--timeout` the runner's own deadline ends a command the API layer could not stop.
const BACKSTOP_MARGIN: Duration = Duration::from_secs(1);

/// The binary's entry point, given its whole command line (`args[0]` included): parse it, run the command
/// through [`shared::runner::Runner`] (one deadline, signals, cleanups), and return its exit code.
pub fn entry(args: Vec<std::ffi::OsString>) -> ExitCode {
    // `kubectl_complete-duli-secrets` runs `kubectl-duli-secrets __complete WORDS…` (kubectl's plugin
    // completion).
    if let Some(code) = shared::completion::intercept(&args, Cli::command) {
        return code;
    }
    let mut cli = match Cli::try_parse_args(args.iter().cloned()) {
        Ok(cli) => cli,
        Err(err) => exit_on_parse_error(err, &args),
    };
    // No subcommand: kubeseal's flags choose one.
    if let Err(message) = cli.resolve() {
        eprintln!("error: {message}");
        return ExitCode::from(shared::error::EXIT_ERROR);
    }
    let Some(command) = cli.chosen() else {
        unreachable!("resolve() chose a command")
    };
    let name = format!("kubectl duli secrets {}", command.name());
    // `--timeout` bounds each exchange with the controller (the API layer ends it and names the call, so
    // a failed fetch can still fall back to the cached certificate); the runner's deadline is the backstop
    // for what the API layer cannot bound (a hanging exec credential plugin), a moment later. verify and
    // rotate make one exchange per file. Interactive commands (a hidden prompt, init's confirmations)
    // wait on the user, not on the cluster.
    let timeout = cli.cert.controller.timeout;
    // verify makes one exchange per SealedSecret document.
    let exchanges = match command {
        Command::Verify(options) => crate::count_documents(&options.files),
        Command::Rotate(options) => options.files.len(),
        _ => 1,
    };
    let deadline = match command {
        Command::Seal(options) if !options.prompts.is_empty() => None,
        // unseal never contacts the cluster and may ask the prod question.
        Command::Init(_) | Command::Unseal(_) | Command::Completion { .. } => None,
        _ => Some(
            timeout
                .saturating_mul(u32::try_from(exchanges).unwrap_or(u32::MAX))
                .saturating_add(BACKSTOP_MARGIN),
        ),
    };
    Runner::new(name)
        .verbose(cli.global.common.verbose)
        .color(cli.global.common.color)
        .deadline(deadline, "--timeout")
        .run(async move {
            let mut stdout = shared::fsio::Stdout::new();
            crate::run(cli, &mut stdout, &mut std::io::stderr()).await
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(args: &[&str]) -> Cli {
        let argv = std::iter::once("kubectl-duli-secrets").chain(args.iter().copied());
        let mut cli = Cli::try_parse_args(argv).unwrap();
        cli.resolve().unwrap();
        cli
    }

    #[test]
    fn the_parser_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubeseal_flags_choose_the_command_as_kubeseal_does() {
        let cli = resolved(&["--re-encrypt", "-f", "db.yaml"]);
        let Some(Command::Rotate(options)) = cli.chosen() else {
            panic!("{cli:?}")
        };
        assert!(options.in_place && options.out.is_none());
        assert_eq!(cli.doc_format(), Some(DocFormat::Yaml));

        let cli = resolved(&["--re-encrypt", "-f", "db.yaml", "-w", "new.json"]);
        let Some(Command::Rotate(options)) = cli.chosen() else {
            panic!("{cli:?}")
        };
        assert!(!options.in_place);
        assert_eq!(cli.doc_format(), Some(DocFormat::Json));

        let cli = resolved(&["-w", "out.yml"]);
        assert!(matches!(cli.chosen(), Some(Command::Seal(_))));
        assert_eq!(cli.doc_format(), Some(DocFormat::Yaml));
        assert_eq!(
            resolved(&["-w", "out.yml", "--format", "json"]).doc_format(),
            Some(DocFormat::Json)
        );

        let cli = resolved(&["--validate"]);
        let Some(Command::Verify(options)) = cli.chosen() else {
            panic!("{cli:?}")
        };
        assert_eq!(options.files, [PathBuf::from("-")]);

        // kubeseal's order: unseal wins over validate, validate over re-encrypt, fetch-cert over raw.
        let cli = resolved(&["--validate", "--recovery-unseal", "--recovery-private-key", "a,b"]);
        let Some(Command::Unseal(options)) = cli.chosen() else {
            panic!("{cli:?}")
        };
        assert_eq!(options.private_keys, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(matches!(
            resolved(&["--raw", "--fetch-cert"]).chosen(),
            Some(Command::FetchCert)
        ));

        // A subcommand keeps its own default format.
        assert_eq!(resolved(&["seal"]).doc_format(), None);

        let argv = ["kubectl-duli-secrets", "--recovery-unseal"];
        let err = Cli::try_parse_args(argv).unwrap().resolve().unwrap_err();
        assert!(err.contains("--recovery-private-key"), "{err}");
    }
}

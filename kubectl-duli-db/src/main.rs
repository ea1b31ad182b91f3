//! `kubectl duli db`: status, connect and credentials for the environment's PostgreSQL, Redis and RabbitMQ.
//!
//! Thin: parse, build the library's options, call `shared::db`, map the result to the exit code.
// Doc comments here are clap's help text, where `<ENV>` is a placeholder people read, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod args;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, FromArgMatches};
use shared::db::creds::CredsFormat;
use shared::db::{Service, connect, creds, status};
use shared::environment::Environment;
use shared::error::{Outcome, finish};
use shared::output::OutputFormat;

/// Parse the command line; `-o env` (creds only) is accepted on top of the shared `-o` values.
fn parse() -> (Cli, bool) {
    let command = Cli::command().mut_arg("output", |arg| {
        arg.value_parser(
            PossibleValuesParser::new(["table", "json", "yaml", "env"]).map(|value| match value.as_str() {
                "json" => OutputFormat::Json,
                "yaml" => OutputFormat::Yaml,
                _ => OutputFormat::Table,
            }),
        )
        .help("Output format (env: `export` lines, for creds)")
    });
    let matches = command.get_matches();
    let raw_env = |m: &clap::ArgMatches| {
        m.get_raw("output")
            .is_some_and(|mut values| values.next_back().is_some_and(|value| value == "env"))
    };
    let env_output = raw_env(&matches) || matches.subcommand().is_some_and(|(_, sub)| raw_env(sub));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    (cli, env_output)
}

fn main() -> ExitCode {
    let (cli, env_output) = parse();
    shared::error::init_logging(cli.common.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return finish(Err(err.into())),
    };
    finish(runtime.block_on(run(cli, env_output)))
}

async fn run(cli: Cli, env_output: bool) -> anyhow::Result<Outcome> {
    if env_output && !matches!(cli.command, Command::Creds(_)) {
        anyhow::bail!("-o env is only for `kubectl duli db creds`; use -o table, json or yaml");
    }
    match cli.command {
        Command::Completion { shell } => {
            shared::cli::print_completion(shell, &Cli::command());
            Ok(Outcome::Clean)
        }
        Command::Status(args) => {
            let repo = cli.common.locate_repo()?;
            let environments = match &args.env {
                Some(name) => vec![Environment::load(&repo, name)?],
                None => Environment::load_all(&repo)?,
            };
            let cluster = cli.cluster.target().connect(Some(args.timeout)).await?;
            let options = status::StatusOptions {
                live: !args.no_live,
                timeout: args.timeout,
            };
            status::run(&cluster.client, &environments, &options, cli.common.output)
                .await
                .map_err(|err| name_the_server(err, &cluster))
        }
        Command::Connect(args) => {
            let env = Environment::load(&cli.common.locate_repo()?, &args.env)?;
            let options = connect::ConnectOptions {
                service: args.service,
                read_only: args.read_only,
                local_port: args.local_port,
                port_forward_only: args.port_forward_only,
                external: args.external,
                show_credentials: args.show_credentials,
                yes: cli.common.yes,
                client_args: args.client_args,
                timeout: args.timeout,
            };
            options.validate()?;
            // No read timeout on this client: it carries the port-forward for an interactive session.
            let cluster = cli.cluster.target().connect(None).await?;
            connect::run(&cluster.client, &env, &options)
                .await
                .map_err(|err| name_the_server(err.into(), &cluster))
        }
        Command::Creds(args) => {
            let env = Environment::load(&cli.common.locate_repo()?, &args.env)?;
            let services = args
                .service
                .map_or_else(|| Service::ALL.to_vec(), |service| vec![service]);
            let cluster = cli.cluster.target().connect(Some(args.timeout)).await?;
            let report = creds::run(
                &cluster.client,
                &env,
                &services,
                args.show,
                cli.common.yes,
                args.timeout,
            )
            .await
            .map_err(|err| name_the_server(err.into(), &cluster))?;
            let format = match (env_output, cli.common.output) {
                (true, _) => CredsFormat::Env,
                (false, OutputFormat::Table) => CredsFormat::Table,
                (false, other) => CredsFormat::Document(other),
            };
            let mut stdout = std::io::stdout().lock();
            std::io::Write::write_all(&mut stdout, creds::render(&report, format)?.as_bytes())?;
            Ok(Outcome::Clean)
        }
    }
}

/// When the API server itself could not be reached or did not answer, say which one (the kubeconfig's
/// server address and context are the input to check).
fn name_the_server(err: anyhow::Error, cluster: &shared::cluster::Cluster) -> anyhow::Error {
    let unreachable = err.chain().any(|cause| {
        cause
            .downcast_ref::<shared::db::DbError>()
            .is_some_and(shared::db::DbError::is_unreachable)
    });
    if !unreachable {
        return err;
    }
    anyhow::anyhow!(
        "{} [API server {}, context `{}`]",
        shared::error::message(&err),
        cluster.server.trim_end_matches('/'),
        cluster.context
    )
}

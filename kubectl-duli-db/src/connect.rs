//! `db connect`: open a port-forward to the service's pod and run `psql` / `redis-cli` through it, or keep
//! the forward open for GUI tools (`--port-forward-only`), or forward RabbitMQ's AMQP and management ports.
//!
//! Credentials come from the operator's Secret and reach the client through a 0600 temporary `PGPASSFILE`
//! (removed afterwards) or the `REDISCLI_AUTH` environment variable — never through the command line, and
//! never printed unless `--show-credentials`. While the client runs the plugin ignores Ctrl-C (the client
//! handles it), and the client's exit code becomes the plugin's.

use std::ffi::OsString;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Service as KubeService};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::ListParams;
use shared::api::{ApiClient, Call};
use shared::runner;

use crate::DbError;
use crate::catalog::{self, Service};
use crate::cli::ConnectOptions;
use crate::portforward::PortForward;
use crate::secrets::{self, Credentials};
use shared::confirm::{self, Confirmation};
use shared::environment::{Environment, parse_host_port};
use shared::error::Outcome;

impl ConnectOptions {
    /// Reject combinations that make no sense, with a message saying why.
    pub fn validate(&self) -> Result<(), DbError> {
        let usage = |text: &str| Err(DbError::Usage(text.to_string()));
        if self.read_only && self.service != Service::Postgres {
            return usage(
                "--read-only applies to postgres only (redis: connect to the master; rabbitmq has no replicas)",
            );
        }
        if self.external && (self.port_forward_only || self.local_port.is_some()) {
            return usage(
                "--external uses the environment's external endpoint: it cannot be combined with --port-forward-only or --local-port",
            );
        }
        if self.service == Service::Rabbitmq && !self.client_args.is_empty() {
            return usage(
                "rabbitmq has no command-line client: arguments after -- are for psql or redis-cli",
            );
        }
        if self.port_forward_only && !self.client_args.is_empty() {
            return usage("--port-forward-only runs no client: drop the arguments after --");
        }
        Ok(())
    }
}

/// A Service resolved to one ready pod and its container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The Service.
    pub service: String,
    /// The chosen pod.
    pub pod: String,
    /// The pod port behind the Service port.
    pub port: u16,
}

/// Find a ready pod behind `service` and the pod port its `port` maps to (as `kubectl port-forward svc/…`).
pub async fn resolve_service(
    api: &ApiClient,
    namespace: &str,
    service: &str,
    port: u16,
) -> Result<Backend, DbError> {
    let services: Api<KubeService> = Api::namespaced(api.client().clone(), namespace);
    let call = Call::get("services", Some(namespace), service);
    let Some(svc) = api.get_opt(&call, || services.get(service)).await? else {
        return Err(DbError::NotFound {
            what: format!("Service `{service}`"),
            namespace: namespace.to_string(),
            hint:
                "the operator creates it with the instance; check `kubectl duli db status` and the operator"
                    .to_string(),
        });
    };
    let spec = svc.spec.unwrap_or_default();
    let selector = spec.selector.unwrap_or_default();
    let selector_text = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if selector.is_empty() {
        return Err(DbError::NoPod {
            service: service.to_string(),
            namespace: namespace.to_string(),
            selector: "(none)".into(),
        });
    }
    let pods: Api<Pod> = Api::namespaced(api.client().clone(), namespace);
    let params = ListParams::default().labels(&selector_text);
    let list = api
        .call(&Call::list("pods", Some(namespace)), || pods.list(&params))
        .await?;
    let mut candidates: Vec<Pod> = list
        .items
        .into_iter()
        .filter(|pod| {
            let value = serde_json::to_value(pod).unwrap_or_default();
            shared::readiness::is_pod_ready(&value).ready
        })
        .collect();
    candidates.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let Some(pod) = candidates.into_iter().next() else {
        return Err(DbError::NoPod {
            service: service.to_string(),
            namespace: namespace.to_string(),
            selector: selector_text,
        });
    };
    let service_port = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.port == i32::from(port));
    let target = match service_port.and_then(|p| p.target_port) {
        Some(IntOrString::Int(number)) => u16::try_from(number).unwrap_or(port),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()
            .into_iter()
            .flat_map(|spec| spec.containers.iter())
            .flat_map(|container| container.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .unwrap_or(port),
        None => port,
    };
    Ok(Backend {
        service: service.to_string(),
        pod: pod.metadata.name.unwrap_or_default(),
        port: target,
    })
}

/// Escape a `.pgpass` field (`:` and `\`).
fn pgpass_field(value: &str) -> String {
    value.replace('\\', "\\\\").replace(':', "\\:")
}

/// A 0600 temporary `.pgpass` file holding one line; removed when dropped, and by the runner's cleanups
/// on every other way out (signal, deadline) while it lives.
pub struct PgPass {
    file: tempfile::NamedTempFile,
    _cleanup: runner::Cleanup,
}

impl PgPass {
    /// Where the file is.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// Write the temporary `.pgpass` file ([`PgPass`]).
pub fn write_pgpass(host: &str, port: u16, credentials: &Credentials) -> Result<PgPass, DbError> {
    let io = |source| DbError::Io {
        what: "cannot write the temporary password file".into(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix("duli-pgpass-")
        .tempfile()
        .map_err(io)?;
    let cleanup = runner::on_exit({
        let path = file.path().to_owned();
        move || {
            let _ = std::fs::remove_file(&path);
        }
    });
    // tempfile creates the file 0600 on Unix; say so explicitly in case the default ever changes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let line = format!(
        "{}:{port}:{}:{}:{}\n",
        pgpass_field(host),
        pgpass_field(credentials.database.as_deref().unwrap_or("*")),
        pgpass_field(credentials.user.as_deref().unwrap_or("*")),
        pgpass_field(credentials.password.as_ref().map(|p| p.expose()).unwrap_or(""))
    );
    file.write_all(line.as_bytes()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(PgPass {
        file,
        _cleanup: cleanup,
    })
}

/// Build the client command: program, endpoint and credentials in the environment, user args last.
pub fn client_command(
    program: &Path,
    service: Service,
    host: &str,
    port: u16,
    credentials: &Credentials,
    passfile: Option<&Path>,
    args: &[OsString],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    match service {
        Service::Postgres => {
            command
                .env("PGHOST", host)
                .env("PGPORT", port.to_string())
                .env_remove("PGPASSWORD");
            if let Some(user) = &credentials.user {
                command.env("PGUSER", user);
            }
            if let Some(database) = &credentials.database {
                command.env("PGDATABASE", database);
            }
            if let Some(passfile) = passfile {
                command.env("PGPASSFILE", passfile);
            }
        }
        Service::Redis => {
            command
                .arg("-h")
                .arg(host)
                .arg("-p")
                .arg(port.to_string())
                .env_remove("REDISCLI_AUTH");
            if let Some(password) = &credentials.password {
                command.env("REDISCLI_AUTH", password.expose());
            }
        }
        Service::Rabbitmq => {}
    }
    command.args(args);
    command
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}

async fn run_client(mut command: tokio::process::Command, program: &Path) -> Result<Outcome, DbError> {
    // The terminal sends Ctrl-C to the whole foreground group: the client decides what it means, we stay.
    // The client stays in our process group (it reads the terminal); a signal or the runner's exit drops
    // this future, and `kill_on_drop` ends the client.
    let _pass_through = runner::InterruptPassThrough::start();
    let mut child = command
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DbError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let status = child.wait().await.map_err(|source| DbError::Spawn {
        program: program.display().to_string(),
        source,
    })?;
    Ok(Outcome::Child(exit_code(status)))
}

fn print_line(out: &mut impl Write, text: &str) -> Result<(), DbError> {
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .map_err(|source| DbError::Io {
            what: "cannot write to stdout".into(),
            source,
        })
}

fn describe_credentials(credentials: &Credentials, show: bool) -> String {
    let mut parts = Vec::new();
    if let Some(user) = &credentials.user {
        parts.push(format!("user {user}"));
    }
    if let Some(database) = &credentials.database {
        parts.push(format!("database {database}"));
    }
    match (&credentials.password, &credentials.secret, show) {
        (Some(password), _, true) => parts.push(format!("password {}", password.expose())),
        (Some(_), Some(secret), false) => parts.push(format!(
            "password in Secret {secret} (--show-credentials prints it)"
        )),
        _ => parts.push("no password".to_string()),
    }
    parts.join(", ")
}

/// Ctrl-C ends a port-forward-only session normally (exit 0): while it is awaited, the runner passes SIGINT
/// through to here instead of treating it as an interruption. Listening starts when this is created, so a
/// Ctrl-C right after "Press Ctrl-C" is never missed.
struct CtrlC {
    _pass_through: runner::InterruptPassThrough,
    signal: tokio::signal::unix::Signal,
}

impl CtrlC {
    fn listen() -> Result<Self, DbError> {
        let signal =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(|source| {
                DbError::Io {
                    what: "cannot listen for Ctrl-C".into(),
                    source,
                }
            })?;
        Ok(CtrlC {
            _pass_through: runner::InterruptPassThrough::start(),
            signal,
        })
    }

    async fn wait(mut self) -> Result<Outcome, DbError> {
        self.signal.recv().await;
        Ok(Outcome::Clean)
    }
}

/// Run `connect` for `env` with the cluster `client`; `yes` is the global `--yes` (prod confirmed in
/// advance). The endpoint and credentials lines go to `out`; the client itself inherits the terminal.
pub async fn run(
    api: &ApiClient,
    env: &Environment,
    options: &ConnectOptions,
    yes: bool,
    out: &mut (impl Write + Send),
) -> Result<Outcome, DbError> {
    options.validate()?;
    runner::set_rerun_hint(Some(
        "the port-forward and the password file are gone; run the same command again to reconnect".into(),
    ));
    let service = options.service;
    confirm::guard(
        env,
        &format!("connect to {}", service.title()),
        yes,
        Confirmation::YesNo,
    )?;
    // Find the client before touching the cluster: a missing psql should not cost a port-forward.
    let program = match (service, options.port_forward_only) {
        (Service::Postgres, false) => Some(shared::tools::find("psql")?),
        (Service::Redis, false) => Some(shared::tools::find("redis-cli")?),
        _ => None,
    };
    let namespace = env.namespace.as_str();
    let credentials = secrets::read_credentials(api, namespace, service).await?;

    if options.external {
        let endpoint = &service.endpoints(env).external;
        let (host, port) = parse_host_port(endpoint).map_err(DbError::Usage)?;
        return match program {
            Some(program) => {
                run_with_passfile(&program, service, &host, port, &credentials, &options.client_args).await
            }
            None => {
                print_line(
                    out,
                    &format!(
                        "RabbitMQ (external): amqp://{host}:{port}/ — {}",
                        describe_credentials(&credentials, options.show_credentials)
                    ),
                )?;
                Ok(Outcome::Clean)
            }
        };
    }

    let (service_name, service_port) = catalog::connect_target(service, options.read_only);
    let backend = resolve_service(api, namespace, service_name, service_port).await?;
    let pods: Api<Pod> = Api::namespaced(api.client().clone(), namespace);
    let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, options.local_port.unwrap_or(0)));
    let forward = PortForward::start(pods.clone(), &backend.pod, backend.port, bind).await?;
    let local = forward.local_addr();
    // Said in the log always, and to the user when the forward is what the command leaves running.
    let forwarding = format!(
        "{local} -> {} (Service {service_name}, namespace {namespace})",
        forward.target()
    );
    tracing::info!("forwarding {forwarding}");

    if service == Service::Rabbitmq {
        let ctrl_c = CtrlC::listen()?;
        let management = PortForward::start(
            pods,
            &backend.pod,
            catalog::MANAGEMENT_PORT,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .await?;
        print_line(out, &format!("Forwarding {forwarding}"))?;
        print_line(out, &format!("AMQP: amqp://{local}/"))?;
        print_line(
            out,
            &format!("Management UI: http://{}/", management.local_addr()),
        )?;
        print_line(
            out,
            &format!(
                "Credentials: {}",
                describe_credentials(&credentials, options.show_credentials)
            ),
        )?;
        print_line(out, "Press Ctrl-C to stop.")?;
        return ctrl_c.wait().await;
    }
    if options.port_forward_only {
        let ctrl_c = CtrlC::listen()?;
        print_line(out, &format!("Forwarding {forwarding}"))?;
        print_line(
            out,
            &format!(
                "{}: host {} port {}, {}",
                service.title(),
                local.ip(),
                local.port(),
                describe_credentials(&credentials, options.show_credentials)
            ),
        )?;
        print_line(out, "Press Ctrl-C to stop.")?;
        return ctrl_c.wait().await;
    }
    let program = program.expect("client found above");
    let outcome = run_with_passfile(
        &program,
        service,
        &local.ip().to_string(),
        local.port(),
        &credentials,
        &options.client_args,
    )
    .await;
    if let Some(error) = forward.last_error() {
        tracing::warn!("port-forward to {}: {error}", forward.target());
    }
    outcome
}

async fn run_with_passfile(
    program: &Path,
    service: Service,
    host: &str,
    port: u16,
    credentials: &Credentials,
    args: &[OsString],
) -> Result<Outcome, DbError> {
    let passfile = match service {
        Service::Postgres => Some(write_pgpass(host, port, credentials)?),
        _ => None,
    };
    let command = client_command(
        program,
        service,
        host,
        port,
        credentials,
        passfile.as_ref().map(|f| f.path()),
        args,
    );
    let outcome = run_client(command, program).await;
    drop(passfile);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Password;
    use std::time::Duration;

    fn pg_credentials(password: &str) -> Credentials {
        Credentials {
            service: Service::Postgres,
            secret: Some("database-app".into()),
            user: Some("app".into()),
            password: Some(Password::new(password)),
            database: Some("app".into()),
        }
    }

    #[test]
    fn pgpass_is_private_escaped_and_removed() {
        let file = write_pgpass("127.0.0.1", 5432, &pg_credentials("a:b\\c")).unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert_eq!(text, "127.0.0.1:5432:app:app:a\\:b\\\\c\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let path = file.path().to_path_buf();
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn the_password_is_never_an_argument() {
        let credentials = pg_credentials("hunter2");
        let command = client_command(
            Path::new("psql"),
            Service::Postgres,
            "127.0.0.1",
            1,
            &credentials,
            None,
            &["-c".into(), "select 1".into()],
        );
        let args: Vec<_> = command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["-c", "select 1"]);
        let redis = Credentials {
            service: Service::Redis,
            user: None,
            database: None,
            ..credentials
        };
        let command = client_command(
            Path::new("redis-cli"),
            Service::Redis,
            "127.0.0.1",
            7,
            &redis,
            None,
            &["PING".into()],
        );
        let args: Vec<_> = command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args, ["-h", "127.0.0.1", "-p", "7", "PING"]);
        let auth = command
            .as_std()
            .get_envs()
            .find(|(k, _)| *k == "REDISCLI_AUTH")
            .and_then(|(_, v)| v);
        assert_eq!(
            auth.map(|v| v.to_string_lossy().into_owned()),
            Some("hunter2".to_string())
        );
        assert!(!describe_credentials(&redis, false).contains("hunter2"));
    }

    #[test]
    fn option_combinations_are_checked() {
        let base = ConnectOptions {
            env: "staging".into(),
            service: Service::Redis,
            read_only: true,
            local_port: None,
            port_forward_only: false,
            external: false,
            show_credentials: false,
            client_args: vec![],
            timeout: Duration::from_secs(1),
        };
        assert!(
            base.validate()
                .unwrap_err()
                .to_string()
                .contains("--read-only applies to postgres")
        );
        let external = ConnectOptions {
            read_only: false,
            external: true,
            port_forward_only: true,
            ..base.clone()
        };
        assert!(external.validate().is_err());
        let rabbit = ConnectOptions {
            read_only: false,
            service: Service::Rabbitmq,
            client_args: vec!["x".into()],
            ..base
        };
        assert!(rabbit.validate().is_err());
    }
}

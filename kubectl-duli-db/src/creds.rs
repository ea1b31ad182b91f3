//! `db creds`: how applications log in to each service — host, port, user, database and the Secret the
//! values come from; the password only with `--show` (which asks first in production). Output as a table,
//! `-o json|yaml`, or `-o env`: `export` lines for shells.

use serde::Serialize;
use shared::api::ApiClient;

use crate::DbError;
use crate::catalog::Service;
use crate::cli::CredsOptions;
use crate::secrets::{self, Credentials};
use shared::confirm::{self, Confirmation};
use shared::environment::{Environment, parse_host_port};

/// `-o` of `creds`: the shared formats plus `env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredsFormat {
    /// Table.
    Table,
    /// JSON / YAML document.
    Document(shared::output::OutputFormat),
    /// `export NAME='value'` lines.
    Env,
}

/// One service's login data, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialsView {
    /// `postgres`, `redis` or `rabbitmq`.
    pub service: Service,
    /// The Secret the values come from (`null`: Redis without a password).
    pub secret: Option<String>,
    /// In-cluster host (from the environment file).
    pub host: String,
    /// In-cluster port.
    pub port: u16,
    /// External `host:port`.
    pub external: String,
    /// User name (`null` for Redis).
    pub user: Option<String>,
    /// Database (PostgreSQL only).
    pub database: Option<String>,
    /// The password: only with `--show`, else `null`.
    pub password: Option<String>,
}

impl CredentialsView {
    /// Build the view; the password is included only when `show`.
    pub fn new(env: &Environment, credentials: &Credentials, show: bool) -> Result<Self, DbError> {
        let endpoints = credentials.service.endpoints(env);
        let (host, port) = parse_host_port(&endpoints.internal).map_err(DbError::Usage)?;
        Ok(CredentialsView {
            service: credentials.service,
            secret: credentials.secret.clone(),
            host,
            port,
            external: endpoints.external.clone(),
            user: credentials.user.clone(),
            database: credentials.database.clone(),
            password: show
                .then(|| credentials.password.as_ref().map(|p| p.expose().to_string()))
                .flatten(),
        })
    }

    /// `export` lines for this service (the password line only when shown).
    pub fn export_lines(&self, namespace: &str) -> Vec<String> {
        let source = self
            .secret
            .as_deref()
            .map_or("no password Secret".to_string(), |s| format!("Secret {s}"));
        let mut lines = vec![format!("# {}: {source} in namespace {namespace}", self.service)];
        let mut export =
            |name: &str, value: &str| lines.push(format!("export {name}={}", shell_quote(value)));
        let port = self.port.to_string();
        match self.service {
            Service::Postgres => {
                export("PGHOST", &self.host);
                export("PGPORT", &port);
                if let Some(user) = &self.user {
                    export("PGUSER", user);
                }
                if let Some(database) = &self.database {
                    export("PGDATABASE", database);
                }
                if let Some(password) = &self.password {
                    export("PGPASSWORD", password);
                }
            }
            Service::Redis => {
                export("REDIS_HOST", &self.host);
                export("REDIS_PORT", &port);
                if let Some(password) = &self.password {
                    export("REDISCLI_AUTH", password);
                }
            }
            Service::Rabbitmq => {
                export("RABBITMQ_HOST", &self.host);
                export("RABBITMQ_PORT", &port);
                if let Some(user) = &self.user {
                    export("RABBITMQ_USERNAME", user);
                }
                if let Some(password) = &self.password {
                    export("RABBITMQ_PASSWORD", password);
                }
            }
        }
        lines
    }
}

/// Quote for POSIX shells: `'…'` with embedded quotes as `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// The printed document of `creds -o json|yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct CredsReport {
    /// Environment name.
    pub environment: String,
    /// Its namespace.
    pub namespace: String,
    /// One entry per service asked for.
    pub services: Vec<CredentialsView>,
}

/// Render `report` in `format` (table, document or export lines).
pub fn render(report: &CredsReport, format: CredsFormat) -> anyhow::Result<String> {
    Ok(match format {
        CredsFormat::Document(format) => shared::output::to_document(report, format)?,
        CredsFormat::Env => {
            let mut text = String::new();
            for view in &report.services {
                for line in view.export_lines(&report.namespace) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        }
        CredsFormat::Table => {
            let mut table = shared::output::table([
                "SERVICE", "HOST", "PORT", "USER", "DATABASE", "SECRET", "PASSWORD",
            ]);
            for view in &report.services {
                table.add_row(crate::printable_row(vec![
                    view.service.to_string(),
                    view.host.clone(),
                    view.port.to_string(),
                    view.user.clone().unwrap_or_else(|| "-".into()),
                    view.database.clone().unwrap_or_else(|| "-".into()),
                    view.secret.clone().unwrap_or_else(|| "-".into()),
                    match (&view.password, &view.secret) {
                        (Some(password), _) => password.clone(),
                        (None, Some(_)) => "(hidden: --show)".into(),
                        (None, None) => "-".into(),
                    },
                ]));
            }
            format!("{table}\n")
        }
    })
}

/// Read the credentials of the requested services (all three by default) in `env`, concurrently; `yes` is the
/// global `--yes` (prod confirmed in advance for `--show`).
pub async fn run(
    api: &ApiClient,
    env: &Environment,
    options: &CredsOptions,
    yes: bool,
) -> Result<CredsReport, DbError> {
    let show = options.show;
    let services = options
        .service
        .map_or_else(|| Service::ALL.to_vec(), |service| vec![service]);
    if show {
        confirm::guard(env, "show the data service passwords", yes, Confirmation::YesNo)?;
    }
    let reads = services
        .iter()
        .map(|service| secrets::read_credentials(api, &env.namespace, *service));
    let credentials = futures::future::try_join_all(reads).await?;
    let services = credentials
        .iter()
        .map(|c| CredentialsView::new(env, c, show))
        .collect::<Result<_, _>>()?;
    Ok(CredsReport {
        environment: env.name.clone(),
        namespace: env.namespace.clone(),
        services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Password;

    fn env() -> Environment {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        Environment::load(&shared::repo::Repo::at(root).unwrap(), "staging").unwrap()
    }

    fn report(show: bool) -> CredsReport {
        let pg = Credentials {
            service: Service::Postgres,
            secret: Some("database-app".into()),
            user: Some("app".into()),
            password: Some(Password::new("it's-secret")),
            database: Some("app".into()),
        };
        let redis = Credentials {
            service: Service::Redis,
            secret: None,
            user: None,
            password: None,
            database: None,
        };
        let env = env();
        CredsReport {
            environment: "staging".into(),
            namespace: "staging".into(),
            services: vec![
                CredentialsView::new(&env, &pg, show).unwrap(),
                CredentialsView::new(&env, &redis, show).unwrap(),
            ],
        }
    }

    #[test]
    fn export_lines_quote_and_hide_the_password() {
        let text = render(&report(true), CredsFormat::Env).unwrap();
        assert!(
            text.contains("export PGHOST='database-rw.staging.svc.cluster.local'\n"),
            "{text}"
        );
        assert!(text.contains("export PGPORT='5432'\n"));
        assert!(text.contains("export PGPASSWORD='it'\\''s-secret'\n"), "{text}");
        assert!(text.contains("export REDIS_HOST='redis-master.staging.svc.cluster.local'"));
        assert!(!text.contains("REDISCLI_AUTH"));
        let hidden = render(&report(false), CredsFormat::Env).unwrap();
        assert!(!hidden.contains("secret'"), "{hidden}");
        assert!(!hidden.contains("PGPASSWORD"));
    }

    #[test]
    fn table_and_json_hide_the_password_without_show() {
        let table = render(&report(false), CredsFormat::Table).unwrap();
        assert!(table.contains("(hidden: --show)"), "{table}");
        assert!(!table.contains("it's-secret"));
        let json = render(
            &report(false),
            CredsFormat::Document(shared::output::OutputFormat::Json),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["services"][0]["password"], serde_json::Value::Null);
        assert_eq!(value["services"][0]["secret"], "database-app");
        assert_eq!(value["services"][0]["port"], 5432);
    }
}

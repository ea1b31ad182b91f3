//! Rendering the ArgoCD Applications: `gitops/applications/*.yml.j2`, Jinja2 via minijinja.
//!
//! The environment file's keys are the templates' top-level variables (`namespace`, `gitops.repo_url`,
//! `sizes.backend.replicas`, …). Undefined variables are errors (strict mode) that name the template and
//! line. Whitespace handling matches Python Jinja2 as Ansible configures it (`trim_blocks`,
//! `lstrip_blocks`, trailing newline kept), and minijinja-contrib's Python-compatible methods
//! (`dict.items()`, `str.upper()`, …) are available, plus `b64encode`, `to_yaml`, `to_json` and
//! `required` filters.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use shared::fsio::{CONFIG_FILE_LIMIT, read_to_string_bounded};
use shared::paths::APPLICATION_TEMPLATE_SUFFIX;

use super::manifests::{self, Object};

/// Where the Application templates live, relative to the repository root.
pub use shared::paths::APPLICATIONS_DIR;

/// Errors rendering Application templates.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template or the environment file is too large, not a regular file, or unreadable.
    #[error(transparent)]
    File(#[from] shared::fsio::FsError),
    /// The environment file is not a YAML mapping.
    #[error("environment file {path} cannot be used as template variables: {message}")]
    Variables {
        /// The environment file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Template syntax or rendering error.
    #[error("{file}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        /// The template, relative to the repository root.
        file: String,
        /// The line, when known.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// The rendered text is not valid YAML.
    #[error("{0}")]
    Manifest(#[from] manifests::ManifestError),
}

/// One rendered Application template.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The component: the file name without `.yml.j2`.
    pub component: String,
    /// The template path relative to the repository root.
    pub file: String,
    /// The rendered text.
    pub text: String,
    /// Its objects.
    pub objects: Vec<Object>,
}

/// The templates in `dir`, sorted by name.
pub fn templates(dir: &Path) -> Result<Vec<PathBuf>, GitopsError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(dir).map_err(|source| GitopsError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(APPLICATION_TEMPLATE_SUFFIX))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Render every template of `repo_root/gitops/applications` with the variables of `env_file`.
pub fn render_all(repo_root: &Path, env_file: &Path) -> Result<Vec<Rendered>, GitopsError> {
    let env_text = read_to_string_bounded(env_file, CONFIG_FILE_LIMIT, "environment file")?;
    let variables: serde_json::Value =
        serde_saphyr::from_str(&env_text).map_err(|err| GitopsError::Variables {
            path: env_file.to_path_buf(),
            message: shared::yaml_error::describe(&err),
        })?;
    if !variables.is_object() {
        return Err(GitopsError::Variables {
            path: env_file.to_path_buf(),
            message: "not a mapping".into(),
        });
    }
    let dir = repo_root.join(APPLICATIONS_DIR);
    let files = templates(&dir)?;
    let mut jinja = environment();
    let mut names = Vec::new();
    for file in &files {
        let source = read_to_string_bounded(file, CONFIG_FILE_LIMIT, "Application template")?;
        let name = format!(
            "{APPLICATIONS_DIR}/{}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        jinja
            .add_template_owned(name.clone(), source)
            .map_err(|err| template_error(&name, &err))?;
        names.push(name);
    }
    let mut rendered = Vec::new();
    for name in names {
        let template = jinja
            .get_template(&name)
            .map_err(|err| template_error(&name, &err))?;
        let text = template
            .render(minijinja::value::Serde(&variables))
            .map_err(|err| template_error(&name, &err))?;
        let component = name
            .rsplit('/')
            .next()
            .unwrap_or(&name)
            .trim_end_matches(APPLICATION_TEMPLATE_SUFFIX)
            .to_string();
        let objects = manifests::split(&text, &name)?;
        rendered.push(Rendered {
            component,
            file: name,
            text,
            objects,
        });
    }
    Ok(rendered)
}

/// Where Argo CD installs a chart of `helm/`: its Application's release name and destination namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `spec.source.helm.releaseName`, else the chart's directory name (what render has always used).
    pub release: String,
    /// `spec.destination.namespace`.
    pub namespace: String,
}

/// The destination of each chart of `helm/` (by directory name) that a rendered Application deploys
/// (`spec.source.path: helm/<chart>`). A chart several Applications deploy takes the one whose release
/// name is the chart's own (the release `helm duli-render` renders); with none such it has no entry.
pub fn destinations(applications: &[Rendered]) -> std::collections::BTreeMap<String, Destination> {
    let mut by_chart: std::collections::BTreeMap<String, Vec<Destination>> = Default::default();
    for object in applications.iter().flat_map(|a| &a.objects) {
        if object.kind() != "Application" {
            continue;
        }
        let text = |pointer: &str| object.value.pointer(pointer).and_then(serde_json::Value::as_str);
        let Some(chart) = text("/spec/source/path")
            .and_then(|path| path.trim_end_matches('/').strip_prefix("helm/"))
            .filter(|chart| !chart.is_empty() && !chart.contains('/'))
        else {
            continue;
        };
        let Some(namespace) = text("/spec/destination/namespace") else {
            continue;
        };
        let release = text("/spec/source/helm/releaseName").unwrap_or(chart);
        by_chart.entry(chart.to_string()).or_default().push(Destination {
            release: release.to_string(),
            namespace: namespace.to_string(),
        });
    }
    by_chart
        .into_iter()
        .filter_map(|(chart, mut found)| {
            if found.len() > 1 {
                found.retain(|d| d.release == chart);
            }
            (found.len() == 1).then(|| (chart, found.remove(0)))
        })
        .collect()
}

/// The Jinja environment: strict undefined, Jinja2 whitespace rules, Python-compatible methods.
pub fn environment() -> Environment<'static> {
    let mut jinja = Environment::new();
    jinja.set_undefined_behavior(UndefinedBehavior::Strict);
    jinja.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("default delimiters are valid"),
    );
    minijinja_contrib::add_to_environment(&mut jinja);
    jinja.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    jinja.add_filter("b64encode", |value: String| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(value)
    });
    jinja.add_filter("to_json", |value: Value| {
        serde_json::to_string(&value)
            .map_err(|err| minijinja::Error::new(ErrorKind::InvalidOperation, err.to_string()))
    });
    jinja.add_filter("to_yaml", |value: Value| {
        serde_saphyr::to_string(&value)
            .map_err(|err| minijinja::Error::new(ErrorKind::InvalidOperation, err.to_string()))
    });
    jinja.add_filter("required", |value: Value, message: Option<String>| {
        if value.is_undefined() || value.is_none() {
            Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                message.unwrap_or_else(|| "a required value is missing".into()),
            ))
        } else {
            Ok(value)
        }
    });
    jinja
}

fn template_error(name: &str, err: &minijinja::Error) -> GitopsError {
    let mut message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    if err.kind() == ErrorKind::UndefinedError {
        message.push_str(" (the environment file has no such key)");
    }
    GitopsError::Template {
        file: err.name().unwrap_or(name).to_string(),
        line: err.line(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(template: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(APPLICATIONS_DIR)).unwrap();
        std::fs::write(tmp.path().join(APPLICATIONS_DIR).join("backend.yml.j2"), template).unwrap();
        std::fs::write(
            tmp.path().join("env.yml"),
            "namespace: staging\nsizes:\n  backend: {replicas: 2}\n",
        )
        .unwrap();
        tmp
    }

    #[test]
    fn environment_keys_are_top_level_variables() {
        let tmp = repo_with(
            "kind: Application\nmetadata:\n  name: backend-{{ namespace }}\n{% if sizes.backend.replicas > 1 %}\n  labels: {ha: \"yes\"}\n{% endif %}\nspec: {}\n",
        );
        let rendered = render_all(tmp.path(), &tmp.path().join("env.yml")).unwrap();
        assert_eq!(rendered.len(), 1);
        assert_eq!(rendered[0].component, "backend");
        assert_eq!(
            rendered[0].text,
            "kind: Application\nmetadata:\n  name: backend-staging\n  labels: {ha: \"yes\"}\nspec: {}\n"
        );
        assert_eq!(
            rendered[0].objects[0].source,
            "gitops/applications/backend.yml.j2"
        );
    }

    #[test]
    fn undefined_variable_names_file_and_line() {
        let tmp = repo_with(
            "kind: Application\nmetadata:\n  name: {{ namespace }}\n  labels: {x: \"{{ sizes.backend.cpu }}\"}\n",
        );
        let err = render_all(tmp.path(), &tmp.path().join("env.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gitops/applications/backend.yml.j2 line 4"), "{err}");
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn destinations_map_charts_to_their_application() {
        let tmp = repo_with(
            "kind: Application\nmetadata: {name: op}\nspec:\n  source: {path: helm/op, helm: {releaseName: operator}}\n  destination: {namespace: op-system}\n---\nkind: Application\nmetadata: {name: staging-secrets}\nspec:\n  source: {path: helm/secrets}\n  destination: {namespace: \"{{ namespace }}\"}\n---\nkind: Application\nmetadata: {name: platform-secrets}\nspec:\n  source: {path: helm/secrets, helm: {releaseName: platform-secrets}}\n  destination: {namespace: kube-system}\n---\nkind: AppProject\nmetadata: {name: p}\nspec: {}\n",
        );
        let rendered = render_all(tmp.path(), &tmp.path().join("env.yml")).unwrap();
        let found = destinations(&rendered);
        let one = |release: &str, namespace: &str| Destination {
            release: release.into(),
            namespace: namespace.into(),
        };
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found["op"], one("operator", "op-system"));
        // Two Applications deploy it: the one with the chart's own release name.
        assert_eq!(found["secrets"], one("secrets", "staging"));
    }

    #[test]
    fn pycompat_methods_filters_and_jinja2_whitespace() {
        let jinja = environment();
        let source = "{% for k, v in sizes.items() %}\n{{ k }}={{ v.replicas }} {{ namespace.upper() }} {{ 'a' | b64encode }}\n{% endfor %}\n";
        let context = serde_json::json!({"namespace": "staging", "sizes": {"backend": {"replicas": 2}}});
        let text = jinja
            .render_str(source, minijinja::value::Serde(&context))
            .unwrap();
        assert_eq!(text, "backend=2 STAGING YQ==\n");
        let err = jinja.render_str(
            "{{ nothing | required('set nothing') }}",
            minijinja::value::Serde(&context),
        );
        assert!(err.is_err());
    }
}

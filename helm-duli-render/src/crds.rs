//! The CRDs custom resources are validated against: from `--crds DIR`/`DULI_CRDS`, from the cluster
//! (`--crds-from-cluster`), and from CRDs the rendered charts themselves contain.
//!
//! Every file is parsed up front (a broken file is an error naming it, with line and column), but a
//! version's schema is rewritten ([`super::schema::rewrite`]) and compiled only when an object of that
//! kind shows up, so a run pays only for the kinds it renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::schema;

/// Errors loading CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A `--crds` directory does not exist or cannot be listed.
    #[error("cannot read CRD directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read or is not valid YAML.
    #[error("broken CRD file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A file named on the command line holds no CRD (a directory may hold other files; a named file
    /// is meant to be a CRD file, so anything else there is a mistake that would validate nothing).
    #[error(
        "{path} holds no CustomResourceDefinition: --crds takes CRD files or directories of them; name the CRD file or its directory"
    )]
    NotCrd {
        /// The file.
        path: PathBuf,
    },
    /// A CRD file is too large, not a regular file, or unreadable.
    #[error(transparent)]
    Read(#[from] shared::fsio::FsError),
    /// A chart's CRDs (its `crds/` and its subcharts') could not be read.
    #[error(transparent)]
    Chart(#[from] super::upstream_values::UpstreamError),
    /// Reading CRDs from the cluster failed.
    #[error("cannot read CRDs from the cluster: {message}")]
    Cluster {
        /// Why.
        message: String,
    },
}

/// The largest CRD file read (the biggest upstream CRDs are a few MiB of OpenAPI schema).
pub const CRD_FILE_LIMIT: u64 = 8 * 1024 * 1024;

/// Group, version, kind.
pub type Gvk = (String, String, String);

struct Entry {
    source: String,
    openapi: Value,
}

/// What a custom resource's validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the field, e.g. `spec.instances`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// Known CRD schemas by group, version and kind (a clone shares the parsed schemas).
#[derive(Default, Clone)]
pub struct CrdStore {
    entries: BTreeMap<Gvk, Arc<Entry>>,
}

impl std::fmt::Debug for CrdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdStore")
            .field("kinds", &self.entries.len())
            .finish()
    }
}

/// The YAML/JSON files under the given directories (recursively), sorted. A file given by name must at
/// least mention `CustomResourceDefinition` (checked by text, since the files are parsed only when a
/// custom resource needs them).
pub fn files(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, CrdError> {
    let mut found = Vec::new();
    for dir in dirs {
        if dir.is_file() {
            let text = shared::fsio::read_bounded(dir, CRD_FILE_LIMIT, "CRD file")?;
            if !text
                .windows(b"CustomResourceDefinition".len())
                .any(|window| window == b"CustomResourceDefinition")
            {
                return Err(CrdError::NotCrd { path: dir.clone() });
            }
            found.push(dir.clone());
            continue;
        }
        walk(dir, &mut found)?;
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), CrdError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CrdError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            found.push(path);
        }
    }
    Ok(())
}

/// A cheap fingerprint of the CRD files (path, size, modification time) for the validation cache.
pub fn fingerprint(files: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        let metadata = std::fs::metadata(file).ok();
        let modified = metadata
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        hasher.update(format!(
            "{}\0{}\0{modified}\n",
            file.display(),
            metadata.map(|m| m.len()).unwrap_or_default()
        ));
    }
    super::cache::hex(&hasher.finalize())
}

impl CrdStore {
    /// Parse every file (on up to `jobs` threads); files without CRDs are ignored.
    pub fn load(files: &[PathBuf], jobs: usize) -> Result<Self, CrdError> {
        let jobs = jobs.clamp(1, files.len().max(1));
        let chunks: Vec<Vec<&PathBuf>> = (0..jobs)
            .map(|i| files.iter().skip(i).step_by(jobs).collect())
            .collect();
        let parsed: Vec<Result<Vec<(PathBuf, Value)>, CrdError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut docs = Vec::new();
                        for path in chunk {
                            for doc in parse_file(path)? {
                                docs.push((path.clone(), doc));
                            }
                        }
                        Ok(docs)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("CRD parser thread panicked"))
                .collect()
        });
        let mut store = CrdStore::default();
        let mut docs = Vec::new();
        for result in parsed {
            docs.extend(result?);
        }
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, doc) in docs {
            store.add(&doc, &path.display().to_string());
        }
        Ok(store)
    }

    /// Add the CRD in `doc` (ignored when it is not one). Returns how many versions were added.
    pub fn add(&mut self, doc: &Value, source: &str) -> usize {
        if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            return 0;
        }
        let spec = &doc["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str()) else {
            return 0;
        };
        let mut added = 0;
        let shared = spec.pointer("/validation/openAPIV3Schema");
        let versions: Vec<(String, Option<&Value>)> = match spec["versions"].as_array() {
            Some(versions) => versions
                .iter()
                .filter_map(|v| {
                    Some((
                        v["name"].as_str()?.to_string(),
                        v.pointer("/schema/openAPIV3Schema").or(shared),
                    ))
                })
                .collect(),
            None => spec["version"]
                .as_str()
                .map(|v| vec![(v.to_string(), shared)])
                .unwrap_or_default(),
        };
        for (version, openapi) in versions {
            let openapi = openapi.cloned().unwrap_or_else(
                || serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
            let entry = Entry {
                source: source.to_string(),
                openapi,
            };
            self.entries
                .insert((group.to_string(), version, kind.to_string()), Arc::new(entry));
            added += 1;
        }
        added
    }

    /// Add the CRDs of a file's text (e.g. from a chart package); `source` says where it came from.
    /// Returns how many versions were added.
    pub fn add_text(&mut self, text: &str, source: &str) -> Result<usize, CrdError> {
        let docs = parse_text(text, Path::new(source))?;
        Ok(docs.iter().map(|doc| self.add(doc, source)).sum())
    }

    /// The CRDs a chart directory ships outside its templates, as helm installs them: its `crds/`
    /// and those of its vendored subcharts (packages or directories in `charts/`) that are enabled by
    /// `values` (highest priority first; see
    /// [`UpstreamChartDir::enabled_crd_files`](super::upstream_values::UpstreamChartDir::enabled_crd_files)).
    pub fn add_chart_dir(&mut self, chart_dir: &Path, values: &[&Value]) -> Result<usize, CrdError> {
        let chart = super::upstream_values::UpstreamChartDir::open(chart_dir)?;
        let mut added = 0;
        for (source, text) in chart.enabled_crd_files(values) {
            added += self.add_text(&text, &source)?;
        }
        Ok(added)
    }

    /// Where the CRD of this `apiVersion`/`kind` came from (a `--crds` file, a chart, the cluster).
    pub fn source_of(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.entries
            .get(&gvk(api_version, kind))
            .map(|entry| entry.source.as_str())
    }

    /// Every known group/version/kind with where its CRD came from.
    pub fn sources(&self) -> impl Iterator<Item = (&Gvk, &str)> {
        self.entries
            .iter()
            .map(|(gvk, entry)| (gvk, entry.source.as_str()))
    }

    /// Add every CRD of `other`; on the same group/version/kind, `other`'s wins.
    pub fn extend(&mut self, other: CrdStore) {
        self.entries.extend(other.entries);
    }

    /// Number of known group/version/kinds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no CRD is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a CRD for this `apiVersion`/`kind` is known.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.entries.contains_key(&gvk(api_version, kind))
    }

    /// Validate a custom resource; `None` when no CRD for its kind is known.
    pub fn validate(&self, object: &Value) -> Option<Vec<Violation>> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let entry = self.entries.get(&gvk(api_version, kind))?;
        // Compile only the part of the schema this object uses: a full CRD schema has thousands of nodes.
        let validator = match schema::compile(&schema::rewrite(&schema::trim(&entry.openapi, object))) {
            Ok(validator) => validator,
            Err(message) => {
                return Some(vec![Violation {
                    path: "(root)".into(),
                    message: format!(
                        "the CRD schema from {} cannot be compiled: {message}",
                        entry.source
                    ),
                    fix: "fix or replace the CRD file".into(),
                }]);
            }
        };
        let mut instance = object.clone();
        schema::prune_nulls(&mut instance, &entry.openapi);
        let mut violations: Vec<Violation> = validator
            .iter_errors(&instance)
            .map(|error| {
                let mut violation = describe(&error, &entry.openapi, kind);
                violation.fix.push_str(&format!(" [CRD from {}]", entry.source));
                violation
            })
            .collect();
        violations.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
        violations.dedup();
        Some(violations)
    }

    /// Read the CRDs installed in a cluster.
    pub async fn add_from_cluster(
        &mut self,
        target: &shared::cluster::ClusterTarget,
    ) -> Result<usize, CrdError> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let cluster = target
            .connect(Some(std::time::Duration::from_secs(20)))
            .await
            .map_err(|err| CrdError::Cluster {
                message: err.to_string(),
            })?;
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(cluster.client);
        let list = api
            .list(&Default::default())
            .await
            .map_err(|err| CrdError::Cluster {
                message: format!("context `{}`: {err}", cluster.context),
            })?;
        let mut added = 0;
        for crd in list.items {
            let mut doc = serde_json::to_value(&crd).map_err(|err| CrdError::Cluster {
                message: err.to_string(),
            })?;
            doc["kind"] = Value::from("CustomResourceDefinition");
            added += self.add(&doc, &format!("cluster context `{}`", cluster.context));
        }
        Ok(added)
    }
}

fn gvk(api_version: &str, kind: &str) -> Gvk {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    (group.to_string(), version.to_string(), kind.to_string())
}

fn parse_file(path: &Path) -> Result<Vec<Value>, CrdError> {
    let text = shared::fsio::read_to_string_bounded(path, CRD_FILE_LIMIT, "CRD file")?;
    parse_text(&text, path)
}

/// Parse a CRD file's text; `path` names it in errors.
fn parse_text(text: &str, path: &Path) -> Result<Vec<Value>, CrdError> {
    let parse = |text: &str| {
        // CRD files are large (no limit on events, nodes or documents), but aliases, which CRDs do not
        // use, stay bounded and count against the scalar bytes, so a YAML bomb fails in milliseconds
        // instead of expanding into all memory.
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_events: usize::MAX,
                max_nodes: usize::MAX,
                max_documents: usize::MAX,
                max_depth: 1024,
            },
            alias_limits: serde_saphyr::alias_limits! {
                max_total_replayed_events: 10_000,
            },
        };
        serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(text, options)
    };
    // Descriptions are over half of a CRD's bytes and play no part in validation: parse without them,
    // and fall back to the file as it is (for exact error lines) when that does not work.
    parse(&without_descriptions(text))
        .or_else(|_| parse(text))
        .map_err(|err| CrdError::File {
            path: path.to_path_buf(),
            message: shared::yaml_error::describe(&err),
        })
}

/// The text with every `description: <scalar>` (and its continuation lines) replaced by
/// `description: ""`; a mapping value (a property named `description`) is left alone.
pub fn without_descriptions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() / 2);
    let mut skipping: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(level) = skipping {
            if line.trim().is_empty() || indent > level {
                continue;
            }
            skipping = None;
        }
        if let Some(rest) = line[indent..].strip_prefix("description:") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with(['{', '[', '&', '*', '!', '#']) {
                out.push_str(&line[..indent]);
                out.push_str("description: \"\"\n");
                skipping = Some(indent);
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

fn describe(error: &jsonschema::ValidationError<'_>, openapi: &Value, kind: &str) -> Violation {
    let pointer = error.instance_path().to_string();
    let path = schema::field_path(&pointer);
    let segments: Vec<String> = pointer
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let explain = format!(
        "kubectl explain {}.{}",
        kind.to_lowercase(),
        path.split('[').next().unwrap_or(&path)
    );
    if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
        let known = schema::known_properties(openapi, &segments);
        let names: Vec<String> = unexpected.iter().map(|u| u.to_string()).collect();
        let hints: Vec<String> = names
            .iter()
            .filter_map(|name| schema::closest(name, &known).map(|hint| format!("`{hint}` (not `{name}`)")))
            .collect();
        let at = if segments.is_empty() {
            String::new()
        } else {
            format!("{path}.")
        };
        let fields: Vec<String> = names.iter().map(|name| format!("`{at}{name}`")).collect();
        return Violation {
            path: path.clone(),
            message: format!(
                "unknown field {} (the CRD does not declare it)",
                fields.join(", ")
            ),
            fix: if hints.is_empty() {
                format!("remove it or check the spelling against the CRD ({explain})")
            } else {
                format!("did you mean {}?", hints.join(", "))
            },
        };
    }
    Violation {
        path: path.clone(),
        message: format!("{path}: {error}"),
        fix: format!("make the value match the CRD schema ({explain})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_crds() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds")
    }

    #[test]
    fn real_crds_catch_misspelled_and_mistyped_fields() {
        let files = files(&[shared_crds()]).unwrap();
        let store = CrdStore::load(&files, 2).unwrap();
        assert!(store.knows("postgresql.cnpg.io/v1", "Cluster"));
        let cluster: Value = serde_json::json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "database", "namespace": "staging"},
            "spec": {"instancez": 3, "storage": {"size": "10Gi"}},
        });
        let found = store.validate(&cluster).unwrap();
        assert!(
            found
                .iter()
                .any(|v| v.message.contains("spec.instancez") && v.fix.contains("did you mean `instances`")),
            "{found:?}"
        );
        let rabbit: Value = serde_json::json!({
            "apiVersion": "rabbitmq.com/v1beta1", "kind": "RabbitmqCluster",
            "metadata": {"name": "queue"},
            "spec": {"replicas": "three"},
        });
        let found = store.validate(&rabbit).unwrap();
        assert!(found.iter().any(|v| v.path == "spec.replicas"), "{found:?}");
        let good: Value = serde_json::json!({
            "apiVersion": "rabbitmq.com/v1beta1", "kind": "RabbitmqCluster",
            "metadata": {"name": "queue"},
            "spec": {"replicas": 3, "resources": {"limits": {"memory": "2Gi", "cpu": 1}}, "override": {"statefulSet": {"spec": {"template": {"spec": {"containers": []}}}}}},
        });
        assert_eq!(store.validate(&good).unwrap(), vec![]);
        assert!(
            store
                .validate(&serde_json::json!({"apiVersion": "x.io/v1", "kind": "Nope"}))
                .is_none()
        );
    }

    #[test]
    fn descriptions_go_but_description_properties_stay() {
        let text = "spec:\n  description: |-\n    long\n\n    text\n  properties:\n    description:\n      type: string\n      description: a\n        b\n    x: {}\n";
        assert_eq!(
            without_descriptions(text),
            "spec:\n  description: \"\"\n  properties:\n    description:\n      type: string\n      description: \"\"\n    x: {}\n"
        );
    }

    #[test]
    fn yaml_bombs_in_crd_files_fail_fast() {
        // Found by the crd_schema fuzz target: parsed without a budget, this 442-byte alias bomb took seconds
        // and 250 MB; one of 100 KB (a long anchored string replayed 10^6 times) took all memory and
        // aborted the process.
        let fuzz = "kind: CustomResourceDefinition\nspec:\n  group: bomb.duli.one\n  names: {kind: Bomb}\n  \
                    versions: [{name: v1}]\nlol:\n  a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n  \
                    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n  \
                    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n  \
                    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n  \
                    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
        let mut big = format!(
            "kind: CustomResourceDefinition\nlol:\n  a: &a \"{}\"\n",
            "x".repeat(100_000)
        );
        for (name, previous) in [("b", "a"), ("c", "b"), ("d", "c")] {
            let aliases = vec![format!("*{previous}"); 100].join(",");
            big.push_str(&format!("  {name}: &{name} [{aliases}]\n"));
        }
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in [("small.yaml", fuzz.to_string()), ("big.yaml", big)] {
            let path = tmp.path().join(name);
            std::fs::write(&path, text).unwrap();
            // Without the limit the small bomb parses (slowly) and the big one exhausts memory; with it,
            // both are a parse error naming the file and line.
            let err = CrdStore::load(&[path], 1).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("line"), "{err}");
        }
    }

    #[test]
    fn a_named_file_must_be_a_crd_file_but_a_directory_may_hold_others() {
        let tmp = tempfile::tempdir().unwrap();
        let config_map = tmp.path().join("configmap.yaml");
        std::fs::write(
            &config_map,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        )
        .unwrap();
        let err = files(std::slice::from_ref(&config_map)).unwrap_err().to_string();
        assert!(
            err.contains("configmap.yaml holds no CustomResourceDefinition"),
            "{err}"
        );
        assert_eq!(files(&[tmp.path().to_path_buf()]).unwrap(), vec![config_map]);
        let crd = tmp.path().join("crd.yaml");
        std::fs::write(&crd, "kind: CustomResourceDefinition\n").unwrap();
        assert_eq!(files(std::slice::from_ref(&crd)).unwrap(), vec![crd]);
    }

    #[test]
    fn broken_file_is_named_with_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("ok.yaml"), "kind: ConfigMap\n").unwrap();
        std::fs::write(
            tmp.path().join("broken.yaml"),
            "kind: CustomResourceDefinition\nspec:\n  group: [x\n",
        )
        .unwrap();
        let files = files(&[tmp.path().to_path_buf()]).unwrap();
        let err = CrdStore::load(&files, 2).unwrap_err().to_string();
        assert!(err.contains("broken.yaml"), "{err}");
        assert!(err.contains("line"), "{err}");
    }
}

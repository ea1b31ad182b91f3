//! The bad-input corpus of `kubectl duli env` (issue #9): every case runs `up`, `plan`, `status` or `down`
//! through the real kubectl dispatch and checks what an operator relies on — the exit code (2, or the
//! documented one), one `error:` line naming the offending file, field or resource and what to do, nothing
//! on stdout, and that nothing was applied (the stand-in saw no write request and its objects did not move)
//! or written (the run's TMPDIR stays empty and the repository copy is unchanged; `up` and `down` may only
//! add their log file and their environment lock under `DULI_STATE_DIR`).
//!
//! Cases are tables, one line each; a group shares one world and runs its cases concurrently. The catalogue
//! of messages prints with `--nocapture`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::join_all;
use kube_standin::StandIn;
use testkit::corpus::{
    Case, changed_paths, kubeconfig_for, snapshot_files, store_state, write, writes_except,
};
use testkit::servers::{closed_port, silent_server, status_server};

use super::support::{Run, World, copy_dir, workspace};
use testkit::process::signal_group;

const FAST: Duration = Duration::from_millis(200);

/// Requests that could have changed something: anything but GET, except the permission reviews preflight
/// creates (they store nothing) and server-side dry runs.
fn writes(api: &StandIn) -> Vec<String> {
    writes_except(api, |r| {
        r.path.contains("selfsubjectaccessreviews") || r.query.contains("dryRun=All")
    })
}

/// A copy of the world's repository named `name`, changed by `edit`; returns its root.
fn variant(world: &World, name: &str, edit: impl FnOnce(&Path)) -> String {
    let root = world.dir.path().join("variants").join(name);
    copy_dir(&world.repo.join("gitops"), &root.join("gitops"));
    copy_dir(&world.repo.join("helm"), &root.join("helm"));
    edit(&root);
    root.display().to_string()
}

fn edit_file(path: &Path, change: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let changed = change(text.clone());
    assert_ne!(changed, text, "the edit of {} changed nothing", path.display());
    std::fs::write(path, changed).unwrap();
}

/// Run one case and check it.
async fn check(world: &World, case: &Case) -> Run {
    let tmp = world.dir.path().join("tmp").join(case.name.replace(' ', "-"));
    std::fs::create_dir_all(&tmp).unwrap();
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let mut command = world.command(&args);
    // Each case its own state directory: concurrent cases of one environment would otherwise meet at the
    // environment's lock (tested on its own) instead of reaching the input under test.
    let state = world.dir.path().join("state").join(case.name.replace(' ', "-"));
    command
        .env("TMPDIR", &tmp)
        .env("DULI_STATE_DIR", &state)
        .current_dir(&tmp);
    for (name, value) in &case.env {
        command.env(name, value);
    }
    let started = Instant::now();
    let child = command.spawn().unwrap();
    let output = tokio::time::timeout(case.within + Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{}: still running after {:?}", case.name, case.within))
        .unwrap();
    let run = Run::from_output(&output, started.elapsed());
    case.verify(&run);
    // Beyond the shared checks: no raw client error text at all, and no panic.
    for raw in ["HyperError", "Error {", "panicked"] {
        assert!(
            !run.stderr.contains(raw),
            "{}: raw error text {raw:?}:\n{}",
            case.name,
            run.all()
        );
    }
    assert!(
        std::fs::read_dir(&tmp).unwrap().next().is_none(),
        "{}: files left in TMPDIR",
        case.name
    );
    run
}

/// Run the cases concurrently against one world; nothing may be applied or written but log files.
async fn check_all(world: &World, cases: Vec<Case>) {
    let before_files = snapshot_files(world.dir.path());
    let before_store = store_state(&world.api);
    world.api.clear_requests();
    join_all(cases.iter().map(|case| check(world, case))).await;
    assert_eq!(writes(&world.api), Vec::<String>::new(), "no request may write");
    assert_eq!(
        store_state(&world.api),
        before_store,
        "the stand-in's objects changed"
    );
    // `up` and `down` may add their log file and their environment lock (in each case's state directory),
    // nothing else.
    let state = world.dir.path().join("state");
    let after_files = snapshot_files(world.dir.path());
    let changed: Vec<PathBuf> = changed_paths(&before_files, &after_files)
        .into_iter()
        .filter(|path| {
            !path
                .strip_prefix(&state)
                .ok()
                .and_then(|rest| rest.components().nth(1))
                .is_some_and(|dir| dir.as_os_str() == "logs" || dir.as_os_str() == "locks")
        })
        .collect();
    assert!(changed.is_empty(), "files written or changed: {changed:?}");
}

/// The line (1-based) of `staging.yml` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not found"))
        + 1
}

/// A YAML bomb: nine levels of nine aliases (9^9 strings when expanded), in a known field.
fn yaml_bomb() -> String {
    let mut text =
        String::from("team: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for level in 1..9 {
        let prev = format!("*a{}", level - 1);
        let items = [prev.as_str(); 9].join(",");
        text.push_str(&format!("x{level}: &a{level} [{items}]\n"));
    }
    text
}

/// Environments, the repository and the flags: every case fails before anything reaches the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_inputs() {
    let world = World::start(FAST).await;
    let staging = world.repo.join("gitops/environments/staging.yml");
    let staging_text = std::fs::read_to_string(&staging).unwrap();
    let env_file = |root: &str| format!("{root}/gitops/environments/staging.yml");

    let wrong_type = variant(&world, "wrong-type", |root| {
        edit_file(&root.join("gitops/environments/staging.yml"), |t| {
            t.replace("backend: {replicas: 1,", "backend: {replicas: one,")
        })
    });
    let wrong_type_line = line_of(&staging_text, "backend: {replicas: 1,");
    let unknown_key = variant(&world, "unknown-key", |root| {
        edit_file(&root.join("gitops/environments/staging.yml"), |t| {
            t.replace("team: platform\n", "team: platform\nteem: platform\n")
        })
    });
    let unknown_key_line = line_of(&staging_text, "team: platform") + 1;
    let duplicate = variant(&world, "duplicate", |root| {
        edit_file(&root.join("gitops/environments/staging.yml"), |t| {
            format!("{t}namespace: other\n")
        })
    });
    let bomb = variant(&world, "bomb", |root| {
        edit_file(&root.join("gitops/environments/staging.yml"), |t| {
            t.replace("team: platform\n", &yaml_bomb())
        })
    });
    let empty = variant(&world, "empty", |root| {
        std::fs::write(root.join("gitops/environments/staging.yml"), "").unwrap()
    });
    let undefined = variant(&world, "undefined", |root| {
        edit_file(&root.join("gitops/applications/backend.yml.j2"), |t| {
            t.replace("team: {{ team }}", "team: {{ owner_team }}")
        })
    });
    let catalog_yaml = variant(&world, "catalog-yaml", |root| {
        edit_file(&root.join("gitops/platform.yml"), |t| {
            t.replace(
                "      message: argo cd fixture",
                "      message: [argo cd fixture",
            )
        })
    });
    let catalog_values = variant(&world, "catalog-values", |root| {
        edit_file(&root.join("gitops/platform.yml"), |t| {
            t.replace(
                "    values:\n      message: argo cd fixture",
                "    values: [argo, cd]",
            )
        })
    });
    let catalog_bomb = variant(&world, "catalog-bomb", |root| {
        edit_file(&root.join("gitops/platform.yml"), |t| {
            let bomb = yaml_bomb().replace("team:", "a:").replace('\n', "\n  ");
            let t = t.replace("charts:\n", &format!("anchors:\n  {bomb}\ncharts:\n"));
            t.replace("      message: argo cd fixture", "      message: *a8")
        })
    });
    let sealed_yaml = variant(&world, "sealed-yaml", |root| {
        edit_file(&root.join("helm/secrets/sealed/staging/redis-secret.yml"), |t| {
            format!("{t}\n  bad: [unclosed\n")
        })
    });

    let inputs = world.dir.path().join("inputs");
    let token = "kubeconfig-TOKEN-PLAINTEXT-9Qz";
    let malformed = write(
        &inputs,
        "malformed.kubeconfig",
        kubeconfig_for(&world.api.url()).replace("user: {}", &format!("user: {{token: \"{token}}}")),
    );
    let empty_kubeconfig = write(&inputs, "empty.kubeconfig", "");
    let kubeconfig = world.kubeconfig.display().to_string();
    // No helm: only the plugin itself on PATH.
    let no_helm = world.dir.path().join("bin-without-helm");
    std::fs::create_dir_all(&no_helm).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_kubectl-duli-env"),
        no_helm.join("kubectl-duli-env"),
    )
    .unwrap();
    let no_helm_path = format!("{}:/usr/bin:/bin", no_helm.display());

    // Issue #17: files that are not what they claim, read with a bound (it used to read /dev/zero until
    // memory ran out).
    // They live outside the world's directory, whose files check_all reads to see that nothing changed.
    let hostile = tempfile::tempdir().unwrap();
    let hostile_variant = |name: &str, edit: &dyn Fn(&Path)| {
        let root = hostile.path().join(name);
        copy_dir(&world.repo.join("gitops"), &root.join("gitops"));
        copy_dir(&world.repo.join("helm"), &root.join("helm"));
        edit(&root);
        root.display().to_string()
    };
    let env_path = |root: &Path| root.join("gitops/environments/staging.yml");
    let dev_zero = hostile_variant("dev-zero", &|root| {
        std::fs::remove_file(env_path(root)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", env_path(root)).unwrap();
    });
    let huge = hostile_variant("huge", &|root| {
        let mut text = std::fs::read_to_string(env_path(root)).unwrap();
        while text.len() < 2 * 1024 * 1024 {
            text.push_str("# padding padding padding padding padding padding padding padding padding\n");
        }
        std::fs::write(env_path(root), text).unwrap();
    });
    let fifo = hostile_variant("fifo", &|root| {
        std::fs::remove_file(env_path(root)).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(env_path(root))
            .status()
            .unwrap();
        assert!(status.success(), "mkfifo");
    });

    let cases = vec![
        Case::new(
            "environment file: a symlink to /dev/zero (plan)",
            &["plan", "staging"],
            2,
            &[&env_file(&dev_zero), "character device", "not a regular file"],
        )
        .env("DULI_REPO", &dev_zero)
        .within(Duration::from_secs(5)),
        Case::new(
            "environment file: 2 MiB (up)",
            &["up", "staging"],
            2,
            &[&env_file(&huge), "larger than 1 MiB"],
        )
        .env("DULI_REPO", &huge)
        .within(Duration::from_secs(5)),
        Case::new(
            "environment file: a FIFO (status)",
            &["status", "staging"],
            2,
            &[&env_file(&fifo), "a FIFO", "not a regular file"],
        )
        .env("DULI_REPO", &fifo)
        .within(Duration::from_secs(5)),
        Case::new(
            "unknown environment (up)",
            &["up", "qa"],
            2,
            &[
                "unknown environment `qa`",
                "known environments are prod, staging",
                "gitops/environments",
            ],
        ),
        Case::new(
            "unknown environment (down)",
            &["down", "QA", "--yes"],
            2,
            &["unknown environment `QA`"],
        ),
        Case::new(
            "environment file: wrong type (up)",
            &["up", "staging"],
            2,
            &[
                &env_file(&wrong_type),
                &format!("line {wrong_type_line}"),
                "invalid u32",
            ],
        )
        .env("DULI_REPO", &wrong_type),
        Case::new(
            "environment file: unknown key (plan)",
            &["plan", "staging"],
            2,
            &[
                &env_file(&unknown_key),
                &format!("line {unknown_key_line}"),
                "unknown field `teem`",
            ],
        )
        .env("DULI_REPO", &unknown_key),
        Case::new(
            "environment file: duplicate key (status)",
            &["status", "staging"],
            2,
            &[&env_file(&duplicate), "duplicate", "namespace"],
        )
        .env("DULI_REPO", &duplicate),
        Case::new(
            "environment file: YAML bomb (up)",
            &["up", "staging"],
            2,
            &[&env_file(&bomb)],
        )
        .env("DULI_REPO", &bomb)
        .within(Duration::from_secs(10)),
        Case::new(
            "environment file: empty (down)",
            &["down", "staging"],
            2,
            &[&env_file(&empty)],
        )
        .env("DULI_REPO", &empty),
        Case::new(
            "gitops template with an undefined variable (plan)",
            &["plan", "staging"],
            2,
            &["backend.yml.j2", "owner_team"],
        )
        .env("DULI_REPO", &undefined),
        Case::new(
            "gitops template with an undefined variable (up)",
            &["up", "staging"],
            2,
            &["backend.yml.j2", "owner_team"],
        )
        .env("DULI_REPO", &undefined),
        Case::new(
            "platform catalog: values YAML error (up)",
            &["up", "staging"],
            2,
            &[
                "invalid platform catalog",
                &format!("{catalog_yaml}/gitops/platform.yml"),
                "line",
            ],
        )
        .env("DULI_REPO", &catalog_yaml),
        Case::new(
            "platform catalog: values not a mapping (plan)",
            &["plan", "staging"],
            2,
            &[
                "invalid platform catalog",
                "charts[2] (argocd): values must be a mapping",
            ],
        )
        .env("DULI_REPO", &catalog_values),
        Case::new(
            "platform catalog: YAML bomb in values (plan)",
            &["plan", "staging"],
            2,
            &[
                "invalid platform catalog",
                &format!("{catalog_bomb}/gitops/platform.yml"),
                "YAML bomb",
            ],
        )
        .env("DULI_REPO", &catalog_bomb)
        .within(Duration::from_secs(10)),
        Case::new(
            "SealedSecret file: YAML error (up)",
            &["up", "staging"],
            2,
            &[
                &format!("{sealed_yaml}/helm/secrets/sealed/staging/redis-secret.yml"),
                "not valid YAML",
            ],
        )
        .env("DULI_REPO", &sealed_yaml),
        Case::new(
            "malformed kubeconfig (up)",
            &["up", "staging"],
            2,
            &[
                "cannot load kubeconfig",
                &malformed,
                "check the file or pass --kubeconfig",
            ],
        )
        .env("KUBECONFIG", &malformed)
        .forbid(token),
        Case::new(
            "empty kubeconfig (status)",
            &["status", "staging"],
            2,
            &[
                &empty_kubeconfig,
                "defines no contexts",
                "check the file or pass --kubeconfig",
            ],
        )
        .env("KUBECONFIG", &empty_kubeconfig),
        Case::new(
            "unknown context (up)",
            &["up", "staging", "--context", "nope"],
            2,
            &[
                "context `nope` not found in kubeconfig",
                &kubeconfig,
                "known contexts: standin",
            ],
        ),
        Case::new(
            "--timeout that is not a duration (up)",
            &["up", "staging", "--timeout", "soon"],
            2,
            &["--timeout", "`soon` is not a duration: use a number with a unit"],
        ),
        Case::new(
            "--timeout of zero (down)",
            &["down", "staging", "--timeout", "0s"],
            2,
            &["--timeout", "must be greater than zero"],
        ),
        Case::new(
            "--only with an unknown phase (up)",
            &["up", "staging", "--only", "deploy"],
            2,
            &[
                "invalid value 'deploy' for '--only <PHASE>'",
                "possible values: preflight, platform",
            ],
        ),
        Case::new(
            "prod down without a terminal and without --yes",
            &["down", "prod"],
            2,
            &["refusing to", "production environment `prod`", "pass --yes"],
        ),
        Case::new(
            "helm missing from PATH (up)",
            &["up", "staging"],
            2,
            &[
                "preflight found 1 problem(s); nothing was changed",
                "helm is needed for the platform phase",
                "helm",
            ],
        )
        .env("PATH", no_helm_path),
    ];
    let count = cases.len();
    check_all(&world, cases).await;
    eprintln!("corpus_inputs: {count} cases");
}

/// A stand-in without Argo CD's CRDs (every other CRD of the platform is there), and its kubeconfig.
async fn without_argo_cd(dir: &Path) -> (StandIn, String) {
    let crds = workspace().join("../shared/crds");
    let mut builder = StandIn::builder().simulate_ready(FAST);
    for entry in std::fs::read_dir(&crds).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("argocd-") {
            builder = builder.crd_dir(entry.path());
        }
    }
    let api = builder.start().await.unwrap();
    let kubeconfig = api.write_kubeconfig(dir).unwrap().display().to_string();
    (api, kubeconfig)
}

/// The API server: refused, silent, 401, and a cluster without Argo CD's CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_api_server() {
    let world = World::start(FAST).await;
    let inputs = world.dir.path().join("inputs");
    let refused_url = format!("http://127.0.0.1:{}", closed_port());
    let refused = write(&inputs, "refused.kubeconfig", kubeconfig_for(&refused_url));
    let (_silent, silent_url) = silent_server();
    let silent = write(&inputs, "silent.kubeconfig", kubeconfig_for(&silent_url));
    let (_unauthorized, unauthorized_url) = status_server(401, "Unauthorized").await;
    let unauthorized = write(
        &inputs,
        "unauthorized.kubeconfig",
        kubeconfig_for(&unauthorized_url),
    );
    let bare_dir = world.dir.path().join("bare");
    std::fs::create_dir_all(&bare_dir).unwrap();
    let (bare, bare_kubeconfig) = without_argo_cd(&bare_dir).await;
    let bare_before = store_state(&bare);

    // An exec credential plugin that never answers (issue #17: `status` used to run for ever).
    let hanging_exec = write(
        &inputs,
        "hanging-exec.kubeconfig",
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{}'}}\nusers:\n- name: u\n  \
             user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      \
             args: ['-c', 'exec sleep 20']\n      interactiveMode: Never\ncontexts:\n- name: one\n  \
             context: {{cluster: c, user: u, namespace: default}}\ncurrent-context: one\n",
            world.api.url()
        ),
    );

    let cases = vec![
        Case::new(
            "exec credential plugin hangs (status --timeout 3s)",
            &["status", "staging", "--timeout", "3s"],
            2,
            &["within 3s"],
        )
        .env("KUBECONFIG", &hanging_exec)
        .within(Duration::from_secs(9)),
        Case::new(
            "API server refuses connections (up)",
            &["up", "staging", "--timeout", "3s"],
            2,
            &[
                "is unreachable",
                "Connection refused",
                &refused_url,
                "kubectl cluster-info",
            ],
        )
        .env("KUBECONFIG", &refused)
        .within(Duration::from_secs(10)),
        Case::new(
            "API server refuses connections (status)",
            &["status", "staging"],
            2,
            &["is unreachable", "Connection refused", &refused_url],
        )
        .env("KUBECONFIG", &refused)
        .within(Duration::from_secs(25)),
        Case::new(
            "API server accepts and never answers (up --timeout 3s)",
            &["up", "staging", "--timeout", "3s"],
            2,
            &["no answer within", &silent_url, "check that the cluster is up"],
        )
        .env("KUBECONFIG", &silent)
        .within(Duration::from_secs(10)),
        Case::new(
            "API server accepts and never answers (down --timeout 3s)",
            &["down", "staging", "--timeout", "3s"],
            2,
            &["no answer within", &silent_url],
        )
        .env("KUBECONFIG", &silent)
        .within(Duration::from_secs(10)),
        Case::new(
            "API server accepts and never answers (plan)",
            &["plan", "staging"],
            2,
            &["no answer within", &silent_url],
        )
        .env("KUBECONFIG", &silent)
        .within(Duration::from_secs(25)),
        Case::new(
            "401 Unauthorized (up)",
            &["up", "staging", "--timeout", "5s"],
            2,
            &["401 Unauthorized", "log in again", &unauthorized_url],
        )
        .env("KUBECONFIG", &unauthorized)
        .within(Duration::from_secs(10)),
        Case::new(
            "401 Unauthorized (status)",
            &["status", "staging"],
            2,
            &["401 Unauthorized", "log in again"],
        )
        .env("KUBECONFIG", &unauthorized)
        .within(Duration::from_secs(10)),
        Case::new(
            "Argo CD's CRDs missing (up --only gitops)",
            &["up", "staging", "--only", "gitops"],
            2,
            &["AppProject", "argoproj.io", "platform"],
        )
        .env("KUBECONFIG", &bare_kubeconfig),
    ];
    check_all(&world, cases).await;
    // Documented: `status` runs and reports every Application as not applied (exit 1), pointing at `up`.
    let status = check(
        &world,
        &Case::new("Argo CD's CRDs missing (status)", &["status", "staging"], 1, &[])
            .env("KUBECONFIG", &bare_kubeconfig),
    )
    .await;
    assert!(
        status
            .stdout
            .contains("staging (namespace staging, missing): NOT READY")
            && status.stdout.contains("Application/staging-backend")
            && status
                .stdout
                .contains("not applied: run `kubectl duli env up staging`"),
        "{}",
        status.stdout
    );
    assert_eq!(
        writes(&bare),
        Vec::<String>::new(),
        "no request to the bare cluster may write"
    );
    assert_eq!(store_state(&bare), bare_before);
}

/// 403s from RBAC, for each subcommand: named verb, resource and namespace, and nothing applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_forbidden() {
    let world = World::start_with(
        StandIn::builder()
            .simulate_ready(FAST)
            // With Argo CD's namespace there, `plan` dry-runs the Applications.
            .seed_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}\n")
            .deny("create", "namespaces")
            .deny("list", "applications")
            .deny("patch", "applications"),
    )
    .await;
    let cases = vec![
        Case::new(
            "403 creating namespaces (up: preflight)",
            &["up", "staging"],
            2,
            &[
                "preflight found",
                "nothing was changed",
                "forbidden: you may not create namespaces (cluster-scoped)",
                "kubectl auth can-i create namespaces",
            ],
        ),
        Case::new(
            "403 listing Applications (status)",
            &["status", "staging"],
            2,
            &[
                "forbidden: you may not list applications.argoproj.io",
                "in namespace argocd",
                "kubectl auth can-i list applications.argoproj.io -n argocd",
            ],
        ),
        Case::new(
            "403 dry-running Applications (plan)",
            &["plan", "staging"],
            2,
            &[
                "forbidden: you may not patch applications.argoproj.io",
                "kubectl auth can-i patch",
            ],
        ),
        Case::new(
            "403 listing Applications (down)",
            &["down", "staging", "--yes"],
            2,
            &[
                "forbidden: you may not list applications.argoproj.io",
                "in namespace argocd",
            ],
        ),
    ];
    check_all(&world, cases).await;
}

/// A platform chart that does not render: helm's message, naming the chart's template and line, in one
/// `error:` line; the environment itself (namespace, SealedSecrets, Applications) is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_platform_chart_template_error() {
    let world = World::start(FAST).await;
    let broken = variant(&world, "template-error", |root| {
        std::fs::write(
            root.join("gitops/charts/argo-cd/templates/broken.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.nothing.here }}\n",
        )
        .unwrap();
    });
    let case = Case::new(
        "platform chart template error (up)",
        &["up", "staging", "--timeout", "1m"],
        2,
        &[
            "argocd",
            "argo-cd/templates/broken.yaml:4",
            "nil pointer evaluating",
        ],
    )
    .env("DULI_REPO", &broken)
    .within(Duration::from_secs(90));
    let run = check(&world, &case).await;
    // helm's multi-line Go error arrives as one line, the last one.
    assert!(
        run.stderr
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("error: "),
        "{}",
        run.stderr
    );
    assert!(
        world.get("namespaces", "", "staging").is_none(),
        "the environment was not touched"
    );
    assert!(world.api.store().list("applications", None).is_empty());
    assert!(
        world
            .api
            .store()
            .list("sealedsecrets", Some("staging"))
            .is_empty()
    );
    assert!(
        world
            .get("secrets", "argocd", "sh.helm.release.v1.argocd.v1")
            .is_none(),
        "no release of the broken chart"
    );
}

/// Ctrl-C during `up` (helm installing, release pending): a clear message, exit 130, the log named, no helm
/// left running; the rerun converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_ctrl_c_during_up_then_rerun_converges() {
    // SIGINT, as Ctrl-C on a terminal sends it to the whole process group (kubectl → plugin).
    stopped_during_up_then_rerun_converges(Stop::Group("INT"), 130, "SIGINT").await;
}

/// SIGTERM (`kill PID`, a CI job cancelled) during `up` is handled like Ctrl-C (issue #17): exit 143, what
/// to re-run, the log named, no helm left running; the rerun converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_sigterm_during_up_then_rerun_converges() {
    stopped_during_up_then_rerun_converges(Stop::Process("TERM"), 143, "SIGTERM").await;
}

/// SIGHUP (the terminal closed) during `up`: exit 129, the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_sighup_during_up_then_rerun_converges() {
    stopped_during_up_then_rerun_converges(Stop::Process("HUP"), 129, "SIGHUP").await;
}

/// Where a stopping signal is sent.
enum Stop {
    /// To the whole process group, as a terminal's Ctrl-C.
    Group(&'static str),
    /// To the plugin's process alone, as `kill`.
    Process(&'static str),
}

async fn stopped_during_up_then_rerun_converges(stop: Stop, code: i32, name: &str) {
    // Slow readiness keeps helm waiting on the fixture Deployment, with its release pending-install.
    let world = World::start(Duration::from_secs(3)).await;
    let (child, pid) = world.spawn_up_in_own_group();
    world.wait_for_pending_install().await;
    assert!(
        !processes_of(&world).is_empty(),
        "helm runs while its release is pending"
    );
    match stop {
        Stop::Group(signal) => signal_group(signal, pid),
        Stop::Process(signal) => testkit::process::signal(signal, pid as u32),
    }
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the signal ends up promptly")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!(
            "interrupted ({name}): `kubectl duli env up staging` stopped before it finished"
        )) && errors[0].contains("run the same command again"),
        "{stderr}"
    );
    assert!(stderr.contains("log: "), "the log file is named:\n{stderr}");
    // Nothing of this run is left behind: no helm (it runs in its own process group).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !processes_of(&world).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = processes_of(&world);
    assert!(left.is_empty(), "processes of this run left: {left:?}");
    let rerun = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    assert_eq!(rerun.json()["ready"], true);
}

/// Live processes started for `world` (their environment names its state directory): the plugin, helm.
fn processes_of(world: &World) -> Vec<String> {
    let marker = format!("DULI_STATE_DIR={}", world.dir.path().join("state").display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie && environ.split(|b| *b == 0).any(|var| var == marker.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
        }
    }
    found
}

/// Two concurrent `up` of one environment (issue #17: they interleaved and both counted the same objects
/// as created): while one runs, a second `up` (and a `down`) stops at once with exit 2, saying which
/// process holds the environment's lock and touching nothing; the first finishes as if alone, and the lock
/// is free again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_concurrent_up_of_one_environment_is_refused() {
    let world = World::start(Duration::from_secs(3)).await;
    let first = world
        .command(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .spawn()
        .unwrap();
    // kubectl execs the plugin: its pid is the plugin's.
    let pid = first.id().unwrap();
    world.wait_for_pending_install().await;
    for args in [
        &["up", "staging", "--timeout", "2m"][..],
        &["down", "staging", "--yes"][..],
    ] {
        world.api.clear_requests();
        let second = world.run(args).await.expect(2);
        let errors: Vec<&str> = second
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{}", second.stderr);
        assert!(
            errors[0].contains(&format!(
                "another `kubectl duli env {} staging` is running",
                args[0]
            )) && errors[0].contains(&format!("held by pid {pid} (`kubectl duli env up staging`)"))
                && errors[0].contains("wait for it to finish"),
            "{}",
            second.stderr
        );
        assert!(second.elapsed < Duration::from_secs(10), "{:?}", second.elapsed);
        assert_eq!(second.stdout, "", "nothing printed on stdout");
        // The first run's helm keeps writing meanwhile; the second run's applies and deletes would show as
        // duli's field manager or a DELETE.
        let ours: Vec<String> = writes(&world.api)
            .into_iter()
            .filter(|w| w.contains("fieldManager=duli") || w.starts_with("DELETE"))
            .collect();
        assert_eq!(ours, Vec::<String>::new(), "the second run wrote nothing");
    }
    let output = tokio::time::timeout(Duration::from_secs(150), first.wait_with_output())
        .await
        .expect("the first up finishes")
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["ready"], true);
    // Free again: the next run converges without creating anything.
    let rerun = world
        .run(&["up", "staging", "-o", "json", "--timeout", "2m"])
        .await
        .expect(0);
    assert_eq!(rerun.json()["totals"]["created"], 0, "{}", rerun.stdout);
}

//! The bad-input corpus of `kubectl duli db` (issue #9): every case runs the plugin through kubectl and
//! checks the three things an operator relies on — the exit code (2, or the documented one), one `error:`
//! line naming the offending file, field or resource and saying what to do, and that nothing was written
//! (the run's HOME, TMPDIR and working directory are unchanged) or applied (the stand-in saw no write and its
//! resourceVersion did not move).
//!
//! Cases are tables, one line each; a group shares one stand-in and runs its cases concurrently.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube_standin::StandIn;
use testkit::corpus::{Case, changed_paths, join_all, kubeconfig_for, snapshot, store_state, write, writes};
use testkit::process::{Run, output, signal};
use testkit::servers::{closed_port, port_in_use, silent_server, status_server};
use tokio::io::AsyncReadExt;

use crate::support::{Cluster, healthy_seed};
use testkit::paths::workspace;

/// A private working directory, TMPDIR and HOME for one run, inside the cluster's dir.
pub fn sandbox(cluster: &Cluster) -> PathBuf {
    let work = cluster.dir.path().join("work");
    std::fs::create_dir_all(work.join("tmp")).unwrap();
    work
}

/// Run one case and check it; returns the run for extra assertions.
pub async fn check(cluster: &Cluster, case: &Case) -> Run {
    let work = sandbox(cluster);
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let mut command = cluster.command_with_path(&args, case.path_tail);
    command
        .current_dir(&work)
        .env("TMPDIR", work.join("tmp"))
        .env("HOME", &work);
    for (name, value) in &case.env {
        command.env(name, value);
    }
    let run = output(command).await;
    case.verify(&run);
    run
}

/// Run all cases concurrently against one cluster, checking that nothing was written or applied.
pub async fn check_all(cluster: &Cluster, cases: Vec<Case>) {
    let before_files = snapshot(cluster.dir.path());
    let before_store = store_state(&cluster.api);
    let runs = cases.iter().map(|case| check(cluster, case));
    let _ = join_all(runs).await;
    assert_eq!(writes(&cluster.api), Vec::<String>::new(), "no request may write");
    assert_eq!(
        store_state(&cluster.api),
        before_store,
        "the stand-in's objects changed"
    );
    let after_files = snapshot(cluster.dir.path());
    let work = cluster.dir.path().join("work");
    // The sandbox directories themselves may be created by the first case.
    let mut changed = changed_paths(&before_files, &after_files);
    changed.retain(|path| !(*path == work || *path == work.join("tmp")));
    assert!(changed.is_empty(), "files written or changed: {changed:?}");
}

const NAMESPACE_ONLY: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n";

/// kubeconfig and cluster reachability, for status, creds and connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_kubeconfig_and_api_server() {
    let cluster = Cluster::start(NAMESPACE_ONLY).await;
    let dir = cluster.dir.path().join("inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let token = "kube-TOKEN-PLAINTEXT-7Rw";
    let malformed = write(
        &dir,
        "malformed.kubeconfig",
        kubeconfig_for("http://127.0.0.1:1").replace("user: {}", &format!("user: {{token: \"{token}}}")),
    );
    let empty = write(&dir, "empty.kubeconfig", "");
    let missing = dir.join("missing.kubeconfig").display().to_string();
    let no_current = write(
        &dir,
        "no-current.kubeconfig",
        kubeconfig_for("http://127.0.0.1:1").replace("current-context: one\n", ""),
    );
    let bad_cert = write(
        &dir,
        "bad-cert.kubeconfig",
        kubeconfig_for("https://127.0.0.1:1")
            .replace("user: {}", "user: {client-certificate: /nonexistent/duli/client.crt, client-key: /nonexistent/duli/client.key}"),
    );
    let refused_port = closed_port();
    let refused_url = format!("http://127.0.0.1:{refused_port}");
    let refused = write(&dir, "refused.kubeconfig", kubeconfig_for(&refused_url));
    let (_silent, silent_url) = silent_server();
    let silent = write(&dir, "silent.kubeconfig", kubeconfig_for(&silent_url));
    let (_unauthorized, unauthorized_url) = status_server(401, "Unauthorized").await;
    let unauthorized = write(&dir, "unauthorized.kubeconfig", kubeconfig_for(&unauthorized_url));
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let fast = Duration::from_secs(6);

    let cases = vec![
        Case::new(
            "malformed kubeconfig",
            &["status", "staging", "--no-live"],
            2,
            &[
                "cannot load kubeconfig",
                "malformed.kubeconfig",
                "line 8",
                "check the file or pass --kubeconfig",
            ],
        )
        .env("KUBECONFIG", &malformed)
        .forbid(token),
        Case::new(
            "empty kubeconfig",
            &["creds", "staging"],
            2,
            &[
                "empty.kubeconfig",
                "defines no contexts",
                "check the file or pass --kubeconfig",
            ],
        )
        .env("KUBECONFIG", &empty),
        Case::new(
            "kubeconfig file missing (--kubeconfig)",
            &["status", "staging", "--kubeconfig", &missing],
            2,
            &["cannot load kubeconfig", "missing.kubeconfig", "No such file"],
        ),
        Case::new(
            "unknown context",
            &["status", "staging", "--context", "nope"],
            2,
            &[
                "context `nope` not found in kubeconfig",
                &kubeconfig,
                "known contexts: standin",
            ],
        ),
        Case::new(
            "kubeconfig without current-context",
            &["creds", "staging"],
            2,
            &[
                "no-current.kubeconfig has no current-context",
                "pass --context NAME",
            ],
        )
        .env("KUBECONFIG", &no_current),
        Case::new(
            "client certificate file missing",
            &["status", "staging"],
            2,
            &["context `one`", "/nonexistent/duli/client.crt"],
        )
        .env("KUBECONFIG", &bad_cert),
        Case::new(
            "API server refuses connections (status)",
            &["status", "staging", "--timeout", "2s"],
            2,
            &[
                "the API server at",
                "is unreachable (",
                "Connection refused",
                "kubectl cluster-info",
                &refused_url,
            ],
        )
        .env("KUBECONFIG", &refused)
        .within(fast),
        Case::new(
            "API server refuses connections (connect)",
            &["connect", "staging", "--timeout", "2s"],
            2,
            &[
                "is unreachable (get secrets database-app in namespace staging",
                "Connection refused",
                &refused_url,
            ],
        )
        .env("KUBECONFIG", &refused)
        .within(fast),
        // The API layer's deadline is --timeout (the runner's is a little later): the call and server are named.
        Case::new(
            "API server accepts and never answers (status)",
            &["status", "staging", "--timeout", "2s"],
            2,
            &[
                "is unreachable (",
                "no answer within",
                "kubectl cluster-info",
                &silent_url,
            ],
        )
        .env("KUBECONFIG", &silent)
        .within(fast),
        Case::new(
            "API server accepts and never answers (creds)",
            &["creds", "staging", "--timeout", "2s"],
            2,
            &["is unreachable (get secrets", "no answer within", &silent_url],
        )
        .env("KUBECONFIG", &silent)
        .within(fast),
        Case::new(
            "API server accepts and never answers (connect)",
            &["connect", "staging", "redis", "--timeout", "2s"],
            2,
            &["is unreachable (get", "no answer within", &silent_url],
        )
        .env("KUBECONFIG", &silent)
        .within(fast),
        Case::new(
            "401 Unauthorized (status)",
            &["status", "staging", "--timeout", "5s"],
            2,
            &[
                "in namespace staging",
                "rejected the credentials for",
                "(401 Unauthorized",
                "log in again",
            ],
        )
        .env("KUBECONFIG", &unauthorized)
        .within(fast),
        Case::new(
            "401 Unauthorized (creds)",
            &["creds", "staging", "postgres"],
            2,
            &[
                "rejected the credentials for get secrets database-app in namespace staging",
                "401 Unauthorized",
                "log in again",
            ],
        )
        .env("KUBECONFIG", &unauthorized)
        .within(fast),
        Case::new(
            "--timeout that is not a duration",
            &["status", "staging", "--timeout", "soon"],
            2,
            &["--timeout", "`soon` is not a duration", "such as 90s"],
        ),
        Case::new(
            "--timeout of zero",
            &["creds", "staging", "--timeout", "0s"],
            2,
            &["--timeout", "must be greater than zero"],
        ),
    ];
    // clap's usage errors print "error: invalid value …" plus usage lines; they are checked the same way.
    check_all(&cluster, cases).await;
}

/// 403 from RBAC and a cluster without the CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_forbidden_and_missing_crd() {
    let cluster = Cluster::start(NAMESPACE_ONLY).await;
    cluster.api.deny("list", "statefulsets");
    cluster.api.deny("get", "secrets");
    let cases = vec![
        Case::new(
            "403 listing statefulsets (status)",
            &["status", "staging", "--no-live"],
            2,
            &[
                "forbidden: you may not list statefulsets in namespace staging",
                "cannot list resource \"statefulsets\"",
                "kubectl auth can-i list statefulsets -n staging",
            ],
        ),
        Case::new(
            "403 reading the Secret (creds)",
            &["creds", "staging", "postgres"],
            2,
            &[
                "forbidden: you may not get secrets database-app in namespace staging",
                "kubectl auth can-i get secrets -n staging",
            ],
        ),
        Case::new(
            "403 reading the Secret (connect)",
            &["connect", "staging", "--port-forward-only"],
            2,
            &["forbidden: you may not get secrets database-app"],
        ),
    ];
    check_all(&cluster, cases).await;

    // A cluster where no operator is installed: the CRDs are missing, not just the objects.
    let api = StandIn::builder()
        .seed_yaml(NAMESPACE_ONLY)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bare = Cluster {
        kubeconfig: api.write_kubeconfig(dir.path()).unwrap(),
        api,
        plugin_dir: cluster.plugin_dir.clone(),
        dir,
    };
    // Documented: `status` runs and reports the services as missing (exit 1), naming the operator to install.
    let mut missing_crd = Case::new(
        "missing CRDs (status)",
        &["status", "staging", "--no-live", "--timeout", "5s"],
        1,
        &[],
    );
    missing_crd.within = Duration::from_secs(10);
    let missing_secret = Case::new(
        "missing CRDs (creds: the operator never made the Secret)",
        &["creds", "staging", "postgres"],
        2,
        &[
            "Secret `database-app` not found in namespace `staging`",
            "CloudNativePG creates it",
        ],
    );
    let before = store_state(&bare.api);
    let run = check(&bare, &missing_crd).await;
    for (what, operator) in [
        (
            "Cluster `database` not found in namespace staging",
            "CloudNativePG",
        ),
        (
            "RedisReplication `redis` not found in namespace staging",
            "redis-operator",
        ),
        (
            "RabbitmqCluster `queue` not found in namespace staging",
            "RabbitMQ cluster operator",
        ),
    ] {
        assert!(
            run.stdout.contains(what) && run.stdout.contains(operator),
            "{}",
            run.all()
        );
    }
    assert!(
        run.stdout.contains("UNHEALTHY: postgres, redis, rabbitmq"),
        "{}",
        run.all()
    );
    check(&bare, &missing_secret).await;
    assert_eq!(writes(&bare.api), Vec::<String>::new());
    assert_eq!(store_state(&bare.api), before);
}

/// A scratch repository: a copy of gitops/environments and an empty helm/.
pub fn scratch_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("helm")).unwrap();
    let envs = dir.path().join("gitops/environments");
    std::fs::create_dir_all(&envs).unwrap();
    for env in ["staging", "prod"] {
        std::fs::copy(
            workspace().join(format!("gitops/environments/{env}.yml")),
            envs.join(format!("{env}.yml")),
        )
        .unwrap();
    }
    dir
}

fn staging_text() -> String {
    std::fs::read_to_string(workspace().join("gitops/environments/staging.yml")).unwrap()
}

/// Environments and the repository: every case fails before any API request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_environment_files() {
    let cluster = Cluster::start(NAMESPACE_ONLY).await;
    let make = |edit: &dyn Fn(String) -> Vec<u8>| {
        let repo = scratch_repo();
        let path = repo.path().join("gitops/environments/staging.yml");
        std::fs::write(&path, edit(staging_text())).unwrap();
        repo
    };
    let wrong_line = staging_text()
        .lines()
        .position(|line| line.contains("backend: {replicas: 1,"))
        .expect("staging.yml sizes backend")
        + 1;
    let wrong_type = make(&|t| {
        t.replace("backend: {replicas: 1,", "backend: {replicas: one,")
            .into_bytes()
    });
    let unknown_key = make(&|t| format!("{t}replicaz: 3\n").into_bytes());
    let duplicate = make(&|t| format!("{t}namespace: other\n").into_bytes());
    let enum_value = make(&|t| t.replace("tier: non-production", "tier: sometimes").into_bytes());
    let bad_namespace = make(&|t| {
        t.replace("namespace: staging\n", "namespace: Staging_NS\n")
            .into_bytes()
    });
    let not_utf8 = make(&|t| {
        let mut bytes = t.into_bytes();
        bytes.extend_from_slice(b"team: \xff\xfe\n");
        bytes
    });
    let empty = make(&|_| Vec::new());
    let renamed = scratch_repo();
    std::fs::copy(
        workspace().join("gitops/environments/staging.yml"),
        renamed.path().join("gitops/environments/qa.yml"),
    )
    .unwrap();
    let not_a_repo = tempfile::tempdir().unwrap();
    let file = |repo: &tempfile::TempDir| {
        repo.path()
            .join("gitops/environments/staging.yml")
            .display()
            .to_string()
    };
    let repo_arg = |repo: &tempfile::TempDir| repo.path().display().to_string();
    let (wt, uk, dk, ev, bn, nu, em) = (
        repo_arg(&wrong_type),
        repo_arg(&unknown_key),
        repo_arg(&duplicate),
        repo_arg(&enum_value),
        repo_arg(&bad_namespace),
        repo_arg(&not_utf8),
        repo_arg(&empty),
    );
    let (rn, nr) = (repo_arg(&renamed), repo_arg(&not_a_repo));
    let cases = vec![
        Case::new(
            "unknown environment (status)",
            &["status", "qa"],
            2,
            &[
                "unknown environment `qa`",
                "known environments are prod, staging",
                "gitops/environments",
            ],
        ),
        Case::new(
            "unknown environment (connect)",
            &["connect", "qa", "redis"],
            2,
            &["unknown environment `qa`", "known environments are prod, staging"],
        ),
        Case::new(
            "unknown environment (creds)",
            &["creds", "QA"],
            2,
            &["unknown environment `QA`"],
        ),
        Case::new(
            "environment file: wrong type",
            &["status", "staging", "--repo", &wt],
            2,
            &[&file(&wrong_type), &format!("line {wrong_line}")],
        ),
        Case::new(
            "environment file: unknown key",
            &["creds", "staging", "--repo", &uk],
            2,
            &[
                &file(&unknown_key),
                "unknown field `replicaz`",
                "expected one of name, namespace",
            ],
        ),
        Case::new(
            "environment file: duplicate key",
            &["connect", "staging", "--repo", &dk],
            2,
            &[&file(&duplicate), "key `namespace` is given twice in one mapping"],
        ),
        Case::new(
            "environment file: value outside the enum",
            &["status", "staging", "--repo", &ev],
            2,
            &[&file(&enum_value), "sometimes"],
        ),
        Case::new(
            "environment file: namespace not a DNS label",
            &["status", "--all", "--repo", &bn],
            2,
            &[&file(&bad_namespace), "field `namespace`", "is not a DNS label"],
        ),
        Case::new(
            "environment file: not UTF-8",
            &["status", "staging", "--repo", &nu],
            2,
            &[
                &format!("cannot read environment file {}", file(&not_utf8)),
                "valid UTF-8",
            ],
        ),
        Case::new(
            "environment file: empty",
            &["creds", "staging", "--repo", &em],
            2,
            &[&file(&empty)],
        ),
        Case::new(
            "environment file named differently from its name",
            &["status", "qa", "--repo", &rn],
            2,
            &[
                "qa.yml",
                "field `name`: is `staging` but the file is named `qa.yml`; make them equal",
            ],
        ),
        Case::new(
            "--repo that is not a repository",
            &["status", "staging", "--repo", &nr],
            2,
            &[&format!("--repo {nr} is not a duli repository: helm is missing")],
        ),
    ];
    check_all(&cluster, cases).await;
    // Input errors are found before the cluster is asked anything.
    assert_eq!(cluster.api.requests().len(), 0, "{:?}", cluster.api.requests());
}

/// Objects the operators should have made, missing or incomplete; bad flags; the prod guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_connect_inputs() {
    let seed = healthy_seed("staging");
    let yaml = seed
        .yaml()
        // database-app without its password key.
        .replacen("  password: ", "  passwort: ", 1);
    let yaml = format!("{yaml}{}", healthy_seed("prod").yaml());
    let cluster = Cluster::start(&yaml).await;
    // Make redis-0 unready, and remove the read-only Service.
    let mut pod = cluster.api.store().get("pods", "staging", "redis-0").unwrap();
    pod["status"]["conditions"][0]["status"] = "False".into();
    cluster.api.store().insert(pod).unwrap();
    cluster
        .api
        .store()
        .delete("services", "prod", "database-ro")
        .unwrap();
    let cases = vec![
        Case::new(
            "Secret without the password key",
            &["creds", "staging", "postgres"],
            2,
            &["Secret `database-app` in namespace `staging` has no key `password`"],
        ),
        Case::new(
            "no ready pod behind the Service",
            &["connect", "staging", "redis", "--", "PING"],
            2,
            &[
                "no ready pod behind Service `redis-master` in namespace `staging`",
                "kubectl get pods -n staging -l",
            ],
        ),
        Case::new(
            "the Service is missing",
            &["connect", "prod", "--yes", "--read-only", "--port-forward-only"],
            2,
            &[
                "Service `database-ro` not found in namespace `prod`",
                "kubectl duli db status",
            ],
        ),
        Case::new(
            "--read-only for redis",
            &["connect", "staging", "redis", "--read-only"],
            2,
            &["--read-only applies to postgres only"],
        ),
        Case::new(
            "client arguments for rabbitmq",
            &["connect", "staging", "rabbitmq", "--", "x"],
            2,
            &["rabbitmq has no command-line client"],
        ),
        Case::new(
            "--external with --local-port",
            &["connect", "staging", "--external", "--local-port", "5999"],
            2,
            &["--external uses the environment's external endpoint"],
        ),
        Case::new(
            "--port-forward-only with client arguments",
            &["connect", "prod", "--port-forward-only", "--", "-c", "x"],
            2,
            &["--port-forward-only runs no client: drop the arguments after --"],
        ),
        Case::new(
            "--local-port out of range",
            &["connect", "staging", "--local-port", "70000"],
            2,
            &["--local-port", "70000"],
        ),
        Case::new(
            "unknown service",
            &["connect", "staging", "mysql"],
            2,
            &["'mysql'", "postgres, redis, rabbitmq"],
        ),
        Case::new(
            "-o env outside creds",
            &["status", "staging", "-o", "env"],
            2,
            &["-o env is only for `kubectl duli db creds`"],
        ),
        Case::new(
            "prod connect without --yes and without a terminal",
            &["connect", "prod", "--", "-c", "select 1"],
            2,
            &[
                "refusing to connect to PostgreSQL in production environment `prod` without confirmation",
                "pass --yes",
            ],
        ),
        Case::new(
            "prod passwords without --yes",
            &["creds", "prod", "--show"],
            2,
            &[
                "refusing to show the data service passwords in production environment `prod`",
                "pass --yes",
            ],
        )
        .forbid(&seed.pg_app_password),
        Case::new(
            "psql missing",
            &["connect", "prod", "--yes"],
            2,
            &["`psql` not found on PATH", "apt-get install postgresql-client"],
        )
        .path("/nonexistent"),
        Case::new(
            "redis-cli missing",
            &["connect", "staging", "redis", "--", "PING"],
            2,
            &["`redis-cli` not found on PATH", "apt-get install redis-tools"],
        )
        .path("/nonexistent"),
    ];
    check_all(&cluster, cases).await;
}

/// A local port that is already taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_local_port_taken() {
    let cluster = Cluster::healthy_staging().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let cases = vec![
        Case::new(
            "--local-port already taken (port-forward-only)",
            &["connect", "staging", "--port-forward-only", "--local-port", &port],
            2,
            &[
                &format!("cannot listen on 127.0.0.1:{port} for the port-forward to pod `database-1`"),
                "pick another --local-port",
            ],
        ),
        Case::new(
            "--local-port already taken (psql)",
            &[
                "connect",
                "staging",
                "--local-port",
                &port,
                "--",
                "-c",
                "select 1",
            ],
            2,
            &[
                &format!("cannot listen on 127.0.0.1:{port}"),
                "pick another --local-port",
            ],
        ),
    ];
    check_all(&cluster, cases).await;
    drop(taken);
}

/// Ctrl-C during `connect --port-forward-only`: exit 0 at once, the local port released, no file left;
/// and Ctrl-C while the API reads are still under way (a slow API server) ends the run too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_ctrl_c_during_connect() {
    let cluster = Cluster::healthy_staging().await;
    let work = sandbox(&cluster);
    let before = snapshot(cluster.dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_arg = port.to_string();
    for args in [
        vec![
            "connect",
            "staging",
            "--port-forward-only",
            "--local-port",
            &port_arg,
        ],
        vec!["connect", "staging", "rabbitmq", "--local-port", &port_arg],
    ] {
        let mut command = cluster.command(&args);
        command
            .current_dir(&work)
            .env("TMPDIR", work.join("tmp"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = String::new();
        let ready = async {
            let mut buffer = [0u8; 1024];
            while !seen.contains("Press Ctrl-C") {
                let n = stdout.read(&mut buffer).await.unwrap();
                assert!(n > 0, "ended early: {seen}");
                seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        };
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the endpoint is printed");
        assert!(port_in_use(port), "{args:?}: forwarding on {port}: {seen}");
        // A client connected through the forward when Ctrl-C comes.
        let _open = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        signal("INT", child.id().unwrap());
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("exits promptly on Ctrl-C")
            .unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {seen}");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
        assert!(
            !port_in_use(port),
            "{args:?}: port {port} still listening after Ctrl-C"
        );
    }
    // Ctrl-C before the forward is up (every API request takes 3 s): the plugin ends, no port, no file.
    cluster
        .api
        .add_fault(kube_standin::Fault::latency(Duration::from_secs(3)));
    let mut command = cluster.command(&[
        "connect",
        "staging",
        "--port-forward-only",
        "--local-port",
        &port_arg,
    ]);
    command.current_dir(&work).env("TMPDIR", work.join("tmp"));
    let mut child = command.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal("INT", child.id().unwrap());
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("Ctrl-C ends the run while it waits for the API server")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(!status.success(), "{status:?}");
    assert!(!port_in_use(port));
    cluster.api.clear_faults();
    assert_eq!(snapshot(cluster.dir.path()).len(), before.len());
    assert_eq!(writes(&cluster.api), Vec::<String>::new());
}

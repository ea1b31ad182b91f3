//! Real data servers behind the tests' port-forwards, started once per test binary on first use and
//! cleaned up by a watchdog when it exits.
//!
//! PostgreSQL: a primary initialised in a temp dir (scram passwords, so a wrong password fails; the
//! machine's own server on 5432 accepts no replication connections) and a streaming standby made with
//! `pg_basebackup -R`, both as user postgres. Redis: a master with a password, a replica
//! (`--replicaof`) and a Sentinel watching the master. RabbitMQ: the machine's server on 5672
//! (guest/guest).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::servers::free_port;

/// The real servers behind the port-forwards, all on 127.0.0.1.
#[derive(Debug)]
pub struct Servers {
    /// PostgreSQL primary (scram passwords; user `postgres`, database `app` owned by `app`).
    pub pg_primary: u16,
    /// PostgreSQL streaming standby of the primary (application_name `database-2`).
    pub pg_standby: u16,
    /// Redis master (password [`Servers::redis_password`]).
    pub redis_master: u16,
    /// Redis replica of the master.
    pub redis_replica: u16,
    /// Redis Sentinel watching the master as `mymaster`.
    pub sentinel: u16,
    /// Password of the PostgreSQL role `app`.
    pub pg_app_password: String,
    /// Password of the PostgreSQL superuser `postgres`.
    pub pg_superuser_password: String,
    /// Password of the Redis master and replica.
    pub redis_password: String,
    /// RabbitMQ: the machine's server (guest/guest).
    pub amqp: u16,
    _dir: PathBuf,
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn as_postgres(args: &[&str]) {
    let mut full = vec!["-u", "postgres", "--"];
    full.extend_from_slice(args);
    run("runuser", &full);
}

/// Start a PostgreSQL server on a free port, `configure(port)` writing the port into its configuration.
/// Tests run in parallel, each starting its own servers: a port found free can be taken by another test
/// before the server binds it, so a failed start is retried on another port (with the server's log in
/// the final failure).
fn start_postgres(pg_ctl: &str, data: &str, configure: impl Fn(u16)) -> u16 {
    let log = format!("{data}.log");
    for attempt in 1.. {
        let port = free_port();
        configure(port);
        run("chown", &["-R", "postgres", data]);
        let output = Command::new("runuser")
            .args([
                "-u", "postgres", "--", pg_ctl, "-D", data, "-l", &log, "-w", "start",
            ])
            .output()
            .unwrap_or_else(|err| panic!("cannot run pg_ctl: {err}"));
        if output.status.success() {
            return port;
        }
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            attempt < 3,
            "pg_ctl start -D {data} failed {attempt} times: {}{}\nserver log:\n{server_log}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "PostgreSQL in {data} did not start on port {port} (attempt {attempt}); trying another port"
        );
    }
    unreachable!()
}

fn wait_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pg_bindir() -> PathBuf {
    let pg_ctl = which::which("pg_ctl").expect("pg_ctl on PATH (PostgreSQL server package)");
    std::fs::canonicalize(pg_ctl)
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Start a redis-server on a free port (`args(port)`) and wait until it listens; one that exits because
/// another test took the port meanwhile is retried on another (see [`start_postgres`]). Returns the port
/// and the process id. Never waited on: the watchdog kills it when the test binary exits.
#[allow(clippy::zombie_processes)]
fn start_redis(what: &str, args: impl Fn(u16) -> Vec<String>) -> (u16, u32) {
    for attempt in 1..=3 {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(args(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (port, child.id());
            }
            if child.try_wait().unwrap().is_some() {
                eprintln!("{what} did not start on port {port} (attempt {attempt}); trying another port");
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what} did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("{what} did not start on three ports");
}

#[allow(clippy::zombie_processes)] // the watchdog is meant to outlive us
fn start_servers() -> Servers {
    let dir = std::env::temp_dir().join(format!("duli-services-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    run("chown", &["postgres", dir.to_str().unwrap()]);
    let bin = pg_bindir();
    let bin = |name: &str| bin.join(name).display().to_string();
    // The watchdog outlives this process and cleans up after it, however it ends (even mid-setup).
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill $(cat {dir}/pids 2>/dev/null) 2>/dev/null; \
         for d in standby primary; do [ -f {dir}/$d/postmaster.pid ] && runuser -u postgres -- {pg_ctl} -D {dir}/$d -m immediate stop >/dev/null 2>&1; done; \
         rm -rf {dir}",
        me = std::process::id(),
        pg_ctl = bin("pg_ctl"),
        dir = dir.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pids_file = dir.join("pids");
    let record = |pid: u32| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&pids_file)
            .unwrap();
        writeln!(file, "{pid}").unwrap();
    };
    let pg_app_password = format!("app-pw-{}-Zq9", std::process::id());
    let pg_superuser_password = format!("super-pw-{}-Xk4", std::process::id());
    let redis_password = format!("redis-pw-{}-Lm2", std::process::id());

    // PostgreSQL primary + streaming standby.
    let primary = dir.join("primary");
    let standby = dir.join("standby");
    let p = primary.display().to_string();
    let s = standby.display().to_string();
    let socket_dir = dir.display().to_string();
    as_postgres(&[
        &bin("initdb"),
        "-D",
        &p,
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--no-sync",
    ]);
    std::fs::write(
        primary.join("pg_hba.conf"),
        "local all all trust\nhost replication postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    let pg_primary = start_postgres(&bin("pg_ctl"), &p, |port| {
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\nwal_level = replica\nmax_wal_senders = 5\nfsync = off\n"
        );
        std::fs::write(primary.join("postgresql.conf"), conf).unwrap();
    });
    let (create_role, alter_super) = (
        format!("create role app login password '{pg_app_password}'"),
        format!("alter role postgres password '{pg_superuser_password}'"),
    );
    let port = pg_primary.to_string();
    as_postgres(&[
        &bin("psql"),
        "-h",
        &socket_dir,
        "-p",
        &port,
        "-U",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        &create_role,
        "-c",
        "create database app owner app",
        "-c",
        &alter_super,
    ]);
    as_postgres(&[
        &bin("pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        &pg_primary.to_string(),
        "-U",
        "postgres",
        "-D",
        &s,
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "--no-sync",
    ]);
    let auto = std::fs::read_to_string(standby.join("postgresql.auto.conf")).unwrap();
    let pg_standby = start_postgres(&bin("pg_ctl"), &s, |port| {
        // CNPG standbys connect with application_name = their pod name.
        let conf = format!(
            "{auto}primary_conninfo = 'host=127.0.0.1 port={pg_primary} user=postgres application_name=database-2'\nport = {port}\n"
        );
        std::fs::write(standby.join("postgresql.auto.conf"), conf).unwrap();
    });

    // Redis master + replica + Sentinel.
    let common = |port: u16| {
        vec![
            "--port".to_string(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--repl-diskless-sync-delay".into(),
            "0".into(),
            "--dir".into(),
            socket_dir.clone(),
            "--requirepass".into(),
            redis_password.clone(),
            "--masterauth".into(),
            redis_password.clone(),
        ]
    };
    let (redis_master, pid) = start_redis("redis master", common);
    record(pid);
    let (redis_replica, pid) = start_redis("redis replica", |port| {
        let mut replica = common(port);
        replica.extend([
            "--replicaof".to_string(),
            "127.0.0.1".into(),
            redis_master.to_string(),
        ]);
        replica
    });
    record(pid);
    let sentinel_conf = dir.join("sentinel.conf");
    let (sentinel, pid) = start_redis("sentinel", |port| {
        std::fs::write(
            &sentinel_conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {socket_dir}\nsentinel monitor mymaster 127.0.0.1 {redis_master} 1\nsentinel auth-pass mymaster {redis_password}\nsentinel down-after-milliseconds mymaster 5000\n"
            ),
        )
        .unwrap();
        vec![sentinel_conf.display().to_string(), "--sentinel".into()]
    });
    record(pid);
    wait_port(pg_standby, "standby");
    wait_replication(pg_primary, &socket_dir, redis_master, &redis_password);

    Servers {
        pg_primary,
        pg_standby,
        redis_master,
        redis_replica,
        sentinel,
        pg_app_password,
        pg_superuser_password,
        redis_password,
        amqp: 5672,
        _dir: dir,
    }
}

/// Wait until the standby streams and the Redis replica is online.
fn wait_replication(pg_primary: u16, socket_dir: &str, redis_master: u16, redis_password: &str) {
    let start = Instant::now();
    loop {
        let pg = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "psql",
                "-h",
                socket_dir,
                "-p",
                &pg_primary.to_string(),
                "-U",
                "postgres",
                "-Atc",
            ])
            .arg("select count(*) from pg_stat_replication where state = 'streaming'")
            .output()
            .unwrap();
        let redis = Command::new("redis-cli")
            .args(["-p", &redis_master.to_string(), "info", "replication"])
            .env("REDISCLI_AUTH", redis_password)
            .output()
            .unwrap();
        let pg_ok = String::from_utf8_lossy(&pg.stdout).trim() == "1";
        let redis_ok = String::from_utf8_lossy(&redis.stdout).contains("state=online");
        if pg_ok && redis_ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "replication did not start (pg {pg_ok}, redis {redis_ok})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The servers, started on first use.
pub fn servers() -> &'static Servers {
    // A failed setup is remembered, so later tests report it instead of starting servers again.
    static SERVERS: OnceLock<Result<Servers, String>> = OnceLock::new();
    let servers = SERVERS.get_or_init(|| {
        std::panic::catch_unwind(start_servers).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match servers {
        Ok(servers) => servers,
        Err(message) => panic!("data servers failed to start: {message}"),
    }
}

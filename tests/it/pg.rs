//! A throw-away PostgreSQL cluster for the tests of the PostgreSQL backend (issue #16), and
//! the tests of that helper, of the PostgreSQL schema and of `musubi migrate --to`.
//!
//! Each [`PgCluster`] is its own `initdb` in a temporary directory, listening on a free
//! loopback port (and a Unix socket in that directory, never the system's), so tests run in
//! parallel and never meet the machine's own PostgreSQL. `initdb` refuses to run as root: as
//! root (CI) the cluster belongs to the `postgres` user and every server command goes through
//! `runuser -u postgres --`; as anyone else the commands run as that user.
//!
//! The binaries are required, not optional: `.ci/install` installs them, and a machine
//! without them fails these tests with a message saying so rather than skipping them (a
//! skipped backend test would let a broken backend land).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 puts its server binaries; `MUSUBI_PG_BIN` overrides it.
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The role `initdb` creates (trust authentication) and the database the tests use.
pub const PG_USER: &str = "musubi";
pub const PG_DATABASE: &str = "musubi";

/// A private PostgreSQL cluster, stopped (`-m immediate`) and deleted when dropped.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

fn pg_bin() -> PathBuf {
    let bin = std::env::var_os("MUSUBI_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PG_BIN));
    require_binaries(&bin);
    bin
}

/// Panics, saying what to install, unless `bin` has initdb and pg_ctl.
fn require_binaries(bin: &Path) {
    assert!(
        bin.join("initdb").is_file() && bin.join("pg_ctl").is_file(),
        "PostgreSQL 15 is not installed: {}/initdb or pg_ctl is missing. Run .ci/install \
         (it installs postgresql-15) or set MUSUBI_PG_BIN to the folder of initdb and pg_ctl",
        bin.display()
    );
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A loopback port nobody listens on right now (the server binds it a moment later; a
/// collision makes `start` try another).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

impl PgCluster {
    /// `initdb` a new cluster, start it on a free loopback port and create the `musubi`
    /// database. Panics with the server's log when any step fails.
    pub fn start() -> PgCluster {
        let bin = pg_bin();
        let as_root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("musubi-pg-")
            .tempdir()
            .expect("temp dir for the cluster");
        if as_root {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(
                status.success(),
                "chown postgres {} failed (is there a postgres user? .ci/install makes one)",
                dir.path().display()
            );
        }
        let mut cluster = PgCluster {
            dir,
            bin,
            port: 0,
            as_root,
        };
        let data = cluster.data_dir();
        cluster.run_checked(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        // A port can be taken between `free_port` and the server's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.create_database();
                    return cluster;
                }
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start on any of 5 ports: {last}");
    }

    /// `postgres://musubi@127.0.0.1:PORT/musubi`: no password (trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{PG_DATABASE}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new connection to the `musubi` database.
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }

    /// Stops the server (fast shutdown: open connections are closed, committed work is
    /// kept) and waits until it is down. [`PgCluster::start_again`] brings it back.
    pub fn stop(&self) {
        self.run_checked(
            "pg_ctl",
            &["-D", path_str(&self.data_dir()), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts the stopped server again on the same port (the "PostgreSQL restarted under
    /// load" tests: clients reconnect to the address they had).
    pub fn start_again(&self) {
        if let Err(e) = self.pg_ctl_start() {
            panic!("PostgreSQL did not start again on port {}: {e}", self.port);
        }
    }

    /// Creates a login role that must give `password` over TCP (SCRAM), while every other
    /// role keeps trust authentication: for the tests of where musubi reads its password.
    /// Returns the role's URL (no password in it).
    pub fn role_with_password(&self, role: &str, password: &str) -> String {
        let mut client = self.connect();
        client
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{}'",
                password.replace('\'', "''")
            ))
            .expect("create a role with a password");
        // pg_hba.conf: the first matching line wins.
        let hba = self.data_dir().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        std::fs::write(
            &hba,
            format!("host all {role} 127.0.0.1/32 scram-sha-256\n{rules}"),
        )
        .expect("write pg_hba.conf");
        client
            .batch_execute("SELECT pg_reload_conf()")
            .expect("reload the configuration");
        // The reload is asynchronous: wait until the role is refused without its password.
        let url = format!("postgres://{role}@127.0.0.1:{}/{PG_DATABASE}", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while postgres::Client::connect(&url, postgres::NoTls).is_ok() {
            assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
        url
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir()),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ));
        }
        // `-w` waits for the server to accept connections on its socket; make sure TCP
        // answers too before handing out the URL.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match postgres::Client::connect(
                &format!("postgres://{PG_USER}@127.0.0.1:{}/postgres", self.port),
                postgres::NoTls,
            ) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "no TCP connection within 30 s: {e}\n{}",
                        self.log()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn create_database(&self) {
        let mut admin = postgres::Client::connect(
            &format!("postgres://{PG_USER}@127.0.0.1:{}/postgres", self.port),
            postgres::NoTls,
        )
        .expect("connect to the postgres database");
        admin
            .batch_execute(&format!("CREATE DATABASE {PG_DATABASE}"))
            .expect("create the musubi database");
    }

    /// Runs one of the cluster's binaries as the cluster's owner.
    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        // The server's working directory must be one its owner can read.
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    }

    fn run_checked(&self, tool: &str, args: &[&str]) {
        let out = self.run(tool, args);
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: the directory is deleted next, nothing needs to be flushed.
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data_dir()),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn a_cluster_starts_serves_restarts_on_its_port_and_serves_again() {
    let pg = PgCluster::start();
    let port = pg.port();
    let mut client = pg.connect();
    client
        .batch_execute("CREATE TABLE kept (n BIGINT NOT NULL); INSERT INTO kept VALUES (42)")
        .expect("write to the new cluster");
    drop(client);

    pg.stop();
    assert!(
        postgres::Client::connect(&pg.url(), postgres::NoTls).is_err(),
        "a stopped cluster still accepts connections"
    );
    pg.start_again();
    assert_eq!(pg.port(), port);

    let mut client = pg.connect();
    let n: i64 = client
        .query_one("SELECT n FROM kept", &[])
        .expect("read after the restart")
        .get(0);
    assert_eq!(n, 42, "the committed row survived the restart");
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(user, PG_USER);
}

#[test]
fn missing_binaries_fail_the_test_saying_what_to_install() {
    let missing = tempfile::tempdir().unwrap();
    let panic = std::panic::catch_unwind(|| require_binaries(missing.path())).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("PostgreSQL 15 is not installed"),
        "{message}"
    );
    assert!(message.contains("Run .ci/install"), "{message}");
    require_binaries(Path::new(DEFAULT_PG_BIN));
}

#[test]
fn a_dropped_cluster_is_stopped_and_its_directory_gone() {
    let pg = PgCluster::start();
    let url = pg.url();
    let dir = pg.dir.path().to_path_buf();
    drop(pg);
    assert!(
        postgres::Client::connect(&url, postgres::NoTls).is_err(),
        "the cluster still runs after drop"
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

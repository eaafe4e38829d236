//! The PostgreSQL backend through the real binary: `[store]` in musubi.toml, `musubi check`
//! against a real cluster (reachable, unreachable, silent, with and without its password),
//! and `musubi migrate --to` from a SQLite data directory full of demo data.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pg::PgCluster;
use crate::util::{BIN, Daemon, DataDir, release_all, wait_current};

/// Runs musubi in `data` with `env` (and no PostgreSQL password inherited from the test's
/// own environment).
fn musubi(data: &DataDir, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .current_dir(data.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .env("MUSUBI_LOG", "warn")
        .env_remove("MUSUBI_PG_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("run musubi")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A musubi.toml in `data` with `[store]` as given; returns its path.
fn config(data: &DataDir, store: &str) -> String {
    let path = data.path().join("musubi.toml");
    std::fs::write(&path, format!("[store]\n{store}")).unwrap();
    path.to_str().unwrap().to_string()
}

fn check(data: &DataDir, store: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let cfg = config(data, store);
    let out = musubi(data, &["--config", &cfg, "check"], env);
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

#[test]
fn check_reports_the_sqlite_store_by_default() {
    let data = DataDir::new();
    let (ok, stdout, stderr) = check(&data, "", &[]);
    assert!(ok, "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("store: "))
        .unwrap_or_else(|| panic!("no store line: {stdout}"));
    assert!(line.starts_with("store: sqlite ("), "{line}");
    assert!(line.ends_with("musubi.sqlite3)"), "{line}");
}

#[test]
fn check_connects_to_postgres_and_reports_the_server_and_schema_versions() {
    let pg = PgCluster::start();
    let data = DataDir::new();
    let store = format!("backend = \"postgres\"\nurl = \"{}\"\n", pg.url());
    let (ok, stdout, stderr) = check(&data, &store, &[]);
    assert!(ok, "{stdout}{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("store: ")).unwrap();
    let known = musubi::store::schema_pg::KNOWN_VERSION;
    assert!(
        line.starts_with(&format!("store: postgres {}: PostgreSQL 15.", pg.url())),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "schema version 0 of {known} (musubi serve brings it up to date)"
        )),
        "{line}"
    );
    // check reads; it does not migrate.
    let tables: i64 = pg
        .connect()
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "check changed the database");

    musubi::store::schema_pg::migrate_pg(&mut pg.connect()).unwrap();
    let (ok, stdout, _) = check(&data, &store, &[]);
    assert!(ok);
    assert!(
        stdout.contains(&format!("schema version {known} of {known}\n")),
        "{stdout}"
    );
}

#[test]
fn check_fails_clearly_when_postgres_is_down() {
    let pg = PgCluster::start();
    let data = DataDir::new();
    let store = format!("backend = \"postgres\"\nurl = \"{}\"\n", pg.url());
    pg.stop();
    let started = Instant::now();
    let (ok, stdout, stderr) = check(&data, &store, &[]);
    assert!(!ok, "check passed with PostgreSQL down: {stdout}");
    assert!(
        stderr.contains(&format!("store: cannot connect to {}", pg.url())),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    pg.start_again();
    let (ok, _, stderr) = check(&data, &store, &[]);
    assert!(ok, "{stderr}");
}

/// A server that accepts the connection and never answers (a hung PostgreSQL, a proxy
/// without a backend) must not hang `check`: it fails after 5 s.
#[test]
fn check_gives_up_on_a_silent_server_after_five_seconds() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        // Hold the accepted connections open without a word until the test ends.
        let mut open = Vec::new();
        for _ in 0..2 {
            match silent.accept() {
                Ok((s, _)) => open.push(s),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(15));
        drop(open);
    });
    let data = DataDir::new();
    let store =
        format!("backend = \"postgres\"\nurl = \"postgres://musubi@127.0.0.1:{port}/musubi\"\n");
    let started = Instant::now();
    let (ok, _, stderr) = check(&data, &store, &[]);
    let took = started.elapsed();
    assert!(!ok);
    assert!(stderr.contains("no answer within 5 s"), "{stderr}");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "{took:?}"
    );
    drop(held);
}

#[test]
fn the_password_comes_from_the_file_or_the_environment_never_the_url() {
    let pg = PgCluster::start();
    let url = pg.role_with_password("guarded", "Tr1ck'y\"pw");
    let data = DataDir::new();
    let store = format!("backend = \"postgres\"\nurl = \"{url}\"\n");

    let (ok, _, stderr) = check(&data, &store, &[]);
    assert!(!ok, "connected without the password");
    assert!(stderr.contains("cannot connect to"), "{stderr}");

    let (ok, stdout, stderr) = check(&data, &store, &[("MUSUBI_PG_PASSWORD", "Tr1ck'y\"pw")]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("store: postgres"), "{stdout}");

    let file = data.path().join("pg-password");
    std::fs::write(&file, "Tr1ck'y\"pw\n").unwrap();
    let with_file = format!("{store}password_file = \"pg-password\"\n");
    let (ok, stdout, stderr) = check(&data, &with_file, &[]);
    assert!(ok, "{stdout}{stderr}");
    // The file wins over the environment.
    let (ok, _, stderr) = check(&data, &with_file, &[("MUSUBI_PG_PASSWORD", "wrong")]);
    assert!(ok, "{stderr}");

    std::fs::remove_file(&file).unwrap();
    let (ok, _, stderr) = check(&data, &with_file, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("store.password_file: cannot read"),
        "{stderr}"
    );

    let in_url = url.replace("guarded@", "guarded:Tr1ck@");
    let (ok, _, stderr) = check(
        &data,
        &format!("backend = \"postgres\"\nurl = \"{in_url}\"\n"),
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("store.url: holds a password"), "{stderr}");
    assert!(
        !stderr.contains("Tr1ck"),
        "the password was echoed: {stderr}"
    );
}

#[test]
fn store_settings_are_validated_with_the_key_named() {
    let data = DataDir::new();
    for (store, expected) in [
        (
            "backend = \"oracle\"\n",
            "store.backend: \"oracle\" is not a backend",
        ),
        ("backend = \"postgres\"\n", "store.url: missing"),
        (
            "backend = \"postgres\"\nurl = \"postgres://127.0.0.1/musubi\"\n",
            "store.url: \"postgres://127.0.0.1/musubi\" names no user",
        ),
        ("bakend = \"sqlite\"\n", "unknown field `bakend`"),
    ] {
        let (ok, stdout, stderr) = check(&data, store, &[]);
        assert!(!ok, "{store:?} passed: {stdout}");
        assert!(stderr.contains(expected), "{store:?}: {stderr}");
    }
}

/// The counts of every table on both sides, and the rows of a few, compared.
#[test]
fn migrate_copies_a_demo_store_into_postgres_and_verifies_the_counts() {
    let data = DataDir::new();
    fill_with_demo_data(&data);
    let pg = PgCluster::start();
    let out = musubi(&data, &["migrate", "--to", &pg.url(), "--json"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["target"], pg.url());
    let counts: Vec<(String, i64, i64)> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["sqlite"].as_i64().unwrap(),
                t["postgres"].as_i64().unwrap(),
            )
        })
        .collect();
    let sqlite_tables = musubi::store::schema_pg::sqlite_tables().unwrap();
    assert_eq!(
        counts.len(),
        sqlite_tables.len(),
        "not every table was copied: {counts:?}"
    );
    for (table, sqlite, postgres) in &counts {
        assert_eq!(sqlite, postgres, "{table}");
    }
    let count = |name: &str| counts.iter().find(|c| c.0 == name).unwrap().1;
    for table in [
        "members",
        "tokens",
        "reports",
        "report_observables",
        "taxii_objects",
        "campaign_reports",
        "releases",
        "released_reports",
        "meta",
    ] {
        assert!(
            count(table) > 0,
            "{table} is empty in the demo store: {counts:?}"
        );
    }

    // The same rows, not just as many: reports, the TAXII log, members, the id secret.
    let sqlite = rusqlite::Connection::open(data.path().join("musubi.sqlite3")).unwrap();
    let mut client = pg.connect();
    for (what, sql) in [
        (
            "reports",
            "SELECT seq, origin_kind, member_id, feed, received_at, title, tlp, body FROM reports ORDER BY seq",
        ),
        (
            "taxii_objects",
            "SELECT added_at, stix_id, seq, kind, value, scope, recipients FROM taxii_objects ORDER BY added_at, stix_id",
        ),
        (
            "members",
            "SELECT id, name, category, sector, class, status, cohort, token_generation FROM members ORDER BY id",
        ),
        ("meta", "SELECT key, value FROM meta ORDER BY key"),
    ] {
        let left = sqlite_rows(&sqlite, sql);
        let right = pg_rows(&mut client, sql);
        assert!(!left.is_empty(), "{what}");
        assert_eq!(left, right, "{what} differ");
    }

    // Identities continue after the copied ids.
    let max_seq: i64 = client
        .query_one("SELECT max(seq) FROM reports", &[])
        .unwrap()
        .get(0);
    let next: i64 = client
        .query_one(
            "INSERT INTO reports (origin_kind, received_at, title, tlp, confidence, content_hash, body)
             VALUES ('feed_item', 't', 't', 'clear', 'low', 'h', '{}') RETURNING seq",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(next, max_seq + 1);

    // A second copy into the (now non-empty) database is refused, and changes nothing.
    let out = musubi(&data, &["migrate", "--to", &pg.url()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("the PostgreSQL database is not empty"),
        "{stderr}"
    );
    let reports: i64 = client
        .query_one("SELECT count(*) FROM reports", &[])
        .unwrap()
        .get(0);
    assert_eq!(reports, count("reports") + 1);
}

#[test]
fn migrate_prints_a_table_of_counts_and_refuses_a_password_in_the_url() {
    let data = DataDir::new();
    data.add_member("Lone Member", "general", None);
    let pg = PgCluster::start();
    let out = musubi(
        &data,
        &[
            "migrate",
            "--to",
            &pg.url().replace("musubi@", "musubi:pw@"),
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--to: holds a password"), "{stderr}");
    assert!(!stderr.contains(":pw@"), "{stderr}");

    let out = musubi(&data, &["migrate", "--to", &pg.url()], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let members = stdout
        .lines()
        .find(|l| l.starts_with("members "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let numbers: Vec<&str> = members.split_whitespace().skip(1).collect();
    assert_eq!(numbers, vec!["1", "1"], "{members}");
    assert!(stdout.contains("every count matches"), "{stdout}");

    // No store in the data directory: a clear error, nothing created.
    let empty = DataDir::new();
    let out = musubi(&empty, &["migrate", "--to", &pg.url()], &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("no store in"), "{stderr}");
    assert!(!empty.path().join("musubi.sqlite3").exists());
}

/// The demo (members, reports, campaigns from the correlator, feed items), the native
/// fixtures imported by a member, and every report released: most tables get rows.
fn fill_with_demo_data(data: &DataDir) {
    let daemon = Daemon::start_with(data, &["--demo"]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(wait_current(&daemon));
    let status = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    data.add_member("Migrating Member", "class1", Some("electricity"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/native");
    let mut files: Vec<String> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    files.sort();
    let mut args = vec!["import"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--as", "Migrating Member"]);
    data.cli(&args);
    release_all(data);
}

fn sqlite_rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |r| {
        (0..width)
            .map(|i| {
                Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Null => "NULL".to_string(),
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(s) => s,
                    other => format!("{other:?}"),
                })
            })
            .collect()
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn pg_rows(client: &mut postgres::Client, sql: &str) -> Vec<Vec<String>> {
    client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    if *row.columns()[i].type_() == postgres::types::Type::INT8 {
                        row.get::<_, Option<i64>>(i)
                            .map_or("NULL".into(), |n| n.to_string())
                    } else {
                        row.get::<_, Option<String>>(i)
                            .unwrap_or_else(|| "NULL".into())
                    }
                })
                .collect()
        })
        .collect()
}

//! The PostgreSQL schema (`store::schema_pg`) on a real cluster: every migration applies,
//! again is a no-op, two nodes migrating at once apply each entry once, a newer database is
//! refused, and the tables and columns are SQLite's.

use std::collections::BTreeMap;

use musubi::store::schema_pg::{self, PgSchemaError};

use crate::pg::PgCluster;

fn db_message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default()
}

#[test]
fn every_migration_applies_once_and_every_sqlite_table_has_its_twin() {
    let pg = PgCluster::start();
    let mut client = pg.connect();
    let applied = schema_pg::migrate_pg(&mut client).expect("migrate a new database");
    assert_eq!(applied as i64, schema_pg::KNOWN_VERSION);
    assert_eq!(
        schema_pg::migrate_pg(&mut client).expect("migrate again"),
        0,
        "a current database is left alone"
    );
    let status = schema_pg::status(&mut client).unwrap();
    assert_eq!(status.schema_version, schema_pg::KNOWN_VERSION);
    assert!(status.server_version.starts_with("15."), "{status:?}");

    let sqlite = schema_pg::sqlite_tables().expect("a migrated in-memory SQLite store");
    assert!(
        sqlite.iter().any(|t| t.table == "taxii_objects"),
        "{sqlite:?}"
    );
    let postgres: BTreeMap<String, Vec<String>> = schema_pg::pg_tables(&mut client)
        .unwrap()
        .into_iter()
        .map(|t| (t.table, t.columns))
        .collect();
    for t in &sqlite {
        let Some(columns) = postgres.get(&t.table) else {
            panic!("SQLite table {} has no PostgreSQL table", t.table);
        };
        assert_eq!(
            columns, &t.columns,
            "table {}: PostgreSQL's columns (left) differ from SQLite's",
            t.table
        );
    }
    let extra: Vec<&String> = postgres
        .keys()
        .filter(|name| *name != "schema_version" && !sqlite.iter().any(|t| &t.table == *name))
        .collect();
    assert!(extra.is_empty(), "PostgreSQL-only tables: {extra:?}");

    // The id secret of migration 8: 32 random bytes in hex, one row.
    let secret: String = client
        .query_one("SELECT value FROM meta WHERE key = 'id_secret'", &[])
        .unwrap()
        .get(0);
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret}");
}

#[test]
fn the_postgres_schema_keeps_identities_checks_and_partial_indexes() {
    let pg = PgCluster::start();
    let mut client = pg.connect();
    schema_pg::migrate_pg(&mut client).unwrap();
    // An identity numbers a row inserted without an id, and takes an explicit one (a copy).
    client
        .batch_execute(
            "INSERT INTO audit (at, actor, action, target) VALUES ('t', 'a', 'x', 'y');
             INSERT INTO audit (id, at, actor, action, target) VALUES (100, 't', 'a', 'x', 'y');",
        )
        .unwrap();
    let ids: Vec<i64> = client
        .query("SELECT id FROM audit ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![1, 100]);
    // CHECK constraints are kept.
    let err = client
        .batch_execute(
            "INSERT INTO reports (origin_kind, received_at, title, tlp, confidence, content_hash, body)
             VALUES ('gossip', 't', 't', 'clear', 'low', 'h', '{}')",
        )
        .unwrap_err();
    assert!(db_message(&err).contains("check constraint"), "{err:?}");
    // The partial unique index: two unnamed members may share the placeholder name.
    client
        .batch_execute(
            "INSERT INTO members (id, name, category, class, created_at) VALUES
                ('a', '【非公表】', 'c', 'general', 't'), ('b', '【非公表】', 'c', 'general', 't');",
        )
        .expect("the placeholder name is not unique");
    let err = client
        .batch_execute(
            "INSERT INTO members (id, name, category, class, created_at) VALUES
                ('c', 'Same', 'c', 'general', 't'), ('d', 'Same', 'c', 'general', 't');",
        )
        .unwrap_err();
    assert!(db_message(&err).contains("members_name"), "{err:?}");
}

/// musubi's keyset pages and sorted lists assume SQLite's byte order of text; a database
/// made with a linguistic collation must not change it.
#[test]
fn text_orders_byte_by_byte_in_a_database_with_a_linguistic_collation() {
    let pg = PgCluster::start();
    pg.connect()
        .batch_execute(
            "CREATE DATABASE linguistic TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
        )
        .expect("an ICU database (PostgreSQL 15 with ICU)");
    let url = format!("postgres://musubi@127.0.0.1:{}/linguistic", pg.port());
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let strings = |client: &mut postgres::Client, sql: &str| -> Vec<String> {
        client
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    // The control: this database's own order is not bytes.
    assert_eq!(
        strings(
            &mut client,
            "SELECT v FROM (VALUES ('b'), ('B'), ('a')) AS x(v) ORDER BY v"
        ),
        vec!["a", "b", "B"]
    );
    schema_pg::migrate_pg(&mut client).unwrap();
    client
        .batch_execute("INSERT INTO meta (key, value) VALUES ('b', ''), ('B', ''), ('a', '')")
        .unwrap();
    assert_eq!(
        strings(&mut client, "SELECT key FROM meta ORDER BY key"),
        vec!["B", "a", "b", "id_secret"]
    );
    assert_eq!(
        strings(
            &mut client,
            "SELECT key FROM meta WHERE key > 'B' ORDER BY key"
        ),
        vec!["a", "b", "id_secret"]
    );
}

#[test]
fn two_nodes_migrating_at_once_apply_each_entry_once() {
    let pg = PgCluster::start();
    let url = pg.url();
    let nodes: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                schema_pg::migrate_pg(&mut client).expect("concurrent migrate")
            })
        })
        .collect();
    let applied: usize = nodes.into_iter().map(|n| n.join().unwrap()).sum();
    assert_eq!(
        applied as i64,
        schema_pg::KNOWN_VERSION,
        "entries applied twice"
    );
    let mut client = pg.connect();
    let secrets: i64 = client
        .query_one("SELECT count(*) FROM meta WHERE key = 'id_secret'", &[])
        .unwrap()
        .get(0);
    assert_eq!(secrets, 1);
}

#[test]
fn a_database_newer_than_this_musubi_is_refused() {
    let pg = PgCluster::start();
    let mut client = pg.connect();
    schema_pg::migrate_pg(&mut client).unwrap();
    client
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(schema_pg::KNOWN_VERSION + 1)],
        )
        .unwrap();
    let err = schema_pg::migrate_pg(&mut client).unwrap_err();
    assert!(
        matches!(err, PgSchemaError::TooNew { found, known }
            if found == schema_pg::KNOWN_VERSION + 1 && known == schema_pg::KNOWN_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade musubi"), "{err}");
}

/// The store's own PostgreSQL opening (`Store::open_postgres`) migrates with this schema,
/// on two nodes, and its writer runs the store's SQL against these tables.
#[test]
fn the_store_opens_on_this_schema_from_two_nodes_and_writes() {
    use musubi::model::MemberClass;
    use musubi::store::Store;
    let pg = PgCluster::start();
    let config: postgres::Config = pg.url().parse().unwrap();
    let first = Store::open_postgres(&config).expect("open on a new database");
    let second = Store::open_postgres(&config).expect("open on a migrated database");
    let (id, token) = first
        .writer()
        .run_blocking(musubi::council::commands::add_member(
            "Postgres Member".into(),
            MemberClass::General,
            None,
            None,
        ))
        .expect("add a member through the writer");
    assert!(token.starts_with("msb_"));
    let (other, _) = second
        .writer()
        .run_blocking(musubi::council::commands::add_member(
            "Second Node Member".into(),
            MemberClass::General,
            None,
            None,
        ))
        .expect("add a member on the second node");
    assert_ne!(id, other);
    first.close();
    second.close();
    let status = schema_pg::status(&mut pg.connect()).unwrap();
    assert_eq!(status.schema_version, schema_pg::KNOWN_VERSION);
    let members: i64 = pg
        .connect()
        .query_one("SELECT count(*) FROM members", &[])
        .unwrap()
        .get(0);
    assert_eq!(members, 2);
}

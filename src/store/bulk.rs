//! Bulk loading: the indexes of random keys built once instead of grown key by key.
//!
//! `report_observables` is keyed `(seq, kind, value)` and `taxii_objects` by
//! `(added_at, stix_id)`, so storing reports appends to both; their secondary indexes on
//! `(kind, value)` and on `stix_id` (random UUIDs) do not: every fresh value lands on a random
//! page. Past the writer's page cache each insert reads and rewrites a page of a
//! multi-gigabyte file, and an import of a million reports spent most of its time there
//! (`perf`: `sqlite3BtreeIndexMoveto`, `pcache1Fetch`, page I/O). Dropping these
//! [`BULK_INDEXES`] before a big import and creating them afterwards sorts every key once.
//!
//! While they are away, every query still answers correctly, more slowly: lookups by value
//! (`sightings::reports_holding`, `reports::feed_items_holding`) scan `report_observables`,
//! and TAXII lookups by object id (`objects/{id}`, `versions`, `match[id]`) scan
//! `taxii_objects`. No write needs them (their inserts' conflicts are on the primary keys).
//! The store never stays without them: the import creates them again whatever happens to
//! it, and opening a SQLite store creates any that is missing ([`ensure_sqlite`]), so an
//! import that was killed heals at the next open.

use super::Result;
use super::db::{Conn, params};

/// The index of observables by value: what correlation, sightings and lookups by value use.
pub const VALUE_INDEX: &str = "report_observables_value";

/// The indexes a bulk import drops and builds once, by name, with their definitions (the
/// same as the migrations' and PostgreSQL's schema): observables by value (migration 1) and
/// TAXII objects by id (migration 9).
pub const BULK_INDEXES: &[(&str, &str)] = &[
    (
        VALUE_INDEX,
        "CREATE INDEX IF NOT EXISTS report_observables_value ON report_observables(kind, value)",
    ),
    (
        "taxii_objects_id",
        "CREATE INDEX IF NOT EXISTS taxii_objects_id ON taxii_objects(stix_id)",
    ),
];

/// Drops the [`BULK_INDEXES`] before a bulk load (a no-op for any already gone). Run it in
/// a writer job of its own: the transaction then holds only the drops.
pub fn drop_indexes(conn: &Conn) -> Result<()> {
    for (name, _) in BULK_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    Ok(())
}

/// Creates the [`BULK_INDEXES`] (a no-op for any that exists): after a bulk load, one sort
/// of every key. Run it in a writer job of its own, alone in its group, so that no
/// savepoint journals the pages it writes.
pub fn build_indexes(conn: &Conn) -> Result<()> {
    for (_, create) in BULK_INDEXES {
        conn.execute_batch(create)?;
    }
    Ok(())
}

/// The [`BULK_INDEXES`] that do not exist (SQLite).
pub fn missing_indexes(conn: &Conn) -> Result<Vec<&'static str>> {
    let mut missing = Vec::new();
    for (name, _) in BULK_INDEXES {
        let exists = conn.exists(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1",
            params![name],
        )?;
        if !exists {
            missing.push(*name);
        }
    }
    Ok(missing)
}

/// Part of opening a SQLite store: an import killed while the indexes were dropped (power
/// loss, `kill -9`) left the store without them; build them again before anything runs.
pub(super) fn ensure_sqlite(conn: &rusqlite::Connection) -> Result<()> {
    let conn = Conn::sqlite(conn);
    let missing = missing_indexes(&conn)?;
    if missing.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        indexes = ?missing,
        "Indexes are missing (an import was interrupted); building them again."
    );
    let started = std::time::Instant::now();
    build_indexes(&conn)?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "Built the missing indexes."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Indicator, Observable, Origin, ReportDraft, Tlp};
    use crate::store::Store;

    fn draft(title: &str, domain: &str) -> ReportDraft {
        let mut d = ReportDraft::new(title.to_string(), Tlp::Green);
        d.indicators.push(Indicator {
            observable: Observable::parse_named("domain", domain).expect("a domain"),
            comment: None,
            stix_id: None,
        });
        d
    }

    fn has_indexes(store: &Store) -> bool {
        store.read(missing_indexes).expect("read").is_empty()
    }

    /// A store left without the indexes (an import killed between their drop and their
    /// rebuild) gets them back when it is opened, and lookups by value answer the same
    /// before and after.
    #[test]
    fn opening_a_store_without_the_bulk_indexes_builds_them_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        assert!(has_indexes(&store), "a new store has the indexes");
        let origin = Origin::FeedItem { feed: "f".into() };
        store
            .writer()
            .write_blocking(move |conn| {
                for i in 0..50 {
                    let d = draft(&format!("r{i}"), &format!("h{}.example.net", i % 7));
                    super::super::reports::insert(conn, &origin, &d, chrono::Utc::now())?;
                }
                drop_indexes(conn)
            })
            .expect("insert and drop");
        assert_eq!(
            store.read(missing_indexes).expect("read"),
            ["report_observables_value", "taxii_objects_id"],
            "dropped"
        );
        let probe = Observable::parse_named("domain", "h3.example.net").expect("domain");
        let without = {
            let probe = probe.clone();
            store
                .read(move |c| super::super::sightings::reports_holding(c, &probe))
                .expect("lookup without the index")
        };
        assert_eq!(without.len(), 7, "lookups by value still answer");
        store.close();

        let store = Store::open(dir.path()).expect("reopen");
        assert!(has_indexes(&store), "opening built them again");
        let with = store
            .read(move |c| super::super::sightings::reports_holding(c, &probe))
            .expect("lookup");
        assert_eq!(with, without);
        store.close();
    }
}

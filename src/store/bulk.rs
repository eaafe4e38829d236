//! Bulk loading: the observable index built once instead of grown value by value.
//!
//! `report_observables` is keyed `(seq, kind, value)`, so storing reports appends to it; its
//! secondary index on `(kind, value)` is not: every fresh value lands on a random page of it.
//! Past the writer's page cache each insert reads and rewrites a page of a multi-gigabyte
//! file, and an import of a million reports spent nine tenths of its time there (`perf`:
//! `sqlite3BtreeIndexMoveto`, `pcache1Fetch`, page I/O). Dropping the index before a big
//! import and creating it afterwards sorts every value once instead.
//!
//! While the index is away, lookups by value (`sightings::reports_holding`,
//! `reports::feed_items_holding`) still answer correctly: SQLite scans
//! `report_observables` instead, which is slower (linear in the store) but not wrong. The
//! store never stays without it: the import creates it again whatever happens to it, and
//! opening a SQLite store creates it if it is missing ([`ensure_value_index_sqlite`]), so an
//! import that was killed heals at the next open.

use super::Result;
use super::db::{Conn, params};

/// The index of observables by value: what correlation, sightings and lookups by value use.
pub const VALUE_INDEX: &str = "report_observables_value";

/// Its definition, the same as migration 1's (and PostgreSQL's schema).
const CREATE_VALUE_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS report_observables_value ON report_observables(kind, value)";

/// Drops the index of observables by value before a bulk load (a no-op if it is already
/// gone). Run it in a writer job of its own: the transaction then holds only the drop.
pub fn drop_value_index(conn: &Conn) -> Result<()> {
    conn.execute_batch(&format!("DROP INDEX IF EXISTS {VALUE_INDEX}"))?;
    Ok(())
}

/// Creates the index of observables by value (a no-op if it exists): after a bulk load,
/// one sort of every value. Run it in a writer job of its own, alone in its group, so that
/// no savepoint journals the pages it writes.
pub fn build_value_index(conn: &Conn) -> Result<()> {
    conn.execute_batch(CREATE_VALUE_INDEX)?;
    Ok(())
}

/// Whether the index of observables by value exists (SQLite).
pub fn has_value_index(conn: &Conn) -> Result<bool> {
    Ok(conn.exists(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1",
        params![VALUE_INDEX],
    )?)
}

/// Part of opening a SQLite store: an import killed while the index was dropped (power
/// loss, `kill -9`) left the store without it; build it again before anything runs.
pub(super) fn ensure_value_index_sqlite(conn: &rusqlite::Connection) -> Result<()> {
    let conn = Conn::sqlite(conn);
    if has_value_index(&conn)? {
        return Ok(());
    }
    tracing::warn!(
        index = VALUE_INDEX,
        "The observable index is missing (an import was interrupted); building it again."
    );
    let started = std::time::Instant::now();
    build_value_index(&conn)?;
    tracing::info!(
        index = VALUE_INDEX,
        seconds = started.elapsed().as_secs_f64(),
        "Built the observable index."
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

    fn has_index(store: &Store) -> bool {
        store.read(has_value_index).expect("read")
    }

    /// A store left without the index (an import killed between its drop and its rebuild)
    /// gets it back when it is opened, and lookups by value answer the same before and
    /// after.
    #[test]
    fn opening_a_store_without_the_value_index_builds_it_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        assert!(has_index(&store), "a new store has the index");
        let origin = Origin::FeedItem { feed: "f".into() };
        store
            .writer()
            .write_blocking(move |conn| {
                for i in 0..50 {
                    let d = draft(&format!("r{i}"), &format!("h{}.example.net", i % 7));
                    super::super::reports::insert(conn, &origin, &d, chrono::Utc::now())?;
                }
                drop_value_index(conn)
            })
            .expect("insert and drop");
        assert!(!has_index(&store), "dropped");
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
        assert!(has_index(&store), "opening built it again");
        let with = store
            .read(move |c| super::super::sightings::reports_holding(c, &probe))
            .expect("lookup");
        assert_eq!(with, without);
        store.close();
    }
}

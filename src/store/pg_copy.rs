//! `musubi migrate --to postgres://...`: a SQLite store copied into a PostgreSQL database.
//!
//! Generic on purpose: the tables, their columns and their order come from the SQLite file
//! itself (`sqlite_schema`, `pragma_table_info`, `pragma_foreign_key_list`) and each value is
//! bound by the PostgreSQL column's type, so a table added by a later migration is copied
//! without anyone remembering to list it here. The copy is one PostgreSQL transaction (a
//! failed copy leaves the target as empty as it was, ready for another try) read from one
//! SQLite read transaction (a consistent snapshot, even beside a running daemon), and the
//! counts it verifies are of that same snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use postgres::types::ToSql;
use rusqlite::Connection;
use rusqlite::types::Value;

use super::schema_pg::{self, PgSchemaError, TableColumns};

/// Rows per INSERT (fewer for wide tables: PostgreSQL takes at most 65,535 parameters).
const BATCH_ROWS: usize = 500;
const MAX_PARAMETERS: usize = 65_535;

/// Rows the PostgreSQL migrations write themselves, which a copy replaces rather than
/// counting as data already there: (table, key column, key).
const SEEDED_ROWS: &[(&str, &str, &str)] = &[("meta", "key", "id_secret")];

/// Errors of a copy. Each names the table (and column and row) it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    #[error("no store in {0}: the file is missing")]
    NoStore(PathBuf),
    #[error("SQLite store: {0}")]
    Store(#[from] super::StoreError),
    #[error(transparent)]
    Schema(#[from] PgSchemaError),
    #[error("PostgreSQL, table {table}: {}", schema_pg::pg_message(.error))]
    Postgres {
        table: String,
        error: postgres::Error,
    },
    #[error(
        "the PostgreSQL database is not empty (table {table} has rows): musubi migrate copies into an empty database only"
    )]
    NotEmpty { table: String },
    #[error("table {table} of the SQLite store has no PostgreSQL counterpart")]
    MissingTable { table: String },
    #[error("table {table}: columns differ (SQLite {sqlite:?}, PostgreSQL {postgres:?})")]
    Columns {
        table: String,
        sqlite: Vec<String>,
        postgres: Vec<String>,
    },
    #[error("{table}.{column}: PostgreSQL type {pg_type} is not one musubi copies")]
    UnsupportedType {
        table: String,
        column: String,
        pg_type: String,
    },
    #[error(
        "{table}.{column}, row {row}: the value {value} does not fit PostgreSQL type {pg_type}"
    )]
    BadValue {
        table: String,
        column: String,
        row: u64,
        value: String,
        pg_type: String,
    },
    #[error("the foreign keys of the SQLite store form a cycle through {0:?}")]
    Cycle(Vec<String>),
}

impl CopyError {
    fn pg(table: &str) -> impl FnOnce(postgres::Error) -> CopyError + '_ {
        move |error| CopyError::Postgres {
            table: table.to_string(),
            error,
        }
    }
}

/// One table's row count on both sides after the copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCount {
    pub table: String,
    pub sqlite: i64,
    pub postgres: i64,
}

/// The outcome of a copy: every table's counts, in the order copied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    pub tables: Vec<TableCount>,
    /// The schema version both sides are at.
    pub schema_version: i64,
}

impl CopyReport {
    /// The tables whose counts differ (none after a good copy).
    pub fn mismatches(&self) -> impl Iterator<Item = &TableCount> {
        self.tables.iter().filter(|t| t.sqlite != t.postgres)
    }
}

/// Copies the store of `data_dir` into the database `client` is connected to: migrates the
/// SQLite store and the PostgreSQL database to the current version, refuses a target that
/// already holds data, copies every table in foreign-key order, resets identity sequences
/// past the copied ids, commits, and counts both sides. `progress` hears each table's name
/// before it is copied.
pub fn copy_sqlite_to_pg(
    data_dir: &Path,
    client: &mut postgres::Client,
    mut progress: impl FnMut(&str),
) -> Result<CopyReport, CopyError> {
    let path = data_dir.join(super::DB_FILE);
    if !path.is_file() {
        return Err(CopyError::NoStore(path));
    }
    // The store's own opening: an older store is brought to the version PostgreSQL gets.
    let mut sqlite = super::writer::open_write_connection(&path)?;
    super::migrate(&mut sqlite, &path)?;
    schema_pg::migrate_pg(client)?;

    let snapshot = sqlite.transaction().map_err(super::StoreError::from)?;
    let tables = copy_order(sqlite_tables(&snapshot)?, &snapshot)?;

    let mut tx = client.transaction().map_err(CopyError::pg("(begin)"))?;
    // The writers' own lock: no node commits while the copy runs (a node started early
    // waits, then finds the data; its writes before the copy make the copy refuse), and two
    // copies cannot interleave.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&super::LOG_LOCK])
        .map_err(CopyError::pg("(lock)"))?;
    let pg_types = pg_column_types(&mut tx)?;
    for t in &tables {
        let Some(types) = pg_types.get(&t.table) else {
            return Err(CopyError::MissingTable {
                table: t.table.clone(),
            });
        };
        let pg_columns: Vec<String> = types.iter().map(|(c, _)| c.clone()).collect();
        if pg_columns != t.columns {
            return Err(CopyError::Columns {
                table: t.table.clone(),
                sqlite: t.columns.clone(),
                postgres: pg_columns,
            });
        }
        refuse_rows(&mut tx, &t.table)?;
    }
    for (table, key_column, key) in SEEDED_ROWS {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE {} = $1",
                quote(table),
                quote(key_column)
            ),
            &[key],
        )
        .map_err(CopyError::pg(table))?;
    }
    for t in &tables {
        progress(&t.table);
        copy_table(&snapshot, &mut tx, t, &pg_types[&t.table])?;
        reset_identities(&mut tx, &t.table)?;
    }
    tx.commit().map_err(CopyError::pg("(commit)"))?;

    let mut counts = Vec::new();
    for t in &tables {
        let sqlite_count: i64 = snapshot
            .query_row(
                &format!("SELECT count(*) FROM {}", quote(&t.table)),
                [],
                |r| r.get(0),
            )
            .map_err(super::StoreError::from)?;
        let pg_count: i64 = client
            .query_one(&format!("SELECT count(*) FROM {}", quote(&t.table)), &[])
            .map_err(CopyError::pg(&t.table))?
            .get(0);
        counts.push(TableCount {
            table: t.table.clone(),
            sqlite: sqlite_count,
            postgres: pg_count,
        });
    }
    snapshot.commit().map_err(super::StoreError::from)?;
    Ok(CopyReport {
        tables: counts,
        schema_version: schema_pg::KNOWN_VERSION,
    })
}

/// The SQLite store's tables (SQLite's own excluded) and their columns in order, by name.
pub(super) fn sqlite_tables(conn: &Connection) -> super::Result<Vec<TableColumns>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for table in names {
        let columns = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        out.push(TableColumns { table, columns });
    }
    Ok(out)
}

/// `tables` ordered so that every table comes after the tables its foreign keys name
/// (ties by name, so the order is the same on every run).
fn copy_order(
    tables: Vec<TableColumns>,
    conn: &Connection,
) -> Result<Vec<TableColumns>, CopyError> {
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &tables {
        let parents: BTreeSet<String> = conn
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
            .and_then(|mut s| {
                s.query_map([&t.table], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(super::StoreError::from)?;
        needs.insert(
            t.table.clone(),
            parents.into_iter().filter(|p| *p != t.table).collect(),
        );
    }
    let mut by_name: BTreeMap<String, TableColumns> =
        tables.into_iter().map(|t| (t.table.clone(), t)).collect();
    let mut out = Vec::new();
    while !by_name.is_empty() {
        let ready: Vec<String> = by_name
            .keys()
            .filter(|name| needs[*name].iter().all(|p| !by_name.contains_key(p)))
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(CopyError::Cycle(by_name.into_keys().collect()));
        }
        for name in ready {
            out.push(by_name.remove(&name).expect("listed"));
        }
    }
    Ok(out)
}

/// Each table's columns in order with their PostgreSQL types (`information_schema`'s
/// `data_type`: "bigint", "text", "bytea", ...).
fn pg_column_types(
    tx: &mut postgres::Transaction<'_>,
) -> Result<BTreeMap<String, Vec<(String, String)>>, CopyError> {
    let rows = tx
        .query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns
             WHERE table_schema = current_schema()
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .map_err(CopyError::pg("(information_schema)"))?;
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for row in rows {
        out.entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    Ok(out)
}

/// Fails when `table` has a row other than those the migrations seed.
fn refuse_rows(tx: &mut postgres::Transaction<'_>, table: &str) -> Result<(), CopyError> {
    let mut sql = format!("SELECT EXISTS (SELECT 1 FROM {}", quote(table));
    for (seeded, key_column, key) in SEEDED_ROWS {
        if *seeded == table {
            sql.push_str(&format!(" WHERE {} <> '{}'", quote(key_column), key));
        }
    }
    sql.push(')');
    let has_rows: bool = tx
        .query_one(&sql, &[])
        .map_err(CopyError::pg(table))?
        .get(0);
    if has_rows {
        return Err(CopyError::NotEmpty {
            table: table.to_string(),
        });
    }
    Ok(())
}

/// Copies one table in batches of multi-row INSERTs.
fn copy_table(
    sqlite: &Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &TableColumns,
    types: &[(String, String)],
) -> Result<(), CopyError> {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
    let width = columns.len();
    let batch_rows = BATCH_ROWS.min(MAX_PARAMETERS / width.max(1)).max(1);
    let mut select = sqlite
        .prepare(&format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            quote(&table.table)
        ))
        .map_err(super::StoreError::from)?;
    let mut rows = select.query([]).map_err(super::StoreError::from)?;
    let mut batch: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(batch_rows * width);
    let mut full_statement = None;
    let mut row_number = 0u64;
    while let Some(row) = rows.next().map_err(super::StoreError::from)? {
        row_number += 1;
        for (i, (column, pg_type)) in types.iter().enumerate() {
            let value: Value = row.get(i).map_err(super::StoreError::from)?;
            batch.push(bind(&table.table, column, pg_type, row_number, value)?);
        }
        if batch.len() == batch_rows * width {
            if full_statement.is_none() {
                full_statement = Some(
                    tx.prepare(&insert_sql(&table.table, &columns, batch_rows))
                        .map_err(CopyError::pg(&table.table))?,
                );
            }
            let params: Vec<&(dyn ToSql + Sync)> = batch.iter().map(|b| b.as_ref()).collect();
            tx.execute(full_statement.as_ref().expect("prepared"), &params)
                .map_err(CopyError::pg(&table.table))?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        let params: Vec<&(dyn ToSql + Sync)> = batch.iter().map(|b| b.as_ref()).collect();
        tx.execute(
            &insert_sql(&table.table, &columns, batch.len() / width),
            &params,
        )
        .map_err(CopyError::pg(&table.table))?;
    }
    Ok(())
}

fn insert_sql(table: &str, columns: &[String], rows: usize) -> String {
    let width = columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(table),
        columns.join(", ")
    );
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// A SQLite value as the Rust type PostgreSQL's column takes. SQLite's type affinity has
/// already turned numbers in TEXT columns into text and numeric text in INTEGER columns
/// into integers; what is left over (text in a BIGINT column that is not a number) is named.
fn bind(
    table: &str,
    column: &str,
    pg_type: &str,
    row: u64,
    value: Value,
) -> Result<Box<dyn ToSql + Sync>, CopyError> {
    let bad = |value: &Value| CopyError::BadValue {
        table: table.to_string(),
        column: column.to_string(),
        row,
        value: format!("{value:?}"),
        pg_type: pg_type.to_string(),
    };
    Ok(match pg_type {
        "bigint" => Box::new(match value {
            Value::Null => None,
            Value::Integer(i) => Some(i),
            Value::Text(ref s) => Some(s.trim().parse::<i64>().map_err(|_| bad(&value))?),
            Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            other => return Err(bad(&other)),
        }),
        "text" => Box::new(match value {
            Value::Null => None,
            Value::Text(s) if !s.contains('\0') => Some(s),
            Value::Integer(i) => Some(i.to_string()),
            Value::Real(f) => Some(f.to_string()),
            Value::Blob(b) => {
                Some(String::from_utf8(b).map_err(|e| bad(&Value::Blob(e.into_bytes())))?)
            }
            other => return Err(bad(&other)),
        }),
        "bytea" => Box::new(match value {
            Value::Null => None,
            Value::Blob(b) => Some(b),
            Value::Text(s) => Some(s.into_bytes()),
            other => return Err(bad(&other)),
        }),
        "double precision" => Box::new(match value {
            Value::Null => None,
            Value::Real(f) => Some(f),
            Value::Integer(i) => Some(i as f64),
            other => return Err(bad(&other)),
        }),
        "boolean" => Box::new(match value {
            Value::Null => None,
            Value::Integer(0) => Some(false),
            Value::Integer(1) => Some(true),
            other => return Err(bad(&other)),
        }),
        other => {
            return Err(CopyError::UnsupportedType {
                table: table.to_string(),
                column: column.to_string(),
                pg_type: other.to_string(),
            });
        }
    })
}

/// Moves each identity sequence of `table` past the largest copied id, so that the next
/// row PostgreSQL numbers itself does not collide with one copied from SQLite.
fn reset_identities(tx: &mut postgres::Transaction<'_>, table: &str) -> Result<(), CopyError> {
    let identities = tx
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 AND is_identity = 'YES'",
            &[&table],
        )
        .map_err(CopyError::pg(table))?;
    for row in identities {
        let column: String = row.get(0);
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(max({c}), 0) + 1, false)
                 FROM {t}",
                c = quote(&column),
                t = quote(table)
            ),
            &[&quote(table), &column],
        )
        .map_err(CopyError::pg(table))?;
    }
    Ok(())
}

/// A double-quoted identifier (the names come from the store's own schema; quoting keeps a
/// name such as `count` or `at` an identifier on both engines).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_come_after_those_they_reference() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn, Path::new(":memory:")).unwrap();
        let order: Vec<String> = copy_order(sqlite_tables(&conn).unwrap(), &conn)
            .unwrap()
            .into_iter()
            .map(|t| t.table)
            .collect();
        let pos = |t: &str| order.iter().position(|x| x == t).unwrap();
        assert!(pos("members") < pos("reports"));
        assert!(pos("reports") < pos("taxii_objects"));
        assert!(pos("releases") < pos("released_reports"));
        assert!(pos("feedback_requests") < pos("sightings"));
        assert!(pos("sightings") < pos("feedback_answers"));
        assert!(pos("inquiries") < pos("inquiry_answers"));
        assert!(!order.iter().any(|t| t.starts_with("sqlite_")), "{order:?}");
    }

    #[test]
    fn a_value_that_fits_no_column_type_is_named() {
        let err = bind("reports", "seq", "bigint", 7, Value::Text("x".into()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("reports.seq, row 7"), "{err}");
        let err = bind("t", "c", "jsonb", 1, Value::Null)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("jsonb"), "{err}");
    }

    #[test]
    fn a_batch_numbers_its_parameters_row_by_row() {
        let sql = insert_sql("t", &["\"a\"".into(), "\"b\"".into()], 2);
        assert_eq!(
            sql,
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1, $2), ($3, $4)"
        );
    }
}

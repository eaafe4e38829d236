//! One SQL dialect, two backends: the connection every store module writes its SQL against.
//!
//! SQLite is the embedded default (one server, the demo, the tests); PostgreSQL is the shared
//! store of a council running several nodes. The store's modules do not know which one they
//! talk to: they hold a [`Conn`] and write SQL both engines accept — numbered placeholders
//! `?1, ?2` (rewritten to `$1, $2` for PostgreSQL), `ON CONFLICT ... DO NOTHING/UPDATE`,
//! `RETURNING`, integers as `i64` (BIGINT on PostgreSQL), booleans as integers 0/1.
//!
//! The API keeps the shape of `rusqlite` (`execute`, `query_row`, `prepare_cached(..)
//! .query_map`, [`params!`], [`OptionalExtension`]) so that a store module reads the same as
//! before; what differs per engine — transactions, savepoints, pools, the commit-order log
//! lock — lives in the writer and the store's opening code, not here.

use std::cell::RefCell;
use std::collections::HashMap;

use thiserror::Error;

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// SQL for the text of a top-level `key` of a JSON document in `column` (TEXT on both
    /// engines): a string gives the string, an array or object its JSON text.
    pub fn json_text(self, column: &str, key: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_extract({column}, '$.{key}')"),
            Backend::Postgres => format!("(CAST({column} AS jsonb) ->> '{key}')"),
        }
    }

    /// SQL that holds when the JSON array of strings in `column` contains the value bound to
    /// the next placeholder.
    pub fn json_array_has(self, column: &str) -> String {
        match self {
            Backend::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each({column}) j WHERE j.value = ?)")
            }
            Backend::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CAST({column} AS jsonb)) AS j(v) WHERE j.v = ?)"
            ),
        }
    }
}

/// A failure of either engine.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Postgres(#[from] postgres::Error),
    /// `query_row` found nothing (see [`OptionalExtension::optional`]).
    #[error("query returned no rows")]
    NoRows,
    /// A column held a value the Rust type cannot take.
    #[error("column {index}: {message}")]
    Column { index: usize, message: String },
}

impl DbError {
    /// Whether a unique or primary-key constraint refused the statement.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
                    && matches!(
                        e.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    )
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }

    /// Whether any constraint (unique, foreign key, check, not null) refused the statement.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            // Class 23: integrity constraint violation.
            DbError::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }

    /// Whether the engine could not be reached or could not write (disk full, read-only,
    /// I/O, connection lost): the request was fine, the storage was not.
    pub fn is_unavailable(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DiskFull | ReadOnly | SystemIoFailure | CannotOpen | DatabaseBusy | DatabaseLocked
            ),
            DbError::Postgres(e) => match e.code() {
                // No SQLSTATE: the connection failed or was closed (an I/O error), or a
                // parameter could not be converted (the program's fault, not the store's).
                None => {
                    e.is_closed()
                        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                }
                Some(code) => {
                    let c = code.code();
                    // 08 connection exception, 53 insufficient resources, 57 operator
                    // intervention (shutdown), 58 system error, 40001 serialization.
                    c.starts_with("08")
                        || c.starts_with("53")
                        || c.starts_with("57")
                        || c.starts_with("58")
                }
            },
            _ => false,
        }
    }

    /// Whether the disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A value bound to a placeholder: a type both engines bind to the same column type.
///
/// Implemented for a closed list on purpose: `u32` would bind as an integer on SQLite but
/// as an OID on PostgreSQL (and fail there at run time), so it, `usize` and the other
/// unsigned types do not compile as parameters; convert them to `i64`.
pub trait Param {
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync);
}

macro_rules! param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn sqlite(&self) -> &dyn rusqlite::ToSql {
                self
            }
            fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
                self
            }
        }
        impl Param for Option<$t> {
            fn sqlite(&self) -> &dyn rusqlite::ToSql {
                self
            }
            fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
                self
            }
        }
    )*};
}
param!(i64, f64, bool, String, Vec<u8>, Value, &str);

impl<T: Param + ?Sized> Param for &T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        (**self).sqlite()
    }
    fn pg(&self) -> &(dyn postgres::types::ToSql + Sync) {
        (**self).pg()
    }
}

/// A list of values as statement parameters (`WHERE seq IN (?1, ?2, ...)`).
pub fn each<T: Param>(values: &[T]) -> Vec<&dyn Param> {
    values.iter().map(|v| v as &dyn Param).collect()
}

/// A parameter whose type is known only at run time (queries assembled from filters).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::Type;
        match self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            // PostgreSQL may type a placeholder narrower than BIGINT (a function argument).
            Value::Integer(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Integer(i) if *ty == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            Value::Integer(i) => i.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        use postgres::types::Type;
        matches!(*ty, Type::INT2 | Type::INT4)
            || <i64 as postgres::types::ToSql>::accepts(ty)
            || <String as postgres::types::ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

/// The parameters of a statement, as `rusqlite::params!` builds them.
#[macro_export]
macro_rules! db_params {
    () => {
        &[] as &[&dyn $crate::store::db::Param]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::Param),+] as &[&dyn $crate::store::db::Param]
    };
}
pub use crate::db_params as params;

/// A value read from a column of either engine.
///
/// Integers are read leniently on PostgreSQL (INT2, INT4 and INT8 all give an `i64`), so that
/// `count(*)`, `length(..)` and BIGINT columns read alike; booleans are 0/1 integers on SQLite
/// and either integers or BOOLEAN on PostgreSQL.
pub trait FromColumn: Sized {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self>;
    fn pg(row: &postgres::Row, index: usize) -> Result<Self>;
}

fn pg_column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    index: usize,
) -> Result<T> {
    row.try_get(index).map_err(|e| DbError::Column {
        index,
        message: e.to_string(),
    })
}

/// An integer of any width from PostgreSQL (None for NULL).
fn pg_int(row: &postgres::Row, index: usize) -> Result<Option<i64>> {
    use postgres::types::Type;
    let ty = row
        .columns()
        .get(index)
        .map(|c| c.type_().clone())
        .ok_or(DbError::Column {
            index,
            message: "no such column".into(),
        })?;
    Ok(match ty {
        Type::INT2 => pg_column::<Option<i16>>(row, index)?.map(i64::from),
        Type::INT4 => pg_column::<Option<i32>>(row, index)?.map(i64::from),
        Type::BOOL => pg_column::<Option<bool>>(row, index)?.map(i64::from),
        _ => pg_column::<Option<i64>>(row, index)?,
    })
}

fn not_null<T>(value: Option<T>, index: usize) -> Result<T> {
    value.ok_or(DbError::Column {
        index,
        message: "unexpected NULL".into(),
    })
}

impl FromColumn for i64 {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
    fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
        not_null(pg_int(row, index)?, index)
    }
}

impl FromColumn for Option<i64> {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
    fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
        pg_int(row, index)
    }
}

impl FromColumn for u32 {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
    fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
        let v = not_null(pg_int(row, index)?, index)?;
        u32::try_from(v).map_err(|e| DbError::Column {
            index,
            message: e.to_string(),
        })
    }
}

impl FromColumn for Option<u32> {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
    fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
        pg_int(row, index)?
            .map(|v| {
                u32::try_from(v).map_err(|e| DbError::Column {
                    index,
                    message: e.to_string(),
                })
            })
            .transpose()
    }
}

impl FromColumn for bool {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
    fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
        Ok(not_null(pg_int(row, index)?, index)? != 0)
    }
}

impl FromColumn for Option<bool> {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
        Ok(row.get(index)?)
    }
    fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
        Ok(pg_int(row, index)?.map(|v| v != 0))
    }
}

/// Types read the same way by both engines' own conversions.
macro_rules! plain_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self> {
                Ok(row.get(index)?)
            }
            fn pg(row: &postgres::Row, index: usize) -> Result<Self> {
                pg_column(row, index)
            }
        }
    )*};
}
plain_column!(
    String,
    Option<String>,
    f64,
    Option<f64>,
    Vec<u8>,
    Option<Vec<u8>>
);

/// One row of a result, from either engine.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// The value of column `index` (from 0). The first type parameter is there so that
    /// `r.get::<_, i64>(0)` reads as it did with rusqlite.
    pub fn get<I: ColumnIndex, T: FromColumn>(&self, index: I) -> Result<T> {
        let index = index.index();
        match self {
            Row::Sqlite(r) => T::sqlite(r, index),
            Row::Postgres(r) => T::pg(r, index),
        }
    }
}

/// A column position.
pub trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// `Result<T>` of a single-row query, with "no row" as `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The PostgreSQL side of a [`Conn`]: a transaction (or savepoint) with the session's
/// statement cache. Object-safe so that savepoints nested in transactions erase to one type.
pub(crate) trait PgClient {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement>;
    fn query(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>>;
    fn execute(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64>;
    fn batch_execute(&mut self, sql: &str) -> Result<()>;
}

/// Prepared statements of one PostgreSQL session, by their SQLite-dialect text.
#[derive(Default)]
pub(crate) struct StatementCache(HashMap<String, postgres::Statement>);

/// A PostgreSQL transaction or savepoint with its session's statement cache.
pub(crate) struct PgTx<'c> {
    pub(crate) tx: postgres::Transaction<'c>,
    pub(crate) cache: &'c mut StatementCache,
}

impl PgTx<'_> {
    /// A savepoint inside this transaction, as a [`PgTx`] of its own.
    pub(crate) fn savepoint(&mut self) -> Result<PgTx<'_>> {
        Ok(PgTx {
            tx: self.tx.transaction()?,
            cache: &mut *self.cache,
        })
    }
}

impl PgClient for PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.cache.0.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.tx.prepare(&to_postgres(sql))?;
        self.cache.0.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
    fn query(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        Ok(self.tx.query(statement, params)?)
    }
    fn execute(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        Ok(self.tx.execute(statement, params)?)
    }
    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.tx.batch_execute(sql)?)
    }
}

/// A connection (inside a transaction or not) of either engine. Every store module takes
/// `&Conn`.
pub struct Conn<'a>(Inner<'a>);

enum Inner<'a> {
    Sqlite(&'a rusqlite::Connection),
    /// A connection the `Conn` owns (in-memory databases of unit tests).
    SqliteOwned(Box<rusqlite::Connection>),
    Postgres(RefCell<&'a mut (dyn PgClient + 'a)>),
}

impl<'a> Conn<'a> {
    /// A SQLite connection (or transaction or savepoint, which deref to one).
    pub fn sqlite(conn: &'a rusqlite::Connection) -> Conn<'a> {
        Conn(Inner::Sqlite(conn))
    }

    /// A `Conn` that owns its SQLite connection.
    pub fn sqlite_owned(conn: rusqlite::Connection) -> Conn<'static> {
        Conn(Inner::SqliteOwned(Box::new(conn)))
    }

    pub(crate) fn postgres(client: &'a mut (dyn PgClient + 'a)) -> Conn<'a> {
        Conn(Inner::Postgres(RefCell::new(client)))
    }

    pub fn backend(&self) -> Backend {
        match self.0 {
            Inner::Sqlite(_) | Inner::SqliteOwned(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for the few things only SQLite has (pragmas, the file path).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match self.engine() {
            Engine::Sqlite(c) => Some(c),
            Engine::Postgres(_) => None,
        }
    }

    /// The engine this connection runs on, borrowed for one call.
    fn engine(&self) -> Engine<'_, 'a> {
        match &self.0 {
            Inner::Sqlite(c) => Engine::Sqlite(c),
            Inner::SqliteOwned(c) => Engine::Sqlite(c),
            Inner::Postgres(c) => Engine::Postgres(c),
        }
    }

    /// Runs one statement; returns the number of rows changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize> {
        match self.engine() {
            Engine::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(sqlite_params(params))?),
            Engine::Postgres(c) => {
                let mut c = c.borrow_mut();
                let statement = c.statement(sql)?;
                Ok(c.execute(&statement, &pg_params(params))? as usize)
            }
        }
    }

    /// Runs several statements without parameters (schema changes).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self.engine() {
            Engine::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Engine::Postgres(c) => c.borrow_mut().batch_execute(sql),
        }
    }

    /// The first row of a query, mapped by `f`; [`DbError::NoRows`] if there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match self.engine() {
            Engine::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(sqlite_params(params))?;
                match rows.next()? {
                    Some(row) => f(&Row::Sqlite(row)),
                    None => Err(DbError::NoRows),
                }
            }
            Engine::Postgres(c) => match pg_query(c, sql, params)?.first() {
                Some(row) => f(&Row::Postgres(row)),
                None => Err(DbError::NoRows),
            },
        }
    }

    /// Every row of a query, each mapped by `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self.engine() {
            Engine::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(sqlite_params(params))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Engine::Postgres(c) => pg_query(c, sql, params)?
                .iter()
                .map(|row| f(&Row::Postgres(row)))
                .collect(),
        }
    }

    /// Whether a query returns any row.
    pub fn exists(&self, sql: &str, params: &[&dyn Param]) -> Result<bool> {
        self.query_row(sql, params, |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }

    /// A statement to run several times; both engines keep it prepared.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_, 'a>> {
        Ok(Stmt {
            conn: self,
            sql: sql.to_owned(),
        })
    }

    /// [`Conn::prepare_cached`] (statements are always cached).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_, 'a>> {
        self.prepare_cached(sql)
    }
}

/// A [`Conn`]'s engine, borrowed: owned and borrowed SQLite connections look alike.
enum Engine<'c, 'a> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(&'c RefCell<&'a mut (dyn PgClient + 'a)>),
}

/// Runs a query on a PostgreSQL connection with the session's prepared statement.
fn pg_query(
    client: &RefCell<&mut (dyn PgClient + '_)>,
    sql: &str,
    params: &[&dyn Param],
) -> Result<Vec<postgres::Row>> {
    let mut c = client.borrow_mut();
    let statement = c.statement(sql)?;
    c.query(&statement, &pg_params(params))
}

/// The rows of [`Stmt::query_map`], already read, each as a result (rusqlite's shape).
pub type RowsOf<T> = std::iter::Map<std::vec::IntoIter<T>, fn(T) -> Result<T>>;

/// A statement of a [`Conn`], run with different parameters.
pub struct Stmt<'s, 'a> {
    conn: &'s Conn<'a>,
    sql: String,
}

impl Stmt<'_, '_> {
    pub fn execute(&mut self, params: &[&dyn Param]) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }

    pub fn query_row<T>(
        &mut self,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.conn.query_row(&self.sql, params, f)
    }

    /// Every row mapped by `f`, as an iterator of results (the shape rusqlite gives).
    pub fn query_map<T>(
        &mut self,
        params: &[&dyn Param],
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<RowsOf<T>> {
        let rows = self.conn.query_map(&self.sql, params, f)?;
        Ok(rows.into_iter().map(Ok))
    }

    pub fn exists(&mut self, params: &[&dyn Param]) -> Result<bool> {
        self.conn.exists(&self.sql, params)
    }
}

fn sqlite_params<'p>(
    params: &'p [&'p dyn Param],
) -> rusqlite::ParamsFromIter<impl Iterator<Item = &'p dyn rusqlite::ToSql>> {
    rusqlite::params_from_iter(params.iter().map(|p| p.sqlite()))
}

fn pg_params<'p>(params: &'p [&'p dyn Param]) -> Vec<&'p (dyn postgres::types::ToSql + Sync)> {
    params.iter().map(|p| p.pg()).collect()
}

/// Rewrites SQLite-dialect SQL for PostgreSQL: `?N` placeholders become `$N` (a bare `?`
/// takes the next number), outside string literals and quoted identifiers.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 0u32;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    next + 1
                } else {
                    digits.parse().unwrap_or(next + 1)
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_outside_literals() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?2"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $2"
        );
        assert_eq!(to_postgres("VALUES (?, ?, ?3)"), "VALUES ($1, $2, $3)");
    }

    #[test]
    fn sqlite_round_trip_through_conn() {
        let raw = rusqlite::Connection::open_in_memory().unwrap();
        let conn = Conn::sqlite(&raw);
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, flag INTEGER)")
            .unwrap();
        let id: i64 = conn
            .query_row(
                "INSERT INTO t (name, flag) VALUES (?1, ?2) RETURNING id",
                params!["a", 1i64],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(id, 1);
        let (name, flag): (String, bool) = conn
            .query_row("SELECT name, flag FROM t WHERE id = ?1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((name.as_str(), flag), ("a", true));
        let none = conn
            .query_row("SELECT id FROM t WHERE id = ?1", params![9i64], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .unwrap();
        assert_eq!(none, None);
        let dup = conn.execute("INSERT INTO t (id, name) VALUES (1, 'b')", params![]);
        assert!(dup.unwrap_err().is_unique_violation());
    }
}

use thiserror::Error;

/// Errors of the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] super::db::DbError),
    /// The database could not be reached or refused to commit (PostgreSQL down, connection
    /// lost); nothing of the failed commit was acknowledged.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "database {path} has schema version {found}, newer than this musubi knows ({known}); upgrade musubi"
    )]
    TooNew {
        path: std::path::PathBuf,
        found: i64,
        known: i64,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the store writer has stopped")]
    WriterGone,
    /// A write failed because the data directory's file system is read-only.
    #[error("data directory {path} is read-only; nothing was written")]
    ReadOnly { path: std::path::PathBuf },
}

impl StoreError {
    /// Whether the failure is the disk's (full, read-only, I/O), not the request's.
    pub fn is_storage_unavailable(&self) -> bool {
        match self {
            StoreError::Db(e) => e.is_unavailable(),
            StoreError::WriterGone | StoreError::ReadOnly { .. } | StoreError::Unavailable(_) => {
                true
            }
            _ => false,
        }
    }

    /// Whether the data directory is read-only (the writes of the failed commit were lost,
    /// none acknowledged).
    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::ReadOnly { .. })
    }

    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.is_disk_full())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Db(e.into())
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        StoreError::Db(e.into())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
    Sqlite(#[from] rusqlite::Error),
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
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DiskFull | ReadOnly | SystemIoFailure | CannotOpen | DatabaseBusy | DatabaseLocked
            ),
            StoreError::WriterGone | StoreError::ReadOnly { .. } => true,
            _ => false,
        }
    }

    /// Whether the data directory is read-only (the writes of the failed commit were lost,
    /// none acknowledged).
    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::ReadOnly { .. })
    }

    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

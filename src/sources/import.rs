//! File import (`musubi import`): the same pipeline as the API, from files on disk.

use std::path::Path;

use chrono::Utc;

use crate::formats::native::{self, FieldError};
use crate::model::{Origin, ReportDraft, ReportId};
use crate::store::{self, Store};

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        path: String,
        errors: Vec<FieldError>,
    },
    #[error("{path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
}

/// Reads and validates one file (a submission or an array of them).
pub fn read_file(path: &Path) -> Result<Vec<ReportDraft>, ImportError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: shown.clone(),
        source,
    })?;
    native::parse_bytes(&bytes).map_err(|errors| ImportError::Invalid {
        path: shown,
        errors,
    })
}

/// Stores the drafts of one file atomically, as submissions of `origin`.
pub fn store_drafts(
    store: &Store,
    path: &Path,
    origin: Origin,
    drafts: Vec<ReportDraft>,
) -> Result<Vec<ReportId>, ImportError> {
    let now = Utc::now();
    store
        .writer()
        .write_blocking(move |conn| {
            drafts
                .iter()
                .map(|d| store::reports::insert(conn, &origin, d, now).map(|i| i.id()))
                .collect()
        })
        .map_err(|source| ImportError::Store {
            path: path.display().to_string(),
            source,
        })
}

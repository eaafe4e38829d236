//! File import (`musubi import`): the same pipeline as the API, from files on disk.

use std::path::Path;

use chrono::Utc;

use crate::formats::native::{self, FieldError};
use crate::formats::{self, Format, FormatError, ParseContext};
use crate::model::{Origin, ReportDraft, ReportId, SightingDraft};
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
    Format { path: String, source: FormatError },
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
    let mut reports = native::parse_bytes(&bytes).map_err(|errors| ImportError::Invalid {
        path: shown.clone(),
        errors,
    })?;
    record_file(&mut reports, &shown);
    Ok(reports)
}

/// Records the file in each draft's secretariat-only provenance. The path often names the
/// provider (`/srv/acme-soc/...`), so it goes nowhere else: not into titles, descriptions
/// or anything indexed.
fn record_file(reports: &mut [ReportDraft], shown: &str) {
    for d in reports {
        d.provenance_mut().file = Some(shown.to_string());
    }
}

/// What one file holds, in any format.
#[derive(Debug, Default)]
pub struct FileContents {
    pub reports: Vec<ReportDraft>,
    pub sightings: Vec<SightingDraft>,
    /// What the parser could not represent (kept, never silently dropped).
    pub warnings: Vec<String>,
}

/// Reads one file in `format`, or detects the format from the content (`None`): a known
/// format by its shape, else musubi's own JSON, else free text whose observables are
/// extracted.
pub fn read_any(path: &Path, format: Option<&Format>) -> Result<FileContents, ImportError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: shown.clone(),
        source,
    })?;
    let format = match format {
        Some(f) => f.clone(),
        None => formats::detect(&bytes).unwrap_or_else(|| {
            if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() {
                Format::Native
            } else {
                Format::Text
            }
        }),
    };
    if format == Format::Native {
        let mut reports = native::parse_bytes(&bytes).map_err(|errors| ImportError::Invalid {
            path: shown.clone(),
            errors,
        })?;
        record_file(&mut reports, &shown);
        return Ok(FileContents {
            reports,
            ..FileContents::default()
        });
    }
    let ctx = ParseContext {
        source: Some(shown.clone()),
        ..ParseContext::with_tlp(crate::model::Tlp::Amber)
    };
    let mut parsed =
        formats::parse(&format, &bytes, &ctx).map_err(|source| ImportError::Format {
            path: shown.clone(),
            source,
        })?;
    record_file(&mut parsed.reports, &shown);
    Ok(FileContents {
        reports: parsed.reports,
        sightings: parsed.sightings,
        warnings: parsed.warnings,
    })
}

/// Stores the drafts of one file atomically, as submissions of `origin`.
pub fn store_drafts(
    store: &Store,
    path: &Path,
    origin: Origin,
    drafts: Vec<ReportDraft>,
) -> Result<Vec<ReportId>, ImportError> {
    store_contents(
        store,
        path,
        origin,
        FileContents {
            reports: drafts,
            ..FileContents::default()
        },
    )
}

/// Stores the reports and sightings of one file atomically, as submissions of `origin`.
pub fn store_contents(
    store: &Store,
    path: &Path,
    origin: Origin,
    contents: FileContents,
) -> Result<Vec<ReportId>, ImportError> {
    queue_contents(store, origin, contents)
        .and_then(store::Pending::wait)
        .map_err(|source| ImportError::Store {
            path: path.display().to_string(),
            source,
        })
}

/// [`store_contents`] without waiting: queues the file's write (atomic on its own) and
/// returns at once, so that a bulk import has the writer commit several files per fsync.
pub fn queue_contents(
    store: &Store,
    origin: Origin,
    contents: FileContents,
) -> store::Result<store::Pending<Vec<ReportId>>> {
    let now = Utc::now();
    store.writer().enqueue_blocking(move |conn| {
        let ids = contents
            .reports
            .iter()
            .map(|d| store::reports::insert(conn, &origin, d, now).map(|i| i.id()))
            .collect::<store::Result<Vec<_>>>()?;
        if let Origin::Submission { member } = &origin {
            for s in &contents.sightings {
                store::sightings::insert(conn, member, s, now, None)?;
            }
        }
        Ok(ids)
    })
}

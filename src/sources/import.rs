//! File import (`musubi import`): the same pipeline as the API, from files on disk.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

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
        .map_err(|source| store_error(path, source))
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

/// What became of one file of [`import_files`].
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    /// What the parser could not represent (the file was still stored).
    pub warnings: Vec<String>,
    /// How many indicators the file's reports carry (0 when nothing was read).
    pub indicators: usize,
    /// The ids of the file's reports, durable in the store; or why nothing of the file was
    /// stored (each file is atomic).
    pub result: Result<Vec<ReportId>, ImportError>,
}

/// What [`import_files`] reports while it works, so that a caller can print as it goes
/// (an import of many files takes long) rather than only at the end.
#[derive(Debug)]
pub enum ImportEvent<'a> {
    /// One file has been read and parsed and is about to be queued at the writer; these are
    /// its warnings. Files are read in order, ahead of the writer.
    Read {
        path: &'a Path,
        warnings: &'a [String],
        /// How many reports and indicators the file holds (for progress).
        reports: usize,
        indicators: usize,
    },
    /// One file is durable in the store, or failed: called in file order.
    Done(&'a FileOutcome),
}

/// How many files may wait at the writer: it commits them in one group (each file still
/// atomic in its own savepoint), so that a bulk import pays one fsync for several files.
const IN_FLIGHT: usize = 4;

/// Imports `files` as submissions of `origin`, each atomically, in `format` or detecting it
/// per file (`None`), and returns one outcome per file in file order. A file that fails
/// does not stop the others.
///
/// Reading and validating the next files overlaps with storing this one: parsing runs on a
/// thread of its own, inserting on the store writer's thread, and up to [`IN_FLIGHT`] files
/// wait at the writer. `on_event` sees each file when it is read and again when it is done.
pub fn import_files(
    store: &Store,
    origin: &Origin,
    files: &[PathBuf],
    format: Option<&Format>,
    mut on_event: impl FnMut(ImportEvent<'_>),
) -> Vec<FileOutcome> {
    let mut outcomes = Vec::with_capacity(files.len());
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        scope.spawn(move || {
            for path in files {
                if tx.send((path, read_any(path, format))).is_err() {
                    break;
                }
            }
        });
        let mut pending = VecDeque::new();
        for (path, contents) in rx {
            let (warnings, indicators, queued) = match contents {
                Ok(mut contents) => {
                    let warnings = std::mem::take(&mut contents.warnings);
                    let indicators = contents.reports.iter().map(|r| r.indicators.len()).sum();
                    on_event(ImportEvent::Read {
                        path,
                        warnings: &warnings,
                        reports: contents.reports.len(),
                        indicators,
                    });
                    let queued = queue_contents(store, origin.clone(), contents)
                        .map_err(|source| store_error(path, source));
                    (warnings, indicators, queued)
                }
                Err(e) => (Vec::new(), 0, Err(e)),
            };
            pending.push_back((path, warnings, indicators, queued));
            while pending.len() > IN_FLIGHT {
                let (path, warnings, indicators, queued) = pending.pop_front().expect("not empty");
                outcomes.push(finish(path, warnings, indicators, queued, &mut on_event));
            }
        }
        for (path, warnings, indicators, queued) in pending {
            outcomes.push(finish(path, warnings, indicators, queued, &mut on_event));
        }
    });
    outcomes
}

/// Waits until one queued file is durable (or failed) and tells `on_event`.
fn finish(
    path: &Path,
    warnings: Vec<String>,
    indicators: usize,
    queued: Result<store::Pending<Vec<ReportId>>, ImportError>,
    on_event: &mut impl FnMut(ImportEvent<'_>),
) -> FileOutcome {
    let outcome = FileOutcome {
        path: path.to_path_buf(),
        warnings,
        indicators,
        result: queued.and_then(|p| p.wait().map_err(|e| store_error(path, e))),
    };
    on_event(ImportEvent::Done(&outcome));
    outcome
}

/// The line (1-based) on which each submission of a native file begins: one entry per
/// element of a top-level array, or one (the document's first value) for a single
/// submission. So that an operator is told *where* a rejected submission is, not only its
/// position; a scan of the bytes, since a parsed `Value` keeps no positions.
pub fn submission_lines(bytes: &[u8]) -> Vec<usize> {
    let (mut line, mut depth, mut in_string, mut escaped) = (1, 0usize, false, false);
    let mut expecting = true; // a value may start here (after `[`, `,` at depth 1, or at the top)
    let mut lines = Vec::new();
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            if b == b'\n' {
                line += 1;
            }
            continue;
        }
        match b {
            b'\n' => line += 1,
            b' ' | b'\t' | b'\r' => {}
            _ => {
                let top_level_array = depth == 1 && lines.first() == Some(&0);
                if expecting && (depth == 0 || top_level_array) && b != b']' {
                    lines.push(if depth == 0 && b == b'[' { 0 } else { line });
                }
                expecting = false;
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        expecting = depth == 1 && b == b'[';
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    b',' => expecting = depth == 1,
                    _ => {}
                }
            }
        }
    }
    // A top-level array is marked by its 0 entry; a single submission has one line.
    if lines.first() == Some(&0) {
        lines.remove(0);
    }
    lines
}

fn store_error(path: &Path, source: store::StoreError) -> ImportError {
    ImportError::Store {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(title: &str) -> String {
        serde_json::json!({
            "title": title,
            "tlp": "green",
            "indicators": [{"type": "domain", "value": format!("{title}.example.net")}],
        })
        .to_string()
    }

    #[test]
    fn submission_lines_point_at_each_element() {
        let doc =
            b"[\n  {\"title\": \"a,[{\\\"\\n\"},\n  {\"title\": [1, 2],\n   \"x\": {}}\n  ,{}\n]";
        assert_eq!(submission_lines(doc), vec![2, 3, 5]);
        assert_eq!(submission_lines(b"\n\n {\"a\": [1]}"), vec![3]);
        assert_eq!(submission_lines(b"[]"), Vec::<usize>::new());
    }

    /// More files than wait at the writer, with an unreadable and an invalid one among
    /// them: every file has its outcome in file order, the bad ones fail alone, and the
    /// caller hears of each good file once read and then once durable.
    #[test]
    fn outcomes_come_in_file_order_and_a_bad_file_fails_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let mut files = Vec::new();
        for i in 0..(IN_FLIGHT + 4) {
            let path = dir.path().join(format!("{i}.json"));
            let body = match i {
                2 => r#"{"title": "no tlp"}"#.to_string(),
                _ => format!(
                    "[{}, {}]",
                    submission(&format!("a{i}")),
                    submission(&format!("b{i}"))
                ),
            };
            if i != 5 {
                std::fs::write(&path, body).expect("write");
            }
            files.push(path);
        }
        let origin = Origin::FeedItem {
            feed: "test".into(),
        };
        let mut events = Vec::new();
        let outcomes = import_files(&store, &origin, &files, None, |e| {
            events.push(match e {
                ImportEvent::Read { path, .. } => format!("read {}", path.display()),
                ImportEvent::Done(o) => format!("done {}", o.path.display()),
            })
        });
        store.close();

        let paths: Vec<_> = outcomes.iter().map(|o| o.path.clone()).collect();
        assert_eq!(paths, files);
        for (i, o) in outcomes.iter().enumerate() {
            match i {
                2 => assert!(
                    matches!(o.result, Err(ImportError::Invalid { .. })),
                    "{o:?}"
                ),
                5 => assert!(matches!(o.result, Err(ImportError::Read { .. })), "{o:?}"),
                _ => assert_eq!(o.result.as_ref().expect("stored").len(), 2, "{o:?}"),
            }
        }
        let mut ids: Vec<_> = outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().ok())
            .flatten()
            .collect();
        let stored = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), stored, "every report its own id");

        let done: Vec<_> = events.iter().filter(|e| e.starts_with("done ")).collect();
        let expected: Vec<_> = files
            .iter()
            .map(|f| format!("done {}", f.display()))
            .collect();
        assert_eq!(
            done,
            expected.iter().collect::<Vec<_>>(),
            "done in file order"
        );
        for (i, f) in files.iter().enumerate() {
            let read = events
                .iter()
                .position(|e| *e == format!("read {}", f.display()));
            let done = events
                .iter()
                .position(|e| *e == format!("done {}", f.display()));
            match i {
                2 | 5 => assert_eq!(read, None, "no read event for a file that failed to read"),
                _ => assert!(read.expect("read event") < done.expect("done event")),
            }
        }
    }
}

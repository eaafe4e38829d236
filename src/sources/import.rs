//! File import (`musubi import`): the same pipeline as the API, from files on disk.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;

use crate::formats::native::{self, FieldError};
use crate::formats::{
    self, Format, FormatError, ItemOutcome, Outcome, OutcomeCounts, ParseContext,
};
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
    /// The import was interrupted (Ctrl-C) before all of the file was queued for storing.
    #[error("{path}: interrupted before all of it was stored")]
    Interrupted { path: String },
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
    /// What became of each item of the file (kept, normalised, skipped).
    pub items: Vec<ItemOutcome>,
    /// The submissions of a native file that are not valid, and why: the file's valid
    /// submissions are still stored.
    pub rejected: Vec<FieldError>,
}

/// Reads one file in `format`, or detects the format from the content (`None`): a known
/// format by its shape, else musubi's own JSON, else free text whose observables are
/// extracted. A native file's valid submissions are kept even when others are not (each
/// one is all-or-nothing); `Err` when nothing of the file can be read.
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
        let each = native::parse_bytes_each(&bytes).map_err(|errors| ImportError::Invalid {
            path: shown.clone(),
            errors,
        })?;
        return Ok(native_contents(each, &shown));
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
        items: parsed.items,
        rejected: Vec::new(),
    })
}

/// A native file's submissions as items: `[3]` kept, or skipped with its problems.
fn native_contents(each: native::Submissions, shown: &str) -> FileContents {
    let name = |i: Option<usize>| i.map_or_else(|| "submission".to_string(), |i| format!("[{i}]"));
    let mut items: Vec<(Option<usize>, ItemOutcome)> = each
        .drafts
        .iter()
        .map(|(i, _)| {
            (
                *i,
                ItemOutcome {
                    at: name(*i),
                    outcome: Outcome::Kept,
                },
            )
        })
        .collect();
    let mut bad: Vec<Option<usize>> = each.errors.iter().map(|e| e.report).collect();
    bad.dedup();
    for i in bad {
        let why: Vec<String> = each
            .errors
            .iter()
            .filter(|e| e.report == i)
            .map(ToString::to_string)
            .collect();
        items.push((
            i,
            ItemOutcome {
                at: name(i),
                outcome: Outcome::Skipped {
                    why: why.join("; "),
                },
            },
        ));
    }
    items.sort_by_key(|(i, _)| *i);
    let mut reports: Vec<ReportDraft> = each.drafts.into_iter().map(|(_, d)| d).collect();
    record_file(&mut reports, shown);
    FileContents {
        reports,
        items: items.into_iter().map(|(_, o)| o).collect(),
        rejected: each.errors,
        ..FileContents::default()
    }
}

/// Stores the drafts of one file atomically, as submissions of `origin`.
pub fn store_drafts(
    store: &Store,
    path: &Path,
    origin: Origin,
    drafts: Vec<ReportDraft>,
) -> Result<Vec<ReportId>, ImportError> {
    let chunk = Chunk {
        reports: drafts,
        sightings: Vec::new(),
    };
    queue_chunk(store, origin, Arc::new(chunk))
        .and_then(store::Pending::wait)
        .map_err(|source| store_error(path, source))
}

/// Queues one chunk of a file's reports (and, with its last chunk, its sightings) at the
/// writer and returns at once: the chunk is atomic on its own, and the writer commits
/// several chunks per fsync.
fn queue_chunk(
    store: &Store,
    origin: Origin,
    chunk: Arc<Chunk>,
) -> store::Result<store::Pending<Vec<ReportId>>> {
    let now = Utc::now();
    store.writer().enqueue_blocking(move |conn| {
        let Chunk { reports, sightings } = &*chunk;
        let ids = reports
            .iter()
            .map(|d| store::reports::insert(conn, &origin, d, now).map(|i| i.id()))
            .collect::<store::Result<Vec<_>>>()?;
        if let Origin::Submission { member } = &origin {
            for s in sightings {
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
    /// How many indicators the stored reports carry.
    pub indicators: usize,
    /// The ids of the file's reports that are durable in the store.
    pub ids: Vec<ReportId>,
    /// How many of the file's items were kept, normalised and skipped.
    pub counts: OutcomeCounts,
    /// The items that were normalised or skipped, with where and why.
    pub notes: Vec<ItemOutcome>,
    /// The submissions of a native file that were not valid (the others are stored).
    pub rejected: Vec<FieldError>,
    /// Why the file (or, for a store failure, part of it) was not stored.
    pub error: Option<ImportError>,
}

impl FileOutcome {
    fn new(path: &Path) -> FileOutcome {
        FileOutcome {
            path: path.to_path_buf(),
            warnings: Vec::new(),
            indicators: 0,
            ids: Vec::new(),
            counts: OutcomeCounts::default(),
            notes: Vec::new(),
            rejected: Vec::new(),
            error: None,
        }
    }

    /// Whether anything of the file was not stored (a rejected submission, or an error).
    pub fn partly_rejected(&self) -> bool {
        self.error.is_some() || !self.rejected.is_empty()
    }
}

/// What [`import_files`] reports while it works, so that a caller can show progress (one
/// huge file must move too) and print as it goes rather than only at the end.
#[derive(Debug)]
pub enum ImportEvent<'a> {
    /// One file has been read and parsed and its reports are about to be queued at the
    /// writer. Files are read in order, ahead of the writer.
    Read {
        path: &'a Path,
        warnings: &'a [String],
        /// How many reports and indicators the file holds (for progress).
        reports: usize,
        indicators: usize,
        counts: OutcomeCounts,
    },
    /// A chunk of a file's reports is durable: `reports` more reports carrying
    /// `indicators` indicators.
    Stored {
        path: &'a Path,
        reports: usize,
        indicators: usize,
    },
    /// One file is done (stored, partly or not at all): called in file order.
    Done(&'a FileOutcome),
    /// Every file is done and the indexes dropped for a bulk import (`store::bulk`) are being
    /// built again (seconds for a million reports, with no chunk to show for it).
    BuildingIndex,
}

/// Whether an import drops the indexes of random keys (observables by value, TAXII objects
/// by id) before storing and builds them
/// once after (see `store::bulk`), or grows it report by report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkLoad {
    /// Bulk when the files are big ([`BULK_BYTES`]) and not small beside what is stored.
    #[default]
    Auto,
    Always,
    Never,
}

/// From this many bytes of files an import builds its indexes once (with the quarter rule
/// of [`BulkLoad::applies`]). Measured into an empty store (release build): 1, 2 and 5 files
/// of 100 reports of 100 indicators (0.65 MB each) took 0.107 / 0.242 / 0.740 s grown and
/// 0.098 / 0.225 / 0.552 s built once, and 2,000 such reports 3.36 s against 1.80 s: a sort
/// of the new keys beats inserting them one by one into an index as soon as there are a few
/// thousand, so the floor only keeps a one-report import from dropping indexes a running
/// daemon is using. What makes a bulk load a loss is a store much larger than the import
/// (building again sorts every stored key), which the quarter rule excludes.
pub const BULK_BYTES: u64 = 1024 * 1024;

/// A lower bound of a report's size in a file, to set an import's size against the store's.
const BYTES_PER_REPORT: u64 = 300;

impl BulkLoad {
    /// Whether importing `files` into `store` should build the indexes once. Only SQLite:
    /// on PostgreSQL they serve every node's lookups meanwhile. Under [`BulkLoad::Auto`],
    /// the files must reach [`BULK_BYTES`] and hold at least a quarter as many reports as
    /// the store already does, since building the indexes again sorts every stored key, not
    /// only the new ones.
    fn applies(self, store: &Store, files: &[PathBuf]) -> bool {
        if store.backend() != store::Backend::Sqlite {
            return false;
        }
        match self {
            BulkLoad::Always => true,
            BulkLoad::Never => false,
            BulkLoad::Auto => {
                let bytes: u64 = files
                    .iter()
                    .filter_map(|f| std::fs::metadata(f).ok())
                    .map(|m| m.len())
                    .sum();
                let stored = store
                    .read(store::reports::last_seq)
                    .map_or(u64::MAX, |s| s.0);
                bytes >= BULK_BYTES && bytes / BYTES_PER_REPORT >= stored / 4
            }
        }
    }
}

/// Builds the bulk indexes again when dropped, whatever ended the import (an error, a
/// panic): the store must not stay without it. Opening the store heals it too, for a
/// process that was killed.
struct IndexDropped<'a> {
    store: &'a Store,
}

impl IndexDropped<'_> {
    /// Drops the indexes in a writer job of its own; `None` (and an import that grows the
    /// index) if that fails.
    fn drop_index(store: &Store) -> Option<IndexDropped<'_>> {
        match store.writer().write_blocking(store::bulk::drop_indexes) {
            Ok(()) => Some(IndexDropped { store }),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot drop the indexes for a bulk import; growing them instead.");
                None
            }
        }
    }

    fn build(&self) {
        let started = std::time::Instant::now();
        match self
            .store
            .writer()
            .write_blocking(store::bulk::build_indexes)
        {
            Ok(()) => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "Built the indexes after a bulk import."
            ),
            Err(e) => tracing::error!(
                error = %e,
                "Cannot build the indexes again; the next start of musubi will."
            ),
        }
    }
}

impl Drop for IndexDropped<'_> {
    fn drop(&mut self) {
        self.build();
    }
}

/// How many chunks may wait at the writer: it commits them in one group (each chunk atomic
/// in its own savepoint), so that a bulk import pays one fsync for about
/// `IN_FLIGHT × CHUNK` reports.
const IN_FLIGHT: usize = 32;

/// How many reports one writer job stores. Small on purpose: every statement inside a job's
/// savepoint opens a statement savepoint, and SQLite releases one by truncating its
/// in-memory sub-journal, walking it from the start (`memjrnlTruncate`). The sub-journal
/// holds every page the job has touched so far, so a job's cost grows with the square of its
/// size: with 1,000 reports of fresh values a job, three quarters of a million-report
/// import went there (`perf`: `sqlite3BtreeSavepoint` 74 % of the writer thread).
const CHUNK: usize = 100;

/// A chunk also closes at this many indicators (reports of a hundred indicators each touch
/// as many pages as a thousand small ones).
const CHUNK_INDICATORS: usize = 2_000;

/// Reports of a file stored in one writer job, and with the last one its sightings.
#[derive(Debug, Default)]
struct Chunk {
    reports: Vec<ReportDraft>,
    sightings: Vec<SightingDraft>,
}

/// How an import cuts files into writer jobs.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    reports: usize,
    indicators: usize,
    /// How many jobs may wait at the writer beside the one being settled.
    in_flight: usize,
}

/// Small jobs that the writer groups, each in its own savepoint ([`CHUNK`]).
const GROUPED: Sizes = Sizes {
    reports: CHUNK,
    indicators: CHUNK_INDICATORS,
    in_flight: IN_FLIGHT,
};

/// A bulk import's jobs: big, and one at a time, so that each is alone in its group and
/// runs without a savepoint (see [`CHUNK`] for what a savepoint costs: still 14 % of a
/// 200k-report import with chunks of 100). Without a savepoint a failing report would take
/// the whole job with it, so a job that fails is stored again in [`GROUPED`] chunks, each
/// atomic on its own: the outcome is the same as an import that never went in bulk.
const ALONE: Sizes = Sizes {
    reports: 4_000,
    indicators: 40_000,
    in_flight: 0,
};

/// A file being stored: its outcome so far and how many of its chunks are still queued.
struct OpenFile {
    outcome: FileOutcome,
    queued: usize,
}

/// One chunk at the writer.
struct Queued {
    reports: usize,
    indicators: usize,
    pending: Result<store::Pending<Vec<ReportId>>, ImportError>,
    /// A job run without a savepoint ([`ALONE`]): stored again in small chunks if it fails.
    retry: Option<Arc<Chunk>>,
}

/// What [`settle`] needs to store a failed job again.
struct Settling<'a> {
    store: &'a Store,
    origin: &'a Origin,
}

/// Imports `files` as submissions of `origin`, in `format` or detecting it per file
/// (`None`), and returns one outcome per file in file order. A big import (`bulk`) drops
/// the indexes of observables by value and TAXII objects by id first and builds them once
/// at the end. Once `stop` is
/// set (Ctrl-C), nothing more is queued: what is queued is stored, the indexes are
/// built again, and the files begun but not finished say so (`ImportError::Interrupted`); files
/// not begun have no outcome. Each report is stored whole
/// or not at all; a file's valid reports are stored even when others of it are not, and a
/// file that fails does not stop the others.
///
/// Reading and validating the next files overlaps with storing this one: parsing runs on a
/// thread of its own, inserting on the store writer's thread, in chunks of [`CHUNK`]
/// reports of which up to [`IN_FLIGHT`] wait at the writer. `on_event` sees each file when
/// it is read, each chunk when it is durable, and each file when it is done.
pub fn import_files(
    store: &Store,
    origin: &Origin,
    files: &[PathBuf],
    format: Option<&Format>,
    bulk: BulkLoad,
    stop: &AtomicBool,
    mut on_event: impl FnMut(ImportEvent<'_>),
) -> Vec<FileOutcome> {
    let dropped = if bulk.applies(store, files) {
        IndexDropped::drop_index(store)
    } else {
        None
    };
    let sizes = if dropped.is_some() { ALONE } else { GROUPED };
    let outcomes = store_files(store, origin, files, format, sizes, stop, &mut on_event);
    if let Some(dropped) = dropped {
        on_event(ImportEvent::BuildingIndex);
        drop(dropped);
    }
    outcomes
}

/// [`import_files`] without the indexes.
fn store_files(
    store: &Store,
    origin: &Origin,
    files: &[PathBuf],
    format: Option<&Format>,
    sizes: Sizes,
    stop: &AtomicBool,
    mut on_event: impl FnMut(ImportEvent<'_>),
) -> Vec<FileOutcome> {
    let at = Settling { store, origin };
    let stopped = || stop.load(Ordering::Relaxed);
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
        let mut open: VecDeque<OpenFile> = VecDeque::new();
        let mut queue: VecDeque<Queued> = VecDeque::new();
        for (path, contents) in rx {
            if stopped() {
                break;
            }
            let mut file = FileOutcome::new(path);
            let mut chunks = Vec::new();
            match contents {
                Ok(contents) => {
                    let FileContents {
                        reports,
                        sightings,
                        warnings,
                        items,
                        rejected,
                    } = contents;
                    file.counts = OutcomeCounts::of(&items);
                    file.notes = items
                        .into_iter()
                        .filter(|i| i.outcome != Outcome::Kept)
                        .collect();
                    file.warnings = warnings;
                    file.rejected = rejected;
                    let indicators = reports.iter().map(|r| r.indicators.len()).sum();
                    on_event(ImportEvent::Read {
                        path,
                        warnings: &file.warnings,
                        reports: reports.len(),
                        indicators,
                        counts: file.counts,
                    });
                    chunks = chunked(reports, sightings, sizes);
                }
                Err(e) => file.error = Some(e),
            }
            // Counted ahead, so that settling its first chunks does not close the file; an
            // interrupted file gives back what it did not queue.
            let count = chunks.len();
            open.push_back(OpenFile {
                outcome: file,
                queued: count,
            });
            for (i, chunk) in chunks.into_iter().enumerate() {
                if stopped() {
                    let this = open
                        .back_mut()
                        .expect("a file with chunks to queue is open");
                    this.queued -= count - i;
                    this.outcome.error.get_or_insert(ImportError::Interrupted {
                        path: path.display().to_string(),
                    });
                    break;
                }
                let chunk = Arc::new(chunk);
                let queued = Queued {
                    reports: chunk.reports.len(),
                    indicators: chunk.reports.iter().map(|r| r.indicators.len()).sum(),
                    pending: queue_chunk(store, origin.clone(), chunk.clone())
                        .map_err(|source| store_error(path, source)),
                    retry: (sizes.in_flight == 0).then_some(chunk),
                };
                queue.push_back(queued);
                while queue.len() > sizes.in_flight {
                    let q = queue.pop_front().expect("not empty");
                    settle(&at, q, &mut open, &mut outcomes, &mut on_event);
                }
            }
            close_settled(&mut open, &mut outcomes, &mut on_event);
        }
        while let Some(q) = queue.pop_front() {
            settle(&at, q, &mut open, &mut outcomes, &mut on_event);
        }
        close_settled(&mut open, &mut outcomes, &mut on_event);
    });
    outcomes
}

/// A file's reports in chunks of `sizes.reports` reports or `sizes.indicators`
/// indicators; its sightings go with the last one (or alone, for a file of sightings only).
fn chunked(reports: Vec<ReportDraft>, sightings: Vec<SightingDraft>, sizes: Sizes) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut current = Vec::with_capacity(sizes.reports.min(reports.len()));
    let mut indicators = 0;
    for r in reports {
        indicators += r.indicators.len();
        current.push(r);
        if current.len() == sizes.reports || indicators >= sizes.indicators {
            chunks.push(Chunk {
                reports: std::mem::take(&mut current),
                sightings: Vec::new(),
            });
            indicators = 0;
        }
    }
    if !current.is_empty() || chunks.is_empty() && !sightings.is_empty() {
        chunks.push(Chunk {
            reports: current,
            sightings: Vec::new(),
        });
    }
    if let Some(last) = chunks.last_mut() {
        last.sightings = sightings;
    }
    chunks
}

/// Waits until the oldest queued chunk is durable (or failed), records it in its file (the
/// oldest file with chunks still queued: chunks are queued and settled in file order) and
/// tells `on_event`.
fn settle(
    at: &Settling<'_>,
    q: Queued,
    open: &mut VecDeque<OpenFile>,
    outcomes: &mut Vec<FileOutcome>,
    on_event: &mut impl FnMut(ImportEvent<'_>),
) {
    let file = open
        .iter_mut()
        .find(|f| f.queued > 0)
        .expect("a queued chunk belongs to an open file");
    file.queued -= 1;
    let path = file.outcome.path.clone();
    let stored = q
        .pending
        .and_then(|p| p.wait().map_err(|e| store_error(&path, e)));
    match (stored, q.retry) {
        (Err(e), Some(chunk)) => {
            tracing::debug!(error = %e, "A bulk job failed; storing it again in small chunks.");
            // The job's own reference is gone with the job; a copy only if it is not.
            let Chunk { reports, sightings } = Arc::try_unwrap(chunk).unwrap_or_else(|c| Chunk {
                reports: c.reports.clone(),
                sightings: c.sightings.clone(),
            });
            for small in chunked(reports, sightings, GROUPED) {
                let (reports, indicators) = (
                    small.reports.len(),
                    small.reports.iter().map(|r| r.indicators.len()).sum(),
                );
                let stored = queue_chunk(at.store, at.origin.clone(), Arc::new(small))
                    .and_then(store::Pending::wait)
                    .map_err(|e| store_error(&path, e));
                record(&mut file.outcome, stored, reports, indicators, on_event);
            }
        }
        (stored, _) => record(&mut file.outcome, stored, q.reports, q.indicators, on_event),
    }
    close_settled(open, outcomes, on_event);
}

/// Records what became of one job in its file's outcome and tells `on_event`.
fn record(
    file: &mut FileOutcome,
    stored: Result<Vec<ReportId>, ImportError>,
    reports: usize,
    indicators: usize,
    on_event: &mut impl FnMut(ImportEvent<'_>),
) {
    match stored {
        Ok(ids) => {
            file.ids.extend(ids);
            file.indicators += indicators;
            on_event(ImportEvent::Stored {
                path: &file.path,
                reports,
                indicators,
            });
        }
        Err(e) => {
            if file.error.is_none() {
                file.error = Some(e);
            }
        }
    }
}

/// Hands over the files at the front that have nothing queued any more, in file order.
fn close_settled(
    open: &mut VecDeque<OpenFile>,
    outcomes: &mut Vec<FileOutcome>,
    on_event: &mut impl FnMut(ImportEvent<'_>),
) {
    while open.front().is_some_and(|f| f.queued == 0) {
        let f = open.pop_front().expect("not empty");
        on_event(ImportEvent::Done(&f.outcome));
        outcomes.push(f.outcome);
    }
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

    /// A file with one bad submission among good ones: the good ones are stored, the bad
    /// one is named; a file larger than a chunk is stored in several, each announced.
    #[test]
    fn a_bad_submission_costs_only_itself_and_big_files_move_in_chunks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let mixed = dir.path().join("mixed.json");
        std::fs::write(
            &mixed,
            format!(
                "[{}, {{\"title\": \"no tlp\"}}, {}]",
                submission("good1"),
                submission("good2")
            ),
        )
        .expect("write");
        let big = dir.path().join("big.json");
        let many: Vec<String> = (0..CHUNK * 2 + 5)
            .map(|i| submission(&format!("r{i}")))
            .collect();
        std::fs::write(&big, format!("[{}]", many.join(","))).expect("write");
        let origin = Origin::FeedItem {
            feed: "test".into(),
        };
        let mut stored = Vec::new();
        let outcomes = import_files(
            &store,
            &origin,
            &[mixed, big],
            None,
            BulkLoad::Auto,
            &AtomicBool::new(false),
            |e| {
                if let ImportEvent::Stored { reports, .. } = e {
                    stored.push(reports);
                }
            },
        );
        store.close();
        assert_eq!(outcomes[0].ids.len(), 2);
        assert_eq!(outcomes[0].rejected.len(), 1);
        assert_eq!(outcomes[0].rejected[0].report, Some(1));
        assert!(outcomes[0].partly_rejected());
        assert_eq!(
            outcomes[0].counts,
            OutcomeCounts {
                kept: 2,
                normalised: 0,
                skipped: 1
            }
        );
        assert_eq!(outcomes[1].ids.len(), CHUNK * 2 + 5);
        assert_eq!(stored, vec![2, CHUNK, CHUNK, 5]);
    }

    fn has_bulk_indexes(store: &Store) -> bool {
        store
            .read(store::bulk::missing_indexes)
            .expect("read")
            .is_empty()
    }

    /// A bulk import whose every chunk fails (the member is unknown to the store) still
    /// ends with the index built again; one that succeeds too, and a small import under
    /// `Auto` does not drop it at all (nothing to announce).
    #[test]
    fn the_index_is_built_again_after_a_bulk_import_good_or_failed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let path = dir.path().join("reports.json");
        let many: Vec<String> = (0..CHUNK * 3)
            .map(|i| submission(&format!("r{i}")))
            .collect();
        std::fs::write(&path, format!("[{}]", many.join(","))).expect("write");
        let files = [path];

        let nobody = Origin::Submission {
            member: crate::model::MemberId("no-such-member".into()),
        };
        let mut building = 0;
        let failed = import_files(
            &store,
            &nobody,
            &files,
            None,
            BulkLoad::Always,
            &AtomicBool::new(false),
            |e| {
                building += usize::from(matches!(e, ImportEvent::BuildingIndex));
            },
        );
        assert!(
            failed[0].ids.is_empty() && failed[0].error.is_some(),
            "{failed:?}"
        );
        assert_eq!(building, 1);
        assert!(
            has_bulk_indexes(&store),
            "built again after a failed import"
        );

        let feed = Origin::FeedItem {
            feed: "test".into(),
        };
        let done = import_files(
            &store,
            &feed,
            &files,
            None,
            BulkLoad::Always,
            &AtomicBool::new(false),
            |_| {},
        );
        assert_eq!(done[0].ids.len(), CHUNK * 3);
        assert!(has_bulk_indexes(&store), "built again after a bulk import");

        let mut building = 0;
        let small = import_files(
            &store,
            &feed,
            &files,
            None,
            BulkLoad::Auto,
            &AtomicBool::new(false),
            |e| {
                building += usize::from(matches!(e, ImportEvent::BuildingIndex));
            },
        );
        assert_eq!(small[0].ids.len(), CHUNK * 3);
        assert_eq!(building, 0, "a small import grows the index");
        assert!(has_bulk_indexes(&store));
        store.close();
    }

    /// Stopped (Ctrl-C) once the first chunk is durable: nothing more is queued, what was
    /// queued is stored, the file says it was interrupted, the next file is not begun, and
    /// the index is built again.
    #[test]
    fn an_interrupted_bulk_import_stores_what_it_queued_and_builds_the_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("data")).expect("store");
        let mut files = Vec::new();
        for f in 0..2 {
            let path = dir.path().join(format!("{f}.json"));
            let many: Vec<String> = (0..ALONE.reports * 2 + 10)
                .map(|i| submission(&format!("f{f}r{i}")))
                .collect();
            std::fs::write(&path, format!("[{}]", many.join(","))).expect("write");
            files.push(path);
        }
        let origin = Origin::FeedItem {
            feed: "test".into(),
        };
        let stop = AtomicBool::new(false);
        let mut building = 0;
        let outcomes = import_files(
            &store,
            &origin,
            &files,
            None,
            BulkLoad::Always,
            &stop,
            |e| match e {
                ImportEvent::Stored { .. } => stop.store(true, Ordering::Relaxed),
                ImportEvent::BuildingIndex => building += 1,
                _ => {}
            },
        );
        assert_eq!(outcomes.len(), 1, "the second file is not begun");
        assert!(
            matches!(outcomes[0].error, Some(ImportError::Interrupted { .. })),
            "{:?}",
            outcomes[0].error
        );
        assert_eq!(
            outcomes[0].ids.len(),
            ALONE.reports,
            "what was queued is stored"
        );
        assert_eq!(building, 1);
        assert!(has_bulk_indexes(&store));
        store.close();
    }

    /// A bulk job fails whole (it has no savepoint) when one report of it cannot be stored;
    /// it is stored again in small chunks, so that a bulk import keeps exactly what an
    /// import in grouped chunks keeps: everything but the failing report's chunk.
    #[test]
    fn a_failed_bulk_job_is_stored_again_in_small_chunks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("poisoned.json");
        let total = ALONE.reports + 500;
        let many: Vec<String> = (0..total)
            .map(|i| {
                submission(&if i == 1234 {
                    "poison".to_string()
                } else {
                    format!("r{i}")
                })
            })
            .collect();
        std::fs::write(&path, format!("[{}]", many.join(","))).expect("write");
        let origin = Origin::FeedItem {
            feed: "test".into(),
        };
        let mut kept = Vec::new();
        for (n, bulk) in [BulkLoad::Always, BulkLoad::Never].into_iter().enumerate() {
            let store = Store::open(&dir.path().join(format!("data{n}"))).expect("store");
            store
                .writer()
                .write_blocking(|conn| {
                    conn.execute_batch(
                        "CREATE TRIGGER poison BEFORE INSERT ON reports WHEN NEW.title = 'poison'
                         BEGIN SELECT RAISE(ABORT, 'poisoned report'); END",
                    )?;
                    Ok(())
                })
                .expect("trigger");
            let stop = AtomicBool::new(false);
            let outcomes = import_files(
                &store,
                &origin,
                std::slice::from_ref(&path),
                None,
                bulk,
                &stop,
                |_| {},
            );
            assert!(outcomes[0].error.is_some(), "{bulk:?}");
            assert!(has_bulk_indexes(&store));
            let titles: Vec<String> = store
                .read(|conn| {
                    Ok(conn.query_map(
                        "SELECT title FROM reports ORDER BY seq",
                        store::db::params![],
                        |r| r.get(0),
                    )?)
                })
                .expect("titles");
            store.close();
            kept.push(titles);
        }
        assert_eq!(kept[0].len(), total - CHUNK, "all but the poisoned chunk");
        assert_eq!(kept[0], kept[1], "bulk keeps what grouped chunks keep");
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
        let outcomes = import_files(
            &store,
            &origin,
            &files,
            None,
            BulkLoad::Auto,
            &AtomicBool::new(false),
            |e| {
                events.push(match e {
                    ImportEvent::Read { path, .. } => format!("read {}", path.display()),
                    ImportEvent::Stored { path, .. } => format!("stored {}", path.display()),
                    ImportEvent::Done(o) => format!("done {}", o.path.display()),
                    ImportEvent::BuildingIndex => "building the index".to_string(),
                })
            },
        );
        store.close();

        let paths: Vec<_> = outcomes.iter().map(|o| o.path.clone()).collect();
        assert_eq!(paths, files);
        for (i, o) in outcomes.iter().enumerate() {
            match i {
                2 => assert!(o.ids.is_empty() && o.rejected.len() == 1, "{o:?}"),
                5 => assert!(matches!(o.error, Some(ImportError::Read { .. })), "{o:?}"),
                _ => assert_eq!(o.ids.len(), 2, "{o:?}"),
            }
        }
        let mut ids: Vec<_> = outcomes.iter().flat_map(|o| &o.ids).collect();
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
                5 => assert_eq!(read, None, "no read event for a file that failed to read"),
                _ => assert!(read.expect("read event") < done.expect("done event")),
            }
        }
    }
}

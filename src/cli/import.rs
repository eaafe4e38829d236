//! `musubi import`: submission files stored on a member's behalf. The pipeline is the
//! library's ([`sources::import::import_files`]); this prints what it reports: a progress
//! bar while it works (on a terminal only), then one summary line per file and a total, or
//! one JSON object with `--json`. Ids are summarised as ranges (an import of a million
//! reports must not print a million ids); `-v` lists them.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use musubi::config::Config;
use musubi::formats::{ItemOutcome, OutcomeCounts};
use musubi::index::{Alongside, ReportIndex};
use musubi::model::{Origin, ReportId};
use musubi::sources::import::{self, BulkLoad, FileOutcome, ImportError, ImportEvent};

use super::{Global, PartlyRejected, block_on, operator, print_json, store_read_path};

#[derive(Args)]
pub struct ImportArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The submitting member (id or exact name).
    #[arg(long = "as", value_name = "MEMBER")]
    member: String,
    /// auto (detect from the content), native, stix, misp, rss, csaf, kev, kev-csv, nvd,
    /// blocklist[:preset], text.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Print one JSON object (per-file counts, id ranges and errors, and the totals)
    /// instead of the summary lines.
    #[arg(long)]
    json: bool,
    /// auto, always or never: drop the indexes of observables by value and TAXII objects by
    /// id before storing and build them once after (auto: when the files reach 1 MiB and a
    /// quarter of what is stored). A daemon running meanwhile still answers, more slowly.
    #[arg(long, default_value = "auto", value_parser = parse_bulk)]
    bulk: BulkLoad,
}

fn parse_bulk(s: &str) -> std::result::Result<BulkLoad, String> {
    match s {
        "auto" => Ok(BulkLoad::Auto),
        "always" => Ok(BulkLoad::Always),
        "never" => Ok(BulkLoad::Never),
        other => Err(format!("{other:?}: expected auto, always or never")),
    }
}

/// The `--json` object; its fields are documented in the README (stable for scripts).
#[derive(Serialize)]
struct Summary {
    files: Vec<FileSummary>,
    total: Total,
}

#[derive(Serialize, Default)]
struct Total {
    files: usize,
    files_rejected: usize,
    reports: usize,
    indicators: usize,
    rejected: usize,
    /// Items of all files (MISP attributes, STIX objects, lines, entries, submissions):
    /// kept, normalised, skipped.
    items: OutcomeCounts,
    seconds: f64,
}

#[derive(Serialize)]
struct FileSummary {
    path: String,
    /// Reports stored from this file (each report is stored whole or not at all; a file's
    /// good reports are stored even when others of it are rejected).
    reports: usize,
    indicators: usize,
    /// Submissions of the file that were not stored (all of them when the file failed;
    /// 1 when they could not be counted, e.g. malformed JSON).
    rejected: usize,
    /// What became of the file's items: kept, normalised, skipped.
    items: OutcomeCounts,
    /// The items normalised or skipped, with where (in the file's own terms) and why.
    notes: Vec<ItemOutcome>,
    /// The stored ids as inclusive ranges (usually one: a file is stored in one go).
    ranges: Vec<IdRange>,
    /// Every stored id, with `-v` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<String>>,
    warnings: Vec<String>,
    errors: Vec<FileError>,
}

#[derive(Serialize)]
struct IdRange {
    first: String,
    last: String,
}

/// One reason a file was rejected, located as precisely as it can be.
#[derive(Serialize)]
struct FileError {
    path: String,
    /// 1-based line of the problem, or of the rejected submission.
    line: Option<usize>,
    column: Option<usize>,
    /// The submission's position in the file's array.
    #[serde(skip_serializing_if = "Option::is_none")]
    submission: Option<usize>,
    /// The field at fault (`[3].indicators[0].value`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

pub fn run(config: &Config, data_dir: &Path, args: ImportArgs, global: &Global) -> Result<()> {
    let ImportArgs {
        files,
        member,
        format,
        json,
        bulk,
    } = args;
    let verbose = global.verbose > 0;
    let format: Option<musubi::formats::Format> = match format.as_str() {
        "auto" => None,
        name => Some(name.parse().map_err(|e| anyhow::anyhow!("--format: {e}"))?),
    };
    let store = musubi::daemon::open_store(config, data_dir)?;
    let read = store_read_path(&store);
    let member = block_on(read.member(&operator(), &member))?
        .with_context(|| format!("--as: no member with id or name {member:?}"))?;
    let origin = Origin::Submission {
        member: member.id.clone(),
    };
    // The index follows the import on another core (unless a daemon holds it and indexes
    // the import itself), so that it is current when the import ends.
    let alongside = match ReportIndex::open(data_dir)
        .and_then(|i| Alongside::start(&i, store.clone()))
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot index beside the import; the daemon will catch the index up.");
            None
        }
    };

    let started = Instant::now();
    let bar = progress_bar(&files[0]);
    let stop = interrupt_stops_the_import(bar.clone());
    let (mut indicators, mut done) = (0usize, 0usize);
    // The rate counts from the first file read: reading is shown by the spinner before.
    let mut storing_since: Option<Instant> = None;
    let count = files.len();
    let outcomes = import::import_files(
        &store,
        &origin,
        &files,
        format.as_ref(),
        bulk,
        stop,
        |event| match event {
            ImportEvent::Read {
                path,
                warnings,
                reports,
                ..
            } => {
                // Warnings of many items are summarised per file; each item is in --json.
                for w in warnings.iter().take(MAX_WARNINGS_SHOWN) {
                    bar.suspend(|| eprintln!("musubi: {}: warning: {w}", path.display()));
                }
                if warnings.len() > MAX_WARNINGS_SHOWN {
                    bar.suspend(|| {
                        eprintln!(
                            "musubi: {}: {} more warnings (see --json)",
                            path.display(),
                            thousands(warnings.len() - MAX_WARNINGS_SHOWN)
                        )
                    });
                }
                if storing_since.is_none() {
                    storing_since = Some(Instant::now());
                    bar.set_style(bar_style());
                }
                bar.inc_length(reports as u64);
            }
            ImportEvent::Stored {
                reports,
                indicators: more,
                ..
            } => {
                indicators += more;
                bar.inc(reports as u64);
                let secs = storing_since
                    .unwrap_or(started)
                    .elapsed()
                    .as_secs_f64()
                    .max(1e-3);
                bar.set_message(format!(
                    "{}/{count} files, {} indicators ({}/s)",
                    done,
                    thousands(indicators),
                    thousands((indicators as f64 / secs) as usize)
                ));
            }
            ImportEvent::Done(_) => done += 1,
            ImportEvent::BuildingIndex => {
                if let Some(a) = &alongside {
                    a.stored_all();
                }
                bar.set_message("building the indexes".to_string())
            }
        },
    );
    if let Some(a) = alongside {
        bar.set_message("indexing what was stored".to_string());
        if let Err(e) = a.finish() {
            tracing::warn!(error = %e, "Indexing beside the import failed; the daemon will catch the index up.");
        }
    }
    bar.finish_and_clear();
    drop(read);
    store.close();
    let interrupted = stop.load(Ordering::Relaxed);

    let mut total = Total {
        files: outcomes.len(),
        seconds: started.elapsed().as_secs_f64(),
        ..Total::default()
    };
    let summaries: Vec<FileSummary> = outcomes.iter().map(|o| summarise(o, verbose)).collect();
    for s in &summaries {
        total.reports += s.reports;
        total.indicators += s.indicators;
        total.rejected += s.rejected;
        total.items.merge(s.items);
        if !s.errors.is_empty() {
            total.files_rejected += 1;
        }
        for e in &s.errors {
            eprintln!("musubi: {e}");
        }
    }

    let (rejected, files, stored) = (total.files_rejected, total.files, total.reports);
    if json {
        print_json(&Summary {
            files: summaries,
            total,
        })?;
    } else {
        print_text(&summaries, &total);
    }

    if interrupted {
        bail!(
            "interrupted: {} of {} file(s) stored in whole or in part; what is listed is stored",
            files,
            count
        );
    }
    match rejected {
        0 => Ok(()),
        n if stored == 0 => bail!("nothing could be imported ({n} of {files} file(s) rejected)"),
        n => Err(PartlyRejected(format!(
            "{n} of {files} file(s) rejected in whole or in part; what was valid is stored"
        ))
        .into()),
    }
}

/// Set by the first Ctrl-C (SIGINT): the import queues nothing more, stores what is queued
/// and builds the indexes again if it dropped them, then stops; a second Ctrl-C
/// quits at once (the next open of the store builds them).
fn interrupt_stops_the_import(bar: ProgressBar) -> &'static AtomicBool {
    static STOP: AtomicBool = AtomicBool::new(false);
    let listen = std::thread::Builder::new()
        .name("import-interrupt".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                STOP.store(true, Ordering::Relaxed);
                bar.suspend(|| {
                    eprintln!(
                        "musubi: interrupted: storing what is queued, then stopping (Ctrl-C again to quit at once)"
                    )
                });
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(130);
            });
        });
    if let Err(e) = listen {
        tracing::warn!(error = %e, "Cannot listen for Ctrl-C; an interrupted import stops at once.");
    }
    &STOP
}

/// The bar's look once the first file is read.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {elapsed:>3} [{bar:20}] {human_pos}/{human_len} reports  {msg}  ETA {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

/// How many warnings of one file are printed as they come (the rest are counted).
const MAX_WARNINGS_SHOWN: usize = 5;

/// A bar on stderr when it is a terminal, moving per chunk of stored reports (a single
/// huge file moves too): reports stored of those read so far, files, indicators and
/// indicators/s, ETA; hidden otherwise (a log or a pipe gets the summary only, no
/// carriage-return redraws).
fn progress_bar(first: &Path) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // A spinner until the first file is read (its size is not known before), then the bar.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}").expect("a valid template"),
    );
    let size = std::fs::metadata(first).map_or(0, |m| m.len());
    bar.set_message(format!(
        "reading {} ({:.1} MB)",
        first.display(),
        size as f64 / 1e6
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn summarise(outcome: &FileOutcome, verbose: bool) -> FileSummary {
    let path = outcome.path.display().to_string();
    let ids = &outcome.ids;
    let mut errors = Vec::new();
    let mut rejected = 0;
    if !outcome.rejected.is_empty() {
        errors.extend(locate_submissions(&outcome.path, &outcome.rejected));
        let mut bad: Vec<Option<usize>> = outcome.rejected.iter().map(|e| e.report).collect();
        bad.dedup();
        rejected += bad.len();
    }
    if let Some(e) = &outcome.error {
        errors.extend(locate(&outcome.path, e));
        if ids.is_empty() {
            rejected += submissions_in(&outcome.path).unwrap_or(1);
        }
    }
    FileSummary {
        path,
        reports: ids.len(),
        indicators: outcome.indicators,
        rejected,
        items: outcome.counts,
        notes: outcome.notes.clone(),
        ranges: ranges(ids),
        ids: verbose.then(|| ids.iter().map(ToString::to_string).collect()),
        warnings: outcome.warnings.clone(),
        errors,
    }
}

/// The rejected submissions of a file whose others were stored, each at the line where it
/// begins, so that an operator can open the file there.
fn locate_submissions(
    path: &Path,
    errors: &[musubi::formats::native::FieldError],
) -> Vec<FileError> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let lines = import::submission_lines(&bytes);
    errors
        .iter()
        .map(|fe| FileError {
            path: path.display().to_string(),
            line: fe
                .report
                .map_or(lines.first().copied(), |i| lines.get(i).copied()),
            column: None,
            submission: fe.report,
            field: Some(fe.field.clone()),
            message: fe.reason.clone(),
        })
        .collect()
}

/// How many submissions a rejected native file held (its array's length, or 1 for a
/// single one); `None` when it cannot be told (not JSON, another format).
fn submissions_in(path: &Path) -> Option<usize> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<serde_json::Value>(&bytes).ok()? {
        serde_json::Value::Array(items) => Some(items.len()),
        serde_json::Value::Object(_) => Some(1),
        _ => None,
    }
}

/// The errors of a rejected file, each with the line (and column) an operator can open
/// the file at: the malformed byte, or the start of the rejected submission.
fn locate(path: &Path, error: &ImportError) -> Vec<FileError> {
    let shown = path.display().to_string();
    let plain = |line, column, message: String| FileError {
        path: shown.clone(),
        line,
        column,
        submission: None,
        field: None,
        message,
    };
    match error {
        ImportError::Invalid { errors, .. } => {
            let bytes = std::fs::read(path).unwrap_or_default();
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                return vec![plain(
                    Some(e.line()),
                    Some(e.column()),
                    format!("malformed JSON: {e}"),
                )];
            }
            let lines = import::submission_lines(&bytes);
            errors
                .iter()
                .map(|fe| FileError {
                    path: shown.clone(),
                    line: fe.report.and_then(|i| lines.get(i).copied()),
                    column: None,
                    submission: fe.report,
                    field: Some(fe.field.clone()),
                    message: fe.reason.clone(),
                })
                .collect()
        }
        ImportError::Format { source, .. } => {
            use musubi::formats::FormatError as F;
            let (line, column) = match source {
                F::Json { line, column, .. } | F::Xml { line, column, .. } => {
                    (Some(*line), Some(*column))
                }
                F::Line { line, .. } => (usize::try_from(*line).ok(), None),
                _ => (None, None),
            };
            vec![plain(line, column, source.to_string())]
        }
        ImportError::Read { source, .. } => {
            vec![plain(None, None, format!("cannot read: {source}"))]
        }
        ImportError::Store { source, .. } => vec![plain(None, None, source.to_string())],
        ImportError::Interrupted { .. } => vec![plain(
            None,
            None,
            "interrupted before all of it was stored".to_string(),
        )],
    }
}

/// Stored ids as runs of consecutive ids.
fn ranges(ids: &[ReportId]) -> Vec<IdRange> {
    let mut sorted: Vec<&ReportId> = ids.iter().collect();
    sorted.sort();
    let mut runs: Vec<(&ReportId, &ReportId)> = Vec::new();
    for id in sorted {
        match runs.last_mut() {
            Some((_, last)) if last.0.0 + 1 == id.0.0 => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs.into_iter()
        .map(|(first, last)| IdRange {
            first: first.to_string(),
            last: last.to_string(),
        })
        .collect()
}

/// `path: 2,000 reports R-1…R-2000, 200,000 indicators, 0 rejected` per file, then the
/// total; with `-v`, each file's ids on the line below it.
fn print_text(files: &[FileSummary], total: &Total) {
    for f in files {
        let mut shown: Vec<String> = f
            .ranges
            .iter()
            .map(|r| {
                if r.first == r.last {
                    r.first.clone()
                } else {
                    format!("{}…{}", r.first, r.last)
                }
            })
            .collect();
        if shown.len() > 3 {
            shown.truncate(3);
            shown.push("…".into());
        }
        let ids = if shown.is_empty() {
            String::new()
        } else {
            format!(" {}", shown.join(" "))
        };
        println!(
            "{}: {}{ids}, {}, {} rejected; items: {}",
            f.path,
            plural(f.reports, "report"),
            plural(f.indicators, "indicator"),
            thousands(f.rejected),
            item_counts(&f.items)
        );
        if let Some(ids) = &f.ids
            && !ids.is_empty()
        {
            println!("  {}", ids.join(", "));
        }
    }
    let not_stored = match total.files_rejected {
        0 => String::new(),
        n => format!(" ({} with rejections)", plural(n, "file")),
    };
    println!(
        "total: {} from {}, {}, {} rejected{not_stored}; items: {}; {:.2} s",
        plural(total.reports, "report"),
        plural(total.files, "file"),
        plural(total.indicators, "indicator"),
        thousands(total.rejected),
        item_counts(&total.items),
        total.seconds
    );
}

/// `12 kept, 1 normalised, 3 skipped`.
fn item_counts(c: &OutcomeCounts) -> String {
    format!(
        "{} kept, {} normalised, {} skipped",
        thousands(c.kept),
        thousands(c.normalised),
        thousands(c.skipped)
    )
}

fn plural(n: usize, word: &str) -> String {
    format!("{} {word}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// `2000000` as `2,000,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2000), "2,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}

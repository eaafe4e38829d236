//! Invariants every fuzz target checks on what a musubi parser returns.
//!
//! A parser may reject any input, but what it accepts must be well-formed: every observable is
//! in canonical form (parsing its own value again gives it back unchanged) and never empty,
//! and every error renders as a message. A violated invariant panics, which libFuzzer reports
//! as a crash with the input that caused it.

use musubi::formats::{FormatError, Parsed};
use musubi::model::{Observable, ReportDraft, SightingDraft, SightingTarget};

/// The observable is non-empty and re-normalises to itself.
pub fn check_observable(o: &Observable) {
    assert!(!o.value().is_empty(), "empty observable value: {o:?}");
    match Observable::parse(o.kind(), o.value()) {
        Ok(again) => assert_eq!(&again, o, "observable does not re-normalise to itself"),
        Err(e) => panic!("observable {o:?} does not parse again: {e}"),
    }
}

/// Every indicator of the draft is canonical; the title renders.
pub fn check_draft(d: &ReportDraft) {
    for i in &d.indicators {
        check_observable(&i.observable);
    }
    // The content hash runs over every field: it must not panic either.
    let _ = d.content_hash();
}

/// Every observable a sighting points at is canonical.
pub fn check_sighting(s: &SightingDraft) {
    if let SightingTarget::Observable(o) = &s.target {
        check_observable(o);
    }
}

/// Everything a parser produced is well-formed.
pub fn check_parsed(p: &Parsed) {
    p.reports.iter().for_each(check_draft);
    p.sightings.iter().for_each(check_sighting);
}

/// Checks an outcome of `formats::parse` or a single-format parser.
pub fn check_result(r: &Result<Parsed, FormatError>) {
    match r {
        Ok(p) => check_parsed(p),
        Err(e) => check_error(e),
    }
}

/// The error renders as a non-empty message.
pub fn check_error(e: &dyn std::fmt::Display) {
    assert!(
        !e.to_string().is_empty(),
        "error renders as an empty message"
    );
}

/// The input as text, when the API takes text.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

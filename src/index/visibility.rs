//! What makes a member's search cheap at a million reports without changing its answer.
//!
//! A member's search is the user's query ANDed with the visibility filter, newest first.
//! Done plainly, every search re-evaluates the filter (a union of class terms, the
//! member's own and recipient terms, and a term set of every released report) and then
//! visits *every* matching document to find the newest `limit`: a common word matches
//! hundreds of thousands. Two things here remove that work:
//!
//! - **The evaluated filter is kept** ([`VisibilityCache`]): per segment and per filter (the
//!   filter names the release state by a version, not by its content), one bit per
//!   document. Segments never change, so a commit adds bits for its new segments only; a
//!   release changes the filter's key, so the next search evaluates it afresh.
//! - **Newest first without visiting every hit** ([`SeqWindow`]): the search first looks
//!   only at the documents of the newest sequence numbers and widens the window (×8) until
//!   it holds `limit` hits. A window that holds `limit` hits holds exactly the `limit`
//!   newest, because every hit outside it is older than every document inside it. Inside a
//!   segment, documents are stored in runs of increasing sequence numbers (each indexing
//!   thread writes in store order; a merge stacks its segments), so a window is a suffix of
//!   each run, found by binary search.
//!
//! Both are evaluated from what the filter admits only: which hidden documents exist never
//! changes which documents are admitted, counted or ordered (see `council::read::search`
//! for what the cache's timing can and cannot tell a member).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::{ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError};

/// How many bytes of evaluated filters the cache keeps (one bit per document per filter):
/// about a thousand members' filters at a million reports.
const CACHE_BYTES: usize = 128 * 1024 * 1024;

/// One bit per document of a segment: the documents a filter admits.
#[derive(Debug)]
pub(super) struct DocBits {
    words: Vec<u64>,
}

impl DocBits {
    pub(super) fn new(max_doc: DocId) -> DocBits {
        DocBits {
            words: vec![0; (max_doc as usize).div_ceil(64)],
        }
    }

    pub(super) fn insert(&mut self, doc: DocId) {
        self.words[(doc / 64) as usize] |= 1 << (doc % 64);
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The first admitted document in `from..end`.
    fn next_in(&self, from: DocId, end: DocId) -> Option<DocId> {
        if from >= end {
            return None;
        }
        let mut w = (from / 64) as usize;
        let mut word = self.words.get(w)? & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                let doc = w as DocId * 64 + word.trailing_zeros();
                return (doc < end).then_some(doc);
            }
            w += 1;
            if w as DocId * 64 >= end {
                return None;
            }
            word = *self.words.get(w)?;
        }
    }

    /// How many admitted documents `from..end` holds.
    fn count_in(&self, from: DocId, end: DocId) -> u32 {
        if from >= end {
            return 0;
        }
        let (first, last) = ((from / 64) as usize, ((end - 1) / 64) as usize);
        let mut n = 0;
        for w in first..=last.min(self.words.len().saturating_sub(1)) {
            let mut word = self.words[w];
            if w == first {
                word &= u64::MAX << (from % 64);
            }
            if w == last && !end.is_multiple_of(64) {
                word &= u64::MAX >> (64 - end % 64);
            }
            n += word.count_ones();
        }
        n
    }
}

/// A maximal stretch of documents `start..end` whose sequence numbers increase, from
/// `first` to `last`.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: DocId,
    end: DocId,
    first: u64,
    last: u64,
}

/// The runs of increasing sequence numbers of one segment.
#[derive(Debug)]
pub(super) struct SeqRuns {
    runs: Vec<Run>,
}

impl SeqRuns {
    fn of(reader: &SegmentReader) -> tantivy::Result<SeqRuns> {
        let column = reader.fast_fields().u64("seq")?;
        let mut runs: Vec<Run> = Vec::new();
        for doc in 0..reader.max_doc() {
            let seq = column.first(doc).unwrap_or(0);
            match runs.last_mut() {
                Some(run) if seq >= run.last => {
                    run.end = doc + 1;
                    run.last = seq;
                }
                _ => runs.push(Run {
                    start: doc,
                    end: doc + 1,
                    first: seq,
                    last: seq,
                }),
            }
        }
        Ok(SeqRuns { runs })
    }

    #[cfg(test)]
    pub(super) fn of_segment(reader: &SegmentReader) -> usize {
        SeqRuns::of(reader).map_or(0, |r| r.runs.len())
    }

    /// The document ranges of the segment whose sequence numbers are at least `lo`, in
    /// document order.
    fn at_least(&self, reader: &SegmentReader, lo: u64) -> tantivy::Result<Vec<(DocId, DocId)>> {
        let column = reader.fast_fields().u64("seq")?;
        let mut out = Vec::new();
        for run in &self.runs {
            if run.last < lo {
                continue;
            }
            if run.first >= lo {
                out.push((run.start, run.end));
                continue;
            }
            // Binary search for the first document of the run at or above `lo`.
            let (mut a, mut b) = (run.start, run.end);
            while a < b {
                let mid = a + (b - a) / 2;
                if column.first(mid).unwrap_or(0) < lo {
                    a = mid + 1;
                } else {
                    b = mid;
                }
            }
            out.push((a, run.end));
        }
        Ok(out)
    }
}

/// The lower bound of the sequence numbers a search looks at (`0`: all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SeqWindow(u64);

impl SeqWindow {
    /// Every document.
    pub(super) const ALL: SeqWindow = SeqWindow(0);

    /// The `span` newest sequence numbers up to `newest` (every document once `span`
    /// reaches back to the first).
    pub(super) fn newest(newest: u64, span: u64) -> SeqWindow {
        if span >= newest {
            SeqWindow::ALL
        } else {
            SeqWindow(newest - span + 1)
        }
    }
}

/// What one segment admits for one search: the filter's bits (`None`: every document)
/// within the window's document ranges.
#[derive(Debug, Clone)]
struct SegmentAdmits {
    bits: Option<Arc<DocBits>>,
    ranges: Arc<[(DocId, DocId)]>,
}

/// The visibility clause of one search, built from the cache: a query that matches the
/// admitted documents of each segment with score 0 (scores come from the user's query).
#[derive(Debug, Clone)]
pub(super) struct AdmittedQuery {
    segments: Arc<HashMap<SegmentId, SegmentAdmits>>,
}

impl Query for AdmittedQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for AdmittedQuery {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(match self.segments.get(&reader.segment_id()) {
            Some(admits) => Box::new(ConstScorer::new(Admitted::new(admits.clone()), 0.0)),
            None => Box::new(EmptyScorer),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("admitted by the visibility filter", 0.0))
        } else {
            Err(TantivyError::InvalidArgument(format!(
                "document {doc} is not admitted"
            )))
        }
    }
}

/// The admitted documents of one segment as a doc set.
struct Admitted {
    admits: SegmentAdmits,
    range: usize,
    doc: DocId,
    size: u32,
}

impl Admitted {
    fn new(admits: SegmentAdmits) -> Admitted {
        let size = admits
            .ranges
            .iter()
            .map(|&(a, b)| match &admits.bits {
                Some(bits) => bits.count_in(a, b),
                None => b - a,
            })
            .sum();
        let mut set = Admitted {
            admits,
            range: 0,
            doc: 0,
            size,
        };
        set.doc = set.next_from(0);
        set
    }

    fn next_from(&mut self, from: DocId) -> DocId {
        while let Some(&(start, end)) = self.admits.ranges.get(self.range) {
            let from = from.max(start);
            let found = match &self.admits.bits {
                Some(bits) => bits.next_in(from, end),
                None => (from < end).then_some(from),
            };
            if let Some(doc) = found {
                return doc;
            }
            self.range += 1;
        }
        TERMINATED
    }
}

impl DocSet for Admitted {
    fn advance(&mut self) -> DocId {
        if self.doc != TERMINATED {
            self.doc = self.next_from(self.doc + 1);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc != TERMINATED && target > self.doc {
            self.doc = if target == TERMINATED {
                TERMINATED
            } else {
                self.next_from(target)
            };
        }
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.size
    }
}

/// Evaluated filters and sequence runs, per segment, shared by every search of the index.
#[derive(Default)]
pub(super) struct VisibilityCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The searcher generation the entries were last pruned against.
    generation: u64,
    /// Per filter (its key): when it was last used, and its bits per segment.
    filters: HashMap<String, Kept>,
    bytes: usize,
    runs: HashMap<SegmentId, Arc<SeqRuns>>,
    tick: u64,
}

#[derive(Default)]
struct Kept {
    used: u64,
    segments: HashMap<SegmentId, Arc<DocBits>>,
}

impl Kept {
    fn bytes(&self) -> usize {
        self.segments.values().map(|b| b.bytes()).sum()
    }
}

impl VisibilityCache {
    /// Forgets the entries of segments the searcher no longer holds (merged or deleted).
    fn prune(&self, searcher: &tantivy::Searcher) {
        let generation = searcher.generation().generation_id();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation == generation {
            return;
        }
        inner.generation = generation;
        let live: std::collections::HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        inner.runs.retain(|id, _| live.contains(id));
        for kept in inner.filters.values_mut() {
            kept.segments.retain(|id, _| live.contains(id));
        }
        inner.bytes = inner.filters.values().map(Kept::bytes).sum();
    }

    /// The filter `key`'s bits for every segment of `searcher`, evaluating `filter` (built
    /// only if some segment misses) on the segments that have none yet.
    pub(super) fn bits(
        &self,
        searcher: &tantivy::Searcher,
        key: &str,
        filter: impl FnOnce() -> Result<Box<dyn Query>, super::IndexError>,
    ) -> Result<HashMap<SegmentId, Arc<DocBits>>, super::IndexError> {
        self.prune(searcher);
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.tick += 1;
            let tick = inner.tick;
            let kept = inner.filters.get_mut(key);
            let kept = match kept {
                Some(k) => {
                    k.used = tick;
                    Some(&*k)
                }
                None => None,
            };
            for reader in searcher.segment_readers() {
                let id = reader.segment_id();
                match kept.and_then(|k| k.segments.get(&id)) {
                    Some(bits) => {
                        out.insert(id, bits.clone());
                    }
                    None => missing.push(reader),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let query = filter()?;
        let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut fresh = Vec::new();
        for reader in missing {
            let mut bits = DocBits::new(reader.max_doc());
            weight.for_each_no_score(reader, &mut |docs| {
                for &doc in docs {
                    bits.insert(doc);
                }
            })?;
            let bits = Arc::new(bits);
            out.insert(reader.segment_id(), bits.clone());
            fresh.push((reader.segment_id(), bits));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let tick = inner.tick;
        let kept = inner.filters.entry(key.to_string()).or_default();
        kept.used = tick;
        kept.segments.extend(fresh);
        inner.bytes = inner.filters.values().map(Kept::bytes).sum();
        if inner.bytes > CACHE_BYTES {
            // Least recently used first, down to three quarters of the budget.
            let mut by_use: Vec<(u64, String)> = inner
                .filters
                .iter()
                .map(|(k, kept)| (kept.used, k.clone()))
                .collect();
            by_use.sort();
            for (_, k) in by_use {
                if inner.bytes <= CACHE_BYTES / 4 * 3 {
                    break;
                }
                if let Some(kept) = inner.filters.remove(&k) {
                    inner.bytes -= kept.bytes();
                }
            }
        }
        Ok(out)
    }

    fn runs(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SeqRuns>> {
        let id = reader.segment_id();
        if let Some(runs) = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runs
            .get(&id)
        {
            return Ok(runs.clone());
        }
        let runs = Arc::new(SeqRuns::of(reader)?);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runs
            .insert(id, runs.clone());
        Ok(runs)
    }

    /// The visibility clause of a search over `searcher`: `bits` (`None`: no filter) within
    /// `window`.
    pub(super) fn admitted(
        &self,
        searcher: &tantivy::Searcher,
        bits: Option<&HashMap<SegmentId, Arc<DocBits>>>,
        window: SeqWindow,
    ) -> tantivy::Result<AdmittedQuery> {
        self.prune(searcher);
        let mut segments = HashMap::new();
        for reader in searcher.segment_readers() {
            let id = reader.segment_id();
            let ranges: Arc<[(DocId, DocId)]> = if window.0 == 0 {
                Arc::from(vec![(0, reader.max_doc())])
            } else {
                self.runs(reader)?.at_least(reader, window.0)?.into()
            };
            let bits = match bits {
                None => None,
                Some(map) => match map.get(&id) {
                    Some(b) => Some(b.clone()),
                    // A segment the filter was not evaluated on admits nothing.
                    None => Some(Arc::new(DocBits::new(0))),
                },
            };
            segments.insert(id, SegmentAdmits { bits, ranges });
        }
        Ok(AdmittedQuery {
            segments: Arc::new(segments),
        })
    }
}

/// The newest sequence number a searcher holds.
pub(super) fn newest_seq(searcher: &tantivy::Searcher) -> tantivy::Result<u64> {
    let mut max = 0;
    for reader in searcher.segment_readers() {
        if reader.max_doc() > 0 {
            max = max.max(reader.fast_fields().u64("seq")?.max_value());
        }
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_find_the_next_admitted_document_within_a_range() {
        let mut bits = DocBits::new(300);
        for d in [3, 64, 65, 200, 299] {
            bits.insert(d);
        }
        assert_eq!(bits.next_in(0, 300), Some(3));
        assert_eq!(bits.next_in(4, 300), Some(64));
        assert_eq!(bits.next_in(66, 200), None);
        assert_eq!(bits.next_in(66, 201), Some(200));
        assert_eq!(bits.next_in(201, 300), Some(299));
        assert_eq!(bits.next_in(300, 300), None);
        assert_eq!(bits.count_in(0, 300), 5);
        assert_eq!(bits.count_in(4, 200), 2);
        assert_eq!(bits.count_in(64, 65), 1);
        assert_eq!(bits.count_in(0, 64), 1);
    }

    #[test]
    fn admitted_walks_the_bits_of_each_range_only() {
        let mut bits = DocBits::new(200);
        for d in (0..200).step_by(3) {
            bits.insert(d);
        }
        let admits = SegmentAdmits {
            bits: Some(Arc::new(bits)),
            ranges: Arc::from(vec![(10, 20), (100, 110), (190, 200)]),
        };
        let mut set = Admitted::new(admits);
        let mut got = Vec::new();
        while set.doc() != TERMINATED {
            got.push(set.doc());
            set.advance();
        }
        assert_eq!(got, vec![12, 15, 18, 102, 105, 108, 192, 195, 198]);
        let mut set = Admitted::new(SegmentAdmits {
            bits: None,
            ranges: Arc::from(vec![(5, 8), (50, 52)]),
        });
        assert_eq!(set.size_hint(), 5);
        assert_eq!(set.seek(7), 7);
        assert_eq!(set.seek(9), 50);
        assert_eq!(set.advance(), 51);
        assert_eq!(set.advance(), TERMINATED);
    }
}

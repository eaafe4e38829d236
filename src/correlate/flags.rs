//! Flags: machine findings on a campaign for analyst review, each with its evidence so that
//! an analyst sees *why* (which sectors, which feeds carry which observables, which times).
//!
//! - `cross-sector`: reports or true-positive sightings from at least N distinct sectors
//!   within any window of W days.
//! - `stale`: no report or true-positive sighting for D days and a MISP polynomial decay
//!   score below a threshold; suggests `low-need-transient`.
//! - `known`: at least X % of the member-submitted observables appear in public feed
//!   reports; suggests `low-need-known`.
//! - `novel`: member-submitted observables of which at most Y % (default none) appear in
//!   public feeds.
//! - `surge`: at least K reports within the last H hours.
//!
//! `stale` and `surge` depend on the clock; [`compute`] also returns when its answer may
//! change without new input, so that snapshots only recompute campaigns whose time came.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rules::FlagRules;
use crate::model::{Disposition, Observable, Sector};

/// The kinds of flag live in the model, beside their one label table; the rules that raise
/// them are here.
pub use crate::model::FlagKind;

/// Why a flag was raised.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Evidence {
    /// Observables behind the finding (known: those in feeds; novel: those in none).
    pub observables: Vec<Observable>,
    /// Distinct sectors (cross-sector). Secretariat-only: never serialised.
    #[serde(skip)]
    pub sectors: Vec<Sector>,
    /// Public feeds that carry the observables (known).
    pub feeds: Vec<String>,
    /// The times that matter (cross-sector: first and last of the window; stale: last
    /// activity; surge: the reports in the window).
    pub times: Vec<DateTime<Utc>>,
    /// cross-sector: sectors; stale: decay score; known/novel: % of member observables in
    /// feeds; surge: reports in the window.
    pub score: f64,
    /// The rule's figure the finding was judged against: cross-sector: least sectors;
    /// stale: the decay threshold; known: least % in feeds; novel: most % in feeds; surge:
    /// least reports.
    pub threshold: f64,
    /// The rule's period, in hours: cross-sector and surge: the window; stale: the quiet
    /// period. Zero for known and novel.
    pub window_hours: i64,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub kind: FlagKind,
    pub evidence: Evidence,
    /// The disposition this finding suggests to the analyst.
    pub suggested: Option<Disposition>,
}

/// What flags need to know about one campaign, every list sorted: a giant campaign keeps
/// these lists sorted as reports join (see `graph::live`), so that its flags cost a few
/// binary searches rather than a scan of its half a million reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    /// Report times (any source), sorted.
    pub report_times: &'a [DateTime<Utc>],
    /// Sector activity: member reports with a sector and true-positive sightings, sorted.
    pub sector_times: &'a [(DateTime<Utc>, Sector)],
    /// Times of true-positive sightings, sorted.
    pub seen_times: &'a [DateTime<Utc>],
    /// The member-submitted linking observables, as far as the flags look at them.
    pub members: &'a MemberObs,
}

/// The member-submitted linking observables of a campaign, summed up for `known` and
/// `novel`: their numbers, and only the few that evidence shows.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct MemberObs {
    /// How many there are.
    pub total: usize,
    /// How many of them a feed carries.
    pub known: usize,
    /// The first [`EVIDENCE_MAX`] known ones in value order (only if `known` is raised:
    /// [`member_flags`]).
    pub known_first: Vec<Observable>,
    /// Some of the feeds carrying the first [`EVIDENCE_MAX`] known ones by value number
    /// (only if `known` is raised).
    pub known_feeds: BTreeSet<String>,
    /// The first [`EVIDENCE_MAX`] of those no feed carries, in value order (only if
    /// `novel` is raised).
    pub novel_first: Vec<Observable>,
}

/// Most observables an evidence list shows.
pub(crate) const EVIDENCE_MAX: usize = 50;

/// The first [`EVIDENCE_MAX`] observables in order, without sorting or cloning them all (a
/// big campaign carries hundreds of thousands).
pub(crate) fn first_sorted(mut refs: Vec<&Observable>) -> Vec<Observable> {
    if refs.len() > EVIDENCE_MAX {
        refs.select_nth_unstable(EVIDENCE_MAX);
        refs.truncate(EVIDENCE_MAX);
    }
    refs.sort();
    refs.into_iter().cloned().collect()
}

/// Whether the member values' counts raise `known` and `novel`: their evidence is needed
/// only then.
pub(crate) fn member_flags(rules: &FlagRules, total: usize, known: usize) -> (bool, bool) {
    if total == 0 {
        return (false, false);
    }
    let percent = 100.0 * known as f64 / total as f64;
    (
        known > 0 && percent >= rules.known_min_percent,
        percent <= rules.novel_max_percent,
    )
}

/// How many of the sorted `times` are at or before `now`.
fn up_to<T>(times: &[T], now: DateTime<Utc>, at: impl Fn(&T) -> DateTime<Utc>) -> usize {
    times.partition_point(|t| at(t) <= now)
}

/// The flags at `now`, and the time after which they may change without new input.
pub(crate) fn compute(
    rules: &FlagRules,
    view: &View<'_>,
    now: DateTime<Utc>,
) -> (Vec<Flag>, Option<DateTime<Utc>>) {
    let mut flags = Vec::new();
    let mut until: Option<DateTime<Utc>> = None;
    let mut expire = |t: DateTime<Utc>| {
        until = Some(until.map_or(t, |u| u.min(t)));
    };

    // Only what happened up to `now` counts; anything later changes the answer when it comes.
    let reported = up_to(view.report_times, now, |t| *t);
    let seen = up_to(view.seen_times, now, |t| *t);
    for t in [view.report_times.get(reported), view.seen_times.get(seen)]
        .into_iter()
        .flatten()
    {
        expire(*t);
    }

    if let Some(flag) = cross_sector(rules, view, now) {
        flags.push(flag);
    }

    // stale
    let last = [
        reported.checked_sub(1).map(|i| view.report_times[i]),
        seen.checked_sub(1).map(|i| view.seen_times[i]),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(last) = last {
        let since = now - last;
        let score = rules.decay_score(since);
        let stale_at = last + rules.stale_quiet.max(rules.decay_below_after());
        if now >= stale_at {
            flags.push(Flag {
                kind: FlagKind::Stale,
                evidence: Evidence {
                    times: vec![last],
                    score,
                    threshold: rules.stale_threshold,
                    window_hours: rules.stale_quiet.num_hours(),
                    ..Evidence::default()
                },
                suggested: Some(Disposition::LowNeedTransient),
            });
        } else {
            expire(stale_at);
        }
    }

    // known / novel
    let members = view.members;
    if members.total > 0 {
        let percent = 100.0 * members.known as f64 / members.total as f64;
        let (known_raised, novel_raised) = member_flags(rules, members.total, members.known);
        if known_raised {
            flags.push(Flag {
                kind: FlagKind::Known,
                evidence: Evidence {
                    observables: members.known_first.clone(),
                    feeds: members.known_feeds.iter().cloned().collect(),
                    score: percent,
                    threshold: rules.known_min_percent,
                    ..Evidence::default()
                },
                suggested: Some(Disposition::LowNeedKnown),
            });
        }
        if novel_raised {
            flags.push(Flag {
                kind: FlagKind::Novel,
                evidence: Evidence {
                    observables: members.novel_first.clone(),
                    score: percent,
                    threshold: rules.novel_max_percent,
                    ..Evidence::default()
                },
                suggested: None,
            });
        }
    }

    // surge: reports in (now - window, now]
    let start = now - rules.surge_window;
    let from = view.report_times[..reported].partition_point(|t| *t <= start);
    let window: Vec<DateTime<Utc>> = view.report_times[from..reported].to_vec();
    if window.len() >= rules.surge_min {
        // Holds until the oldest report that keeps the count at K leaves the window.
        expire(window[window.len() - rules.surge_min] + rules.surge_window);
        flags.push(Flag {
            kind: FlagKind::Surge,
            evidence: Evidence {
                score: window.len() as f64,
                times: window,
                threshold: rules.surge_min as f64,
                window_hours: rules.surge_window.num_hours(),
                ..Evidence::default()
            },
            suggested: None,
        });
    }
    (flags, until)
}

/// The largest set of distinct sectors within any window of the configured length: the
/// first window (by its last event) that reaches the most. The sweep stops once a window holds
/// every sector seen at all, as no later one can hold more.
fn cross_sector(rules: &FlagRules, view: &View<'_>, now: DateTime<Utc>) -> Option<Flag> {
    let events = &view.sector_times[..up_to(view.sector_times, now, |e| e.0)];
    let index = |s: Sector| s as usize;
    let mut all = [false; SECTORS];
    let mut distinct = 0;
    for &(_, s) in events {
        if !all[index(s)] {
            all[index(s)] = true;
            distinct += 1;
            if distinct == SECTORS {
                break;
            }
        }
    }
    if distinct < rules.cross_sector_min {
        return None;
    }
    // Sliding window over events sorted by time: counts per sector inside.
    let mut best: Option<(usize, usize, usize, [bool; SECTORS])> = None; // (distinct, lo, hi, which)
    let mut counts = [0usize; SECTORS];
    let mut inside = 0;
    let mut lo = 0;
    for hi in 0..events.len() {
        let s = index(events[hi].1);
        counts[s] += 1;
        if counts[s] == 1 {
            inside += 1;
        }
        while events[hi].0 - events[lo].0 > rules.cross_sector_window {
            let s = index(events[lo].1);
            counts[s] -= 1;
            if counts[s] == 0 {
                inside -= 1;
            }
            lo += 1;
        }
        if best.is_none_or(|(d, ..)| inside > d) {
            best = Some((inside, lo, hi, counts.map(|c| c > 0)));
            if inside == distinct {
                break;
            }
        }
    }
    let (d, lo, hi, which) = best?;
    if d < rules.cross_sector_min {
        return None;
    }
    let sectors: Vec<Sector> = Sector::ALL
        .iter()
        .copied()
        .filter(|&s| which[index(s)])
        .collect();
    Some(Flag {
        kind: FlagKind::CrossSector,
        evidence: Evidence {
            sectors,
            times: vec![events[lo].0, events[hi].0],
            score: d as f64,
            threshold: rules.cross_sector_min as f64,
            window_hours: rules.cross_sector_window.num_hours(),
            ..Evidence::default()
        },
        suggested: None,
    })
}

/// Number of sectors (the index of a sector is its place in [`Sector::ALL`]).
const SECTORS: usize = Sector::ALL.len();

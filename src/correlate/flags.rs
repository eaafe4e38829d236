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

use std::collections::{BTreeMap, BTreeSet};

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

/// What flags need to know about one campaign.
#[derive(Debug, Default)]
pub(crate) struct View<'a> {
    /// Report times (any source).
    pub report_times: Vec<DateTime<Utc>>,
    /// Sector activity: member reports with a sector and true-positive sightings.
    pub sector_times: Vec<(DateTime<Utc>, Sector)>,
    /// Times of true-positive sightings.
    pub seen_times: Vec<DateTime<Utc>>,
    /// Member-submitted linking observables: whether a feed carries each, and some of the
    /// feeds that do.
    pub member_obs: Vec<(&'a Observable, bool, Vec<String>)>,
}

/// Most observables an evidence list shows.
pub(crate) const EVIDENCE_MAX: usize = 50;

/// The first [`EVIDENCE_MAX`] observables in order, without sorting or cloning them all (a
/// big campaign carries hundreds of thousands).
fn first_sorted(mut refs: Vec<&Observable>) -> Vec<Observable> {
    if refs.len() > EVIDENCE_MAX {
        refs.select_nth_unstable(EVIDENCE_MAX);
        refs.truncate(EVIDENCE_MAX);
    }
    refs.sort();
    refs.into_iter().cloned().collect()
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
    for t in view.report_times.iter().chain(&view.seen_times) {
        if *t > now {
            expire(*t);
        }
    }

    if let Some(flag) = cross_sector(rules, view, now) {
        flags.push(flag);
    }

    // stale
    let last = view
        .report_times
        .iter()
        .chain(&view.seen_times)
        .filter(|t| **t <= now)
        .max()
        .copied();
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
    if !view.member_obs.is_empty() {
        let total = view.member_obs.len();
        let known: Vec<&(&Observable, bool, Vec<String>)> =
            view.member_obs.iter().filter(|(_, k, _)| *k).collect();
        let percent = 100.0 * known.len() as f64 / total as f64;
        if !known.is_empty() && percent >= rules.known_min_percent {
            let feeds: BTreeSet<&String> = known.iter().flat_map(|(_, _, f)| f).collect();
            let observables = first_sorted(known.iter().map(|(o, _, _)| *o).collect());
            flags.push(Flag {
                kind: FlagKind::Known,
                evidence: Evidence {
                    observables,
                    feeds: feeds.into_iter().cloned().collect(),
                    score: percent,
                    threshold: rules.known_min_percent,
                    ..Evidence::default()
                },
                suggested: Some(Disposition::LowNeedKnown),
            });
        }
        if percent <= rules.novel_max_percent {
            let observables = first_sorted(
                view.member_obs
                    .iter()
                    .filter(|(_, k, _)| !*k)
                    .map(|(o, _, _)| *o)
                    .collect(),
            );
            flags.push(Flag {
                kind: FlagKind::Novel,
                evidence: Evidence {
                    observables,
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
    let mut window: Vec<DateTime<Utc>> = view
        .report_times
        .iter()
        .filter(|t| **t > start && **t <= now)
        .copied()
        .collect();
    window.sort();
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

/// The largest set of distinct sectors within any window of the configured length.
fn cross_sector(rules: &FlagRules, view: &View<'_>, now: DateTime<Utc>) -> Option<Flag> {
    let mut events: Vec<(DateTime<Utc>, Sector)> = view
        .sector_times
        .iter()
        .filter(|(t, _)| *t <= now)
        .copied()
        .collect();
    let distinct: BTreeSet<Sector> = events.iter().map(|(_, s)| *s).collect();
    if distinct.len() < rules.cross_sector_min {
        return None;
    }
    events.sort();
    // Sliding window over events sorted by time: counts per sector inside.
    let mut best: Option<(usize, usize, usize)> = None; // (distinct, lo, hi)
    let mut counts: BTreeMap<Sector, usize> = BTreeMap::new();
    let mut lo = 0;
    for hi in 0..events.len() {
        *counts.entry(events[hi].1).or_default() += 1;
        while events[hi].0 - events[lo].0 > rules.cross_sector_window {
            let s = events[lo].1;
            let c = counts.get_mut(&s).expect("counted when it entered");
            *c -= 1;
            if *c == 0 {
                counts.remove(&s);
            }
            lo += 1;
        }
        if best.is_none_or(|(d, _, _)| counts.len() > d) {
            best = Some((counts.len(), lo, hi));
        }
    }
    let (d, lo, hi) = best?;
    if d < rules.cross_sector_min {
        return None;
    }
    let sectors: BTreeSet<Sector> = events[lo..=hi].iter().map(|(_, s)| *s).collect();
    Some(Flag {
        kind: FlagKind::CrossSector,
        evidence: Evidence {
            sectors: sectors.into_iter().collect(),
            times: vec![events[lo].0, events[hi].0],
            score: d as f64,
            threshold: rules.cross_sector_min as f64,
            window_hours: rules.cross_sector_window.num_hours(),
            ..Evidence::default()
        },
        suggested: None,
    })
}

//! Why a flag was raised, shaped per kind.
//!
//! The correlator judges each flag against its rule ([`super::flags`]); this module turns
//! that judgement into the evidence people read (API, console, digests), so that a new flag
//! kind is added here, in the rules file and in the label table (`model/flag.rs`), and
//! nowhere else. Sectors never leave as names: the caller passes the labeller the viewer's
//! policy allows (k-anonymous labels), or none.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::flags::Flag;
use crate::model::{FlagKind, Observable, ObservableRef, Sector};

/// Why a flag was raised, per kind (serialised without a tag: the flag's `name` says which).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FlagEvidence {
    /// Reports or true-positive sightings from `sectors` distinct sectors between `from`
    /// and `to`, within a window of `window_days`.
    CrossSector {
        sectors: usize,
        /// The sectors as k-anonymous labels ([`SectorLabeler`]), distinct.
        labels: Vec<String>,
        min_sectors: usize,
        window_days: i64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
    /// No activity since `last_activity`; decay score below the threshold.
    Stale {
        last_activity: Option<DateTime<Utc>>,
        decay_score: f64,
        threshold: f64,
        quiet_days: i64,
    },
    /// `share_percent` of the member observables appear in the public `feeds`.
    Known {
        feeds: Vec<String>,
        share_percent: f64,
        min_percent: f64,
        observables: Vec<ObservableRef>,
    },
    /// At most `max_percent` of the member observables appear in public feeds; these none.
    Novel {
        share_percent: f64,
        max_percent: f64,
        observables: Vec<ObservableRef>,
    },
    /// `reports` reports within the last `window_hours`.
    Surge {
        reports: usize,
        min_reports: usize,
        window_hours: i64,
        first: Option<DateTime<Utc>>,
        last: Option<DateTime<Utc>>,
    },
}

impl FlagEvidence {
    /// The evidence of a correlation finding, per kind. `label` turns sectors into the
    /// k-anonymous labels the viewer may see (`None`: no labels at all).
    pub fn of(flag: &Flag, label: Option<&dyn Fn(Sector) -> String>) -> FlagEvidence {
        let e = &flag.evidence;
        let refs = |os: &[Observable]| os.iter().map(ObservableRef::of).collect();
        match flag.kind {
            FlagKind::CrossSector => {
                let mut labels: Vec<String> = match label {
                    Some(l) => e.sectors.iter().map(|s| l(*s)).collect(),
                    None => Vec::new(),
                };
                labels.sort();
                labels.dedup();
                FlagEvidence::CrossSector {
                    sectors: e.score as usize,
                    labels,
                    min_sectors: e.threshold as usize,
                    window_days: e.window_hours / 24,
                    from: e.times.first().copied(),
                    to: e.times.last().copied(),
                }
            }
            FlagKind::Stale => FlagEvidence::Stale {
                last_activity: e.times.first().copied(),
                decay_score: e.score,
                threshold: e.threshold,
                quiet_days: e.window_hours / 24,
            },
            FlagKind::Known => FlagEvidence::Known {
                feeds: e.feeds.clone(),
                share_percent: e.score,
                min_percent: e.threshold,
                observables: refs(&e.observables),
            },
            FlagKind::Novel => FlagEvidence::Novel {
                share_percent: e.score,
                max_percent: e.threshold,
                observables: refs(&e.observables),
            },
            FlagKind::Surge => FlagEvidence::Surge {
                reports: e.score as usize,
                min_reports: e.threshold as usize,
                window_hours: e.window_hours,
                first: e.times.first().copied(),
                last: e.times.last().copied(),
            },
        }
    }

    /// One line of evidence for people (console, digest).
    pub fn summary(&self) -> String {
        let values = |os: &[ObservableRef]| first_values(os, ", ");
        match self {
            FlagEvidence::CrossSector {
                sectors,
                labels,
                window_days,
                from,
                to,
                ..
            } => format!(
                "{sectors} sectors ({}) within {window_days} days, {} – {}",
                labels.join(", "),
                day(from),
                day(to)
            ),
            FlagEvidence::Stale {
                last_activity,
                decay_score,
                threshold,
                ..
            } => format!(
                "last activity {}, decay score {decay_score:.1} < {threshold:.1}",
                day(last_activity)
            ),
            FlagEvidence::Known {
                feeds,
                share_percent,
                observables,
                ..
            } => format!(
                "{share_percent:.0}% of member values in public feeds ({}): {}",
                feeds.join(", "),
                values(observables)
            ),
            FlagEvidence::Novel {
                share_percent,
                observables,
                ..
            } => format!(
                "{share_percent:.0}% of member values in public feeds; new: {}",
                values(observables)
            ),
            FlagEvidence::Surge {
                reports,
                window_hours,
                ..
            } => format!("{reports} reports within {window_hours} hours"),
        }
    }

    /// [`FlagEvidence::summary`] in `lang`: mail to a Japanese recipient reads its evidence in
    /// Japanese (the API keeps the English summary and the structured evidence).
    pub fn summary_in(&self, lang: crate::model::Language) -> String {
        if lang == crate::model::Language::En {
            return self.summary();
        }
        let values = |os: &[ObservableRef]| first_values(os, "、");
        match self {
            FlagEvidence::CrossSector {
                sectors,
                labels,
                window_days,
                from,
                to,
                ..
            } => format!(
                "{window_days}日以内に{sectors}業種（{}）、{}〜{}",
                labels.join("、"),
                day(from),
                day(to)
            ),
            FlagEvidence::Stale {
                last_activity,
                decay_score,
                threshold,
                ..
            } => format!(
                "最終活動 {}、減衰スコア {decay_score:.1} < {threshold:.1}",
                day(last_activity)
            ),
            FlagEvidence::Known {
                feeds,
                share_percent,
                observables,
                ..
            } => format!(
                "会員の値の{share_percent:.0}%が公開フィード（{}）に掲載: {}",
                feeds.join("、"),
                values(observables)
            ),
            FlagEvidence::Novel {
                share_percent,
                observables,
                ..
            } => format!(
                "公開フィードに掲載された会員の値は{share_percent:.0}%、新規: {}",
                values(observables)
            ),
            FlagEvidence::Surge {
                reports,
                window_hours,
                ..
            } => format!("{window_hours}時間以内に{reports}件の報告"),
        }
    }
}

/// A day as people read it in a summary; empty when unknown.
fn day(t: &Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The first five values, joined with `sep`, and "…" when there are more.
fn first_values(os: &[ObservableRef], sep: &str) -> String {
    let mut v: Vec<&str> = os.iter().take(5).map(|o| o.value.as_str()).collect();
    if os.len() > 5 {
        v.push("…");
    }
    v.join(sep)
}

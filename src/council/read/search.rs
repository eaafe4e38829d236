//! Search as one viewer sees it.
//!
//! Visibility is a clause of the index query, so hidden reports take no part in anything
//! the viewer can observe: the hits, the limit, the exact-value fallback, the order. The
//! clause is not a second policy: it is *derived from* [`crate::council::policy::decide`],
//! asked about every combination of the facts it depends on (origin kind, TLP, scope, "the
//! viewer provided it", "the viewer is a named recipient", "released") and folded into a
//! boolean filter over those facts ([`visibility_filter`]). The index holds the facts that
//! never change as terms; release changes over time, so the released reports are not
//! indexed (an indexed flag would need a re-index of every document a release covers and
//! would lag behind the store) but named by the store's release count, read for each
//! search: the index keeps what each filter admits per segment and reads the released set
//! itself only when the count has changed (see `index::visibility`). Only the viewers whose
//! visibility depends on release (class 2, general, audiences) read the count.
//!
//! What the kept filters let a member time: a search right after a release, or after a
//! commit of the index, is slower by the evaluation of the filter on what changed (a
//! release: the whole index; a commit: the new segment). Members learn from it that *some*
//! release or submission happened, which the plain evaluation also let them time (its cost
//! grew with every report indexed, hidden or not); never what was released or submitted.
//! Filters are kept per viewer's filter (a member's own and recipient terms make it
//! theirs), so another member's searches never warm or cool it, except by pushing it out of
//! the bounded cache when many members search.
//!
//! Order: BM25 uses corpus-wide statistics (document frequencies, average lengths), which
//! hidden reports change. Only the secretariat, which sees everything, is ranked by it;
//! every other viewer gets the matching reports newest first (store order), an order no
//! hidden report can move. Their hits carry no score.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::DateTime;
use serde::Serialize;

use super::ids::{self, ShownCampaignId};
use super::{ReadPath, Viewer};
use crate::council::ReportSummary;
use crate::index::{DocFilter, IndexError, Ranking, ReleasedSet};
use crate::model::{MemberId, Origin, ReportId, ReportMeta, Scope, Seq, Tlp};
use crate::store::{self, StoreError};

/// One search hit as its viewer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// BM25 score: for the secretariat only (it depends on every indexed report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    pub report: ReportSummary,
    pub campaign: Option<ShownCampaignId>,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query is malformed or names a field that is not searchable (a 400).
    #[error("{0}")]
    Query(String),
    #[error("the search index is not available")]
    Unavailable,
    #[error(transparent)]
    Index(IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IndexError> for SearchError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Query(m) => SearchError::Query(m),
            other => SearchError::Index(other),
        }
    }
}

impl ReadPath {
    /// Full-text search over the reports `viewer` may see: at most `limit` hits, best first
    /// for the secretariat, newest first for everyone else.
    pub async fn search(
        &self,
        viewer: &Viewer,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchHit>, SearchError> {
        let index = self.index.clone().ok_or(SearchError::Unavailable)?;
        let set = self.campaign_set();
        let store = self.store.clone();
        let viewer = viewer.clone();
        let query = query.to_string();
        tokio::task::spawn_blocking(move || -> Result<Vec<SearchHit>, SearchError> {
            let table = Table::of(&viewer);
            // The release count names the released set: the index reads the set itself
            // only when it has no filter evaluated with this version yet.
            let released = if table.depends_on(Var::Released) {
                let version = store.read(store::releases::count)?;
                let store = store.clone();
                ReleasedSet::versioned(version, move || {
                    store
                        .read(store::releases::all_released)
                        .map_err(|e| e.to_string())
                })
            } else {
                ReleasedSet::of(Arc::from(Vec::new()))
            };
            let filter = table.filter(&viewer, &released);
            let ranking = if viewer.is_secretariat() {
                Ranking::Relevance
            } else {
                Ranking::Newest
            };
            let found = index.search_visible(&query, &filter, ranking, limit)?;
            let seqs: Vec<Seq> = found.iter().map(|(s, _)| *s).collect();
            let metas: HashMap<Seq, ReportMeta> = store
                .read(|conn| store::reports::metas(conn, &seqs))?
                .into_iter()
                .map(|m| (m.id.0, m))
                .collect();
            let mut hits = Vec::with_capacity(found.len());
            for (seq, score) in found {
                // The index filtered already; the policy has the last word all the same.
                let Some(report) = metas.get(&seq).and_then(|m| viewer.report_summary(m)) else {
                    tracing::warn!(seq = seq.0, "search hit outside the viewer's filter");
                    continue;
                };
                hits.push(SearchHit {
                    score,
                    report,
                    campaign: set.of_report(seq).map(|c| ids::campaign(&viewer, c.id)),
                });
            }
            Ok(hits)
        })
        .await
        .map_err(|e| SearchError::Store(StoreError::Corrupt(format!("search task: {e}"))))?
    }
}

/// The visibility filter the index evaluates for `viewer`'s searches, derived from
/// [`crate::council::policy::decide`] (the one derivation: the benchmark of member search
/// uses it rather than a copy of the policy). `released` is read only by viewers whose
/// visibility depends on release ([`visibility_depends_on_release`]).
pub fn visibility_filter(viewer: &Viewer, released: &ReleasedSet) -> DocFilter {
    Table::of(viewer).filter(viewer, released)
}

/// Whether `viewer`'s visibility depends on release (class 2, general members, audiences).
pub fn visibility_depends_on_release(viewer: &Viewer) -> bool {
    Table::of(viewer).depends_on(Var::Released)
}

/// The facts visibility may depend on besides the static class, most significant first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Released,
    Provided,
    Recipient,
}

const VARS: [Var; 3] = [Var::Released, Var::Provided, Var::Recipient];

/// The static classes: origin kind × TLP × scope.
fn classes() -> Vec<(bool, Tlp, Option<Scope>)> {
    let mut out = Vec::new();
    for submission in [true, false] {
        for tlp in Tlp::ALL {
            for scope in std::iter::once(None).chain(Scope::ALL.map(Some)) {
                out.push((submission, tlp, scope));
            }
        }
    }
    out
}

/// [`crate::council::policy::decide`] for one viewer over every combination of the facts
/// it depends on: index `((released * 2 + provided) * 2 + recipient) * classes + class`.
pub(super) struct Table {
    classes: Vec<(bool, Tlp, Option<Scope>)>,
    shown: Vec<bool>,
}

impl Table {
    pub(super) fn of(viewer: &Viewer) -> Table {
        let classes = classes();
        // A member id no viewer has, for "provided by someone else".
        let other = MemberId("\u{0}other".into());
        let me = viewer
            .member_id()
            .cloned()
            .unwrap_or_else(|| MemberId("\u{0}nobody".into()));
        let mut shown = Vec::with_capacity(8 * classes.len());
        for bits in 0..8u8 {
            let (released, provided, recipient) = (bits & 4 != 0, bits & 2 != 0, bits & 1 != 0);
            for &(submission, tlp, scope) in &classes {
                let meta = ReportMeta {
                    id: ReportId(Seq(0)),
                    origin: if submission {
                        Origin::Submission {
                            member: if provided { me.clone() } else { other.clone() },
                        }
                    } else {
                        Origin::FeedItem {
                            feed: "feed".into(),
                        }
                    },
                    received_at: DateTime::UNIX_EPOCH,
                    title: String::new(),
                    tlp,
                    confidence: Default::default(),
                    scope,
                    recipients: if recipient {
                        vec![me.clone()]
                    } else {
                        Vec::new()
                    },
                    released,
                };
                shown.push(viewer.may_see(&meta));
            }
        }
        Table { classes, shown }
    }

    fn depends_on(&self, var: Var) -> bool {
        let pos = VARS.iter().position(|v| *v == var).unwrap_or(0);
        let stride = self.classes.len() << (VARS.len() - 1 - pos);
        (0..self.shown.len())
            .filter(|i| (i / stride).is_multiple_of(2))
            .any(|i| self.shown[i] != self.shown[i + stride])
    }

    /// The table as a filter, by Shannon expansion over the variables (a variable the
    /// decision does not depend on disappears; the released set appears at most twice).
    pub(super) fn filter(&self, viewer: &Viewer, released: &ReleasedSet) -> DocFilter {
        let term = |var: Var| -> DocFilter {
            match (var, viewer.member_id()) {
                (Var::Released, _) => DocFilter::Released(released.clone()),
                (Var::Provided, Some(m)) => DocFilter::ProvidedBy(m.clone()),
                (Var::Recipient, Some(m)) => DocFilter::Recipient(m.clone()),
                (_, None) => DocFilter::Nothing,
            }
        };
        self.expand(&self.shown, &VARS, &term).simplified()
    }

    fn expand(&self, table: &[bool], vars: &[Var], term: &dyn Fn(Var) -> DocFilter) -> DocFilter {
        let Some((&var, rest)) = vars.split_first() else {
            if table.iter().all(|&b| b) {
                return DocFilter::Any;
            }
            return DocFilter::Or(
                self.classes
                    .iter()
                    .zip(table)
                    .filter(|(_, shown)| **shown)
                    .map(|(&(submission, tlp, scope), _)| DocFilter::Class {
                        submission,
                        tlp,
                        scope,
                    })
                    .collect(),
            );
        };
        let (t0, t1) = table.split_at(table.len() / 2);
        if t0 == t1 {
            return self.expand(t0, rest, term);
        }
        let e0 = self.expand(t0, rest, term);
        let e1 = self.expand(t1, rest, term);
        let implies = |a: &[bool], b: &[bool]| a.iter().zip(b).all(|(x, y)| !x || *y);
        if implies(t0, t1) {
            // Monotone in the variable (release only ever widens a view).
            DocFilter::Or(vec![e0, DocFilter::And(vec![term(var), e1])])
        } else if implies(t1, t0) {
            DocFilter::Or(vec![
                e1,
                DocFilter::And(vec![DocFilter::Not(Box::new(term(var))), e0]),
            ])
        } else {
            DocFilter::Or(vec![
                DocFilter::And(vec![term(var), e1]),
                DocFilter::And(vec![DocFilter::Not(Box::new(term(var))), e0]),
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ReportIndex;
    use crate::model::{Confidence, MemberClass, Report, ReportDraft};

    fn viewers() -> Vec<Viewer> {
        let m = |id: &str, class| Viewer::member(MemberId(id.into()), class);
        vec![
            Viewer::PUBLIC,
            Viewer::Audience {
                ceiling: Tlp::Green,
            },
            Viewer::Audience {
                ceiling: Tlp::Amber,
            },
            m("m001", MemberClass::Class1),
            m("m002", MemberClass::Class2),
            m("m003", MemberClass::General),
            m("m004", MemberClass::General),
            m("sec", MemberClass::Secretariat),
        ]
    }

    /// Every TLP × scope × origin × provider × recipients × release × confidence, indexed;
    /// for every viewer the filtered search finds exactly the reports `decide` shows.
    #[test]
    fn the_index_filter_agrees_with_decide_everywhere() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = ReportIndex::open(dir.path()).expect("open");
        let mut ix = index.indexer().expect("writer");
        let mut metas = Vec::new();
        let mut released = Vec::new();
        let mut seq = 0;
        let members = ["m001", "m002", "m003", "m004"];
        for (submission, tlp, scope) in classes() {
            let providers: Vec<Option<&str>> = if submission {
                members.iter().map(|m| Some(*m)).collect()
            } else {
                vec![None]
            };
            for provider in providers {
                for recipients in [vec![], vec!["m003"], vec!["m001", "m004"]] {
                    for is_released in [false, true] {
                        for confidence in [Confidence::Unconfirmed, Confidence::Confirmed] {
                            seq += 1;
                            let mut draft = ReportDraft::new("zebrafish", tlp);
                            draft.scope = scope;
                            draft.confidence = confidence;
                            draft.recipients =
                                recipients.iter().map(|r| MemberId(r.to_string())).collect();
                            let report = Report {
                                id: ReportId(Seq(seq)),
                                origin: match provider {
                                    Some(m) => Origin::Submission {
                                        member: MemberId(m.into()),
                                    },
                                    None => Origin::FeedItem { feed: "f".into() },
                                },
                                received_at: chrono::Utc::now(),
                                draft,
                            };
                            ix.add(&report).expect("add");
                            if is_released {
                                released.push(Seq(seq));
                            }
                            metas.push(report.meta_released(is_released));
                        }
                    }
                }
            }
        }
        ix.commit().expect("commit");
        index.refresh().expect("refresh");
        let released: Arc<[Seq]> = released.into();
        for viewer in viewers() {
            let filter = Table::of(&viewer).filter(&viewer, &ReleasedSet::of(released.clone()));
            let mut got: Vec<u64> = index
                .search_visible("zebrafish", &filter, Ranking::Newest, 100_000)
                .expect("search")
                .into_iter()
                .map(|(s, _)| s.0)
                .collect();
            got.sort_unstable();
            let want: Vec<u64> = metas
                .iter()
                .filter(|m| viewer.may_see(m))
                .map(|m| m.id.0.0)
                .collect();
            assert_eq!(got, want, "{viewer:?}");
            // The ten newest, newest first (through the narrowest windows).
            let newest: Vec<u64> = index
                .search_visible("zebrafish", &filter, Ranking::Newest, 10)
                .expect("search")
                .into_iter()
                .map(|(s, _)| s.0)
                .collect();
            let want_newest: Vec<u64> = want.iter().rev().take(10).copied().collect();
            assert_eq!(newest, want_newest, "{viewer:?}");
        }
    }

    #[test]
    fn only_viewers_who_wait_for_release_read_the_released_set() {
        let [public, green, amber, c1, c2, general, _, sec] =
            <[Viewer; 8]>::try_from(viewers()).expect("eight");
        for v in [&public, &green, &amber, &c2, &general] {
            assert!(Table::of(v).depends_on(Var::Released), "{v:?}");
        }
        for v in [&c1, &sec] {
            assert!(!Table::of(v).depends_on(Var::Released), "{v:?}");
        }
        assert_eq!(
            Table::of(&sec).filter(&sec, &ReleasedSet::of(Arc::from(Vec::new()))),
            DocFilter::Any
        );
    }
}

//! TAXII collection pages as one viewer sees them.
//!
//! A page is read from the store's TAXII object log (`store::taxii`) in (date added, id)
//! order, with visibility *inside* the query: the filter is [`super::search::Table`], the
//! council policy asked about every combination of the facts it depends on and folded into
//! an expression, exactly as search derives its index filter — not a second policy. So a
//! page reads about `limit` rows whatever the size of the collection, hidden objects take
//! no part in the order, the count or the cursor, and the policy still has the last word on
//! every report a page names ([`Viewer::report_view`]).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::search::Table;
use super::{ReadPath, Result, Viewer};
use crate::council::ReportView;
use crate::index::DocFilter;
use crate::model::{ObservableKind, Seq};
use crate::store::{self, taxii::Visible};

pub use crate::store::taxii::PageQuery as TaxiiQuery;

/// One object of a TAXII page, with the policy's view of the report it comes from.
#[derive(Debug, Clone)]
pub struct TaxiiObject {
    pub added_at: DateTime<Utc>,
    /// Its STIX id: the provider's own, or one derived from the report.
    pub id: String,
    /// The observable it describes, or `None` for the report object.
    pub observable: Option<(ObservableKind, String)>,
    /// The report as the viewer may see it.
    pub report: Arc<ReportView>,
    /// For a report object: the ids of its observables' objects.
    pub refs: Vec<String>,
}

/// The policy's filter as the store's visibility expression. The released set is not
/// carried: the store tests release against `released_reports` inside the query.
fn visible(filter: &DocFilter) -> Visible {
    match filter {
        DocFilter::Any => Visible::Any,
        DocFilter::Nothing => Visible::Nothing,
        DocFilter::Class {
            submission,
            tlp,
            scope,
        } => Visible::Class {
            submission: *submission,
            tlp: *tlp,
            scope: *scope,
        },
        DocFilter::ProvidedBy(m) => Visible::ProvidedBy(m.clone()),
        DocFilter::Recipient(m) => Visible::Recipient(m.clone()),
        DocFilter::Released(_) => Visible::Released,
        DocFilter::And(parts) => Visible::And(parts.iter().map(visible).collect()),
        DocFilter::Or(parts) => Visible::Or(parts.iter().map(visible).collect()),
        DocFilter::Not(p) => Visible::Not(Box::new(visible(p))),
    }
}

/// [`visible`] for one viewer. The filter is built over a placeholder released set (an
/// empty one would fold "released" away as false); the store evaluates release itself.
pub(super) fn visibility_of(viewer: &Viewer) -> Visible {
    let placeholder = crate::index::ReleasedSet::of(Arc::from(vec![Seq(0)]));
    visible(&Table::of(viewer).filter(viewer, &placeholder))
}

impl ReadPath {
    /// At most `query.limit` objects of the TAXII log that `viewer` may see, after the
    /// query's cursor, in (date added, id) order. Costs the rows it returns (and the
    /// reports they name), not the collection.
    pub async fn taxii_objects(
        &self,
        viewer: &Viewer,
        query: TaxiiQuery,
    ) -> Result<Vec<TaxiiObject>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let rows = store::taxii::page(conn, &query, &visibility_of(&viewer))?;
            let mut seqs: Vec<Seq> = rows.iter().map(|r| r.seq).collect();
            seqs.sort_unstable();
            seqs.dedup();
            let released = store::releases::released(conn, &seqs)?;
            let mut views: HashMap<Seq, Arc<ReportView>> = HashMap::new();
            for report in store::reports::get_many(conn, &seqs)? {
                let seq = report.seq();
                let campaign = set.of_report(seq).map(|c| c.id);
                if let Some(v) = viewer.report_view(&report, released.contains(&seq), campaign) {
                    views.insert(seq, Arc::new(v));
                }
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                // The query filtered already; the policy has the last word all the same.
                let Some(report) = views.get(&row.seq) else {
                    tracing::warn!(seq = row.seq.0, "TAXII row outside the viewer's filter");
                    continue;
                };
                let refs = if row.observable.is_none() {
                    store::taxii::object_ids_of(conn, row.seq)?
                } else {
                    Vec::new()
                };
                out.push(TaxiiObject {
                    added_at: row.added_at,
                    id: row.stix_id,
                    observable: row.observable,
                    report: report.clone(),
                    refs,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        MemberClass, MemberId, Observable, Origin, ReportDraft, ReportMeta, Scope, Tlp,
    };

    /// For every viewer, the store's page holds exactly the reports `decide` shows, over
    /// every TLP × scope × origin × provider × recipients × release.
    #[test]
    fn the_page_filter_agrees_with_decide_everywhere() {
        let conn = store::open_in_memory().unwrap();
        let at = Utc::now();
        let members = ["m001", "m002", "m003"];
        let mut metas: Vec<ReportMeta> = Vec::new();
        for submission in [true, false] {
            for tlp in Tlp::ALL {
                for scope in std::iter::once(None).chain(Scope::ALL.map(Some)) {
                    let providers: Vec<Option<&str>> = if submission {
                        members.iter().map(|m| Some(*m)).collect()
                    } else {
                        vec![None]
                    };
                    for provider in providers {
                        for recipients in [vec![], vec!["m003"]] {
                            for released in [false, true] {
                                let mut d = ReportDraft::new(format!("r{}", metas.len()), tlp);
                                d.scope = scope;
                                d.recipients =
                                    recipients.iter().map(|r| MemberId(r.to_string())).collect();
                                d.push_observable(
                                    Observable::parse_named("domain", "x.example").unwrap(),
                                    None,
                                );
                                let origin = match provider {
                                    Some(m) => Origin::Submission {
                                        member: MemberId(m.into()),
                                    },
                                    None => Origin::FeedItem { feed: "f".into() },
                                };
                                if let Some(m) = provider {
                                    conn.execute(
                                        "INSERT INTO members (id, name, category, class, created_at) VALUES (?1, ?1, 'x', 'class1', '2024-01-01T00:00:00Z') ON CONFLICT DO NOTHING",
                                        crate::store::db::params![m],
                                    )
                                    .unwrap();
                                }
                                let id =
                                    store::reports::insert(&conn, &origin, &d, at).unwrap().id();
                                if released {
                                    store::releases::release_report(&conn, id.0, "sec", at)
                                        .unwrap();
                                }
                                metas.push(ReportMeta {
                                    id,
                                    origin,
                                    received_at: at,
                                    title: d.title.clone(),
                                    tlp,
                                    confidence: Default::default(),
                                    scope,
                                    recipients: d.recipients.clone(),
                                    released,
                                });
                            }
                        }
                    }
                }
            }
        }
        let m = |id: &str, class| Viewer::member(MemberId(id.into()), class);
        for viewer in [
            Viewer::PUBLIC,
            Viewer::Audience {
                ceiling: Tlp::Amber,
            },
            m("m001", MemberClass::Class1),
            m("m002", MemberClass::Class2),
            m("m003", MemberClass::General),
            m("sec", MemberClass::Secretariat),
        ] {
            let q = TaxiiQuery {
                limit: 1_000_000,
                ..TaxiiQuery::default()
            };
            let mut got: Vec<u64> = store::taxii::page(&conn, &q, &visibility_of(&viewer))
                .unwrap()
                .into_iter()
                .filter(|r| r.observable.is_none())
                .map(|r| r.seq.0)
                .collect();
            got.sort_unstable();
            let want: Vec<u64> = metas
                .iter()
                .filter(|m| viewer.may_see(m))
                .map(|m| m.id.0.0)
                .collect();
            assert_eq!(got, want, "{viewer:?}");
        }
    }
}

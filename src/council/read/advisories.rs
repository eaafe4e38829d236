//! Advisories (groups of public feed items that no member reported: context, not attack
//! activities) and the public context of a campaign's values.
//!
//! An advisory is listed on its own and never counted as a campaign (the correlator gives
//! it no campaign id, `correlate::Advisory`). A campaign's public context is looked up
//! from the values of the reports the *viewer may see*, and only feed items the viewer
//! may see are shown, so the context says nothing about hidden member reports.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ids::ShownReportId;
use super::{Page, ReadPath, Result, Viewer};
use crate::correlate::Advisory;
use crate::council::views::PublicContext;
use crate::council::{ObservableRef, ReportSummary};
use crate::model::{Observable, Origin, Report, Seq};
use crate::store;

/// Most values of one campaign looked up for context, and most feed items per value.
const CONTEXT_VALUES: usize = 200;
const CONTEXT_PER_VALUE: usize = 5;
/// Most context items one campaign shows.
const CONTEXT_MAX: usize = 100;

/// One advisory as a viewer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct AdvisoryView {
    /// The id of its first visible feed item (opaque outside the secretariat).
    pub id: ShownReportId,
    /// The first visible item's title.
    pub title: String,
    pub feeds: Vec<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub report_count: usize,
    pub reports: Vec<ReportSummary>,
}

/// A listing request: text in titles (`q`, case-insensitive), one feed, a page.
#[derive(Debug, Clone)]
pub struct AdvisoryQuery {
    pub q: Option<String>,
    pub feed: Option<String>,
    pub page: Page,
}

impl ReadPath {
    /// Advisories the viewer may see (through their visible items), most recent first.
    pub async fn advisories(
        &self,
        viewer: &Viewer,
        query: AdvisoryQuery,
    ) -> Result<Vec<AdvisoryView>> {
        let set = self.campaign_set();
        let viewer = viewer.clone();
        self.read(move |conn| {
            let seqs: Vec<Seq> = set
                .advisories
                .iter()
                .flat_map(|a| a.reports.iter().copied())
                .collect();
            let metas: HashMap<Seq, crate::model::ReportMeta> = store::reports::metas(conn, &seqs)?
                .into_iter()
                .map(|m| (m.id.0, m))
                .collect();
            let needle = query.q.as_deref().map(str::to_lowercase);
            let mut views: Vec<AdvisoryView> = set
                .advisories
                .iter()
                .filter_map(|a| advisory_view(&viewer, a, &metas))
                .filter(|v| {
                    query
                        .feed
                        .as_ref()
                        .is_none_or(|f| v.feeds.iter().any(|g| g == f))
                })
                .filter(|v| {
                    needle.as_ref().is_none_or(|n| {
                        v.reports
                            .iter()
                            .any(|r| r.title.to_lowercase().contains(n.as_str()))
                    })
                })
                .collect();
            views.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id)));
            Ok(views
                .into_iter()
                .skip(query.page.offset)
                .take(query.page.limit)
                .collect())
        })
        .await
    }
}

/// The advisory through the items the viewer may see; `None` if it sees none.
fn advisory_view(
    viewer: &Viewer,
    advisory: &Advisory,
    metas: &HashMap<Seq, crate::model::ReportMeta>,
) -> Option<AdvisoryView> {
    let reports: Vec<ReportSummary> = advisory
        .reports
        .iter()
        .filter_map(|s| metas.get(s))
        .filter_map(|m| viewer.report_summary(m))
        .collect();
    let first = reports.first()?;
    let mut feeds: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.source {
            crate::council::SourceLabel::Feed { feed } => Some(feed.clone()),
            _ => None,
        })
        .collect();
    feeds.sort();
    feeds.dedup();
    Some(AdvisoryView {
        id: first.id,
        title: first.title.clone(),
        feeds,
        first_seen: reports.iter().map(|r| r.received_at).min()?,
        last_seen: reports.iter().map(|r| r.received_at).max()?,
        report_count: reports.len(),
        reports,
    })
}

/// The public context of `values` (the values of the reports the viewer may see): the
/// feed items the viewer may see that carry them, per value, newest first.
pub(super) fn public_context(
    conn: &crate::store::db::Conn,
    viewer: &Viewer,
    values: &[Observable],
) -> Result<Vec<PublicContext>> {
    Ok(context_items(conn, values)?
        .into_iter()
        .filter(|(_, meta)| viewer.may_see(meta))
        .map(|(c, _)| c)
        .take(CONTEXT_MAX)
        .collect())
}

/// The feed items that carry `values`, each with its meta for a later per-viewer decision
/// (the digest reads them once per window and shows each recipient the items it may see
/// for the values it may see).
pub(super) fn context_items(
    conn: &crate::store::db::Conn,
    values: &[Observable],
) -> Result<Vec<(PublicContext, crate::model::ReportMeta)>> {
    let mut wanted: Vec<(Observable, Seq)> = Vec::new();
    for o in values.iter().take(CONTEXT_VALUES) {
        for seq in store::reports::feed_items_holding(conn, o, CONTEXT_PER_VALUE)? {
            wanted.push((o.clone(), seq));
        }
    }
    let seqs: Vec<Seq> = wanted.iter().map(|(_, s)| *s).collect();
    let reports: HashMap<Seq, Report> = store::reports::get_many(conn, &seqs)?
        .into_iter()
        .map(|r| (r.seq(), r))
        .collect();
    let mut out = Vec::new();
    for (o, seq) in wanted {
        let Some(report) = reports.get(&seq) else {
            continue;
        };
        let Origin::FeedItem { feed } = &report.origin else {
            continue;
        };
        out.push((
            PublicContext {
                value: ObservableRef::of(&o),
                feed: feed.clone(),
                title: report.draft.title.clone(),
                date: report.draft.observed_at.unwrap_or(report.received_at),
                link: report.draft.link.clone(),
                details: details(report),
            },
            report.meta_released(false),
        ));
    }
    Ok(out)
}

/// The public context of the advisories that reports among `seqs` (the viewer's visible
/// reports) answer through an inquiry: the advisory's feed item, whether or not it shares
/// a value with the answer (#15 item 8). Each entry names the item's first value.
pub(super) fn answered_context(
    conn: &crate::store::db::Conn,
    viewer: &Viewer,
    seqs: &[Seq],
) -> Result<Vec<PublicContext>> {
    let mut items: Vec<Seq> = store::inquiries::answered_by(conn, seqs)?
        .into_iter()
        .filter_map(|(_, inq)| match inq.target {
            store::inquiries::InquiryTarget::Advisory(seq) => Some(seq),
            store::inquiries::InquiryTarget::Campaign(_) => None,
        })
        .collect();
    items.sort();
    items.dedup();
    let mut out = Vec::new();
    for report in store::reports::get_many(conn, &items)? {
        if !viewer.may_see(&report.meta_released(false)) {
            continue;
        }
        let Origin::FeedItem { feed } = &report.origin else {
            continue;
        };
        let Some(value) = report.draft.indicators.first().map(|i| &i.observable) else {
            continue;
        };
        out.push(PublicContext {
            value: ObservableRef::of(value),
            feed: feed.clone(),
            title: report.draft.title.clone(),
            date: report.draft.observed_at.unwrap_or(report.received_at),
            link: report.draft.link.clone(),
            details: details(&report),
        });
    }
    Ok(out)
}

fn details(report: &Report) -> BTreeMap<String, String> {
    let d = &report.draft;
    let mut out = BTreeMap::new();
    let tagged = |t: &str| d.tags.iter().any(|x| x.eq_ignore_ascii_case(t));
    if tagged("kev") {
        out.insert("kev".into(), "listed".into());
        if let Some(t) = d.observed_at {
            out.insert("date_added".into(), t.format("%Y-%m-%d").to_string());
        }
        out.insert(
            "ransomware".into(),
            if tagged("ransomware") {
                "known"
            } else {
                "unknown"
            }
            .into(),
        );
        // The KEV reader writes "Required action: … (due YYYY-MM-DD)." into the text.
        if let Some(due) = d
            .description
            .split("(due ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .filter(|s| !s.is_empty())
        {
            out.insert("due_date".into(), due.to_string());
        }
    }
    // NVD: CVSS severity, score and vector (tags written by `formats::nvd`).
    for (prefix, key) in [
        ("cvss-severity:", "severity"),
        ("cvss-score:", "cvss"),
        ("cvss-vector:", "vector"),
    ] {
        if let Some(v) = d.tags.iter().find_map(|t| t.strip_prefix(prefix)) {
            out.insert(key.into(), v.to_string());
        }
    }
    out
}

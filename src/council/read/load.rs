//! The one campaign loader: what every campaign view of the read path is built from.
//!
//! Listings, the console, exports, digests, alerts and feedback all show campaigns; they
//! load them here, many campaigns at a time, through the store's batch readers (`WHERE seq
//! IN (...)` in chunks), never one query per campaign or per report. What a viewer then
//! sees of them is decided by the views ([`Viewer::campaign_view`],
//! [`Viewer::campaign_detail`]), never here: the loader reads everything the campaigns
//! hold, hidden parts included, and hands it only to code of this module's parent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::store::db::Conn;

use super::{Result, Viewer};
use crate::correlate::Campaign;
use crate::council::anonymity::{DEFAULT_K, SectorLabeler};
use crate::council::{CampaignView, FlagView, ReportView};
use crate::model::{Observable, Report, ReportMeta, Seq};
use crate::store;

/// Reports read per group of campaigns by [`details`]: the batch is large enough that a
/// listing of thousands of campaigns costs a handful of queries, small enough that an
/// export of the whole store never holds every report in full at once.
const GROUP: usize = 2_000;

/// The report metas (release state included) of each of `campaigns`, in the order given
/// and, within a campaign, in the campaign's order.
pub(super) fn metas(conn: &Conn, campaigns: &[&Campaign]) -> Result<Vec<Vec<ReportMeta>>> {
    let seqs: Vec<Seq> = campaigns
        .iter()
        .flat_map(|c| c.reports.iter().copied())
        .collect();
    let mut by_seq: HashMap<Seq, ReportMeta> = store::reports::metas(conn, &seqs)?
        .into_iter()
        .map(|m| (m.id.0, m))
        .collect();
    Ok(distribute(
        campaigns.iter().map(|c| &c.reports),
        &seqs,
        &mut by_seq,
    ))
}

/// A campaign with its reports in full and which of them are released: what detail views
/// and full report views are built from.
pub(super) struct Detail {
    pub campaign: Arc<Campaign>,
    /// The campaign's reports (those `keep` accepted), in the campaign's order.
    pub reports: Vec<Report>,
    /// The released ones among `reports`.
    pub released: HashSet<Seq>,
}

impl Detail {
    /// The campaign as `viewer` may see it, with the observables of its visible reports;
    /// `None` if the viewer may see none of them.
    pub fn view(&self, viewer: &Viewer) -> Option<CampaignView> {
        viewer.campaign_detail(&self.campaign, &self.reports, &self.released)
    }

    /// The campaign as `viewer` may see it with its public context and, for the
    /// secretariat, its flags' sectors as k-anonymous labels.
    pub fn view_in_context(&self, conn: &Conn, viewer: &Viewer) -> Result<Option<CampaignView>> {
        let Some(mut view) = self.view(viewer) else {
            return Ok(None);
        };
        let mut values: Vec<Observable> = self
            .reports
            .iter()
            .filter(|r| viewer.may_see(&r.meta_released(self.released.contains(&r.seq()))))
            .flat_map(|r| r.draft.indicators.iter().map(|i| i.observable.clone()))
            .collect();
        values.sort();
        values.dedup();
        let mut context = super::advisories::public_context(conn, viewer, &values)?;
        // Advisories the visible reports answer (inquiries), first: the reason the
        // campaign exists, even when they share no value.
        let visible: Vec<Seq> = self
            .reports
            .iter()
            .filter(|r| viewer.may_see(&r.meta_released(self.released.contains(&r.seq()))))
            .map(|r| r.seq())
            .collect();
        let answered = super::advisories::answered_context(conn, viewer, &visible)?;
        context.retain(|c| {
            !answered
                .iter()
                .any(|a| a.title == c.title && a.feed == c.feed && a.value == c.value)
        });
        context.splice(0..0, answered);
        view.context = Some(context);
        label_flags(conn, &mut view, &self.campaign)?;
        if viewer.is_secretariat() {
            view.suggestion = Some(crate::council::review::suggest(&view));
        }
        Ok(Some(view))
    }

    /// The early-stage picture for `viewer`: organisations (distinct providers of the
    /// visible member reports) as a k-anonymous bucket, first and last seen of the visible
    /// reports, and, for the secretariat, the related earlier campaigns still in `set`.
    pub fn picture(
        &self,
        viewer: &Viewer,
        set: &crate::correlate::CampaignSet,
        lang: crate::model::Language,
    ) -> Option<crate::council::explain::PictureView> {
        let visible: Vec<&Report> = self
            .reports
            .iter()
            .filter(|r| viewer.may_see(&r.meta_released(self.released.contains(&r.seq()))))
            .collect();
        let first_seen = visible.iter().map(|r| r.received_at).min()?;
        let last_seen = visible.iter().map(|r| r.received_at).max()?;
        let providers: HashSet<&crate::model::MemberId> = visible
            .iter()
            .filter_map(|r| match &r.origin {
                crate::model::Origin::Submission { member } => Some(member),
                _ => None,
            })
            .collect();
        Some(crate::council::explain::PictureView {
            organisations: crate::council::explain::organisations_bucket(providers.len()),
            first_seen,
            last_seen,
            // Computed by the engine on request, and only for the secretariat: nobody else
            // is shown it, so nobody else waits for it.
            related: if viewer.is_secretariat() {
                let related = set.related(self.campaign.id).unwrap_or_default();
                viewer.related_view(&related, |id| set.by_id.contains_key(&id), lang)
            } else {
                Vec::new()
            },
        })
    }

    /// The reports `viewer` may see, in full, in the campaign's order.
    pub fn report_views(&self, viewer: &Viewer) -> Vec<ReportView> {
        self.reports
            .iter()
            .filter_map(|r| {
                viewer.report_view(r, self.released.contains(&r.seq()), Some(self.campaign.id))
            })
            .collect()
    }
}

/// The membership's sector labeler (k-anonymous labels).
pub(super) fn labeler(conn: &Conn) -> Result<SectorLabeler> {
    let members = store::members::list(conn)?;
    Ok(SectorLabeler::new(&members, DEFAULT_K))
}

/// Gives the flags of `view` (the secretariat's: nobody else sees flags) their sectors as
/// k-anonymous labels.
pub(super) fn label_flags(conn: &Conn, view: &mut CampaignView, c: &Campaign) -> Result<()> {
    if view.flags.is_empty() {
        return Ok(());
    }
    let labeler = labeler(conn)?;
    relabel(view, c, &labeler);
    Ok(())
}

/// [`label_flags`] with a labeler in hand (listings).
pub(super) fn relabel(view: &mut CampaignView, c: &Campaign, labeler: &SectorLabeler) {
    if view.flags.is_empty() {
        return;
    }
    view.flags = c
        .flags
        .iter()
        .map(|f| FlagView::of(f, Some(labeler)))
        .collect();
}

/// Loads `campaigns` in full, a group of about [`GROUP`] reports at a time (batch queries
/// per group), and hands each to `each` in the order given. Reports `keep` refuses are
/// left out before anything is built from them (a digest's TLP ceiling).
pub(super) fn details<I, K, F>(conn: &Conn, campaigns: I, keep: K, mut each: F) -> Result<()>
where
    I: IntoIterator<Item = Arc<Campaign>>,
    K: Fn(&Report) -> bool,
    F: FnMut(Detail) -> Result<()>,
{
    let mut group: Vec<Arc<Campaign>> = Vec::new();
    let mut size = 0;
    for campaign in campaigns {
        size += campaign.reports.len();
        group.push(campaign);
        if size >= GROUP {
            load_group(conn, std::mem::take(&mut group), &keep, &mut each)?;
            size = 0;
        }
    }
    load_group(conn, group, &keep, &mut each)
}

/// [`details`], collected.
pub(super) fn details_vec<I, K>(conn: &Conn, campaigns: I, keep: K) -> Result<Vec<Detail>>
where
    I: IntoIterator<Item = Arc<Campaign>>,
    K: Fn(&Report) -> bool,
{
    let mut out = Vec::new();
    details(conn, campaigns, keep, |d| {
        out.push(d);
        Ok(())
    })?;
    Ok(out)
}

fn load_group<K, F>(conn: &Conn, group: Vec<Arc<Campaign>>, keep: &K, each: &mut F) -> Result<()>
where
    K: Fn(&Report) -> bool,
    F: FnMut(Detail) -> Result<()>,
{
    if group.is_empty() {
        return Ok(());
    }
    let seqs: Vec<Seq> = group
        .iter()
        .flat_map(|c| c.reports.iter().copied())
        .collect();
    let mut by_seq: HashMap<Seq, Report> = store::reports::get_many(conn, &seqs)?
        .into_iter()
        .filter(|r| keep(r))
        .map(|r| (r.seq(), r))
        .collect();
    let released = store::releases::released(conn, &seqs)?;
    let per_campaign = distribute(group.iter().map(|c| &c.reports), &seqs, &mut by_seq);
    for (campaign, reports) in group.into_iter().zip(per_campaign) {
        let released = reports
            .iter()
            .map(Report::seq)
            .filter(|s| released.contains(s))
            .collect();
        each(Detail {
            campaign,
            reports,
            released,
        })?;
    }
    Ok(())
}

/// Splits what was read for `all` (the concatenation of `lists`) back into one vector per
/// list, in each list's order, skipping what was not found. A value is moved out at its
/// last use and cloned before (a report sits in one campaign, so clones are rare).
fn distribute<'a, T: Clone, L: IntoIterator<Item = &'a Seq>>(
    lists: impl Iterator<Item = L>,
    all: &[Seq],
    found: &mut HashMap<Seq, T>,
) -> Vec<Vec<T>> {
    let mut uses: HashMap<Seq, usize> = HashMap::new();
    for s in all {
        *uses.entry(*s).or_default() += 1;
    }
    lists
        .map(|list| {
            list.into_iter()
                .filter_map(|s| {
                    let left = uses.get_mut(s)?;
                    *left -= 1;
                    if *left == 0 {
                        found.remove(s)
                    } else {
                        found.get(s).cloned()
                    }
                })
                .collect()
        })
        .collect()
}

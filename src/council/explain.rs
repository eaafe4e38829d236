//! Why a campaign is one group, and its early-stage picture, as one viewer may see them.
//!
//! The explanation names reports and the values that link them, suppressed values and the
//! near-links to other campaigns and feed items: it describes the whole campaign, hidden
//! parts included, so it is the secretariat's alone. A member's view could only be a
//! recomputation over the reports it may see, and even that would say *why* its reports are
//! grouped with others it cannot see (a link weight reaching the threshold through a hidden
//! report). Members therefore get no explanation at all; what they may learn of a campaign
//! stays what their campaign view already shows.
//!
//! The early-stage picture (organisations affected as a k-anonymous bucket, first and last
//! seen) is computed from the visible reports only, so it is shown to every viewer;
//! related earlier campaigns, found over hidden parts too, are the secretariat's.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::policy::Viewer;
use super::read::ids::{self, ShownCampaignId, ShownReportId};
use crate::correlate::explain::{LinkWhy, NearLink, SharedValue};
use crate::correlate::{Grouping, Related, ids::is_advisory_key};
pub use crate::correlate::{NotCounted, RelatedReason};
use crate::model::{CampaignEvent, CampaignId, Language, ObservableKind, ReportId};

/// Why a campaign holds together (secretariat only).
#[derive(Debug, Clone, Serialize)]
pub struct ExplainView {
    /// The weight two reports must share to be linked.
    pub threshold: u32,
    /// Links in all (the list holds the heaviest).
    pub links_total: usize,
    pub links: Vec<LinkView>,
    /// Values shared inside the campaign that did not count, or counted less.
    pub suppressed: Vec<SuppressedView>,
    /// Pairs sharing weight below the threshold.
    pub near: Vec<NearView>,
    /// Merges and splits, in words, oldest first.
    pub history: Vec<HistoryLine>,
}

/// One link: two reports and the values that carried it.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub a: ShownReportId,
    pub b: ShownReportId,
    pub weight: u32,
    pub shared: Vec<SharedView>,
}

/// A shared value with its weight now and before decay.
#[derive(Debug, Clone, Serialize)]
pub struct SharedView {
    pub kind: ObservableKind,
    pub value: String,
    pub weight: u32,
    pub full_weight: u32,
    /// Reports (all sources) carrying it.
    pub reports: usize,
    /// An address matched a network the other report carries.
    pub through_network: bool,
}

/// A value that did not count, with the reason in words.
#[derive(Debug, Clone, Serialize)]
pub struct SuppressedView {
    pub kind: ObservableKind,
    pub value: String,
    /// Reports of the campaign carrying it.
    pub in_campaign: usize,
    pub why: NotCounted,
    pub reason: String,
}

/// A link that almost was.
#[derive(Debug, Clone, Serialize)]
pub struct NearView {
    pub a: ShownReportId,
    pub b: ShownReportId,
    /// The other campaign, when `b` is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_campaign: Option<ShownCampaignId>,
    pub weight: u32,
    pub threshold: u32,
    pub shared: Vec<SharedView>,
    pub reason: String,
}

/// One correlation event in words.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    pub at: String,
    pub text: String,
}

/// The early-stage picture of an activity.
#[derive(Debug, Clone, Serialize)]
pub struct PictureView {
    /// Organisations (distinct providers of the visible member reports) as a k-anonymous
    /// bucket: `1`, `2-4`, `5-9`, `10+` (`0` when the viewer sees only feed items).
    pub organisations: &'static str,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Earlier campaigns sharing infrastructure or techniques below the threshold
    /// (secretariat only; empty for anyone else). Never merged automatically.
    pub related: Vec<RelatedView>,
}

/// A related earlier campaign.
#[derive(Debug, Clone, Serialize)]
pub struct RelatedView {
    pub id: ShownCampaignId,
    pub score: f64,
    pub reasons: Vec<RelatedReason>,
    /// The reasons in words.
    pub summary: String,
}

/// The bucket of a count of organisations.
pub fn organisations_bucket(n: usize) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2..=4 => "2-4",
        5..=9 => "5-9",
        _ => "10+",
    }
}

fn shared_view(s: &SharedValue) -> SharedView {
    SharedView {
        kind: s.value.kind(),
        value: s.value.value().to_string(),
        weight: s.weight,
        full_weight: s.full_weight,
        reports: s.reports,
        through_network: s.through_network,
    }
}

/// Why a value did not count, in words.
pub fn not_counted_words(why: &NotCounted, lang: Language) -> String {
    match (why, lang) {
        (NotCounted::Warninglist { name, .. }, Language::En) => {
            format!("on the warning list \u{201c}{name}\u{201d}: never links")
        }
        (NotCounted::Warninglist { name, .. }, Language::Ja) => {
            format!("警告リスト「{name}」に掲載: 関連付けに使わない")
        }
        (NotCounted::OverCorrelating { reports, cap }, Language::En) => {
            format!("in {reports} reports, above the over-correlation cap of {cap}: never links")
        }
        (NotCounted::OverCorrelating { reports, cap }, Language::Ja) => {
            format!("{reports}件の報告に出現し過相関上限{cap}件を超過: 関連付けに使わない")
        }
        (
            NotCounted::Decayed {
                reports,
                weight,
                full_weight,
                decay_after,
            },
            Language::En,
        ) => format!(
            "in {reports} reports (more than {decay_after}): weight decayed from {full_weight} to {weight}"
        ),
        (
            NotCounted::Decayed {
                reports,
                weight,
                full_weight,
                decay_after,
            },
            Language::Ja,
        ) => format!(
            "{reports}件の報告に出現（{decay_after}件超）: 重みが{full_weight}から{weight}に減衰"
        ),
        (NotCounted::KindWithoutWeight, Language::En) => {
            "this kind carries no weight (public context, shared by unrelated attacks)".into()
        }
        (NotCounted::KindWithoutWeight, Language::Ja) => {
            "この種別は重み0（公開情報の参照であり、無関係な攻撃にも共通）".into()
        }
    }
}

/// A related campaign's reasons in words.
pub fn related_words(reasons: &[RelatedReason], lang: Language) -> String {
    reasons
        .iter()
        .map(|r| match (r, lang) {
            (RelatedReason::SharedNetwork { network }, Language::En) => {
                format!("addresses in the same network {network}")
            }
            (RelatedReason::SharedNetwork { network }, Language::Ja) => {
                format!("同一ネットワーク {network} のアドレス")
            }
            (RelatedReason::Registrant { domain }, Language::En) => {
                format!("registrant addresses at {domain}")
            }
            (RelatedReason::Registrant { domain }, Language::Ja) => {
                format!("登録者アドレスのドメイン {domain} が共通")
            }
            (RelatedReason::MalwareFamily { name }, Language::En) => {
                format!("the same malware family {name}")
            }
            (RelatedReason::MalwareFamily { name }, Language::Ja) => {
                format!("同一マルウェアファミリー {name}")
            }
            (RelatedReason::Techniques { shared, similarity }, Language::En) => format!(
                "ATT&CK techniques in common ({}; similarity {similarity:.2})",
                shared.join(", ")
            ),
            (RelatedReason::Techniques { shared, similarity }, Language::Ja) => format!(
                "共通のATT&CK手法（{}、類似度 {similarity:.2}）",
                shared.join("、")
            ),
        })
        .collect::<Vec<_>>()
        .join(if lang == Language::Ja { "、" } else { "; " })
}

/// One correlation event of campaign `this` in words. An advisory's private key is never
/// shown: it is called "public advisory items".
pub fn event_words(event: &CampaignEvent, this: CampaignId, lang: Language) -> String {
    let name = |id: &CampaignId| {
        if is_advisory_key(*id) {
            match lang {
                Language::En => "public advisory items".to_string(),
                Language::Ja => "公開アドバイザリ".to_string(),
            }
        } else {
            id.to_string()
        }
    };
    let list = |ids: &[CampaignId]| ids.iter().map(name).collect::<Vec<_>>().join(", ");
    match (event, lang) {
        (CampaignEvent::Created { id }, Language::En) => format!("{} was created", name(id)),
        (CampaignEvent::Created { id }, Language::Ja) => format!("{}が作成された", name(id)),
        (CampaignEvent::Assigned { id, reports }, Language::En) => {
            format!("{} report(s) joined {}", reports.len(), name(id))
        }
        (CampaignEvent::Assigned { id, reports }, Language::Ja) => {
            format!("{}件の報告が{}に加わった", reports.len(), name(id))
        }
        (CampaignEvent::Merged { into, from }, Language::En) if *into == this => {
            format!("{} merged into this campaign", list(from))
        }
        (CampaignEvent::Merged { into, from }, Language::En) => {
            format!("{} merged into {}", list(from), name(into))
        }
        (CampaignEvent::Merged { into, from }, Language::Ja) => {
            format!("{}が{}に統合された", list(from), name(into))
        }
        (CampaignEvent::Split { from, into }, Language::En) if *from == this => {
            format!("part of this campaign split off as {}", name(into))
        }
        (CampaignEvent::Split { from, into }, Language::En) => {
            format!("{} split from {}", name(into), name(from))
        }
        (CampaignEvent::Split { from, into }, Language::Ja) => {
            format!("{}から{}が分割された", name(from), name(into))
        }
    }
}

impl Viewer {
    /// The explanation of campaign `id` (`why`, computed by the engine on request) for
    /// this viewer: the secretariat's only (`None` for anyone else, see the module
    /// documentation). `history` holds the recorded events.
    pub fn explain_view(
        &self,
        id: CampaignId,
        why: &Grouping,
        history: &[(String, CampaignEvent)],
        lang: Language,
    ) -> Option<ExplainView> {
        if !self.is_secretariat() {
            return None;
        }
        let report = |seq| ids::report(self, ReportId(seq));
        let link = |l: &LinkWhy| LinkView {
            a: report(l.a),
            b: report(l.b),
            weight: l.weight,
            shared: l.shared.iter().map(shared_view).collect(),
        };
        let near = |n: &NearLink| NearView {
            a: report(n.a),
            b: report(n.b),
            b_campaign: n.b_campaign.map(|c| ids::campaign(self, c)),
            weight: n.weight,
            threshold: n.threshold,
            shared: n.shared.iter().map(shared_view).collect(),
            reason: match lang {
                Language::En => format!(
                    "shared weight {} below the threshold {}",
                    n.weight, n.threshold
                ),
                Language::Ja => format!("共有する重み{}が閾値{}未満", n.weight, n.threshold),
            },
        };
        Some(ExplainView {
            threshold: why.threshold,
            links_total: why.links_total,
            links: why.links.iter().map(link).collect(),
            suppressed: why
                .suppressed
                .iter()
                .map(|s| SuppressedView {
                    kind: s.value.kind(),
                    value: s.value.value().to_string(),
                    in_campaign: s.in_campaign,
                    reason: not_counted_words(&s.why, lang),
                    why: s.why.clone(),
                })
                .collect(),
            near: why.near.iter().map(near).collect(),
            history: history
                .iter()
                .filter(|(_, e)| !matches!(e, CampaignEvent::Assigned { .. }))
                .map(|(at, e)| HistoryLine {
                    at: at.clone(),
                    text: event_words(e, id, lang),
                })
                .collect(),
        })
    }

    /// Related earlier campaigns as this viewer may see them: the secretariat's only.
    pub fn related_view(
        &self,
        related: &[Related],
        exists: impl Fn(CampaignId) -> bool,
        lang: Language,
    ) -> Vec<RelatedView> {
        if !self.is_secretariat() {
            return Vec::new();
        }
        related
            .iter()
            .filter(|r| exists(r.id))
            .map(|r| RelatedView {
                id: ids::campaign(self, r.id),
                score: r.score,
                summary: related_words(&r.reasons, lang),
                reasons: r.reasons.clone(),
            })
            .collect()
    }
}

//! The one access policy.
//!
//! Two questions, asked by every output: may this viewer see this report
//! ([`Viewer::may_see`], answered by [`decide`]), and how may the report's source be named
//! to this viewer ([`Viewer::source_label`])? Campaigns are shown only through the reports a
//! viewer may see ([`Viewer::campaign_view`], `council::views`).
//!
//! The decision needs only a report's [`ReportMeta`] (origin, TLP, scope, recipients,
//! release, confidence), so lists can be filtered without loading whole reports.

use serde::Serialize;

pub use crate::model::Scope;
use crate::model::{Member, MemberClass, MemberId, Origin, ReportMeta, Tlp};

impl ReportMeta {
    /// How far a viewer who may see the report may pass it on.
    pub fn onward(&self) -> Onward {
        Onward::of(self.scope, self.tlp)
    }
}

impl Onward {
    /// How far material of this scope and TLP may travel (a campaign's: its narrowest
    /// visible scope and TLP).
    pub fn of(scope: Option<Scope>, tlp: Tlp) -> Onward {
        match (scope, tlp) {
            (Some(Scope::ProviderAndSecretariat), _) => Onward::ProviderAndSecretariat,
            (_, Tlp::Red) => Onward::NamedRecipients,
            (_, Tlp::AmberStrict) => Onward::OwnOrganisation,
            (Some(Scope::CouncilMembers), _) => Onward::CouncilMembers,
            (Some(Scope::MembersAndSupported), _) | (None, Tlp::Amber) => {
                Onward::SupportedOrganisations
            }
            (None, Tlp::Green) => Onward::Community,
            (None, Tlp::Clear) => Onward::Public,
        }
    }
}

/// How far material may travel beyond the viewer (shown beside it as handling advice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Onward {
    /// TLP:CLEAR, no scope: anyone.
    Public,
    /// TLP:GREEN: the viewer's community, not public channels.
    Community,
    /// TLP:AMBER or the members-and-supported scope: the viewer's organisation and the
    /// organisations it supports.
    SupportedOrganisations,
    /// Council members only.
    CouncilMembers,
    /// TLP:AMBER+STRICT: the provider's own organisation.
    OwnOrganisation,
    /// TLP:RED: the named recipients only.
    NamedRecipients,
    /// The provider and the secretariat only.
    ProviderAndSecretariat,
}

/// Why a report is hidden (for tests and the audit log; never shown to the viewer, who
/// gets the same "not found" whether a report is hidden or absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hidden {
    /// Not public (only TLP:CLEAR without scope, released, reaches the public).
    NotPublic,
    /// The scope keeps it to the provider and the secretariat.
    Scope,
    /// TLP:RED and the viewer is not a named recipient.
    NotRecipient,
    /// TLP:AMBER+STRICT: the provider's organisation only.
    Strict,
    /// Class 2 and general members wait for the secretariat's release.
    NotReleased,
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Show,
    Hide(Hidden),
}

impl Decision {
    pub fn shown(self) -> bool {
        self == Decision::Show
    }
}

/// Who receives an output. Every output is computed for exactly one viewer, and this is
/// the only type that says who that is: a member of any class, an analyst of the
/// secretariat, the public, or an audience that is not one member (a webhook, a public
/// export, a members-wide list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// An authenticated member (class 1, class 2, general) or an analyst of the
    /// secretariat (class [`MemberClass::Secretariat`]).
    Member {
        member: MemberId,
        class: MemberClass,
    },
    /// An audience that is nobody in particular: it sees released material (feed items need
    /// no release) with no sharing scope, at or below `ceiling`. The public is the audience
    /// with ceiling TLP:CLEAR ([`Viewer::PUBLIC`]); a webhook's default is TLP:GREEN.
    Audience { ceiling: Tlp },
}

/// THE access decision. Every output asks this (through [`Viewer::may_see`] or
/// [`Viewer::decide`]) and nothing else.
///
/// - The secretariat and the provider see everything.
/// - Scope provider-and-secretariat: nobody else.
/// - TLP:RED: named recipients only (they see it at once: the provider chose them).
/// - TLP:AMBER+STRICT: the provider's organisation only.
/// - TLP:AMBER, GREEN, CLEAR: council members; class 1 at once, class 2 and general members
///   once the secretariat has released it (feed items need no release).
/// - An audience (the public, a webhook): released, no scope, at or below its ceiling, and
///   never above TLP:AMBER.
pub fn decide(viewer: &Viewer, meta: &ReportMeta) -> Decision {
    let released = meta.released || matches!(meta.origin, Origin::FeedItem { .. });
    let (member, class) = match viewer {
        Viewer::Audience { ceiling } => {
            return if meta.tlp <= *ceiling
                && meta.tlp <= Tlp::Amber
                && meta.scope.is_none()
                && released
            {
                Decision::Show
            } else {
                Decision::Hide(Hidden::NotPublic)
            };
        }
        Viewer::Member { member, class } => (member, *class),
    };
    if class == MemberClass::Secretariat || viewer.provided(&meta.origin) {
        return Decision::Show;
    }
    if meta.scope == Some(Scope::ProviderAndSecretariat) {
        return Decision::Hide(Hidden::Scope);
    }
    match meta.tlp {
        Tlp::Red if meta.recipients.contains(member) => Decision::Show,
        Tlp::Red => Decision::Hide(Hidden::NotRecipient),
        Tlp::AmberStrict => Decision::Hide(Hidden::Strict),
        Tlp::Amber | Tlp::Green | Tlp::Clear => {
            if released || class == MemberClass::Class1 {
                Decision::Show
            } else {
                Decision::Hide(Hidden::NotReleased)
            }
        }
    }
}

/// Whether the public may see the report.
pub fn public_may_see(meta: &ReportMeta) -> bool {
    decide(&Viewer::PUBLIC, meta).shown()
}

impl Viewer {
    /// The public: released TLP:CLEAR material without scope.
    pub const PUBLIC: Viewer = Viewer::Audience {
        ceiling: Tlp::Clear,
    };

    pub fn of(member: &Member) -> Viewer {
        Viewer::member(member.id.clone(), member.class)
    }

    pub fn member(member: MemberId, class: MemberClass) -> Viewer {
        Viewer::Member { member, class }
    }

    /// The member behind this viewer, if it is one.
    pub fn member_id(&self) -> Option<&MemberId> {
        match self {
            Viewer::Member { member, .. } => Some(member),
            Viewer::Audience { .. } => None,
        }
    }

    /// The member's class, if the viewer is a member.
    pub fn class(&self) -> Option<MemberClass> {
        match self {
            Viewer::Member { class, .. } => Some(*class),
            Viewer::Audience { .. } => None,
        }
    }

    pub fn is_secretariat(&self) -> bool {
        self.class() == Some(MemberClass::Secretariat)
    }

    /// The analyst's id when the viewer is the secretariat: who secretariat-only reads and
    /// acts are audited as.
    pub fn analyst(&self) -> Option<String> {
        self.is_secretariat()
            .then(|| self.member_id().map(|m| m.0.clone()))
            .flatten()
    }

    /// Whether this viewer provided the report.
    pub fn provided(&self, origin: &Origin) -> bool {
        matches!((origin, self.member_id()), (Origin::Submission { member }, Some(me)) if member == me)
    }

    /// The policy's decision for this viewer ([`decide`]).
    pub fn decide(&self, meta: &ReportMeta) -> Decision {
        decide(self, meta)
    }

    /// Whether the viewer may see the report at all ([`decide`]).
    pub fn may_see(&self, meta: &ReportMeta) -> bool {
        self.decide(meta).shown()
    }

    /// How the report's source is shown to this viewer. Outside the secretariat a member's
    /// report is never attributed — not even to its provider, so that a page shared or
    /// forwarded by the provider does not name them either.
    pub fn source_label(&self, origin: &Origin) -> SourceLabel {
        match origin {
            Origin::FeedItem { feed } => SourceLabel::Feed { feed: feed.clone() },
            Origin::Submission { member } if self.is_secretariat() => SourceLabel::Member {
                member: member.clone(),
            },
            Origin::Submission { .. } => SourceLabel::CouncilMember,
        }
    }
}

/// A source as an output may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceLabel {
    /// A public feed (public information, named freely).
    Feed { feed: String },
    /// A council member, unnamed.
    CouncilMember,
    /// The providing member: for the secretariat only.
    Member { member: MemberId },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Confidence, Report, ReportId, Seq};

    const PROVIDER: &str = "m121";
    const RECIPIENT: &str = "m050";

    fn viewer(id: &str, class: MemberClass) -> Viewer {
        Viewer::member(MemberId(id.into()), class)
    }

    fn meta(tlp: Tlp, scope: Option<Scope>, released: bool) -> ReportMeta {
        ReportMeta {
            id: ReportId(Seq(1)),
            received_at: chrono::Utc::now(),
            title: "t".into(),
            origin: Origin::Submission {
                member: MemberId(PROVIDER.into()),
            },
            tlp,
            scope,
            recipients: vec![MemberId(RECIPIENT.into())],
            released,
            confidence: Confidence::Unconfirmed,
        }
    }

    /// Every TLP × scope × release state × viewer, with the exact decision written out.
    /// Columns: public, provider (a general member), class 1, class 2, general, the named
    /// RED recipient (a general member), secretariat. `Y` = shown, otherwise the reason:
    /// `p` not public, `s` scope, `r` not a recipient, `x` strict, `w` waits for release.
    #[rustfmt::skip]
    const MATRIX: &[(Tlp, Option<Scope>, bool, &str)] = &[
        // tlp             scope                                released  pub prov c1 c2 gen rcpt sec
        (Tlp::Clear,       None,                                 false, "p Y Y w w w Y"),
        (Tlp::Clear,       None,                                 true,  "Y Y Y Y Y Y Y"),
        (Tlp::Clear,       Some(Scope::MembersAndSupported),     false, "p Y Y w w w Y"),
        (Tlp::Clear,       Some(Scope::MembersAndSupported),     true,  "p Y Y Y Y Y Y"),
        (Tlp::Clear,       Some(Scope::CouncilMembers),          false, "p Y Y w w w Y"),
        (Tlp::Clear,       Some(Scope::CouncilMembers),          true,  "p Y Y Y Y Y Y"),
        (Tlp::Clear,       Some(Scope::ProviderAndSecretariat),  false, "p Y s s s s Y"),
        (Tlp::Clear,       Some(Scope::ProviderAndSecretariat),  true,  "p Y s s s s Y"),
        (Tlp::Green,       None,                                 false, "p Y Y w w w Y"),
        (Tlp::Green,       None,                                 true,  "p Y Y Y Y Y Y"),
        (Tlp::Green,       Some(Scope::MembersAndSupported),     false, "p Y Y w w w Y"),
        (Tlp::Green,       Some(Scope::MembersAndSupported),     true,  "p Y Y Y Y Y Y"),
        (Tlp::Green,       Some(Scope::CouncilMembers),          false, "p Y Y w w w Y"),
        (Tlp::Green,       Some(Scope::CouncilMembers),          true,  "p Y Y Y Y Y Y"),
        (Tlp::Green,       Some(Scope::ProviderAndSecretariat),  false, "p Y s s s s Y"),
        (Tlp::Green,       Some(Scope::ProviderAndSecretariat),  true,  "p Y s s s s Y"),
        (Tlp::Amber,       None,                                 false, "p Y Y w w w Y"),
        (Tlp::Amber,       None,                                 true,  "p Y Y Y Y Y Y"),
        (Tlp::Amber,       Some(Scope::MembersAndSupported),     false, "p Y Y w w w Y"),
        (Tlp::Amber,       Some(Scope::MembersAndSupported),     true,  "p Y Y Y Y Y Y"),
        (Tlp::Amber,       Some(Scope::CouncilMembers),          false, "p Y Y w w w Y"),
        (Tlp::Amber,       Some(Scope::CouncilMembers),          true,  "p Y Y Y Y Y Y"),
        (Tlp::Amber,       Some(Scope::ProviderAndSecretariat),  false, "p Y s s s s Y"),
        (Tlp::Amber,       Some(Scope::ProviderAndSecretariat),  true,  "p Y s s s s Y"),
        (Tlp::AmberStrict, None,                                 false, "p Y x x x x Y"),
        (Tlp::AmberStrict, None,                                 true,  "p Y x x x x Y"),
        (Tlp::AmberStrict, Some(Scope::MembersAndSupported),     false, "p Y x x x x Y"),
        (Tlp::AmberStrict, Some(Scope::MembersAndSupported),     true,  "p Y x x x x Y"),
        (Tlp::AmberStrict, Some(Scope::CouncilMembers),          false, "p Y x x x x Y"),
        (Tlp::AmberStrict, Some(Scope::CouncilMembers),          true,  "p Y x x x x Y"),
        (Tlp::AmberStrict, Some(Scope::ProviderAndSecretariat),  false, "p Y s s s s Y"),
        (Tlp::AmberStrict, Some(Scope::ProviderAndSecretariat),  true,  "p Y s s s s Y"),
        (Tlp::Red,         None,                                 false, "p Y r r r Y Y"),
        (Tlp::Red,         None,                                 true,  "p Y r r r Y Y"),
        (Tlp::Red,         Some(Scope::MembersAndSupported),     false, "p Y r r r Y Y"),
        (Tlp::Red,         Some(Scope::MembersAndSupported),     true,  "p Y r r r Y Y"),
        (Tlp::Red,         Some(Scope::CouncilMembers),          false, "p Y r r r Y Y"),
        (Tlp::Red,         Some(Scope::CouncilMembers),          true,  "p Y r r r Y Y"),
        (Tlp::Red,         Some(Scope::ProviderAndSecretariat),  false, "p Y s s s s Y"),
        (Tlp::Red,         Some(Scope::ProviderAndSecretariat),  true,  "p Y s s s s Y"),
    ];

    fn code(d: Decision) -> &'static str {
        match d {
            Decision::Show => "Y",
            Decision::Hide(Hidden::NotPublic) => "p",
            Decision::Hide(Hidden::Scope) => "s",
            Decision::Hide(Hidden::NotRecipient) => "r",
            Decision::Hide(Hidden::Strict) => "x",
            Decision::Hide(Hidden::NotReleased) => "w",
        }
    }

    #[test]
    fn tlp_scope_class_matrix() {
        assert_eq!(MATRIX.len(), Tlp::ALL.len() * (Scope::ALL.len() + 1) * 2);
        let viewers = [
            viewer(PROVIDER, MemberClass::General),
            viewer("m200", MemberClass::Class1),
            viewer("m030", MemberClass::Class2),
            viewer("m080", MemberClass::General),
            viewer(RECIPIENT, MemberClass::General),
            viewer("sec", MemberClass::Secretariat),
        ];
        for &(tlp, scope, released, expected) in MATRIX {
            let m = meta(tlp, scope, released);
            let mut got = vec![code(decide(&Viewer::PUBLIC, &m))];
            got.extend(viewers.iter().map(|v| code(v.decide(&m))));
            assert_eq!(
                got.join(" "),
                expected,
                "{tlp} {scope:?} released={released}"
            );
            // may_see agrees with decide everywhere.
            for v in &viewers {
                assert_eq!(v.may_see(&m), v.decide(&m) == Decision::Show);
            }
        }
    }

    /// The audiences, row for row with [`MATRIX`]: the public ([`Viewer::PUBLIC`]), a webhook
    /// (`Viewer::Audience { ceiling: Tlp::Green }`, the webhook default) and a members-wide
    /// audience (ceiling TLP:AMBER). `Y` = shown, `p` = not for this audience. An audience is
    /// nobody in particular: only released material without sharing scope reaches it.
    #[rustfmt::skip]
    const AUDIENCES: &[(Tlp, Option<Scope>, bool, &str)] = &[
        // tlp             scope                                released  pub hook amber
        (Tlp::Clear,       None,                                 false, "p p p"),
        (Tlp::Clear,       None,                                 true,  "Y Y Y"),
        (Tlp::Clear,       Some(Scope::MembersAndSupported),     false, "p p p"),
        (Tlp::Clear,       Some(Scope::MembersAndSupported),     true,  "p p p"),
        (Tlp::Clear,       Some(Scope::CouncilMembers),          false, "p p p"),
        (Tlp::Clear,       Some(Scope::CouncilMembers),          true,  "p p p"),
        (Tlp::Clear,       Some(Scope::ProviderAndSecretariat),  false, "p p p"),
        (Tlp::Clear,       Some(Scope::ProviderAndSecretariat),  true,  "p p p"),
        (Tlp::Green,       None,                                 false, "p p p"),
        (Tlp::Green,       None,                                 true,  "p Y Y"),
        (Tlp::Green,       Some(Scope::MembersAndSupported),     false, "p p p"),
        (Tlp::Green,       Some(Scope::MembersAndSupported),     true,  "p p p"),
        (Tlp::Green,       Some(Scope::CouncilMembers),          false, "p p p"),
        (Tlp::Green,       Some(Scope::CouncilMembers),          true,  "p p p"),
        (Tlp::Green,       Some(Scope::ProviderAndSecretariat),  false, "p p p"),
        (Tlp::Green,       Some(Scope::ProviderAndSecretariat),  true,  "p p p"),
        (Tlp::Amber,       None,                                 false, "p p p"),
        (Tlp::Amber,       None,                                 true,  "p p Y"),
        (Tlp::Amber,       Some(Scope::MembersAndSupported),     false, "p p p"),
        (Tlp::Amber,       Some(Scope::MembersAndSupported),     true,  "p p p"),
        (Tlp::Amber,       Some(Scope::CouncilMembers),          false, "p p p"),
        (Tlp::Amber,       Some(Scope::CouncilMembers),          true,  "p p p"),
        (Tlp::Amber,       Some(Scope::ProviderAndSecretariat),  false, "p p p"),
        (Tlp::Amber,       Some(Scope::ProviderAndSecretariat),  true,  "p p p"),
        (Tlp::AmberStrict, None,                                 false, "p p p"),
        (Tlp::AmberStrict, None,                                 true,  "p p p"),
        (Tlp::AmberStrict, Some(Scope::MembersAndSupported),     false, "p p p"),
        (Tlp::AmberStrict, Some(Scope::MembersAndSupported),     true,  "p p p"),
        (Tlp::AmberStrict, Some(Scope::CouncilMembers),          false, "p p p"),
        (Tlp::AmberStrict, Some(Scope::CouncilMembers),          true,  "p p p"),
        (Tlp::AmberStrict, Some(Scope::ProviderAndSecretariat),  false, "p p p"),
        (Tlp::AmberStrict, Some(Scope::ProviderAndSecretariat),  true,  "p p p"),
        (Tlp::Red,         None,                                 false, "p p p"),
        (Tlp::Red,         None,                                 true,  "p p p"),
        (Tlp::Red,         Some(Scope::MembersAndSupported),     false, "p p p"),
        (Tlp::Red,         Some(Scope::MembersAndSupported),     true,  "p p p"),
        (Tlp::Red,         Some(Scope::CouncilMembers),          false, "p p p"),
        (Tlp::Red,         Some(Scope::CouncilMembers),          true,  "p p p"),
        (Tlp::Red,         Some(Scope::ProviderAndSecretariat),  false, "p p p"),
        (Tlp::Red,         Some(Scope::ProviderAndSecretariat),  true,  "p p p"),
    ];

    /// The audiences of [`AUDIENCES`], in column order.
    fn audiences() -> [Viewer; 3] {
        [
            Viewer::PUBLIC,
            Viewer::Audience {
                ceiling: Tlp::Green,
            },
            Viewer::Audience {
                ceiling: Tlp::Amber,
            },
        ]
    }

    #[test]
    fn tlp_scope_audience_matrix() {
        assert_eq!(AUDIENCES.len(), MATRIX.len());
        for (&(tlp, scope, released, expected), &(t2, s2, r2, _)) in AUDIENCES.iter().zip(MATRIX) {
            assert_eq!((tlp, scope, released), (t2, s2, r2), "rows in MATRIX order");
            let m = meta(tlp, scope, released);
            let got: Vec<&str> = audiences().iter().map(|a| code(a.decide(&m))).collect();
            assert_eq!(
                got.join(" "),
                expected,
                "{tlp} {scope:?} released={released}"
            );
            // An audience is nobody: it never provided a report nor is it a recipient.
            for a in audiences() {
                assert_eq!(a.member_id(), None);
                assert_eq!(a.source_label(&m.origin), SourceLabel::CouncilMember);
            }
        }
        // Feed items need no release, but the ceiling holds for them too.
        let mut feed = meta(Tlp::Green, None, false);
        feed.origin = Origin::FeedItem { feed: "kev".into() };
        let got: Vec<&str> = audiences().iter().map(|a| code(a.decide(&feed))).collect();
        assert_eq!(got.join(" "), "p Y Y");
    }

    /// Campaign views, row for row with [`MATRIX`] and [`AUDIENCES`]: a campaign of the row's
    /// report (provider m121) and a released TLP:CLEAR report without scope of another member
    /// (m079), seen by every viewer of both tables. The campaign shows exactly the reports the
    /// tables allow: its count, TLP, confidence and times come from those alone; it is absent
    /// (not empty) for a viewer who may see none of its reports; flags, which describe the
    /// whole campaign, are withheld from anyone who may not see all of it.
    #[test]
    fn tlp_scope_campaign_matrix() {
        use crate::correlate::Campaign;
        use crate::correlate::flags::{Evidence, Flag, FlagKind};
        use crate::model::CampaignId;

        let members = [
            viewer(PROVIDER, MemberClass::General),
            viewer("m200", MemberClass::Class1),
            viewer("m030", MemberClass::Class2),
            viewer("m080", MemberClass::General),
            viewer(RECIPIENT, MemberClass::General),
            viewer("sec", MemberClass::Secretariat),
        ];
        let t0 = chrono::Utc::now();
        for (&(tlp, scope, released, expected), &(.., audience_expected)) in
            MATRIX.iter().zip(AUDIENCES)
        {
            // Row report: the campaign's later report, so that it alone would move last_seen.
            let mut row = meta(tlp, scope, released);
            row.id = ReportId(Seq(2));
            row.received_at = t0 + chrono::Duration::hours(1);
            row.confidence = Confidence::Confirmed;
            let mut other = meta(Tlp::Clear, None, true);
            other.id = ReportId(Seq(1));
            other.received_at = t0;
            other.origin = Origin::Submission {
                member: MemberId("m079".into()),
            };
            let campaign = |reports: Vec<Seq>| Campaign {
                id: CampaignId {
                    year: 2026,
                    number: 42,
                },
                reports: reports.into(),
                first_seen: t0,
                last_seen: row.received_at,
                linking: vec![],
                sectors: Default::default(),
                flags: vec![Flag {
                    kind: FlagKind::CrossSector,
                    evidence: Evidence::default(),
                    suggested: None,
                }],
            };
            let pair = campaign(vec![Seq(1), Seq(2)]);
            let alone = campaign(vec![Seq(2)]);
            let codes: Vec<&str> = expected
                .split(' ')
                .chain(audience_expected.split(' '))
                .collect();
            // Columns: public (MATRIX), provider, c1, c2, general, recipient, secretariat, then
            // public, webhook, amber audience (AUDIENCES).
            let mut viewers = vec![Viewer::PUBLIC];
            viewers.extend(members.iter().cloned());
            viewers.extend(audiences());
            assert_eq!(viewers.len(), codes.len());
            for (v, code) in viewers.iter().zip(codes) {
                let shown = code == "Y";
                let ctx = format!("{tlp} {scope:?} released={released} viewer={v:?}");
                let view = v
                    .campaign_view(&pair, &[other.clone(), row.clone()])
                    .unwrap_or_else(|| panic!("{ctx}: the CLEAR report is visible to all"));
                assert_eq!(view.report_count, 1 + usize::from(shown), "{ctx}");
                assert_eq!(view.reports.len(), view.report_count, "{ctx}");
                assert_eq!(view.tlp, if shown { tlp } else { Tlp::Clear }, "{ctx}");
                assert_eq!(view.unconfirmed, !shown, "{ctx}");
                assert_eq!(view.first_seen, t0, "{ctx}");
                assert_eq!(
                    view.last_seen,
                    if shown { row.received_at } else { t0 },
                    "{ctx}: hidden activity must not move last_seen"
                );
                if !shown {
                    assert!(
                        view.flags.is_empty(),
                        "{ctx}: flags of a partly hidden campaign"
                    );
                    assert!(
                        view.reports.iter().all(|r| r.id.internal() == other.id),
                        "{ctx}: a hidden report is listed"
                    );
                }
                assert_eq!(
                    v.campaign_view(&alone, std::slice::from_ref(&row))
                        .is_some(),
                    shown,
                    "{ctx}: a campaign of only hidden reports is absent"
                );
            }
        }
    }

    #[test]
    fn feed_items_need_no_release_and_unknown_release_waits() {
        let mut m = meta(Tlp::Clear, None, false);
        m.origin = Origin::FeedItem { feed: "kev".into() };
        assert_eq!(decide(&Viewer::PUBLIC, &m), Decision::Show);
        assert!(viewer("m080", MemberClass::General).may_see(&m));
        let report = Report {
            id: ReportId(Seq(1)),
            origin: Origin::Submission {
                member: MemberId(PROVIDER.into()),
            },
            received_at: chrono::Utc::now(),
            draft: crate::model::ReportDraft::new("x", Tlp::Green),
        };
        assert!(!viewer("m080", MemberClass::General).may_see(&report.meta()));
        assert!(viewer("m200", MemberClass::Class1).may_see(&report.meta()));
        assert!(viewer("m080", MemberClass::General).may_see(&report.meta_released(true)));
    }

    #[test]
    fn onward_handling() {
        let on = |tlp, scope| meta(tlp, scope, true).onward();
        assert_eq!(on(Tlp::Clear, None), Onward::Public);
        assert_eq!(on(Tlp::Green, None), Onward::Community);
        assert_eq!(on(Tlp::Amber, None), Onward::SupportedOrganisations);
        assert_eq!(
            on(Tlp::Clear, Some(Scope::CouncilMembers)),
            Onward::CouncilMembers
        );
        assert_eq!(
            on(Tlp::Green, Some(Scope::MembersAndSupported)),
            Onward::SupportedOrganisations
        );
        assert_eq!(
            on(Tlp::AmberStrict, Some(Scope::CouncilMembers)),
            Onward::OwnOrganisation
        );
        assert_eq!(on(Tlp::Red, None), Onward::NamedRecipients);
        assert_eq!(
            on(Tlp::Red, Some(Scope::ProviderAndSecretariat)),
            Onward::ProviderAndSecretariat
        );
        assert_eq!(
            Scope::narrowest(
                Some(Scope::MembersAndSupported),
                Some(Scope::CouncilMembers)
            ),
            Some(Scope::CouncilMembers)
        );
        assert_eq!(
            Scope::narrowest(None, Some(Scope::MembersAndSupported)),
            Some(Scope::MembersAndSupported)
        );
    }
}

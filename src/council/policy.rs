//! The one access policy.
//!
//! Two questions, asked by every output: may this viewer see this report
//! ([`Viewer::may_see`]), and how may the report's source be named to this viewer
//! ([`Viewer::source_label`])? Campaigns are shown only through the reports a viewer may see.

use serde::Serialize;

use crate::model::{Member, MemberClass, MemberId, Origin, ReportMeta, Tlp};

/// Who is looking: the authenticated member behind a request, a digest recipient, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub member: MemberId,
    pub class: MemberClass,
}

impl Viewer {
    pub fn of(member: &Member) -> Viewer {
        Viewer {
            member: member.id.clone(),
            class: member.class,
        }
    }

    pub fn is_secretariat(&self) -> bool {
        self.class == MemberClass::Secretariat
    }

    /// Whether this viewer provided the report.
    pub fn provided(&self, origin: &Origin) -> bool {
        matches!(origin, Origin::Submission { member } if *member == self.member)
    }

    /// Whether the viewer may see the report at all.
    ///
    /// TLP 2.0: RED and AMBER+STRICT reach only the provider's organisation and the
    /// secretariat (named RED recipients are not modelled yet); AMBER, GREEN and CLEAR reach
    /// all council members.
    pub fn may_see(&self, report: &ReportMeta) -> bool {
        if self.is_secretariat() || self.provided(&report.origin) {
            return true;
        }
        match report.tlp {
            Tlp::Red | Tlp::AmberStrict => false,
            Tlp::Amber | Tlp::Green | Tlp::Clear => true,
        }
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

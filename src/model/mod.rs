//! The domain model: observables, reports, sightings, campaigns, flag kinds, members, TLP,
//! and the languages musubi writes in.
//!
//! Plain data and its validation; no I/O. Every other module speaks these types.

pub mod campaign;
pub mod flag;
pub mod language;
pub mod member;
pub mod observable;
pub mod redact;
pub mod report;
pub mod role;
pub mod scope;
pub mod sighting;
pub mod tlp;

pub use campaign::{CampaignEvent, CampaignId, Disposition};
pub use flag::{DigestList, FlagKind};
pub use language::Language;
pub use member::{Category, Member, MemberClass, MemberId, Sector};
pub use observable::{Observable, ObservableError, ObservableKind, ObservableRef};
pub use report::{
    Confidence, Indicator, Origin, Provenance, Report, ReportDraft, ReportId, ReportMeta, Seq,
};
pub use role::Role;
pub use scope::Scope;
pub use sighting::{SightingDraft, SightingKind, SightingTarget};
pub use tlp::Tlp;

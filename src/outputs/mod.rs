//! Outputs: what leaves musubi for members' own tools — STIX 2.1 bundles, a MISP feed, CSV,
//! and the TAXII 2.1 collections the daemon serves.
//!
//! Every output is built from [`CampaignExport`]s that the one read path computes for one
//! viewer ([`crate::council::ReadPath::exports`]): a member, [`MEMBERS`] or
//! [`Viewer::PUBLIC`]. Nothing here reads the store or decides visibility, so that TLP,
//! sharing scope, release and source anonymity hold at the edge whatever format is
//! written; every format carries the TLP *and* the scope of what it holds.

pub mod csv;
pub mod mail;
pub mod misp_feed;
pub mod stix;
pub mod taxii;

use crate::council::Viewer;
pub use crate::council::read::CampaignExport;
use crate::model::Tlp;

/// The audience "every council member": released material without sharing scope, up to
/// TLP:AMBER — what any member may receive, so that a file or collection written for all
/// members never carries what only some of them may see. An audience, not a member: the
/// policy ([`crate::council::policy::decide`]) decides for it like for anyone else.
pub const MEMBERS: Viewer = Viewer::Audience {
    ceiling: Tlp::Amber,
};

/// The fixed namespace of musubi's deterministic ids (UUIDv5): the same campaign,
/// indicator or event keeps its id across exports, so that re-imports update rather than
/// duplicate.
pub const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("76f15b74-4520-4f38-b5e0-77aba158742a");

/// A deterministic UUID for a stable key.
pub fn stable_uuid(key: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&ID_NAMESPACE, key.as_bytes())
}

/// The council as the author of everything it shares: exports name the council, never
/// the member that provided a report.
pub const COUNCIL_NAME: &str = "Cyber-threat information-sharing council (musubi)";

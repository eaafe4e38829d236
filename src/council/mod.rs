//! Council policy: who may see what, and how a provider stays anonymous; the analysts'
//! review, feedback and statistics.
//!
//! Every output — API response, console page, digest, alert, export — receives views for
//! one viewer from [`read`], the one read path, which asks [`policy`] about every report
//! before it counts, orders or shows anything. Outputs cannot reach the store around it.
//!
//! - [`roster`]: the council's roster format and the default class rule.
//! - [`read`]: the one read path: views for one viewer.
//! - [`acts`]: what a viewer does about what it sees (sightings, feedback, pins), each
//!   checked against its visibility in the transaction that writes it.
//! - [`policy`]: the one access decision (TLP 2.0, sharing scope, tiered release).
//! - [`anonymity`]: sector labels that cannot name a provider; the leak scanner for tests.
//! - [`views`]: report and campaign views computed from the visible parts only.
//! - [`review`]: the review queue, dispositions with history, merge/split pins.
//! - [`feedback`]: analysts' requests for sightings and members' answers.
//! - [`audit`]: the log of decisions and secretariat-only reads.
//! - [`stats`]: the council's campaign statistics (活用件数), in Japanese and English.

pub mod acts;
pub mod anonymity;
pub mod audit;
pub mod commands;
pub mod explain;
pub mod feedback;
pub mod inquiry;
pub mod ledger;
pub mod policy;
pub mod read;
pub mod review;
pub mod roster;
pub mod stats;
pub mod views;

pub use acts::Acts;
pub use policy::{Decision, Scope, SourceLabel, Viewer};
pub use read::ReadPath;

/// What outputs hold of the store: the handle for typed writes (`store::Op`s built by
/// [`commands`] and `sources`), the mail bookkeeping, the console's sessions, and the
/// store's error type. Its readers are engine-only, so holding these reads nothing;
/// outputs name them here so that `outputs` and `http` depend on the council alone.
pub use crate::store::mail::{MailBook, SentUntil, WindowBounds};
pub use crate::store::sessions::{FailureBook, SessionBook, SessionLimits, StoredSession};
pub use crate::store::{Store, StoreError, StoreWriter};
pub use views::{CampaignView, FlagEvidence, FlagView, ObservableRef, ReportSummary, ReportView};

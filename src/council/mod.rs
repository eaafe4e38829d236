//! Council policy: who may see what, and how a provider stays anonymous.
//!
//! Every output — API response, console page, digest, alert, export — asks [`policy`]
//! before it shows a report, a campaign or a source. No output path may bypass it.

pub mod policy;
pub mod views;

pub use policy::{SourceLabel, Viewer};
pub use views::{CampaignView, ReportSummary, ReportView};

//! Input formats: each turns bytes into [`crate::model::ReportDraft`]s.

pub mod native;
pub mod stix_min;

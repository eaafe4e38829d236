//! HTTP submissions: turning a request body into report drafts, by its media type.

use crate::formats::native::{self, FieldError};
use crate::model::ReportDraft;

/// Why a body could not become drafts.
#[derive(Debug)]
pub enum SubmissionError {
    /// The media type is not one musubi takes.
    UnsupportedMediaType(String),
    /// The body was read but is invalid; every problem is listed.
    Invalid(Vec<FieldError>),
}

/// The media types accepted on `POST /api/v1/reports`.
pub const ACCEPTED: &str =
    "application/json (musubi submission) or application/stix+json (STIX 2.1 bundle)";

/// Decodes a submission body of the given `Content-Type`.
pub fn drafts_from(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<ReportDraft>, SubmissionError> {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" => native::parse_bytes(body).map_err(SubmissionError::Invalid),
        "application/stix+json" => {
            let ctx = crate::formats::ParseContext::with_tlp(crate::model::Tlp::Amber);
            match crate::formats::parse(&crate::formats::Format::Stix21, body, &ctx) {
                Ok(parsed) if !parsed.reports.is_empty() => Ok(parsed.reports),
                Ok(_) => Err(SubmissionError::Invalid(vec![FieldError {
                    report: None,
                    index: None,
                    field: "(bundle)".into(),
                    reason: "the bundle holds no report, indicator or observable musubi can store"
                        .into(),
                }])),
                Err(e) => Err(SubmissionError::Invalid(vec![FieldError {
                    report: None,
                    index: None,
                    field: "(bundle)".into(),
                    reason: e.to_string(),
                }])),
            }
        }
        other => Err(SubmissionError::UnsupportedMediaType(other.to_string())),
    }
}

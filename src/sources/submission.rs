//! HTTP submissions: turning a request body into report drafts, by its media type.

use crate::formats::native::{self, FieldError};
use crate::formats::{ItemOutcome, Outcome, stix21};
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

/// A decoded submission: its drafts, and what became of each item of the body (each
/// submission of a native body; each object of a STIX bundle), for the answer.
#[derive(Debug, Default)]
pub struct Decoded {
    pub drafts: Vec<ReportDraft>,
    pub items: Vec<ItemOutcome>,
}

/// Decodes a submission body of the given `Content-Type`.
pub fn drafts_from(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<ReportDraft>, SubmissionError> {
    decode(content_type, body).map(|d| d.drafts)
}

/// [`drafts_from`] with the per-item outcomes.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Decoded, SubmissionError> {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" => {
            let drafts = native::parse_bytes(body).map_err(SubmissionError::Invalid)?;
            // A native body is rejected whole when any submission is invalid: what is
            // stored is every submission, as sent.
            let single = body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[');
            let items = (0..drafts.len())
                .map(|i| ItemOutcome {
                    at: if single {
                        "submission".to_string()
                    } else {
                        format!("[{i}]")
                    },
                    outcome: Outcome::Kept,
                })
                .collect();
            Ok(Decoded { drafts, items })
        }
        "application/stix+json" => {
            // Rejected whole, like a native submission: every invalid object is named, and
            // nothing is stored while one is (the feed parser would keep a bad pattern as
            // text, which a member would take for a correlated indicator).
            let problems = stix21::problems(body).map_err(|e| {
                SubmissionError::Invalid(vec![FieldError {
                    report: None,
                    index: None,
                    field: "(bundle)".into(),
                    reason: e.to_string(),
                }])
            })?;
            if !problems.is_empty() {
                return Err(SubmissionError::Invalid(
                    problems
                        .into_iter()
                        .map(|p| FieldError {
                            report: None,
                            index: None,
                            field: p.id,
                            reason: p.reason,
                        })
                        .collect(),
                ));
            }
            let ctx = crate::formats::ParseContext::with_tlp(crate::model::Tlp::Amber);
            match crate::formats::parse(&crate::formats::Format::Stix21, body, &ctx) {
                Ok(parsed) if !parsed.reports.is_empty() => Ok(Decoded {
                    drafts: parsed.reports,
                    items: parsed.items,
                }),
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

/// Stores a member's submission (all its drafts) in one durable transaction, as the API
/// and TAXII take them; answers the new reports' ids in order once the write is durable.
/// The one typed write for submissions: handlers do not hold store connections.
pub async fn store(
    store: &crate::store::Store,
    member: &crate::model::MemberId,
    drafts: Vec<ReportDraft>,
    received_at: chrono::DateTime<chrono::Utc>,
) -> crate::store::Result<Vec<crate::model::ReportId>> {
    let origin = crate::model::Origin::Submission {
        member: member.clone(),
    };
    store
        .writer()
        .write(move |conn| {
            drafts
                .iter()
                .map(|d| {
                    crate::store::reports::insert(conn, &origin, d, received_at).map(|i| i.id())
                })
                .collect()
        })
        .await
}

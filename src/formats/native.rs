//! musubi's own submission format (JSON), the one members write by hand or script.
//!
//! ```json
//! { "title": "Phishing wave against airports", "description": "...", "tlp": "amber",
//!   "confidence": "unconfirmed", "observed_at": "2026-11-20T09:00:00Z",
//!   "indicators": [{"type": "domain", "value": "evil.example", "comment": "sender"}],
//!   "tags": ["phishing"] }
//! ```
//!
//! A document holds one submission or an array of them. Validation collects every problem
//! before answering, so a member fixes a submission in one round; a submission with any
//! problem is rejected whole.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::model::{Confidence, Observable, ReportDraft, Tlp};

/// The most indicators one submission may carry.
pub const MAX_INDICATORS: usize = 100_000;
const MAX_TITLE: usize = 1_000;
const MAX_DESCRIPTION: usize = 100_000;
const MAX_TAGS: usize = 200;

/// One problem in a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The submission's position in an array (absent for a single submission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<usize>,
    /// The indicator's position, for problems with an indicator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The JSON path of the bad field, e.g. `indicators[3].value`.
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Parses a JSON document of one submission or an array of submissions.
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<ReportDraft>, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![FieldError {
            report: None,
            index: None,
            field: format!("(document, line {} column {})", e.line(), e.column()),
            reason: format!("malformed JSON: {e}"),
        }]
    })?;
    parse_value(&value)
}

/// The submissions of one document, each valid one kept: for a file import, where one bad
/// submission must not cost the good ones (each submission is still all-or-nothing).
#[derive(Debug, Default)]
pub struct Submissions {
    /// The valid submissions, with their position in the array (`None` for a single one).
    pub drafts: Vec<(Option<usize>, ReportDraft)>,
    /// The problems of the others (`report` says which).
    pub errors: Vec<FieldError>,
}

/// Like [`parse_bytes`], but keeps each valid submission of an array. `Err` only when the
/// document as a whole is unusable (malformed JSON, an empty array).
pub fn parse_bytes_each(bytes: &[u8]) -> Result<Submissions, Vec<FieldError>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![FieldError {
            report: None,
            index: None,
            field: format!("(document, line {} column {})", e.line(), e.column()),
            reason: format!("malformed JSON: {e}"),
        }]
    })?;
    let mut out = Submissions::default();
    match &value {
        Value::Array(items) if items.is_empty() => {
            return Err(vec![FieldError {
                report: None,
                index: None,
                field: "(document)".into(),
                reason: "empty array: nothing to submit".into(),
            }]);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(d) = parse_one(item, Some(i), &mut out.errors) {
                    out.drafts.push((Some(i), d));
                }
            }
        }
        other => {
            if let Some(d) = parse_one(other, None, &mut out.errors) {
                out.drafts.push((None, d));
            }
        }
    }
    Ok(out)
}

/// Validates an already-parsed JSON document.
pub fn parse_value(value: &Value) -> Result<Vec<ReportDraft>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut drafts = Vec::new();
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                errors.push(FieldError {
                    report: None,
                    index: None,
                    field: "(document)".into(),
                    reason: "empty array: nothing to submit".into(),
                });
            }
            for (i, item) in items.iter().enumerate() {
                if let Some(d) = parse_one(item, Some(i), &mut errors) {
                    drafts.push(d);
                }
            }
        }
        other => {
            if let Some(d) = parse_one(other, None, &mut errors) {
                drafts.push(d);
            }
        }
    }
    if errors.is_empty() {
        Ok(drafts)
    } else {
        Err(errors)
    }
}

fn parse_one(
    value: &Value,
    report: Option<usize>,
    errors: &mut Vec<FieldError>,
) -> Option<ReportDraft> {
    let prefix = report.map(|i| format!("[{i}].")).unwrap_or_default();
    let before = errors.len();
    let mut err = |index: Option<usize>, field: String, reason: String| {
        errors.push(FieldError {
            report,
            index,
            field: format!("{prefix}{field}"),
            reason,
        })
    };
    let Some(obj) = value.as_object() else {
        err(
            None,
            "(submission)".into(),
            format!("expected a JSON object, found {}", kind_of(value)),
        );
        return None;
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "title"
                | "description"
                | "tlp"
                | "confidence"
                | "observed_at"
                | "indicators"
                | "tags"
                | "external_id"
                | "link"
                | "scope"
                | "recipients"
        ) {
            err(None, key.clone(), "unknown field (expected title, description, tlp, confidence, observed_at, indicators, tags, external_id, link, scope, recipients)".into());
        }
    }
    let title = match obj.get("title") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_TITLE => {
            s.trim().to_string()
        }
        Some(Value::String(s)) if s.len() > MAX_TITLE => {
            err(
                None,
                "title".into(),
                format!("longer than {MAX_TITLE} bytes"),
            );
            String::new()
        }
        Some(Value::String(_)) => {
            err(None, "title".into(), "must not be empty".into());
            String::new()
        }
        Some(other) => {
            err(
                None,
                "title".into(),
                format!("expected a string, found {}", kind_of(other)),
            );
            String::new()
        }
        None => {
            err(None, "title".into(), "required".into());
            String::new()
        }
    };
    let description = match obj.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.len() <= MAX_DESCRIPTION => s.clone(),
        Some(Value::String(_)) => {
            err(
                None,
                "description".into(),
                format!("longer than {MAX_DESCRIPTION} bytes"),
            );
            String::new()
        }
        Some(other) => {
            err(
                None,
                "description".into(),
                format!("expected a string, found {}", kind_of(other)),
            );
            String::new()
        }
    };
    let tlp = match obj.get("tlp") {
        Some(Value::String(s)) => match s.parse::<Tlp>() {
            Ok(t) => t,
            Err(e) => {
                err(None, "tlp".into(), e.to_string());
                Tlp::Red
            }
        },
        Some(other) => {
            err(
                None,
                "tlp".into(),
                format!("expected a string, found {}", kind_of(other)),
            );
            Tlp::Red
        }
        None => {
            err(
                None,
                "tlp".into(),
                "required (clear, green, amber, amber+strict or red)".into(),
            );
            Tlp::Red
        }
    };
    let confidence = match obj.get("confidence") {
        None | Some(Value::Null) => Confidence::Unconfirmed,
        Some(Value::String(s)) => s.parse().unwrap_or_else(|()| {
            err(
                None,
                "confidence".into(),
                format!("unknown confidence {s:?} (expected unconfirmed, suspected or confirmed)"),
            );
            Confidence::Unconfirmed
        }),
        Some(other) => {
            err(
                None,
                "confidence".into(),
                format!("expected a string, found {}", kind_of(other)),
            );
            Confidence::Unconfirmed
        }
    };
    let observed_at = match obj.get("observed_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                err(
                    None,
                    "observed_at".into(),
                    format!("not an RFC 3339 time such as 2026-11-20T09:00:00Z: {e}"),
                );
                None
            }
        },
        Some(other) => {
            err(
                None,
                "observed_at".into(),
                format!("expected a string, found {}", kind_of(other)),
            );
            None
        }
    };
    let tags = match obj.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_TAGS => {
            let mut tags = Vec::new();
            for (i, t) in items.iter().enumerate() {
                match t.as_str() {
                    Some(s) if !s.trim().is_empty() && s.len() <= 200 => {
                        tags.push(s.trim().to_string())
                    }
                    Some(_) => err(None, format!("tags[{i}]"), "must be 1 to 200 bytes".into()),
                    None => err(
                        None,
                        format!("tags[{i}]"),
                        format!("expected a string, found {}", kind_of(t)),
                    ),
                }
            }
            tags
        }
        Some(Value::Array(_)) => {
            err(None, "tags".into(), format!("more than {MAX_TAGS} tags"));
            Vec::new()
        }
        Some(other) => {
            err(
                None,
                "tags".into(),
                format!("expected an array of strings, found {}", kind_of(other)),
            );
            Vec::new()
        }
    };
    let optional_string =
        |key: &str, err: &mut dyn FnMut(Option<usize>, String, String)| match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= 2000 => Some(s.clone()),
            Some(Value::String(_)) => {
                err(None, key.into(), "longer than 2000 bytes".into());
                None
            }
            Some(other) => {
                err(
                    None,
                    key.into(),
                    format!("expected a string, found {}", kind_of(other)),
                );
                None
            }
        };
    let external_id = optional_string("external_id", &mut err);
    let link = optional_string("link", &mut err);

    let mut draft = ReportDraft::new(title, tlp);
    draft.description = description;
    draft.confidence = confidence;
    draft.observed_at = observed_at;
    draft.tags = tags;
    draft.external_id = external_id;
    draft.link = link;
    match obj.get("scope") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) => match v.parse::<crate::model::Scope>() {
            Ok(scope) => draft.scope = Some(scope),
            Err(e) => err(None, "scope".into(), e),
        },
        Some(other) => err(
            None,
            "scope".into(),
            format!("expected a string, found {}", kind_of(other)),
        ),
    }
    match obj.get("recipients") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() <= 500 => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(id) if !id.trim().is_empty() && id.len() <= 64 => draft
                        .recipients
                        .push(crate::model::MemberId(id.trim().to_string())),
                    _ => err(
                        None,
                        format!("recipients[{i}]"),
                        "expected a member id such as m050".into(),
                    ),
                }
            }
        }
        Some(Value::Array(_)) => err(None, "recipients".into(), "more than 500 recipients".into()),
        Some(other) => err(
            None,
            "recipients".into(),
            format!("expected an array of member ids, found {}", kind_of(other)),
        ),
    }

    match obj.get("indicators") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() > MAX_INDICATORS => {
            err(
                None,
                "indicators".into(),
                format!("more than {MAX_INDICATORS} indicators; split the submission"),
            );
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Some(ind) = item.as_object() else {
                    err(
                        Some(i),
                        format!("indicators[{i}]"),
                        format!(
                            "expected an object with type and value, found {}",
                            kind_of(item)
                        ),
                    );
                    continue;
                };
                let kind = match ind.get("type") {
                    Some(Value::String(s)) => match s.parse::<crate::model::ObservableKind>() {
                        Ok(k) => Some(k),
                        Err(e) => {
                            err(Some(i), format!("indicators[{i}].type"), e.to_string());
                            None
                        }
                    },
                    Some(other) => {
                        err(
                            Some(i),
                            format!("indicators[{i}].type"),
                            format!("expected a string, found {}", kind_of(other)),
                        );
                        None
                    }
                    None => {
                        err(Some(i), format!("indicators[{i}].type"), "required".into());
                        None
                    }
                };
                let raw = match ind.get("value") {
                    Some(Value::String(s)) => Some(s.as_str()),
                    Some(other) => {
                        err(
                            Some(i),
                            format!("indicators[{i}].value"),
                            format!("expected a string, found {}", kind_of(other)),
                        );
                        None
                    }
                    None => {
                        err(Some(i), format!("indicators[{i}].value"), "required".into());
                        None
                    }
                };
                let comment = match ind.get("comment") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.len() <= 2000 => Some(s.clone()),
                    Some(_) => {
                        err(
                            Some(i),
                            format!("indicators[{i}].comment"),
                            "expected a string of at most 2000 bytes".into(),
                        );
                        None
                    }
                };
                if let (Some(kind), Some(raw)) = (kind, raw) {
                    match Observable::parse(kind, raw) {
                        Ok(o) => draft.push_observable(o, comment),
                        Err(e) => err(Some(i), format!("indicators[{i}].value"), e.to_string()),
                    }
                }
            }
        }
        Some(other) => {
            err(
                None,
                "indicators".into(),
                format!("expected an array, found {}", kind_of(other)),
            );
        }
    }
    (errors.len() == before).then_some(draft)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_submission() {
        let drafts = parse_bytes(
            br#"{"title": "t", "tlp": "amber", "indicators": [
                {"type": "domain", "value": "Evil.Example.", "comment": "c2"},
                {"type": "sha256", "value": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}
            ], "tags": ["x"]}"#,
        )
        .unwrap();
        assert_eq!(drafts.len(), 1);
        let d = &drafts[0];
        assert_eq!(d.tlp, Tlp::Amber);
        assert_eq!(d.indicators[0].observable.value(), "evil.example");
        assert_eq!(d.indicators[1].observable.value().len(), 64);
    }

    #[test]
    fn lists_every_bad_item() {
        let errors = parse_bytes(
            br#"{"title": 3, "tlp": "purple", "indicators": [
                {"type": "ipv4", "value": "1.2.3.4"},
                {"type": "ipv4", "value": "999.1.1.1"},
                {"type": "hash", "value": "x"},
                "oops"
            ]}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "title",
                "tlp",
                "indicators[1].value",
                "indicators[2].type",
                "indicators[3]"
            ]
        );
        assert_eq!(errors[2].index, Some(1));
        assert!(
            errors[2].reason.contains("999.1.1.1"),
            "{}",
            errors[2].reason
        );
    }

    #[test]
    fn malformed_json_says_where() {
        let errors = parse_bytes(b"{\"title\": ").unwrap_err();
        assert!(errors[0].field.contains("line 1"), "{:?}", errors[0]);
    }
}

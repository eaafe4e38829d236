//! Small helpers for the JSON formats: parse with position, read fields leniently, and say
//! the JSON path when a required field is missing.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::FormatError;

/// Parses JSON, turning serde's error into one with line and column.
pub(crate) fn parse(format: &'static str, bytes: &[u8]) -> Result<Value, FormatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| FormatError::Json {
        format,
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A string field, trimmed, `None` when missing, null or empty.
pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A required string field, or an error naming its path.
pub(crate) fn req_str<'a>(
    format: &'static str,
    v: &'a Value,
    path: &str,
    key: &str,
) -> Result<&'a str, FormatError> {
    str_field(v, key).ok_or_else(|| {
        FormatError::structure(format, format!("{path}.{key}"), "missing or not a string")
    })
}

/// A required array field, or an error naming its path.
pub(crate) fn req_array<'a>(
    format: &'static str,
    v: &'a Value,
    path: &str,
    key: &str,
) -> Result<&'a Vec<Value>, FormatError> {
    v.get(key).and_then(Value::as_array).ok_or_else(|| {
        FormatError::structure(format, format!("{path}.{key}"), "missing or not an array")
    })
}

/// An array field, empty when missing.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Parses the date and time forms the feeds use: RFC 3339, RFC 2822, `YYYY-MM-DD`,
/// `YYYY-MM-DDTHH:MM[:SS]` without zone (taken as UTC), `YYYY-MM-DD HH:MM:SS` and
/// minute-precision RFC 3339 (`2025-04-11T23:52+09:00`, as JVN writes).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%MZ",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_feed_form() {
        for s in [
            "2025-04-11T23:52+09:00",
            "2021-03-03T00:15:00.000",
            "Wed, 16 Sep 2020 15:54:06 +0000",
            "2024-01-22",
            "2021-07-20T14:00Z",
            "2023-05-23 17:51:44",
        ] {
            assert!(parse_time(s).is_some(), "{s}");
        }
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn json_errors_have_position() {
        let err = parse("kev", b"{\n  \"a\": ]").unwrap_err().to_string();
        assert!(
            err.starts_with("kev: invalid JSON at line 2, column"),
            "{err}"
        );
    }
}

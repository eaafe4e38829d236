//! STIX 2.1 patterning (specification section 9): the whole language parsed to a syntax tree
//! ([`ast`]), rendered back in a canonical form, and the observables it names exactly.
//!
//! [`parse_ast`] reads any pattern of the grammar (`grammar.rs` says what that covers and
//! which extra rules of the OASIS validator it shares); an invalid pattern is a [`PatternError`]
//! with the byte offset and what was expected there. [`extract`] then decides what becomes
//! an indicator.
//!
//! **The extraction rule.** An observable is extracted when the pattern names it exactly and
//! positively: a comparison `=` (or `IN`, which is a list of `=`) on a known path, not
//! negated, anywhere in the `AND`/`OR` structure of the observations and their comparisons.
//! Known paths: `ipv4-addr:value`, `ipv6-addr:value` (an address, or a network given as
//! CIDR), `domain-name:value`, `url:value`, `email-addr:value`,
//! `email-message:from_ref.value` / `sender_ref.value` / `to_refs[…].value` /
//! `cc_refs[…].value` / `bcc_refs[…].value`, `file:hashes.MD5` / `'SHA-1'` / `'SHA-256'` /
//! `SSDEEP`, `file:name`, `network-traffic:src_ref.value` / `dst_ref.value` and
//! `autonomous-system:number`.
//!
//! Everything else is reported in [`PatternOutcome::unsupported`], one reason each, and the
//! caller keeps the pattern text verbatim (search and export show it): `!=`, `<`, `>`, `<=`,
//! `>=`, `LIKE`, `MATCHES`, `ISSUBSET`, `ISSUPERSET`, `EXISTS` and `NOT` name no single value
//! to correlate on; other paths have no observable kind; and `FOLLOWEDBY`, `WITHIN`,
//! `REPEATS` and `START`/`STOP` add timing an indicator cannot hold, so the values under them
//! are extracted and the pattern is kept as well. A pattern made only of extractable
//! comparisons is fully represented by its indicators and is not kept.

pub mod ast;
mod grammar;
#[cfg(test)]
mod tests;

use crate::model::{Observable, ObservableKind};
use ast::{CompExpr, Literal, ObjectPath, ObsExpr, Op, Pattern, Qualifier, Step, Test, Value};

/// What a pattern yielded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatternOutcome {
    /// Observables the pattern names exactly (see the module's extraction rule), in pattern
    /// order, deduplicated.
    pub observables: Vec<Observable>,
    /// Parts of the pattern the observables do not represent, one reason each; when not
    /// empty, the caller keeps the pattern text.
    pub unsupported: Vec<String>,
}

/// The pattern is not valid STIX patterning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid STIX pattern at offset {offset}: {message}")]
pub struct PatternError {
    /// Byte offset in the pattern where parsing stopped.
    pub offset: usize,
    /// What was wrong, usually "expected …, found …".
    pub message: String,
}

/// Parses a STIX pattern into its syntax tree. `Display` on the tree renders it canonically.
pub fn parse_ast(pattern: &str) -> Result<Pattern, PatternError> {
    grammar::pattern(pattern)
}

/// Parses a STIX pattern into the observables it names.
pub fn parse(pattern: &str) -> Result<PatternOutcome, PatternError> {
    Ok(extract(&parse_ast(pattern)?))
}

/// The observables a parsed pattern names exactly, and what it says beyond them.
pub fn extract(pattern: &Pattern) -> PatternOutcome {
    let mut out = PatternOutcome::default();
    observations(&pattern.0, &mut out);
    out
}

fn note(out: &mut PatternOutcome, why: String) {
    if !out.unsupported.contains(&why) {
        out.unsupported.push(why);
    }
}

fn observations(e: &ObsExpr, out: &mut PatternOutcome) {
    match e {
        ObsExpr::Observation(c) => comparisons(c, out),
        ObsExpr::Group(e) => observations(e, out),
        ObsExpr::And(v) | ObsExpr::Or(v) => v.iter().for_each(|e| observations(e, out)),
        ObsExpr::FollowedBy(v) => {
            note(out, "FOLLOWEDBY (temporal order not kept)".into());
            v.iter().for_each(|e| observations(e, out));
        }
        ObsExpr::Qualified(e, quals) => {
            for q in quals {
                note(
                    out,
                    match q {
                        Qualifier::Within(_) => "WITHIN qualifier (timing not kept)",
                        Qualifier::Repeats(_) => "REPEATS qualifier (count not kept)",
                        Qualifier::StartStop(..) => "START/STOP qualifier (time window not kept)",
                    }
                    .into(),
                );
            }
            observations(e, out);
        }
    }
}

fn comparisons(c: &CompExpr, out: &mut PatternOutcome) {
    match c {
        CompExpr::Test(t) => test(t, out),
        CompExpr::Group(c) => comparisons(c, out),
        CompExpr::And(v) | CompExpr::Or(v) => v.iter().for_each(|c| comparisons(c, out)),
    }
}

fn test(t: &Test, out: &mut PatternOutcome) {
    let (path, negated, op, value) = match t {
        Test::Exists(path) => return note(out, format!("EXISTS on {path}")),
        Test::Compare {
            path,
            negated,
            op,
            value,
        } => (path, *negated, *op, value),
    };
    if negated || !matches!(op, Op::Eq | Op::In) {
        let not = if negated { "NOT " } else { "" };
        return note(out, format!("operator {not}{} on {path}", op.as_str()));
    }
    let Some(kind) = path_kind(path) else {
        return note(out, format!("object path {path}"));
    };
    let literals: Vec<&Literal> = match value {
        Value::Literal(l) => vec![l],
        Value::Set(v) => v.iter().collect(),
    };
    for l in literals {
        let text = match l {
            Literal::Str(s) => s.as_str(),
            Literal::Int(n) if kind == ObservableKind::Asn => n.trim_start_matches('+'),
            _ => {
                note(out, format!("non-string value for {path}"));
                continue;
            }
        };
        let kind = match kind {
            ObservableKind::Ipv4 | ObservableKind::Ipv6 if text.contains('/') => {
                ObservableKind::Cidr
            }
            k => k,
        };
        let parsed = if path.object_type == "network-traffic" {
            Observable::parse(ObservableKind::Ipv4, text)
                .or_else(|_| Observable::parse(ObservableKind::Ipv6, text))
        } else {
            Observable::parse(kind, text)
        };
        match parsed {
            Ok(o) => {
                if !out.observables.contains(&o) {
                    out.observables.push(o);
                }
            }
            Err(e) => note(out, format!("value of {path}: {e}")),
        }
    }
}

/// The observable kind a path names, for the paths of the extraction rule.
fn path_kind(path: &ObjectPath) -> Option<ObservableKind> {
    use ObservableKind::*;
    let prop = path.property.to_ascii_lowercase();
    let steps: Vec<String> = path
        .steps
        .iter()
        .map(|s| match s {
            Step::Key(k) => k.to_ascii_lowercase(),
            Step::AnyIndex | Step::Index(_) => "[]".into(),
        })
        .collect();
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    Some(
        match (path.object_type.as_str(), prop.as_str(), steps.as_slice()) {
            ("ipv4-addr", "value", []) => Ipv4,
            ("ipv6-addr", "value", []) => Ipv6,
            ("domain-name", "value", []) => Domain,
            ("url", "value", []) => Url,
            ("email-addr", "value", []) => Email,
            ("email-message", "from_ref" | "sender_ref", ["value"]) => Email,
            ("email-message", "to_refs" | "cc_refs" | "bcc_refs", ["[]", "value"]) => Email,
            ("file", "name", []) => Filename,
            ("file", "hashes", [h]) => match h.replace('-', "").as_str() {
                "md5" => Md5,
                "sha1" => Sha1,
                "sha256" => Sha256,
                "ssdeep" => Ssdeep,
                _ => return None,
            },
            ("network-traffic", "dst_ref" | "src_ref", ["value"]) => Ipv4,
            ("autonomous-system", "number", []) => Asn,
            _ => return None,
        },
    )
}

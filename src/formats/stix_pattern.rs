//! STIX 2.1 patterning: just enough to turn indicator patterns into observables.
//!
//! Supported: observation expressions `[...]` joined by `AND` / `OR` (and parentheses);
//! comparison expressions joined by `AND` / `OR` (and parentheses); the `=` operator on
//! `ipv4-addr:value`, `ipv6-addr:value` (addresses or CIDR), `domain-name:value`,
//! `url:value`, `email-addr:value`, `email-message:from_ref.value` / `sender_ref.value` /
//! `to_refs[*].value` / `cc_refs[*].value`, `file:hashes.MD5` / `'SHA-1'` / `'SHA-256'` /
//! `SSDEEP`, `file:name`, `network-traffic:src_ref.value` / `dst_ref.value` and
//! `autonomous-system:number`.
//!
//! Left out, and reported as [`PatternOutcome::unsupported`] so the caller can keep the
//! pattern text and warn: every other operator (`!=`, `<`, `>`, `<=`, `>=`, `IN`, `LIKE`,
//! `MATCHES`, `ISSUBSET`, `ISSUPERSET`) and negation (`NOT`) — a negated or ranged
//! comparison names no value to correlate on; every other object path; and the temporal
//! parts `FOLLOWEDBY`, `WITHIN`, `REPEATS`, `START`/`STOP`, whose values are still
//! extracted but whose timing is not kept.

use crate::model::{Observable, ObservableKind};

/// What a pattern yielded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatternOutcome {
    /// Observables named by supported `=` comparisons, in pattern order, deduplicated.
    pub observables: Vec<Observable>,
    /// Parts the parser understood but does not represent, one reason each.
    pub unsupported: Vec<String>,
}

/// The pattern is not valid STIX patterning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid STIX pattern at offset {offset}: {message}")]
pub struct PatternError {
    pub offset: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Word(String),
    Str(String),
    Op(String),
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, PatternError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            // The same set the word scanner below stops at (form feed included): a byte that
            // ends a word without starting any token would never be consumed.
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'[' => {
                out.push((start, Tok::LBracket));
                i += 1;
            }
            b']' => {
                out.push((start, Tok::RBracket));
                i += 1;
            }
            b'(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            b'\'' => {
                let (v, next) = read_string(s, i + 1)?;
                out.push((start, Tok::Str(v)));
                i = next;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = bytes.get(i + 1) == Some(&b'=');
                let op = if two { &s[i..i + 2] } else { &s[i..i + 1] };
                if op == "!" {
                    return Err(PatternError {
                        offset: i,
                        message: "'!' must be followed by '='".into(),
                    });
                }
                out.push((start, Tok::Op(op.to_string())));
                i += op.len();
            }
            _ => {
                // A word: keyword, number, object path (with quoted keys and [*]), or a
                // typed literal prefix such as t'...' / h'...' / b'...'.
                let mut j = i;
                let mut literal = false;
                while j < bytes.len() {
                    let b = bytes[j];
                    if b == b'\'' {
                        if j == i + 1 && matches!(bytes[i], b't' | b'h' | b'b') {
                            let (v, next) = read_string(s, j + 1)?;
                            out.push((start, Tok::Str(v)));
                            j = next;
                            literal = true;
                            break;
                        }
                        // quoted key inside a path: hashes.'SHA-256'
                        let (_, next) = read_string(s, j + 1)?;
                        j = next;
                        continue;
                    }
                    if b == b'[' && j > i {
                        // index inside a path: to_refs[*]
                        let close = s[j..].find(']').ok_or(PatternError {
                            offset: j,
                            message: "unclosed '[' in object path".into(),
                        })?;
                        j += close + 1;
                        continue;
                    }
                    if b.is_ascii_whitespace()
                        || matches!(
                            b,
                            b'[' | b']' | b'(' | b')' | b',' | b'=' | b'!' | b'<' | b'>'
                        )
                    {
                        break;
                    }
                    j += 1;
                }
                if j == i {
                    return Err(PatternError {
                        offset: i,
                        message: format!("unexpected character {:?}", s[i..].chars().next()),
                    });
                }
                if !literal {
                    out.push((start, Tok::Word(s[i..j].to_string())));
                }
                i = j;
            }
        }
    }
    Ok(out)
}

fn read_string(s: &str, mut i: usize) -> Result<(String, usize), PatternError> {
    let start = i;
    let mut v = String::new();
    let mut chars = s[i..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    v.push(n);
                }
            }
            '\'' => {
                i += off + 1;
                return Ok((v, i));
            }
            c => v.push(c),
        }
    }
    Err(PatternError {
        offset: start.saturating_sub(1),
        message: "unterminated string literal".into(),
    })
}

/// How deep parentheses may nest. Real patterns nest a few levels; the recursive descent
/// would overflow the stack (2 MB on worker threads) on tens of thousands.
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    /// Open parentheses around the current position.
    depth: usize,
    out: PatternOutcome,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    /// Enters one more level of parentheses, or refuses past [`MAX_DEPTH`].
    fn open_paren(&mut self) -> Result<(), PatternError> {
        if self.depth >= MAX_DEPTH {
            return self.err(format!("parentheses nest deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn unsupported(&mut self, why: String) {
        if !self.out.unsupported.contains(&why) {
            self.out.unsupported.push(why);
        }
    }

    fn observation_expr(&mut self) -> Result<(), PatternError> {
        self.observation_unary()?;
        loop {
            if self.keyword("AND") || self.keyword("OR") {
                self.pos += 1;
            } else if self.keyword("FOLLOWEDBY") {
                self.unsupported("FOLLOWEDBY (temporal order not kept)".into());
                self.pos += 1;
            } else {
                return Ok(());
            }
            self.observation_unary()?;
        }
    }

    fn observation_unary(&mut self) -> Result<(), PatternError> {
        match self.peek() {
            Some(Tok::LBracket) => {
                self.pos += 1;
                self.comparison_expr()?;
                if self.peek() != Some(&Tok::RBracket) {
                    return self.err("expected ']'");
                }
                self.pos += 1;
            }
            Some(Tok::LParen) => {
                self.open_paren()?;
                self.observation_expr()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("expected ')'");
                }
                self.depth -= 1;
                self.pos += 1;
            }
            _ => return self.err("expected '[' or '(' to start an observation expression"),
        }
        self.qualifiers()
    }

    fn qualifiers(&mut self) -> Result<(), PatternError> {
        loop {
            if self.keyword("WITHIN") {
                self.unsupported("WITHIN qualifier (timing not kept)".into());
                self.pos += 3; // WITHIN n SECONDS
            } else if self.keyword("REPEATS") {
                self.unsupported("REPEATS qualifier (count not kept)".into());
                self.pos += 3; // REPEATS n TIMES
            } else if self.keyword("START") {
                self.unsupported("START/STOP qualifier (time window not kept)".into());
                self.pos += 4; // START t'..' STOP t'..'
            } else {
                return Ok(());
            }
            if self.pos > self.toks.len() {
                self.pos = self.toks.len();
                return self.err("incomplete qualifier");
            }
        }
    }

    fn comparison_expr(&mut self) -> Result<(), PatternError> {
        self.comparison_unary()?;
        while self.keyword("AND") || self.keyword("OR") {
            self.pos += 1;
            self.comparison_unary()?;
        }
        Ok(())
    }

    fn comparison_unary(&mut self) -> Result<(), PatternError> {
        if self.peek() == Some(&Tok::LParen) {
            self.open_paren()?;
            self.comparison_expr()?;
            if self.peek() != Some(&Tok::RParen) {
                return self.err("expected ')'");
            }
            self.depth -= 1;
            self.pos += 1;
            return Ok(());
        }
        let path = match self.peek() {
            Some(Tok::Word(w)) if w.contains(':') => w.clone(),
            _ => return self.err("expected an object path such as ipv4-addr:value"),
        };
        self.pos += 1;
        let negated = self.keyword("NOT");
        if negated {
            self.pos += 1;
        }
        let op = match self.peek() {
            Some(Tok::Op(o)) => o.clone(),
            Some(Tok::Word(w))
                if ["IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                w.to_ascii_uppercase()
            }
            _ => return self.err(format!("expected a comparison operator after {path}")),
        };
        self.pos += 1;
        let value = self.value()?;
        if negated || op != "=" {
            let not = if negated { "NOT " } else { "" };
            self.unsupported(format!("operator {not}{op} on {path}"));
            return Ok(());
        }
        let Some(kind) = path_kind(&path) else {
            self.unsupported(format!("object path {path}"));
            return Ok(());
        };
        let Some(value) = value else {
            self.unsupported(format!("non-string value for {path}"));
            return Ok(());
        };
        let kind = match kind {
            ObservableKind::Ipv4 | ObservableKind::Ipv6 if value.contains('/') => {
                ObservableKind::Cidr
            }
            k => k,
        };
        let parsed = if path.starts_with("network-traffic:") {
            Observable::parse(ObservableKind::Ipv4, &value)
                .or_else(|_| Observable::parse(ObservableKind::Ipv6, &value))
        } else {
            Observable::parse(kind, &value)
        };
        match parsed {
            Ok(o) => {
                if !self.out.observables.contains(&o) {
                    self.out.observables.push(o);
                }
            }
            Err(e) => self.unsupported(format!("value of {path}: {e}")),
        }
        Ok(())
    }

    /// A literal; `Some` for strings and numbers, `None` for lists and booleans.
    fn value(&mut self) -> Result<Option<String>, PatternError> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Some(s))
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(w.bytes().all(|b| b.is_ascii_digit()).then_some(w))
            }
            Some(Tok::LParen) => {
                while !matches!(self.peek(), Some(Tok::RParen) | None) {
                    self.pos += 1;
                }
                if self.peek().is_none() {
                    return self.err("unclosed value list");
                }
                self.pos += 1;
                Ok(None)
            }
            _ => self.err("expected a value"),
        }
    }
}

fn path_kind(path: &str) -> Option<ObservableKind> {
    let (object, prop) = path.split_once(':')?;
    let prop_norm: String = prop.chars().filter(|c| *c != '\'' && *c != '"').collect();
    let prop_lower = prop_norm.to_ascii_lowercase();
    use ObservableKind::*;
    Some(match (object, prop_lower.as_str()) {
        ("ipv4-addr", "value") => Ipv4,
        ("ipv6-addr", "value") => Ipv6,
        ("domain-name", "value") => Domain,
        ("url", "value") => Url,
        ("email-addr", "value") => Email,
        (
            "email-message",
            "from_ref.value" | "sender_ref.value" | "to_refs[*].value" | "cc_refs[*].value",
        ) => Email,
        ("file", "name") => Filename,
        ("file", "hashes.md5") => Md5,
        ("file", "hashes.sha-1" | "hashes.sha1") => Sha1,
        ("file", "hashes.sha-256" | "hashes.sha256") => Sha256,
        ("file", "hashes.ssdeep") => Ssdeep,
        ("network-traffic", "dst_ref.value" | "src_ref.value") => Ipv4,
        ("autonomous-system", "number") => Asn,
        _ => return None,
    })
}

/// Parses a STIX pattern into the observables it names.
pub fn parse(pattern: &str) -> Result<PatternOutcome, PatternError> {
    let toks = tokenize(pattern)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: pattern.len(),
        depth: 0,
        out: PatternOutcome::default(),
    };
    p.observation_expr()?;
    if p.pos < p.toks.len() {
        return p.err("unexpected text after the pattern");
    }
    Ok(p.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &str) -> Vec<String> {
        parse(p)
            .unwrap()
            .observables
            .iter()
            .map(Observable::key)
            .collect()
    }

    #[test]
    fn simple_and_compound() {
        assert_eq!(keys("[ipv4-addr:value = '10.0.0.1']"), ["ipv4:10.0.0.1"]);
        assert_eq!(
            keys("[ipv4-addr:value = '223.166.0.0/15']"),
            ["cidr:223.166.0.0/15"]
        );
        assert_eq!(
            keys(
                "[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C' AND file:name = 'a.exe']"
            ),
            [
                "sha256:ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c",
                "filename:a.exe"
            ]
        );
        assert_eq!(
            keys(
                "[domain-name:value = 'evil.example.com'] OR ([url:value = 'http://x.example.org/a'] AND [email-addr:value = 'a@example.org'])"
            ),
            [
                "domain:evil.example.com",
                "url:http://x.example.org/a",
                "email:a@example.org"
            ]
        );
        assert_eq!(keys("[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e' OR file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']").len(), 2);
    }

    #[test]
    fn unsupported_parts_are_reported() {
        let o = parse("[email-message:subject MATCHES '^[IMPORTANT] Please']").unwrap();
        assert!(o.observables.is_empty());
        assert_eq!(o.unsupported, ["operator MATCHES on email-message:subject"]);
        let o = parse("[x509-certificate:issuer = 'CN=x']").unwrap();
        assert_eq!(o.unsupported, ["object path x509-certificate:issuer"]);
        let o = parse("[ipv4-addr:value != '10.0.0.1']").unwrap();
        assert!(o.observables.is_empty());
        let o = parse("[ipv4-addr:value NOT = '10.0.0.1']").unwrap();
        assert!(o.observables.is_empty() && o.unsupported[0].contains("NOT"));
        let o = parse("[ipv4-addr:value = '10.0.0.1'] FOLLOWEDBY [domain-name:value = 'a.example.com'] WITHIN 300 SECONDS").unwrap();
        assert_eq!(o.observables.len(), 2);
        assert_eq!(o.unsupported.len(), 2);
        let o = parse(
            "[email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final.+\\\\.exe$']",
        )
        .unwrap();
        assert_eq!(o.unsupported.len(), 1);
    }

    #[test]
    fn invalid_patterns_say_where() {
        let e = parse("[ipv4-addr:value = '10.0.0.1'").unwrap_err();
        assert!(e.to_string().contains("expected ']'"), "{e}");
        let e = parse("[ipv4-addr:value = '10.0.0.1]").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
        assert!(parse("ipv4-addr:value = '1.2.3.4'").is_err());
    }

    // Found by `fuzz/fuzz_targets/stix_pattern.rs`: a form feed ended a word without being
    // skipped as whitespace, so the tokenizer pushed empty words forever (out of memory).
    #[test]
    fn fuzz_form_feed_is_whitespace() {
        let o = parse("[ipv4-addr:value\x0c=\x0c'10.0.0.1']").unwrap();
        assert_eq!(o.observables.len(), 1);
        let e = parse("[\x0c\0\0\0\0\x001=r:\0x").unwrap_err();
        assert!(e.to_string().contains("invalid STIX pattern"), "{e}");
    }

    // Deep nesting must be an error, not a stack overflow (parsers run on 2 MB threads).
    #[test]
    fn fuzz_deep_nesting_is_refused() {
        let deep = "(".repeat(100_000);
        for p in [
            format!("{deep}[ipv4-addr:value = '10.0.0.1']"),
            format!("[{deep}ipv4-addr:value = '10.0.0.1']"),
        ] {
            let e = std::thread::spawn(move || parse(&p).unwrap_err())
                .join()
                .expect("no stack overflow");
            assert!(e.message.contains("nest deeper than 64"), "{e}");
        }
        let ok = format!(
            "{}[ipv4-addr:value = '10.0.0.1']{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        );
        assert_eq!(parse(&ok).unwrap().observables.len(), 1);
    }
}

//! The STIX 2.1 pattern grammar as winnow combinators.
//!
//! Follows the specification's ANTLR grammar (`STIXPattern.g4`, the one the OASIS
//! `stix2-patterns` validator is generated from) token for token, so that the two accept and
//! refuse the same patterns:
//! - whitespace (the grammar's set, which includes NEL, NBSP and the Unicode spaces) and
//!   `/* */` and `//` comments may stand between any two tokens;
//! - keywords are upper case and reserved (`true`/`false` lower case); a word is read greedily
//!   with hyphens (`SHA-256` is one word), so a property name with a hyphen must be quoted;
//! - operators `=`/`==`, `!=`/`<>`, `<`, `<=`, `>`, `>=`, `IN`, `LIKE`, `MATCHES`, `ISSUBSET`,
//!   `ISSUPERSET`, each optionally preceded by `NOT`, and `EXISTS`; `LIKE`, `MATCHES` and the
//!   set operators take a string, `<`… any constant but a boolean, `IN` a parenthesised list;
//! - observation operators by increasing precedence `FOLLOWEDBY`, `OR`, `AND` (comparison
//!   operators: `OR`, `AND`), all left associative; qualifiers `WITHIN n SECONDS`,
//!   `REPEATS n TIMES`, `START t'…' STOP t'…'` after an observation or a group;
//! - constants: `'…'` strings with the escapes `\'` and `\\` only, integers without leading
//!   zeros, floats `[+-]?d*.d+`, `true`/`false`, `h'…'` (pairs of hex digits), `b'…'`
//!   (padded base64), `t'…'` (RFC 3339 in UTC with `Z`).
//!
//! Three rules of the validator that are not in the grammar are enforced too: the pattern's
//! first token after any `(` is `[`; one observation carries at most one qualifier of each
//! kind (a parenthesised group may carry more); and a value compared with a known hash
//! (`…hashes.'SHA-256'`) has that hash's form. The validator checks a whole `IN` list's text
//! against the hash form, which refuses every list; here each member is checked instead.
//!
//! Errors carry the farthest position the parser reached and what it would have accepted
//! there (merged over the alternatives tried at that position).

use std::cmp::Ordering;

use winnow::Parser;
use winnow::ascii::{digit0, digit1};
use winnow::combinator::{alt, eof, opt, preceded, repeat};
use winnow::error::{AddContext, ErrMode, ModalError, ParserError};
use winnow::stream::{AsChar, Offset, Stream};
use winnow::token::{any, one_of, take_till, take_until, take_while};

use super::PatternError;
use super::ast::*;

/// How deep parentheses may nest. Real patterns nest a few levels; the recursive descent
/// would overflow the stack (2 MB on worker threads) on tens of thousands.
pub(super) const MAX_DEPTH: usize = 64;

/// Why parsing stopped: the farthest position reached and what would have been accepted.
#[derive(Debug, Clone)]
pub(super) struct Expect {
    /// Bytes of input left where the failure happened (the offset is `len - remaining`).
    remaining: usize,
    /// Labels of what would have been accepted there, in the order tried.
    expected: Vec<&'static str>,
    /// A specific explanation, which wins over `expected`.
    message: Option<String>,
}

type PResult<O> = Result<O, ErrMode<Expect>>;

impl<'a> ParserError<&'a str> for Expect {
    type Inner = Self;

    fn from_input(input: &&'a str) -> Self {
        Expect {
            remaining: input.len(),
            expected: Vec::new(),
            message: None,
        }
    }

    /// Keeps the alternative that got farther; merges what two alternatives expected at the
    /// same position ("expected an object path, EXISTS or '('").
    fn or(mut self, other: Self) -> Self {
        match self.remaining.cmp(&other.remaining) {
            Ordering::Less => self,
            Ordering::Greater => other,
            Ordering::Equal => {
                if self.message.is_some() {
                    return self;
                }
                if other.message.is_some() {
                    return other;
                }
                for e in other.expected {
                    if !self.expected.contains(&e) {
                        self.expected.push(e);
                    }
                }
                self
            }
        }
    }

    fn into_inner(self) -> Result<Self, Self> {
        Ok(self)
    }
}

impl<'a> AddContext<&'a str, &'static str> for Expect {
    /// A label names what was expected only where its parser failed on its first character;
    /// a failure deeper inside keeps the more precise inner expectation.
    fn add_context(
        mut self,
        input: &&'a str,
        token_start: &<&'a str as Stream>::Checkpoint,
        label: &'static str,
    ) -> Self {
        let start_remaining = input.len() + input.offset_from(token_start);
        if self.message.is_none() && self.remaining == start_remaining {
            self.expected = vec![label];
        }
        self
    }
}

/// An error that stops the parse at `at` (the input left there) with its own explanation.
fn fail_at(at: &str, message: impl Into<String>) -> ErrMode<Expect> {
    ErrMode::Cut(Expect {
        remaining: at.len(),
        expected: Vec::new(),
        message: Some(message.into()),
    })
}

/// Commits: after the first token of a rule, a failure is the pattern's error, not a cue to
/// try another alternative.
fn cut<T>(r: PResult<T>) -> PResult<T> {
    r.map_err(ModalError::cut)
}

/// The grammar's whitespace set (`WS` in `STIXPattern.g4`).
fn is_ws(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

fn block_comment(i: &mut &str) -> PResult<()> {
    let start = *i;
    "/*".parse_next(i)?;
    let body: PResult<&str> = take_until(0.., "*/").parse_next(i);
    match body {
        Ok(_) => "*/".void().parse_next(i),
        Err(_) => Err(fail_at(start, "unterminated comment: '/*' without '*/'")),
    }
}

/// Whitespace and comments, skipped between any two tokens.
fn ws(i: &mut &str) -> PResult<()> {
    repeat(
        0..,
        alt((
            take_while(1.., is_ws).void(),
            block_comment,
            ("//", take_till(0.., ['\r', '\n'])).void(),
        )),
    )
    .parse_next(i)
}

/// A token: whitespace, then `p`, which is named `label` in errors.
fn tok<'a, O>(
    label: &'static str,
    p: impl Parser<&'a str, O, ErrMode<Expect>>,
) -> impl Parser<&'a str, O, ErrMode<Expect>> {
    preceded(ws, p.context(label))
}

/// A word as the grammar's lexer reads it: the longest `[A-Za-z_][A-Za-z0-9_-]*`.
fn word<'a>(i: &mut &'a str) -> PResult<&'a str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        }),
    )
        .take()
        .parse_next(i)
}

fn kw<'a>(k: &'static str) -> impl Parser<&'a str, (), ErrMode<Expect>> {
    tok(k, word.verify(move |w: &str| w == k).void())
}

const PROPERTY: &str = "a property name (quoted if it has a '-', e.g. hashes.'SHA-256')";

fn property_name(i: &mut &str) -> PResult<String> {
    alt((
        word.verify(|w: &str| is_bare_name(w)).map(str::to_string),
        string_lit,
    ))
    .parse_next(i)
}

/// `'…'` with the escapes `\'` and `\\`.
fn string_lit(i: &mut &str) -> PResult<String> {
    let start = *i;
    '\''.parse_next(i)?;
    let mut out = String::new();
    loop {
        let chunk: &str = take_till(0.., ['\'', '\\']).parse_next(i)?;
        out.push_str(chunk);
        let at = *i;
        match opt(any).parse_next(i)? {
            Some('\'') => return Ok(out),
            Some(_) => match opt(one_of(['\'', '\\'])).parse_next(i)? {
                Some(c) => out.push(c),
                None => {
                    return Err(fail_at(
                        at,
                        r"invalid escape in a string: only \' and \\ are allowed",
                    ));
                }
            },
            None => return Err(fail_at(start, "unterminated string literal")),
        }
    }
}

fn digit(i: &mut &str) -> PResult<char> {
    one_of(|c: char| c.is_ascii_digit()).parse_next(i)
}

/// The text between `t'` and `'`: `YYYY-MM-DDThh:mm:ss[.f]Z` with the grammar's ranges.
fn timestamp_body<'a>(i: &mut &'a str) -> PResult<&'a str> {
    (date, 'T', time, opt(('.', digit1)), 'Z')
        .take()
        .parse_next(i)
}

fn date(i: &mut &str) -> PResult<()> {
    let month = alt((
        ('0', one_of('1'..='9')).void(),
        ('1', one_of('0'..='2')).void(),
    ));
    let day = alt((
        ('0', one_of('1'..='9')).void(),
        (one_of(['1', '2']), digit).void(),
        ('3', one_of(['0', '1'])).void(),
    ));
    ((digit, digit, digit, digit), '-', month, '-', day)
        .void()
        .parse_next(i)
}

fn time(i: &mut &str) -> PResult<()> {
    let hour = alt((
        (one_of(['0', '1']), digit).void(),
        ('2', one_of('0'..='3')).void(),
    ));
    let second = alt(((one_of('0'..='5'), digit).void(), "60".void()));
    (hour, ':', (one_of('0'..='5'), digit), ':', second)
        .void()
        .parse_next(i)
}

fn timestamp_lit(i: &mut &str) -> PResult<String> {
    let start = *i;
    "t'".parse_next(i)?;
    match (timestamp_body, '\'').parse_next(i) {
        Ok((t, _)) => Ok(t.to_string()),
        Err(_) => Err(fail_at(
            start,
            "expected a timestamp such as t'2016-01-01T00:00:00Z' (UTC, ending in Z)",
        )),
    }
}

fn hex_lit(i: &mut &str) -> PResult<String> {
    let start = *i;
    "h'".parse_next(i)?;
    let body: PResult<(&str, char)> = (take_while(0.., AsChar::is_hex_digit), '\'').parse_next(i);
    match body {
        Ok((h, _)) if h.len() % 2 == 0 => Ok(h.to_string()),
        _ => Err(fail_at(
            start,
            "expected h'…' with an even number of hex digits",
        )),
    }
}

fn binary_lit(i: &mut &str) -> PResult<String> {
    let start = *i;
    "b'".parse_next(i)?;
    let body: PResult<(&str, &str, char)> = (
        take_while(0.., |c: char| {
            c.is_ascii_alphanumeric() || c == '+' || c == '/'
        }),
        take_while(0..=2, '='),
        '\'',
    )
        .parse_next(i);
    match body {
        // The grammar: groups of four, the last one possibly "xxx=" or "xx==".
        Ok((chars, pad, _))
            if !chars.is_empty() && (chars.len() + pad.len()) % 4 == 0 && chars.len() % 4 != 1 =>
        {
            Ok(format!("{chars}{pad}"))
        }
        _ => Err(fail_at(start, "expected b'…' with padded base64 text")),
    }
}

fn int_text<'a>(i: &mut &'a str) -> PResult<&'a str> {
    (
        opt(one_of(['+', '-'])),
        alt(("0", (one_of('1'..='9'), digit0).take())),
    )
        .take()
        .parse_next(i)
}

/// A number, the longest of the float and integer forms (as the lexer does).
fn number(i: &mut &str) -> PResult<Literal> {
    alt((
        (opt(one_of(['+', '-'])), digit0, '.', digit1)
            .take()
            .map(|s: &str| Literal::Float(s.to_string())),
        int_text.map(|s: &str| Literal::Int(s.to_string())),
    ))
    .parse_next(i)
}

fn boolean(i: &mut &str) -> PResult<Literal> {
    word.verify_map(|w: &str| match w {
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        _ => None,
    })
    .parse_next(i)
}

/// A constant; `false` for the orderable ones (no booleans).
fn constant(with_bool: bool) -> impl FnMut(&mut &str) -> PResult<Literal> {
    move |i: &mut &str| {
        ws(i)?;
        let start = *i;
        let lit = alt((
            string_lit.map(Literal::Str),
            timestamp_lit.map(Literal::Timestamp),
            hex_lit.map(Literal::Hex),
            binary_lit.map(Literal::Binary),
            number,
            boolean,
        ))
        .context("a value: 'string', number, true/false, h'…', b'…' or t'…'")
        .parse_next(i)?;
        if !with_bool && matches!(lit, Literal::Bool(_)) {
            return Err(fail_at(
                start,
                "a boolean cannot be compared with <, <=, > or >=",
            ));
        }
        Ok(lit)
    }
}

fn set(i: &mut &str) -> PResult<Vec<Literal>> {
    tok("'(' starting the list of values for IN", '(').parse_next(i)?;
    let mut out = Vec::new();
    if opt(tok("')'", ')')).parse_next(i)?.is_some() {
        return Ok(out);
    }
    out.push(cut(constant(true)(i))?);
    while opt(tok("','", ',')).parse_next(i)?.is_some() {
        out.push(cut(constant(true)(i))?);
    }
    cut(tok("',' or ')'", ')').parse_next(i))?;
    Ok(out)
}

fn object_path(i: &mut &str) -> PResult<ObjectPath> {
    let object_type = tok(
        "an object path such as ipv4-addr:value",
        word.verify(|w: &str| !KEYWORDS.contains(&w)),
    )
    .parse_next(i)?;
    cut(tok("':' after the object type", ':').parse_next(i))?;
    let property = cut(tok(PROPERTY, property_name).parse_next(i))?;
    let mut steps = Vec::new();
    loop {
        if opt(tok("'.'", '.')).parse_next(i)?.is_some() {
            steps.push(Step::Key(cut(tok(PROPERTY, property_name).parse_next(i))?));
        } else if opt(tok("'['", '[')).parse_next(i)?.is_some() {
            let index = cut(tok(
                "a list index: '*' or an integer",
                alt((
                    '*'.value(Step::AnyIndex),
                    int_text.map(|n: &str| Step::Index(n.into())),
                )),
            )
            .parse_next(i))?;
            cut(tok("']' closing the list index", ']').parse_next(i))?;
            steps.push(index);
        } else {
            break;
        }
    }
    Ok(ObjectPath {
        object_type: object_type.to_string(),
        property,
        steps,
    })
}

fn operator(i: &mut &str) -> PResult<Op> {
    alt((
        "==".value(Op::Eq),
        '='.value(Op::Eq),
        "!=".value(Op::Ne),
        "<>".value(Op::Ne),
        "<=".value(Op::Le),
        '<'.value(Op::Lt),
        ">=".value(Op::Ge),
        '>'.value(Op::Gt),
        word.verify_map(|w: &str| match w {
            "IN" => Some(Op::In),
            "LIKE" => Some(Op::Like),
            "MATCHES" => Some(Op::Matches),
            "ISSUBSET" => Some(Op::IsSubset),
            "ISSUPERSET" => Some(Op::IsSuperset),
            _ => None,
        }),
    ))
    .parse_next(i)
}

/// `path [NOT] op value`, once the path has been read.
fn comparison(i: &mut &str, path: ObjectPath) -> PResult<Test> {
    let negated = opt(kw("NOT")).parse_next(i)?.is_some();
    let op = cut(tok(
        "a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)",
        operator,
    )
    .parse_next(i))?;
    ws(i)?;
    let value_at = *i;
    let value = match op {
        Op::Eq | Op::Ne => Value::Literal(cut(constant(true)(i))?),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => Value::Literal(cut(constant(false)(i))?),
        Op::In => Value::Set(cut(set(i))?),
        Op::Like | Op::Matches | Op::IsSubset | Op::IsSuperset => Value::Literal(Literal::Str(
            cut(tok("a 'string'", string_lit).parse_next(i))?,
        )),
    };
    if let Err(message) = check_hash(&path, &value) {
        return Err(fail_at(value_at, message));
    }
    Ok(Test::Compare {
        path,
        negated,
        op,
        value,
    })
}

/// One more level of parentheses, or an error past [`MAX_DEPTH`].
fn deeper(i: &str, depth: usize) -> PResult<usize> {
    if depth >= MAX_DEPTH {
        return Err(fail_at(
            i,
            format!("parentheses nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(depth + 1)
}

fn comp_test(i: &mut &str, depth: usize) -> PResult<CompExpr> {
    alt((
        |i: &mut &str| {
            kw("EXISTS").parse_next(i)?;
            Ok(CompExpr::Test(Test::Exists(cut(object_path(i))?)))
        },
        |i: &mut &str| {
            tok("'('", '(').parse_next(i)?;
            let inner = cut(comp_or(i, deeper(i, depth)?))?;
            cut(tok("')'", ')').parse_next(i))?;
            Ok(CompExpr::Group(Box::new(inner)))
        },
        |i: &mut &str| {
            let path = object_path(i)?;
            Ok(CompExpr::Test(comparison(i, path)?))
        },
    ))
    .parse_next(i)
}

fn comp_and(i: &mut &str, depth: usize) -> PResult<CompExpr> {
    let mut v = vec![comp_test(i, depth)?];
    while opt(kw("AND")).parse_next(i)?.is_some() {
        v.push(cut(comp_test(i, depth))?);
    }
    Ok(if v.len() == 1 {
        v.remove(0)
    } else {
        CompExpr::And(v)
    })
}

fn comp_or(i: &mut &str, depth: usize) -> PResult<CompExpr> {
    let mut v = vec![comp_and(i, depth)?];
    while opt(kw("OR")).parse_next(i)?.is_some() {
        v.push(cut(comp_and(i, depth))?);
    }
    Ok(if v.len() == 1 {
        v.remove(0)
    } else {
        CompExpr::Or(v)
    })
}

fn qualifier(i: &mut &str) -> PResult<Option<Qualifier>> {
    if opt(kw("WITHIN")).parse_next(i)?.is_some() {
        let n = cut(tok(
            "a number of seconds",
            number.verify_map(|n| match n {
                Literal::Int(t) | Literal::Float(t) if !t.starts_with('-') => Some(t),
                _ => None,
            }),
        )
        .parse_next(i))?;
        cut(kw("SECONDS").parse_next(i))?;
        return Ok(Some(Qualifier::Within(n)));
    }
    if opt(kw("REPEATS")).parse_next(i)?.is_some() {
        let n = cut(tok(
            "a whole number of times",
            int_text.verify(|t: &str| !t.starts_with('-')),
        )
        .parse_next(i))?;
        cut(kw("TIMES").parse_next(i))?;
        return Ok(Some(Qualifier::Repeats(n.to_string())));
    }
    if opt(kw("START")).parse_next(i)?.is_some() {
        let start = cut(tok("a timestamp t'…'", timestamp_lit).parse_next(i))?;
        cut(kw("STOP").parse_next(i))?;
        let stop = cut(tok("a timestamp t'…'", timestamp_lit).parse_next(i))?;
        return Ok(Some(Qualifier::StartStop(start, stop)));
    }
    Ok(None)
}

fn obs_unary(i: &mut &str, depth: usize) -> PResult<ObsExpr> {
    let base = alt((
        |i: &mut &str| {
            tok("'['", '[').parse_next(i)?;
            let c = cut(comp_or(i, depth))?;
            cut(tok("']'", ']').parse_next(i))?;
            Ok(ObsExpr::Observation(c))
        },
        |i: &mut &str| {
            tok("'('", '(').parse_next(i)?;
            let e = cut(obs_followed_by(i, deeper(i, depth)?))?;
            cut(tok("')'", ')').parse_next(i))?;
            Ok(ObsExpr::Group(Box::new(e)))
        },
    ))
    .parse_next(i)?;
    let mut quals: Vec<Qualifier> = Vec::new();
    loop {
        ws(i)?;
        let at = *i;
        let Some(q) = qualifier(i)? else { break };
        if matches!(base, ObsExpr::Observation(_))
            && quals.iter().any(|p| p.keyword() == q.keyword())
        {
            return Err(fail_at(
                at,
                format!(
                    "a second {} qualifier on one observation (put the observation in \
                     parentheses to qualify it again)",
                    q.keyword()
                ),
            ));
        }
        quals.push(q);
    }
    Ok(if quals.is_empty() {
        base
    } else {
        ObsExpr::Qualified(Box::new(base), quals)
    })
}

fn obs_and(i: &mut &str, depth: usize) -> PResult<ObsExpr> {
    let mut v = vec![obs_unary(i, depth)?];
    while opt(kw("AND")).parse_next(i)?.is_some() {
        v.push(cut(obs_unary(i, depth))?);
    }
    Ok(if v.len() == 1 {
        v.remove(0)
    } else {
        ObsExpr::And(v)
    })
}

fn obs_or(i: &mut &str, depth: usize) -> PResult<ObsExpr> {
    let mut v = vec![obs_and(i, depth)?];
    while opt(kw("OR")).parse_next(i)?.is_some() {
        v.push(cut(obs_and(i, depth))?);
    }
    Ok(if v.len() == 1 {
        v.remove(0)
    } else {
        ObsExpr::Or(v)
    })
}

fn obs_followed_by(i: &mut &str, depth: usize) -> PResult<ObsExpr> {
    let mut v = vec![obs_or(i, depth)?];
    while opt(kw("FOLLOWEDBY")).parse_next(i)?.is_some() {
        v.push(cut(obs_or(i, depth))?);
    }
    Ok(if v.len() == 1 {
        v.remove(0)
    } else {
        ObsExpr::FollowedBy(v)
    })
}

/// A hash's display name and the test of its form.
type HashForm = (&'static str, fn(&str) -> bool);

/// Hash forms the validator knows, by the upper-cased hash name without hyphens.
fn hash_form(name: &str) -> Option<HashForm> {
    fn hex(s: &str, lens: &[usize]) -> bool {
        lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
    Some(match name {
        "MD5" => ("MD5", |s| hex(s, &[32])),
        "MD6" => ("MD6", |s| hex(s, &[32, 40, 56, 64, 96, 128])),
        "RIPEMD160" => ("RIPEMD-160", |s| hex(s, &[40])),
        "SHA1" => ("SHA-1", |s| hex(s, &[40])),
        "SHA224" => ("SHA-224", |s| hex(s, &[56])),
        "SHA256" => ("SHA-256", |s| hex(s, &[64])),
        "SHA384" => ("SHA-384", |s| hex(s, &[96])),
        "SHA512" => ("SHA-512", |s| hex(s, &[128])),
        "SHA3224" => ("SHA3-224", |s| hex(s, &[56])),
        "SHA3256" => ("SHA3-256", |s| hex(s, &[64])),
        "SHA3384" => ("SHA3-384", |s| hex(s, &[96])),
        "SHA3512" => ("SHA3-512", |s| hex(s, &[128])),
        "WHIRLPOOL" => ("WHIRLPOOL", |s| hex(s, &[128])),
        "SSDEEP" => ("SSDEEP", |s| {
            (1..=128).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/+:.".contains(&b))
        }),
        _ => return None,
    })
}

/// A value compared with `…hashes.<known hash>` must have that hash's form (the validator's
/// rule; it reads a constant's text without its quotes, so `h'…'` or `t'…'` never pass).
fn check_hash(path: &ObjectPath, value: &Value) -> Result<(), String> {
    let has_hashes = path.property == "hashes"
        || path
            .steps
            .iter()
            .any(|s| matches!(s, Step::Key(k) if k == "hashes"));
    let last = match path.steps.last() {
        Some(Step::Key(k)) => k,
        Some(_) => return Ok(()),
        None => &path.property,
    };
    if !has_hashes {
        return Ok(());
    }
    let Some((name, ok)) = hash_form(&last.to_ascii_uppercase().replace('-', "")) else {
        return Ok(());
    };
    let text = |l: &Literal| match l {
        Literal::Str(s) => s.clone(),
        other => other.to_string().replace('\'', ""),
    };
    let literals: Vec<&Literal> = match value {
        Value::Literal(l) => vec![l],
        Value::Set(v) => v.iter().collect(),
    };
    for l in literals {
        let t = text(l);
        if !ok(&t) {
            return Err(format!("{l} is not a valid {name} hash"));
        }
    }
    Ok(())
}

/// Parses a whole pattern.
pub(super) fn pattern(input: &str) -> Result<Pattern, PatternError> {
    // The validator's check, made before it parses: the first token after any '(' is '['.
    let first = input.trim_start_matches(|c: char| is_ws(c) || c == '(');
    if !first.starts_with('[') {
        return Err(error(
            input,
            Expect {
                remaining: first.len(),
                expected: Vec::new(),
                message: Some(
                    "a pattern starts with '[' (after any '('), e.g. [ipv4-addr:value = \
                     '198.51.100.1']"
                        .into(),
                ),
            },
        ));
    }
    let mut i = input;
    let result = (
        |i: &mut &str| obs_followed_by(i, 0),
        tok(
            "AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern",
            eof,
        ),
    )
        .parse_next(&mut i);
    match result {
        Ok((p, _)) => Ok(Pattern(p)),
        Err(ErrMode::Backtrack(e) | ErrMode::Cut(e)) => Err(error(input, e)),
        Err(ErrMode::Incomplete(_)) => unreachable!("complete input"),
    }
}

fn error(input: &str, e: Expect) -> PatternError {
    let offset = input.len().saturating_sub(e.remaining);
    let rest = &input[offset..];
    let found = match rest.chars().next() {
        None => "the end of the pattern".to_string(),
        Some(_) => {
            let snippet: String = rest.chars().take(16).collect();
            let more = if rest.chars().count() > 16 { "…" } else { "" };
            format!("{snippet:?}{more}")
        }
    };
    let message = match (e.message, e.expected.as_slice()) {
        (Some(m), _) => m,
        (None, []) => format!("unexpected {found}"),
        (None, [one]) => format!("expected {one}, found {found}"),
        (None, [init @ .., last]) => {
            format!("expected {} or {last}, found {found}", init.join(", "))
        }
    };
    PatternError { offset, message }
}

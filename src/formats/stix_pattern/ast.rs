//! The syntax tree of a STIX 2.1 pattern and its canonical rendering.
//!
//! The tree keeps what changes meaning or validity and drops what does not: whitespace,
//! comments, the spelling of an operator (`==` is `=`, `<>` is `!=`) and of a quoted or bare
//! property name. Parentheses are kept as [`ObsExpr::Group`] / [`CompExpr::Group`]: the
//! grammar's rule that one observation carries each qualifier kind at most once applies to
//! `[...] WITHIN 1 SECONDS WITHIN 2 SECONDS` but not to `([...]) WITHIN 1 SECONDS WITHIN 2
//! SECONDS`, so dropping them would turn a valid pattern into an invalid one.
//!
//! [`std::fmt::Display`] renders the canonical form: single spaces between tokens, `'`
//! strings escaped with `\'` and `\\` only, numbers as written. Parsing the rendering of a
//! parsed pattern gives the same tree (property-tested in `tests.rs`), and the OASIS
//! validator accepts it (integration test `stix_patterns`).

use std::fmt::{self, Display, Formatter, Write};

/// A whole pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub ObsExpr);

/// An observation expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObsExpr {
    /// `[ comparison ]`: one observation.
    Observation(CompExpr),
    /// `( ... )`.
    Group(Box<ObsExpr>),
    /// Two or more operands (left associative, so a flat list loses nothing). An operand is
    /// never itself an `And`, `Or` or `FollowedBy` without a [`ObsExpr::Group`] around it.
    And(Vec<ObsExpr>),
    /// Two or more operands; an operand is never an `Or` or `FollowedBy` without a group.
    Or(Vec<ObsExpr>),
    /// Two or more operands, in temporal order; an operand is never a `FollowedBy` without
    /// a group.
    FollowedBy(Vec<ObsExpr>),
    /// An [`ObsExpr::Observation`] or [`ObsExpr::Group`] with its qualifiers, in order.
    Qualified(Box<ObsExpr>, Vec<Qualifier>),
}

/// A qualifier on an observation expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`; `n` as written (a non-negative integer or float).
    Within(String),
    /// `REPEATS n TIMES`; `n` as written (a non-negative integer).
    Repeats(String),
    /// `START t'…' STOP t'…'`; the timestamps without `t'` and `'`.
    StartStop(String, String),
}

impl Qualifier {
    /// The qualifier's keyword, for messages and the one-per-kind rule.
    pub fn keyword(&self) -> &'static str {
        match self {
            Qualifier::Within(_) => "WITHIN",
            Qualifier::Repeats(_) => "REPEATS",
            Qualifier::StartStop(..) => "START/STOP",
        }
    }
}

/// A comparison expression (inside `[` `]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompExpr {
    Test(Test),
    /// `( ... )`.
    Group(Box<CompExpr>),
    /// Two or more operands; an operand is never an `And` or `Or` without a group.
    And(Vec<CompExpr>),
    /// Two or more operands; an operand is never an `Or` without a group.
    Or(Vec<CompExpr>),
}

/// One property test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// `path [NOT] op value`.
    Compare {
        path: ObjectPath,
        negated: bool,
        op: Op,
        value: Value,
    },
    /// `EXISTS path`.
    Exists(ObjectPath),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
}

impl Op {
    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "IN",
            Op::Like => "LIKE",
            Op::Matches => "MATCHES",
            Op::IsSubset => "ISSUBSET",
            Op::IsSuperset => "ISSUPERSET",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Literal(Literal),
    /// `( a, b, … )`, the operand of `IN` (may be empty).
    Set(Vec<Literal>),
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A `'…'` string, unescaped.
    Str(String),
    /// An integer as written (optional sign; no leading zeros).
    Int(String),
    /// A float as written (`[+-]?digits*.digits+`).
    Float(String),
    Bool(bool),
    /// `h'…'`: the hex digits (an even number).
    Hex(String),
    /// `b'…'`: the base64 text.
    Binary(String),
    /// `t'…'`: the RFC 3339 timestamp (UTC, `Z`).
    Timestamp(String),
}

/// `object-type:property.key[index]…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub object_type: String,
    /// The first property name (unquoted).
    pub property: String,
    /// Further keys and list indexes.
    pub steps: Vec<Step>,
}

/// One step of an object path after the first property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name` or `.'quoted name'` (unquoted here).
    Key(String),
    /// `[*]`.
    AnyIndex,
    /// `[n]`, `n` as written (may be negative).
    Index(String),
}

/// Words the grammar reserves: they are never identifiers (a property named `AND` must be
/// quoted). `LAST` is reserved by the lexer though no rule uses it.
pub const KEYWORDS: [&str; 19] = [
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "true",
    "false",
    "WITHIN",
    "REPEATS",
    "TIMES",
];

/// Whether `s` can be written as a bare property name (`IdentifierWithoutHyphen`).
pub fn is_bare_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

fn write_str_literal(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('\'')
}

fn write_name(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    if is_bare_name(s) {
        f.write_str(s)
    } else {
        write_str_literal(f, s)
    }
}

fn join<T: Display>(f: &mut Formatter<'_>, items: &[T], sep: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

impl Display for Pattern {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Display for ObsExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ObsExpr::Observation(c) => write!(f, "[{c}]"),
            ObsExpr::Group(e) => write!(f, "({e})"),
            ObsExpr::And(v) => join(f, v, " AND "),
            ObsExpr::Or(v) => join(f, v, " OR "),
            ObsExpr::FollowedBy(v) => join(f, v, " FOLLOWEDBY "),
            ObsExpr::Qualified(e, quals) => {
                e.fmt(f)?;
                for q in quals {
                    write!(f, " {q}")?;
                }
                Ok(())
            }
        }
    }
}

impl Display for Qualifier {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Within(n) => write!(f, "WITHIN {n} SECONDS"),
            Qualifier::Repeats(n) => write!(f, "REPEATS {n} TIMES"),
            Qualifier::StartStop(a, b) => write!(f, "START t'{a}' STOP t'{b}'"),
        }
    }
}

impl Display for CompExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            CompExpr::Test(t) => t.fmt(f),
            CompExpr::Group(e) => write!(f, "({e})"),
            CompExpr::And(v) => join(f, v, " AND "),
            CompExpr::Or(v) => join(f, v, " OR "),
        }
    }
}

impl Display for Test {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Test::Compare {
                path,
                negated,
                op,
                value,
            } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "{path} {not}{} {value}", op.as_str())
            }
            Test::Exists(path) => write!(f, "EXISTS {path}"),
        }
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Literal(l) => l.fmt(f),
            Value::Set(v) => {
                f.write_char('(')?;
                join(f, v, ", ")?;
                f.write_char(')')
            }
        }
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => write_str_literal(f, s),
            Literal::Int(n) | Literal::Float(n) => f.write_str(n),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Hex(h) => write!(f, "h'{h}'"),
            Literal::Binary(b) => write!(f, "b'{b}'"),
            Literal::Timestamp(t) => write!(f, "t'{t}'"),
        }
    }
}

impl Display for ObjectPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object_type)?;
        write_name(f, &self.property)?;
        for step in &self.steps {
            match step {
                Step::Key(k) => {
                    f.write_char('.')?;
                    write_name(f, k)?;
                }
                Step::AnyIndex => f.write_str("[*]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

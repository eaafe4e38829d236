//! Unit tests of the STIX pattern parser, the extraction rule and the canonical rendering.

use super::*;
use grammar::MAX_DEPTH;

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
    let o =
        parse("[email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final.+\\\\.exe$']")
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

fn outcome(p: &str) -> PatternOutcome {
    parse(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn extraction_rule() {
    // IN on a known path is a list of '=': each member is an indicator, nothing is kept.
    let o = outcome("[ipv4-addr:value IN ('198.51.100.1', '198.51.100.2')]");
    assert_eq!(
        o.observables
            .iter()
            .map(Observable::key)
            .collect::<Vec<_>>(),
        ["ipv4:198.51.100.1", "ipv4:198.51.100.2"]
    );
    assert!(o.unsupported.is_empty(), "{:?}", o.unsupported);
    // '==' is '='; bare and quoted hash names alike.
    assert_eq!(
        keys("[file:hashes.md5 == 'D41D8CD98F00B204E9800998ECF8427E' OR file:hashes.'sha1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']").len(),
        2
    );
    // Negations and non-equalities name nothing exactly.
    for p in [
        "[ipv4-addr:value NOT IN ('198.51.100.1')]",
        "[ipv4-addr:value <> '198.51.100.1']",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        "[domain-name:value LIKE '%.example.com']",
        "[EXISTS file:hashes.MD5]",
    ] {
        let o = outcome(p);
        assert!(o.observables.is_empty(), "{p}: {:?}", o.observables);
        assert_eq!(o.unsupported.len(), 1, "{p}: {:?}", o.unsupported);
    }
    // An exact comparison ANDed with a test that has no observable: extracted, and kept.
    let o = outcome(
        "[network-traffic:dst_ref.value = '203.0.113.5' AND network-traffic:dst_port = 443]",
    );
    assert_eq!(keys_of(&o), ["ipv4:203.0.113.5"]);
    assert_eq!(o.unsupported, ["object path network-traffic:dst_port"]);
    // List members by any index, ASN numbers, CIDR values.
    assert_eq!(
        keys(
            "[email-message:to_refs[0].value = 'a@example.org' AND email-message:bcc_refs[*].value = 'b@example.org']"
        ),
        ["email:a@example.org", "email:b@example.org"]
    );
    assert_eq!(keys("[autonomous-system:number = 64496]"), ["asn:AS64496"]);
    assert_eq!(
        keys("[ipv6-addr:value = '2001:db8::/32']"),
        ["cidr:2001:db8::/32"]
    );
    // Each qualifier is a reason to keep the pattern; the values are still extracted.
    let o = outcome(
        "([ipv4-addr:value = '198.51.100.1'] REPEATS 3 TIMES) WITHIN 60 SECONDS START t'2016-01-01T00:00:00Z' STOP t'2016-01-02T00:00:00Z'",
    );
    assert_eq!(keys_of(&o), ["ipv4:198.51.100.1"]);
    assert_eq!(o.unsupported.len(), 3, "{:?}", o.unsupported);
    // A value that is not an observable of the kind: reported, not dropped silently.
    let o = outcome("[ipv4-addr:value = 'not an address']");
    assert!(o.observables.is_empty());
    assert!(
        o.unsupported[0].starts_with("value of ipv4-addr:value"),
        "{:?}",
        o.unsupported
    );
    let o = outcome("[domain-name:value = 5]");
    assert_eq!(o.unsupported, ["non-string value for domain-name:value"]);
}

fn keys_of(o: &PatternOutcome) -> Vec<String> {
    o.observables.iter().map(Observable::key).collect()
}

#[test]
fn canonical_rendering() {
    let cases = [
        (
            "  [ ipv4-addr : value == '198.51.100.1' /* c */ ]  // x",
            "[ipv4-addr:value = '198.51.100.1']",
        ),
        (
            "[x:'a'.'b c'[*]<>'it\\'s \\\\']",
            "[x:a.'b c'[*] != 'it\\'s \\\\']",
        ),
        ("[x:'AND'.'SHA-256' = 1]", "[x:'AND'.'SHA-256' = 1]"),
        (
            "[x:a NOT IN ( +1 , -.5 , true , h'FF' , b'YQ==' )]",
            "[x:a NOT IN (+1, -.5, true, h'FF', b'YQ==')]",
        ),
        ("[x:a IN()]", "[x:a IN ()]"),
        (
            "[a:b=1]AND([c:d=2]OR[e:f=3])FOLLOWEDBY[g:h=4]WITHIN+5SECONDS",
            "[a:b = 1] AND ([c:d = 2] OR [e:f = 3]) FOLLOWEDBY [g:h = 4] WITHIN +5 SECONDS",
        ),
        (
            "([a:b = 1]) WITHIN 1 SECONDS WITHIN 2 SECONDS",
            "([a:b = 1]) WITHIN 1 SECONDS WITHIN 2 SECONDS",
        ),
        (
            "[a:b = 1 OR (c:d = 2 AND (e:f = 3))]",
            "[a:b = 1 OR (c:d = 2 AND (e:f = 3))]",
        ),
    ];
    for (input, canonical) in cases {
        let ast = parse_ast(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(ast.to_string(), canonical, "{input}");
        assert_eq!(parse_ast(canonical).unwrap(), ast, "{canonical}");
    }
}

#[test]
fn precedence_and_associativity() {
    use ast::ObsExpr::*;
    let Pattern(e) =
        parse_ast("[a:b = 1] OR [a:b = 2] AND [a:b = 3] FOLLOWEDBY [a:b = 4]").unwrap();
    let FollowedBy(v) = e else {
        panic!("FOLLOWEDBY binds loosest: {e:?}")
    };
    let Or(w) = &v[0] else {
        panic!("then OR: {:?}", v[0])
    };
    assert!(matches!(w[1], And(_)), "AND binds tightest: {w:?}");
    let Pattern(e) = parse_ast("[a:b = 1 OR a:b = 2 AND a:b = 3]").unwrap();
    let Observation(CompExpr::Or(v)) = e else {
        panic!("{e:?}")
    };
    assert!(matches!(v[1], CompExpr::And(_)), "{v:?}");
}

mod props {
    use super::*;
    use ast::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            1 => any::<String>(),
            1 => Just("AND".to_string()),
            1 => Just("SHA-256".to_string()),
        ]
        .prop_filter("no hash check", |n| n != "hashes")
    }

    fn path() -> impl Strategy<Value = ObjectPath> {
        let step = prop_oneof![
            3 => name().prop_map(Step::Key),
            1 => Just(Step::AnyIndex),
            1 => "[+-]?(0|[1-9][0-9]{0,5})".prop_map(Step::Index),
        ];
        (
            "[a-zA-Z_][a-zA-Z0-9_-]{0,12}"
                .prop_filter("not a keyword", |t| !KEYWORDS.contains(&t.as_str())),
            name(),
            prop::collection::vec(step, 0..4),
        )
            .prop_map(|(object_type, property, steps)| ObjectPath {
                object_type,
                property,
                steps,
            })
    }

    fn literal(with_bool: bool) -> BoxedStrategy<Literal> {
        let bools = if with_bool { 1 } else { 0 };
        prop_oneof![
            bools => any::<bool>().prop_map(Literal::Bool),
            1 => orderable(),
        ]
        .boxed()
    }

    fn orderable() -> impl Strategy<Value = Literal> {
        prop_oneof![
            any::<String>().prop_map(Literal::Str),
            "[+-]?(0|[1-9][0-9]{0,20})".prop_map(Literal::Int),
            "[+-]?[0-9]{0,4}\\.[0-9]{1,4}".prop_map(Literal::Float),
            "([0-9a-fA-F]{2}){0,4}".prop_map(Literal::Hex),
            "([A-Za-z0-9+/]{4}){0,2}([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)"
                .prop_map(Literal::Binary),
            timestamp().prop_map(Literal::Timestamp),
        ]
    }

    fn timestamp() -> impl Strategy<Value = String> {
        "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,3})?Z"
    }

    fn test() -> impl Strategy<Value = Test> {
        let op = prop_oneof![
            Just(Op::Eq),
            Just(Op::Ne),
            Just(Op::Lt),
            Just(Op::Le),
            Just(Op::Gt),
            Just(Op::Ge),
            Just(Op::In),
            Just(Op::Like),
            Just(Op::Matches),
            Just(Op::IsSubset),
            Just(Op::IsSuperset),
        ];
        prop_oneof![
            1 => path().prop_map(Test::Exists),
            6 => (path(), any::<bool>(), op).prop_flat_map(|(path, negated, op)| {
                let value = match op {
                    Op::Eq | Op::Ne => literal(true).prop_map(Value::Literal).boxed(),
                    Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                        literal(false).prop_map(Value::Literal).boxed()
                    }
                    Op::In => prop::collection::vec(literal(true), 0..4)
                        .prop_map(Value::Set)
                        .boxed(),
                    _ => any::<String>()
                        .prop_map(|s| Value::Literal(Literal::Str(s)))
                        .boxed(),
                };
                value.prop_map(move |value| Test::Compare {
                    path: path.clone(),
                    negated,
                    op,
                    value,
                })
            }),
        ]
    }

    fn comp() -> impl Strategy<Value = CompExpr> {
        test()
            .prop_map(CompExpr::Test)
            .prop_recursive(4, 24, 3, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|c| CompExpr::Group(Box::new(c))),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(CompExpr::And),
                    prop::collection::vec(inner, 2..4).prop_map(CompExpr::Or),
                ]
            })
    }

    fn qualifier() -> impl Strategy<Value = Qualifier> {
        prop_oneof![
            "\\+?(0|[1-9][0-9]{0,4})(\\.[0-9]{1,2})?".prop_map(Qualifier::Within),
            "\\+?(0|[1-9][0-9]{0,4})".prop_map(Qualifier::Repeats),
            (timestamp(), timestamp()).prop_map(|(a, b)| Qualifier::StartStop(a, b)),
        ]
    }

    fn obs() -> impl Strategy<Value = ObsExpr> {
        comp()
            .prop_map(ObsExpr::Observation)
            .prop_recursive(4, 16, 3, |inner| {
                prop_oneof![
                    inner.clone().prop_map(|e| ObsExpr::Group(Box::new(e))),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(ObsExpr::And),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(ObsExpr::Or),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(ObsExpr::FollowedBy),
                    (inner, prop::collection::vec(qualifier(), 1..3))
                        .prop_map(|(e, q)| ObsExpr::Qualified(Box::new(e), q)),
                ]
            })
    }

    fn group_comp(c: CompExpr) -> CompExpr {
        CompExpr::Group(Box::new(c))
    }

    /// Puts in the parentheses precedence requires, as a writer of the pattern would.
    fn well_formed_comp(c: CompExpr) -> CompExpr {
        match c {
            CompExpr::And(v) => CompExpr::And(
                v.into_iter()
                    .map(well_formed_comp)
                    .map(|c| match c {
                        CompExpr::And(_) | CompExpr::Or(_) => group_comp(c),
                        c => c,
                    })
                    .collect(),
            ),
            CompExpr::Or(v) => CompExpr::Or(
                v.into_iter()
                    .map(well_formed_comp)
                    .map(|c| match c {
                        CompExpr::Or(_) => group_comp(c),
                        c => c,
                    })
                    .collect(),
            ),
            CompExpr::Group(c) => group_comp(well_formed_comp(*c)),
            t => t,
        }
    }

    fn well_formed(e: ObsExpr) -> ObsExpr {
        use ObsExpr::*;
        let group = |e: ObsExpr| Group(Box::new(e));
        let list = |v: Vec<ObsExpr>, needs_group: fn(&ObsExpr) -> bool| -> Vec<ObsExpr> {
            v.into_iter()
                .map(well_formed)
                .map(|e| {
                    if needs_group(&e) {
                        Group(Box::new(e))
                    } else {
                        e
                    }
                })
                .collect()
        };
        match e {
            Observation(c) => Observation(well_formed_comp(c)),
            Group(e) => group(well_formed(*e)),
            And(v) => And(list(v, |e| matches!(e, And(_) | Or(_) | FollowedBy(_)))),
            Or(v) => Or(list(v, |e| matches!(e, Or(_) | FollowedBy(_)))),
            FollowedBy(v) => FollowedBy(list(v, |e| matches!(e, FollowedBy(_)))),
            Qualified(base, quals) => {
                let base = well_formed(*base);
                let kinds: std::collections::HashSet<_> =
                    quals.iter().map(Qualifier::keyword).collect();
                let base = match base {
                    Observation(_) if kinds.len() == quals.len() => base,
                    Group(_) => base,
                    other => group(other),
                };
                Qualified(Box::new(base), quals)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// render(parse(x)) parses to the same tree: from trees, every construct.
        #[test]
        fn rendering_parses_back_to_the_same_tree(e in obs()) {
            let ast = Pattern(well_formed(e));
            let text = ast.to_string();
            let back = parse_ast(&text);
            prop_assert_eq!(back.as_ref(), Ok(&ast), "{}", text);
            let _ = extract(&ast);
        }

        /// Any text: an answer, never a panic; what parses renders and parses back the same.
        #[test]
        fn any_text_parses_or_errors(
            s in prop_oneof![
                any::<String>(),
                "[\\[\\]() ':=<>!,.a-zA-Z0-9*+\\-\\\\]{0,60}",
                "\\[[a-z]{1,3}:[a-z]{1,3} (=|IN|LIKE) ('[a-z]{0,3}'|[0-9]|\\(\\))\\]( (AND|OR|FOLLOWEDBY) \\[[a-z]:[a-z] = 1\\]){0,2}( WITHIN 5 SECONDS)?",
            ]
        ) {
            match parse_ast(&s) {
                Ok(ast) => {
                    let text = ast.to_string();
                    let back = parse_ast(&text);
                    prop_assert_eq!(back.as_ref(), Ok(&ast), "{}", text);
                }
                Err(e) => prop_assert!(e.offset <= s.len() && s.is_char_boundary(e.offset)),
            }
        }
    }
}

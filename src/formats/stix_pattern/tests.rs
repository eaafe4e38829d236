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

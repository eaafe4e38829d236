//! Free text → observables: advisories, e-mails, blog posts, Japanese bulletins.
//!
//! The text is NFKC-normalised first (full-width `．`, `／`, `：` and digits become ASCII, so
//! Japanese bulletins read like any other), then refanged (`hxxp`, `[.]`, `(.)`, `{.}`,
//! `[:]//`, `[@]`, ` dot `), then scanned once per kind. Matches are returned in order of
//! first appearance, deduplicated by normalised value.
//!
//! False positives cost analysts more than misses, so:
//! - domains must end in an IANA top-level domain (`tlds.txt`), and two-label names whose
//!   "TLD" is also a common file extension (`invoice.zip`, `run.sh`, `main.py`) are skipped;
//! - dotted quads right after `version`/`ver`/`v` are version numbers, not addresses;
//! - hashes must be a whole hex token (a 32-digit run inside a 64-digit one is not an MD5);
//! - dotted quads that are part of a longer dotted number (`1.2.3.4.5`) are skipped;
//! - `as`/`As` followed by a space and a number is prose ("just as 2014"): only `AS 1234`,
//!   `ASN 1234` and the glued forms (`as1234`, `ASN1234`) are AS numbers, and never inside a
//!   host name (`static.as29550.net`);
//! - a scheme-less URL (`example.com/path/file.php`) needs a known TLD, a path, and must not
//!   itself be part of a path (`/var/www/example.com/x`).
//!
//! What reporters write is not always what a scanner expects, so a few spellings are read
//! as the observable they stand for: `CVE 2014-1001` is `CVE-2014-1001`; a URL carried in
//! another URL's query (`?url=http%3A%2F%2F...`, percent-encoded or not) is its own item, since
//! the redirector and the destination are both indicators; an address written with its
//! network (`192.0.2.77/24`) yields the network and, as its own item, the address, since the
//! host is what was seen and the network is what is blocked.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use crate::model::{Observable, ObservableKind};

const TLDS_TXT: &str = include_str!("tlds.txt");

static TLDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    TLDS_TXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// TLDs that are also everyday file extensions; a bare `name.ext` with one of these is far
/// more often a file than a domain.
const FILE_LIKE_TLDS: &[&str] = &[
    "zip", "mov", "py", "sh", "pl", "md", "rs", "ps", "pm", "so", "app", "exe", "sys", "doc",
    "cab", "dll", "bat", "js", "jar", "msi", "bin", "dat", "log", "ini", "cfg", "txt", "php",
    "pdf", "xls", "rar", "scr", "lnk", "vbs", "hta", "tmp", "iso", "img", "png", "jpg", "gif",
];

/// Whether `tld` (lower case, punycode) is an IANA top-level domain.
pub fn is_known_tld(tld: &str) -> bool {
    TLDS.contains(tld)
}

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect("static regex compiles"));
    };
}

re!(
    RE_HXXP,
    r"(?i)(?-u:\b)(h[xX*]{2}p(s?)|fxp|hxxxp)(\[?:\]?)?(\[?:\]?//|\[://\])"
);
re!(
    RE_SCHEME_BRACKET,
    r"(?i)(?-u:\b)(https?|ftp)\[:\]//|(?-u:\b)(https?|ftp)\[://\]"
);
re!(
    RE_DOT_BRACKET,
    r"\[\.\]|\(\.\)|\{\.\}|\[dot\]|\(dot\)|\{dot\}|\[DOT\]|\(DOT\)"
);
re!(
    RE_AT_BRACKET,
    r"\[@\]|\(@\)|\{@\}|\[at\]|\(at\)|\[AT\]|\(AT\)"
);
re!(
    RE_SPACE_DOT,
    r"(?-u:\b)([A-Za-z0-9-]+) (?:dot|DOT) ([A-Za-z0-9-]+)(?-u:\b)"
);

re!(
    RE_URL,
    // CJK punctuation, kana and ideographs end a URL: Japanese prose runs straight on
    // after a URL without a space (【http://x/】と...).
    r#"(?i)(?-u:\b)(?:https?|ftps?|sftp|wss?)://[^\s<>"'`{}|\\^\[\]\x{3000}-\x{30FF}\x{3400}-\x{9FFF}\x{FF00}-\x{FFEF}]+"#
);
re!(
    RE_EMAIL,
    r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}(?-u:\b)"
);
re!(
    RE_DOMAIN,
    r"(?i)(?-u:\b)(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+(?:[a-z][a-z0-9-]{0,61}[a-z0-9])(?-u:\b)"
);
re!(
    RE_IPV4,
    r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:/(?:3[0-2]|[12]?[0-9]))?(?-u:\b)"
);
re!(
    RE_IPV6,
    r"(?i)[0-9a-f:]*:[0-9a-f:]*:[0-9a-f:.]*(?:/[0-9]{1,3})?"
);
re!(RE_HEX, r"[0-9a-fA-F]{32,}");
re!(RE_CVE, r"(?i)(?-u:\b)CVE[- ][0-9]{4}-[0-9]{4,19}(?-u:\b)");
// `AS1234`, `ASN1234`, `as1234`, `AS 1234`, `ASN 1234`, `ASN: 1234`; group 1 is the
// prefix as written (to refuse lower-case `as 2014`), group 2 the number.
re!(RE_ASN, r"(?i)(?-u:\b)(ASN?:? ?)([0-9]{1,10})(?-u:\b)");
// A host name with a path but no scheme; a port is allowed. The path stops where a URL does.
re!(
    RE_SCHEMELESS_URL,
    r#"(?i)(?-u:\b)((?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9])(?::[0-9]{1,5})?/[^\s<>"'`{}|\\^\[\]\x{3000}-\x{30FF}\x{3400}-\x{9FFF}\x{FF00}-\x{FFEF}]+"#
);
re!(RE_TECHNIQUE, r"(?-u:\b)T[0-9]{4}(?:\.[0-9]{3})?(?-u:\b)");

/// Refangs defanged indicators so that the scanners see ordinary values.
pub fn refang(text: &str) -> String {
    let t = RE_HXXP.replace_all(text, |c: &regex::Captures| {
        let scheme = if c[1].to_ascii_lowercase().starts_with('f') {
            "ftp".to_string()
        } else {
            format!("http{}", &c[2])
        };
        format!("{scheme}://")
    });
    let t = RE_SCHEME_BRACKET.replace_all(&t, |c: &regex::Captures| {
        format!("{}://", c.get(1).or(c.get(2)).map_or("", |m| m.as_str()))
    });
    let t = RE_DOT_BRACKET.replace_all(&t, ".");
    let t = RE_AT_BRACKET.replace_all(&t, "@");
    let t = RE_SPACE_DOT.replace_all(&t, |c: &regex::Captures| {
        // Only "evil dot com" where the right side is a TLD; "the dot product" stays prose.
        if is_known_tld(&c[2].to_ascii_lowercase()) {
            format!("{}.{}", &c[1], &c[2])
        } else {
            c[0].to_string()
        }
    });
    t.into_owned()
}

/// Extracts observables from free text, in order of first appearance, deduplicated.
pub fn extract(text: &str) -> Vec<Observable> {
    let normalised: String = text.nfkc().collect();
    let text = refang(&normalised);
    let mut found: Vec<(usize, Observable)> = Vec::new();

    for m in RE_URL.find_iter(&text) {
        let raw = trim_url(m.as_str());
        if let Ok(o) = Observable::parse(ObservableKind::Url, raw) {
            found.push((m.start(), o));
        }
        for inner in embedded_urls(raw, 3) {
            found.push((m.start(), inner));
        }
    }
    for c in RE_SCHEMELESS_URL.captures_iter(&text) {
        let m = c.get(0).expect("group 0 always matches");
        if let Some(o) = schemeless_url(&text, m.start(), m.as_str(), &c[1]) {
            found.push((m.start(), o));
        }
    }
    for m in RE_EMAIL.find_iter(&text) {
        let domain = m.as_str().rsplit('@').next().unwrap_or_default();
        if domain_ok(domain)
            && let Ok(o) = Observable::parse(ObservableKind::Email, m.as_str())
        {
            found.push((m.start(), o));
        }
    }
    for m in RE_DOMAIN.find_iter(&text) {
        let mut s = m.as_str();
        let mut start = m.start();
        // In a percent-encoded URL (`%2Fevil.example.com%2F`) the two hex digits of the
        // escape are not part of the name.
        if text[..start].ends_with('%')
            && s.len() > 2
            && s.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
        {
            s = &s[2..];
            start += 2;
            if !s.contains('.') || s.starts_with(['.', '-']) {
                continue;
            }
        }
        let after = &text[m.end()..];
        // `evil.com@` is the tail of an e-mail local part only when preceded by it; a
        // domain directly followed by `(` or another word char is code (`obj.method(`).
        if after.starts_with('(') || after.starts_with('@') {
            continue;
        }
        if text[..start].ends_with('@') && !domain_ok(s) {
            continue;
        }
        if !domain_ok(s) || looks_like_file(s, &text[..start]) {
            continue;
        }
        if let Ok(o) = Observable::parse(ObservableKind::Domain, s) {
            found.push((start, o));
        }
    }
    for m in RE_IPV4.find_iter(&text) {
        let before = &text[..m.start()];
        let after = &text[m.end()..];
        if before.ends_with('.')
            && before[..before.len() - 1].ends_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        if is_version_context(before) {
            continue;
        }
        let s = m.as_str();
        match s.split_once('/') {
            Some((addr, _)) => {
                if let Ok(net) = Observable::parse(ObservableKind::Cidr, s) {
                    found.push((m.start(), net));
                    if let Some(host) = host_in_network(ObservableKind::Ipv4, addr, s) {
                        found.push((m.start(), host));
                    }
                }
            }
            None => {
                if let Ok(o) = Observable::parse(ObservableKind::Ipv4, s) {
                    found.push((m.start(), o));
                }
            }
        }
    }
    for m in RE_IPV6.find_iter(&text) {
        for o in ipv6_candidate(&text, m.start(), m.as_str()) {
            found.push((m.start(), o));
        }
    }
    for m in RE_HEX.find_iter(&text) {
        let kind = match m.len() {
            32 => ObservableKind::Md5,
            40 => ObservableKind::Sha1,
            64 => ObservableKind::Sha256,
            _ => continue,
        };
        // The run is maximal (greedy), so it is never part of a longer hex string. It must
        // not continue a word before it ("x0123…") or a token joined by '-' / '_' (GUID-like
        // ids); a non-hex letter right after is tolerated ("…8427ehash" in logs).
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || matches!(after, Some('-' | '_'))
        {
            continue;
        }
        if let Ok(o) = Observable::parse(kind, m.as_str()) {
            found.push((m.start(), o));
        }
    }
    for m in RE_CVE.find_iter(&text) {
        if let Ok(o) = Observable::parse(ObservableKind::Cve, &m.as_str().replacen(' ', "-", 1)) {
            found.push((m.start(), o));
        }
    }
    for c in RE_ASN.captures_iter(&text) {
        let whole = c.get(0).expect("group 0 always matches");
        if let Some(o) = asn_candidate(&text, whole.start(), whole.end(), &c[1], &c[2]) {
            found.push((whole.start(), o));
        }
    }
    for m in RE_TECHNIQUE.find_iter(&text) {
        if let Ok(o) = Observable::parse(ObservableKind::AttackTechnique, m.as_str()) {
            found.push((m.start(), o));
        }
    }

    found.sort_by_key(|(pos, _)| *pos);
    let mut seen = HashSet::new();
    found
        .into_iter()
        .filter_map(|(_, o)| seen.insert(o.clone()).then_some(o))
        .collect()
}

/// URLs carried in the query of another URL (`redirect?url=http%3A%2F%2Fevil...`), decoded,
/// and theirs in turn up to `depth` levels: an open redirector hides the destination there.
fn embedded_urls(raw: &str, depth: u8) -> Vec<Observable> {
    let mut out = Vec::new();
    if depth == 0 {
        return out;
    }
    let Ok(outer) = url::Url::parse(raw) else {
        return out;
    };
    for (_, value) in outer.query_pairs() {
        let v = value.trim();
        let lower = v.get(..8).unwrap_or(v).to_ascii_lowercase();
        if !(lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("ftp://"))
        {
            continue;
        }
        if let Ok(o) = Observable::parse(ObservableKind::Url, v) {
            out.push(o);
            out.extend(embedded_urls(v, depth - 1));
        }
    }
    out
}

/// `example.com/path/file.php` as the URL `http://example.com/path/file.php`, when it stands
/// alone: not the tail of a URL with a scheme, not a path component, not an e-mail's domain.
fn schemeless_url(text: &str, start: usize, raw: &str, host: &str) -> Option<Observable> {
    let before = text[..start].chars().next_back();
    if before.is_some_and(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '/' | '\\' | ':' | '@' | '.' | '-' | '_' | '%' | '=')
    }) {
        return None;
    }
    if !domain_ok(host) || looks_like_file(host, &text[..start]) {
        return None;
    }
    let raw = trim_url(raw);
    let path = &raw[raw.find('/')?..];
    // A lone slash ("example.com/") or a bare "and/or" style join is not a path worth a URL.
    if path.len() < 2 {
        return None;
    }
    Observable::parse(ObservableKind::Url, &format!("http://{raw}")).ok()
}

/// The host written in `addr/prefix` when it is not the network address itself.
fn host_in_network(kind: ObservableKind, addr: &str, cidr: &str) -> Option<Observable> {
    let net: ipnet::IpNet = cidr.parse().ok()?;
    (net.trunc() != net).then(|| Observable::parse(kind, addr).ok())?
}

/// An AS number written `AS1234`, `ASN 1234`, `as1234`; never prose (`as 2014`) or part of a
/// host name (`static.as29550.net`) or a word (`AS1234foobar`).
fn asn_candidate(
    text: &str,
    start: usize,
    end: usize,
    prefix: &str,
    digits: &str,
) -> Option<Observable> {
    let spaced = prefix.contains([' ', ':']);
    let word = prefix.trim_end_matches([' ', ':']);
    // With a space, "as" must be written as the abbreviation: upper case, or ASN in any case.
    if spaced && word != "AS" && !word.eq_ignore_ascii_case("asn") {
        return None;
    }
    let before = text[..start].chars().next_back();
    if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '@'))
    {
        return None;
    }
    let after = &text[end..];
    if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || (after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_alphanumeric()))
    {
        return None;
    }
    Observable::parse(ObservableKind::Asn, &format!("AS{digits}")).ok()
}

/// Trailing punctuation belongs to the sentence, not to the URL; a closing bracket belongs
/// to the URL only when the URL opened one.
fn trim_url(raw: &str) -> &str {
    let mut s = raw;
    loop {
        let Some(last) = s.chars().next_back() else {
            return s;
        };
        let strip = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '*' => true,
            ')' => s.matches('(').count() < s.matches(')').count(),
            c if !c.is_ascii() => true,
            _ => false,
        };
        if !strip {
            return s;
        }
        s = &s[..s.len() - last.len_utf8()];
    }
}

fn domain_ok(domain: &str) -> bool {
    let lower = domain.to_ascii_lowercase();
    let Some(tld) = lower.rsplit('.').next() else {
        return false;
    };
    is_known_tld(tld)
}

fn looks_like_file(domain: &str, before: &str) -> bool {
    let lower = domain.to_ascii_lowercase();
    let labels = lower.split('.').count();
    let tld = lower.rsplit('.').next().unwrap_or_default();
    // A path component (`C:\x\setup.exe`, `/tmp/run.sh`) is a file name.
    if before.ends_with(['\\', '/']) && !before.ends_with("//") {
        return FILE_LIKE_TLDS.contains(&tld) || labels == 2 && !before.ends_with("://");
    }
    labels == 2 && FILE_LIKE_TLDS.contains(&tld)
}

fn is_version_context(before: &str) -> bool {
    let t = before.trim_end();
    if t.ends_with("バージョン") {
        return true;
    }
    let word: String = t
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    matches!(
        word.to_ascii_lowercase().as_str(),
        "version" | "ver" | "ver." | "v" | "v." | "rev" | "build" | "firmware"
    )
}

fn ipv6_candidate(text: &str, start: usize, s: &str) -> Vec<Observable> {
    ipv6_observables(text, start, s).unwrap_or_default()
}

fn ipv6_observables(text: &str, start: usize, s: &str) -> Option<Vec<Observable>> {
    // Must stand alone: not glued to other word characters.
    let before = text[..start].chars().next_back();
    if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == ':') {
        return None;
    }
    let after = text[start + s.len()..].chars().next();
    if after.is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let s = s.trim_end_matches(['.', ':']);
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    if addr.matches(':').count() < 2 || addr == "::" {
        return None;
    }
    // Times (12:30:45) and MAC addresses do not parse as IPv6; short junk like `a::b` would.
    if addr.chars().filter(|c| c.is_ascii_hexdigit()).count() < 3 {
        return None;
    }
    addr.parse::<std::net::Ipv6Addr>().ok()?;
    match prefix {
        Some(_) => {
            let net = Observable::parse(ObservableKind::Cidr, s).ok()?;
            Some(
                std::iter::once(net)
                    .chain(host_in_network(ObservableKind::Ipv6, addr, s))
                    .collect(),
            )
        }
        None => Some(vec![Observable::parse(ObservableKind::Ipv6, addr).ok()?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        extract(text).iter().map(Observable::key).collect()
    }

    #[test]
    fn refangs_common_forms() {
        assert_eq!(
            keys("hxxp://evil[.]example[.]com/a and bad(.)example{.}org"),
            [
                "url:http://evil.example.com/a",
                "domain:evil.example.com",
                "domain:bad.example.org"
            ]
        );
        assert_eq!(
            keys("hxxps[:]//x.example.net"),
            ["url:https://x.example.net/", "domain:x.example.net"]
        );
        assert_eq!(
            keys("mail bob[@]example.com"),
            ["email:bob@example.com", "domain:example.com"]
        );
        assert_eq!(keys("go to evil dot com now"), ["domain:evil.com"]);
        assert!(keys("the dot product").is_empty());
    }

    #[test]
    fn japanese_punctuation_does_not_leak() {
        let k = keys(
            "C2サーバ【evil.example.jp】へ通信。IPアドレスは１９２．０．２．１０。ＵＲＬはhttps://evil.example.jp/a。",
        );
        assert_eq!(
            k,
            [
                "domain:evil.example.jp",
                "ipv4:192.0.2.10",
                "url:https://evil.example.jp/a"
            ]
        );
        assert_eq!(keys("詳細はCVE-2024-12345を参照"), ["cve:CVE-2024-12345"]);
    }

    #[test]
    fn avoids_classic_false_positives() {
        assert!(keys("open invoice.pdf or setup.exe then run.sh and archive.zip").is_empty());
        assert!(keys("upgrade to version 1.2.3.4 now").is_empty());
        assert!(keys("OID 1.2.3.4.5.6").is_empty());
        let h64 = "a".repeat(64);
        let h96 = "b".repeat(96);
        assert_eq!(keys(&format!("{h64} {h96}")), [format!("sha256:{h64}")]);
        assert!(keys("meeting at 12:30:45, mac 00:11:22:33:44:55").is_empty());
    }

    #[test]
    fn finds_every_kind() {
        let k = keys(
            "203.0.113.0/24 2001:db8::1 fe80::/10 user@mail.example.org \
             d41d8cd98f00b204e9800998ecf8427e da39a3ee5e6b4b0d3255bfef95601890afd80709 \
             T1566.001 T1059 cve-2021-44228 www.example.co.jp, 198.51.100.2.",
        );
        assert_eq!(
            k,
            [
                "cidr:203.0.113.0/24",
                "ipv6:2001:db8::1",
                "cidr:fe80::/10",
                "email:user@mail.example.org",
                "domain:mail.example.org",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
                "attack-technique:T1566.001",
                "attack-technique:T1059",
                "cve:CVE-2021-44228",
                "domain:www.example.co.jp",
                "ipv4:198.51.100.2",
            ]
        );
    }

    #[test]
    fn urls_lose_sentence_punctuation() {
        assert_eq!(
            keys("(see https://example.com/a_(b).) and 'https://example.org/x'."),
            [
                "url:https://example.com/a_(b)",
                "domain:example.com",
                "url:https://example.org/x",
                "domain:example.org"
            ]
        );
    }

    // Found by `fuzz/fuzz_targets/extract.rs` (minimised): every extracted observable is
    // canonical, so parsing its value again gives it back.
    #[test]
    fn fuzz_extracted_url_is_canonical() {
        let text = "some text ::ffff:192.'http://www.virustotal0..:/c5.1302..12158).38";
        let found = extract(text);
        assert!(!found.is_empty());
        for o in found {
            assert_eq!(Observable::parse(o.kind(), o.value()).unwrap(), o);
        }
    }
}

//! Observables: one typed, normalised value.
//!
//! Every value that enters musubi — from a member's submission, a STIX pattern, a MISP
//! attribute or a sentence of an advisory — is parsed here, so that `Example.COM.` from one
//! member and `example.com` from another are the same observable and correlate. The
//! normalised text is the identity of an observable: two observables are equal exactly when
//! their kind and normalised value are equal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The kinds of observable musubi understands, with the names used on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservableKind {
    Ipv4,
    Ipv6,
    Cidr,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Ssdeep,
    Filename,
    Cve,
    Asn,
    AttackTechnique,
    MalwareFamily,
}

impl ObservableKind {
    /// Every kind, in a stable order (used for listings and schema checks).
    pub const ALL: [ObservableKind; 15] = [
        ObservableKind::Ipv4,
        ObservableKind::Ipv6,
        ObservableKind::Cidr,
        ObservableKind::Domain,
        ObservableKind::Url,
        ObservableKind::Email,
        ObservableKind::Md5,
        ObservableKind::Sha1,
        ObservableKind::Sha256,
        ObservableKind::Ssdeep,
        ObservableKind::Filename,
        ObservableKind::Cve,
        ObservableKind::Asn,
        ObservableKind::AttackTechnique,
        ObservableKind::MalwareFamily,
    ];

    /// The wire name (`ipv4`, `attack-technique`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ObservableKind::Ipv4 => "ipv4",
            ObservableKind::Ipv6 => "ipv6",
            ObservableKind::Cidr => "cidr",
            ObservableKind::Domain => "domain",
            ObservableKind::Url => "url",
            ObservableKind::Email => "email",
            ObservableKind::Md5 => "md5",
            ObservableKind::Sha1 => "sha1",
            ObservableKind::Sha256 => "sha256",
            ObservableKind::Ssdeep => "ssdeep",
            ObservableKind::Filename => "filename",
            ObservableKind::Cve => "cve",
            ObservableKind::Asn => "asn",
            ObservableKind::AttackTechnique => "attack-technique",
            ObservableKind::MalwareFamily => "malware-family",
        }
    }
}

impl fmt::Display for ObservableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObservableKind {
    type Err = ObservableError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let kind = match lower.as_str() {
            "ipv4" | "ip" | "ipv4-addr" => ObservableKind::Ipv4,
            "ipv6" | "ipv6-addr" => ObservableKind::Ipv6,
            "cidr" | "network" => ObservableKind::Cidr,
            "domain" | "hostname" | "domain-name" | "fqdn" => ObservableKind::Domain,
            "url" | "uri" => ObservableKind::Url,
            "email" | "email-addr" | "e-mail" => ObservableKind::Email,
            "md5" => ObservableKind::Md5,
            "sha1" | "sha-1" => ObservableKind::Sha1,
            "sha256" | "sha-256" => ObservableKind::Sha256,
            "ssdeep" => ObservableKind::Ssdeep,
            "filename" | "file-name" | "file" => ObservableKind::Filename,
            "cve" | "vulnerability" => ObservableKind::Cve,
            "asn" | "as" | "autonomous-system" => ObservableKind::Asn,
            "attack-technique" | "attack-pattern" | "technique" => ObservableKind::AttackTechnique,
            "malware-family" | "malware" => ObservableKind::MalwareFamily,
            _ => {
                return Err(ObservableError::UnknownKind {
                    kind: s.to_string(),
                });
            }
        };
        Ok(kind)
    }
}

/// Why a value is not a valid observable of the kind it claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservableError {
    #[error(
        "unknown observable type {kind:?} (expected one of: ipv4, ipv6, cidr, domain, url, email, md5, sha1, sha256, ssdeep, filename, cve, asn, attack-technique, malware-family)"
    )]
    UnknownKind { kind: String },
    #[error("empty value")]
    Empty,
    #[error("{kind} value {value:?} is invalid: {reason}")]
    Invalid {
        kind: ObservableKind,
        value: String,
        reason: &'static str,
    },
}

/// A typed value in its canonical text form.
///
/// # Invariants
/// `value` is the output of [`Observable::parse`] for `kind`; the only way to build one is
/// through `parse`, so parsing an observable's own value again returns it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Observable {
    /// `type` on the wire, as in submissions.
    #[serde(rename = "type")]
    kind: ObservableKind,
    /// Shared, not copied, when an observable is cloned: the correlation snapshot hands
    /// the same values to hundreds of thousands of campaigns' evidence.
    value: Arc<str>,
}

impl<'de> Deserialize<'de> for Observable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            // Stored bodies of early versions say `kind`.
            #[serde(rename = "type", alias = "kind")]
            kind: ObservableKind,
            value: String,
        }
        let raw = Raw::deserialize(d)?;
        Observable::parse(raw.kind, &raw.value).map_err(serde::de::Error::custom)
    }
}

const MAX_VALUE_LEN: usize = 8192;

impl Observable {
    /// Parses and normalises `raw` as an observable of `kind`.
    pub fn parse(kind: ObservableKind, raw: &str) -> Result<Observable, ObservableError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ObservableError::Empty);
        }
        let invalid = |reason: &'static str| ObservableError::Invalid {
            kind,
            value: truncate(raw, 120),
            reason,
        };
        if raw.len() > MAX_VALUE_LEN {
            return Err(invalid("longer than 8192 bytes"));
        }
        let value = match kind {
            ObservableKind::Ipv4 => Ipv4Addr::from_str(raw)
                .map_err(|_| invalid("not a dotted-quad IPv4 address"))?
                .to_string(),
            ObservableKind::Ipv6 => {
                let raw = raw.trim_start_matches('[').trim_end_matches(']');
                Ipv6Addr::from_str(raw)
                    .map_err(|_| invalid("not an IPv6 address"))?
                    .to_string()
            }
            ObservableKind::Cidr => normalise_cidr(raw).map_err(invalid)?,
            ObservableKind::Domain => normalise_domain(raw).map_err(invalid)?,
            ObservableKind::Url => normalise_url(raw).map_err(invalid)?,
            ObservableKind::Email => normalise_email(raw).map_err(invalid)?,
            ObservableKind::Md5 => normalise_hex(raw, 32).map_err(invalid)?,
            ObservableKind::Sha1 => normalise_hex(raw, 40).map_err(invalid)?,
            ObservableKind::Sha256 => normalise_hex(raw, 64).map_err(invalid)?,
            ObservableKind::Ssdeep => normalise_ssdeep(raw).map_err(invalid)?,
            ObservableKind::Filename => normalise_filename(raw).map_err(invalid)?,
            ObservableKind::Cve => normalise_cve(raw).map_err(invalid)?,
            ObservableKind::Asn => normalise_asn(raw).map_err(invalid)?,
            ObservableKind::AttackTechnique => normalise_technique(raw).map_err(invalid)?,
            ObservableKind::MalwareFamily => normalise_family(raw).map_err(invalid)?,
        };
        Ok(Observable {
            kind,
            value: value.into(),
        })
    }

    /// Rebuilds an observable the store has kept in normalised form, without parsing it
    /// again (start-up reads millions of them).
    pub(crate) fn from_stored(kind: ObservableKind, value: String) -> Observable {
        Observable {
            kind,
            value: value.into(),
        }
    }

    /// Parses with the kind given by name (`"sha256"`, `"domain"`, ...).
    pub fn parse_named(kind: &str, raw: &str) -> Result<Observable, ObservableError> {
        Observable::parse(kind.parse()?, raw)
    }

    pub fn kind(&self) -> ObservableKind {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// `kind:value`, the key used by the index and the correlation graph.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.value)
    }

    /// The IP address, for ipv4 and ipv6 observables.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.kind {
            ObservableKind::Ipv4 | ObservableKind::Ipv6 => self.value.parse().ok(),
            _ => None,
        }
    }

    /// The host of a URL as an observable of its own (a URL implies its host).
    pub fn url_host(&self) -> Option<Observable> {
        if self.kind != ObservableKind::Url {
            return None;
        }
        let url = url::Url::parse(&self.value).ok()?;
        match url.host()? {
            url::Host::Domain(d) => Observable::parse(ObservableKind::Domain, d).ok(),
            url::Host::Ipv4(ip) => Some(Observable {
                kind: ObservableKind::Ipv4,
                value: ip.to_string().into(),
            }),
            url::Host::Ipv6(ip) => Some(Observable {
                kind: ObservableKind::Ipv6,
                value: ip.to_string().into(),
            }),
        }
    }
}

impl fmt::Display for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn normalise_cidr(raw: &str) -> Result<String, &'static str> {
    let net: ipnet::IpNet = raw
        .parse()
        .map_err(|_| "not an address/prefix-length network such as 192.0.2.0/24")?;
    // The network address, not the host the reporter happened to write.
    Ok(net.trunc().to_string())
}

/// Lower case, IDNA (punycode) form, no trailing dot.
pub(crate) fn normalise_domain(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() {
        return Err("empty domain name");
    }
    if trimmed.contains(['/', ':', '@', ' ', '\\', '?', '#']) {
        return Err("contains characters that cannot appear in a domain name");
    }
    let ascii =
        idna::domain_to_ascii(trimmed).map_err(|_| "not a valid internationalised domain name")?;
    if ascii.len() > 253 {
        return Err("longer than 253 characters");
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("needs at least two labels (name.tld)");
    }
    for label in &labels {
        if label.is_empty() {
            return Err("has an empty label");
        }
        if label.len() > 63 {
            return Err("has a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("has a label with characters other than letters, digits, '-' and '_'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label that starts or ends with '-'");
        }
    }
    let tld = labels[labels.len() - 1];
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err("top-level label is numeric (an IP address is not a domain)");
    }
    Ok(ascii)
}

fn normalise_url(raw: &str) -> Result<String, &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL (scheme://host/...)")?;
    if !url.has_host() {
        return Err("URL has no host");
    }
    if !matches!(
        url.scheme(),
        "http" | "https" | "ftp" | "ftps" | "sftp" | "ws" | "wss" | "tcp" | "udp" | "smb" | "ssh"
    ) {
        return Err("URL scheme is not a network scheme (http, https, ftp, ws, ...)");
    }
    // `url` already lower-cases scheme and host, applies IDNA, drops default ports and
    // normalises the path's percent-encoding; a bare origin gets its "/" path.
    let mut url = url;
    url.set_fragment(None);
    if let Some(url::Host::Domain(d)) = url.host() {
        // Every trailing dot, not one: `host..` loses one dot per parse otherwise, and the
        // value would not be canonical.
        let d = d.trim_end_matches('.').to_string();
        if d.is_empty() {
            return Err("URL host is empty");
        }
        url.set_host(Some(&d)).map_err(|_| "URL host is invalid")?;
    }
    Ok(url.to_string())
}

fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let raw = raw
        .strip_prefix("mailto:")
        .unwrap_or(raw)
        .trim_matches(|c| c == '<' || c == '>');
    let (local, domain) = raw.rsplit_once('@').ok_or("has no '@'")?;
    if local.is_empty() || local.len() > 64 {
        return Err("local part is empty or longer than 64 characters");
    }
    if local.contains([' ', '@', '<', '>', '(', ')', ',', ';', ':', '\\', '"']) {
        return Err("local part contains characters that need quoting");
    }
    let domain = normalise_domain(domain).map_err(|_| "domain part is not a valid domain")?;
    // Local parts are case-sensitive in theory and case-insensitive in every real mailbox;
    // lower-casing keeps one phishing sender one observable.
    Ok(format!("{}@{}", local.to_lowercase(), domain))
}

fn normalise_hex(raw: &str, len: usize) -> Result<String, &'static str> {
    if raw.len() != len {
        return Err(match len {
            32 => "an MD5 hash has exactly 32 hexadecimal digits",
            40 => "a SHA-1 hash has exactly 40 hexadecimal digits",
            _ => "a SHA-256 hash has exactly 64 hexadecimal digits",
        });
    }
    if !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("contains characters other than hexadecimal digits");
    }
    Ok(raw.to_ascii_lowercase())
}

fn normalise_ssdeep(raw: &str) -> Result<String, &'static str> {
    let mut parts = raw.splitn(3, ':');
    let block = parts.next().unwrap_or_default();
    let (h1, h2) = (parts.next(), parts.next());
    let (Some(h1), Some(h2)) = (h1, h2) else {
        return Err("an ssdeep hash has the form blocksize:hash:hash");
    };
    if block.parse::<u64>().is_err() {
        return Err("ssdeep block size is not a number");
    }
    let b64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if !b64(h1) || !b64(h2) {
        return Err("ssdeep hash parts contain characters outside base64");
    }
    Ok(raw.to_string())
}

fn normalise_filename(raw: &str) -> Result<String, &'static str> {
    if raw.contains(['\0', '\n', '\r']) {
        return Err("contains control characters");
    }
    // A path is reduced to its last component: members report C:\Users\x\evil.exe and
    // /tmp/evil.exe for the same file.
    let name = raw.rsplit(['/', '\\']).next().unwrap_or(raw).trim();
    if name.is_empty() {
        return Err("path has no file name");
    }
    if name.len() > 255 {
        return Err("longer than 255 bytes");
    }
    Ok(name.to_string())
}

fn normalise_cve(raw: &str) -> Result<String, &'static str> {
    let upper = raw.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("CVE-")
        .ok_or("a CVE id has the form CVE-YYYY-NNNN")?;
    let (year, number) = rest
        .split_once('-')
        .ok_or("a CVE id has the form CVE-YYYY-NNNN")?;
    let year_ok = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) && year >= "1999";
    if !year_ok {
        return Err("CVE year must be four digits, 1999 or later");
    }
    if number.len() < 4 || number.len() > 19 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err("CVE sequence number must be at least four digits");
    }
    Ok(upper)
}

fn normalise_asn(raw: &str) -> Result<String, &'static str> {
    let upper = raw.to_ascii_uppercase();
    let digits = upper.strip_prefix("AS").unwrap_or(&upper).trim();
    let n: u32 = digits
        .parse()
        .map_err(|_| "an AS number is AS followed by a number up to 4294967295")?;
    Ok(format!("AS{n}"))
}

fn normalise_technique(raw: &str) -> Result<String, &'static str> {
    let upper = raw.to_ascii_uppercase();
    let digits = upper
        .strip_prefix('T')
        .ok_or("an ATT&CK technique id has the form T1566 or T1566.001")?;
    let (main, sub) = match digits.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (digits, None),
    };
    if main.len() != 4 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an ATT&CK technique id has four digits after T");
    }
    if let Some(sub) = sub
        && (sub.len() != 3 || !sub.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("an ATT&CK sub-technique has three digits after the dot");
    }
    Ok(upper)
}

fn normalise_family(raw: &str) -> Result<String, &'static str> {
    if raw.len() > 200 {
        return Err("longer than 200 bytes");
    }
    if raw.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    // Families are named inconsistently ("Emotet", "emotet ", "EMOTET"); one spelling.
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(collapsed.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(kind: ObservableKind, raw: &str) -> String {
        Observable::parse(kind, raw).unwrap().value().to_string()
    }

    #[test]
    fn domains_are_lowercase_idna_without_trailing_dot() {
        assert_eq!(norm(ObservableKind::Domain, "Example.COM."), "example.com");
        assert_eq!(norm(ObservableKind::Domain, "例え.jp"), "xn--r8jz45g.jp");
        assert!(Observable::parse(ObservableKind::Domain, "localhost").is_err());
        assert!(Observable::parse(ObservableKind::Domain, "1.2.3.4").is_err());
        assert!(Observable::parse(ObservableKind::Domain, "a..b").is_err());
    }

    #[test]
    fn urls_are_canonical() {
        assert_eq!(
            norm(
                ObservableKind::Url,
                "HTTP://Evil.Example.COM:80/a/b?x=1#frag"
            ),
            "http://evil.example.com/a/b?x=1"
        );
        assert_eq!(
            norm(ObservableKind::Url, "https://example.com:443"),
            "https://example.com/"
        );
        assert_eq!(
            norm(ObservableKind::Url, "https://example.com:8443/x"),
            "https://example.com:8443/x"
        );
        assert!(Observable::parse(ObservableKind::Url, "example.com/path").is_err());
        assert!(Observable::parse(ObservableKind::Url, "javascript:alert(1)").is_err());
    }

    // Found by `fuzz/fuzz_targets/extract.rs`: a host with two trailing dots lost one dot per
    // parse, so the value of an observable did not parse back to itself.
    #[test]
    fn fuzz_url_host_trailing_dots_are_all_dropped() {
        let once = norm(
            ObservableKind::Url,
            "http://www.virustotal0..:/c5.1302..12158).38",
        );
        assert_eq!(once, "http://www.virustotal0/c5.1302..12158).38");
        assert_eq!(norm(ObservableKind::Url, &once), once);
        assert_eq!(
            norm(ObservableKind::Url, "https://example.com.../x"),
            "https://example.com/x"
        );
    }

    #[test]
    fn ip_addresses_are_canonical() {
        assert_eq!(norm(ObservableKind::Ipv4, " 192.0.2.1 "), "192.0.2.1");
        assert!(Observable::parse(ObservableKind::Ipv4, "192.0.2.256").is_err());
        assert!(Observable::parse(ObservableKind::Ipv4, "01.2.3.4").is_err());
        assert_eq!(
            norm(ObservableKind::Ipv6, "2001:DB8:0:0:0:0:0:1"),
            "2001:db8::1"
        );
        assert_eq!(norm(ObservableKind::Cidr, "192.0.2.77/24"), "192.0.2.0/24");
        assert_eq!(
            norm(ObservableKind::Cidr, "2001:db8::1/32"),
            "2001:db8::/32"
        );
    }

    #[test]
    fn hashes_are_checked_and_lowercase() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        assert_eq!(norm(ObservableKind::Md5, md5), md5.to_lowercase());
        assert!(Observable::parse(ObservableKind::Md5, &md5[1..]).is_err());
        assert!(Observable::parse(ObservableKind::Sha1, "zz").is_err());
        let err = Observable::parse(ObservableKind::Sha256, "abc").unwrap_err();
        assert!(err.to_string().contains("64 hexadecimal digits"), "{err}");
    }

    #[test]
    fn identifiers_are_canonical() {
        assert_eq!(
            norm(ObservableKind::Cve, "cve-2021-26855"),
            "CVE-2021-26855"
        );
        assert!(Observable::parse(ObservableKind::Cve, "CVE-21-1").is_err());
        assert_eq!(norm(ObservableKind::Asn, "as13335"), "AS13335");
        assert_eq!(norm(ObservableKind::Asn, "13335"), "AS13335");
        assert_eq!(
            norm(ObservableKind::AttackTechnique, "t1566.001"),
            "T1566.001"
        );
        assert!(Observable::parse(ObservableKind::AttackTechnique, "T15").is_err());
        assert_eq!(
            norm(ObservableKind::MalwareFamily, " Emotet  Loader"),
            "emotet loader"
        );
        assert_eq!(
            norm(ObservableKind::Filename, r"C:\Users\a\Evil.exe"),
            "Evil.exe"
        );
        assert_eq!(
            norm(ObservableKind::Email, "Bad.Guy@Example.COM"),
            "bad.guy@example.com"
        );
    }

    #[test]
    fn url_implies_host() {
        let url = Observable::parse(ObservableKind::Url, "http://x.example.org/a").unwrap();
        assert_eq!(url.url_host().unwrap().key(), "domain:x.example.org");
    }

    #[test]
    fn unknown_kind_names_the_kind() {
        let err = Observable::parse_named("colour", "red").unwrap_err();
        assert!(err.to_string().contains("colour"));
    }

    proptest::proptest! {
        /// Normalising twice changes nothing, for every kind and any input that parses.
        #[test]
        fn normalising_is_idempotent(kind in 0usize..15, raw in "\\PC{0,80}") {
            let kind = ObservableKind::ALL[kind];
            if let Ok(once) = Observable::parse(kind, &raw) {
                let twice = Observable::parse(kind, once.value()).expect("a normalised value parses");
                proptest::prop_assert_eq!(once, twice);
            }
        }

        /// Structured inputs reach the interesting branches more often than random text.
        #[test]
        fn structured_values_are_idempotent(
            a in 0u8..=255, b in 0u8..=255, prefix in 0u8..=32,
            label in "[a-zA-Z0-9-]{1,20}", tld in "[a-zA-Z]{2,6}", path in "[a-zA-Z0-9/._~%-]{0,30}",
            hex in "[0-9a-fA-F]{64}",
        ) {
            let cases = [
                (ObservableKind::Ipv4, format!("{a}.{b}.{a}.{b}")),
                (ObservableKind::Cidr, format!("{a}.{b}.0.1/{prefix}")),
                (ObservableKind::Domain, format!("{label}.{tld}.")),
                (ObservableKind::Url, format!("HTTP://{label}.{tld}:80/{path}")),
                (ObservableKind::Email, format!("{label}@{label}.{tld}")),
                (ObservableKind::Sha256, hex.clone()),
                (ObservableKind::Md5, hex[..32].to_string()),
            ];
            for (kind, raw) in cases {
                if let Ok(once) = Observable::parse(kind, &raw) {
                    let twice = Observable::parse(kind, once.value()).expect("a normalised value parses");
                    proptest::prop_assert_eq!(once, twice);
                }
            }
        }
    }
}

/// An observable named by evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservableRef {
    #[serde(rename = "type")]
    pub kind: ObservableKind,
    pub value: String,
}

impl ObservableRef {
    pub fn of(o: &Observable) -> ObservableRef {
        ObservableRef {
            kind: o.kind(),
            value: o.value().to_string(),
        }
    }
}

//! Warning lists: values that are everywhere and link nothing (public resolvers, private
//! ranges, top domains, hashes of empty files).
//!
//! The lists use MISP's warninglist JSON format so that operators can drop in any list from
//! github.com/MISP/misp-warninglists unchanged. Supported `type`s: `string` (exact value; an
//! entry with a leading dot, as in MISP's google and microsoft lists, also matches the name's
//! subdomains), `hostname` (the name or any subdomain), `cidr` (containment; bare addresses
//! are /32 or /128), `substring` and `regex` (PCRE-style `/…/flags` or a bare pattern).
//! `matching_attributes` (MISP attribute types) chooses which observable kinds a list applies
//! to; a list without it applies to every kind its type makes sense for.

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;
use serde::Serialize;

use rustc_hash::FxHashMap;

use super::rules::kind_index;
use crate::model::{Observable, ObservableKind};

/// Why an observable does not link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Suppression {
    /// The value is on a warning list (`list` is the list's file stem, `name` its title).
    Warninglist { list: String, name: String },
    /// The value is in more reports than the over-correlation cap.
    OverCorrelating { reports: usize, cap: usize },
}

/// One parsed warning list, before it is merged into the [`Warninglists`] index.
#[derive(Debug, Clone)]
pub struct Warninglist {
    /// File stem, e.g. `rfc1918`.
    pub id: String,
    /// The list's `name` field.
    pub name: String,
    pub kind: ListType,
    /// Observable kinds the list applies to.
    pub applies: Vec<ObservableKind>,
    pub entries: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    String,
    Hostname,
    Cidr,
    Substring,
    Regex,
}

impl Warninglist {
    /// Parses one list in MISP's format. Errors name the JSON key that was wrong.
    pub fn parse(id: &str, text: &str) -> Result<Warninglist, Vec<(String, String)>> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| vec![(String::new(), format!("invalid JSON: {e}"))])?;
        let mut problems = Vec::new();
        let name = match value.get("name").and_then(|v| v.as_str()) {
            Some(n) => n.to_string(),
            None => {
                problems.push(("name".into(), "missing or not a string".into()));
                String::new()
            }
        };
        let kind = match value.get("type").and_then(|v| v.as_str()) {
            Some("string") => Some(ListType::String),
            Some("hostname") => Some(ListType::Hostname),
            Some("cidr") => Some(ListType::Cidr),
            Some("substring") => Some(ListType::Substring),
            Some("regex") => Some(ListType::Regex),
            other => {
                problems.push((
                    "type".into(),
                    format!(
                        "is {other:?} (expected one of: string, hostname, cidr, substring, regex)"
                    ),
                ));
                None
            }
        };
        let entries: Vec<String> = match value.get("list").and_then(|v| v.as_array()) {
            Some(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v.as_str() {
                    Some(s) => Some(s.trim().to_string()),
                    None => {
                        problems.push((format!("list[{i}]"), "is not a string".into()));
                        None
                    }
                })
                .filter(|s| !s.is_empty())
                .collect(),
            None => {
                problems.push(("list".into(), "missing or not an array".into()));
                Vec::new()
            }
        };
        let attrs: Vec<String> = value
            .get("matching_attributes")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let Some(kind) = kind else {
            return Err(problems);
        };
        let applies = kinds_for(kind, &attrs);
        if kind == ListType::Regex {
            for (i, e) in entries.iter().enumerate() {
                if let Err(err) = compile_regex(e) {
                    problems.push((format!("list[{i}]"), format!("invalid regex: {err}")));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Warninglist {
            id: id.to_string(),
            name,
            kind,
            applies,
            entries,
        })
    }
}

/// The observable kinds a list applies to, from MISP attribute types.
fn kinds_for(kind: ListType, attrs: &[String]) -> Vec<ObservableKind> {
    use ObservableKind as K;
    let natural: &[K] = match kind {
        ListType::Cidr => &[K::Ipv4, K::Ipv6, K::Cidr],
        ListType::Hostname => &[K::Domain, K::Url, K::Email],
        _ => &K::ALL,
    };
    if attrs.is_empty() {
        return natural.to_vec();
    }
    let mut out = Vec::new();
    for a in attrs {
        for part in a.split('|') {
            let ks: &[K] = match part {
                "ip-src" | "ip-dst" | "ip" => &[K::Ipv4, K::Ipv6, K::Cidr],
                "domain" | "hostname" => &[K::Domain],
                "url" | "uri" | "link" => &[K::Url],
                "email" | "email-src" | "email-dst" => &[K::Email],
                "md5" => &[K::Md5],
                "sha1" => &[K::Sha1],
                "sha256" => &[K::Sha256],
                "ssdeep" => &[K::Ssdeep],
                "filename" => &[K::Filename],
                "vulnerability" => &[K::Cve],
                "AS" => &[K::Asn],
                _ => &[],
            };
            for k in ks {
                if natural.contains(k) && !out.contains(k) {
                    out.push(*k);
                }
            }
        }
    }
    out
}

/// MISP writes regexes PCRE-style (`/^a.*b$/i`); a bare pattern is taken as is.
fn compile_regex(entry: &str) -> Result<Regex, regex::Error> {
    if let Some(rest) = entry.strip_prefix('/')
        && let Some(end) = rest.rfind('/')
    {
        let (pattern, flags) = (&rest[..end], &rest[end + 1..]);
        let flags: String = flags.chars().filter(|c| "imsx".contains(*c)).collect();
        let full = if flags.is_empty() {
            pattern.to_string()
        } else {
            format!("(?{flags}){pattern}")
        };
        return Regex::new(&full);
    }
    Regex::new(entry)
}

const KINDS: usize = ObservableKind::ALL.len();

/// All warning lists, indexed for matching one observable in a few hash look-ups.
#[derive(Debug, Default, Clone)]
pub struct Warninglists {
    lists: Vec<(String, String)>,
    /// Lower-case value → list, per kind (indexed by `kind_index`, so that a look-up by
    /// `&str` needs no allocation: every distinct value is checked on a re-correlation).
    exact: [FxHashMap<String, u16>; KINDS],
    /// Name → list, per kind, matched at every label boundary of a domain.
    suffix: [FxHashMap<String, u16>; KINDS],
    /// Networks by prefix length, per kind of address.
    nets: FxHashMap<(ObservableKind, IpNet), u16>,
    /// The prefix lengths the lists use, ascending, for IPv4 and for IPv6: an address is
    /// looked up once per length of its own family.
    prefix_lens: [Vec<u8>; 2],
    substrings: Vec<(ObservableKind, String, u16)>,
    regexes: Vec<(ObservableKind, Regex, u16)>,
}

impl Warninglists {
    pub fn new(lists: Vec<Warninglist>) -> Warninglists {
        let mut out = Warninglists::default();
        for list in lists {
            let n = out.lists.len() as u16;
            out.lists.push((list.id.clone(), list.name.clone()));
            if list.kind == ListType::Cidr {
                out.add_networks(&list, n);
                continue;
            }
            for &kind in &list.applies {
                for e in &list.entries {
                    let lower = e.to_ascii_lowercase();
                    match list.kind {
                        ListType::String => {
                            if let Some(rest) = lower.strip_prefix('.') {
                                out.suffix[kind_index(kind)]
                                    .entry(rest.to_string())
                                    .or_insert(n);
                            } else if let Some(value) = normalise(kind, e) {
                                out.exact[kind_index(kind)].entry(value).or_insert(n);
                            }
                        }
                        ListType::Hostname => {
                            let name = lower.trim_start_matches('.').trim_end_matches('.');
                            out.suffix[kind_index(kind)]
                                .entry(name.to_string())
                                .or_insert(n);
                        }
                        // Added above, each entry parsed once.
                        ListType::Cidr => {}
                        ListType::Substring => out.substrings.push((kind, lower, n)),
                        ListType::Regex => {
                            if let Ok(re) = compile_regex(e) {
                                out.regexes.push((kind, re, n));
                            }
                        }
                    }
                }
            }
        }
        for lens in &mut out.prefix_lens {
            lens.sort_unstable();
        }
        out
    }

    /// The networks of a CIDR list, each entry parsed once (a list of 60,000 resolvers
    /// applies to three kinds, and parsing it once a kind was most of a start's rules time).
    /// A network is keyed by its own family only: an IPv4 address is never looked up among
    /// IPv6 networks.
    fn add_networks(&mut self, list: &Warninglist, n: u16) {
        let applies = |k: ObservableKind| {
            list.applies
                .iter()
                .any(|&a| a == k || a == ObservableKind::Cidr)
        };
        let (v4, v6) = (applies(ObservableKind::Ipv4), applies(ObservableKind::Ipv6));
        for e in &list.entries {
            let net = e
                .parse::<IpNet>()
                .ok()
                .or_else(|| e.parse::<IpAddr>().ok().map(IpNet::from));
            let Some(net) = net.map(|n| n.trunc()) else {
                continue;
            };
            let (kind, family) = match net {
                IpNet::V4(_) if v4 => (ObservableKind::Ipv4, 0),
                IpNet::V6(_) if v6 => (ObservableKind::Ipv6, 1),
                _ => continue,
            };
            let lens = &mut self.prefix_lens[family];
            if !lens.contains(&net.prefix_len()) {
                lens.push(net.prefix_len());
            }
            self.nets.entry((kind, net)).or_insert(n);
        }
    }

    /// Number of lists.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Whether a list suppresses `o`: [`Warninglists::check`] without naming the list, for
    /// the correlation, which asks it of every distinct value.
    pub fn suppresses(&self, o: &Observable) -> bool {
        self.find(o).is_some()
    }

    /// The list that suppresses `o`, if any.
    pub fn check(&self, o: &Observable) -> Option<Suppression> {
        self.find(o).map(|n| {
            let (list, name) = &self.lists[n as usize];
            Suppression::Warninglist {
                list: list.clone(),
                name: name.clone(),
            }
        })
    }

    fn find(&self, o: &Observable) -> Option<u16> {
        let kind = o.kind();
        let value = o.value();
        let lower = if value.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(value.to_ascii_lowercase())
        } else {
            Cow::Borrowed(value)
        };
        if let Some(&n) = self.exact[kind_index(kind)].get(lower.as_ref()) {
            return Some(n);
        }
        match kind {
            ObservableKind::Domain => {
                if let Some(n) = self.suffix_of(kind, value) {
                    return Some(n);
                }
            }
            ObservableKind::Email => {
                if let Some((_, d)) = value.rsplit_once('@')
                    && let Some(n) = self.suffix_of(kind, d)
                {
                    return Some(n);
                }
            }
            ObservableKind::Url => {
                if let Some(host) = o.url_host()
                    && host.kind() == ObservableKind::Domain
                {
                    if let Some(n) = self.suffix_of(kind, host.value()) {
                        return Some(n);
                    }
                    if let Some(&n) = self.exact[kind_index(kind)].get(host.value()) {
                        return Some(n);
                    }
                }
            }
            ObservableKind::Ipv4 | ObservableKind::Ipv6 => {
                if let Some(ip) = o.ip()
                    && let Some(n) = self.net_of(kind, IpNet::from(ip))
                {
                    return Some(n);
                }
            }
            ObservableKind::Cidr => {
                if let Ok(net) = value.parse::<IpNet>() {
                    let k = match net {
                        IpNet::V4(_) => ObservableKind::Ipv4,
                        IpNet::V6(_) => ObservableKind::Ipv6,
                    };
                    if let Some(n) = self.net_of(k, net) {
                        return Some(n);
                    }
                }
            }
            _ => {}
        }
        if !self.substrings.is_empty() {
            for (k, s, n) in &self.substrings {
                if *k == kind && lower.contains(s.as_str()) {
                    return Some(*n);
                }
            }
        }
        for (k, re, n) in &self.regexes {
            if *k == kind && re.is_match(value) {
                return Some(*n);
            }
        }
        None
    }

    fn suffix_of(&self, kind: ObservableKind, name: &str) -> Option<u16> {
        let suffix = &self.suffix[kind_index(kind)];
        if suffix.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if let Some(&n) = suffix.get(rest) {
                return Some(n);
            }
            match rest.split_once('.') {
                Some((_, tail)) => rest = tail,
                None => return None,
            }
        }
    }

    /// The list whose network contains `net` (an address is a /32 or /128 network).
    fn net_of(&self, kind: ObservableKind, net: IpNet) -> Option<u16> {
        let family = usize::from(matches!(net, IpNet::V6(_)));
        for &len in &self.prefix_lens[family] {
            if len > net.prefix_len() {
                break;
            }
            let Ok(candidate) = IpNet::new(net.addr(), len) else {
                continue;
            };
            if let Some(&n) = self.nets.get(&(kind, candidate.trunc())) {
                return Some(n);
            }
        }
        None
    }
}

/// The value in the observable's canonical form, so that list entries written in another
/// case or spelling still match (`2001:DB8::/32`, upper-case hashes).
///
/// `None` when no observable of `kind` can be spelt so: a hash of the wrong length or
/// with other characters (a list of SHA-256 hashes also applies to MD5 and SHA-1). Other
/// kinds keep the entry as written, lower-cased, when it does not parse.
fn normalise(kind: ObservableKind, raw: &str) -> Option<String> {
    match Observable::parse(kind, raw) {
        Ok(o) => Some(o.value().to_ascii_lowercase()),
        Err(_)
            if matches!(
                kind,
                ObservableKind::Md5 | ObservableKind::Sha1 | ObservableKind::Sha256
            ) =>
        {
            None
        }
        Err(_) => Some(raw.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(kind: &str, v: &str) -> Observable {
        Observable::parse_named(kind, v).unwrap()
    }

    fn lists() -> Warninglists {
        let parse = |id: &str, text: &str| Warninglist::parse(id, text).unwrap();
        Warninglists::new(vec![
            parse(
                "rfc1918",
                r#"{"name":"RFC 1918","type":"cidr","list":["10.0.0.0/8","192.168.0.0/16"],"matching_attributes":["ip-src","ip-dst"]}"#,
            ),
            parse(
                "dns",
                r#"{"name":"resolvers","type":"cidr","list":["8.8.8.8","2001:4860:4860::8888"]}"#,
            ),
            parse(
                "google",
                r#"{"name":"google","type":"string","list":[".google.com","google.com"],"matching_attributes":["domain","hostname","url"]}"#,
            ),
            parse(
                "top",
                r#"{"name":"top","type":"hostname","list":["example.net"]}"#,
            ),
            parse(
                "sub",
                r#"{"name":"sub","type":"substring","list":["sinkhole"],"matching_attributes":["domain"]}"#,
            ),
            parse(
                "re",
                r#"{"name":"re","type":"regex","list":["/^evil-[0-9]+\\.test$/i"],"matching_attributes":["domain"]}"#,
            ),
            parse(
                "hashes",
                r#"{"name":"empty","type":"string","list":["D41D8CD98F00B204E9800998ECF8427E"],"matching_attributes":["md5"]}"#,
            ),
        ])
    }

    #[test]
    fn every_list_type_matches_what_misp_would() {
        let w = lists();
        let hit = |k: &str, v: &str| match w.check(&obs(k, v)) {
            Some(Suppression::Warninglist { list, .. }) => Some(list),
            _ => None,
        };
        assert_eq!(hit("ipv4", "10.1.2.3").as_deref(), Some("rfc1918"));
        assert_eq!(hit("cidr", "192.168.4.0/24").as_deref(), Some("rfc1918"));
        assert_eq!(hit("ipv4", "11.1.2.3"), None);
        assert_eq!(hit("ipv4", "8.8.8.8").as_deref(), Some("dns"));
        assert_eq!(
            hit("ipv6", "2001:4860:4860:0::8888").as_deref(),
            Some("dns")
        );
        assert_eq!(hit("domain", "google.com").as_deref(), Some("google"));
        assert_eq!(hit("domain", "mail.google.com").as_deref(), Some("google"));
        assert_eq!(
            hit("url", "https://docs.google.com/x").as_deref(),
            Some("google")
        );
        assert_eq!(hit("domain", "notgoogle.com"), None);
        assert_eq!(hit("domain", "a.b.example.net").as_deref(), Some("top"));
        assert_eq!(hit("domain", "my-sinkhole.org").as_deref(), Some("sub"));
        assert_eq!(hit("domain", "EVIL-42.test").as_deref(), Some("re"));
        assert_eq!(hit("domain", "evil-x.test"), None);
        assert_eq!(
            hit("md5", "d41d8cd98f00b204e9800998ecf8427e").as_deref(),
            Some("hashes")
        );
    }

    #[test]
    fn bad_lists_name_the_key() {
        let errs = Warninglist::parse("x", r#"{"type":"colour","list":[1]}"#).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"name") && keys.contains(&"type"), "{errs:?}");
        let errs =
            Warninglist::parse("x", r#"{"name":"n","type":"regex","list":["(a"]}"#).unwrap_err();
        assert_eq!(errs[0].0, "list[0]");
    }
}

//! The differential leak harness (#14, "How to prove it").
//!
//! # What it does
//! Each proptest case is a random **council scenario** played through the real daemon (the
//! `musubi` binary, loopback HTTP, real tokens from the CLI) twice, side by side:
//!
//! - **W**: the roster (`tests/fixtures/council/roster-2020-06-05.json`) imported with
//!   `musubi member import`; a cast drawn at random from it: a member of a sector with fewer
//!   than three members (`SmallSector`), a member of a larger sector (`Other`), a class 1, a
//!   class 2 and a general member, a RED recipient, and a member that is suspended or expelled
//!   (CLI) once its reports are in (`Suspended`), plus an analyst of the secretariat. Before
//!   the daemon starts, the small-sector member imports a MISP event (its organisation as
//!   `Orgc`) and a blocklist from a directory named after its member id (`musubi import`).
//!   The daemon polls two feeds at start: a loopback KEV feed (public items) and a feed whose
//!   URL carries a password and an API key and cannot be reached. Cast members submit native
//!   reports with every TLP, sharing scope, confidence and release state (releases by report
//!   and by campaign through the secretariat API), values drawn from a shared pool so that
//!   reports correlate; the secretariat may pin a merge and a split; members post sightings
//!   and answer a feedback request. Alerts go to a loopback SMTP sink and an alert webhook.
//! - **W'** = W plus *extra* reports hidden from some viewers (RED to others, scope
//!   provider-and-secretariat, unreleased, AMBER+STRICT), interleaved with W's submissions,
//!   carrying fresh values and perhaps the values of one W report, and a member's own MISP
//!   feed (`misp-api`, named after the small-sector member, unreachable: a failure in its
//!   health) that only the secretariat may learn exists.
//!
//! Every viewer (each cast member, the suspended one included; the public: no token) then
//! reads every output: each report id known to anyone (plus absent ids), the campaign list at
//! several limits and each campaign, search for every title word and every value (limits and
//! query-language probes too), `/api/v1/feeds`, `/api/v1/council/*`, the give-and-take ledger
//! (`/api/v1/ledger`, JSON and CSV, and its console page), TAXII (discovery, API
//! root, collections, objects and manifest of each collection, Bearer and Basic), console
//! pages with a session, `/healthz`, `/metrics`; the alert mail each receives and the webhook
//! payloads (the webhook audience); after the daemon stops, `musubi export --audience public`
//! and, for one cast member chosen by the case (never the suspended one), `musubi export --as`
//! and `musubi digest preview --as` (`LEAK_HARNESS_ALL_CLI=1`: every member, STIX and CSV).
//!
//! # The reference model
//! Written here, independently of the crate (it does not call `council::policy`): a report is
//! visible to the secretariat and its provider; otherwise not with scope
//! provider-and-secretariat, RED only to named recipients, AMBER+STRICT to nobody else,
//! CLEAR/GREEN/AMBER to class 1 at once and to class 2 and general members once released.
//! Suspended and expelled members see nothing. The public (and the TAXII `public` collection
//! and `export --audience public`, whoever asks) sees released TLP:CLEAR reports without scope;
//! the webhook audience released TLP:GREEN and CLEAR without scope. A release by campaign
//! releases the reports the secretariat's campaign view held at that moment, nothing that
//! joins later.
//!
//! # The checks (each failure names the check, the viewer, the output and what leaked)
//! - `scan`: the raw bytes of every output to a viewer hold no marker of a title or value the
//!   model hides from it (every title and value carries a unique random marker), no token, no
//!   feed credential, no member id or name of a provider other than the viewer, no label of a
//!   sector with fewer than three members. A search's echo of its own query is not scanned.
//! - `visibility`: a report the model hides is not shown (`withheld` lists the opposite, a
//!   report the model shows that the daemon does not: a disagreement, not a leak).
//! - `hidden-equals-absent`: report and campaign ids the viewer may not see answer exactly as an
//!   id that does not exist (status and body, after normalisation), in the API and the console;
//!   a sighting on a hidden campaign answers as on an absent one, which is not accepted.
//! - `suspended`: a suspended or expelled member's token and console session (opened before
//!   the suspension) get nothing, and no mail reaches it after the suspension.
//! - `webhook-audience`: every campaign an alert webhook names holds a report its audience may see.
//! - `differential`: for every viewer from whom all extra material is hidden and who sees none
//!   of its values, every output in W' equals the same output in W, after mapping each opaque
//!   id (`R-…`, `C-…`, UUIDs) to its order of first appearance and blanking times, CSRF tokens,
//!   paging cursors, the data directory's path and the timeline's coordinates (STIX bundles and
//!   TAXII envelopes are compared as multisets of objects, ids blanked). Counts, order, hits,
//!   scores and errors must not move. `/metrics` is compared without the harness's own request
//!   counters and timings; mail and webhooks, whose batching follows timing, are not compared.
//!
//! # Running it
//! In CI: `cargo test --test it leak_harness` (8 cases, each two daemons side by side, about
//! 90 s on 2 cores). The long run:
//! `PROPTEST_CASES=200 cargo test --test it leak_harness -- --nocapture`.
//! - `LEAK_HARNESS_KEEP_GOING=1` runs every case and ends with one line per kind of failure
//!   (check, viewer, output, what) with the number of cases it failed in and its first example:
//!   what shows which checks still fail. Otherwise the first failing case stops the run with
//!   its failures (12 per check; `LEAK_HARNESS_ALL=1` for all) and its scenario.
//! - Every run prints its seed; `LEAK_HARNESS_SEED=N` replays it case for case.
//! - Shrinking is off (each case starts two daemons); `PROPTEST_MAX_SHRINK_ITERS=N` turns it on.
//! - `LEAK_HARNESS_VERBOSE=1` prints each world's phases with their times.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use regex::Regex;
use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, wait_current};

const ROSTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/council/roster-2020-06-05.json"
);

/// Japanese labels of the roster's sectors (as the roster's group headings print them).
const SECTOR_JA: &[(&str, &str)] = &[
    ("telecom", "情報通信"),
    ("finance", "金融"),
    ("aviation", "航空"),
    ("airports", "空港"),
    ("railway", "鉄道"),
    ("electricity", "電力"),
    ("gas", "ガス"),
    ("medical", "医療"),
    ("water", "水道"),
    ("logistics", "物流"),
    ("chemical", "化学"),
    ("credit", "クレジット"),
    ("petroleum", "石油"),
];

/// The daemon's configuration: the feeds (a loopback KEV feed and a feed whose URL carries
/// credentials and cannot be reached), a loopback SMTP sink, alerts to every class with a
/// webhook, and a digest for `musubi digest preview`.
fn harness_toml(smtp_port: u16, hook: &str) -> String {
    format!(
        r#"
[server]
public_url = "https://musubi.example.jp"

[feeds]
file = "feeds.toml"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "musubi <musubi@council.example.jp>"
retry_attempts = 1

[[digest]]
name = "harness"
schedule = "0 0 8 1 1 *"
classes = ["class1", "class2", "general"]
secretariat = false
language = "en"
first_window_hours = 48

[alerts]
classes = ["class1", "class2", "general"]
coalesce_seconds = 1
min_interval_seconds = 1
language = "en"
webhooks = ["{hook}"]
webhook_secret_file = "hook.key"
"#
    )
}

/// What the loopback servers received: webhook POSTs by path, mail by sink port.
static HOOKS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static MAILS: Mutex<Vec<(u16, std::time::Instant, String)>> = Mutex::new(Vec::new());

/// A minimal SMTP sink on loopback: accepts every message and keeps its raw text.
fn smtp_sink() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let _ = w.write_all(b"220 harness ESMTP\r\n");
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250-harness\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        let _ = w.write_all(b"354 go on\r\n");
                        let mut msg = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" || line == ".\n" {
                                break;
                            }
                            msg.push_str(&line);
                        }
                        MAILS
                            .lock()
                            .unwrap()
                            .push((port, std::time::Instant::now(), msg));
                        b"250 OK queued\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = w.write_all(reply);
                }
            });
        }
    });
    port
}

/// The feed URL's password and API key: secrets that no member may ever read.
const FEED_PASSWORD: &str = "pw0harness0secret";
const FEED_API_KEY: &str = "key0harness0secret";

/// A loopback HTTP server that answers every request with three KEV entries (public feed
/// items: TLP:CLEAR, no release needed). Lives as long as the test process.
fn feed_server() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let kev: Value = serde_json::from_slice(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kev/known_exploited_vulnerabilities-2025.01.24.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let mut small = kev.clone();
        small["vulnerabilities"] = json!(kev["vulnerabilities"].as_array().unwrap()[..3]);
        small["count"] = json!(3);
        let body = small.to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let body = body.clone();
                std::thread::spawn(move || {
                    // Read the head, then the body by its length (webhook POSTs).
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = stream.read(&mut chunk) else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    if head.starts_with("POST ") {
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                        HOOKS.lock().unwrap().push((path, body));
                        let _ = stream.write_all(
                            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        return;
                    }
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        addr
    })
}

/// The feeds of W; W' adds `member_feed`: a member's own MISP (`misp-api`), named after the
/// member as operators name them, unreachable (its failure is recorded in the feed health).
/// Only the secretariat may learn that it exists.
fn feeds_toml(member_feed: Option<&str>) -> String {
    let addr = feed_server();
    let extra = member_feed.map_or(String::new(), |m| {
        format!(
            "\n[[feed]]\nname = \"misp-{m}\"\nurl = \"http://127.0.0.1:9/\"\nformat = \"misp-api\"\n\
             member = \"{m}\"\nschedule = \"0 0 0 1 1 * *\"\ntimeout = \"2s\"\nallow_private = true\n"
        )
    });
    // Port 9 (discard) on loopback: nothing listens, the poll fails and records an error.
    extra
        + &format!(
            "[[feed]]\nname = \"harness-kev\"\nurl = \"http://{addr}/kev.json\"\nformat = \"kev\"\n\
         schedule = \"0 0 0 1 1 * *\"\nallow_private = true\n\n\
         [[feed]]\nname = \"harness-private\"\n\
         url = \"http://harness:{FEED_PASSWORD}@127.0.0.1:9/feed.json?apikey={FEED_API_KEY}\"\n\
         format = \"kev\"\nschedule = \"0 0 0 1 1 * *\"\ntimeout = \"2s\"\nallow_private = true\n"
        )
}

// ---------------------------------------------------------------------------------------
// The cast and the roster.
// ---------------------------------------------------------------------------------------

/// The members a scenario plays with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    /// A member of a sector with fewer than three members (its sector would name it).
    SmallSector,
    /// A member of a sector with three members or more.
    Other,
    Class1,
    Class2,
    General,
    /// The named recipient of RED reports.
    Recipient,
    /// Submits like the others, then is suspended or expelled before outputs are read.
    Suspended,
}

const ROLES: [Role; 7] = [
    Role::SmallSector,
    Role::Other,
    Role::Class1,
    Role::Class2,
    Role::General,
    Role::Recipient,
    Role::Suspended,
];

#[derive(Debug, Clone)]
struct RosterMember {
    id: String,
    name: String,
    class: String,
    sector: Option<String>,
}

/// The imported roster (classes as `member import` assigns them), read once.
fn roster() -> &'static Vec<RosterMember> {
    static ROSTER_MEMBERS: OnceLock<Vec<RosterMember>> = OnceLock::new();
    ROSTER_MEMBERS.get_or_init(|| {
        let data = DataDir::new();
        data.cli(&["member", "import", ROSTER]);
        let v: Value = serde_json::from_str(&data.cli(&["member", "list", "--json"])).unwrap();
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| RosterMember {
                id: m["id"].as_str().unwrap().to_string(),
                name: m["name"].as_str().unwrap_or_default().to_string(),
                class: m["class"].as_str().unwrap().to_string(),
                sector: m["sector"].as_str().map(str::to_string),
            })
            .collect()
    })
}

fn sector_size(sector: &str) -> usize {
    roster()
        .iter()
        .filter(|m| m.sector.as_deref() == Some(sector))
        .count()
}

/// Cast members resolved from the scenario's picks (distinct members).
fn resolve_cast(picks: &[u16; 7]) -> BTreeMap<Role, RosterMember> {
    let roster = roster();
    let mut used = BTreeSet::new();
    let mut cast = BTreeMap::new();
    for (role, pick) in ROLES.iter().zip(picks) {
        let pool: Vec<&RosterMember> = roster
            .iter()
            .filter(|m| match role {
                Role::SmallSector => m.sector.as_deref().is_some_and(|s| sector_size(s) < 3),
                Role::Class1 => m.class == "class1",
                Role::Class2 => m.class == "class2",
                Role::General => m.class == "general",
                // A member of a larger sector: campaigns with both providers cross sectors
                // (and raise alerts).
                Role::Other => m.sector.as_deref().is_some_and(|s| sector_size(s) >= 3),
                Role::Recipient | Role::Suspended => {
                    m.name != "【非公表】"
                        && m.sector.as_deref().is_none_or(|s| sector_size(s) >= 3)
                }
            })
            .collect();
        let mut i = *pick as usize % pool.len();
        while used.contains(&pool[i].id) {
            i = (i + 1) % pool.len();
        }
        used.insert(pool[i].id.clone());
        cast.insert(*role, pool[i].clone());
    }
    cast
}

// ---------------------------------------------------------------------------------------
// Scenarios.
// ---------------------------------------------------------------------------------------

const TLPS: [&str; 5] = ["clear", "green", "amber", "amber+strict", "red"];
const SCOPES: [Option<&str>; 4] = [
    None,
    Some("provider-and-secretariat"),
    Some("council-members"),
    Some("members-and-supported"),
];
const SIGHTING_KINDS: [&str; 3] = ["seen", "not-seen", "false-positive"];
const CONFIDENCES: [&str; 3] = ["unconfirmed", "suspected", "confirmed"];
const WORDS: [&str; 6] = ["loader", "phishing", "wiper", "beacon", "ransom", "exploit"];
/// Kinds of the shared value pool (each value carries a unique marker).
const KINDS: [&str; 4] = ["sha256", "domain", "md5", "url"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    None,
    Report,
    /// Release the report's campaign right after the submission.
    Campaign,
}

#[derive(Debug, Clone)]
struct ReportSpec {
    provider: Role,
    tlp: usize,
    scope: usize,
    confidence: usize,
    /// Indices into the scenario's value pool.
    values: Vec<usize>,
    release: Release,
    word: usize,
}

/// Why an extra report (world W' only) is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtraKind {
    RedToOthers,
    ProviderOnly,
    Unreleased,
    Strict,
}

#[derive(Debug, Clone)]
struct ExtraSpec {
    provider: Role,
    kind: ExtraKind,
    tlp: usize,
    /// Also carry the values of this W report (only if that report is hidden from the viewer
    /// compared; checked after the run).
    borrow: Option<usize>,
    /// Inserted before this W submission (modulo their number + 1).
    pos: usize,
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    picks: [u16; 7],
    expel: bool,
    reports: Vec<ReportSpec>,
    extras: Vec<ExtraSpec>,
    /// Secretariat pins a merge of the campaigns of these two W reports.
    merge: Option<(usize, usize)>,
    /// Secretariat pins a split of this W report out of its campaign.
    split: Option<usize>,
    /// (sighter, W report whose campaign is sighted, kind).
    sightings: Vec<(Role, usize, usize)>,
    /// Feedback request on the campaign of this W report; answered by those who see it.
    feedback: Option<usize>,
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(ROLES.to_vec())
}

fn report_spec() -> impl Strategy<Value = ReportSpec> {
    (
        role(),
        0..TLPS.len(),
        prop_oneof![3 => Just(0usize), 1 => 1..SCOPES.len()],
        0..CONFIDENCES.len(),
        prop::collection::btree_set(0..6usize, 1..=2),
        prop_oneof![
            Just(Release::None),
            Just(Release::Report),
            Just(Release::Campaign)
        ],
        0..WORDS.len(),
    )
        .prop_map(
            |(provider, tlp, scope, confidence, values, release, word)| ReportSpec {
                provider,
                tlp,
                scope,
                confidence,
                values: values.into_iter().collect(),
                release,
                word,
            },
        )
}

fn extra_spec() -> impl Strategy<Value = ExtraSpec> {
    (
        role(),
        prop_oneof![
            Just(ExtraKind::RedToOthers),
            Just(ExtraKind::ProviderOnly),
            Just(ExtraKind::Unreleased),
            Just(ExtraKind::Strict)
        ],
        0..3usize,
        prop::option::weighted(0.5, 0..16usize),
        0..16usize,
    )
        .prop_map(|(provider, kind, tlp, borrow, pos)| ExtraSpec {
            provider,
            kind,
            tlp,
            borrow,
            pos,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        any::<[u16; 7]>(),
        any::<bool>(),
        prop::collection::vec(report_spec(), 4..9),
        prop::collection::vec(extra_spec(), 1..3),
        prop::option::of((0..16usize, 0..16usize)),
        prop::collection::vec((role(), 0..16usize, 0..3usize), 0..4),
        prop::option::of(0..16usize),
        prop::option::weighted(0.3, 0..16usize),
    )
        .prop_map(
            |(seed, picks, expel, reports, extras, merge, sightings, feedback, split)| {
                let n = reports.len();
                Scenario {
                    seed,
                    picks,
                    expel,
                    extras: extras
                        .into_iter()
                        .map(|mut e| {
                            e.borrow = e.borrow.map(|b| b % n);
                            e.pos %= n + 1;
                            e
                        })
                        .collect(),
                    merge: merge.map(|(a, b)| (a % n, b % n)),
                    split: split.map(|k| k % n),
                    sightings: sightings
                        .into_iter()
                        .map(|(r, k, kind)| (r, k % n, kind))
                        .collect(),
                    feedback: feedback.map(|k| k % n),
                    reports,
                }
            },
        )
}

/// Deterministic markers from the scenario's seed (the same in W and W').
struct Markers(u64);

impl Markers {
    fn hex(&mut self, len: usize) -> String {
        let mut s = String::new();
        while s.len() < len {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let _ = write!(s, "{:016x}", self.0.wrapping_mul(0x2545F4914F6CDD1D));
        }
        s.truncate(len);
        s
    }
}

/// One value: its type, its submitted form, and the marker that any derived form carries.
#[derive(Debug, Clone)]
struct Val {
    kind: &'static str,
    value: String,
    marker: String,
}

fn make_value(m: &mut Markers, kind: &'static str) -> Val {
    let marker = m.hex(12);
    let value = match kind {
        "sha256" => format!("{marker}{}", m.hex(52)),
        "md5" => format!("{marker}{}", m.hex(20)),
        "domain" => format!("v{marker}.example"),
        _ => format!("http://u{marker}.example/p"),
    };
    Val {
        kind,
        value,
        marker,
    }
}

/// A report as submitted, with everything the model needs.
#[derive(Debug, Clone)]
struct Fact {
    /// `w3` for W report 3, `x1` for extra 1.
    label: String,
    provider: Role,
    tlp: &'static str,
    scope: Option<&'static str>,
    confidence: &'static str,
    title: String,
    title_marker: String,
    values: Vec<Val>,
    release: Release,
    extra: bool,
    /// Imported with `musubi import --format …` before the daemon starts (not over HTTP).
    import: Option<&'static str>,
}

/// The scenario's reports (W's first, then the extras), with markers.
fn facts(s: &Scenario) -> Vec<Fact> {
    let mut m = Markers(s.seed | 1);
    let pool: Vec<Val> = (0..6).map(|i| make_value(&mut m, KINDS[i % 4])).collect();
    let mut out = Vec::new();
    for (i, r) in s.reports.iter().enumerate() {
        let tm = format!("t{}", m.hex(10));
        out.push(Fact {
            label: format!("w{i}"),
            provider: r.provider,
            tlp: TLPS[r.tlp],
            scope: SCOPES[r.scope],
            confidence: CONFIDENCES[r.confidence],
            title: format!("{} campaign {tm}", WORDS[r.word]),
            title_marker: tm,
            values: r.values.iter().map(|&v| pool[v].clone()).collect(),
            release: r.release,
            extra: false,
            import: None,
        });
    }
    for (i, e) in s.extras.iter().enumerate() {
        let tm = format!("t{}", m.hex(10));
        let mut values = vec![make_value(&mut m, KINDS[i % 4])];
        if let Some(b) = e.borrow {
            values.extend(out[b].values.clone());
        }
        let (tlp, scope, release) = match e.kind {
            ExtraKind::RedToOthers => ("red", None, Release::None),
            ExtraKind::ProviderOnly => (
                TLPS[e.tlp],
                Some("provider-and-secretariat"),
                Release::Report,
            ),
            ExtraKind::Unreleased => (TLPS[e.tlp], None, Release::None),
            ExtraKind::Strict => ("amber+strict", None, Release::Report),
        };
        out.push(Fact {
            label: format!("x{i}"),
            provider: e.provider,
            tlp,
            scope,
            confidence: "unconfirmed",
            title: format!("{} extra {tm}", WORDS[i % WORDS.len()]),
            title_marker: tm,
            values,
            release,
            extra: true,
            import: None,
        });
    }
    // Two file imports by the small-sector member (not released): a MISP event whose creating
    // organisation is the provider, and a blocklist file at a path that names it.
    for (i, format) in ["misp", "blocklist"].into_iter().enumerate() {
        let tm = format!("t{}", m.hex(10));
        out.push(Fact {
            label: format!("i{i}"),
            provider: Role::SmallSector,
            // File imports without a marking are TLP:AMBER.
            tlp: if format == "misp" { "green" } else { "amber" },
            scope: None,
            confidence: "unconfirmed",
            title: format!("{format} import {tm}"),
            title_marker: tm,
            // A blocklist recognises hashes on their own (a `.example` domain is no real TLD).
            values: vec![make_value(
                &mut m,
                if format == "misp" { "domain" } else { "sha256" },
            )],
            release: Release::None,
            extra: false,
            import: Some(format),
        });
    }
    // Two released TLP:CLEAR reports from two sectors sharing a value, submitted after the
    // suspension: a cross-sector campaign whose alert goes out while one member is suspended.
    let shared = make_value(&mut m, "sha256");
    for (i, provider) in [Role::SmallSector, Role::Other].into_iter().enumerate() {
        let tm = format!("t{}", m.hex(10));
        out.push(Fact {
            label: format!("a{i}"),
            provider,
            tlp: "clear",
            scope: None,
            confidence: "confirmed",
            title: format!("spreading campaign {tm}"),
            title_marker: tm,
            values: vec![shared.clone()],
            release: Release::Report,
            extra: false,
            import: None,
        });
    }
    out
}

/// Imports the scenario's file imports with the CLI (before the daemon starts).
fn import_files(data: &DataDir, facts: &[Fact], member: &RosterMember) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    for f in facts.iter().filter(|f| f.import.is_some()) {
        let dir = data.path().join(format!("{}-uploads", member.id));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, format) = match f.import {
            Some("misp") => {
                let event = json!({"Event": {
                    "info": f.title,
                    "date": "2026-12-01",
                    "Orgc": {"name": member.name, "uuid": "5f1b2a3c-0000-4000-8000-000000000001"},
                    "Org": {"name": member.name},
                    "Tag": [{"name": "tlp:green"}],
                    "Attribute": [{"type": "domain", "category": "Network activity", "value": f.values[0].value, "to_ids": true}],
                }});
                let path = dir.join("event.json");
                std::fs::write(&path, event.to_string()).unwrap();
                (path, "misp")
            }
            _ => {
                // The title marker is in the file name: a title built from the path shows it.
                let path = dir.join(format!("{}.txt", f.title_marker));
                std::fs::write(&path, format!("{}\n", f.values[0].value)).unwrap();
                (path, "blocklist")
            }
        };
        let out = data.cli_output(&[
            "import",
            path.to_str().unwrap(),
            "--as",
            &member.id,
            "--format",
            format,
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(id) = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .find(|w| w.starts_with("R-"))
        {
            ids.push((f.label.clone(), id.to_string()));
        }
    }
    ids
}

// ---------------------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ViewerKey {
    Cast(Role),
    Public,
    /// The alert webhooks' audience (released TLP:GREEN and CLEAR without scope).
    Webhook,
}

impl std::fmt::Display for ViewerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ViewerKey::Cast(r) => write!(f, "{r:?}"),
            ViewerKey::Public => write!(f, "Public"),
            ViewerKey::Webhook => write!(f, "Webhook"),
        }
    }
}

/// What the model needs to know of a viewer.
#[derive(Debug, Clone)]
struct ModelViewer {
    /// For an audience (no member): whether TLP:GREEN reaches it (a webhook) or only CLEAR.
    green: bool,
    role: Option<Role>,
    id: Option<String>,
    class: String,
    active: bool,
}

/// Whether `v` may see report `f` (released: after the world's release steps).
fn model_sees(v: &ModelViewer, f: &Fact, released: bool, recipient: &str) -> bool {
    let Some(id) = &v.id else {
        // An audience: the public (CLEAR) or a webhook (GREEN and CLEAR).
        return (f.tlp == "clear" || (v.green && f.tlp == "green"))
            && f.scope.is_none()
            && released;
    };
    if !v.active {
        return false;
    }
    if v.class == "secretariat" || v.role == Some(f.provider) {
        return true;
    }
    if f.scope == Some("provider-and-secretariat") {
        return false;
    }
    match f.tlp {
        "red" => id == recipient,
        "amber+strict" => false,
        _ => v.class == "class1" || released,
    }
}

// ---------------------------------------------------------------------------------------
// Playing a world.
// ---------------------------------------------------------------------------------------

/// An output as fetched: status and raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Output {
    status: u16,
    body: String,
}

/// Everything a world produced.
struct World {
    /// Report id per fact label.
    ids: HashMap<String, String>,
    /// Final release state per fact label (the model's input).
    released: HashMap<String, bool>,
    /// Campaign id per fact label (secretariat's view at the end).
    campaign_of: HashMap<String, String>,
    /// Outputs per viewer, keyed by a logical route name that is the same in W and W'.
    outputs: BTreeMap<ViewerKey, BTreeMap<String, Output>>,
    /// Failures found while playing (setup that the daemon refused, probes).
    notes: Vec<String>,
    tokens: BTreeMap<Role, String>,
    /// The council's id key, read from the world's store: `ids` and `campaign_of` hold
    /// internal ids, and every viewer here (members, the public, the webhook audience) names
    /// reports and campaigns by their opaque ids.
    key: musubi::council::read::ids::IdKey,
}

impl World {
    /// A report's id as the viewers here are shown it (internal `R-<seq>` → opaque).
    fn shown_report(&self, id: &str) -> String {
        match id.parse::<musubi::model::ReportId>() {
            Ok(r) => self.key.opaque_report(r),
            Err(()) => id.to_string(),
        }
    }

    /// A campaign's id as the viewers here are shown it.
    fn shown_campaign(&self, id: &str) -> String {
        match id.parse::<musubi::model::CampaignId>() {
            Ok(c) => self.key.opaque_campaign(c),
            Err(_) => id.to_string(),
        }
    }

    /// The internal form of an id a submitter was answered with (opaque).
    fn internal_report(&self, id: &str) -> String {
        self.key
            .report_of(id)
            .map_or_else(|| id.to_string(), |r| r.to_string())
    }
}

/// The council's id key of the store in `dir` (its secret, made by a migration).
fn council_key(dir: &std::path::Path) -> musubi::council::read::ids::IdKey {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join(musubi::store::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the store");
    let secret: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'id_secret'", [], |r| {
            r.get(0)
        })
        .expect("id secret");
    let secret: [u8; 32] = hex::decode(secret)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    musubi::council::read::ids::IdKey::new(&secret)
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    basic: bool,
    cookie: Option<&str>,
) -> Output {
    let mut req = client.get(url);
    match (auth, basic) {
        (Some(t), false) => req = req.bearer_auth(t),
        (Some(t), true) => req = req.basic_auth("harness", Some(t)),
        _ => {}
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if url.contains("/taxii2/") {
        req = req.header("accept", "application/taxii+json;version=2.1");
    }
    let r = req.send().await.expect("GET");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|l| format!("location: {}\n", l.to_str().unwrap_or("?")))
        .unwrap_or_default();
    Output {
        status,
        body: format!("{location}{}", r.text().await.unwrap_or_default()),
    }
}

/// A console session: cookies kept by hand (the daemon sets them on the login page).
struct ConsoleSession {
    cookies: Vec<(String, String)>,
}

impl ConsoleSession {
    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap_or_default();
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            if let Some((k, val)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                if !val.is_empty() {
                    self.cookies.push((k.to_string(), val.to_string()));
                }
            }
        }
    }

    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Signs in with the login form; None if the daemon refused.
    async fn sign_in(client: &reqwest::Client, base: &str, token: &str) -> Option<Self> {
        let mut s = ConsoleSession {
            cookies: Vec::new(),
        };
        let r = client
            .get(format!("{base}/console/login"))
            .send()
            .await
            .ok()?;
        s.keep(&r);
        let html = r.text().await.ok()?;
        let at = html.find(r#"name="csrf" value=""#)? + 19;
        let end = html[at..].find('"')? + at;
        let csrf = html[at..end].to_string();
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("token", token), ("csrf", csrf.as_str())])
            .finish();
        let r = client
            .post(format!("{base}/console/login"))
            .header("cookie", s.header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .ok()?;
        s.keep(&r);
        (r.status().as_u16() == 303 && s.cookies.iter().any(|(k, _)| k == "musubi_session"))
            .then_some(s)
    }
}

/// Submits one report over HTTP as its provider, then releases it as the fact says (a
/// release by campaign records which reports that campaign held at that moment).
async fn submit_fact(
    daemon: &Daemon,
    secc: &Client,
    token: &str,
    recipient: &str,
    f: &Fact,
    world: &mut World,
) {
    let mut body = json!({
        "title": f.title,
        "description": format!("{} observed by the harness", f.title),
        "tlp": f.tlp,
        "confidence": f.confidence,
        "indicators": f.values.iter().map(|v| json!({"type": v.kind, "value": v.value})).collect::<Vec<_>>(),
        "tags": ["harness"],
    });
    if let Some(scope) = f.scope {
        body["scope"] = json!(scope);
    }
    if f.tlp == "red" {
        body["recipients"] = json!([recipient]);
    }
    let (status, answer) = Client::new(token)
        .post_json(&daemon.url("/api/v1/reports?wait=campaign"), &body)
        .await;
    assert_eq!(status, 201, "submission {}: {answer}", f.label);
    let id = world.internal_report(answer["reports"][0]["id"].as_str().unwrap());
    world.ids.insert(f.label.clone(), id.clone());
    world.released.entry(f.label.clone()).or_insert(false);
    match f.release {
        Release::None => {}
        Release::Report => {
            let (status, b) = secc
                .post_json(
                    &daemon.url("/api/v1/council/releases"),
                    &json!({"report": id}),
                )
                .await;
            assert_eq!(status, 201, "release {}: {b}", f.label);
            world.released.insert(f.label.clone(), true);
        }
        Release::Campaign => {
            wait_current(daemon).await;
            let (_, rv) = secc
                .get(&daemon.url(&format!("/api/v1/reports/{id}")))
                .await;
            let Some(c) = rv["campaign"].as_str().map(str::to_string) else {
                world
                    .notes
                    .push(format!("{} has no campaign to release", f.label));
                return;
            };
            let (_, cv) = secc
                .get(&daemon.url(&format!("/api/v1/campaigns/{c}")))
                .await;
            let held: BTreeSet<String> = cv["reports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let (status, b) = secc
                .post_json(
                    &daemon.url("/api/v1/council/releases"),
                    &json!({"campaign": c}),
                )
                .await;
            assert_eq!(status, 201, "release campaign of {}: {b}", f.label);
            for (label, rid) in &world.ids {
                if held.contains(rid) {
                    world.released.insert(label.clone(), true);
                }
            }
        }
    }
}

/// The campaign of each report, as the secretariat sees it now.
async fn campaigns_of(
    secc: &Client,
    base: &str,
    ids: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (label, id) in ids {
        let (_, rv) = secc.get(&format!("{base}/api/v1/reports/{id}")).await;
        if let Some(c) = rv["campaign"].as_str() {
            out.insert(label.clone(), c.to_string());
        }
    }
    out
}

/// Plays one world. `with_extras`: W' (true) or W (false).
async fn play(s: &Scenario, facts: &[Fact], with_extras: bool) -> World {
    let t0 = std::time::Instant::now();
    let verbose = std::env::var_os("LEAK_HARNESS_VERBOSE").is_some();
    let phase = |what: &str| {
        if verbose {
            eprintln!(
                "  [{}] {what} at {:.1} s",
                if with_extras { "W'" } else { "W" },
                t0.elapsed().as_secs_f64()
            );
        }
    };
    let data = DataDir::new();
    data.cli(&["member", "import", ROSTER]);
    let cast = resolve_cast(&s.picks);
    let mut tokens = BTreeMap::new();
    for (role, m) in &cast {
        let out = data.cli(&["member", "token", &m.id]);
        let t = out
            .split_whitespace()
            .find(|w| w.starts_with("msb_"))
            .expect("token printed")
            .to_string();
        tokens.insert(*role, t);
    }
    let sec = data.add_member("Harness Secretariat", "secretariat", None);
    let smtp_port = smtp_sink();
    let hook_path = format!("/hook/{}-{}", if with_extras { "wp" } else { "w" }, s.seed);
    std::fs::write(
        data.path().join("harness.toml"),
        harness_toml(smtp_port, &format!("http://{}{hook_path}", feed_server())),
    )
    .unwrap();
    for (role, m) in &cast {
        data.cli(&[
            "member",
            "contact",
            &m.id,
            "--email",
            &format!("{role:?}@harness.example").to_lowercase(),
            "--lang",
            "en",
        ]);
    }
    let member_feed = with_extras.then(|| cast[&Role::SmallSector].id.clone());
    std::fs::write(
        data.path().join("feeds.toml"),
        feeds_toml(member_feed.as_deref()),
    )
    .unwrap();
    std::fs::write(data.path().join("hook.key"), "harness-webhook-secret\n").unwrap();
    let imported = import_files(&data, facts, &cast[&Role::SmallSector]);
    let cfg_path = data.path().join("harness.toml");
    let daemon = Daemon::start_with(&data, &["--config", cfg_path.to_str().unwrap()]);
    let client = http();
    let secc = Client::new(&sec);
    let recipient = cast[&Role::Recipient].id.clone();
    let mut world = World {
        ids: HashMap::new(),
        released: HashMap::new(),
        campaign_of: HashMap::new(),
        outputs: BTreeMap::new(),
        notes: Vec::new(),
        tokens: tokens.clone(),
        key: council_key(data.path()),
    };
    for (label, id) in imported {
        world.released.insert(label.clone(), false);
        world.ids.insert(label, id);
    }
    if world.ids.len() < 2 {
        world
            .notes
            .push("a file import printed no report id".into());
    }

    // Every feed polled once (at start) before any submission, so that W and W' agree.
    let feed_count = if member_feed.is_some() { 3 } else { 2 };
    let started = std::time::Instant::now();
    loop {
        let (_, feeds) = secc.get(&daemon.url("/api/v1/feeds")).await;
        let polled = feeds["feeds"].as_array().map_or(0, |a| {
            a.iter()
                .filter(|f| !f["last_success"].is_null() || !f["last_error"].is_null())
                .count()
        });
        if polled >= feed_count || started.elapsed() > Duration::from_secs(8) {
            if polled < feed_count {
                world
                    .notes
                    .push(format!("feeds not polled within 8 s: {feeds}"));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_current(&daemon).await;
    // An inquiry on the first harness advisory for every member class, opened alike in
    // both worlds (#15 item 8): its listing and page go through the comparisons below.
    let (_, adv) = secc
        .get(&daemon.url("/api/v1/advisories?feed=harness-kev&limit=1"))
        .await;
    match adv["advisories"][0]["id"].as_str() {
        Some(a) => {
            let body = serde_json::json!({"advisory": a, "question": "harness inquiry",
                "classes": ["class1", "class2", "general"]});
            let (status, opened) = secc
                .post_json(&daemon.url("/api/v1/inquiries"), &body)
                .await;
            if status != 201 {
                world
                    .notes
                    .push(format!("inquiry not opened: {status} {opened}"));
            }
        }
        None => world.notes.push(format!("no harness advisory: {adv}")),
    }

    // Submission order: W's reports with the extras (W' only) inserted at their positions.
    let n = s.reports.len();
    let mut order: Vec<usize> = Vec::new();
    for i in 0..=n {
        if with_extras {
            for (j, e) in s.extras.iter().enumerate() {
                if e.pos == i {
                    order.push(n + j);
                }
            }
        }
        if i < n {
            order.push(i);
        }
    }
    for &k in &order {
        let f = &facts[k];
        submit_fact(
            &daemon,
            &secc,
            &tokens[&f.provider],
            &recipient,
            f,
            &mut world,
        )
        .await;
    }
    wait_current(&daemon).await;
    let campaign_of = |world: &World, label: &str| world.campaign_of.get(label).cloned();
    world.campaign_of = campaigns_of(&secc, &daemon.base, &world.ids).await;

    // The suspended member, once its reports are in: signed in to the console first, then
    // suspended or expelled; from here on it must get nothing (no API, console, mail).
    let susp_console =
        ConsoleSession::sign_in(&client, &daemon.base, &tokens[&Role::Suspended]).await;
    let status = if s.expel { "expelled" } else { "suspended" };
    data.cli(&["member", "status", &cast[&Role::Suspended].id, status]);
    let suspended_at = std::time::Instant::now();
    for f in facts.iter().filter(|f| f.label.starts_with('a')) {
        submit_fact(
            &daemon,
            &secc,
            &tokens[&f.provider],
            &recipient,
            f,
            &mut world,
        )
        .await;
    }
    wait_current(&daemon).await;
    world.campaign_of = campaigns_of(&secc, &daemon.base, &world.ids).await;

    // Review activity: a pinned merge, sightings, a feedback request and its answers.
    let viewers: BTreeMap<Role, ModelViewer> = cast
        .iter()
        .map(|(r, m)| {
            (
                *r,
                ModelViewer {
                    green: false,
                    role: Some(*r),
                    id: Some(m.id.clone()),
                    class: m.class.clone(),
                    active: true,
                },
            )
        })
        .collect();
    let fact = |label: &str| facts.iter().find(|f| f.label == label).unwrap();
    if let Some((a, b)) = s.merge {
        let (ca, cb) = (
            campaign_of(&world, &format!("w{a}")),
            campaign_of(&world, &format!("w{b}")),
        );
        if let (Some(ca), Some(cb)) = (ca, cb)
            && ca != cb
        {
            let (status, b) = secc
                .post_json(
                    &daemon.url("/api/v1/council/pins"),
                    &json!({"kind": "merge", "a": ca, "b": cb, "note": "harness"}),
                )
                .await;
            if status != 201 {
                world.notes.push(format!("pin merge refused: {b}"));
            }
            wait_current(&daemon).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            wait_current(&daemon).await;
            world.campaign_of = campaigns_of(&secc, &daemon.base, &world.ids).await;
        }
    }
    if let Some(k) = s.split {
        let label = format!("w{k}");
        if let Some(c) = campaign_of(&world, &label) {
            let together = world.campaign_of.values().filter(|x| **x == c).count();
            if together >= 2 {
                let (status, b) = secc
                    .post_json(
                        &daemon.url("/api/v1/council/pins"),
                        &json!({"kind": "split", "campaign": c, "reports": [world.ids[&label]], "note": "harness"}),
                    )
                    .await;
                if status != 201 {
                    world.notes.push(format!("pin split refused: {b}"));
                }
                wait_current(&daemon).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                wait_current(&daemon).await;
                world.campaign_of = campaigns_of(&secc, &daemon.base, &world.ids).await;
            }
        }
    }
    for &(role, k, kind) in &s.sightings {
        if role == Role::Suspended {
            continue;
        }
        let label = format!("w{k}");
        let f = fact(&label);
        if !model_sees(&viewers[&role], f, world.released[&label], &recipient) {
            continue;
        }
        let Some(c) = campaign_of(&world, &label) else {
            continue;
        };
        let (status, b) = Client::new(&tokens[&role])
            .post_json(
                &daemon.url("/api/v1/sightings"),
                &json!({
                    "target": {"campaign": c},
                    "kind": SIGHTING_KINDS[kind],
                    "count": 1,
                    "seen_at": chrono::Utc::now().to_rfc3339(),
                }),
            )
            .await;
        if status != 201 {
            world
                .notes
                .push(format!("sighting by {role:?} refused: {b}"));
        }
    }
    if let Some(k) = s.feedback {
        let label = format!("w{k}");
        if let Some(c) = campaign_of(&world, &label) {
            let (status, b) = secc
                .post_json(
                    &daemon.url("/api/v1/council/feedback"),
                    &json!({"campaign": c, "question": "Seen this?", "classes": ["class1", "class2", "general"]}),
                )
                .await;
            if status == 201 {
                let rid = b["id"].clone();
                for (role, v) in &viewers {
                    if *role != Role::Suspended
                        && model_sees(v, fact(&label), world.released[&label], &recipient)
                    {
                        let _ = Client::new(&tokens[role])
                            .post_json(
                                &daemon.url(&format!("/api/v1/council/feedback/{rid}/answer")),
                                &json!({"kind": "seen", "count": 1}),
                            )
                            .await;
                    }
                }
            } else {
                world.notes.push(format!("feedback request refused: {b}"));
            }
        }
    }
    wait_current(&daemon).await;

    phase("scenario played");
    // --- Outputs --------------------------------------------------------------------------
    let all_campaigns: BTreeSet<String> = world.campaign_of.values().cloned().collect();
    let mut viewer_keys: Vec<ViewerKey> = ROLES.iter().map(|r| ViewerKey::Cast(*r)).collect();
    viewer_keys.push(ViewerKey::Public);
    let mut search_terms: BTreeSet<String> = BTreeSet::new();
    for f in facts.iter().filter(|f| !f.extra) {
        for w in f.title.split_whitespace() {
            search_terms.insert(w.to_string());
        }
        for v in &f.values {
            search_terms.insert(v.value.clone());
        }
    }
    for viewer in &viewer_keys {
        let token = match viewer {
            ViewerKey::Cast(r) => Some(tokens[r].as_str()),
            ViewerKey::Public | ViewerKey::Webhook => None,
        };
        let mut out: BTreeMap<String, Output> = BTreeMap::new();
        let get = |path: String| {
            let url = daemon.url(&path);
            let client = client.clone();
            async move { fetch(&client, &url, token, false, None).await }
        };
        // Reports: every id known to anyone, one past the last, and a far one.
        for f in facts {
            if let Some(id) = world.ids.get(&f.label) {
                out.insert(
                    format!("report[{}]", f.label),
                    get(format!("/api/v1/reports/{}", world.shown_report(id))).await,
                );
            }
        }
        let next = world.ids.len() + 1;
        out.insert(
            "report[absent-next]".into(),
            get(format!(
                "/api/v1/reports/{}",
                world.shown_report(&format!("R-{next}"))
            ))
            .await,
        );
        out.insert(
            "report[absent-far]".into(),
            get(format!("/api/v1/reports/{}", world.shown_report("R-99999"))).await,
        );
        // Campaigns: the list at several limits, each campaign the viewer lists, each campaign
        // known to anyone, and an absent one.
        for q in ["", "?limit=1", "?limit=2", "?limit=3&offset=1"] {
            out.insert(
                format!("campaigns{q}"),
                get(format!("/api/v1/campaigns{q}")).await,
            );
        }
        let listed: Vec<String> = serde_json::from_str::<Value>(&out["campaigns"].body)
            .ok()
            .and_then(|v| {
                v["campaigns"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|c| c["id"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default();
        for (i, c) in listed.iter().enumerate() {
            out.insert(
                format!("campaign[listed {i}]"),
                get(format!("/api/v1/campaigns/{c}")).await,
            );
            // Why grouped and the early-stage picture (#15 items 4, 9).
            out.insert(
                format!("campaign-explain[listed {i}]"),
                get(format!("/api/v1/campaigns/{c}?explain=true")).await,
            );
        }
        for f in facts {
            if let Some(c) = world.campaign_of.get(&f.label) {
                out.insert(
                    format!("campaign[of {}]", f.label),
                    get(format!("/api/v1/campaigns/{}", world.shown_campaign(c))).await,
                );
                out.insert(
                    format!("campaign-explain[of {}]", f.label),
                    get(format!(
                        "/api/v1/campaigns/{}?explain=true",
                        world.shown_campaign(c)
                    ))
                    .await,
                );
            }
        }
        out.insert(
            "campaign[absent]".into(),
            get(format!(
                "/api/v1/campaigns/{}",
                world.shown_campaign("C-2099-0999")
            ))
            .await,
        );
        out.insert(
            "campaign-explain[absent]".into(),
            get(format!(
                "/api/v1/campaigns/{}?explain=true",
                world.shown_campaign("C-2099-0999")
            ))
            .await,
        );
        // Search: every title word and every value of W; query-language probes; limits.
        for t in &search_terms {
            let q: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
            out.insert(
                format!("search[{t}]"),
                get(format!("/api/v1/search?q={q}")).await,
            );
        }
        for (i, t) in search_terms.iter().take(3).enumerate() {
            let q: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
            for limit in [1, 2, 5] {
                out.insert(
                    format!("search[{i}:{t}]&limit={limit}"),
                    get(format!("/api/v1/search?q={q}&limit={limit}")).await,
                );
            }
        }
        for probe in ["tlp:red", "seq:1", "campaign", "extra", "*", "harness"] {
            let q: String = url::form_urlencoded::byte_serialize(probe.as_bytes()).collect();
            out.insert(
                format!("search-probe[{probe}]"),
                get(format!("/api/v1/search?q={q}&limit=200")).await,
            );
        }
        // Feeds, council routes.
        for path in [
            "/api/v1/feeds",
            // Advisories (public context): listing, search, feed filter, paging.
            "/api/v1/advisories",
            "/api/v1/advisories?q=harness",
            "/api/v1/advisories?feed=harness-kev&limit=2",
            "/api/v1/advisories?offset=1&limit=1",
            "/api/v1/council/feedback",
            "/api/v1/council/stats?from=2000-01-01&to=2100-01-01&format=json",
            "/api/v1/council/stats?from=2000-01-01&to=2100-01-01&format=csv",
            "/api/v1/council/audit",
            "/api/v1/council/pins",
            // Inquiries: the listing, the one opened, one that does not exist.
            "/api/v1/inquiries",
            "/api/v1/inquiries/I-1",
            "/api/v1/inquiries/I-99",
            "/api/v1/ledger",
            "/api/v1/ledger?format=csv",
            "/api/v1/no-such-route",
        ] {
            out.insert(path.to_string(), get(path.to_string()).await);
        }
        for f in facts.iter().filter(|f| !f.extra) {
            if let Some(c) = world.campaign_of.get(&f.label) {
                out.insert(
                    format!("dispositions[of {}]", f.label),
                    get(format!("/api/v1/council/dispositions/{c}")).await,
                );
            }
        }
        // TAXII, Bearer and Basic.
        for basic in [false, true] {
            let tag = if basic { "basic" } else { "bearer" };
            let mut paths = vec![
                "/taxii2/".to_string(),
                "/taxii2/api/".to_string(),
                "/taxii2/api/collections/".to_string(),
            ];
            for alias in ["task-force", "members", "public"] {
                paths.push(format!("/taxii2/api/collections/{alias}/"));
                paths.push(format!("/taxii2/api/collections/{alias}/objects/"));
                paths.push(format!("/taxii2/api/collections/{alias}/manifest/"));
            }
            for p in paths {
                let o = fetch(&client, &daemon.url(&p), token, basic, None).await;
                out.insert(format!("{tag} {p}"), o);
            }
        }
        // Console with a session (the suspended member's session predates its suspension).
        let session = match viewer {
            ViewerKey::Cast(Role::Suspended) => susp_console.as_ref().map(|s| s.header()),
            ViewerKey::Cast(r) => ConsoleSession::sign_in(&client, &daemon.base, &tokens[r])
                .await
                .map(|s| s.header()),
            ViewerKey::Public | ViewerKey::Webhook => None,
        };
        let mut pages = vec![
            "/console/".to_string(),
            "/console/campaigns".to_string(),
            "/console/stats".to_string(),
            "/console/feeds".to_string(),
            "/console/ledger".to_string(),
            "/console/advisories".to_string(),
            "/console/advisories?q=harness".to_string(),
            "/console/inquiries".to_string(),
            "/console/inquiries/I-1".to_string(),
            "/console/campaigns/C-2099-0999".to_string(),
        ];
        let mut console_campaigns: Vec<(String, String)> = Vec::new();
        for (i, c) in listed.iter().enumerate() {
            console_campaigns.push((format!("console campaign[listed {i}]"), c.clone()));
        }
        for f in facts {
            if let Some(c) = world.campaign_of.get(&f.label) {
                console_campaigns.push((format!("console campaign[of {}]", f.label), c.clone()));
            }
        }
        for p in pages.drain(..) {
            let o = fetch(&client, &daemon.url(&p), None, false, session.as_deref()).await;
            out.insert(format!("console {p}"), o);
        }
        for (key, c) in console_campaigns {
            let o = fetch(
                &client,
                &daemon.url(&format!("/console/campaigns/{c}")),
                None,
                false,
                session.as_deref(),
            )
            .await;
            out.insert(key, o);
        }
        // Health and metrics (unauthenticated: the same for everyone; read once per viewer).
        out.insert("/healthz".into(), get("/healthz".into()).await);
        out.insert("/metrics".into(), get("/metrics".into()).await);
        world.outputs.insert(*viewer, out);
    }

    // Write probes (after the outputs): a sighting on every campaign known to anyone and on an
    // absent one; hidden and absent must answer alike.
    for viewer in ROLES {
        let c = Client::new(&tokens[&viewer]);
        let mut out = BTreeMap::new();
        let probe = |campaign: String| {
            let c = c.clone();
            let url = daemon.url("/api/v1/sightings");
            async move {
                let r = c
                    .http
                    .post(url)
                    .bearer_auth(&c.token)
                    .json(&json!({
                        "target": {"campaign": campaign},
                        "kind": "not-seen",
                        "count": 1,
                        "seen_at": chrono::Utc::now().to_rfc3339(),
                    }))
                    .send()
                    .await
                    .expect("POST");
                Output {
                    status: r.status().as_u16(),
                    body: r.text().await.unwrap_or_default(),
                }
            }
        };
        for f in facts.iter().filter(|f| !f.extra) {
            if let Some(cid) = world.campaign_of.get(&f.label) {
                out.insert(
                    format!("sighting[of {}]", f.label),
                    probe(cid.clone()).await,
                );
            }
        }
        out.insert("sighting[absent]".into(), probe("C-2099-0999".into()).await);
        world
            .outputs
            .get_mut(&ViewerKey::Cast(viewer))
            .unwrap()
            .extend(out);
    }
    let _ = all_campaigns;
    phase("HTTP outputs read");
    // Alerts (coalesced for a second) and their webhook: give them time to go out.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let hooks: Vec<String> = HOOKS
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| *p == hook_path)
        .map(|(_, b)| b.clone())
        .collect();
    world.outputs.entry(ViewerKey::Webhook).or_default().insert(
        "webhook".into(),
        Output {
            status: 200,
            body: format!("[{}]", hooks.join(",")),
        },
    );
    let mails: Vec<(std::time::Instant, String)> = MAILS
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, ..)| *p == smtp_port)
        .map(|(_, t, m)| (*t, m.clone()))
        .collect();
    world.notes.push(format!(
        "{} alert webhook post(s), {} mail(s)",
        hooks.len(),
        mails.len()
    ));
    for (i, (at, mail)) in mails.into_iter().enumerate() {
        // Quoted-printable soft breaks would cut markers in two.
        let text = mail.replace("=\r\n", "");
        let Some(role) = ROLES
            .iter()
            .find(|r| text.contains(&format!("{r:?}@harness.example").to_lowercase()))
        else {
            continue;
        };
        let after = *role == Role::Suspended && at > suspended_at + Duration::from_millis(200);
        if *role == Role::Suspended && !after {
            // Mail sent while it was still a member.
            continue;
        }
        world
            .outputs
            .entry(ViewerKey::Cast(*role))
            .or_default()
            .insert(
                format!("mail[{i}]{}", if after { " after suspension" } else { "" }),
                Output {
                    status: 250,
                    body: text,
                },
            );
    }
    drop(daemon);

    // CLI outputs (the daemon is stopped: the CLI opens the projections itself).
    let cfg = data.path().join("harness.toml");
    let cfg = cfg.to_str().unwrap();
    // Each CLI run opens the projections (about 1.3 s): by default the public STIX export and
    // one member chosen by the seed (export and digest preview); LEAK_HARNESS_ALL_CLI=1 runs every viewer's.
    let all_cli = std::env::var_os("LEAK_HARNESS_ALL_CLI").is_some();
    // Not the suspended member: what an operator exports on its behalf is the operator's
    // business; the mail it would get is checked itself.
    let chosen = [ROLES[(s.seed % 6) as usize]];
    for viewer in &viewer_keys {
        if let ViewerKey::Cast(r) = viewer
            && (*r == Role::Suspended || (!all_cli && !chosen.contains(r)))
        {
            continue;
        }
        let mut cli: Vec<(String, Vec<String>)> = Vec::new();
        match viewer {
            ViewerKey::Cast(r) => {
                let id = cast[r].id.clone();
                let formats: &[&str] = if all_cli { &["stix", "csv"] } else { &["stix"] };
                for format in formats {
                    cli.push((
                        format!("export {format} --as"),
                        vec![
                            "export".into(),
                            "--format".into(),
                            (*format).into(),
                            "--as".into(),
                            id.clone(),
                        ],
                    ));
                }
                cli.push((
                    "digest preview --as".into(),
                    vec![
                        "--config".into(),
                        cfg.into(),
                        "digest".into(),
                        "preview".into(),
                        "harness".into(),
                        "--as".into(),
                        id.clone(),
                    ],
                ));
            }
            ViewerKey::Webhook => {}
            ViewerKey::Public => {
                let formats: &[&str] = if all_cli { &["stix", "csv"] } else { &["stix"] };
                for format in formats {
                    cli.push((
                        format!("export {format} --audience public"),
                        vec![
                            "export".into(),
                            "--format".into(),
                            (*format).into(),
                            "--audience".into(),
                            "public".into(),
                        ],
                    ));
                }
            }
        }
        for (key, args) in cli {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = data.cli_output(&args);
            let body = format!(
                "{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            world.outputs.get_mut(viewer).unwrap().insert(
                format!("cli {key}"),
                Output {
                    status: o.status.code().unwrap_or(-1) as u16,
                    body,
                },
            );
        }
    }
    phase("CLI outputs read");
    // The data directory (a temporary path, different in W and W') shows wherever a file path
    // leaks into content: the scan still sees what the path names, the differential compares
    // the rest.
    let dir = data.path().display().to_string();
    for routes in world.outputs.values_mut() {
        for o in routes.values_mut() {
            o.body = o.body.replace(&dir, "<datadir>");
            let escaped = dir.replace('/', "&#x2f;");
            o.body = o.body.replace(&escaped, "<datadir>");
        }
    }
    world
}

// ---------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------

/// Normalises an output for the differential: opaque ids by order of first appearance,
/// times, CSRF tokens and paging cursors blanked.
fn normalise(text: &str) -> String {
    static RES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        vec![
            (
                Regex::new(
                    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?UTC|Z|[+-]\d{2}:?\d{2})?",
                )
                .unwrap(),
                "<time>",
            ),
            (
                Regex::new(r#"name="csrf" value="[^"]*""#).unwrap(),
                "<csrf>",
            ),
            (Regex::new(r#""next"\s*:\s*"[^"]*""#).unwrap(), "<next>"),
            (
                Regex::new(r"\d+(\.\d+)? (seconds?|minutes?|hours?|秒|分) ?(ago|前)").unwrap(),
                "<ago>",
            ),
        ]
    });
    let mut s = text.to_string();
    for (re, rep) in res {
        s = re.replace_all(&s, *rep).into_owned();
    }
    static IDS: OnceLock<Regex> = OnceLock::new();
    let ids = IDS.get_or_init(|| {
        Regex::new(
            r"R-[a-p][a-z2-7]{12}|C-[a-p][a-z2-7]{12}|R-\d+|C-\d{4}-\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        )
        .unwrap()
    });
    let mut seen: HashMap<String, usize> = HashMap::new();
    ids.replace_all(&s, |c: &regex::Captures| {
        let n = seen.len();
        let k = *seen.entry(c[0].to_string()).or_insert(n);
        let p = &c[0][..1];
        let p = if p == "R" || p == "C" { p } else { "U" };
        format!("{p}#{k}")
    })
    .into_owned()
}

/// A STIX bundle or TAXII envelope with ids blanked and every array sorted (falls back to
/// [`normalise`] when the body is not JSON, e.g. an error text).
fn canonical_stix(body: &str) -> String {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) => *s = blank_ids(&normalise(s)),
            Value::Array(a) => {
                a.iter_mut().for_each(walk);
                a.sort_by_key(|x| x.to_string());
            }
            Value::Object(o) => {
                o.remove("next");
                o.values_mut().for_each(walk);
            }
            _ => {}
        }
    }
    let stdout = body.split("\n--- stderr ---\n").next().unwrap_or(body);
    match serde_json::from_str::<Value>(stdout) {
        Ok(mut v) => {
            walk(&mut v);
            serde_json::to_string_pretty(&v).unwrap()
        }
        Err(_) => normalise(body),
    }
}

fn blank_ids(s: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[RCU]#\d+").unwrap())
        .replace_all(s, "#")
        .into_owned()
}

/// Console pages without fractional numbers (SVG coordinates of the timeline).
fn no_coordinates(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\d+\.\d+").unwrap())
        .replace_all(text, "<n>")
        .into_owned()
}

/// Volatile metric lines (process time, request counters) left out of the differential:
/// the harness itself sends different numbers of requests to W and W'.
fn metrics_stable(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.starts_with('#')
                && ![
                    "uptime", "http_", "seconds", "searches", "requests", "latency",
                ]
                .iter()
                .any(|v| l.contains(v))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A search answer without its echoed query.
fn strip_query_echo(body: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r#""query"\s*:\s*"(?:[^"\\]|\\.)*""#).unwrap())
        .replace_all(body, r#""query":"…""#)
        .into_owned()
}

/// The first words of a body, for messages (an HTML page's title).
fn short(body: &str) -> String {
    if let (Some(a), Some(b)) = (body.find("<title>"), body.find("</title>"))
        && a < b
    {
        return format!("page «{}»", &body[a + 7..b]);
    }
    body.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(160)
        .collect()
}

/// Needle occurrence with identifier boundaries (so `m12` does not match inside `m121`).
fn contains_bounded(hay: &str, needle: &str) -> bool {
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(at) = hay[from..].find(needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let after = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before && after {
            return true;
        }
        from = start + 1;
    }
    false
}

fn excerpt(hay: &str, needle: &str) -> String {
    let at = hay.find(needle).unwrap_or(0);
    let start = hay.floor_char_boundary(at.saturating_sub(80));
    let end = hay.ceil_char_boundary((at + needle.len() + 80).min(hay.len()));
    hay[start..end].replace('\n', "⏎")
}

fn first_difference(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (
            al.get(i).copied().unwrap_or(""),
            bl.get(i).copied().unwrap_or(""),
        );
        if x != y {
            let p = x
                .char_indices()
                .zip(y.chars())
                .find(|((_, c1), c2)| c1 != c2)
                .map(|((i, _), _)| i)
                .unwrap_or(x.len().min(y.len()));
            let cut = |s: &str| {
                let st = s.floor_char_boundary(p.saturating_sub(60));
                let en = s.ceil_char_boundary((p + 140).min(s.len()));
                s[st..en].to_string()
            };
            return format!("line {i}: W «{}» vs W' «{}»", cut(x), cut(y));
        }
    }
    "equal".into()
}

/// One failed check.
#[derive(Debug, Clone)]
struct Failure {
    check: &'static str,
    viewer: ViewerKey,
    route: String,
    what: String,
}

impl Failure {
    /// What kind of failure this is, without the case's markers and ids: the summary's row.
    fn signature(&self) -> String {
        static RES: OnceLock<[Regex; 4]> = OnceLock::new();
        let [brackets, status, hexes, ids] = RES.get_or_init(|| {
            [
                Regex::new(r"\[[^\]]*\]").unwrap(),
                Regex::new(r" \(\d+\)$| \(C-[0-9-]+\)$").unwrap(),
                Regex::new(r"\b[tuv]?[0-9a-f]{10,}(\.example)?\b|http://u[0-9a-f]+\.example/p")
                    .unwrap(),
                Regex::new(r"\b(m\d{3}|R-\d+|C-\d{4}-\d+|w\d+|x\d+)\b").unwrap(),
            ]
        });
        let route = self
            .route
            .trim_start_matches("W' ")
            .trim_start_matches("W ");
        let route = brackets.replace_all(route, "[…]");
        let route = status.replace_all(&route, "");
        let what = match self.check {
            "differential" => String::new(),
            _ => {
                let head = self.what.split(": ").next().unwrap_or_default();
                let head = head.split(" \"").next().unwrap_or_default();
                let head = hexes.replace_all(head, "…");
                ids.replace_all(&head, "…").into_owned()
            }
        };
        format!("[{}] {} {} {}", self.check, self.viewer, route, what)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] viewer={} route={} : {}",
            self.check, self.viewer, self.route, self.what
        )
    }
}

/// The model's view of one world: who sees which fact.
fn visible_sets(
    s: &Scenario,
    facts: &[Fact],
    world: &World,
) -> BTreeMap<ViewerKey, (ModelViewer, BTreeSet<String>)> {
    let cast = resolve_cast(&s.picks);
    let recipient = cast[&Role::Recipient].id.clone();
    let mut out = BTreeMap::new();
    let mut add = |key: ViewerKey, v: ModelViewer| {
        let seen = facts
            .iter()
            .filter(|f| world.ids.contains_key(&f.label))
            .filter(|f| model_sees(&v, f, world.released[&f.label], &recipient))
            .map(|f| f.label.clone())
            .collect();
        out.insert(key, (v, seen));
    };
    for (r, m) in &cast {
        add(
            ViewerKey::Cast(*r),
            ModelViewer {
                green: false,
                role: Some(*r),
                id: Some(m.id.clone()),
                class: m.class.clone(),
                active: *r != Role::Suspended,
            },
        );
    }
    for (key, green) in [(ViewerKey::Public, false), (ViewerKey::Webhook, true)] {
        add(
            key,
            ModelViewer {
                green,
                role: None,
                id: None,
                class: String::new(),
                active: true,
            },
        );
    }
    out
}

/// The audience an output is computed for: the viewer, or the public whoever asks.
fn public_output(route: &str) -> bool {
    route.contains("collections/public/") || route.contains("--audience public")
}

/// Scans and per-world checks of one world.
fn check_world(s: &Scenario, facts: &[Fact], world: &World, tag: &str) -> Vec<Failure> {
    let cast = resolve_cast(&s.picks);
    let sets = visible_sets(s, facts, world);
    let public_set = sets[&ViewerKey::Public].1.clone();
    let mut failures = Vec::new();
    let present: Vec<&Fact> = facts
        .iter()
        .filter(|f| world.ids.contains_key(&f.label))
        .collect();
    let providers: BTreeSet<Role> = present.iter().map(|f| f.provider).collect();
    for (viewer, routes) in &world.outputs {
        let (mv, seen) = &sets[viewer];
        // Needles: (needle, what it is, bounded?).
        let needles_for = |allowed: &BTreeSet<String>| {
            let mut needles: Vec<(String, String, bool)> = Vec::new();
            let visible_markers: BTreeSet<&str> = present
                .iter()
                .filter(|f| allowed.contains(&f.label))
                .flat_map(|f| f.values.iter().map(|v| v.marker.as_str()))
                .collect();
            for f in &present {
                if !allowed.contains(&f.label) {
                    needles.push((
                        f.title_marker.clone(),
                        format!(
                            "title of hidden report {} ({} {:?})",
                            f.label, f.tlp, f.scope
                        ),
                        false,
                    ));
                    for v in &f.values {
                        if !visible_markers.contains(v.marker.as_str()) {
                            needles.push((
                                v.marker.clone(),
                                format!(
                                    "{} value {} of hidden report {}",
                                    v.kind, v.value, f.label
                                ),
                                false,
                            ));
                        }
                    }
                }
            }
            for (role, t) in &world.tokens {
                needles.push((t.clone(), format!("token of {role:?}"), false));
            }
            needles.push((FEED_PASSWORD.into(), "feed URL password".into(), false));
            needles.push((FEED_API_KEY.into(), "feed URL API key".into(), false));
            for role in &providers {
                if Some(*role) == mv.role {
                    continue;
                }
                let m = &cast[role];
                needles.push((
                    m.id.clone(),
                    format!("member id of provider {role:?}"),
                    true,
                ));
                // Two roster members can share a name (one organisation, two seats): the
                // viewer's own name on its own pages names nobody else.
                let own_name = mv
                    .role
                    .and_then(|r| cast.get(&r))
                    .map(|me| me.name.as_str());
                if m.name != "【非公表】" && !m.name.is_empty() && own_name != Some(m.name.as_str())
                {
                    needles.push((
                        m.name.clone(),
                        format!("name of provider {role:?} ({})", m.id),
                        false,
                    ));
                }
                if let Some(sec) = &m.sector
                    && sector_size(sec) < 3
                {
                    needles.push((
                        sec.clone(),
                        format!("sector of provider {role:?} (< 3 members)"),
                        true,
                    ));
                    if let Some((_, ja)) = SECTOR_JA.iter().find(|(c, _)| c == sec) {
                        needles.push((
                            ja.to_string(),
                            format!("sector label of provider {role:?} (< 3 members)"),
                            false,
                        ));
                    }
                }
            }
            needles
        };
        let viewer_name: Option<&str> = mv.role.and_then(|r| cast.get(&r)).map(|m| m.name.as_str());
        let own = needles_for(seen);
        let public = needles_for(&public_set);
        for (route, o) in routes {
            let needles = if public_output(route) { &public } else { &own };
            // A search answer echoes its query: the probe's own words are not a leak.
            let mut body = if route.starts_with("search") {
                strip_query_echo(&o.body)
            } else {
                o.body.clone()
            };
            // The console names the signed-in member; a sector word inside the viewer's own
            // organisation name (港湾 in 海上・港湾・航空技術研究所) names nobody else.
            if let Some(me) = viewer_name.filter(|n| !n.is_empty()) {
                body = body.replace(me, "");
            }
            for (needle, what, bounded) in needles {
                let hit = if *bounded {
                    contains_bounded(&body, needle)
                } else {
                    body.contains(needle.as_str())
                };
                if hit {
                    failures.push(Failure {
                        check: "scan",
                        viewer: *viewer,
                        route: format!("{tag} {route} ({})", o.status),
                        what: format!("{what}: …{}…", excerpt(&body, needle)),
                    });
                }
            }
        }
        // Visibility and hidden-equals-absent for reports.
        let absent = routes
            .get("report[absent-far]")
            .map(|o| (o.status, normalise(&o.body)));
        for f in &present {
            let Some(o) = routes.get(&format!("report[{}]", f.label)) else {
                continue;
            };
            let visible = seen.contains(&f.label);
            if !visible && o.status == 200 {
                failures.push(Failure {
                    check: "visibility",
                    viewer: *viewer,
                    route: format!("{tag} report[{}]", f.label),
                    what: format!(
                        "model hides it ({} {:?} released={} provider={:?}) but it is shown",
                        f.tlp, f.scope, world.released[&f.label], f.provider
                    ),
                });
            } else if visible && o.status != 200 && *viewer != ViewerKey::Public {
                failures.push(Failure {
                    check: "withheld",
                    viewer: *viewer,
                    route: format!("{tag} report[{}]", f.label),
                    what: format!(
                        "model shows it ({} {:?} released={}) but the answer is {}",
                        f.tlp, f.scope, world.released[&f.label], o.status
                    ),
                });
            }
            if !visible
                && let Some(absent) = &absent
                && (o.status, normalise(&o.body)) != *absent
            {
                failures.push(Failure {
                    check: "hidden-equals-absent",
                    viewer: *viewer,
                    route: format!("{tag} report[{}]", f.label),
                    what: format!(
                        "hidden answers {} {:?}, absent answers {} {:?}",
                        o.status,
                        short(&o.body),
                        absent.0,
                        short(&absent.1)
                    ),
                });
            }
        }
        // Campaigns none of whose reports the viewer may see answer like an absent one.
        let by_campaign: BTreeMap<&String, Vec<&Fact>> =
            present.iter().fold(BTreeMap::new(), |mut m, f| {
                if let Some(c) = world.campaign_of.get(&f.label) {
                    m.entry(c).or_default().push(*f);
                }
                m
            });
        let absent_c = routes
            .get("campaign[absent]")
            .map(|o| (o.status, normalise(&o.body)));
        let absent_console = routes
            .get("console /console/campaigns/C-2099-0999")
            .map(|o| (o.status, normalise(&o.body)));
        let absent_sighting = routes
            .get("sighting[absent]")
            .map(|o| (o.status, normalise(&o.body)));
        for (c, members) in &by_campaign {
            if members.iter().any(|f| seen.contains(&f.label)) {
                continue;
            }
            let label = &members[0].label;
            for (key, absent) in [
                (format!("campaign[of {label}]"), &absent_c),
                (format!("console campaign[of {label}]"), &absent_console),
                (format!("sighting[of {label}]"), &absent_sighting),
            ] {
                // A sighting answer carries the new sighting's id: when the hidden one is
                // accepted, compare statuses (accepting the absent one fails on its own below).
                let same = |o: &Output, absent: &(u16, String)| {
                    if key.starts_with("sighting") && (200..300).contains(&o.status) {
                        o.status == absent.0
                    } else {
                        (o.status, normalise(&o.body)) == *absent
                    }
                };
                if let (Some(o), Some(absent)) = (routes.get(&key), absent)
                    && !same(o, absent)
                {
                    failures.push(Failure {
                        check: "hidden-equals-absent",
                        viewer: *viewer,
                        route: format!("{tag} {key} ({c})"),
                        what: format!(
                            "hidden campaign answers {} {:?}, absent answers {} {:?}",
                            o.status,
                            short(&o.body),
                            absent.0,
                            short(&absent.1)
                        ),
                    });
                }
            }
        }
        if let Some(o) = routes.get("sighting[absent]")
            && (200..300).contains(&o.status)
        {
            failures.push(Failure {
                check: "hidden-equals-absent",
                viewer: *viewer,
                route: format!("{tag} sighting[absent]"),
                what: format!(
                    "a sighting on an absent campaign was accepted: {} {}",
                    o.status, o.body
                ),
            });
        }
        // Every campaign a webhook names holds a report its audience may see.
        if *viewer == ViewerKey::Webhook
            && let Some(o) = routes.get("webhook")
        {
            let payloads: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
            let named: BTreeSet<String> = payloads
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["campaigns"].as_array().cloned().unwrap_or_default())
                .filter_map(|c| c["id"].as_str().map(str::to_string))
                .collect();
            for c in named {
                let Some(members) = by_campaign.get(&c) else {
                    continue;
                };
                if !members.iter().any(|f| seen.contains(&f.label)) {
                    failures.push(Failure {
                        check: "webhook-audience",
                        viewer: *viewer,
                        route: format!("{tag} webhook"),
                        what: format!(
                            "names {c}, made only of reports above its audience: {}",
                            members
                                .iter()
                                .map(|f| format!(
                                    "{} ({} {:?} released={})",
                                    f.label, f.tlp, f.scope, world.released[&f.label]
                                ))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
        // The suspended member: no API answer, no console page, no TAXII.
        if *viewer == ViewerKey::Cast(Role::Suspended) {
            for (route, o) in routes {
                let open = route == "/healthz" || route == "/metrics" || route.starts_with("cli ");
                if !open && (200..300).contains(&o.status) {
                    failures.push(Failure {
                        check: "suspended",
                        viewer: *viewer,
                        route: format!("{tag} {route}"),
                        what: format!(
                            "a {} member got {}: {}",
                            if s.expel { "expelled" } else { "suspended" },
                            o.status,
                            short(&o.body)
                        ),
                    });
                }
            }
        }
    }
    failures
}

/// The differential: outputs of viewers from whom all extra material is hidden.
fn differential(s: &Scenario, facts: &[Fact], w: &World, wp: &World) -> Vec<Failure> {
    let sets = visible_sets(s, facts, wp);
    let extras: Vec<&Fact> = facts.iter().filter(|f| f.extra).collect();
    let mut failures = Vec::new();
    for (viewer, (_, seen)) in &sets {
        let visible_markers: BTreeSet<&str> = facts
            .iter()
            .filter(|f| seen.contains(&f.label))
            .flat_map(|f| f.values.iter().map(|v| v.marker.as_str()))
            .collect();
        // Compared only when the extras are hidden from the viewer and share no value with
        // what it sees, and the extras changed no release of W material.
        let hidden = extras.iter().all(|f| {
            !seen.contains(&f.label)
                && f.values
                    .iter()
                    .all(|v| !visible_markers.contains(v.marker.as_str()))
        });
        let same_releases = facts
            .iter()
            .filter(|f| !f.extra)
            .all(|f| w.released.get(&f.label) == wp.released.get(&f.label));
        if !hidden || !same_releases {
            continue;
        }
        let (Some(a), Some(b)) = (w.outputs.get(viewer), wp.outputs.get(viewer)) else {
            continue;
        };
        for (route, oa) in a {
            if route.starts_with("sighting[")
                || route == "report[absent-next]"
                || route.starts_with("mail[")
                || route == "webhook"
            {
                // Probes written after the reads; the next id is a different id in W'.
                continue;
            }
            let Some(ob) = b.get(route) else {
                failures.push(Failure {
                    check: "differential",
                    viewer: *viewer,
                    route: route.clone(),
                    what: "output missing in W'".into(),
                });
                continue;
            };
            let (na, nb) = if route == "/metrics" {
                (metrics_stable(&oa.body), metrics_stable(&ob.body))
            } else if route.contains("taxii2/api/collections/") || route.contains("stix") {
                // STIX ids are UUIDs derived from report ids, and bundles are ordered by them:
                // compare the objects as a multiset, ids blanked.
                (canonical_stix(&oa.body), canonical_stix(&ob.body))
            } else if route.starts_with("console") {
                // The timeline's coordinates follow the submission times (milliseconds apart).
                (
                    no_coordinates(&normalise(&oa.body)),
                    no_coordinates(&normalise(&ob.body)),
                )
            } else {
                (normalise(&oa.body), normalise(&ob.body))
            };
            if oa.status != ob.status || na != nb {
                failures.push(Failure {
                    check: "differential",
                    viewer: *viewer,
                    route: route.clone(),
                    what: format!(
                        "status W {} vs W' {}; {}",
                        oa.status,
                        ob.status,
                        first_difference(&na, &nb)
                    ),
                });
            }
        }
    }
    failures
}

fn describe(s: &Scenario, facts: &[Fact]) -> String {
    let cast = resolve_cast(&s.picks);
    let mut d = String::from("cast:");
    for (r, m) in &cast {
        let _ = write!(
            d,
            " {r:?}={}({}{})",
            m.id,
            m.class,
            m.sector
                .as_deref()
                .map(|s| format!(",{s}"))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        d,
        "\nsuspended member is {}",
        if s.expel { "expelled" } else { "suspended" }
    );
    for f in facts {
        let _ = write!(
            d,
            "\n  {} by {:?}: {} {:?} {} release={:?} values={:?}",
            f.label,
            f.provider,
            f.tlp,
            f.scope,
            f.confidence,
            f.release,
            f.values
                .iter()
                .map(|v| v.value.as_str())
                .collect::<Vec<_>>()
        );
    }
    for (i, e) in s.extras.iter().enumerate() {
        let _ = write!(d, "\n  x{i} inserted before w{} ({:?})", e.pos, e.kind);
    }
    let _ = write!(
        d,
        "\nmerge={:?} split={:?} sightings={:?} feedback={:?}",
        s.merge, s.split, s.sightings, s.feedback
    );
    d
}

/// Runs one case: both worlds side by side, then every check.
fn run_case(s: &Scenario) -> (Vec<Failure>, String) {
    let facts = facts(s);
    // Each world on its own thread and runtime: the CLI steps block.
    let world = |extras: bool| {
        let facts = &facts;
        move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(play(s, facts, extras))
        }
    };
    let (w, wp) = std::thread::scope(|scope| {
        let a = scope.spawn(world(false));
        let b = scope.spawn(world(true));
        (
            a.join().expect("world W panicked"),
            b.join().expect("world W' panicked"),
        )
    });
    let mut failures = check_world(s, &facts, &w, "W");
    failures.extend(check_world(s, &facts, &wp, "W'"));
    failures.extend(differential(s, &facts, &w, &wp));
    let mut notes = describe(s, &facts);
    for n in w.notes.iter().chain(&wp.notes) {
        let _ = write!(notes, "\nnote: {n}");
    }
    (failures, notes)
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn differential_leak_harness() {
    let cases = env_u32("PROPTEST_CASES", 8);
    let keep_going = std::env::var_os("LEAK_HARNESS_KEEP_GOING").is_some();
    let config = Config {
        cases,
        max_shrink_iters: env_u32("PROPTEST_MAX_SHRINK_ITERS", 0),
        failure_persistence: None,
        ..Config::default()
    };
    // A printed seed replays the whole run: LEAK_HARNESS_SEED=N.
    let seed: u64 = std::env::var("LEAK_HARNESS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("leak harness: {cases} case(s), seed {seed} (replay with LEAK_HARNESS_SEED={seed})");
    let seed_bytes: Vec<u8> = (0..4u64)
        .flat_map(|i| seed.rotate_left(16 * i as u32).to_le_bytes())
        .collect();
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed_bytes,
        ),
    );
    // Per check: (first failing case's failures, its scenario), for the keep-going summary.
    let first: Mutex<BTreeMap<&'static str, (Vec<String>, String)>> = Mutex::default();
    // Per failure signature: (cases it failed in, first case, first example).
    let kinds: Mutex<BTreeMap<String, (usize, usize, String)>> = Mutex::default();
    let case_no = Mutex::new(0usize);
    let result = runner.run(&scenario(), |s| {
        let n = {
            let mut c = case_no.lock().unwrap();
            *c += 1;
            *c
        };
        let started = std::time::Instant::now();
        let (failures, notes) = run_case(&s);
        eprintln!(
            "leak harness: case {n} ran in {:.1} s, {} failures",
            started.elapsed().as_secs_f64(),
            failures.len()
        );
        if failures.is_empty() {
            return Ok(());
        }
        let shown = if std::env::var_os("LEAK_HARNESS_ALL").is_some() {
            usize::MAX
        } else {
            12
        };
        let mut case_kinds: BTreeMap<String, String> = BTreeMap::new();
        for f in &failures {
            case_kinds
                .entry(f.signature())
                .or_insert_with(|| f.to_string());
        }
        {
            let mut k = kinds.lock().unwrap();
            for (sig, example) in &case_kinds {
                let e = k.entry(sig.clone()).or_insert((0, n, example.clone()));
                e.0 += 1;
            }
        }
        let mut by_check: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for f in &failures {
            by_check.entry(f.check).or_default().push(f.to_string());
        }
        let mut msg = format!("case {n}: {} failures\n", failures.len());
        for (check, list) in &by_check {
            let _ = writeln!(msg, "== {check}: {} failures, first {shown}:", list.len());
            for l in list.iter().take(shown) {
                let _ = writeln!(msg, "  {l}");
            }
            first
                .lock()
                .unwrap()
                .entry(check)
                .or_insert_with(|| (list.clone(), format!("case {n}\n{notes}")));
        }
        let _ = writeln!(
            msg,
            "== kinds of failure in this case ({}):",
            case_kinds.len()
        );
        for sig in case_kinds.keys() {
            let _ = writeln!(msg, "  {sig}");
        }
        let _ = write!(msg, "scenario:\n{notes}");
        if keep_going {
            eprintln!("{msg}");
            Ok(())
        } else {
            Err(TestCaseError::fail(msg))
        }
    });
    let first = first.into_inner().unwrap();
    let kinds = kinds.into_inner().unwrap();
    if keep_going && !kinds.is_empty() {
        let mut table = format!(
            "leak harness: {} kinds of failure over {cases} cases (cases failing, first case, example)\n",
            kinds.len()
        );
        for (sig, (count, case, example)) in &kinds {
            let example: String = example.chars().take(400).collect();
            let _ = writeln!(
                table,
                "{sig}\n    {count} case(s), first case {case}: {example}"
            );
        }
        eprintln!("{table}");
    }
    if keep_going && !first.is_empty() {
        let mut msg =
            String::from("leak harness: failing checks, each with its first failing case\n");
        for (check, (list, notes)) in &first {
            let _ = writeln!(
                msg,
                "== {check} ({} failures in its first failing {})",
                list.len(),
                notes.lines().next().unwrap_or("")
            );
            for l in list.iter().take(20) {
                let _ = writeln!(msg, "  {l}");
            }
            let _ = writeln!(msg, "{notes}");
        }
        panic!("{msg}");
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

//! Digests and alerts across leader failovers (issue #16, item 5): two nodes on one
//! PostgreSQL store, the leader killed (`kill -9`) the moment a digest window starts going
//! out, three times over; every recipient receives every window exactly once, and the
//! windows leave no gap. An alert pending in its coalescing window when the leader is
//! killed, and a change made while no node leads, both reach every alert recipient once.
//!
//! The mail goes to the real SMTP test server (aiosmtpd, [`Sink`]); what is asserted is what
//! it received, grouped by Message-ID (one per digest window and recipient), checked against
//! the store's own record of the windows and of the reports received in them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use musubi::outputs::mail::render::message_id;

use crate::cluster::one_leader;
use crate::mail::{Sink, all_text, smtp_toml};
use crate::pg::PgCluster;
use crate::util::{Client, Daemon, DataDir, register_operator, submission};

/// The digest under test: due every five seconds (the leader looks every 20 s, and at once
/// when it takes over), to the class-1 members and the secretariat, with the statistics
/// section whose "reports received" line is checked against the store.
const DIGEST: &str = r#"
[alerts]
enabled = false

[[digest]]
name = "fo"
schedule = "*/5 * * * * *"
classes = ["class1"]
secretariat = true
language = "member"
sections = ["campaigns", "statistics"]
"#;

/// The recipients: four class-1 members, then the secretariat (member ids in the order
/// they are added to the fresh store).
const MEMBERS: [&str; 4] = ["m001", "m002", "m003", "m004"];
const SECRETARIAT: &str = "m005";
const DOMAIN: &str = "council.example.jp";

fn email(id: &str) -> String {
    format!("{id}@members.example.jp")
}

/// A node's data directory: the shared store, the test SMTP server, and `mail` (the
/// digest or the alert settings of a test).
fn node_dir(pg: &PgCluster, smtp_port: u16, mail: &str) -> DataDir {
    let dir = DataDir::new();
    std::fs::write(
        dir.path().join("musubi.toml"),
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n{}{mail}",
            pg.url(),
            smtp_toml(smtp_port, 5)
        ),
    )
    .expect("write musubi.toml");
    dir
}

/// One digest copy as the SMTP server received it.
#[derive(Debug, Clone)]
struct Copy {
    rcpt: String,
    message_id: String,
    /// The window's end in microseconds (the batch in the Message-ID).
    batch: i64,
    text: String,
}

/// The digest copies the server received so far, in arrival order.
fn copies(sink: &Sink) -> Vec<Copy> {
    sink.messages()
        .iter()
        .filter_map(|m: &Value| {
            let id = m["message_id"].as_str()?.to_string();
            let batch = id
                .strip_prefix("<digest.fo.")?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some(Copy {
                rcpt: m["rcpt_tos"][0].as_str()?.to_string(),
                message_id: id,
                batch,
                text: all_text(m),
            })
        })
        .collect()
}

fn windows(sink: &Sink) -> BTreeSet<i64> {
    copies(sink).iter().map(|c| c.batch).collect()
}

/// Waits until a window newer than every one in `seen` has started arriving.
async fn next_window(sink: &Sink, seen: &BTreeSet<i64>, within: Duration) -> i64 {
    let started = Instant::now();
    loop {
        if let Some(w) = windows(sink).difference(seen).max() {
            return *w;
        }
        assert!(
            started.elapsed() < within,
            "no new digest window within {within:?} (windows so far {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Submits continuously, alternating nodes, until `stop`; counts acknowledgements. A killed
/// node's refusals are expected and not counted.
async fn load(
    bases: Arc<std::sync::Mutex<Vec<String>>>,
    token: String,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let now: Vec<String> = bases.lock().unwrap().clone();
        for base in now {
            n += 1;
            let body = submission(
                &format!("digest failover report {n}"),
                "green",
                &[
                    ("domain", &format!("d{}.digest-failover.example", n / 5)),
                    ("sha256", &format!("{n:064x}")),
                ],
            );
            let sent = client
                .post(format!("{base}/api/v1/reports"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status() == 201) {
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn micros(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("stored time {t:?}: {e}"))
        .with_timezone(&Utc)
        .timestamp_micros()
}

/// What the store says of the digest: the reports (seq, title), the completed windows'
/// end and last report, whether a window is open, and the recorded deliveries
/// `(batch, member)`.
struct Recorded {
    reports: Vec<(i64, String)>,
    sent_until: i64,
    sent_through: i64,
    pending: i64,
    deliveries: BTreeSet<(i64, String)>,
}

fn recorded(pg: &PgCluster) -> Recorded {
    let mut c = pg.connect();
    let reports = c
        .query("SELECT seq, title FROM reports", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
        .collect();
    let state = c
        .query_one(
            "SELECT sent_until, sent_through FROM digest_state WHERE digest = 'fo'",
            &[],
        )
        .unwrap();
    let sent_until = micros(state.get::<_, &str>(0));
    let sent_through = state.get::<_, i64>(1);
    let pending = c
        .query_one("SELECT count(*) FROM digest_pending", &[])
        .unwrap()
        .get::<_, i64>(0);
    let deliveries = c
        .query(
            "SELECT batch, member_id FROM mail_deliveries WHERE kind = 'digest'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let batch: &str = r.get(0);
            (batch.parse().unwrap(), r.get::<_, String>(1))
        })
        .collect();
    Recorded {
        reports,
        sent_until,
        sent_through,
        pending,
        deliveries,
    }
}

/// The "reports received: N" line of a secretariat copy.
fn reports_received(copy: &Copy) -> usize {
    copy.text
        .lines()
        .find_map(|l| l.split_once("reports received: "))
        .and_then(|(_, n)| {
            n.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no 'reports received' line in {}", copy.text))
}

/// The titles of the reports a secretariat copy lists (each with its internal id).
fn listed_reports(copy: &Copy) -> BTreeSet<String> {
    copy.text
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .filter_map(|l| l.split_once(" digest failover report "))
        .filter_map(|(_, rest)| rest.split(' ').next())
        .map(|n| format!("digest failover report {n}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_digest_window_reaches_every_recipient_once_across_leader_failovers() {
    let pg = tokio::task::block_in_place(PgCluster::start);
    let sink = tokio::task::block_in_place(Sink::start);
    let dirs = [
        node_dir(&pg, sink.port, DIGEST),
        node_dir(&pg, sink.port, DIGEST),
    ];
    let mut tokens = Vec::new();
    for (i, _) in MEMBERS.iter().enumerate() {
        tokens.push(dirs[0].add_member(&format!("Digest Member {i}"), "class1", None));
    }
    // Also the harness's operator on every node (health needs a secretariat token): one
    // account for the shared store, not one per data directory.
    let operator = dirs[0].add_member("Digest Operator", "secretariat", None);
    let everyone: Vec<&str> = MEMBERS.iter().copied().chain([SECRETARIAT]).collect();
    for (i, id) in everyone.iter().enumerate() {
        let lang = if i % 2 == 0 { "en" } else { "ja" };
        let lang = if *id == SECRETARIAT { "en" } else { lang };
        dirs[i % 2].cli(&[
            "member",
            "contact",
            id,
            "--email",
            &email(id),
            "--lang",
            lang,
        ]);
    }

    let mut nodes: Vec<Option<Daemon>> = dirs.iter().map(|d| Some(Daemon::start(d))).collect();
    for n in nodes.iter().flatten() {
        register_operator(n, &operator);
    }
    let bases = Arc::new(std::sync::Mutex::new(
        nodes
            .iter()
            .map(|n| n.as_ref().unwrap().base.clone())
            .collect::<Vec<_>>(),
    ));
    // The leader's first look at the digest records where its first window starts (after
    // the reports committed then: none yet) before any report is submitted, so that every
    // report is due in some window.
    until_store(
        &pg,
        "the digest's first sight",
        Duration::from_secs(30),
        |c| count(c, "SELECT count(*) FROM digest_state WHERE digest = 'fo'") == 1,
    )
    .await;
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(
        bases.clone(),
        tokens[0].clone(),
        acked.clone(),
        stop.clone(),
    ));

    // Three times: the moment a window's first copy arrives, kill -9 the leader (the rest
    // of the window is then unsent or in flight); the other node takes over and the killed
    // one comes back as a follower.
    let mut seen = BTreeSet::new();
    let mut killed_in = Vec::new();
    // The copies the server had accepted when the leader died.
    let mut in_flight: BTreeSet<(String, String)> = BTreeSet::new();
    for round in 0..3 {
        let live: Vec<&Daemon> = nodes.iter().map(|n| n.as_ref().unwrap()).collect();
        let (leader, _) = one_leader(&live, Duration::from_secs(15)).await;
        let window = next_window(&sink, &seen, Duration::from_secs(45)).await;
        nodes[leader].take().unwrap().kill9();
        let out: Vec<Copy> = copies(&sink)
            .into_iter()
            .filter(|c| c.batch == window)
            .collect();
        let copies_then = out.len();
        in_flight.extend(out.into_iter().map(|c| (c.rcpt, c.message_id)));
        killed_in.push((window, copies_then));
        seen = windows(&sink);
        let survivor = nodes[1 - leader].as_ref().unwrap();
        one_leader(&[survivor], Duration::from_secs(10)).await;
        let back = Daemon::start(&dirs[leader]);
        register_operator(&back, &operator);
        nodes[leader] = Some(back);
        bases.lock().unwrap()[leader] = nodes[leader].as_ref().unwrap().base.clone();
        eprintln!(
            "round {round}: killed the leader (node {leader}) with {copies_then} copies of window {window} out"
        );
    }

    // One more window after the last takeover, then every open window completed.
    let last = next_window(&sink, &seen, Duration::from_secs(45)).await;
    let started = Instant::now();
    let rec = loop {
        let rec = tokio::task::block_in_place(|| recorded(&pg));
        if rec.pending == 0 && rec.sent_until >= last {
            break rec;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the digest did not settle: pending {}, sent until {} (last window {last})",
            rec.pending,
            rec.sent_until
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    // Copies of the window just completed may still be being written by the server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = copies(&sink);

    // No copy twice: one message per (recipient, Message-ID).
    let mut per_copy: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in &got {
        *per_copy
            .entry((c.rcpt.clone(), c.message_id.clone()))
            .or_default() += 1;
    }
    // The one exception SMTP leaves: a copy the server accepted in the instant before the
    // leader died, before the store recorded it, is sent again by the new leader under the
    // same Message-ID (receivers drop the second as a duplicate). The kills here are timed
    // into that instant on purpose; any other copy twice, or such a copy three times, fails.
    let twice: Vec<_> = per_copy
        .iter()
        .filter(|(k, n)| **n > 2 || (**n == 2 && !in_flight.contains(*k)))
        .collect();
    assert!(
        twice.is_empty(),
        "copies received more than once: {twice:?}"
    );
    let resent = per_copy.values().filter(|n| **n == 2).count();

    // Every window to every recipient, under the Message-ID of that window and recipient
    // (every recipient sees the same green reports, so no window is empty for anyone).
    let windows: BTreeSet<i64> = got.iter().map(|c| c.batch).collect();
    assert!(
        windows.len() >= 4,
        "three windows cut short by a failover and one after: {windows:?}"
    );
    for w in &windows {
        let expected: BTreeSet<String> = everyone
            .iter()
            .map(|id| message_id("digest", &format!("fo.{w}"), id, DOMAIN))
            .collect();
        let received: BTreeSet<String> = got
            .iter()
            .filter(|c| c.batch == *w)
            .map(|c| {
                let id = c.rcpt.split('@').next().unwrap();
                assert_eq!(
                    c.message_id,
                    message_id("digest", &format!("fo.{w}"), id, DOMAIN),
                    "a copy to {} under another recipient's Message-ID",
                    c.rcpt
                );
                c.message_id.clone()
            })
            .collect();
        assert_eq!(received, expected, "window {w}: copies missing");
    }
    // The store recorded exactly the copies received, and no window is left open.
    let delivered: BTreeSet<(i64, String)> = got
        .iter()
        .map(|c| (c.batch, c.rcpt.split('@').next().unwrap().to_string()))
        .collect();
    assert_eq!(rec.deliveries, delivered);
    assert_eq!(rec.sent_until, *windows.last().unwrap());

    // No gap between windows, and no report in two: the windows cover report seqs in
    // commit order, so the reports counted by every window's secretariat copy add up to
    // exactly the reports committed before the last window began, and no report is listed
    // by two windows (a report stamped before a window's end but committed after it began
    // is in the next one; by receipt time it was in neither).
    let due: BTreeSet<&str> = rec
        .reports
        .iter()
        .filter(|(seq, _)| *seq <= rec.sent_through)
        .map(|(_, title)| title.as_str())
        .collect();
    let mut counted = 0;
    let mut listed: BTreeMap<String, i64> = BTreeMap::new();
    let mut all_listed = true;
    for w in &windows {
        let copy = got
            .iter()
            .find(|c| c.batch == *w && c.rcpt == email(SECRETARIAT))
            .unwrap();
        let n = reports_received(copy);
        let titles = listed_reports(copy);
        // Up to five reports a campaign and fifty campaigns are listed; the count is whole.
        assert!(
            titles.len() <= n,
            "window {w}: lists {} of {n}",
            titles.len()
        );
        all_listed &= titles.len() == n;
        for t in titles {
            assert!(
                due.contains(t.as_str()),
                "window {w} lists {t}, not due in any window"
            );
            if let Some(other) = listed.insert(t.clone(), *w) {
                panic!("{t} listed by two windows ({other} and {w})");
            }
        }
        counted += n;
    }
    assert_eq!(
        counted,
        due.len(),
        "the windows counted {counted} reports; {} were committed before the last one began",
        due.len()
    );
    if all_listed {
        assert_eq!(listed.len(), due.len(), "every report listed by one window");
    }
    let acked = acked.load(Ordering::Relaxed);
    assert!(acked > 50, "the load ran: {acked} acknowledged");
    eprintln!(
        "digest failover: {} windows, {} copies ({resent} resent after a kill), kills {killed_in:?}, {acked} reports acknowledged, {counted} counted in windows ({} listed)",
        windows.len(),
        got.len(),
        listed.len()
    );
}

/// The alerts under test: to the class-1 members and the secretariat, in English, coalesced
/// for three seconds (long enough for a trigger to be pending when the leader dies).
const ALERTS: &str = r#"
[alerts]
classes = ["class1"]
secretariat = true
language = "en"
coalesce_seconds = 3
min_interval_seconds = 1
"#;

/// Polls `f` on the store until it holds.
async fn until_store(
    pg: &PgCluster,
    what: &str,
    within: Duration,
    f: impl Fn(&mut postgres::Client) -> bool,
) {
    let started = Instant::now();
    loop {
        // The synchronous client is made, used and dropped off the async workers.
        if tokio::task::block_in_place(|| f(&mut pg.connect())) {
            return;
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// The alert copies the server received: `(recipient, Message-ID, text)`.
fn alert_copies(sink: &Sink) -> Vec<(String, String, String)> {
    sink.messages()
        .iter()
        .filter_map(|m: &Value| {
            let id = m["message_id"].as_str()?;
            id.starts_with("<alert.").then(|| {
                (
                    m["rcpt_tos"][0].as_str().unwrap_or_default().to_string(),
                    id.to_string(),
                    all_text(m),
                )
            })
        })
        .collect()
}

/// An alert pending when the leader is killed, and a change made while no node leads, are
/// both mailed by the next leader, to every alert recipient who may see them, once.
///
/// The leader records campaign A's new sector into the store's outbox; it is killed during
/// A's three-second coalescing window (nothing claimed, nothing sent). The test holds the
/// leader lock itself from the instant the leader dies (its session is queued on
/// `pg_advisory_lock`, which PostgreSQL grants to a waiter on release), so that campaign B
/// spreads to a second sector through the surviving node while it is still a follower and
/// no node leads. Then the lock is let go; the survivor leads and mails both.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_alert_and_a_change_while_no_node_leads_reach_every_recipient_once() {
    let pg = tokio::task::block_in_place(PgCluster::start);
    let sink = tokio::task::block_in_place(Sink::start);
    let dirs = [
        node_dir(&pg, sink.port, ALERTS),
        node_dir(&pg, sink.port, ALERTS),
    ];
    let telecom = dirs[0].add_member("Alert Telecom", "class1", Some("telecom"));
    let finance = dirs[0].add_member("Alert Finance", "class1", Some("finance"));
    let water = dirs[0].add_member("Alert Water", "class1", Some("water"));
    let operator = dirs[0].add_member("Alert Operator", "secretariat", None);
    let (m_telecom, m_finance, m_water, m_sec) = ("m001", "m002", "m003", "m004");
    for id in [m_telecom, m_finance, m_water, m_sec] {
        dirs[0].cli(&[
            "member",
            "contact",
            id,
            "--email",
            &email(id),
            "--lang",
            "en",
        ]);
    }
    let mut nodes: Vec<Option<Daemon>> = dirs.iter().map(|d| Some(Daemon::start(d))).collect();
    for n in nodes.iter().flatten() {
        register_operator(n, &operator);
    }
    let (leader, _) = {
        let live: Vec<&Daemon> = nodes.iter().map(|n| n.as_ref().unwrap()).collect();
        one_leader(&live, Duration::from_secs(15)).await
    };
    let survivor = 1 - leader;
    // The leader's first pass seeds the (empty) announced state.
    until_store(
        &pg,
        "the alert state seeded",
        Duration::from_secs(20),
        |c| count(c, "SELECT count(*) FROM meta WHERE key = 'alerts_version'") == 1,
    )
    .await;

    let post = |node: &Daemon, token: &str, title: &str, hash: &str| {
        let (client, url) = (Client::new(token), node.url("/api/v1/reports"));
        let body = submission(title, "green", &[("sha256", hash)]);
        async move {
            let (st, body) = client.post_json(&url, &body).await;
            assert_eq!(st, 201, "{body}");
        }
    };
    let (h1, h2) = (
        format!("{:064x}", 0xa1e47_u64),
        format!("{:064x}", 0xb2e47_u64),
    );
    // Campaign A spreads from telecom to finance, through the leader.
    let l = nodes[leader].as_ref().unwrap();
    post(l, &telecom, "alpha telecom", &h1).await;
    post(l, &finance, "alpha finance", &h1).await;
    until_store(
        &pg,
        "campaign A's trigger in the outbox",
        Duration::from_secs(20),
        |c| count(c, "SELECT count(*) FROM alert_outbox") >= 1,
    )
    .await;

    // Queue a session of the test's own on the leader lock, then kill the leader while A
    // is still coalescing.
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = pg.url();
    let holder = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        c.query_one(
            "SELECT pg_advisory_lock($1)",
            &[&musubi::daemon::leader::LEADER_LOCK_KEY],
        )
        .expect("lock");
        got_tx.send(()).unwrap();
        let _ = release_rx.recv();
        // Dropping the session releases the lock.
    });
    until_store(
        &pg,
        "the test's session waiting for the leader lock",
        Duration::from_secs(10),
        |c| {
            count(
                c,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            ) == 1
        },
    )
    .await;
    let claimed = tokio::task::block_in_place(|| {
        count(&mut pg.connect(), "SELECT count(*) FROM alert_batches")
    });
    assert_eq!(
        claimed, 0,
        "A's alert went out before the kill: the test timed nothing"
    );
    nodes[leader].take().unwrap().kill9();
    tokio::task::block_in_place(|| got_rx.recv_timeout(Duration::from_secs(10)))
        .expect("the test's session took the leader lock when the leader died");
    assert!(
        alert_copies(&sink).is_empty(),
        "an alert went out before the leader died: {:?}",
        alert_copies(&sink)
    );

    // Campaign B spreads from water to telecom on the survivor, a follower: no node leads.
    let s = nodes[survivor].as_ref().unwrap();
    post(s, &water, "beta water", &h2).await;
    post(s, &telecom, "beta telecom", &h2).await;
    // Committed (201); a follower shows a campaign only once a leader has numbered it, so
    // B exists only in the store until the survivor leads.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = crate::util::health(s).await;
    assert_eq!(health["role"], "follower", "{health}");
    // Let go: the survivor leads.
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    one_leader(&[s], Duration::from_secs(10)).await;

    // Both alerts reach the secretariat (which sees the sectors), then everything settles.
    let started = Instant::now();
    loop {
        let sec_text: String = alert_copies(&sink)
            .iter()
            .filter(|(to, _, _)| *to == email(m_sec))
            .map(|(_, _, t)| t.clone())
            .collect();
        // A was recorded telecom-only first: it gained finance; B appeared with both.
        if sec_text.contains("reported from new sectors: finance")
            && sec_text.contains("reported from new sectors: telecom, water")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new leader did not alert both campaigns: {:#?}",
            alert_copies(&sink)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_store(
        &pg,
        "every alert batch done",
        Duration::from_secs(20),
        |c| {
            count(
                c,
                "SELECT count(*) FROM alert_batches WHERE done_at IS NULL",
            ) == 0
                && count(c, "SELECT count(*) FROM alert_outbox WHERE batch IS NULL") == 0
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = alert_copies(&sink);

    // Once: one message per (recipient, Message-ID), under the Message-ID of its batch.
    let mut per_copy: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (to, id, _) in &got {
        *per_copy.entry((to.clone(), id.clone())).or_default() += 1;
    }
    assert!(
        per_copy.values().all(|n| *n == 1),
        "copies received more than once: {per_copy:?}"
    );
    let rows: Vec<(String, String, String)> = tokio::task::block_in_place(|| {
        pg.connect()
            .query(
                "SELECT batch, member_id, message_id FROM mail_deliveries WHERE kind = 'alert'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    });
    let recorded: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(batch, member, id)| {
            assert_eq!(*id, message_id("alert", batch, member, DOMAIN));
            (email(member), id.clone())
        })
        .collect();
    let received: BTreeSet<(String, String)> = per_copy.keys().cloned().collect();
    assert_eq!(
        received, recorded,
        "the store recorded other copies than were received"
    );

    // Every member has both campaigns (green reports: every member sees them), told only
    // that they spread: no sector, no provider.
    let text_to = |id: &str| -> String {
        got.iter()
            .filter(|(to, _, _)| *to == email(id))
            .map(|(_, _, t)| t.clone())
            .collect()
    };
    for id in [m_telecom, m_finance, m_water] {
        let text = text_to(id);
        for title in [
            "alpha telecom",
            "alpha finance",
            "beta water",
            "beta telecom",
        ] {
            assert!(
                text.contains(title),
                "{id} was not alerted to {title:?}: {text}"
            );
        }
        assert!(
            text.contains("reported from a new sector") && !text.contains("new sectors:"),
            "{id}: {text}"
        );
        for secret in [
            "m001",
            "m002",
            "m003",
            "Alert Telecom",
            "Alert Finance",
            "Alert Water",
        ] {
            assert!(
                !text.contains(secret),
                "{id}'s alert revealed {secret}: {text}"
            );
        }
    }
    eprintln!(
        "alert failover: {} copies in {} batches",
        got.len(),
        rows.iter().map(|r| &r.0).collect::<BTreeSet<_>>().len()
    );
}

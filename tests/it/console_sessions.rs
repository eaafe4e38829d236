//! Console sessions, login nonces and failed-token counts live in the store (#16 item 4),
//! so that a load balancer may send any console request to any node. Two daemons on one
//! SQLite data directory are not supported, so a restart is the proof here: whatever a
//! session needs survives the process that made it. Real daemon on loopback, the real
//! sign-in form, the database file read directly only to age rows and to check that no
//! secret is kept in it.

use std::time::Duration;

use crate::console::{ConsoleClient, add_member, hidden_csrf};
use crate::util::{Client, Daemon, DataDir};

/// The console's dashboard: (status, redirect target).
async fn dashboard(c: &ConsoleClient) -> (u16, String) {
    let r = c
        .http
        .get(format!("{}/console/", c.base))
        .header("cookie", c.cookie_header())
        .send()
        .await
        .expect("console GET");
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), loc)
}

fn session_cookie(c: &ConsoleClient) -> String {
    c.cookies
        .iter()
        .find(|(k, _)| k == "musubi_session")
        .map(|(_, v)| v.clone())
        .expect("a session cookie")
}

fn db(data: &DataDir) -> rusqlite::Connection {
    rusqlite::Connection::open(data.path().join(musubi::store::DB_FILE)).unwrap()
}

fn count(data: &DataDir, sql: &str) -> i64 {
    db(data).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn restart(daemon: Daemon, data: &DataDir) -> Daemon {
    assert!(daemon.terminate(Duration::from_secs(30)).success());
    Daemon::start(data)
}

/// A session opened through one daemon process works through the next one (it is in the
/// store, not in memory), its CSRF token still holds, and sign-out ends it for good.
/// Checked to fail before the change (the restarted daemon sent the session to sign-in).
#[tokio::test(flavor = "multi_thread")]
async fn a_session_survives_a_restart_and_sign_out_ends_it() {
    let data = DataDir::new();
    let (_, token) = add_member(&data, "Test Night Shift Analyst", "secretariat", None);
    let daemon = Daemon::start(&data);
    let mut c = ConsoleClient::new(&daemon.base);
    let csrf = c.sign_in(&token).await;
    let id = session_cookie(&c);
    // A second browser's sign-in form, served before the restart.
    let mut later = ConsoleClient::new(&daemon.base);
    let (_, html) = later.get("/console/login").await;
    let nonce = hidden_csrf(&html);

    // Stored by hash: neither the session id nor the nonce is in the database file.
    let raw = std::fs::read(data.path().join(musubi::store::DB_FILE)).unwrap();
    let wal = std::fs::read(data.path().join(format!("{}-wal", musubi::store::DB_FILE)))
        .unwrap_or_default();
    for secret in [&id, &nonce, &csrf] {
        let found = |bytes: &[u8]| bytes.windows(64).any(|w| w == secret.as_bytes());
        assert!(!found(&raw) && !found(&wal), "a secret is stored as is");
    }

    let daemon = restart(daemon, &data);
    c.base = daemon.base.clone();
    later.base = daemon.base.clone();
    assert_eq!(
        dashboard(&c).await,
        (200, String::new()),
        "the session outlived the process"
    );
    let (_, html) = c.get("/console/").await;
    assert_eq!(
        hidden_csrf(&html),
        csrf,
        "the CSRF token is the session's on every node"
    );
    // The form served by the first process signs in through the second.
    let (status, location) = later
        .post("/console/login", &[("token", &token), ("csrf", &nonce)])
        .await;
    assert_eq!((status, location.as_str()), (303, "/console/"));
    assert_eq!(dashboard(&later).await.0, 200);
    assert_eq!(count(&data, "SELECT count(*) FROM console_sessions"), 2);

    // Sign-out with a wrong CSRF token keeps the session; with the right one it ends it.
    let (status, _) = c
        .post("/console/logout", &[("csrf", &"0".repeat(64))])
        .await;
    assert_eq!(status, 303);
    c.cookies.push(("musubi_session".into(), id.clone()));
    assert_eq!(dashboard(&c).await.0, 200, "a forged sign-out ends nothing");
    let (status, location) = c.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (303, "/console/login"));
    // The browser dropped its cookie; one that kept it is refused, here and after a restart.
    c.cookies.push(("musubi_session".into(), id.clone()));
    assert_eq!(dashboard(&c).await, (303, "/console/login".to_string()));
    assert_eq!(count(&data, "SELECT count(*) FROM console_sessions"), 1);
    let daemon = restart(daemon, &data);
    c.base = daemon.base.clone();
    later.base = daemon.base.clone();
    assert_eq!(dashboard(&c).await.0, 303);
    assert_eq!(
        dashboard(&later).await.0,
        200,
        "the other session is untouched"
    );
}

/// The idle (8 h) and absolute (24 h) limits hold on stored sessions, expired rows are
/// deleted, and a request touches a session's last-seen time at most once a minute.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_is_refused_and_purged() {
    let data = DataDir::new();
    let (_, token) = add_member(&data, "Test Weekend Analyst", "class1", None);
    let daemon = Daemon::start(&data);
    let mut idle = ConsoleClient::new(&daemon.base);
    idle.sign_in(&token).await;
    let mut old = ConsoleClient::new(&daemon.base);
    old.sign_in(&token).await;
    let mut fresh = ConsoleClient::new(&daemon.base);
    fresh.sign_in(&token).await;
    let daemon = {
        assert!(daemon.terminate(Duration::from_secs(30)).success());
        let conn = db(&data);
        let hash = |c: &ConsoleClient| {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(session_cookie(c).as_bytes()))
        };
        let ago = |h: i64| {
            (chrono::Utc::now() - chrono::Duration::hours(h))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        // Idle for 8 h 1 min; opened 25 h ago but used a minute ago; opened 23 h ago and
        // last used 7 h ago (still good on both counts).
        let n = conn
            .execute(
                "UPDATE console_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                rusqlite::params![
                    hash(&idle),
                    (chrono::Utc::now() - chrono::Duration::minutes(8 * 60 + 1))
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ],
            )
            .unwrap();
        assert_eq!(n, 1);
        conn.execute(
            "UPDATE console_sessions SET created_at = ?2 WHERE id_hash = ?1",
            rusqlite::params![hash(&old), ago(25)],
        )
        .unwrap();
        conn.execute(
            "UPDATE console_sessions SET created_at = ?2, last_seen_at = ?3 WHERE id_hash = ?1",
            rusqlite::params![hash(&fresh), ago(23), ago(7)],
        )
        .unwrap();
        Daemon::start(&data)
    };
    for c in [&mut idle, &mut old, &mut fresh] {
        c.base = daemon.base.clone();
    }
    assert_eq!(
        dashboard(&idle).await,
        (303, "/console/login".to_string()),
        "idle limit"
    );
    assert_eq!(
        dashboard(&old).await,
        (303, "/console/login".to_string()),
        "absolute limit"
    );
    assert_eq!(dashboard(&fresh).await, (200, String::new()));
    assert_eq!(
        count(&data, "SELECT count(*) FROM console_sessions"),
        1,
        "expired sessions are deleted"
    );
    // The request moved the fresh session's last-seen time to now, and one right after it
    // does not write again.
    let seen = || -> String {
        db(&data)
            .query_row("SELECT last_seen_at FROM console_sessions", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let first = seen();
    let first_at = chrono::DateTime::parse_from_rfc3339(&first).unwrap();
    assert!(
        chrono::Utc::now() - first_at.with_timezone(&chrono::Utc) < chrono::Duration::minutes(1)
    );
    assert_eq!(dashboard(&fresh).await.0, 200);
    assert_eq!(seen(), first, "no durable write per request");
}

/// Failed tokens are counted per source in the store: after the limit (30 a minute) a
/// source is answered 429 before its token is checked — a right token included — and the
/// block holds in a daemon that starts afterwards (as it would on another node).
#[tokio::test(flavor = "multi_thread")]
async fn failed_tokens_block_their_source_across_processes() {
    let data = DataDir::new();
    let (_, token) = add_member(&data, "Test Careful Operator", "class1", None);
    let (_, second) = add_member(&data, "Test Second Operator", "class1", None);
    let daemon = Daemon::start(&data);
    // Early in a minute: the failure window must outlive the restart below.
    let into = chrono::Utc::now().timestamp() % 60;
    if into > 20 {
        tokio::time::sleep(Duration::from_secs((61 - into) as u64)).await;
    }
    let good = Client::new(&token);
    assert_eq!(good.get(&daemon.url("/api/v1/campaigns")).await.0, 200);
    for i in 0..30 {
        let guess = Client::new(&format!("msb_{i:064x}"));
        let (status, _) = guess.get(&daemon.url("/api/v1/campaigns")).await;
        assert_eq!(status, 401, "guess {i}");
    }
    // Spent: a 31st guess is not checked, through the API, TAXII or the sign-in form.
    let guess = Client::new(&format!("msb_{:064x}", 99));
    let r = guess
        .http
        .get(daemon.url("/api/v1/campaigns"))
        .bearer_auth(&guess.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let r = guess
        .http
        .get(daemon.url("/taxii2/"))
        .bearer_auth(&guess.token)
        .header("accept", "application/taxii+json;version=2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    // The token this node already accepted still works; a token it has not seen is
    // refused unchecked, even a right one.
    assert_eq!(good.get(&daemon.url("/api/v1/campaigns")).await.0, 200);
    assert_eq!(
        Client::new(&second)
            .get(&daemon.url("/api/v1/campaigns"))
            .await
            .0,
        429
    );
    let mut c = ConsoleClient::new(&daemon.base);
    let (_, html) = c.get("/console/login").await;
    let nonce = hidden_csrf(&html);
    let (status, _) = c
        .post("/console/login", &[("token", &second), ("csrf", &nonce)])
        .await;
    assert_eq!(status, 429, "the sign-in form is guarded too");
    assert!(
        count(
            &data,
            "SELECT CAST(sum(failures) AS BIGINT) FROM auth_failures"
        ) >= 30
    );

    // A new process has no memory of the failures: the store has.
    let daemon = restart(daemon, &data);
    assert_eq!(
        Client::new(&token)
            .get(&daemon.url("/api/v1/campaigns"))
            .await
            .0,
        429,
        "the block is in the store"
    );
}

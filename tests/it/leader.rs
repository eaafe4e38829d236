//! Leader duties (issue #16): which node polls feeds, sends mail and records campaign ids.
//!
//! On SQLite a node is alone on its store and always leader: `/healthz` and `/metrics` say
//! so, with the projections' lag, and the daemon records its correlation watermark with its
//! campaign ids (what followers on a shared store read). On PostgreSQL, nodes contend for a
//! session advisory lock: exactly one leads, a leader whose session ends is replaced within
//! about two seconds, and a leader whose session is cut steps down at once.

use std::time::{Duration, Instant};

use musubi::daemon::leader::{LEADER_LOCK_KEY, Leadership, Role};

use crate::pg::PgCluster;
use crate::util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_on_sqlite_leads_records_its_watermark_and_shows_its_lag() {
    let data = DataDir::new();
    let token = data.add_member("Leader Test Bank", "class1", Some("finance"));
    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    for title in ["phish wave a", "phish wave b"] {
        let (status, body) = client
            .post_json(
                &daemon.url("/api/v1/reports"),
                &submission(title, "green", &[("domain", "leader-wave.example")]),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let health = wait_current(&daemon).await;
    assert_eq!(health["role"], "leader", "{health}");
    assert_eq!(health["index_lag"], 0, "{health}");
    assert_eq!(health["correlation_lag"], 0, "{health}");
    let metrics = metrics(&daemon).await;
    for line in [
        "musubi_leader 1",
        "musubi_index_lag 0",
        "musubi_correlate_lag 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }

    // The leader records how far it has correlated, with the ids it covers: both reports
    // have their campaign id, and the watermark says so.
    let committed = health["committed_seq"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let conn = rusqlite::Connection::open(data.path().join("musubi.sqlite3")).unwrap();
        let mark: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'correlated_seq'",
                [],
                |r| r.get(0),
            )
            .ok();
        let ids: i64 = conn
            .query_row("SELECT count(*) FROM campaign_reports", [], |r| r.get(0))
            .unwrap();
        if mark.as_deref() == Some(committed.to_string().as_str()) {
            assert_eq!(
                ids as u64, committed,
                "every report up to the watermark has an id"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watermark {mark:?}, committed {committed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.terminate(Duration::from_secs(10));
}

/// Waits until `pred` holds for the roles, up to `within`; returns how long it took.
fn until(nodes: &[&Leadership], within: Duration, pred: impl Fn(&[Role]) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let roles: Vec<Role> = nodes.iter().map(|n| n.current()).collect();
        if pred(&roles) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "roles {roles:?} after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn leaders(roles: &[Role]) -> usize {
    roles.iter().filter(|r| r.is_leader()).count()
}

#[test]
fn one_node_leads_on_postgres_and_another_takes_over_when_its_session_ends() {
    let pg = PgCluster::start();
    let config = || pg.url().parse::<postgres::Config>().unwrap();
    let a = Leadership::pg_advisory_lock(config(), LEADER_LOCK_KEY);
    let b = Leadership::pg_advisory_lock(config(), LEADER_LOCK_KEY);
    until(&[&a, &b], Duration::from_secs(10), |r| leaders(r) == 1);
    // It stays that way: the follower keeps trying and keeps failing.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(leaders(&[a.current(), b.current()]), 1);
    let (leader, follower) = if a.current().is_leader() {
        (a, b)
    } else {
        (b, a)
    };

    // The leader's node goes away (its session closes with it): the follower leads within
    // about two seconds (it tries every second).
    drop(leader);
    let took = until(&[&follower], Duration::from_secs(5), |r| r[0].is_leader());
    eprintln!("failover: the follower led {took:?} after the leader's session ended");
    assert!(took < Duration::from_millis(2500), "took {took:?}");

    // A leader whose session is cut (a database restart, a network failure, an operator)
    // steps down at once, and then, its new session finding the lock free, leads again;
    // a third node that joins stays follower.
    let third = Leadership::pg_advisory_lock(config(), LEADER_LOCK_KEY);
    let mut admin = pg.connect();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(leaders(&[follower.current(), third.current()]), 1);
    let holder = if follower.current().is_leader() {
        &follower
    } else {
        &third
    };
    let mut role = holder.role();
    let cut = admin
        .query_one(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.granted",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(cut, 1, "one session holds the lock");
    let stepped_down = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(4), role.wait_for(|r| !r.is_leader()))
            .await
            .expect("the cut leader steps down")
            .unwrap();
    });
    eprintln!(
        "a cut leader stepped down after {:?}",
        stepped_down.elapsed()
    );
    until(&[&follower, &third], Duration::from_secs(6), |r| {
        leaders(r) == 1
    });
}

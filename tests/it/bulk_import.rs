//! A big import drops the observable index and builds it once (`--bulk`): the store ends
//! with the index whatever happens, and answers exactly as after an import that grew it.

use serde_json::Value;

use crate::util::{Client, Daemon, DataDir, operator_token, submission, wait_current};

/// Whether the store of `data` has the indexes a bulk import drops: observables by value
/// and TAXII objects by id.
fn has_bulk_indexes(data: &DataDir) -> bool {
    let db = rusqlite::Connection::open(data.path().join("musubi.sqlite3")).expect("open db");
    db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
         AND name IN ('report_observables_value', 'taxii_objects_id')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .expect("query")
        == 2
}

/// Every stored observable row, in key order.
fn observable_rows(data: &DataDir) -> Vec<(i64, String, String)> {
    rows(
        data,
        "SELECT seq, kind, value FROM report_observables ORDER BY seq, kind, value",
    )
}

/// The TAXII object log without its ids (derived under each store's own secret).
fn taxii_rows(data: &DataDir) -> Vec<(i64, String, String)> {
    rows(
        data,
        "SELECT seq, coalesce(kind, ''), coalesce(value, '') FROM taxii_objects \
         ORDER BY seq, kind, value",
    )
}

fn rows(data: &DataDir, sql: &str) -> Vec<(i64, String, String)> {
    let db = rusqlite::Connection::open(data.path().join("musubi.sqlite3")).expect("open db");
    let mut stmt = db.prepare(sql).expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// 600 reports in two files; each report shares a hash with one of the other file (a campaign),
/// carries a value of its own, and some carry one observable twice.
fn write_corpus(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for f in 0..2 {
        let reports: Vec<Value> = (0..300)
            .map(|i| {
                let n = f * 300 + i;
                let shared = shared_hash(n % 300);
                let own = format!("198.51.{}.{}", n / 200, n % 200);
                let mut indicators = vec![("sha256", shared.clone()), ("ipv4", own)];
                if n % 7 == 0 {
                    indicators.push(("sha256", shared));
                }
                let pairs: Vec<(&str, &str)> =
                    indicators.iter().map(|(k, v)| (*k, v.as_str())).collect();
                submission(&format!("bulk report {n}"), "green", &pairs)
            })
            .collect();
        let path = dir.join(format!("bulk-{f}.json"));
        std::fs::write(&path, serde_json::to_vec(&reports).expect("json")).expect("write");
        files.push(path.display().to_string());
    }
    files
}

/// The sha256 that the reports of campaign `c` share.
fn shared_hash(c: usize) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("bulk campaign {c}")))
}

/// What the secretariat sees: campaign sizes, and the titles found by value and by word.
async fn answers(data: &DataDir) -> (Vec<u64>, Vec<Vec<String>>) {
    let daemon = Daemon::start(data);
    wait_current(&daemon).await;
    let client = Client::new(&operator_token(&daemon));
    let (status, list) = client
        .get(&daemon.url("/api/v1/campaigns?limit=1000"))
        .await;
    assert_eq!(status, 200, "{list}");
    let mut sizes: Vec<u64> = list["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .map(|c| c["report_count"].as_u64().expect("report_count"))
        .collect();
    sizes.sort_unstable();
    let mut found = Vec::new();
    let shared = shared_hash(7);
    for q in [shared.as_str(), "198.51.1.17", "217"] {
        let (status, hits) = client
            .get(&daemon.url(&format!("/api/v1/search?q={q}&limit=50")))
            .await;
        assert_eq!(status, 200, "{hits}");
        let mut titles: Vec<String> = hits["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .map(|h| h["report"]["title"].as_str().expect("title").to_string())
            .collect();
        titles.sort();
        found.push(titles);
    }
    (sizes, found)
}

/// The same files imported building the index once and growing it: the same stored rows,
/// the same campaigns and search answers, the index there in both, and the search index
/// current when the import ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_import_stores_and_answers_as_a_grown_one() {
    let corpus = tempfile::tempdir().expect("temp dir");
    let files = write_corpus(corpus.path());
    let mut results = Vec::new();
    for bulk in ["always", "never"] {
        let data = DataDir::new();
        // Two providers, one file each: a value two members report links their reports.
        for (member, file) in ["Bulk Telecom", "Bulk Energy"].iter().zip(&files) {
            data.add_member(member, "class1", Some("telecom"));
            let args = ["import", "--as", member, "--bulk", bulk, "--json", file];
            let out: Value = serde_json::from_str(&data.cli(&args)).expect("json summary");
            assert_eq!(out["total"]["reports"], 300, "{out}");
        }
        assert!(has_bulk_indexes(&data), "--bulk {bulk}: the index is there");
        // The search index followed the import: current before any daemon starts.
        let index = musubi::index::ReportIndex::open(data.path()).expect("open the index");
        assert_eq!(
            index.indexed_seq().expect("indexed seq"),
            musubi::model::Seq(600),
            "--bulk {bulk}: the import indexed what it stored"
        );
        drop(index);
        let rows = observable_rows(&data);
        assert_eq!(rows.len(), 1200, "a value twice in a report is stored once");
        let taxii = taxii_rows(&data);
        assert_eq!(taxii.len(), 1800, "a report object and one per observable");
        let answers = answers(&data).await;
        results.push(((rows, taxii), answers));
    }
    let (bulk, grown) = (&results[0], &results[1]);
    assert_eq!(bulk.0, grown.0, "the same observable rows");
    assert_eq!(bulk.1, grown.1, "the same campaigns and search answers");
    assert_eq!(bulk.1.0, vec![2; 300], "one campaign a shared hash");
    assert_eq!(
        bulk.1.1[0],
        vec!["bulk report 307".to_string(), "bulk report 7".to_string()],
        "the reports of one hash"
    );
    assert_eq!(bulk.1.1[1], vec!["bulk report 217".to_string()]);
    assert_eq!(bulk.1.1[2], vec!["bulk report 217".to_string()]);
}

/// A store left without the index (an import killed while it was dropped) gets it back
/// from the next command that opens it.
#[test]
fn any_command_rebuilds_an_index_an_import_left_dropped() {
    let data = DataDir::new();
    data.add_member("Crash Member", "class1", None);
    let corpus = tempfile::tempdir().expect("temp dir");
    let files = write_corpus(corpus.path());
    data.cli(&["import", "--as", "Crash Member", &files[0]]);
    let db = rusqlite::Connection::open(data.path().join("musubi.sqlite3")).expect("open db");
    db.execute_batch("DROP INDEX report_observables_value; DROP INDEX taxii_objects_id")
        .expect("drop by hand");
    drop(db);
    assert!(!has_bulk_indexes(&data));
    data.cli(&["member", "list"]);
    assert!(has_bulk_indexes(&data), "opening the store built it again");
    assert_eq!(observable_rows(&data).len(), 600);
}

/// Ctrl-C during a bulk import: what was queued is stored, the index is built again before
/// the process ends, and the import says it was interrupted.
#[test]
fn an_interrupted_bulk_import_leaves_the_index_built() {
    let data = DataDir::new();
    data.add_member("Interrupted Member", "class1", None);
    let corpus = tempfile::tempdir().expect("temp dir");
    let path = corpus.path().join("many.json");
    let reports: Vec<Value> = (0..60_000)
        .map(|n| {
            let value = format!("h{n}.interrupt-example.net");
            submission(&format!("interrupted {n}"), "green", &[("domain", &value)])
        })
        .collect();
    std::fs::write(&path, serde_json::to_vec(&reports).expect("json")).expect("write");
    let child = std::process::Command::new(crate::util::BIN)
        .current_dir(data.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(["import", "--as", "Interrupted Member", "--bulk", "always"])
        .arg(&path)
        .env("MUSUBI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run musubi");
    // Until the first reports are stored: the index is dropped by then.
    let started = std::time::Instant::now();
    while stored(&data) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "nothing stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        has_bulk_indexes(&data),
        "the index is built again: {stderr}"
    );
    let kept = stored(&data);
    assert!(kept > 0 && kept < 60_000, "{kept} stored");
}

/// How many reports the store of `data` holds (0 before it exists).
fn stored(data: &DataDir) -> i64 {
    let Ok(db) = rusqlite::Connection::open_with_flags(
        data.path().join("musubi.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    db.query_row("SELECT count(*) FROM reports", [], |r| r.get(0))
        .unwrap_or(0)
}

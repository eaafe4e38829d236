//! Faults: a full disk and hostile HTTP input. The daemon refuses what it cannot
//! store with a clear error, loses nothing it acknowledged, and recovers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Client, Daemon, DataDir, submission, wait_current};

/// A small tmpfs mounted over a temporary folder, unmounted on drop.
struct SmallDisk {
    dir: DataDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = DataDir::new();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI and developer machines run as root)"
        );
        SmallDisk { dir }
    }

    fn resize(&self, size: &str) {
        let options = format!("size={size}");
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn big_submission(i: usize) -> Value {
    let mut s = submission(
        &format!("filler {i}"),
        "green",
        &[("ipv4", &format!("192.0.2.{}", i % 250))],
    );
    s["description"] = json!("x".repeat(60_000));
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_with_507_keeps_what_was_acknowledged_and_recovers() {
    let disk = SmallDisk::mount("6m");
    let token = disk.dir.add_member("Disk Filler", "class1", None);
    let daemon = Daemon::start(&disk.dir);
    let client = Client::new(&token);
    let url = daemon.url("/api/v1/reports");
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..400 {
        let (status, body) = client.post_json(&url, &big_submission(i)).await;
        match status {
            201 => acked.push(body["reports"][0]["id"].as_str().unwrap().to_string()),
            _ => {
                refused = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = refused.expect("a 6 MB disk fills up");
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["code"], json!("store_unavailable"));
    assert!(
        body["message"].as_str().unwrap().contains("disk space"),
        "{body}"
    );
    assert!(!acked.is_empty());
    // Reads still work, and everything acknowledged is there.
    for id in &acked {
        assert_eq!(
            client
                .get(&daemon.url(&format!("/api/v1/reports/{id}")))
                .await
                .0,
            200,
            "{id}"
        );
    }
    // Give the indexer time to fail on the full disk too: its writer dies on the I/O error
    // and must be replaced, or the index never catches up again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Space returns: submissions work again without a restart, and the projections recover.
    disk.resize("64m");
    let (status, body) = client.post_json(&url, &big_submission(9999)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["reports"][0]["id"].as_str().unwrap().to_string();
    wait_current(&daemon).await;
    let (status, hits) = client.get(&daemon.url("/api/v1/search?q=9999")).await;
    assert_eq!(status, 200, "{hits}");
    assert!(
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["report"]["id"] == json!(id)),
        "the report stored after recovery is searchable: {hits}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_never_takes_the_daemon_down() {
    let data = DataDir::new();
    let token = data.add_member("Hostile Member", "general", None);
    let daemon = Daemon::start(&data);
    let client = Client::new(&token);
    let url = daemon.url("/api/v1/reports");

    // Deep nesting: a clear 400, no stack overflow.
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let (status, body) = client
        .post_raw(&url, "application/json", deep.into_bytes())
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{body}"
    );

    // A huge array of indicators is refused as a whole.
    let many: Vec<Value> = (0..100_001).map(|i| json!({"type": "ipv4", "value": format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)})).collect();
    let (status, body) = client
        .post_json(
            &url,
            &json!({"title": "t", "tlp": "green", "indicators": many}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("more than 100000"),
        "{body}"
    );

    // Invalid UTF-8.
    let (status, body) = client
        .post_raw(
            &url,
            "application/json",
            b"{\"title\": \"\xff\xfe\", \"tlp\": \"green\"}".to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Oversized headers are refused by the HTTP layer.
    let addr = daemon.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let huge = "a".repeat(600_000);
    let _ = write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    // A slow client that never finishes its body holds only its own connection.
    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(slow, "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"title\":").unwrap();
    let (status, _) = client
        .post_json(
            &url,
            &submission("still served", "green", &[("ipv4", "192.0.2.9")]),
        )
        .await;
    assert_eq!(status, 201);
    drop(slow);

    let health = wait_current(&daemon).await;
    assert_eq!(
        health["committed_seq"],
        json!(1),
        "only the good submission was stored: {health}"
    );
}

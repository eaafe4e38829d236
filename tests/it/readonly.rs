//! A data directory that turns read-only under the running daemon, as ext4 does on a disk
//! error (`errors=remount-ro`): submissions are refused with 503 and a clear error, reads
//! keep working, nothing acknowledged is lost, and after the file system is repaired the
//! restarted daemon takes submissions again.
//!
//! The data directory is a small ext4 image on a loop device; `trigger_fs_error` in sysfs
//! makes the kernel remount it read-only while the daemon's files are open (a plain
//! `mount -o remount,ro` refuses while files are open for writing, and a read-only bind
//! mount does not affect descriptors already open). Linux does not let an emergency
//! read-only ext4 go back to read-write without unmounting, so recovery is: stop the
//! daemon, unmount, `e2fsck`, mount, start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{Client, Daemon, DataDir, submission, wait_current};

/// An ext4 image mounted on a temporary folder; unmounted on drop.
struct Ext4Disk {
    image: PathBuf,
    dir: DataDir,
    _image_dir: tempfile::TempDir,
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = match Command::new(cmd).args(args).output() {
        Ok(out) => out,
        // A missing tool is a broken test machine, not a platform that forbids loop mounts.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{cmd} not found: run ./.ci/install (it installs e2fsprogs, mount, util-linux)")
        }
        Err(e) => return Err(format!("{cmd}: {e}")),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Ext4Disk {
    /// None (with the reason) where loop mounts are not permitted.
    fn mount() -> Result<Ext4Disk, String> {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("data.ext4");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()])?;
        let disk = Ext4Disk {
            image,
            dir: DataDir::new(),
            _image_dir: image_dir,
        };
        disk.attach()?;
        Ok(disk)
    }

    fn attach(&self) -> Result<(), String> {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap(),
                self.path().to_str().unwrap(),
            ],
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The loop device's name (`loop3`).
    fn device(&self) -> String {
        let out = Command::new("findmnt")
            .args(["-no", "SOURCE"])
            .arg(self.path())
            .output()
            .unwrap();
        let dev = String::from_utf8(out.stdout).unwrap();
        dev.trim().trim_start_matches("/dev/").to_string()
    }

    fn is_read_only(&self) -> bool {
        let out = Command::new("findmnt")
            .args(["-no", "OPTIONS"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split(',')
            .any(|o| o == "ro" || o == "emergency_ro")
    }

    /// What a disk error does: the kernel remounts the file system read-only.
    fn fail(&self) {
        let knob = format!("/sys/fs/ext4/{}/trigger_fs_error", self.device());
        std::fs::write(&knob, "musubi read-only test").unwrap_or_else(|e| panic!("{knob}: {e}"));
        // The kernel remounts from a work queue: wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.is_read_only() {
            assert!(
                Instant::now() < deadline,
                "{knob} did not make it read-only"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Unmounts, checks and mounts again (the daemon must be stopped).
    fn repair(&self) {
        run("umount", &[self.path().to_str().unwrap()]).unwrap();
        // 1: errors corrected; both mean the file system is usable.
        let status = Command::new("e2fsck")
            .args(["-fy", self.image.to_str().unwrap()])
            .output()
            .unwrap()
            .status;
        assert!(matches!(status.code(), Some(0 | 1)), "e2fsck: {status:?}");
        self.attach().unwrap();
        assert!(!self.is_read_only());
    }
}

impl Drop for Ext4Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_data_directory_refuses_with_503_loses_nothing_and_recovers() {
    let disk = match Ext4Disk::mount() {
        Ok(d) => d,
        Err(reason) => {
            eprintln!("SKIPPED: cannot mount an ext4 image on a loop device here: {reason}");
            return;
        }
    };
    let token = disk.dir.add_member("Steady Member", "class1", None);
    let daemon = Daemon::start(&disk.dir);
    let client = Client::new(&token);
    let url = daemon.url("/api/v1/reports");
    let mut acked = Vec::new();
    for i in 0..5 {
        let (status, body) = client
            .post_json(
                &url,
                &submission(
                    &format!("before {i}"),
                    "green",
                    &[("ipv4", &format!("192.0.2.{}", 10 + i))],
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        acked.push(body["reports"][0]["id"].as_str().unwrap().to_string());
    }
    wait_current(&daemon).await;

    disk.fail();
    let started = Instant::now();
    for i in 0..3 {
        let (status, body) = client
            .post_json(
                &url,
                &submission(
                    &format!("during {i}"),
                    "green",
                    &[("ipv4", &format!("198.51.100.{}", 10 + i))],
                ),
            )
            .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], json!("store_unavailable"), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("read-only") && message.contains("nothing was stored"),
            "{body}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusals took {:?}",
        started.elapsed()
    );
    // Reads and health keep working.
    for id in &acked {
        let (status, body) = client
            .get(&daemon.url(&format!("/api/v1/reports/{id}")))
            .await;
        assert_eq!(status, 200, "{id}: {body}");
    }
    let health = crate::util::health(&daemon).await;
    assert_eq!(health["status"], json!("ok"), "{health}");
    assert_eq!(health["committed_seq"], json!(5), "{health}");

    // Repair: stop, fsck, mount, start.
    let _ = daemon.terminate(Duration::from_secs(15));
    disk.repair();
    let daemon = Daemon::start(&disk.dir);
    let health = wait_current(&daemon).await;
    assert_eq!(
        health["committed_seq"],
        json!(5),
        "exactly the acknowledged reports: {health}"
    );
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
    let (status, body) = client
        .post_json(
            &daemon.url("/api/v1/reports"),
            &submission("after repair", "green", &[("ipv4", "192.0.2.99")]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let health = wait_current(&daemon).await;
    assert_eq!(health["committed_seq"], json!(6), "{health}");
}

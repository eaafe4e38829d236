//! The peer comparison script (`benches/peers/run`) at small N, with the binary under test,
//! so that it cannot rot between the full runs recorded in BENCHMARKS.md: every cheap row
//! (medallion, iocextract, ioc-finder, stix2-patterns) must complete and the MariaDB row must
//! say why it was skipped. The peers come from PyPI (`.ci/install` puts them in
//! `/opt/musubi-ci/venv`; otherwise the script makes its own venv under `target/peers/`). The
//! test is skipped, with the reason printed, only when the script reports that the peers
//! cannot be installed (exit status 2); any other failure fails it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::BIN;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/run");

/// A Python that already has the peers, if there is one (saves the install).
fn python_with_peers() -> Option<PathBuf> {
    let p = std::env::var_os("MUSUBI_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/musubi-ci/venv/bin/python"));
    let ok = Command::new(&p)
        .args([
            "-c",
            "import medallion, iocextract, requests, ioc_finder, stix2patterns, pymysql",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(p)
}

#[test]
fn the_peer_script_runs_its_cheap_rows_at_small_n() {
    let work = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args(["--small", "--only-cheap", "--budget", "10", "--musubi", BIN])
        .arg("--work")
        .arg(work.path());
    if let Some(py) = python_with_peers() {
        cmd.arg("--python").arg(py);
    }
    let started = Instant::now();
    let out = cmd.output().expect("run benches/peers/run");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(2) && stdout.starts_with("skipped: ") {
        eprintln!("peers smoke run {}", stdout.trim());
        return;
    }
    assert!(
        out.status.success(),
        "benches/peers/run failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("peers smoke run: {:.1} s\n{stdout}", took.as_secs_f64());
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| peer |"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let row = |peer: &str, work: &str| -> &Vec<&str> {
        rows.iter()
            .find(|r| r[0].starts_with(peer) && r[1].contains(work))
            .unwrap_or_else(|| panic!("no row for {peer} / {work} in:\n{stdout}"))
    };
    // The harness itself works: the reference server gives back every id posted to it.
    let walk = row("medallion", "walk the collection, limit 500, 1 client");
    assert!(walk[3].contains("posted ids back 500/500"), "{walk:?}");
    let after = row("medallion", "added_after (2nd half), limit 500, 1 client");
    assert!(after[3].contains("posted ids back 250/250"), "{after:?}");
    for r in &rows {
        assert!(
            !r[2].starts_with("error") && !r[2].contains("HTTP "),
            "a row failed: {r:?}"
        );
    }
    // Both extractors measured, F1 computed on ioc-finder's cases.
    for peer in ["iocextract", "ioc-finder"] {
        let r = row(peer, "MB advisory text");
        assert!(r[2].contains("MB/s") && r[3].contains("MB/s"), "{r:?}");
        let f = row(peer, "F1 on ioc-finder's own");
        assert!(
            f[2].starts_with("F1 0.") || f[2].starts_with("F1 1."),
            "{f:?}"
        );
    }
    // The parser alone beside the validator, and an import of the same patterns.
    let p = row("stix2-patterns", "checked one a line");
    assert!(
        p[2].contains("musubi stix-pattern") && p[2].contains(", 0 invalid"),
        "{p:?}"
    );
    assert!(p[3].contains("0 invalid"), "{p:?}");
    let p = row("stix2-patterns", "as one STIX bundle imported");
    assert!(p[2].contains("0 rejected"), "{p:?}");
    // The expensive row is named and skipped, never silently absent.
    let misp = row(
        "re-enactment of MISP's algorithm",
        "attributes in 100 events",
    );
    assert!(misp[2].starts_with("skipped: "), "{misp:?}");
    assert!(
        took < Duration::from_secs(180),
        "the smoke run must finish in under 3 minutes; took {took:?}"
    );
}

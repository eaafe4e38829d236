//! One fixture tree (issue #17): the tests, the fuzz seeds and the demo all read
//! `tests/fixtures/` in place. Copies drift apart silently (a fix to one copy of a fixture
//! leaves the others stale), so no file under `tests/fixtures`, `fuzz/seeds` or `examples` may
//! have the same bytes as another, and every path the seed list and `feeds.toml` name exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn no_fixture_is_copied() {
    let mut files = Vec::new();
    for dir in ["tests/fixtures", "fuzz/seeds", "examples"] {
        walk(&repo().join(dir), &mut files);
    }
    assert!(
        files.len() > 100,
        "fixture tree not found: {} files",
        files.len()
    );
    let mut by_content: BTreeMap<[u8; 32], Vec<String>> = BTreeMap::new();
    for f in &files {
        let digest = Sha256::digest(std::fs::read(f).unwrap());
        let rel = f.strip_prefix(repo()).unwrap().display().to_string();
        by_content.entry(digest.into()).or_default().push(rel);
    }
    let copies: Vec<_> = by_content.values().filter(|v| v.len() > 1).collect();
    assert!(
        copies.is_empty(),
        "{} files have identical copies (keep the one under tests/fixtures and point \
         the reader at it; fuzz seeds go in fuzz/seeds.list): {copies:#?}",
        copies.len()
    );
}

#[test]
fn every_fuzz_seed_in_the_list_exists() {
    let list = std::fs::read_to_string(repo().join("fuzz/seeds.list")).unwrap();
    let mut seen = 0;
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "target, prefix, file: {line:?}");
        let prefix = fields[1];
        assert!(
            prefix == "-"
                || (prefix.len() == 4
                    && prefix.starts_with("0x")
                    && u8::from_str_radix(&prefix[2..], 16).is_ok()),
            "prefix is \"-\" or one hex byte (0x37): {line:?}"
        );
        assert!(
            repo()
                .join("fuzz/fuzz_targets")
                .join(format!("{}.rs", fields[0]))
                .exists(),
            "no fuzz target {:?}",
            fields[0]
        );
        assert!(
            repo().join(fields[2]).is_file(),
            "no such seed file: {line:?}"
        );
        seen += 1;
    }
    assert!(seen > 100, "seed list has {seen} lines");
}

#[test]
fn every_offline_demo_feed_exists() {
    let feeds = std::fs::read_to_string(repo().join("feeds.toml")).unwrap();
    let mut seen = 0;
    for line in feeds.lines().filter(|l| l.trim_start().starts_with("url")) {
        let Some(rest) = line.split("\"file://").nth(1) else {
            continue;
        };
        let path = rest.trim_end_matches('"');
        assert!(
            path.starts_with("tests/fixtures/"),
            "offline feeds read the fixture tree: {path}"
        );
        assert!(repo().join(path).is_file(), "no such feed file: {path}");
        seen += 1;
    }
    assert_eq!(seen, 10, "offline demo feeds in feeds.toml");
}

//! "Adding a flag touches the correlate folder, the rules file and the label table only"
//! (issue #17), checked on the source tree.
//!
//! A flag kind may be named (`FlagKind::Surge`, or a variant brought in by `use
//! FlagKind::...`) only where flags are defined and raised: `src/model/flag.rs` (the one
//! table: name, labels, alert, digest list, review rank) and `src/correlate/` (the rules).
//! Everything else iterates `FlagKind::ALL` or reads a column of the table, so a new kind
//! needs no edit there. Test code may name kinds (it checks particular ones).

use std::path::{Path, PathBuf};

/// Where naming a kind is the point.
const HOMES: &[&str] = &["model/flag.rs", "correlate/"];

/// Files that still name kinds, each to be moved home; the test fails on any other file,
/// and on a listed file that no longer names one, so the list only shrinks.
const KNOWN: &[&str] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each `FlagKind::<Variant>` (any capitalised name but `ALL`), `FlagKind::{` and
/// `FlagKind::*` in `text`, with its line number.
fn named_kinds(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (i, _) in line.match_indices("FlagKind::") {
            let rest = &line[i + "FlagKind::".len()..];
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let variant = ident.starts_with(|c: char| c.is_ascii_uppercase())
                && !ident.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if variant || rest.starts_with('{') || rest.starts_with('*') {
                out.push((n + 1, line.trim().to_string()));
            }
        }
    }
    out
}

#[test]
fn only_the_flag_table_and_the_correlator_name_flag_kinds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    let mut known_seen = std::collections::BTreeSet::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if HOMES.iter().any(|h| rel == *h || rel.starts_with(h)) {
            continue;
        }
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let product = text.split("#[cfg(test)]").next().unwrap_or_default();
        let named = named_kinds(product);
        if KNOWN.contains(&rel.as_str()) {
            if !named.is_empty() {
                known_seen.insert(rel);
            }
            continue;
        }
        for (line, code) in named {
            found.push(format!("{rel}:{line}: {code}"));
        }
    }
    let gone: Vec<_> = KNOWN.iter().filter(|k| !known_seen.contains(**k)).collect();
    assert!(
        gone.is_empty(),
        "these files no longer name flag kinds: remove them from KNOWN: {gone:?}"
    );
    assert!(
        found.is_empty(),
        "flag kinds named outside model/flag.rs and correlate/ (read a column of the \
         flag table instead, or add one):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanner_sees_variants_and_ignores_the_list() {
    let text = "let a = FlagKind::Surge;\nfor k in FlagKind::ALL {}\n\
                use crate::model::FlagKind::{Novel};\nfn f(k: FlagKind) {}";
    let lines: Vec<usize> = named_kinds(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [1, 3]);
}

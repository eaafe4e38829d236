//! The layering rule of DESIGN.md, checked on the source tree: a lower layer never imports
//! a higher one.
//!
//! ```text
//! model ← formats ← sources;  model ← store ← index, correlate ← council ← outputs, http, cli
//! ```
//!
//! The compiler already keeps `outputs`, `http`, `daemon` and the CLI away from the store's
//! readers (they sit outside `crate::engine`); this test keeps the rest of the order, which
//! Rust's visibility cannot express: `store` not knowing council types, `correlate` not
//! knowing review types, `formats` not knowing outputs. It reads every `crate::<module>`
//! path in each top-level module's files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each module may name. Anything else is a layering error.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("config", &["model", "formats"]),
    ("formats", &["model"]),
    ("sources", &["model", "config", "formats", "store"]),
    ("store", &["model"]),
    ("index", &["model", "config", "store"]),
    ("correlate", &["model", "config", "store"]),
    (
        "council",
        &["model", "config", "formats", "store", "index", "correlate"],
    ),
    ("outputs", &["model", "config", "formats", "council"]),
    (
        "http",
        &[
            "model", "config", "formats", "sources", "council", "outputs",
        ],
    ),
];

/// Known breaches, each to be removed: empty since issue #17, so the test fails on any
/// breach. Kept (with the check that a listed breach is really gone) so that a breach that
/// must land before its fix is written down here, not hidden.
const KNOWN: &[(&str, &str)] = &[];

const MODULES: &[&str] = &[
    "model",
    "config",
    "formats",
    "sources",
    "store",
    "index",
    "correlate",
    "council",
    "outputs",
    "http",
    "daemon",
];

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

/// The top-level modules named as `crate::<m>` in one file.
fn named(text: &str) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `musubi_crate::` or a word ending in `crate` is not a path into this crate.
        if text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(m) = MODULES.iter().find(|m| {
            rest.starts_with(**m)
                && !rest[m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        }) {
            out.insert(*m);
        }
    }
    out
}

#[test]
fn no_lower_layer_imports_a_higher_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut breaches = BTreeSet::new();
    for (module, may) in &allowed {
        let dir = root.join(module);
        let mut files = Vec::new();
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        let single = root.join(format!("{module}.rs"));
        if single.is_file() {
            files.push(single);
        }
        assert!(!files.is_empty(), "no source for module {module}");
        for file in files {
            // Test code may cross layers to check a round trip (a pattern the exporter
            // writes reads back); the rule is about what the product code depends on.
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for target in named(text) {
                if target != *module && !may.contains(&target) {
                    let rel = file.strip_prefix(&root).unwrap().display().to_string();
                    breaches.insert((rel, target));
                }
            }
        }
    }
    let known: BTreeSet<(String, &str)> = KNOWN.iter().map(|(f, t)| (f.to_string(), *t)).collect();
    let new: Vec<_> = breaches.difference(&known).collect();
    let gone: Vec<_> = known.difference(&breaches).collect();
    assert!(
        new.is_empty(),
        "lower layers import higher ones (file, imported module): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "these known breaches are fixed: remove them from KNOWN: {gone:?}"
    );
}

#[test]
fn the_scanner_sees_paths_and_ignores_lookalikes() {
    let text = "use crate::store::{self, Store};\nlet x = crate::council::Viewer;\n\
                let y = my_crate::outputs::x; // crate::modelling is another name";
    assert_eq!(named(text), BTreeSet::from(["store", "council"]));
}

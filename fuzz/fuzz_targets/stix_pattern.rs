//! STIX patterning: `formats::stix_pattern::parse` (the full grammar, its canonical rendering
//! and the extraction) and the strict check every member submission passes
//! (`formats::stix21::object_problem` on an indicator carrying the pattern).
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats;
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Some(pattern) = text(data) else {
        return;
    };
    match formats::stix_pattern::parse_ast(pattern) {
        Ok(ast) => {
            // The canonical rendering parses back to the same tree.
            let rendered = ast.to_string();
            match formats::stix_pattern::parse_ast(&rendered) {
                Ok(back) => assert_eq!(back, ast, "rendering {rendered:?} of {pattern:?}"),
                Err(e) => panic!("rendering {rendered:?} of {pattern:?} does not parse: {e}"),
            }
            let outcome = formats::stix_pattern::extract(&ast);
            outcome.observables.iter().for_each(check_observable);
            for (i, o) in outcome.observables.iter().enumerate() {
                assert!(
                    !outcome.observables[..i].contains(o),
                    "duplicate observable {o:?}"
                );
            }
        }
        Err(e) => {
            assert!(e.offset <= pattern.len(), "error offset past the end: {e}");
            assert!(pattern.is_char_boundary(e.offset), "offset inside a character: {e}");
            check_error(&e);
        }
    }
    let indicator = serde_json::json!({"type": "indicator", "pattern_type": "stix", "pattern": pattern});
    if let Some(reason) = formats::stix21::object_problem(&indicator) {
        assert!(!reason.is_empty());
    }
});

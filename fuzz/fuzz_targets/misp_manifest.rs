//! MISP feed `manifest.json`: `misp::parse_manifest`, `misp::events_to_fetch` and the manifest
//! branch of `formats::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    match formats::misp::parse_manifest(data) {
        Ok(entries) => {
            for w in entries.windows(2) {
                assert!(
                    w[0].timestamp <= w[1].timestamp,
                    "manifest not sorted oldest first"
                );
            }
            let fetch = formats::misp::events_to_fetch(data, 0).expect("parsed once, parses again");
            assert!(fetch.len() <= entries.len());
        }
        Err(e) => check_error(&e),
    }
    check_result(&formats::parse(
        &formats::Format::MispManifest,
        data,
        &ParseContext::default(),
    ));
});

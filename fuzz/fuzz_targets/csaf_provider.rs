//! CSAF discovery documents: `provider-metadata.json` (`csaf::parse_provider_metadata`), ROLIE
//! feeds (`csaf::rolie_advisory_urls`), and a directory's `index.txt` and `changes.csv`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats;
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    match formats::csaf::parse_provider_metadata(data) {
        Ok(m) => {
            for d in &m.directories {
                assert!(
                    d.ends_with('/'),
                    "directory url without a trailing slash: {d:?}"
                );
            }
        }
        Err(e) => check_error(&e),
    }
    if let Err(e) = formats::csaf::rolie_advisory_urls(data) {
        check_error(&e);
    }
    let base = "https://example.org/csaf/white/";
    if let Err(e) = formats::csaf::index_txt_urls(base, data) {
        check_error(&e);
    }
    if let Err(e) = formats::csaf::changes_csv_urls(base, data, None) {
        check_error(&e);
    }
});

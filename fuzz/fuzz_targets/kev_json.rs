//! CISA KEV catalogue, JSON: `formats::kev::parse_json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::kev::parse_json(data, &ParseContext::default()));
});

//! CISA KEV catalogue, CSV: `formats::kev::parse_csv`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::kev::parse_csv(data, &ParseContext::default()));
});

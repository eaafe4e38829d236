//! CSAF 2.0 advisories: `formats::csaf::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::csaf::parse(data, &ParseContext::default()));
});

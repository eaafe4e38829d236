//! STIX 2.1 bundles (or single objects): `formats::stix21::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::stix21::parse(data, &ParseContext::default()));
});

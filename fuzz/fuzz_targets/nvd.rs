//! NVD CVE API 2.0 responses and NVD JSON 1.1 data feeds: `formats::nvd::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::nvd::parse(data, &ParseContext::default()));
});

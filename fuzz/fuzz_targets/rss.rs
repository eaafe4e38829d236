//! RSS 1.0 (RDF), RSS 2.0 and Atom: `formats::rss::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::rss::parse(data, &ParseContext::default()));
});

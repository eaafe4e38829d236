//! Free-text extraction: `formats::extract::extract` and `refang`, and the text branch of
//! `formats::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    if let Some(s) = text(data) {
        for o in formats::extract::extract(s) {
            check_observable(&o);
        }
        let _ = formats::extract::refang(s);
    }
    check_result(&formats::parse(
        &formats::Format::Text,
        data,
        &ParseContext::default(),
    ));
});

//! Format auto-detection as `musubi import` does it (`sources::import::read_any` without a
//! format): `formats::detect`, else native JSON, else text, then the detected format's parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let format = formats::detect(data).unwrap_or_else(|| {
        if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
            formats::Format::Native
        } else {
            formats::Format::Text
        }
    });
    if format == formats::Format::Native {
        match formats::native::parse_bytes(data) {
            Ok(drafts) => drafts.iter().for_each(check_draft),
            Err(errors) => errors.iter().for_each(|e| check_error(e)),
        }
        return;
    }
    check_result(&formats::parse(&format, data, &ParseContext::default()));
});

//! musubi's own submission JSON: `formats::native::parse_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats;
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    match formats::native::parse_bytes(data) {
        Ok(drafts) => drafts.iter().for_each(check_draft),
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without a reason");
            errors.iter().for_each(|e| check_error(e));
        }
    }
});

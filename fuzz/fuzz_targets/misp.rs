//! MISP events (`{"Event": ...}`, bare events, `{"response": [...]}`): `formats::misp::parse`, and
//! the per-attribute mapping `misp::attribute_observables` (type on the first line, value after).
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    check_result(&formats::misp::parse(data, &ParseContext::default()));
    if let Some(s) = text(data)
        && let Some((ty, value)) = s.split_once('\n')
        && let Some(list) = formats::misp::attribute_observables(ty, value)
    {
        list.iter().for_each(check_observable);
    }
});

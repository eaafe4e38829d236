//! Line and CSV blocklists: `formats::blocklist::parse` with the preset chosen by the first
//! byte, and `blocklist::detect_value` on every line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats::{self, ParseContext};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    const PRESETS: [&str; 8] = [
        "plain",
        "feodo",
        "urlhaus",
        "threatfox",
        "spamhaus-drop",
        "spamhaus-asndrop",
        "dshield",
        "bambenek",
    ];
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let preset = PRESETS[usize::from(*first) % PRESETS.len()];
    let spec = formats::BlocklistSpec::preset(preset).expect("known preset");
    check_result(&formats::blocklist::parse(
        &spec,
        rest,
        &ParseContext::default(),
    ));
    if let Some(s) = text(rest) {
        for line in s.lines() {
            if let Some(o) = formats::blocklist::detect_value(line) {
                check_observable(&o);
            }
        }
    }
});

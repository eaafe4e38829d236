//! HTTP submission bodies by media type: `sources::submission::drafts_from` with the media type
//! chosen by the first byte (JSON, STIX JSON, absent, or an unsupported one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::sources::submission::{SubmissionError, drafts_from};
use musubi_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let media = match first % 4 {
        0 => None,
        1 => Some("application/json; charset=utf-8"),
        2 => Some("application/stix+json;version=2.1"),
        _ => Some("text/plain"),
    };
    match drafts_from(media, body) {
        Ok(drafts) => {
            assert!(media != Some("text/plain"));
            drafts.iter().for_each(check_draft);
        }
        Err(SubmissionError::Invalid(errors)) => {
            assert!(!errors.is_empty(), "rejected without a reason");
            errors.iter().for_each(|e| check_error(e));
        }
        Err(SubmissionError::UnsupportedMediaType(m)) => {
            assert_eq!(media, Some("text/plain"), "{m}")
        }
    }
});

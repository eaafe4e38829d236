//! The TAXII server's STIX reader: `formats::stix_min::convert` on the objects of a JSON
//! envelope (`{"objects": [...]}`) or a bare array.
#![no_main]

use libfuzzer_sys::fuzz_target;
use musubi::formats;
use musubi_fuzz::*;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let objects = match &value {
        Value::Array(list) => list.clone(),
        Value::Object(o) => match o.get("objects") {
            Some(Value::Array(list)) => list.clone(),
            _ => vec![value.clone()],
        },
        _ => return,
    };
    let converted = formats::stix_min::convert(&objects);
    if let Some(d) = &converted.draft {
        check_draft(d);
    }
    assert!(
        converted.successes.len() + converted.failures.len() <= objects.len(),
        "more outcomes than objects"
    );
});

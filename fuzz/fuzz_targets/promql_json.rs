//! A Prometheus server's /api/v1/query answer: any body is an instant vector or one error
//! message, for both label sets `top --prometheus` reads.
#![no_main]
use kubectl_dentry::prometheus::{RowLabels, parse_vector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let _ = parse_vector::<RowLabels>(body);
    let _ = parse_vector::<std::collections::BTreeMap<String, String>>(body);
});

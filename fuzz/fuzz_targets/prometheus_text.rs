//! A tracer's /metrics as the plugin reads it (through the pod proxy or --endpoint): any text
//! is a sample or one error, and two samples make rows without panicking.
#![no_main]
use kubectl_dentry::rates::{Sample, rows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(sample) = Sample::parse(text) {
        let _ = rows(&sample, &sample, 1.0, "node");
        let _ = rows(&Sample::default(), &sample, 0.0, "node");
    }
});

//! `/proc/self/mountinfo` with overlay mount options (lowerdir, upperdir, escapes): any text
//! parses into a layer map without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = tracer::owners::layers::layer_dirs(text);
});

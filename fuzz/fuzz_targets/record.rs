//! A ring-buffer record as the kernel programs write it (header, then path components): any
//! bytes decode or are refused, and the pipeline turns a decoded one into TSV lines without
//! panicking, whatever its lengths, flags and names say.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tracer::trace::{
    events::{Clock, TraceEvent, decode_into},
    pipeline::{Caps, Pipeline},
};

fuzz_target!(|data: &[u8]| {
    let clock = Clock::now();
    let mut ev = TraceEvent::default();
    if decode_into(data, &clock, &mut ev) {
        assert!(!ev.path.contains('\n') || ev.path.contains('\n'));
    }
    let mut pipeline = Pipeline::new(
        vec!["#sql".into(), ".ibd".into()],
        None,
        false,
        Caps::default(),
    )
    .expect("pipeline");
    let _ = pipeline.handle(data);
    let mut all = Pipeline::new(vec![], None, false, Caps::default()).expect("pipeline");
    let _ = all.handle(data);
});

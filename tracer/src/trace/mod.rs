//! Trace records from the ring buffer to lines: decoding, the per-record pipeline, the TSV
//! format, the rotated files, stdout's writer and the end-of-run summary.
pub mod events;
pub mod pipeline;
pub mod rotate;
pub mod stdout;
pub mod summary;
pub mod tsv;

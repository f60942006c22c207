//! The node-side dentry tracer: loads the kernel programs, attaches them, reads their counters,
//! traces paths and serves what it finds. The folders follow docs/architecture.md.
pub mod cli;
pub mod kernel;
pub mod owners;
pub mod run;
pub mod serve;
pub mod trace;

/// The kernel programs, built from `tracer-ebpf` by build.rs.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf"));

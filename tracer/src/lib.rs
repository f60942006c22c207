//! The node-side dentry tracer: loads the kernel programs, attaches them, reads their counters.
pub mod btf;
pub mod cgroup;
pub mod check;
pub mod cli;
pub mod counters;
pub mod cri;
pub mod events;
pub mod http;
pub mod kubelet;
pub mod kubepath;
pub mod metrics;
pub mod misses;
pub mod owners;
pub mod pipeline;
pub mod probes;
pub mod rotate;
pub mod stdout;
pub mod summary;
pub mod tsv;

/// The kernel programs, built from `tracer-ebpf` by build.rs.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf"));

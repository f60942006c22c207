//! The kernel side as userspace sees it: BTF offsets, loading and attaching the programs,
//! reading their counters and the runs the kernel skipped, and `--check`.
pub mod btf;
pub mod check;
pub mod counters;
pub mod features;
pub mod live;
pub mod misses;
pub mod object;
pub mod privileges;
pub mod probes;

//! `#[repr(C)]` types shared by the kernel programs (`tracer-ebpf`) and the tracer's userspace.
//!
//! Every type here crosses the user/kernel boundary through a BPF map or a global, so its layout
//! is a contract between two separately compiled programs: change both sides together.
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

mod config;
mod contract;
mod counters;
mod event;
mod live;
mod maps;
mod offsets;
mod patterns;
mod privileges;
#[cfg(feature = "alloc")]
mod trace_patterns;

pub use config::*;
pub use contract::*;
pub use counters::*;
pub use event::*;
pub use live::*;
pub use maps::*;
pub use offsets::*;
pub use patterns::*;
pub use privileges::*;
#[cfg(feature = "alloc")]
pub use trace_patterns::{MAX_PATTERN_LEN, PatternError, parse_patterns};

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain old data, `repr(C)`, explicit padding, every bit pattern valid.
    unsafe impl aya::Pod for crate::Counters {}
    unsafe impl aya::Pod for crate::HotCounters {}
    unsafe impl aya::Pod for crate::KernelOffsets {}
    unsafe impl aya::Pod for crate::Config {}
    unsafe impl aya::Pod for crate::KernelPatterns {}
    unsafe impl aya::Pod for crate::Live {}
    unsafe impl aya::Pod for crate::OwnerLayout {}
}

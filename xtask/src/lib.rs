//! Tasks around the build: toolchain set-up, the real-kernel VM test bed, demo and release.
//!
//! The library half is what Rust tests use: `vm::VmRun` boots a Debian cloud kernel under qemu
//! with the binaries a test names and returns the tagged lines its script printed.
pub mod arch;
pub mod bench;
pub mod binaries;
pub mod cache;
pub mod command;
pub mod dentry_workload;
pub mod fixtures;
pub mod fuzz;
pub mod initramfs;
pub mod kernel;
pub mod node_workload;
pub mod oci;
pub mod pending_workload;
pub mod release;
pub mod scenario;
pub mod scripts;
pub mod setup;
pub mod soak;
pub mod vm;

//! The kubectl plugin's library half: which cluster, what it asks the cluster to run, how it
//! reads what the tracers report, and how failures are told.
pub mod cleanup;
pub mod cluster;
pub mod error;
pub mod fetch;
pub mod launch;
pub mod progress;
pub mod proxy;
pub mod signals;
pub mod table;
pub mod target;
pub mod top;
pub mod top_run;
pub mod trace;
pub mod tracer_log;
pub mod tracer_pod;

/// The tracer image the plugin starts unless told otherwise: the release matching this plugin.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/kubectl-dentry/tracer:", env!("CARGO_PKG_VERSION"));

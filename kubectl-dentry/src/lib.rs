//! The kubectl plugin's library half: what it asks the cluster to run, and how it reads what
//! the tracers report.
pub mod top;
pub mod tracer_pod;

/// The tracer image the plugin starts unless told otherwise: the release matching this plugin.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/kubectl-dentry/tracer:", env!("CARGO_PKG_VERSION"));

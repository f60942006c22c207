//! The kubectl plugin's library half.

/// The tracer image the plugin starts unless told otherwise: the release matching this plugin.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/kubectl-dentry/tracer:", env!("CARGO_PKG_VERSION"));

//! The kubectl plugin's library half: which cluster, what it asks the cluster to run, how it
//! reads what the tracers report, and how failures are told. The folders follow
//! docs/architecture.md: `cmd/` holds one module per command, `tracer/` the tracer pod.
pub mod args;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod error;
pub mod http_get;
pub mod https;
pub mod pods;
pub mod progress;
pub mod prometheus;
pub mod rates;
pub mod signals;
pub mod table;
pub mod tracer;

/// The tracer image the plugin starts unless told otherwise: the release matching this plugin.
pub const DEFAULT_IMAGE: &str =
    concat!("ghcr.io/kubectl-dentry/tracer:", env!("CARGO_PKG_VERSION"));

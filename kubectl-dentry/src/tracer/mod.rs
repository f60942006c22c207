//! The tracer pod as the plugin drives it: its spec, its launch and end, its log, and its HTTP
//! through the API server's pod proxy.
pub mod arch;
pub mod events;
pub mod launch;
pub mod log;
pub mod pod;
pub mod privileges;
pub mod proxy;

//! One module per command: its flags (clap `Args`) and what it does.
pub mod cleanup;
pub mod fetch;
pub mod top;
pub mod trace;
pub mod version;

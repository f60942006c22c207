//! `kubectl-dentry`: the kubectl plugin. Its commands arrive with the plugin issue; until then it
//! answers `version` and says plainly that nothing else exists yet.
use clap::{Parser, Subcommand};

/// Investigate the kernel dentry cache of a pod, or of every pod on a node.
#[derive(Debug, Parser)]
#[command(name = "kubectl-dentry", bin_name = "kubectl dentry", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the plugin's version.
    Version,
}

fn main() {
    match Cli::parse().command {
        Command::Version => println!("kubectl-dentry {}", env!("CARGO_PKG_VERSION")),
    }
}

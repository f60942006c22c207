//! `kubectl-dentry`: the kubectl plugin (`kubectl dentry ...` finds it on PATH).
use std::process::ExitCode;

use clap::Parser as _;
use kubectl_dentry::{cli::Cli, error::Error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "kubectl dentry: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Local(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(kubectl_dentry::cmd::run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubectl dentry: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

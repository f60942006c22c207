//! `kubectl-dentry`: the kubectl plugin (`kubectl dentry ...` finds it on PATH).
use std::process::ExitCode;

use clap::Parser as _;
use kubectl_dentry::{cli::Cli, error::Error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line: clap's message runs on to the next lines where it lists arguments
            // ("... not provided:\n  --wait"); the usage and tips after it are left out.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let message = match message.join(" ") {
                m if m.is_empty() => "invalid arguments".to_owned(),
                m => m,
            };
            eprintln!(
                "kubectl dentry: {} (see --help)",
                message.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Local(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(kubectl_dentry::cli::run(cli)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kubectl dentry: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

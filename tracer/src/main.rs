//! `tracer`: the node binary. Loads the dentry probes, serves metrics, writes path traces,
//! reports on exit.
use std::{io::IsTerminal as _, process::ExitCode};

use clap::Parser;
use tracer::cli::Args;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // Bad input: one line (clap adds a "try --help" paragraph we leave out).
            let text = e.render().to_string();
            eprintln!(
                "tracer: {}",
                text.lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(tracer::run::run(args)));
    match outcome {
        Ok(code) => code,
        Err(err) => {
            // One line: the cause chain joined, so the user sees cause and fix together.
            eprintln!("tracer: {err:#}");
            ExitCode::FAILURE
        }
    }
}

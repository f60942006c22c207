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
            eprintln!("tracer: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The cause chain joined on one line, so the user sees cause and fix together. aya's errors
/// print their source in their own text as well, so a cause already written is left out; a
/// call the kernel refused with EPERM gains why (the capabilities lacking, or a seccomp
/// profile) and what to change.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut refused = false;
    for cause in err.chain() {
        refused |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(libc::EPERM));
        let cause = cause.to_string();
        // aya writes the verifier's log after its error, and the label alone when it is empty.
        let text = cause
            .trim_end_matches(" Verifier output: ")
            .trim_end_matches('.');
        if line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    if refused {
        use tracer::kernel::privileges;
        line.push_str("; ");
        line.push_str(&privileges::refused_hint(
            privileges::effective(),
            privileges::kernel_version(),
        ));
    }
    line
}

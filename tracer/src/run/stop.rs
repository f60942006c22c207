//! What ends a run: SIGTERM, SIGINT, or the --duration deadline.
use std::time::Duration;

use anyhow::Context as _;

/// What ends a run: SIGTERM, SIGINT, or the --duration deadline.
pub struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    deadline: Option<tokio::time::Instant>,
    /// A signal (not the deadline) ended the last wait.
    pub signalled: bool,
}

impl Stop {
    /// Signals only: no deadline until `run_for`.
    pub fn install() -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            deadline: None,
            signalled: false,
        })
    }

    /// The deadline, from now: `--duration` is how long the probes trace, so it starts once
    /// they are attached (loading them can take seconds on a busy node, a minute under TCG).
    pub fn run_for(&mut self, duration: Option<Duration>) {
        self.deadline = duration.map(|d| tokio::time::Instant::now() + d);
    }

    pub async fn wait(&mut self) {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        self.signalled = tokio::select! {
            _ = self.term.recv() => true,
            _ = self.int.recv() => true,
            () = deadline => false,
        };
    }
}

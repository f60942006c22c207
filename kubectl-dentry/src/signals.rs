//! The signals that end a command the way Ctrl-C does. A CI job's timeout, `timeout(1)` and
//! process managers send SIGTERM; a closed terminal or SSH session sends SIGHUP. Each must
//! delete the tracer pods the command started, as SIGINT does; without a handler they would
//! kill the plugin and leave a privileged pod running until its deadline.
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::Error;

pub struct Stop {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Stop {
    /// Installs the handlers. From then on these signals no longer end the process by
    /// themselves, so a second one cannot cut a deletion short.
    pub fn install() -> Result<Stop, Error> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::Local(format!("cannot handle {name}: {e}")))
        };
        Ok(Stop {
            int: install(SignalKind::interrupt(), "SIGINT")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Waits for the next of the three; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

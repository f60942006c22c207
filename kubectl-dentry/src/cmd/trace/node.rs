//! One node's tracer in a trace of several pods: created for the node's target pods, told of
//! pods added and gone through its target-uid annotation, stopped when none is left, its log
//! sent on to the trace line by line.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt as _;
use kube::Client;
use tokio::sync::{mpsc, watch};

use super::SUMMARY_WAIT;
use crate::{
    error::Error,
    progress::Progress,
    tracer::{
        launch::{self, Launched, State},
        log::{self as tracer_log, Line},
        pod::{Purpose, TracerPod},
    },
};

/// What a node's tracer tells the trace.
pub enum Msg {
    Attached {
        node: String,
        mode: String,
    },
    Line {
        node: String,
        kind: Line,
        text: String,
    },
    Over {
        node: String,
        how: Over,
    },
}

pub enum Over {
    /// It finished by itself (--duration, --max-events).
    ByItself,
    /// Its targets went, or the trace ended: it was stopped.
    Stopped,
    /// It could not run; the error says why.
    Failed(Error),
}

/// The tracer pods created so far, so that the trace deletes them however it ends.
pub type Launches = Arc<Mutex<Vec<Launched>>>;

pub struct NodeTracer {
    pub spec: TracerPod,
    /// The node's target pods' UIDs; empty stops the tracer.
    pub uids: watch::Receiver<Vec<String>>,
    pub out: mpsc::UnboundedSender<Msg>,
    pub launches: Launches,
    /// How long it may take to start and attach.
    pub timeout: Duration,
    pub keep: bool,
}

/// Runs one node's tracer to its end, then says how it ended.
pub async fn run(client: Client, mut n: NodeTracer) {
    let node = n.spec.node.clone();
    let how = match trace(&client, &mut n).await {
        Ok(how) => how,
        Err(e) => {
            // A failed tracer pod is of no use to anyone, --keep or not.
            let mine = n.launches.lock().ok().and_then(|mut l| {
                let i = l.iter().position(|p| p.node == node)?;
                Some(l.remove(i))
            });
            if let Some(pod) = mine {
                let _ = launch::delete(&client, &pod).await;
            }
            Over::Failed(e)
        }
    };
    let _ = n.out.send(Msg::Over { node, how });
}

async fn trace(client: &Client, n: &mut NodeTracer) -> Result<Over, Error> {
    let launched = launch::create(client, &n.spec).await?;
    if let Ok(mut l) = n.launches.lock() {
        l.push(launched.clone());
    }
    let node = launched.node.clone();
    let timeout = |state: &str| Error::Timeout {
        pod: format!("{}/{}", launched.namespace, launched.name),
        secs: n.timeout.as_secs(),
        state: state.to_owned(),
    };
    let deadline = tokio::time::Instant::now() + n.timeout;
    // Its warnings and the privileges it runs with reach the trace's stderr as its lines.
    let out = n.out.clone();
    let from = node.clone();
    let mut quiet = Progress::lines_to(move |text| {
        let _ = out.send(Msg::Line {
            node: from.clone(),
            kind: Line::Message,
            text,
        });
    });
    let state = tokio::select! {
        s = launch::wait_started(client, &launched, &mut quiet) => s?,
        () = tokio::time::sleep_until(deadline) => return Err(timeout("not started")),
        () = emptied(&mut n.uids) => return stop(client, n, &launched).await,
    };
    if let State::Exited(code) = state
        && code != 0
    {
        return Err(launch::failure(client, &launched).await);
    }
    let mut told = match &n.spec.purpose {
        Purpose::Trace { target_uids, .. } => target_uids.clone(),
        Purpose::Top => Vec::new(),
    };
    let mut lines = Box::pin(launch::follow(client, &launched).await?);
    let mut attached = false;
    let mut stopping: Option<tokio::time::Instant> = None;
    // Changes seen while it started count too: compare at once.
    let mut check = true;
    loop {
        if check && stopping.is_none() {
            check = false;
            let uids = n.uids.borrow_and_update().clone();
            if uids.is_empty() {
                if n.keep {
                    return Ok(Over::Stopped);
                }
                delete(client, n, &launched).await?;
                stopping = Some(tokio::time::Instant::now() + SUMMARY_WAIT);
            } else if uids != told {
                launch::set_targets(client, &launched, &uids).await?;
                told = uids;
            }
        }
        let line = tokio::select! {
            line = lines.next() => line,
            changed = n.uids.changed(), if stopping.is_none() => {
                if changed.is_err() {
                    // The trace is gone: nothing reads this tracer any more.
                    n.uids = watch::channel(Vec::new()).1;
                }
                check = true;
                continue;
            }
            () = tokio::time::sleep_until(deadline), if !attached => {
                return Err(timeout("probes not attached"));
            }
            () = tokio::time::sleep_until(stopping.unwrap_or(deadline)), if stopping.is_some() => {
                return Ok(Over::Stopped);
            }
        };
        let Some(line) = line else { break };
        let text = line.map_err(|e| Error::LogStream {
            pod: format!("{}/{}", launched.namespace, launched.name),
            message: e.to_string(),
        })?;
        let kind = tracer_log::classify(&text);
        let msg = match kind {
            Line::Attached => {
                attached = true;
                let mode = tracer_log::attach_mode(&text).unwrap_or("attached");
                Msg::Attached {
                    node: node.clone(),
                    mode: mode.to_owned(),
                }
            }
            Line::Finished => return Ok(Over::ByItself),
            kind => Msg::Line {
                node: node.clone(),
                kind,
                text,
            },
        };
        if n.out.send(msg).is_err() {
            return stop(client, n, &launched).await;
        }
    }
    if stopping.is_some() {
        return Ok(Over::Stopped);
    }
    match launch::exit_code(client, &launched).await {
        Some(0) | None => Ok(Over::ByItself),
        Some(_) => Err(launch::failure(client, &launched).await),
    }
}

/// Waits until the node has no target left (or the trace is gone).
async fn emptied(uids: &mut watch::Receiver<Vec<String>>) {
    while !uids.borrow_and_update().is_empty() {
        if uids.changed().await.is_err() {
            return;
        }
    }
}

async fn stop(client: &Client, n: &NodeTracer, launched: &Launched) -> Result<Over, Error> {
    if !n.keep {
        delete(client, n, launched).await?;
    }
    Ok(Over::Stopped)
}

/// Deletes the tracer pod, which the trace then need not delete again.
async fn delete(client: &Client, n: &NodeTracer, launched: &Launched) -> Result<(), Error> {
    launch::delete(client, launched).await?;
    if let Ok(mut l) = n.launches.lock() {
        l.retain(|p| p != launched);
    }
    Ok(())
}

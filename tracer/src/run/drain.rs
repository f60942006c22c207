//! The drain: ring buffer → pipeline until a stop or a cap, then tracing off in the kernel and
//! a final drain bounded in time, so a stop under any storm ends within a grace period.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::{Ebpf, maps::RingBuf};
use tokio::{io::unix::AsyncFd, sync::watch};

use crate::{
    kernel::probes,
    owners::Owners,
    run::stop::Stop,
    serve::http::AppState,
    trace::pipeline::{Flow, Pipeline},
};

/// How a trace ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// A cap (`--max-events`, `--max-bytes`...) was reached; the tracer goes on counting.
    Capped(&'static str),
    /// Stopped (a signal, `--duration`) at this instant: the summary is due `STOP_BUDGET` later.
    Stopped(std::time::Instant),
}

/// Drains the ring buffer into the pipeline until stopped or capped, then turns tracing off in
/// the kernel; on a stop, what is left is drained for at most `FINAL_DRAIN`.
pub async fn trace(
    ring: RingBuf<aya::maps::MapData>,
    pipeline: &mut Pipeline,
    stop: &mut Stop,
    state: &AppState,
    mut owners: watch::Receiver<Arc<Owners>>,
    ebpf: &Mutex<Ebpf>,
) -> anyhow::Result<Ended> {
    // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd, which deregisters it
    // before the fd is closed.
    let mut ring = unsafe { AsyncFd::register(ring) }
        .map_err(|e| anyhow::anyhow!("watching the ring buffer: {e}"))?;
    let stop = stop.wait();
    tokio::pin!(stop);
    // The kernel wakes us only when the buffer is a quarter full; the tick drains the rest.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut reported_file_error = false;
    pipeline.owners = owners.borrow_and_update().clone();
    // Returns (cap reached, ring buffer emptied). A batch is bounded (DRAIN_BATCH records,
    // `budget` of time) so that under a flood the loop still flushes stdout, picks up new
    // owners and notices a stop.
    let mut drain =
        |ring: &mut RingBuf<aya::maps::MapData>, pipeline: &mut Pipeline, budget: Duration| {
            if owners.has_changed().unwrap_or(false) {
                pipeline.owners = owners.borrow_and_update().clone();
            }
            let before = pipeline.kept;
            let started = std::time::Instant::now();
            let mut flow = Flow::Continue;
            let mut emptied = false;
            for n in 0..DRAIN_BATCH {
                // A batch is bounded in time too: on a slow or starved CPU a whole batch can
                // take seconds, and a stop waits for it.
                if n % 64 == 63 && started.elapsed() >= budget {
                    break;
                }
                let Some(record) = ring.next() else {
                    emptied = true;
                    break;
                };
                flow = pipeline.handle(&record);
                if flow != Flow::Continue {
                    break;
                }
            }
            pipeline.flush();
            if let Ok(m) = state.metrics.lock() {
                m.add_events(pipeline.kept - before);
            }
            if let (Some(e), false) = (&pipeline.file_error, reported_file_error) {
                eprintln!(
                    "tracer: trace file write failed: {e} (lines are skipped until writes work \
                 again; metrics go on)"
                );
                reported_file_error = true;
            }
            let capped = match flow {
                Flow::Capped(which) => Some(which),
                Flow::Continue => None,
            };
            (capped, emptied)
        };
    let capped = loop {
        // While stdout's reader lags, the ring buffer waits (and the kernel counts drops when
        // it is full); a stop is noticed all the same.
        let backlogged = pipeline.backlogged();
        let room = pipeline.stdout.as_ref().map(|out| out.room());
        let capped = tokio::select! {
            // A stop first: picked at random among ready branches, it could lose to the tick
            // round after round under a flood.
            biased;
            () = &mut stop => break None,
            Some(room) = async { room?.await }, if backlogged => {
                if let Some(out) = &mut pipeline.stdout {
                    out.send(room);
                }
                None
            }
            _ = tick.tick(), if !backlogged => drain(ring.get_mut(), pipeline, DRAIN_BUDGET).0,
            guard = ring.readable_mut(), if !backlogged => {
                let mut guard = guard?;
                let (capped, emptied) = drain(guard.get_inner_mut(), pipeline, DRAIN_BUDGET);
                if emptied {
                    guard.clear_ready();
                }
                capped
            }
        };
        if capped.is_some() {
            break capped;
        }
    };
    // Capped or stopped, the kernel stops writing events (counters go on). Under a storm the
    // probes write as fast as we read: what is left is finite only once they stop, and the
    // drain is bounded in time too, so the summary comes within a kubelet's grace period.
    {
        let mut kernel = ebpf
            .lock()
            .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
        probes::set_tracing(&mut kernel, false)?;
    }
    if let Some(which) = capped {
        return Ok(Ended::Capped(which));
    }
    let stopped = std::time::Instant::now();
    tracing::debug!(
        kept = pipeline.kept,
        "stop: tracing off, draining what is left"
    );
    let deadline = tokio::time::Instant::now() + FINAL_DRAIN;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (capped, emptied) = drain(ring.get_mut(), pipeline, left.min(DRAIN_BUDGET));
        if let Some(which) = capped {
            return Ok(Ended::Capped(which));
        }
        if emptied || tokio::time::Instant::now() >= deadline {
            tracing::debug!(kept = pipeline.kept, emptied, "stop: drained");
            if !emptied {
                // Said in the summary: counting a record without decoding it is cheap.
                let ring = ring.get_mut();
                let counted = std::time::Instant::now();
                while counted.elapsed() < UNREAD_COUNT && ring.next().is_some() {
                    pipeline.unread += 1;
                }
            }
            return Ok(Ended::Stopped(stopped));
        }
        if pipeline.backlogged() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// From a stop to the summary, at most (plus the summary's own reads): the final drain, the
/// count of what it left, and stdout's last lines share it, so that a stop under a storm with
/// a reader that stopped reading still reports well within a kubelet's grace period.
pub const STOP_BUDGET: Duration = Duration::from_millis(2500);
/// How long a stop may spend on what the ring buffer still holds.
const FINAL_DRAIN: Duration = Duration::from_millis(1500);
/// How long a stop may spend counting the records the drain left (at most a ring buffer's).
const UNREAD_COUNT: Duration = Duration::from_millis(500);
/// How long stdout's reader gets for the last lines: what is left of `STOP_BUDGET` after a
/// stop, but never less than this; after a cap, the whole of it.
pub const STDOUT_GRACE: Duration = Duration::from_secs(1);
pub const STDOUT_LEAST: Duration = Duration::from_millis(200);

/// How long stdout's reader may still take, for a trace that ended so.
pub fn stdout_grace(ended: Option<Ended>) -> Duration {
    match ended {
        Some(Ended::Stopped(at)) => (at + STOP_BUDGET)
            .saturating_duration_since(std::time::Instant::now())
            .max(STDOUT_LEAST),
        _ => STDOUT_GRACE,
    }
}

/// Records handled per drain call, at most, before the loop looks at its other duties ...
const DRAIN_BATCH: usize = 8192;
/// ... and the time one drain call may take.
const DRAIN_BUDGET: Duration = Duration::from_millis(100);

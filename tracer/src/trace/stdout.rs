//! stdout for trace lines, written by a thread of its own. A reader that does not keep up
//! (`kubectl logs -f` over a slow link) slows the trace down, as the ring buffer then fills and
//! the kernel counts drops, but never holds up a stop: the summary on stderr does not wait for
//! stdout.
use std::{
    io::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;

/// Lines and how many of them.
pub struct Batch {
    bytes: Vec<u8>,
    lines: u64,
}

/// Batches in flight to the writer thread; past it, lines wait in the sink's buffer.
const QUEUE: usize = 4;

pub struct Sink {
    buf: Vec<u8>,
    buffered_lines: u64,
    tx: mpsc::Sender<Batch>,
    pushed: u64,
    written: Arc<AtomicU64>,
    done: std::sync::mpsc::Receiver<()>,
}

/// Room for one batch, once the writer has taken an earlier one.
pub type Room = mpsc::OwnedPermit<Batch>;

impl Sink {
    /// Starts the writer thread; `header` is written first.
    pub fn start(header: &str) -> std::io::Result<Sink> {
        let (tx, mut rx) = mpsc::channel::<Batch>(QUEUE);
        let (done_tx, done) = std::sync::mpsc::channel();
        let written = Arc::new(AtomicU64::new(0));
        let counted = written.clone();
        let mut out = std::io::stdout();
        writeln!(out, "{header}")?;
        out.flush()?;
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || {
                while let Some(batch) = rx.blocking_recv() {
                    // A closed stdout (reader gone) must not stop the files or the metrics:
                    // later batches are taken and dropped.
                    if out
                        .write_all(&batch.bytes)
                        .and_then(|()| out.flush())
                        .is_ok()
                    {
                        counted.fetch_add(batch.lines, Ordering::Relaxed);
                    }
                }
                let _ = done_tx.send(());
            })?;
        Ok(Sink {
            buf: Vec::with_capacity(1 << 16),
            buffered_lines: 0,
            tx,
            pushed: 0,
            written,
            done,
        })
    }

    /// Queues one line (with its newline).
    pub fn push(&mut self, line: &[u8]) {
        self.buf.extend_from_slice(line);
        self.buffered_lines += 1;
        self.pushed += 1;
    }

    /// Hands the buffered lines to the writer if it has room; else they stay buffered.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Ok(permit) = self.tx.clone().try_reserve_owned() {
            permit.send(self.take());
        }
    }

    /// Lines are waiting for the writer to take them.
    pub fn backlogged(&self) -> bool {
        !self.buf.is_empty()
    }

    /// A handle to wait for room with, while the sink itself stays free for the drain.
    pub fn room(&self) -> impl Future<Output = Option<Room>> + use<> {
        let tx = self.tx.clone();
        async move { tx.reserve_owned().await.ok() }
    }

    /// Hands the buffered lines over into room `room` waited for.
    pub fn send(&mut self, room: Room) {
        if !self.buf.is_empty() {
            room.send(self.take());
        }
    }

    fn take(&mut self) -> Batch {
        let lines = std::mem::take(&mut self.buffered_lines);
        let bytes = std::mem::replace(&mut self.buf, Vec::with_capacity(1 << 16));
        Batch { bytes, lines }
    }

    /// Ends the stream: what is queued gets up to `within` to reach stdout. Returns the lines
    /// that did not (a reader that stopped reading keeps them from it).
    pub fn finish(mut self, within: Duration) -> u64 {
        if !self.buf.is_empty()
            && let Ok(permit) = self.tx.clone().try_reserve_owned()
        {
            permit.send(self.take());
        }
        let Sink {
            tx,
            pushed,
            written,
            done,
            ..
        } = self;
        drop(tx);
        let _ = done.recv_timeout(within);
        pushed - written.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_stay_buffered_while_the_writer_is_full() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (tx, _rx) = mpsc::channel::<Batch>(1);
            let (_done_tx, done) = std::sync::mpsc::channel();
            let mut sink = Sink {
                buf: Vec::new(),
                buffered_lines: 0,
                tx,
                pushed: 0,
                written: Arc::new(AtomicU64::new(0)),
                done,
            };
            sink.push(b"a\n");
            sink.flush();
            assert!(!sink.backlogged(), "the first batch fits the queue");
            sink.push(b"b\n");
            sink.push(b"c\n");
            sink.flush();
            assert!(sink.backlogged(), "the queue is full: the lines wait");
            // Nobody reads: the stop gives up on all three, promptly.
            assert_eq!(sink.finish(Duration::from_millis(10)), 3);
        });
    }
}

//! Several tracers' lines as one stream in time order: each line waits up to `WINDOW` after it
//! arrives for earlier ones from other nodes, then goes out in timestamp order. A line that
//! arrives more than `WINDOW` late (a node's log stream stalled) goes out when it arrives, so
//! order holds within the window and nothing is ever held longer.
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// How long a line waits for earlier ones (documented in docs/traces.md).
pub const WINDOW: Duration = Duration::from_secs(1);

/// A line, the node whose tracer sent it, and when it arrived.
struct Held {
    node: String,
    line: String,
    arrived: Instant,
}

#[derive(Default)]
pub struct Merge {
    /// By (timestamp, arrival number): the tracer's timestamps are RFC 3339 UTC with nine
    /// fractional digits, so their text sorts as their time.
    held: BTreeMap<(String, u64), Held>,
    arrivals: u64,
}

impl Merge {
    pub fn push(&mut self, node: String, line: String) {
        self.push_at(node, line, Instant::now());
    }

    fn push_at(&mut self, node: String, line: String, arrived: Instant) {
        let stamp = line.split('\t').next().unwrap_or_default().to_owned();
        self.arrivals += 1;
        let held = Held {
            node,
            line,
            arrived,
        };
        self.held.insert((stamp, self.arrivals), held);
    }

    /// The lines due at `now`, in time order: the earliest held line goes once it has waited
    /// `WINDOW`, and every later one waits behind it.
    pub fn due(&mut self, now: Instant) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if now.duration_since(entry.get().arrived) < WINDOW {
                break;
            }
            let held = entry.remove();
            out.push((held.node, held.line));
        }
        out
    }

    /// Everything held, in time order (the trace is over).
    pub fn drain(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.held)
            .into_values()
            .map(|h| (h.node, h.line))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stamp: &str, pod: &str) -> String {
        format!("2026-12-01T08:37:{stamp}Z\t{pod}\tc\t81\talloc\t/x\ttmpfs")
    }

    #[test]
    fn lines_from_two_nodes_come_out_in_time_order_after_the_window() {
        let t0 = Instant::now();
        let mut m = Merge::default();
        m.push_at("node-a".into(), line("15.000000002", "a"), t0);
        m.push_at("node-a".into(), line("15.000000003", "a"), t0);
        m.push_at(
            "node-b".into(),
            line("15.000000001", "b"),
            t0 + Duration::from_millis(300),
        );
        assert!(m.due(t0 + Duration::from_millis(900)).is_empty());
        // The earliest line arrived last: it holds the others until its own window passes.
        assert!(m.due(t0 + WINDOW).is_empty());
        let out = m.due(t0 + Duration::from_millis(1300));
        let pods: Vec<(&str, &str)> = out
            .iter()
            .map(|(node, l)| (node.as_str(), l.split('\t').nth(1).unwrap_or("")))
            .collect();
        assert_eq!(pods, [("node-b", "b"), ("node-a", "a"), ("node-a", "a")]);
        assert!(m.drain().is_empty());
    }

    #[test]
    fn a_late_line_is_not_held_longer_than_the_window() {
        let t0 = Instant::now();
        let mut m = Merge::default();
        m.push_at("node-a".into(), line("20.0", "a"), t0);
        assert_eq!(m.due(t0 + WINDOW).len(), 1);
        m.push_at("node-b".into(), line("10.0", "b"), t0 + WINDOW);
        assert!(m.due(t0 + WINDOW + Duration::from_millis(999)).is_empty());
        assert_eq!(m.due(t0 + WINDOW + WINDOW).len(), 1);
    }
}

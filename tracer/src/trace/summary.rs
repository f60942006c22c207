//! The end-of-run summary: totals, and the paths and directories that dominated — above all the
//! directories where lookups kept failing (negative dentries), which no other tool shows.
use dentry_common::Operation;
use rustc_hash::FxHashMap as HashMap;

use crate::trace::events::TraceEvent;

/// Distinct keys remembered per table; past this, new keys are counted as "other" so a flood
/// of unique names cannot grow memory without bound.
pub const MAX_KEYS: usize = 50_000;

#[derive(Debug, Default)]
pub struct Summary {
    pub events: u64,
    paths: Tally,
    negative_dirs: Tally,
}

#[derive(Debug, Default)]
struct Tally {
    counts: HashMap<String, u64>,
    other: u64,
}

impl Tally {
    fn add(&mut self, key: &str) {
        if let Some(n) = self.counts.get_mut(key) {
            *n += 1;
        } else if self.counts.len() < MAX_KEYS {
            self.counts.insert(key.to_owned(), 1);
        } else {
            self.other += 1;
        }
    }

    fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
        let mut v: Vec<(&str, u64)> = self.counts.iter().map(|(k, &c)| (k.as_str(), c)).collect();
        // The summary is printed at a stop, under a storm perhaps: pick the top n in linear
        // time rather than sort every key.
        if n < v.len() {
            v.select_nth_unstable_by(n, order);
            v.truncate(n);
        }
        v.sort_unstable_by(order);
        v
    }
}

impl Summary {
    pub fn record(&mut self, ev: &TraceEvent) {
        self.events += 1;
        if ev.path.is_empty() {
            return;
        }
        self.paths.add(&ev.path);
        if ev.op == Operation::Negative {
            let dir = match ev.path.rsplit_once('/') {
                Some(("", _)) | None => "/",
                Some((dir, _)) => dir,
            };
            self.negative_dirs.add(dir);
        }
    }

    pub fn top_paths(&self, n: usize) -> Vec<(&str, u64)> {
        self.paths.top(n)
    }

    pub fn top_negative_dirs(&self, n: usize) -> Vec<(&str, u64)> {
        self.negative_dirs.top(n)
    }

    /// Human-readable lines for stderr.
    pub fn render(&self, n: usize) -> String {
        let mut out = String::new();
        let mut table = |title: &str, rows: Vec<(&str, u64)>| {
            if rows.is_empty() {
                return;
            }
            out.push_str(title);
            out.push('\n');
            for (key, count) in rows {
                out.push_str(&format!("  {count:>10}  {key}\n"));
            }
        };
        table(
            "top directories of negative lookups:",
            self.top_negative_dirs(n),
        );
        table("top paths:", self.top_paths(n));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn ev(op: Operation, path: &str) -> TraceEvent {
        TraceEvent {
            time: SystemTime::UNIX_EPOCH,
            cgroup_id: 1,
            pid: 1,
            comm: String::new(),
            op,
            path: path.into(),
            fstype: "ext4".into(),
            ..TraceEvent::default()
        }
    }

    #[test]
    fn ranks_negative_directories_and_paths() {
        let mut s = Summary::default();
        for i in 0..5 {
            s.record(&ev(
                Operation::Negative,
                &format!("/var/lib/mysql/#sql-{i}"),
            ));
        }
        s.record(&ev(Operation::Negative, "/etc/missing"));
        s.record(&ev(Operation::Negative, "/top"));
        s.record(&ev(Operation::Alloc, "/etc/missing"));
        s.record(&ev(Operation::Shrink, ""));
        assert_eq!(s.events, 9);
        assert_eq!(
            s.top_negative_dirs(2),
            vec![("/var/lib/mysql", 5), ("/", 1)]
        );
        assert_eq!(s.top_paths(1), vec![("/etc/missing", 2)]);
        assert!(s.render(3).contains("top directories of negative lookups:"));
    }

    #[test]
    fn memory_is_bounded() {
        let mut s = Summary::default();
        for i in 0..MAX_KEYS + 10 {
            s.record(&ev(Operation::Alloc, &format!("/x/{i}")));
        }
        assert_eq!(s.paths.counts.len(), MAX_KEYS);
        assert_eq!(s.paths.other, 10);
    }
}

//! What happens to each ring-buffer record: decode, filter by pattern, attribute to a pod,
//! format as a TSV line, write to the rotated files and/or stdout, tally for the summary, and
//! stop at the caps.
use std::sync::Arc;

use std::fmt::Write as _;

use dentry_common::Operation;

use crate::{
    owners::{Owners, layers::Layers},
    trace::{
        events::{self, Clock},
        rotate::Rotator,
        stdout::Sink,
        summary::Summary,
        tsv,
    },
};

/// Limits after which tracing stops (`None`: no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    pub max_events: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// Whether to keep going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// A cap was reached; the message says which.
    Capped(&'static str),
}

/// Patterns tested on a record's raw bytes before it is decoded, when that gives the same
/// answer as testing the path's text: each pattern is non-empty ASCII without `/`, so it can
/// only occur inside one component, whose bytes are the text's (the separators are NULs,
/// which no pattern holds); a cut path (`...` prefix) is left to the full test. Under a
/// storm most records match nothing, and rejecting them undecoded is most of their cost.
struct RawFilter(Vec<memchr::memmem::Finder<'static>>);

impl RawFilter {
    fn new(patterns: &[String]) -> Option<RawFilter> {
        let exact = !patterns.is_empty()
            && patterns
                .iter()
                .all(|p| dentry_common::within_component(p.as_bytes()));
        exact.then(|| {
            RawFilter(
                patterns
                    .iter()
                    .map(|p| memchr::memmem::Finder::new(p.as_bytes()).into_owned())
                    .collect(),
            )
        })
    }

    /// True when the record certainly matches no pattern.
    fn rejects(&self, record: &[u8]) -> bool {
        events::whole_path(record)
            .is_some_and(|path| !self.0.iter().any(|f| f.find(path).is_some()))
    }
}

/// What goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    Off,
    /// The contract's lines.
    Tsv,
    /// The contract's columns, then `comm` and `pid` (`--stdout-process`, for `explain`): the
    /// files keep the contract's.
    WithProcess,
}

impl From<bool> for Stdout {
    fn from(on: bool) -> Stdout {
        if on { Stdout::Tsv } else { Stdout::Off }
    }
}

pub struct Pipeline {
    pub clock: Clock,
    patterns: Vec<String>,
    raw_filter: Option<RawFilter>,
    pub owners: Arc<Owners>,
    /// Paths on overlay layers as the container sees them (`None`: the host's view).
    pub layers: Option<Layers>,
    files: Option<Rotator>,
    pub stdout: Option<Sink>,
    stdout_process: bool,
    pub summary: Summary,
    caps: Caps,
    /// Events kept (passed the filters) and bytes of lines produced.
    pub kept: u64,
    pub bytes: u64,
    /// Set once a file write failed (disk full...), so it is reported once.
    pub file_error: Option<String>,
    pub file_errors: u64,
    /// Records a stop left in the ring buffer when its drain ran out of time.
    pub unread: u64,
    line: String,
    ev: events::TraceEvent,
}

impl Pipeline {
    pub fn new(
        patterns: Vec<String>,
        files: Option<Rotator>,
        stdout: impl Into<Stdout>,
        caps: Caps,
    ) -> std::io::Result<Pipeline> {
        let columns = stdout.into();
        let stdout = match columns {
            Stdout::Off => None,
            Stdout::Tsv => Some(Sink::start(tsv::HEADER)?),
            Stdout::WithProcess => Some(Sink::start(dentry_common::TSV_PROCESS_HEADER)?),
        };
        Ok(Pipeline {
            clock: Clock::now(),
            raw_filter: RawFilter::new(&patterns),
            patterns,
            owners: Arc::new(Owners::default()),
            layers: None,
            files,
            stdout,
            stdout_process: columns == Stdout::WithProcess,
            summary: Summary::default(),
            caps,
            kept: 0,
            bytes: 0,
            file_error: None,
            file_errors: 0,
            unread: 0,
            line: String::with_capacity(512),
            ev: events::TraceEvent::default(),
        })
    }

    fn keep(&self, path: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| path.contains(p.as_str()))
    }

    /// stdout has lines its writer has not taken yet (the reader is slow).
    pub fn backlogged(&self) -> bool {
        self.stdout.as_ref().is_some_and(Sink::backlogged)
    }

    /// Handles one record.
    pub fn handle(&mut self, record: &[u8]) -> Flow {
        if self.raw_filter.as_ref().is_some_and(|f| f.rejects(record))
            || !events::decode_into(record, &self.clock, &mut self.ev)
        {
            return Flow::Continue;
        }
        if let Some(layers) = &mut self.layers {
            layers.rewrite(&self.ev.fstype, &mut self.ev.path);
        }
        if !self.keep(&self.ev.path) {
            return Flow::Continue;
        }
        if self.ev.allocated {
            // One record for a lookup's allocation and its result: two lines, alloc first.
            let result = self.ev.op;
            self.ev.op = Operation::Alloc;
            let flow = self.write();
            self.ev.op = result;
            if flow != Flow::Continue {
                return flow;
            }
        }
        self.write()
    }

    /// Writes the current event's line, unless a cap stops it.
    fn write(&mut self) -> Flow {
        let ev = &self.ev;
        if let Some(cap) = self.caps.max_events
            && self.kept >= cap
        {
            return Flow::Capped("--max-events");
        }
        self.line.clear();
        let (pod, container) = match self.owners.get(ev.cgroup_id) {
            Some(o) => (o.pod.as_str(), o.container.as_str()),
            None => ("", ""),
        };
        tsv::write_line(&mut self.line, ev, pod, container);
        if let Some(cap) = self.caps.max_bytes
            && self.bytes + self.line.len() as u64 > cap
        {
            return Flow::Capped("--max-bytes");
        }
        self.kept += 1;
        self.bytes += self.line.len() as u64;
        self.summary.record(ev);
        if let Some(files) = &mut self.files
            && let Err(e) = files.write_line(self.line.as_bytes())
        {
            self.file_errors += 1;
            if self.file_error.is_none() {
                self.file_error = Some(e.to_string());
            }
        }
        if let Some(out) = &mut self.stdout {
            if self.stdout_process {
                self.line.pop();
                self.line.push('\t');
                tsv::escape_into(&mut self.line, &ev.comm);
                let _ = writeln!(self.line, "\t{}", ev.pid);
            }
            out.push(self.line.as_bytes());
        }
        Flow::Continue
    }

    /// Pushes buffered lines out (stdout is buffered; file lines are written whole already).
    pub fn flush(&mut self) {
        if let Some(out) = &mut self.stdout {
            out.flush();
        }
        if let Some(files) = &mut self.files {
            let _ = files.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use dentry_common::{EventHeader, Operation};

    use super::*;

    fn record(path: &[u8]) -> Vec<u8> {
        record_with(path, 0)
    }

    fn record_with(path: &[u8], flags: u16) -> Vec<u8> {
        events::encode(&header(flags), path)
    }

    fn header(flags: u16) -> EventHeader {
        EventHeader {
            ts_ns: 1,
            cgroup_id: 5,
            pid: 1,
            op: Operation::Negative as u32,
            comm: [0; 16],
            fstype: *b"ext4\0\0\0\0\0\0\0\0\0\0\0\0",
            path_len: 0,
            depth: 0,
            flags,
            _pad: 0,
            count: 0,
        }
    }

    #[test]
    fn a_lookup_record_is_an_alloc_line_then_its_result() {
        let dir = tempfile::tempdir().unwrap();
        let rotator = Rotator::open(dir.path(), 1 << 20, 2, tsv::HEADER).unwrap();
        let mut p = Pipeline::new(vec![], Some(rotator), false, Caps::default()).unwrap();
        assert_eq!(
            p.handle(&record_with(
                b"missing\0dir\0",
                dentry_common::FLAG_ALLOCATED
            )),
            Flow::Continue
        );
        assert_eq!(p.handle(&record(b"other\0dir\0")), Flow::Continue);
        p.flush();
        assert_eq!(p.kept, 3);
        let text = std::fs::read_to_string(dir.path().join(crate::trace::rotate::ACTIVE)).unwrap();
        let ops: Vec<(&str, &str)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                (c[4], c[5])
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("alloc", "/dir/missing"),
                ("negative", "/dir/missing"),
                ("negative", "/dir/other"),
            ]
        );
        // A cap between the two lines stops after the first.
        let caps = Caps {
            max_events: Some(1),
            max_bytes: None,
        };
        let mut p = Pipeline::new(vec![], None, false, caps).unwrap();
        assert_eq!(
            p.handle(&record_with(b"x\0", dentry_common::FLAG_ALLOCATED)),
            Flow::Capped("--max-events")
        );
        assert_eq!(p.kept, 1);
    }

    #[test]
    fn patterns_are_substrings_of_the_whole_path() {
        let mut p = Pipeline::new(
            vec!["#sql".into(), "db1/t".into()],
            None,
            false,
            Caps::default(),
        )
        .unwrap();
        assert_eq!(p.handle(&record(b"#sql-1.ibd\0tmp\0")), Flow::Continue);
        assert_eq!(p.handle(&record(b"t1.ibd\0db1\0")), Flow::Continue); // across components
        assert_eq!(p.handle(&record(b"other\0db2\0")), Flow::Continue);
        assert_eq!(p.kept, 2);
        assert_eq!(
            p.summary.top_negative_dirs(5),
            vec![("/db1", 1), ("/tmp", 1)]
        );
    }

    #[test]
    fn layer_paths_are_the_containers_before_patterns_and_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mountinfo = dir.path().join("mountinfo");
        std::fs::write(
            &mountinfo,
            "22 1 254:1 / / rw - ext4 /dev/vda1 rw\n\
             40 22 0:52 / /c rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n",
        )
        .unwrap();
        let records = [
            record(b"t1.ibd\0mysql\0lib\0var\0u\0"),
            record(b"t1.ibd\0mysql\0lib\0var\0l\0"),
            record(b"t1.ibd\0mysql\0lib\0var\0"),
            record(b"t1.ibd\0mysql\0lib\0var\0elsewhere\0"),
        ];
        let run = |pattern: &str| {
            let mut p = Pipeline::new(vec![pattern.into()], None, false, Caps::default()).unwrap();
            p.layers = Some(Layers::new(mountinfo.clone()));
            for record in &records {
                p.handle(record);
            }
            p
        };
        let p = run("/var/lib/mysql/");
        assert_eq!(p.kept, 4);
        assert_eq!(
            p.summary.top_negative_dirs(5),
            vec![("/var/lib/mysql", 3), ("/elsewhere/var/lib/mysql", 1)]
        );
        // Patterns see the written path, not the layer's.
        assert_eq!(run("/u/").kept, 0);
    }

    #[test]
    fn the_raw_filter_agrees_with_the_text_filter() {
        let records: Vec<Vec<u8>> = vec![
            record(b"#sql-1.ibd\0tmp\0"),
            record(b"t1.ibd\0db1\0"),
            record(b"other\0db2\0"),
            record(b""),
            record(b"bad-\xff\xfe\0dir\0"),
            record_with(b"deep\0", dentry_common::FLAG_TRUNCATED),
            record_with(b"x.ibd\0", dentry_common::FLAG_ALLOCATED),
        ];
        for patterns in [
            vec!["#sql".to_owned()],
            vec![".ibd".into(), "db2".into()],
            vec!["...".into()],
            vec!["db1/t".into()],
            vec!["\u{fffd}".into()],
            vec!["no-such-path".into()],
        ] {
            let raw = RawFilter::new(&patterns);
            let text = Pipeline::new(patterns.clone(), None, false, Caps::default()).unwrap();
            for r in &records {
                let mut ev = events::TraceEvent::default();
                assert!(events::decode_into(r, &text.clock, &mut ev));
                if raw.as_ref().is_some_and(|f| f.rejects(r)) {
                    assert!(!text.keep(&ev.path), "{patterns:?} rejected {:?}", ev.path);
                }
            }
        }
        // Only patterns that cannot cross a component or meet a replaced byte go raw.
        assert!(RawFilter::new(&["db1/t".into()]).is_none());
        assert!(RawFilter::new(&["\u{fffd}".into()]).is_none());
        assert!(RawFilter::new(&[]).is_none());
        let f = RawFilter::new(&["#sql".into()]).unwrap();
        assert!(f.rejects(&record(b"other\0db2\0")));
        assert!(!f.rejects(&record(b"#sql-1.ibd\0tmp\0")));
        assert!(!f.rejects(&record_with(b"x\0", dentry_common::FLAG_TRUNCATED)));
    }

    /// The kernel's word-at-a-time test gives the text filter's answer on every whole path it
    /// may see, whatever the scratch buffer holds past the path (the last event's bytes).
    #[test]
    fn the_kernel_pattern_test_agrees_with_the_text_filter() {
        use dentry_common::{KERNEL_FILTER_PATH, KernelPatterns, NAME_BUF, PATH_BUF};
        // xorshift: reproducible, and enough to mix the cases.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: usize| -> usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        // Few letters, so patterns often match partly; 0x01 and 0x80.. stress the zero-byte
        // test's borrow and bytes that are not ASCII.
        const ALPHABET: &[u8] = b"aab.#sql\x01\x80\xff";
        let (mut kept, mut checked) = (0, 0);
        let mut event = Box::new(dentry_common::Event {
            header: header(0),
            path: [0; PATH_BUF + NAME_BUF],
        });
        for _ in 0..20_000 {
            let patterns: Vec<String> = (0..1 + next(4))
                .map(|_| {
                    (0..1 + next(16))
                        .map(|_| char::from(b"ab.#sql"[next(7)]))
                        .collect()
                })
                .collect();
            let kernel = KernelPatterns::new(patterns.iter().map(|p| p.as_bytes()));
            assert_eq!(kernel.count as usize, patterns.len(), "{patterns:?}");
            let mut path = Vec::new();
            for _ in 0..1 + next(6) {
                path.extend((0..1 + next(40)).map(|_| ALPHABET[next(ALPHABET.len())]));
                path.push(0);
            }
            path.truncate(KERNEL_FILTER_PATH);
            let scratch = &mut event.path;
            scratch
                .iter_mut()
                .for_each(|b| *b = ALPHABET[next(ALPHABET.len())]);

            // Past the path: copies of a pattern, which must not count: one where the search
            // still starts (its start overwritten by `end_path`), one just past its NULs.
            let tail = patterns[0].as_bytes();
            for at in [path.len() + 6, path.len() + 8] {
                scratch[at..at + tail.len()].copy_from_slice(tail);
            }
            scratch[..path.len()].copy_from_slice(&path);
            dentry_common::end_path(&mut event, path.len());

            let text = Pipeline::new(patterns.clone(), None, false, Caps::default()).unwrap();
            let mut ev = events::TraceEvent::default();
            assert!(events::decode_into(&record(&path), &text.clock, &mut ev));
            let want = text.keep(&ev.path);
            let got = kernel.found_in(&event, path.len());
            assert_eq!(got, want, "{patterns:?} on {path:?}");
            kept += usize::from(want);
            checked += 1;
        }
        // Both answers were exercised.
        assert!(
            kept > checked / 10 && kept < checked * 9 / 10,
            "{kept} of {checked}"
        );
        // What the kernel cannot test exactly, it leaves to userspace, all of it.
        for patterns in [
            vec!["db1/t"],
            vec!["\u{fffd}"],
            vec!["seventeen-bytes-x"],
            vec![".ibd", "a", "b", "c", "d"],
            vec![".ibd", ""],
        ] {
            let kernel = KernelPatterns::new(patterns.iter().map(|p| p.as_bytes()));
            assert_eq!(kernel.count, 0, "{patterns:?}");
        }
    }

    #[test]
    fn caps_stop_before_exceeding() {
        let caps = Caps {
            max_events: Some(2),
            max_bytes: None,
        };
        let mut p = Pipeline::new(vec![], None, false, caps).unwrap();
        assert_eq!(p.handle(&record(b"a\0")), Flow::Continue);
        assert_eq!(p.handle(&record(b"b\0")), Flow::Continue);
        assert_eq!(p.handle(&record(b"c\0")), Flow::Capped("--max-events"));
        assert_eq!(p.kept, 2);
        let caps = Caps {
            max_events: None,
            max_bytes: Some(100),
        };
        let mut p = Pipeline::new(vec![], None, false, caps).unwrap();
        let mut flows = Vec::new();
        for _ in 0..5 {
            flows.push(p.handle(&record(b"some-file\0dir\0")));
        }
        assert!(p.bytes <= 100 && p.kept >= 1, "{} bytes", p.bytes);
        assert_eq!(flows.last(), Some(&Flow::Capped("--max-bytes")));
    }
}

//! Decoding ring-buffer records into trace events.
use std::time::{Duration, SystemTime};

use dentry_common::{EventHeader, FLAG_ALLOCATED, FLAG_TRUNCATED, Operation};

/// One dentry event, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    pub time: SystemTime,
    pub cgroup_id: u64,
    pub pid: u32,
    pub comm: String,
    pub op: Operation,
    /// Relative to the filesystem's root, `/`-separated; starts with `...` when the walk was cut
    /// short (deeper than the programs walk). Empty for reclaim events.
    pub path: String,
    pub fstype: String,
    /// For prune: dentries freed (0 when unknown).
    pub count: u64,
    /// A lookup's result that also stands for the allocation of its dentry (`FLAG_ALLOCATED`).
    pub allocated: bool,
}

impl Default for TraceEvent {
    fn default() -> Self {
        TraceEvent {
            time: SystemTime::UNIX_EPOCH,
            cgroup_id: 0,
            pid: 0,
            comm: String::new(),
            op: Operation::Alloc,
            path: String::new(),
            fstype: String::new(),
            count: 0,
            allocated: false,
        }
    }
}

/// Maps the kernel's CLOCK_MONOTONIC timestamps to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    boot_wall: SystemTime,
}

impl Clock {
    /// Measures the offset between CLOCK_REALTIME and CLOCK_MONOTONIC now.
    pub fn now() -> Clock {
        let mono = monotonic_ns();
        let wall = SystemTime::now();
        Clock {
            boot_wall: wall - Duration::from_nanos(mono),
        }
    }

    pub fn at(&self, monotonic_ns: u64) -> SystemTime {
        self.boot_wall + Duration::from_nanos(monotonic_ns)
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Encodes a record as the kernel programs lay it out (for tests and benchmarks).
pub fn encode(header: &EventHeader, path: &[u8]) -> Vec<u8> {
    let mut h = *header;
    h.path_len = path.len() as u16;
    // SAFETY: viewing a plain-data, repr(C) struct as its bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&h as *const EventHeader).cast::<u8>(),
            size_of::<EventHeader>(),
        )
    };
    [bytes, path].concat()
}

/// Decodes one record: an `EventHeader` followed by `path_len` bytes of NUL-terminated
/// components, leaf first. Returns `None` for a record too short or with an unknown operation.
pub fn decode(record: &[u8], clock: &Clock) -> Option<TraceEvent> {
    let mut ev = TraceEvent::default();
    decode_into(record, clock, &mut ev).then_some(ev)
}

/// A record's header and raw path bytes; `None` for a record shorter than they say.
fn split(record: &[u8]) -> Option<(EventHeader, &[u8])> {
    let header_len = std::mem::size_of::<EventHeader>();
    if record.len() < header_len {
        return None;
    }
    // SAFETY: the length was checked; EventHeader is plain data valid for any bytes.
    let h: EventHeader = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let path = record.get(header_len..header_len + h.path_len as usize)?;
    Some((h, path))
}

/// A record's raw path bytes (components leaf first, NUL-terminated) when its path is whole;
/// `None` for a short record or a cut path (whose text starts with `...`).
pub fn whole_path(record: &[u8]) -> Option<&[u8]> {
    split(record)
        .filter(|(h, _)| h.flags & FLAG_TRUNCATED == 0)
        .map(|(_, path)| path)
}

/// As `decode`, into an event whose strings are reused (no allocation once they have grown):
/// the pipeline calls this millions of times a second.
pub fn decode_into(record: &[u8], clock: &Clock, ev: &mut TraceEvent) -> bool {
    let Some((h, path_bytes)) = split(record) else {
        return false;
    };
    let Some(op) = Operation::from_u32(h.op) else {
        return false;
    };
    ev.time = clock.at(h.ts_ns);
    ev.cgroup_id = h.cgroup_id;
    ev.pid = h.pid;
    ev.op = op;
    ev.count = h.count;
    ev.allocated = h.flags & FLAG_ALLOCATED != 0;
    c_string_into(&mut ev.comm, &h.comm);
    c_string_into(&mut ev.fstype, &h.fstype);
    join_components_into(&mut ev.path, path_bytes, h.flags & FLAG_TRUNCATED != 0, op);
    true
}

fn c_string_into(out: &mut String, bytes: &[u8]) {
    out.clear();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    out.push_str(&String::from_utf8_lossy(&bytes[..end]));
}

fn join_components_into(path: &mut String, bytes: &[u8], truncated: bool, op: Operation) {
    path.clear();
    if matches!(op, Operation::Shrink | Operation::Prune) {
        return;
    }
    if truncated {
        path.push_str("...");
    }
    // Components are leaf first: walk them from the end.
    for c in bytes.rsplit(|&b| b == 0).filter(|c| !c.is_empty()) {
        path.push('/');
        match std::str::from_utf8(c) {
            Ok(text) => path.push_str(text),
            Err(_) => path.push_str(&String::from_utf8_lossy(c)),
        }
    }
    if path.is_empty() {
        path.push('/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dentry_common::{COMM_LEN, FSTYPE_LEN};

    fn record(op: Operation, path: &[u8], flags: u16) -> Vec<u8> {
        let mut comm = [0u8; COMM_LEN];
        comm[..4].copy_from_slice(b"stat");
        let mut fstype = [0u8; FSTYPE_LEN];
        fstype[..4].copy_from_slice(b"ext4");
        let h = EventHeader {
            ts_ns: 1_000,
            cgroup_id: 42,
            pid: 7,
            op: op as u32,
            comm,
            fstype,
            path_len: path.len() as u16,
            depth: 0,
            flags,
            _pad: 0,
            count: 0,
        };
        // SAFETY: viewing a plain-data struct as bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&h as *const EventHeader).cast::<u8>(),
                size_of::<EventHeader>(),
            )
        };
        [bytes, path].concat()
    }

    #[test]
    fn components_are_reversed_into_a_rooted_path() {
        let clock = Clock {
            boot_wall: SystemTime::UNIX_EPOCH,
        };
        let ev = decode(
            &record(Operation::Negative, b"missing-1\0work\0", 0),
            &clock,
        )
        .unwrap();
        assert_eq!(ev.path, "/work/missing-1");
        assert_eq!(ev.fstype, "ext4");
        assert_eq!(ev.comm, "stat");
        assert_eq!(ev.cgroup_id, 42);
        assert_eq!(
            ev.time,
            SystemTime::UNIX_EPOCH + Duration::from_nanos(1_000)
        );
    }

    #[test]
    fn truncation_is_marked() {
        let clock = Clock::now();
        let ev = decode(
            &record(Operation::Alloc, b"leaf\0dir\0", FLAG_TRUNCATED),
            &clock,
        )
        .unwrap();
        assert_eq!(ev.path, ".../dir/leaf");
    }

    #[test]
    fn short_or_unknown_records_are_refused() {
        let clock = Clock::now();
        assert!(decode(&[0u8; 8], &clock).is_none());
        let mut bad = record(Operation::Alloc, b"", 0);
        bad[20] = 99; // op
        assert!(decode(&bad, &clock).is_none());
        let mut long = record(Operation::Alloc, b"x\0", 0);
        long.truncate(long.len() - 1);
        assert!(decode(&long, &clock).is_none());
    }
}

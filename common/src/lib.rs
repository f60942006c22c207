//! `#[repr(C)]` types shared by the kernel programs (`tracer-ebpf`) and the tracer's userspace.
//!
//! Every type here crosses the user/kernel boundary through a BPF map or a global, so its layout
//! is a contract between two separately compiled programs: change both sides together.
#![no_std]

/// Per-cgroup dentry counters, one copy per CPU (a `PerCpuHashMap` value) so the kernel side
/// never takes a lock; userspace sums the CPUs when it reads them.
///
/// Semantics (docs/counters.md): `alloc` counts every dentry allocation (`__d_alloc`);
/// `negative` counts dentries left without an inode (a lookup that found nothing: `d_add` or
/// `d_splice_alias` with a NULL inode; an unlink: `d_delete`); `positive` counts dentries given
/// an inode (`d_instantiate`, `d_instantiate_new`, `d_add`/`d_splice_alias` with an inode). A
/// create therefore counts one alloc, one negative (its lookup) and one positive.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub alloc: u64,
    pub positive: u64,
    pub negative: u64,
    /// Calls of `shrink_dcache_sb` (remount, some unmount paths) made by this cgroup's tasks.
    pub shrink_calls: u64,
    /// Calls of `prune_dcache_sb` (the superblock shrinker: memory pressure, drop_caches).
    pub prune_calls: u64,
    /// Dentries `prune_dcache_sb` reported freed.
    pub pruned: u64,
}

impl Counters {
    /// Every field, in declaration order: what field-wise operations go through.
    pub fn fields_mut(&mut self) -> [&mut u64; 6] {
        [
            &mut self.alloc,
            &mut self.positive,
            &mut self.negative,
            &mut self.shrink_calls,
            &mut self.prune_calls,
            &mut self.pruned,
        ]
    }

    /// `f` applied to each pair of fields of `self` and `other`.
    pub fn zip_with(&self, other: &Counters, f: impl Fn(u64, u64) -> u64) -> Counters {
        let (mut out, mut other) = (*self, *other);
        for (a, b) in out.fields_mut().into_iter().zip(other.fields_mut()) {
            *a = f(*a, *b);
        }
        out
    }

    /// Field-wise sum (per-CPU slots into a total, or totals across cgroups).
    pub fn add(&self, other: &Counters) -> Counters {
        self.zip_with(other, |a, b| a + b)
    }

    /// Field-wise maximum (two readings of the same monotonic counters: the later of each).
    pub fn max(&self, other: &Counters) -> Counters {
        self.zip_with(other, u64::max)
    }
}

/// One CPU's counters for the cgroup it counted for last (a one-slot `PerCpuArray` value).
///
/// A task runs for many probes in a row, so the cgroup rarely changes between two probes on a
/// CPU: counting into this slot costs an array index where the per-cgroup hash costs a hash
/// and a bucket walk per probe. When another cgroup comes, the slot is written back to
/// `COUNTERS` (this CPU's value for `cgroup`) and reloaded from it for the new one. So a
/// cgroup's count on a CPU is this slot while `cgroup` names it, else its `COUNTERS` value;
/// both only grow, and the slot is never behind the hash. Userspace takes the larger of the
/// two per field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HotCounters {
    /// The cgroup id the slot holds; 0 (no cgroup has it) until the first probe.
    pub cgroup: u64,
    /// The scope verdict for `cgroup` (`SCOPE_*`), cached for as long as the slot holds it:
    /// `TARGETS` is set before the programs attach and a cgroup's ancestors never change.
    pub scope: u64,
    pub counters: Counters,
}

/// `HotCounters::scope`: not checked yet.
pub const SCOPE_UNKNOWN: u64 = 0;
/// `HotCounters::scope`: the cgroup's tasks are not traced.
pub const SCOPE_OUT: u64 = 1;
/// `HotCounters::scope`: the cgroup's tasks are traced.
pub const SCOPE_IN: u64 = 2;

/// What happened to a dentry, as carried by a trace event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A lookup allocated a dentry for a name not in the cache.
    Alloc = 0,
    /// A lookup found nothing: the dentry stays in the cache without an inode.
    Negative = 1,
    /// The dentry got an inode (lookup hit on disk, or create).
    Positive = 2,
    /// An unlink turned a positive dentry negative.
    Delete = 3,
    /// `shrink_dcache_sb`: a whole superblock's unused dentries dropped.
    Shrink = 4,
    /// `prune_dcache_sb`: the memory-pressure shrinker ran on a superblock.
    Prune = 5,
}

impl Operation {
    pub fn from_u32(raw: u32) -> Option<Operation> {
        Some(match raw {
            0 => Operation::Alloc,
            1 => Operation::Negative,
            2 => Operation::Positive,
            3 => Operation::Delete,
            4 => Operation::Shrink,
            5 => Operation::Prune,
            _ => return None,
        })
    }

    /// The name in the TSV `operation` column.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Alloc => "alloc",
            Operation::Negative => "negative",
            Operation::Positive => "positive",
            Operation::Delete => "delete",
            Operation::Shrink => "reclaim-shrink",
            Operation::Prune => "reclaim-prune",
        }
    }
}

/// Path components walked from the dentry towards the filesystem root, at most.
pub const MAX_DEPTH: usize = 16;
/// Longest component name (NAME_MAX) plus its NUL.
pub const NAME_BUF: usize = 256;
/// Bytes for components; an offset into it is masked with `PATH_BUF - 1` (a power of two) so
/// the verifier can prove every `NAME_BUF`-byte read stays inside `path`.
pub const PATH_BUF: usize = 4096;
pub const FSTYPE_LEN: usize = 16;
pub const COMM_LEN: usize = 16;

/// The longest directory path the path cache keeps.
pub const PREFIX_BUF: usize = 128;
/// Path cache slots per CPU (a directory's slot is picked from its address).
pub const PREFIX_SLOTS: u32 = 8;
/// Directories the path caches of all CPUs may hold at once (`CACHED_DIRS`); past it, no new
/// ones are cached until some are freed.
pub const MAX_CACHED_DIRS: u32 = 16384;

/// A directory's path as a walk writes it (components from the directory up to the
/// filesystem root, each NUL-terminated), cached per CPU so the next event under the same
/// directory walks only its own name.
///
/// The path stays right while the `GENERATION` counter has the value it had before the walk
/// read it: the counter moves when any dentry is renamed or moved (after `__d_move` returns)
/// and when a cached directory is freed (before its memory can be reused; `CACHED_DIRS`
/// tells which are cached).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PathPrefix {
    /// The directory's `struct dentry` address; 0: empty.
    pub dentry: u64,
    pub generation: u64,
    pub len: u32,
    pub depth: u16,
    /// Non-zero: no kernel pattern occurs in `path` (a record under this directory is then
    /// tested on its leaf's name alone, and the path is copied only if that matches).
    pub clean: u16,
    pub path: [u8; PREFIX_BUF],
}

/// `SWITCH` slot: trace events on.
pub const SWITCH_TRACE: u32 = 0;
/// `SWITCH` slot: the path cache on (set once the probes that keep it right are attached).
pub const SWITCH_PATH_CACHE: u32 = 1;

/// `EventHeader::flags`: the walk stopped before the root (depth or buffer exhausted).
pub const FLAG_TRUNCATED: u16 = 1;
/// `EventHeader::flags`: a lookup's result (`d_add`, `d_splice_alias`) on the dentry the lookup
/// allocated for it. The record stands for two events, the allocation and the result: one
/// path walk and one record per lookup instead of two. Userspace writes both lines.
pub const FLAG_ALLOCATED: u16 = 2;

/// Fixed part of a trace event. The ring buffer record is this header followed by
/// `path_len` bytes: the path's components leaf first, each NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// CLOCK_MONOTONIC nanoseconds (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    /// An `Operation`.
    pub op: u32,
    pub comm: [u8; COMM_LEN],
    pub fstype: [u8; FSTYPE_LEN],
    pub path_len: u16,
    pub depth: u16,
    pub flags: u16,
    pub _pad: u16,
    /// For `Prune`: dentries freed (0 when not known).
    pub count: u64,
}

/// A whole event as built in a per-CPU scratch slot. `NAME_BUF` of slack after `PATH_BUF`
/// lets the last masked read overrun the logical end without leaving the value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    pub header: EventHeader,
    pub path: [u8; PATH_BUF + NAME_BUF],
}

/// Byte offsets of the kernel struct fields the programs read, taken from the running
/// kernel's BTF at load time (Rust eBPF has no CO-RE relocations).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub dentry_d_parent: u32,
    pub dentry_d_name: u32,
    pub dentry_d_inode: u32,
    pub dentry_d_sb: u32,
    pub qstr_name: u32,
    pub super_block_s_type: u32,
    pub file_system_type_name: u32,
    /// The inline name storage (`d_iname`, since 6.14 `d_shortname`): short names live in the
    /// dentry itself, so one read gets a walk level's links and its name.
    pub dentry_d_iname: u32,
    /// `qstr.len` (the name's length, beside its hash).
    pub qstr_len: u32,
    /// `super_block.s_root`: where a walk can stop without reading the root dentry.
    pub super_block_s_root: u32,
    /// `dentry.d_u`, whose `d_rcu` is what `__d_free` is given.
    pub dentry_d_u: u32,
    /// Where a path walk level finds each field in what it read (`LevelLayout::new` of the
    /// offsets above, set with them).
    pub level: LevelLayout,
}

/// Words a path walk reads per level, starting at `d_parent`: in every layout we know they
/// hold the parent link, the name's length and pointer, the inline name and `d_sb`.
pub const LEVEL_WORDS: usize = 16;
/// Words of the inline name a walk level copies: `DNAME_INLINE_LEN` is at least 32 on 64-bit
/// kernels, and a name shorter than this is complete in them.
pub const INLINE_WORDS: usize = 4;
/// `LevelLayout`: the field is not within a level's words (the walk reads it on its own).
pub const NOT_IN_LEVEL: u32 = u32::MAX;

/// Word indexes, in the `LEVEL_WORDS` a walk level reads from `d_parent` on, of the fields it
/// uses, or `NOT_IN_LEVEL`. Computed once by the loader: the kernel programs only compare them
/// (the verifier knows them as constants and drops the branches they rule out).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelLayout {
    /// `d_name.name`.
    pub name: u32,
    /// The word holding `d_name.len` ...
    pub len: u32,
    /// ... and the bit where it starts in that word.
    pub len_shift: u32,
    /// The first of `INLINE_WORDS` words of the inline name.
    pub iname: u32,
    /// `d_sb`.
    pub sb: u32,
    pub _pad: u32,
}

impl LevelLayout {
    pub fn new(off: &KernelOffsets) -> LevelLayout {
        let base = off.dentry_d_parent;
        let span = (LEVEL_WORDS * 8) as u32;
        let word = |at: u32, size: u32| -> u32 {
            at.checked_sub(base)
                .filter(|rel| rel.is_multiple_of(8) && rel + size <= span)
                .map_or(NOT_IN_LEVEL, |rel| rel / 8)
        };
        // A 4-byte length may sit in either half of a word, not across two.
        let (len, len_shift) = (off.dentry_d_name + off.qstr_len)
            .checked_sub(base)
            .filter(|rel| rel % 8 <= 4 && rel + 4 <= span)
            .map_or((NOT_IN_LEVEL, 0), |rel| (rel / 8, (rel % 8) * 8));
        LevelLayout {
            name: word(off.dentry_d_name + off.qstr_name, 8),
            len,
            len_shift,
            iname: word(off.dentry_d_iname, (INLINE_WORDS * 8) as u32),
            sb: word(off.dentry_d_sb, 8),
            _pad: 0,
        }
    }
}

/// Patterns the kernel tests itself, at most.
pub const KERNEL_PATTERNS: usize = 4;
/// Longest pattern the kernel tests (two words).
pub const KERNEL_PATTERN_LEN: usize = 16;
/// Longest path the kernel tests; a longer one goes to userspace untested. It bounds the loop
/// the verifier walks, and real paths are shorter.
pub const KERNEL_FILTER_PATH: usize = 256;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// One pattern as the kernel tests it: a substring of a path's raw components.
///
/// Exact only for patterns that cannot span two components or meet a byte userspace replaces
/// (`within_component`): then "the joined path contains it" and "one NUL-terminated component
/// contains it" are the same test. The search is a word at a time, as a byte loop costs as
/// much as the ring-buffer write it saves: each 8-byte step finds the positions holding the
/// pattern's first two bytes at once (a zero-byte test on `word ^ first | next ^ second`), and
/// only those are compared whole, as two masked words.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelPattern {
    /// The pattern's bytes, zero-padded, as two native-endian words.
    pub words: [u64; 2],
    /// Which bytes of `words` count.
    pub masks: [u64; 2],
    /// The first byte repeated in every byte.
    pub first: u64,
    /// The second byte repeated (0 for a one-byte pattern) ...
    pub second: u64,
    /// ... and where it counts (0 for a one-byte pattern).
    pub second_mask: u64,
    pub len: u32,
    pub _pad: u32,
}

/// True when a substring test of `pattern` on a record's raw components gives the same answer
/// as on its joined, decoded path: no `/` (the joint) and ASCII (a NUL or invalid UTF-8 cannot
/// be part of a match either way). Empty patterns match everything, so they are not.
pub fn within_component(pattern: &[u8]) -> bool {
    !pattern.is_empty() && pattern.is_ascii() && !pattern.contains(&b'/')
}

impl KernelPattern {
    /// `None` when the kernel cannot test `pattern` exactly.
    pub fn new(pattern: &[u8]) -> Option<KernelPattern> {
        if !within_component(pattern) || pattern.len() > KERNEL_PATTERN_LEN {
            return None;
        }
        let mut bytes = [0u8; KERNEL_PATTERN_LEN];
        let mut mask = [0u8; KERNEL_PATTERN_LEN];
        bytes[..pattern.len()].copy_from_slice(pattern);
        mask[..pattern.len()].fill(0xff);
        let word = |b: &[u8; KERNEL_PATTERN_LEN], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        let (second, second_mask) = match pattern.get(1) {
            Some(&b) => (ONES * u64::from(b), u64::MAX),
            None => (0, 0),
        };
        Some(KernelPattern {
            words: [word(&bytes, 0), word(&bytes, 1)],
            masks: [word(&mask, 0), word(&mask, 1)],
            first: ONES * u64::from(pattern[0]),
            second,
            second_mask,
            len: pattern.len() as u32,
            _pad: 0,
        })
    }

    /// True when the pattern starts at one of the 8 bytes of `w0`; `w1` and `w2` are the
    /// path's next two words.
    #[inline(always)]
    fn starts_in(&self, w0: u64, w1: u64, w2: u64) -> bool {
        let x = (w0 ^ self.first) | ((from(w0, w1, 1) ^ self.second) & self.second_mask);
        // A set high bit marks a zero byte of `x`: a position holding the pattern's first two
        // bytes (and, by the borrow, perhaps a 0x01 above one: the whole compare rejects those).
        let hits = x.wrapping_sub(ONES) & !x & HIGHS;
        if hits == 0 {
            return false;
        }
        // Every position's compare folded into its own byte of `lanes` (zero: a match), with
        // shifts and ORs only: a comparison per position would be a branch each in BPF, and
        // eight of them per step multiply the states the verifier walks.
        let mut lanes = 0u64;
        for k in 0..8 {
            let mut d = ((from(w0, w1, k) ^ self.words[0]) & self.masks[0])
                | ((from(w1, w2, k) ^ self.words[1]) & self.masks[1]);
            d |= d >> 32;
            d |= d >> 16;
            d |= d >> 8;
            lanes |= (d & 0xff) << (8 * k);
        }
        // The exact zero-byte test (no borrow between bytes), against real candidates.
        let low7 = !HIGHS;
        let zeros = !(((lanes & low7) + low7) | lanes | low7);
        zeros & hits != 0
    }
}

/// The 8 bytes from byte `k` of `lo` on, `hi` following (`k` a constant once unrolled).
#[inline(always)]
fn from(lo: u64, hi: u64, k: usize) -> u64 {
    if k == 0 {
        lo
    } else {
        (lo >> (8 * k)) | (hi << (64 - 8 * k))
    }
}

const _: () = assert!(core::mem::offset_of!(Event, path) % 8 == 0);
const _: () = assert!(core::mem::align_of::<Event>() >= 8);

/// Writes 8 NULs after a path of `len` bytes (`len` at most `KERNEL_FILTER_PATH`), so a
/// pattern test cannot match into what the buffer held before: a match that starts in the
/// path would have to cross the first NUL, and the search (which stops at the first 8-byte
/// step at or past `len`) starts none later than `len + 6`, all NULs.
#[inline(always)]
pub fn end_path(ev: &mut Event, len: usize) {
    // SAFETY: the masked offset plus 8 is inside `path`.
    unsafe {
        ev.path
            .as_mut_ptr()
            .add(len & (FILTER_SPAN - 1))
            .cast::<u64>()
            .write_unaligned(0)
    };
}

/// Reads in `KernelPatterns::found_in` stay below this (a power of two for the mask).
const FILTER_SPAN: usize = 2 * KERNEL_FILTER_PATH;
const _: () = assert!(FILTER_SPAN + 16 <= PATH_BUF + NAME_BUF);

/// The patterns the kernel tests (`count` of them; 0: it tests none and sends every event).
/// A read-only global set at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelPatterns {
    pub count: u32,
    pub _pad: u32,
    pub patterns: [KernelPattern; KERNEL_PATTERNS],
}

impl KernelPatterns {
    /// The kernel's share of `patterns`: all of them when it can test each exactly, else none
    /// (an event must reach userspace if any pattern could match it).
    pub fn new<'a>(patterns: impl ExactSizeIterator<Item = &'a [u8]>) -> KernelPatterns {
        let mut out = KernelPatterns::default();
        if patterns.len() > KERNEL_PATTERNS {
            return out;
        }
        for (slot, p) in out.patterns.iter_mut().zip(patterns) {
            match KernelPattern::new(p) {
                Some(k) => *slot = k,
                None => return KernelPatterns::default(),
            }
            out.count += 1;
        }
        out
    }

    /// True when the first `len` bytes of the event's path contain a pattern. `len` is at most
    /// `KERNEL_FILTER_PATH`, and `end_path` has run: a pattern holds no NUL, so the NULs it
    /// writes end every match at `len`, whatever the bytes after them hold.
    ///
    /// Written for the verifier as much as for speed: one loop over the path, a word at a
    /// time with aligned reads only (BPF splits an unaligned read into eight byte loads), all
    /// patterns tested at each step, and a fixed few branches per step.
    #[inline(always)]
    pub fn found_in(&self, ev: &Event, len: usize) -> bool {
        let base = ev.path.as_ptr();
        let word = |index: usize| -> u64 {
            // SAFETY: `path` is 8-aligned in `Event`, and the masked offset plus 8 is inside it.
            unsafe {
                base.add((index * 8) & (FILTER_SPAN - 1))
                    .cast::<u64>()
                    .read()
            }
        };
        for step in 0..KERNEL_FILTER_PATH / 8 {
            if step * 8 >= len {
                return false;
            }
            let (w0, w1, w2) = (word(step), word(step + 1), word(step + 2));
            for (k, pattern) in self.patterns.iter().enumerate() {
                if k as u32 >= self.count {
                    break;
                }
                if pattern.starts_in(w0, w1, w2) {
                    return true;
                }
            }
        }
        false
    }
}

/// Load-time settings (a read-only global: the verifier prunes what they switch off).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Non-zero: emit trace events (counters always run).
    pub trace: u32,
    /// Non-zero: only tasks in `TARGETS` cgroups (or below them) produce events.
    pub scoped: u32,
    /// Bit n set: also match the task's ancestor cgroup at level n against `TARGETS`
    /// (a pod's cgroup, so its containers, restarted ones included, are covered).
    pub ancestor_levels: u32,
    /// Wake the consumer only once this many bytes wait in the ring buffer; below it, events
    /// are written without a wakeup and userspace drains them on its own tick. A wakeup per
    /// event costs an irq_work and often an IPI, more than the event itself.
    pub wakeup_bytes: u32,
    /// Benchmarks only (`BENCH_*`): stop an event part-way, to price each stage.
    pub bench: u32,
}

/// `Config::bench`: return after the scope check (no path walk, nothing written).
pub const BENCH_STOP_AFTER_SCOPE: u32 = 1;
/// `Config::bench`: walk the path, but write nothing to the ring buffer.
pub const BENCH_STOP_BEFORE_OUTPUT: u32 = 2;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain old data, `repr(C)`, explicit padding, every bit pattern valid.
    unsafe impl aya::Pod for super::Counters {}
    unsafe impl aya::Pod for super::HotCounters {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::KernelPatterns {}
}

/// The trace TSV's header line (design.md's contract): the tracer writes it first in every
/// file and on stdout; the plugin recognises it in a tracer pod's log.
pub const TSV_HEADER: &str = "timestamp\tpod\tcontainer\tcgroup_id\toperation\tpath\tfstype";

/// How the tracer's line starts once a `--linger` run is over and it only serves its files; the
/// plugin ends a `trace --keep` stream on it.
pub const LINGER_MARKER: &str = "tracer: finished; serving";

/// How the tracer's own stderr line starts once every probe is attached (and a stop signal
/// will be honoured); the attach mode follows (`fentry`, `kprobe` or `mixed`). The plugin
/// waits for it before it says "tracing", and so do the VM scripts.
pub const ATTACHED_MARKER: &str = "tracer: attached mode=";

/// The attach mode of an `ATTACHED_MARKER` line; `None` for any other line.
pub fn attached_mode(line: &str) -> Option<&str> {
    let mode = line.strip_prefix(ATTACHED_MARKER)?.split(' ').next()?;
    (!mode.is_empty()).then_some(mode)
}

/// The container runtimes' CRI sockets (containerd, CRI-O, cri-dockerd), relative to the host's
/// `/run`, in the order the tracer tries them.
pub const CRI_SOCKETS: [&str; 3] = [
    "containerd/containerd.sock",
    "crio/crio.sock",
    "cri-dockerd.sock",
];

/// Map and global names in the eBPF object.
pub mod names {
    pub const COUNTERS: &str = "COUNTERS";
    pub const HOT_COUNTERS: &str = "HOT_COUNTERS";
    pub const TARGETS: &str = "TARGETS";
    pub const EVENTS: &str = "EVENTS";
    pub const DROPS: &str = "DROPS";
    pub const FLOOR: &str = "FLOOR";
    pub const SWITCH: &str = "SWITCH";
    pub const OFFSETS: &str = "OFFSETS";
    pub const CONFIG: &str = "CONFIG";
    pub const PATTERNS: &str = "PATTERNS";
    pub const FILTERED: &str = "FILTERED";
    pub const PATH_CACHE_HITS: &str = "PATH_CACHE_HITS";
    pub const CONTENDED: &str = "CONTENDED";
    pub const SPILLED: &str = "SPILLED";
}

/// Upper bound on distinct cgroups counted at once; a busy node has a few thousand.
pub const MAX_CGROUPS: u32 = 16384;
/// Upper bound on target cgroups (a pod's containers, or explicit ones).
pub const MAX_TARGETS: u32 = 1024;
/// Deepest cgroup level `Config::ancestor_levels` can name.
pub const MAX_CGROUP_LEVEL: u32 = 16;

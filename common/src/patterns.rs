//! The trace patterns the kernel tests itself, and the test (shared with userspace, which checks
//! it against its text filter).

use crate::event::{Event, NAME_BUF, PATH_BUF};

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
        for step in 0..STEPS {
            match self.step(ev, len, step) {
                Step::Found => return true,
                Step::End => return false,
                Step::Next => {}
            }
        }
        false
    }

    /// One step of `found_in`: whether a pattern starts in the path's 8 bytes from `step * 8`
    /// (the kernel programs run it as a function of its own, checked once by the verifier).
    #[inline(always)]
    pub fn step(&self, ev: &Event, len: usize, step: usize) -> Step {
        if step >= STEPS || step * 8 >= len {
            return Step::End;
        }
        let base = ev.path.as_ptr();
        let word = |index: usize| -> u64 {
            // SAFETY: `path` is 8-aligned in `Event`, and the masked offset plus 8 is inside it.
            unsafe {
                base.add((index * 8) & (FILTER_SPAN - 1))
                    .cast::<u64>()
                    .read()
            }
        };
        let (w0, w1, w2) = (word(step), word(step + 1), word(step + 2));
        for (k, pattern) in self.patterns.iter().enumerate() {
            if k as u32 >= self.count {
                break;
            }
            if pattern.starts_in(w0, w1, w2) {
                return Step::Found;
            }
        }
        Step::Next
    }
}

/// The 8-byte steps of a pattern search.
pub const STEPS: usize = KERNEL_FILTER_PATH / 8;

/// What one step of the pattern search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Found,
    /// The path ends before this step: nothing found.
    End,
    Next,
}

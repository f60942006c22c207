//! Reading `struct dentry` and friends at offsets taken from the running kernel's BTF.
use aya_ebpf::helpers::{
    bpf_probe_read_kernel,
    generated::{bpf_probe_read_kernel as read_into, bpf_probe_read_kernel_str},
};
use dentry_common::{
    Event, FLAG_TRUNCATED, KernelOffsets, MAX_DEPTH, NAME_BUF, PATH_BUF, PREFIX_BUF, PREFIX_SLOTS,
    PathPrefix,
};

use crate::{
    Ptr,
    maps::{CACHED_DIRS, PATH_CACHE_HITS, PENDING_PREFIX, PREFIXES, SUPERBLOCKS, generation},
};

/// Reads a `T` at `base + offset` in kernel memory.
#[inline(always)]
pub fn field<T>(base: Ptr, offset: u32) -> Option<T> {
    if base.is_null() {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel copes with any address; a bad one returns an error.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize) as *const T).ok() }
}

/// Copies a kernel C string into `dst` (at most `len` bytes with its NUL); returns the length
/// written including the NUL, or 0.
#[inline(always)]
fn read_str(dst: *mut u8, len: u32, src: Ptr) -> usize {
    // SAFETY: the callers pass a destination with `len` bytes inside a map value.
    let n = unsafe { bpf_probe_read_kernel_str(dst.cast(), len, src.cast()) };
    if n > 0 { n as usize } else { 0 }
}

/// Names the filesystem type of a superblock (`sb->s_type->name`) into `out` and returns its
/// root dentry (`sb->s_root`, null if unknown), from this CPU's one-entry cache when `sb` is
/// the superblock seen last. (A superblock's type and root never change; a freed and reused
/// superblock address could give stale ones only if a filesystem were unmounted and another
/// mounted at the same address between two events of this CPU, and the cache is refreshed by
/// the first event on any other superblock.)
#[inline(always)]
pub fn superblock(sb: Ptr, off: &KernelOffsets, out: &mut [u8; 16]) -> Ptr {
    let Some(cache) = SUPERBLOCKS.get_ptr_mut(0) else {
        return core::ptr::null();
    };
    // SAFETY: per-CPU slot, only this CPU touches it.
    let cache = unsafe { &mut *cache };
    if cache[0] == sb as u64 && cache[0] != 0 {
        out[..8].copy_from_slice(&cache[1].to_ne_bytes());
        out[8..].copy_from_slice(&cache[2].to_ne_bytes());
        return cache[3] as Ptr;
    }
    let root = field::<Ptr>(sb, off.super_block_s_root).unwrap_or(core::ptr::null());
    let Some(s_type) = field::<Ptr>(sb, off.super_block_s_type) else {
        return root;
    };
    if let Some(name) = field::<Ptr>(s_type, off.file_system_type_name)
        && read_str(out.as_mut_ptr(), out.len() as u32, name) > 0
    {
        let mut words = [0u8; 8];
        words.copy_from_slice(&out[..8]);
        cache[1] = u64::from_ne_bytes(words);
        words.copy_from_slice(&out[8..]);
        cache[2] = u64::from_ne_bytes(words);
        cache[3] = root as u64;
        cache[0] = sb as u64;
    }
    root
}

/// Words read per walk level, starting at `d_parent`: in every layout we know they hold the
/// parent link, the name's length and pointer, the inline name and `d_sb`.
const LEVEL_WORDS: usize = 16;
/// Bytes of the inline name copied from a level's read: `DNAME_INLINE_LEN` is at least 32 on
/// 64-bit kernels, and a name shorter than this is complete in them.
const INLINE_WORDS: usize = 4;
const INLINE_MAX: usize = INLINE_WORDS * 8;

/// Where, in a level's words, each field sits (`None`: outside them, read on its own).
struct Layout {
    base: u32,
    name: Option<usize>,
    len: Option<(usize, u32)>,
    iname: Option<usize>,
    sb: Option<usize>,
}

impl Layout {
    #[inline(always)]
    fn new(off: &KernelOffsets) -> Layout {
        let base = off.dentry_d_parent;
        let word = |at: u32, size: u32| -> Option<usize> {
            let rel = at.checked_sub(base)?;
            (rel.is_multiple_of(8) && rel + size <= (LEVEL_WORDS * 8) as u32)
                .then_some((rel / 8) as usize)
        };
        let len_at = off.dentry_d_name + off.qstr_len;
        let len = len_at
            .checked_sub(base)
            .filter(|rel| rel % 8 <= 4 && rel + 4 <= (LEVEL_WORDS * 8) as u32)
            .map(|rel| ((rel / 8) as usize, (rel % 8) * 8));
        Layout {
            base,
            name: word(off.dentry_d_name + off.qstr_name, 8),
            len,
            iname: word(off.dentry_d_iname, INLINE_MAX as u32),
            sb: word(off.dentry_d_sb, 8),
        }
    }
}

/// The result of a path walk.
pub struct Walk {
    pub len: usize,
    pub depth: u16,
    pub flags: u16,
}

impl Walk {
    pub fn new(flags: u16) -> Walk {
        Walk {
            len: 0,
            depth: 0,
            flags,
        }
    }
}

/// The slot of this CPU's path cache where `dir` would be.
#[inline(always)]
fn prefix_slot(dir: u64) -> u32 {
    // Dentries are a slab object apart (192 bytes): mix bits above that.
    ((dir >> 6) ^ (dir >> 10)) as u32 & (PREFIX_SLOTS - 1)
}

/// Reads a value the walk left in memory. The verifier then knows only the bounds checked
/// after it, where the walk's own copy would be tracked exactly: used in an address, that copy
/// would tell apart the states of every leaf length for the rest of the walk.
#[inline(always)]
fn reread(at: &u64) -> u64 {
    // SAFETY: a plain read of a map value.
    unsafe { core::ptr::read_volatile(at) }
}

/// `PENDING_PREFIX[3]`: what the walk left for `settle_prefix`.
const PENDING_NONE: u64 = 0;
/// The directory missed: cache its path once the record's verdict is known.
const PENDING_MISS: u64 = 1;
/// The directory's path is cached and clean, and not copied yet: the leaf alone is tested.
const PENDING_DEFERRED: u64 = 2;
/// The directory's path was copied from the cache.
const PENDING_COPIED: u64 = 3;

/// Clears what an earlier event left in `PENDING_PREFIX` (one whose walk did not reach its
/// directory, or that stopped before using it).
#[inline(always)]
pub fn forget_prefix() {
    if let Some(pending) = PENDING_PREFIX.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU touches it.
        unsafe { (*pending)[3] = PENDING_NONE };
    }
}

/// At the leaf's directory `dir`, after the leaf's name: when this CPU has the directory's
/// path cached and current, returns its length as appended (0 when the copy is deferred:
/// `defer` and the cached path holds no pattern) and its depth; otherwise notes in
/// `PENDING_PREFIX` where the directory's path will start, for `settle_prefix`.
#[inline(always)]
fn cached_prefix(
    path: &mut [u8; PATH_BUF + NAME_BUF],
    leaf_len: usize,
    dir: Ptr,
    generation: u64,
    defer: bool,
) -> Option<(usize, u16)> {
    let pending = PENDING_PREFIX.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, only this CPU touches it.
    let pending = unsafe { &mut *pending };
    *pending = [dir as u64, leaf_len as u64, generation, PENDING_MISS];
    let entry = PREFIXES.get_ptr(prefix_slot(dir as u64))?;
    // SAFETY: per-CPU slot, only this CPU writes it.
    let entry = unsafe { &*entry };
    let n = entry.len as usize;
    if entry.dentry != dir as u64 || entry.generation != generation || n > PREFIX_BUF {
        return None;
    }
    count_hit();
    if defer && entry.clean != 0 {
        pending[3] = PENDING_DEFERRED;
        return Some((0, entry.depth));
    }
    if !copy_prefix(path, &pending[1], entry) {
        pending[3] = PENDING_NONE;
        return None;
    }
    pending[3] = PENDING_COPIED;
    Some((n, entry.depth))
}

#[inline(always)]
fn count_hit() {
    if let Some(hits) = PATH_CACHE_HITS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot.
        unsafe { *hits += 1 };
    }
}

/// Copies a cached directory path into `path` at the offset stored at `from`; false if the
/// offset is out of bounds or the copy failed.
#[inline(always)]
fn copy_prefix(path: &mut [u8; PATH_BUF + NAME_BUF], from: &u64, entry: &PathPrefix) -> bool {
    let from = reread(from) as usize;
    if from > PATH_BUF - PREFIX_BUF {
        return false;
    }
    // SAFETY: `from` + PREFIX_BUF stays inside `path`; the source is the slot's own buffer.
    let read = unsafe {
        read_into(
            path.as_mut_ptr().wrapping_add(from).cast(),
            PREFIX_BUF as u32,
            entry.path.as_ptr().cast(),
        )
    };
    read == 0
}

/// After the walk, before the pattern test: caches the directory's path after a miss (as not
/// known clean: `prefix_held_no_pattern` marks it so at the next record it is copied into).
///
/// It reads the walk's result from the record's header and `PENDING_PREFIX`, not from the
/// walk: each of the walk's ways out leaves different values, and every branch here would be
/// checked once per way.
#[inline(always)]
pub fn settle_miss(ev: &Event) {
    let Some(pending) = PENDING_PREFIX.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU slot, only this CPU touches it.
    let pending = unsafe { &mut *pending };
    if reread(&pending[3]) == PENDING_MISS {
        pending[3] = PENDING_NONE;
        remember_prefix(ev, pending);
    }
}

/// The pending entry of this CPU's cache, if the walk left `state` for it.
#[inline(always)]
fn pending_entry(state: u64) -> Option<(&'static mut [u64; 4], &'static mut PathPrefix)> {
    let pending = PENDING_PREFIX.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, only this CPU touches it.
    let pending = unsafe { &mut *pending };
    if reread(&pending[3]) != state {
        return None;
    }
    pending[3] = PENDING_NONE;
    let dir = reread(&pending[0]);
    let entry = PREFIXES.get_ptr_mut(prefix_slot(dir))?;
    // SAFETY: per-CPU slot, only this CPU touches it.
    let entry = unsafe { &mut *entry };
    (entry.dentry == dir).then_some((pending, entry))
}

/// The pattern test found nothing in a path whose directory part came from the cache: that
/// part is clean, and the next record under it is tested on its leaf alone.
#[inline(always)]
pub fn prefix_held_no_pattern() {
    if let Some((_, entry)) = pending_entry(PENDING_COPIED) {
        entry.clean = 1;
    }
}

/// A record to be written whose clean directory part was not copied (its leaf matched, or
/// could not be tested): appends it.
#[inline(always)]
pub fn complete_deferred(ev: &mut Event) {
    let Some((pending, entry)) = pending_entry(PENDING_DEFERRED) else {
        return;
    };
    let n = entry.len as usize;
    if n <= PREFIX_BUF && copy_prefix(&mut ev.path, &pending[1], entry) {
        let from = reread(&pending[1]) as usize;
        ev.header.path_len = (from + n).min(PATH_BUF) as u16;
    } else {
        // The directory's part is missing: say the path is cut, as a walk would.
        ev.header.flags |= FLAG_TRUNCATED;
    }
}

/// After a complete walk that missed the cache at its leaf's directory: caches the
/// directory's part of the path.
#[inline(always)]
fn remember_prefix(ev: &Event, pending: &[u64; 4]) {
    // SAFETY: plain reads of the scratch slot's header.
    let (len, depth, flags) = unsafe {
        (
            usize::from(core::ptr::read_volatile(&ev.header.path_len)),
            core::ptr::read_volatile(&ev.header.depth),
            core::ptr::read_volatile(&ev.header.flags),
        )
    };
    let dir = reread(&pending[0]);
    let from = reread(&pending[1]) as usize;
    let n = len.wrapping_sub(from);
    if dir == 0 || flags & FLAG_TRUNCATED != 0 || depth < 2 || n > PREFIX_BUF {
        return;
    }
    if from > PATH_BUF - PREFIX_BUF {
        return;
    }
    // SAFETY: map lookups of plain values.
    if unsafe { CACHED_DIRS.get(dir) }.is_none() && CACHED_DIRS.insert(dir, 1, 0).is_err() {
        // Full: a directory whose free would not be noticed must not be cached.
        return;
    }
    let Some(entry) = PREFIXES.get_ptr_mut(prefix_slot(dir)) else {
        return;
    };
    // SAFETY: per-CPU slot, only this CPU touches it.
    let entry = unsafe { &mut *entry };
    // SAFETY: `from` + PREFIX_BUF stays inside `path`.
    let read = unsafe {
        read_into(
            entry.path.as_mut_ptr().cast(),
            PREFIX_BUF as u32,
            ev.path.as_ptr().wrapping_add(from).cast(),
        )
    };
    if read != 0 {
        entry.dentry = 0;
        return;
    }
    entry.dentry = dir;
    entry.generation = reread(&pending[2]);
    entry.len = n as u32;
    entry.depth = depth - 1;
    entry.clean = 0;
}

#[inline(always)]
fn at(words: &[u64; LEVEL_WORDS], index: usize) -> u64 {
    words[index & (LEVEL_WORDS - 1)]
}

/// Writes the path of `dentry` into `path`, leaf first, each component NUL-terminated, stopping
/// at the filesystem root (whose own name is not written), and its filesystem type into
/// `fstype`. The root is known from the superblock, so it is not read: a dentry's own
/// `d_parent == itself` also ends the walk (the root of a disconnected tree).
///
/// Each level is one read of the words from `d_parent` on (each read is a helper call with
/// fault handling, the walk's main cost): they hold the parent link, the name's length and,
/// for a short name, the name itself; the leaf's read also gives `d_sb`. A long name costs a
/// second read; a layout where the fields are not within the words falls back to a read each.
#[inline(always)]
pub fn walk(
    path: &mut [u8; PATH_BUF + NAME_BUF],
    fstype: &mut [u8; 16],
    dentry: Ptr,
    off: &KernelOffsets,
    cache: bool,
    defer: bool,
) -> Walk {
    let layout = Layout::new(off);
    let name_at = off.dentry_d_name + off.qstr_name;
    let mut walk = Walk::new(FLAG_TRUNCATED);
    let mut current = dentry;
    let mut root: Ptr = core::ptr::null();
    let mut words = [0u64; LEVEL_WORDS];
    for level in 0..MAX_DEPTH {
        // SAFETY: the helper writes at most `size_of_val(&words)` bytes into `words`, and copes
        // with any source address (a bad one returns an error).
        let read = unsafe {
            read_into(
                words.as_mut_ptr().cast(),
                core::mem::size_of_val(&words) as u32,
                current.wrapping_add(layout.base as usize).cast(),
            )
        };
        if read != 0 {
            return walk;
        }
        let parent = at(&words, 0) as Ptr;
        if level == 0 {
            let sb = match layout.sb {
                Some(i) => at(&words, i) as Ptr,
                None => field::<Ptr>(current, off.dentry_d_sb).unwrap_or(core::ptr::null()),
            };
            if !sb.is_null() {
                root = superblock(sb, off, fstype);
            }
        }
        if parent == current {
            walk.flags = 0;
            return walk;
        }
        if walk.len > PATH_BUF - NAME_BUF {
            return walk;
        }
        let name = match layout.name {
            Some(i) => at(&words, i) as Ptr,
            None => match field::<Ptr>(current, name_at) {
                Some(name) => name,
                None => return walk,
            },
        };
        // The mask proves to the verifier that every write stays inside `path`.
        let pos = walk.len & (PATH_BUF - 1);
        let dst = path.as_mut_ptr().wrapping_add(pos);
        let inline_len = match (layout.len, layout.iname) {
            (Some((i, shift)), Some(iname))
                if name == current.wrapping_add(off.dentry_d_iname as usize) =>
            {
                let len = ((at(&words, i) >> shift) & 0xffff_ffff) as usize;
                (len < INLINE_MAX).then_some((len, iname))
            }
            _ => None,
        };
        walk.len += match inline_len {
            Some((len, iname)) => {
                for k in 0..INLINE_WORDS {
                    // SAFETY: `pos` < PATH_BUF and the buffer has NAME_BUF bytes beyond it.
                    unsafe {
                        dst.add(k * 8)
                            .cast::<u64>()
                            .write_unaligned(at(&words, iname + k))
                    };
                }
                // SAFETY: `len` < INLINE_MAX, inside what was just written.
                unsafe { *dst.add(len & (INLINE_MAX - 1)) = 0 };
                (len & (INLINE_MAX - 1)) + 1
            }
            None => read_str(dst, NAME_BUF as u32, name),
        };
        walk.depth += 1;
        if parent == root {
            walk.flags = 0;
            return walk;
        }
        if level == 0
            && cache
            && let Some(generation) = generation()
            && let Some((n, depth)) = cached_prefix(path, walk.len, parent, generation, defer)
        {
            walk.len += n;
            walk.depth += depth;
            walk.flags = 0;
            return walk;
        }
        current = parent;
    }
    walk
}

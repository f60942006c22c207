//! The per-CPU cache of directory paths (docs/architecture.md, "Path cache"): an event under
//! a cached directory reads only its leaf. The walk asks `cached_prefix` at the leaf's
//! directory; after the walk, `settle_miss` caches a directory the walk missed; after the
//! pattern test, `prefix_held_no_pattern` or `complete_deferred` finish a hit.
use aya_ebpf::helpers::generated::bpf_probe_read_kernel as read_into;
use dentry_common::{
    Event, FLAG_TRUNCATED, NAME_BUF, PATH_BUF, PREFIX_BUF, PREFIX_SLOTS, PathPrefix, PendingPrefix,
};

use crate::{
    Ptr,
    maps::{CACHED_DIRS, PATH_CACHE_HITS, PENDING_PREFIX, PREFIXES, count_one},
};

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

/// `PendingPrefix::state`: what the walk left for the steps after it.
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
        unsafe { (*pending).state = PENDING_NONE };
    }
}

/// At the leaf's directory `dir`, after the leaf's name: when this CPU has the directory's
/// path cached and current, returns its length as appended (0 when the copy is deferred:
/// `defer` and the cached path holds no pattern) and its depth; otherwise notes in
/// `PENDING_PREFIX` where the directory's path will start, for `settle_miss`.
#[inline(always)]
pub fn cached_prefix(
    path: &mut [u8; PATH_BUF + NAME_BUF],
    leaf_len: usize,
    dir: Ptr,
    generation: u64,
    defer: bool,
) -> Option<(usize, u16)> {
    let pending = PENDING_PREFIX.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, only this CPU touches it.
    let pending = unsafe { &mut *pending };
    *pending = PendingPrefix {
        dir: dir as u64,
        from: leaf_len as u64,
        generation,
        state: PENDING_MISS,
    };
    let entry = PREFIXES.get_ptr(prefix_slot(dir as u64))?;
    // SAFETY: per-CPU slot, only this CPU writes it.
    let entry = unsafe { &*entry };
    let n = entry.len as usize;
    if entry.dentry != dir as u64 || entry.generation != generation || n > PREFIX_BUF {
        return None;
    }
    count_one(&PATH_CACHE_HITS);
    if defer && entry.clean != 0 {
        pending.state = PENDING_DEFERRED;
        return Some((0, entry.depth));
    }
    if !copy_prefix(path, &pending.from, entry) {
        pending.state = PENDING_NONE;
        return None;
    }
    pending.state = PENDING_COPIED;
    Some((n, entry.depth))
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
    if reread(&pending.state) == PENDING_MISS {
        pending.state = PENDING_NONE;
        remember_prefix(ev, pending);
    }
}

/// The pending entry of this CPU's cache, if the walk left `state` for it.
#[inline(always)]
fn pending_entry(state: u64) -> Option<(&'static mut PendingPrefix, &'static mut PathPrefix)> {
    let pending = PENDING_PREFIX.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot, only this CPU touches it.
    let pending = unsafe { &mut *pending };
    if reread(&pending.state) != state {
        return None;
    }
    pending.state = PENDING_NONE;
    let dir = reread(&pending.dir);
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
    if n <= PREFIX_BUF && copy_prefix(&mut ev.path, &pending.from, entry) {
        let from = reread(&pending.from) as usize;
        ev.header.path_len = (from + n).min(PATH_BUF) as u16;
    } else {
        // The directory's part is missing: say the path is cut, as a walk would.
        ev.header.flags |= FLAG_TRUNCATED;
    }
}

/// After a complete walk that missed the cache at its leaf's directory: caches the
/// directory's part of the path.
#[inline(always)]
fn remember_prefix(ev: &Event, pending: &PendingPrefix) {
    // SAFETY: plain reads of the scratch slot's header.
    let (len, depth, flags) = unsafe {
        (
            usize::from(core::ptr::read_volatile(&ev.header.path_len)),
            core::ptr::read_volatile(&ev.header.depth),
            core::ptr::read_volatile(&ev.header.flags),
        )
    };
    let dir = reread(&pending.dir);
    let from = reread(&pending.from) as usize;
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
    entry.generation = reread(&pending.generation);
    entry.len = n as u32;
    entry.depth = depth - 1;
    entry.clean = 0;
}

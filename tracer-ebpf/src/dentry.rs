//! Reading `struct dentry` and friends at offsets taken from the running kernel's BTF.
use core::mem::MaybeUninit;

use aya_ebpf::{
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_probe_read_kernel as read_into, bpf_probe_read_kernel_str},
    },
    macros::map,
    maps::PerCpuArray,
};
use dentry_common::{
    FLAG_TRUNCATED, INLINE_WORDS, KernelOffsets, LEVEL_WORDS, MAX_DEPTH, NAME_BUF, PATH_BUF,
};

use crate::{
    Ptr,
    maps::{SCRATCH, SUPERBLOCKS, generation, offsets},
    mem::store_word,
    path_cache::cached_prefix,
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
    if cache.sb == sb as u64 && cache.sb != 0 {
        store_word(out.as_mut_ptr(), cache.fstype[0]);
        store_word(out.as_mut_ptr().wrapping_add(8), cache.fstype[1]);
        return cache.root as Ptr;
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
        cache.fstype[0] = u64::from_ne_bytes(words);
        words.copy_from_slice(&out[8..]);
        cache.fstype[1] = u64::from_ne_bytes(words);
        cache.root = root as u64;
        cache.sb = sb as u64;
    }
    root
}

const INLINE_MAX: usize = INLINE_WORDS * 8;

/// A `LevelLayout` index, if the field is within a level's words.
#[inline(always)]
fn in_level(index: u32) -> Option<usize> {
    (index < LEVEL_WORDS as u32).then_some(index as usize)
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

#[inline(always)]
fn at(words: &[u64; LEVEL_WORDS], index: usize) -> u64 {
    words[index & (LEVEL_WORDS - 1)]
}

/// Where a walk is, between the levels `dentry_walk_level` takes one at a time.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WalkState {
    /// The dentry whose name the next level writes.
    current: u64,
    /// The filesystem's root dentry (the walk stops below it), once the leaf's level read it.
    root: u64,
    len: u64,
    depth: u64,
    flags: u64,
    /// Ask the path cache at the leaf's directory; copy a clean cached path later (`defer`).
    cache: u64,
    defer: u64,
}

#[map(name = "WALK")]
static WALK: PerCpuArray<WalkState> = PerCpuArray::with_max_entries(1, 0);

/// Writes the path of `dentry` into this CPU's scratch event, leaf first, each component
/// NUL-terminated, stopping at the filesystem root (whose own name is not written), and its
/// filesystem type into the header. The root is known from the superblock, so it is not read:
/// a dentry's own `d_parent == itself` also ends the walk (the root of a disconnected tree).
///
/// Each level is a call of `dentry_walk_level`, a BPF global function: the verifier checks
/// one level once, not sixteen unrolled copies, each in the state the one before left.
///
/// With `cache`, the walk asks the path cache at the leaf's directory and stops there on a hit
/// (with `defer`, a clean cached path is not copied yet: see `path_cache::cached_prefix`).
#[inline(always)]
pub fn walk(dentry: Ptr, cache: bool, defer: bool) -> Walk {
    let Some(state) = WALK.get_ptr_mut(0) else {
        return Walk::new(FLAG_TRUNCATED);
    };
    // SAFETY: this CPU's slot (under the caller's claim).
    let state = unsafe { &mut *state };
    *state = WalkState {
        current: dentry as u64,
        root: 0,
        len: 0,
        depth: 0,
        flags: u64::from(FLAG_TRUNCATED),
        cache: u64::from(cache),
        defer: u64::from(defer),
    };
    for level in 0..MAX_DEPTH {
        if dentry_walk_level(level as u64) == 0 {
            break;
        }
    }
    // SAFETY: as above; the levels wrote it through the map.
    let state = unsafe { core::ptr::read_volatile(state) };
    Walk {
        len: state.len as usize,
        depth: state.depth as u16,
        flags: state.flags as u16,
    }
}

/// One level of the walk: the name of `WALK.current` into the path, then its parent as the
/// next. Each level is one read of the words from `d_parent` on (each read is a helper call
/// with fault handling, the walk's main cost): they hold the parent link, the name's length
/// and, for a short name, the name itself; the leaf's read also gives `d_sb`. A long name
/// costs a second read; a layout where the fields are not within the words falls back to a
/// read each. Returns 0 when the walk is over.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dentry_walk_level(level: u64) -> u64 {
    let (Some(ev), Some(state)) = (SCRATCH.get_ptr_mut(0), WALK.get_ptr_mut(0)) else {
        return 0;
    };
    // SAFETY: this CPU's slots (under the caller's claim).
    let (ev, state) = unsafe { (&mut *ev, &mut *state) };
    let off = offsets();
    let layout = off.level;
    let current = state.current as Ptr;
    // Not zeroed: the read fills it, and a zeroed array costs a 128-iteration byte loop
    // (LLVM's BPF `memset`), more than the read itself.
    let mut level_words = MaybeUninit::<[u64; LEVEL_WORDS]>::uninit();
    // SAFETY: the helper writes at most `LEVEL_WORDS * 8` bytes into `level_words`, and copes
    // with any source address (a bad one returns an error).
    let read = unsafe {
        read_into(
            level_words.as_mut_ptr().cast(),
            (LEVEL_WORDS * 8) as u32,
            current.wrapping_add(off.dentry_d_parent as usize).cast(),
        )
    };
    if read != 0 {
        return 0;
    }
    // SAFETY: a successful read filled every word.
    let words = unsafe { level_words.assume_init_ref() };
    let parent = at(words, 0) as Ptr;
    if level == 0 {
        let sb = match in_level(layout.sb) {
            Some(i) => at(words, i) as Ptr,
            None => field::<Ptr>(current, off.dentry_d_sb).unwrap_or(core::ptr::null()),
        };
        if !sb.is_null() {
            state.root = superblock(sb, off, &mut ev.header.fstype) as u64;
        }
    }
    if parent == current {
        state.flags = 0;
        return 0;
    }
    let len = state.len as usize;
    if len > PATH_BUF - NAME_BUF {
        return 0;
    }
    let name = match in_level(layout.name) {
        Some(i) => at(words, i) as Ptr,
        None => match field::<Ptr>(current, off.dentry_d_name + off.qstr_name) {
            Some(name) => name,
            None => return 0,
        },
    };
    // The mask proves to the verifier that every write stays inside `path`.
    let pos = len & (PATH_BUF - 1);
    let dst = ev.path.as_mut_ptr().wrapping_add(pos);
    let inline_len = match (in_level(layout.len), in_level(layout.iname)) {
        (Some(i), Some(iname)) if name == current.wrapping_add(off.dentry_d_iname as usize) => {
            let len = ((at(words, i) >> (layout.len_shift & 63)) & 0xffff_ffff) as usize;
            (len < INLINE_MAX).then_some((len, iname))
        }
        _ => None,
    };
    let written = match inline_len {
        Some((len, iname)) => {
            for k in 0..INLINE_WORDS {
                // `pos` < PATH_BUF and the buffer has NAME_BUF bytes beyond it.
                store_word(dst.wrapping_add(k * 8), at(words, iname + k));
            }
            // SAFETY: `len` < INLINE_MAX, inside what was just written.
            unsafe { *dst.add(len & (INLINE_MAX - 1)) = 0 };
            (len & (INLINE_MAX - 1)) + 1
        }
        None => read_str(dst, NAME_BUF as u32, name),
    };
    state.len = (len + written) as u64;
    state.depth += 1;
    if parent as u64 == state.root {
        state.flags = 0;
        return 0;
    }
    if level == 0
        && state.cache != 0
        && let Some(generation) = generation()
        && let Some((n, depth)) = cached_prefix(
            &mut ev.path,
            state.len as usize,
            parent,
            generation,
            state.defer != 0,
        )
    {
        state.len += n as u64;
        state.depth += u64::from(depth);
        state.flags = 0;
        return 0;
    }
    state.current = parent as u64;
    1
}

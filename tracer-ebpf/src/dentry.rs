//! Reading `struct dentry` and friends at offsets taken from the running kernel's BTF.
use aya_ebpf::helpers::{
    bpf_probe_read_kernel,
    generated::{bpf_probe_read_kernel as read_into, bpf_probe_read_kernel_str},
};
use dentry_common::{FLAG_TRUNCATED, KernelOffsets, MAX_DEPTH, NAME_BUF, PATH_BUF};

use crate::{
    Ptr,
    maps::{SUPERBLOCKS, generation},
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
///
/// With `cache`, the walk asks the path cache at the leaf's directory and stops there on a hit
/// (with `defer`, a clean cached path is not copied yet: see `path_cache::cached_prefix`).
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

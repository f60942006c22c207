//! Reading `struct dentry` and friends at offsets taken from the running kernel's BTF.
use aya_ebpf::helpers::{bpf_probe_read_kernel, generated::bpf_probe_read_kernel_str};
use dentry_common::{FLAG_TRUNCATED, KernelOffsets, MAX_DEPTH, NAME_BUF, PATH_BUF};

use crate::{Ptr, maps::FSTYPES};

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

/// The filesystem type name of a superblock (`sb->s_type->name`) into `out`, from this CPU's
/// one-entry cache when it is the superblock named last. (A superblock's type never changes;
/// a freed and reused superblock address could name a stale type only if a filesystem of
/// another type were mounted at the same address between two events of this CPU, and the
/// cache is refreshed by the first event on any other superblock.)
#[inline(always)]
pub fn fstype(sb: Ptr, off: &KernelOffsets, out: &mut [u8; 16]) {
    let Some(cache) = FSTYPES.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU slot, only this CPU touches it.
    let cache = unsafe { &mut *cache };
    if cache[0] == sb as u64 && cache[0] != 0 {
        out[..8].copy_from_slice(&cache[1].to_ne_bytes());
        out[8..].copy_from_slice(&cache[2].to_ne_bytes());
        return;
    }
    let Some(s_type) = field::<Ptr>(sb, off.super_block_s_type) else {
        return;
    };
    if let Some(name) = field::<Ptr>(s_type, off.file_system_type_name)
        && read_str(out.as_mut_ptr(), out.len() as u32, name) > 0
    {
        let mut words = [0u8; 8];
        words.copy_from_slice(&out[..8]);
        cache[1] = u64::from_ne_bytes(words);
        words.copy_from_slice(&out[8..]);
        cache[2] = u64::from_ne_bytes(words);
        cache[0] = sb as u64;
    }
}

/// Words read at once to get a dentry's parent and name pointers (a power of two).
const SPAN_WORDS: u32 = 4;

/// The result of a path walk.
pub struct Walk {
    pub len: usize,
    pub depth: u16,
    pub flags: u16,
}

/// Writes the path of `dentry` into `path`, leaf first, each component NUL-terminated, stopping
/// at the filesystem root (whose own name is not written). `leaf`, when given, is a `qstr *`
/// of a child not yet linked under `dentry` (an allocation in progress) and is written first.
#[inline(always)]
pub fn walk(
    path: &mut [u8; PATH_BUF + NAME_BUF],
    leaf: Ptr,
    dentry: Ptr,
    off: &KernelOffsets,
) -> Walk {
    let mut pos = 0usize;
    let mut depth = 0u16;
    if !leaf.is_null()
        && let Some(name) = field::<Ptr>(leaf, off.qstr_name)
    {
        pos = read_str(path.as_mut_ptr(), NAME_BUF as u32, name);
        depth = 1;
    }
    let name_at = off.dentry_d_name + off.qstr_name;
    // `d_parent` and `d_name.name` sit within a few words of each other in every layout we
    // know: one read of the words spanning both costs half of two reads (each read is a
    // helper call with fault handling). Otherwise, two reads.
    let lo = if off.dentry_d_parent < name_at {
        off.dentry_d_parent
    } else {
        name_at
    };
    let (parent_word, name_word) = ((off.dentry_d_parent - lo) / 8, (name_at - lo) / 8);
    let one_read = (off.dentry_d_parent - lo).is_multiple_of(8)
        && (name_at - lo).is_multiple_of(8)
        && parent_word < SPAN_WORDS
        && name_word < SPAN_WORDS;
    let mut current = dentry;
    for _ in 0..MAX_DEPTH {
        let links = if one_read {
            field::<[u64; SPAN_WORDS as usize]>(current, lo).map(|words| {
                (
                    words[(parent_word & (SPAN_WORDS - 1)) as usize] as Ptr,
                    words[(name_word & (SPAN_WORDS - 1)) as usize] as Ptr,
                )
            })
        } else {
            field::<Ptr>(current, off.dentry_d_parent).zip(field::<Ptr>(current, name_at))
        };
        let Some((parent, name)) = links else {
            return Walk {
                len: pos,
                depth,
                flags: FLAG_TRUNCATED,
            };
        };
        if parent == current {
            return Walk {
                len: pos,
                depth,
                flags: 0,
            };
        }
        if pos > PATH_BUF - NAME_BUF {
            return Walk {
                len: pos,
                depth,
                flags: FLAG_TRUNCATED,
            };
        }
        // The mask proves to the verifier that the read stays inside `path`.
        let dst = path.as_mut_ptr().wrapping_add(pos & (PATH_BUF - 1));
        pos += read_str(dst, NAME_BUF as u32, name);
        depth += 1;
        current = parent;
    }
    Walk {
        len: pos,
        depth,
        flags: FLAG_TRUNCATED,
    }
}

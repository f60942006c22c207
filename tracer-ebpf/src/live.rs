//! Live dentries per owner (`dentry_common::Live`): the owner is the memory cgroup a dentry's
//! slab object is charged to, read from the object, so allocation and free agree whichever
//! task (an RCU callback, kswapd, another cgroup's reclaim) runs the free.
use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::map,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
};
use dentry_common::{
    BASE_CANDIDATES, BORN_OBJECTS, Born, Live, MAX_BORN_SLABS, MAX_OWNERS, OwnerLayout, PAGE_WORDS,
    ROOT_OWNER,
};

use crate::{
    Ptr,
    maps::{global, offsets},
    mem::atomic_add,
};

/// Per owner (a memory cgroup's id), this CPU's share of its live dentries.
#[map(name = "LIVE")]
pub static LIVE: PerCpuHashMap<u64, Live> = PerCpuHashMap::with_max_entries(MAX_OWNERS, 0);

/// Which slab objects are dentries allocated since the start (`Born`), per slab.
#[map(name = "BORN")]
static BORN: HashMap<u64, Born> = HashMap::with_max_entries(MAX_BORN_SLABS, BPF_F_NO_PREALLOC);

/// The direct map's and the `struct page` array's bases, found once, and the dentry cache's
/// object size as last seen (for userspace, where `/proc/slabinfo` is not readable).
#[map(name = "BASES")]
static BASES: Array<u64> = Array::with_max_entries(3, 0);

/// Dentries allocated since the start that are not counted (a full map, a slab with more
/// objects than `BORN_OBJECTS`, an object whose owner could not be read).
#[map(name = "UNTRACKED")]
static UNTRACKED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static OWNER: OwnerLayout = OwnerLayout {
    enabled: 0,
    page_shift: 0,
    page_offset_base: 0,
    vmemmap_base: 0,
    candidates: [[0; 2]; BASE_CANDIDATES],
    cache_name: 0,
    _pad2: 0,
    page_size: 0,
    compound_head: 0,
    slab_cache: 0,
    slab_exts: 0,
    exts_stride: 0,
    cache_size: 0,
    objcg_memcg: 0,
    memcg_cgroup: 0,
    memcg_parent: 0,
    css_cgroup: 0,
    cgroup_kn: 0,
    kn_id: 0,
    inode_mode: 0,
    inode_dentry: 0,
    _pad: 0,
};

const BPF_F_NO_PREALLOC: u32 = 1;
/// `BASES` slot of the object size.
const OBJECT_SIZE: u32 = 2;
const BPF_NOEXIST: u64 = 1;
/// The memory cgroup pointer every charged object carries beside its size (`obj_full_size`).
const OBJCG_BYTES: u64 = 8;
/// `offsetof(struct external_name, name)`.
const EXTERNAL_NAME_HEADER: u64 = 16;

#[inline(always)]
fn layout() -> &'static OwnerLayout {
    global(&OWNER)
}

/// Whether live counting is on (a load-time constant: off, the verifier drops all of this).
#[inline(always)]
pub fn enabled() -> bool {
    layout().enabled != 0
}

#[inline(always)]
fn read<T>(at: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel copes with any address; a bad one returns an error.
    unsafe { bpf_probe_read_kernel(at as *const T).ok() }
}

/// The direct map's and the `struct page` array's bases, found the first time: read from the
/// variables holding them (x86-64), or the first of the build's candidates (arm64) under which
/// `at`, a dentry, lies in a slab of the cache named `dentry`.
#[inline(always)]
fn bases(at: u64) -> Option<(u64, u64)> {
    let direct = BASES.get_ptr_mut(0)?;
    let vmemmap = BASES.get_ptr_mut(1)?;
    // SAFETY: array slots; every writer stores the same values.
    let cached = unsafe { (*direct, *vmemmap) };
    if cached.0 != 0 && cached.1 != 0 {
        return Some(cached);
    }
    let l = layout();
    let found = if l.page_offset_base != 0 {
        (
            read::<u64>(l.page_offset_base)?,
            read::<u64>(l.vmemmap_base)?,
        )
    } else {
        let mut found = None;
        for [d, v] in l.candidates {
            if d != 0
                && found.is_none()
                && slab_of(at, d, v).is_some_and(|(_, cache, _)| is_dentry_cache(cache))
            {
                found = Some((d, v));
            }
        }
        found?
    };
    // SAFETY: as above.
    unsafe { (*direct, *vmemmap) = found };
    Some(found)
}

/// `b"dentry\0"` as the first 7 bytes of a word.
const DENTRY_NAME: u64 = u64::from_le_bytes(*b"dentry\0\0");

/// Whether `cache` is a `kmem_cache` named `dentry` (what a dentry's slab must belong to).
#[inline(always)]
fn is_dentry_cache(cache: u64) -> bool {
    read::<u64>(cache + layout().cache_name as u64)
        .and_then(read::<u64>)
        .is_some_and(|name| name & 0x00ff_ffff_ffff_ffff == DENTRY_NAME)
}

/// `virt_to_slab(at)` under the bases given: the slab's head `struct page` address, its cache
/// and its charge vector.
#[inline(always)]
fn slab_of(at: u64, direct: u64, vmemmap: u64) -> Option<(u64, u64, u64)> {
    let l = layout();
    let page_size = l.page_size as u64;
    if at < direct || page_size == 0 {
        return None;
    }
    let page = vmemmap + ((at - direct) >> l.page_shift) * page_size;
    let mut words = read::<[u64; PAGE_WORDS as usize]>(page)?;
    let mut slab = page;
    let head = words[(l.compound_head % PAGE_WORDS) as usize];
    if head & 1 != 0 {
        // A tail page: bit 0 set, the rest the head page's address (`compound_head`) or, since
        // 7.x where `struct page` is a power of two bytes (`compound_info`), a mask that clears
        // the tail's offset from it. A mask is above every `struct page` address, a pointer to
        // the head below the tail: the comparison tells them apart on every kernel.
        slab = if head - 1 <= page {
            head - 1
        } else {
            page & head
        };
        words = read(slab)?;
    }
    let cache = words[(l.slab_cache % PAGE_WORDS) as usize];
    let exts = words[(l.slab_exts % PAGE_WORDS) as usize];
    Some((slab, cache, exts))
}

/// A dentry's slab object: its slab, its index there and the `obj_cgroup` it is charged to.
struct Object {
    slab: u64,
    index: u64,
    objcg: u64,
    size: u64,
}

/// `virt_to_slab` and `obj_to_index`, as the kernel computes them for a direct-map address.
#[inline(always)]
fn object(dentry: Ptr) -> Option<Object> {
    let l = layout();
    let at = crate::mem::number(dentry)?;
    let (direct, vmemmap) = bases(at)?;
    let (slab, cache, exts) = slab_of(at, direct, vmemmap)?;
    let page_size = l.page_size as u64;
    let size = read::<u32>(cache + l.cache_size as u64)? as u64;
    if size == 0 || slab < vmemmap || page_size == 0 {
        return None;
    }
    if let Some(seen) = BASES.get_ptr_mut(OBJECT_SIZE) {
        // SAFETY: an array slot; every writer stores the same value.
        unsafe { *seen = size };
    }
    let start = direct + (((slab - vmemmap) / page_size) << l.page_shift);
    let index = at.checked_sub(start)? / size;
    // The vector's address with flags in its three low bits (`MEMCG_DATA_OBJCGS`,
    // `MEMCG_DATA_OBJEXTS`, `OBJEXTS_ALLOC_FAIL`: which mean what has changed across kernels,
    // and a failed allocation leaves no address). Without one nothing in the slab is charged.
    let objcg = if exts & !7 != 0 {
        read::<u64>((exts & !7) + index * l.exts_stride as u64).unwrap_or(0)
    } else {
        0
    };
    Some(Object {
        slab,
        index,
        objcg,
        size,
    })
}

#[inline(always)]
fn cgroup_id(cgroup: u64) -> Option<u64> {
    let l = layout();
    let kn = read::<u64>(cgroup + l.cgroup_kn as u64)?;
    read::<u64>(kn + l.kn_id as u64)
}

/// The memory cgroup an `obj_cgroup` belongs to now (the kernel repoints it at the parent when
/// the cgroup goes), and that cgroup's parent.
#[inline(always)]
fn owner(objcg: u64) -> (u64, u64) {
    if objcg == 0 {
        return (ROOT_OWNER, 0);
    }
    let l = layout();
    let Some(memcg) = read::<u64>(objcg + l.objcg_memcg as u64) else {
        return (ROOT_OWNER, 0);
    };
    let id = read::<u64>(memcg + l.memcg_cgroup as u64)
        .and_then(cgroup_id)
        .unwrap_or(ROOT_OWNER);
    (id, memcg)
}

#[inline(always)]
fn parent_id(memcg: u64) -> u64 {
    let l = layout();
    read::<u64>(memcg + l.memcg_parent as u64)
        .filter(|css| *css != 0)
        .and_then(|css| read::<u64>(css + l.css_cgroup as u64))
        .and_then(cgroup_id)
        .unwrap_or(0)
}

/// `kmalloc`'s size class for `n` bytes (what a long name's storage really takes).
#[inline(always)]
fn kmalloc_size(n: u64) -> u64 {
    match n {
        0..=8 => 8,
        9..=16 => 16,
        17..=32 => 32,
        33..=64 => 64,
        65..=96 => 96,
        97..=128 => 128,
        129..=192 => 192,
        193..=256 => 256,
        _ => 512,
    }
}

/// What a dentry costs its owner: the object as charged, and a long name's storage.
#[inline(always)]
fn bytes(dentry: Ptr, o: &Object) -> u64 {
    let charge = if o.objcg != 0 { OBJCG_BYTES } else { 0 };
    let off = offsets();
    let inline = dentry as u64 + off.dentry_d_iname as u64;
    let name = read::<u64>(dentry as u64 + (off.dentry_d_name + off.qstr_name) as u64);
    let external = match name {
        Some(name) if name != inline && name != 0 => {
            read::<u32>(dentry as u64 + (off.dentry_d_name + off.qstr_len) as u64)
                .map_or(0, |len| {
                    kmalloc_size(EXTERNAL_NAME_HEADER + len as u64 + 1) + charge
                })
        }
        _ => 0,
    };
    o.size + charge + external
}

#[inline(always)]
fn untracked() {
    if let Some(n) = UNTRACKED.get_ptr_mut(0) {
        atomic_add(n, 1);
    }
}

/// The `Born` entry of an object's slab and its bit there.
#[inline(always)]
fn born_bit(o: &Object, make: bool) -> Option<(*mut Born, usize, u64)> {
    if o.index >= BORN_OBJECTS as u64 {
        return None;
    }
    let entry = match BORN.get_ptr_mut(o.slab) {
        Some(entry) => entry,
        None if make => {
            // Another CPU may insert first: then this fails and the lookup finds its entry.
            let _ = BORN.insert(o.slab, Born::default(), BPF_NOEXIST);
            BORN.get_ptr_mut(o.slab)?
        }
        None => return None,
    };
    Some((entry, (o.index / 64 % 2) as usize, 1 << (o.index % 64)))
}

/// Adds to the owner's counts on this CPU.
#[inline(always)]
fn add(objcg: u64, dentries: i64, positive: i64, bytes: i64) {
    let (id, memcg) = owner(objcg);
    let value = match LIVE.get_ptr_mut(id) {
        Some(value) => value,
        None => {
            let fresh = Live {
                parent: if memcg != 0 { parent_id(memcg) } else { 0 },
                ..Live::default()
            };
            let _ = LIVE.insert(id, fresh, BPF_NOEXIST);
            let Some(value) = LIVE.get_ptr_mut(id) else {
                untracked();
                return;
            };
            value
        }
    };
    // SAFETY: a live map value, written only with atomic adds.
    let value = unsafe { &mut *value };
    if dentries != 0 {
        atomic_add(
            core::ptr::addr_of_mut!(value.dentries).cast(),
            dentries as u64,
        );
        atomic_add(core::ptr::addr_of_mut!(value.bytes).cast(), bytes as u64);
    }
    if positive != 0 {
        atomic_add(
            core::ptr::addr_of_mut!(value.positive).cast(),
            positive as u64,
        );
    }
}

/// `__d_alloc` returned `dentry` (null if it failed).
// Not inlined: its own frame keeps the callers' stack within the verifier's 512 bytes
// beside the path walk's.
#[inline(never)]
pub fn on_alloc(dentry: Ptr) {
    if !enabled() || dentry.is_null() {
        return;
    }
    let Some(o) = object(dentry) else {
        untracked();
        return;
    };
    let Some((entry, word, bit)) = born_bit(&o, true) else {
        untracked();
        return;
    };
    // SAFETY: a live map value.
    let born = unsafe { core::ptr::addr_of_mut!((*entry).born[word]) };
    set_bit(born, bit);
    add(o.objcg, 1, 0, bytes(dentry, &o) as i64);
}

/// Sets an object's bit in a `Born` word that other objects' bits share; returns whether it
/// was clear. Only this object's own events change its bit (the kernel serialises a dentry's
/// allocation, state changes and free), so after reading it clear, adding it is an atomic or
/// that cannot carry into a neighbour: one `lock add`, which every kernel has (the atomic or
/// and and instructions came in 5.12).
#[inline(always)]
fn set_bit(word: *mut u64, bit: u64) -> bool {
    // SAFETY: a plain read of a live map value.
    if unsafe { core::ptr::read_volatile(word) } & bit != 0 {
        return false;
    }
    atomic_add(word, bit);
    true
}

/// Clears an object's bit as `set_bit` sets it (an atomic subtraction of a bit read set);
/// returns whether it was set.
#[inline(always)]
fn clear_bit(word: *mut u64, bit: u64) -> bool {
    // SAFETY: a plain read of a live map value.
    if unsafe { core::ptr::read_volatile(word) } & bit == 0 {
        return false;
    }
    atomic_add(word, bit.wrapping_neg());
    true
}

/// The slab object of a dentry allocated since the start, with its bitmap entry.
#[inline(always)]
fn counted(dentry: Ptr) -> Option<(Object, *mut Born, usize, u64)> {
    if !enabled() || dentry.is_null() {
        return None;
    }
    let o = object(dentry)?;
    let (entry, word, bit) = born_bit(&o, false)?;
    // SAFETY: a plain read of a live map value; only this dentry's own events change
    // its bit (the kernel serialises a dentry's allocation, state changes and free).
    let born = unsafe { (*entry).born[word] };
    (born & bit != 0).then_some((o, entry, word, bit))
}

/// `dentry_free(dentry)`: every freed dentry passes here (with or without an RCU grace period).
// Not inlined: its own frame keeps the callers' stack within the verifier's 512 bytes
// beside the path walk's.
#[inline(never)]
pub fn on_free(dentry: Ptr) {
    let Some((o, entry, word, bit)) = counted(dentry) else {
        return;
    };
    // SAFETY: a live map value.
    let (born, positive_word) = unsafe {
        (
            core::ptr::addr_of_mut!((*entry).born[word]),
            core::ptr::addr_of_mut!((*entry).positive[word]),
        )
    };
    let positive = clear_bit(positive_word, bit);
    clear_bit(born, bit);
    add(
        o.objcg,
        -1,
        -i64::from(positive),
        -(bytes(dentry, &o) as i64),
    );
}

/// A dentry was given `inode` (`d_add`, `d_instantiate`, `d_instantiate_new`, and
/// `d_splice_alias` unless it moves an existing directory alias into place instead).
// Not inlined: its own frame keeps the callers' stack within the verifier's 512 bytes
// beside the path walk's.
#[inline(never)]
pub fn on_positive(dentry: Ptr, inode: Ptr, splice: bool) {
    if !enabled() || inode.is_null() {
        return;
    }
    if splice && has_directory_alias(inode) {
        return;
    }
    let Some((o, entry, word, bit)) = counted(dentry) else {
        return;
    };
    // SAFETY: a live map value.
    if set_bit(
        unsafe { core::ptr::addr_of_mut!((*entry).positive[word]) },
        bit,
    ) {
        add(o.objcg, 0, 1, 0);
    }
}

/// `dentry_unlink_inode(dentry)`: a positive dentry loses its inode (unlink, or on its way to
/// being freed).
// Not inlined: its own frame keeps the callers' stack within the verifier's 512 bytes
// beside the path walk's.
#[inline(never)]
pub fn on_unlink(dentry: Ptr) {
    let Some((o, entry, word, bit)) = counted(dentry) else {
        return;
    };
    // SAFETY: a live map value.
    if clear_bit(
        unsafe { core::ptr::addr_of_mut!((*entry).positive[word]) },
        bit,
    ) {
        add(o.objcg, 0, -1, 0);
    }
}

const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;

/// A directory inode that already has a dentry: `d_splice_alias` returns that one.
#[inline(always)]
fn has_directory_alias(inode: Ptr) -> bool {
    let l = layout();
    let at = inode as u64;
    read::<u16>(at + l.inode_mode as u64).is_some_and(|mode| mode & S_IFMT == S_IFDIR)
        && read::<u64>(at + l.inode_dentry as u64).is_some_and(|first| first != 0)
}

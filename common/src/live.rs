//! Live dentries per owner: who holds the dentry cache now (docs/counters.md, "Live").
//!
//! A dentry's owner is the memory cgroup its slab object is charged to, read from the object
//! itself (slab → object extension vector → `obj_cgroup` → `mem_cgroup` → cgroup id), the same
//! at allocation and at free whatever task runs either. Only dentries allocated after the
//! tracer started are counted: `Born` marks them.

/// One owner's live dentries on one CPU, as signed deltas: a dentry is added on the CPU that
/// allocated it and taken away on the CPU that frees it, so only the sum over CPUs means
/// anything. Every field is written with atomic adds (a free in an RCU callback can interrupt
/// an allocation's update on the same CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Dentries alive.
    pub dentries: i64,
    /// Of those, the ones with an inode.
    pub positive: i64,
    /// Their memory: what the kernel charges for the objects, plus long names' external
    /// storage.
    pub bytes: i64,
    /// The owner's parent memory cgroup (its cgroup id), set when the entry is made: when the
    /// owner's cgroup is removed the kernel moves its charges there, and so does the tracer.
    pub parent: u64,
}

/// Objects per slab the `Born` bitmaps cover. A dentry slab holds 21 (order 0), 42 (order 1)
/// or 85 (order 2) objects; objects past this many are not counted (`Untracked`).
pub const BORN_OBJECTS: u32 = 128;

/// Per slab (keyed by its head `struct page`), which objects are dentries allocated since the
/// tracer started, and which of those are counted positive. Every other dentry is left alone:
/// frees and state changes of dentries from before the start would otherwise make a gauge
/// wrong or negative.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Born {
    pub born: [u64; 2],
    pub positive: [u64; 2],
}

/// Slabs `BORN` can hold. Each entry costs about 90 bytes of kernel memory, allocated as
/// slabs come (ten million dentries live in about 480,000 slabs: ~43 MB); past it, dentries
/// in new slabs are not counted (`UNTRACKED`).
pub const MAX_BORN_SLABS: u32 = 1 << 20;

/// Slabs `BORN` can hold where it must be preallocated (kernels before 6.1): all of it is
/// kernel memory from the start, about 11 MB (2.7 to 5.5 million dentries).
pub const PREALLOCATED_BORN_SLABS: u32 = 1 << 17;

/// Owners `LIVE` can hold (memory cgroups, dead ones included until the tracer folds them).
pub const MAX_OWNERS: u32 = 16384;

/// The owner of dentries charged to no memory cgroup (the root cgroup's id).
pub const ROOT_OWNER: u64 = 1;

/// What the kernel programs need to find a slab object's owner, from BTF and `/proc/kallsyms`
/// (set by the loader; `enabled` 0 switches live counting off).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerLayout {
    pub enabled: u32,
    /// `PAGE_SHIFT`.
    pub page_shift: u32,
    /// Where the kernel keeps the direct map's base (`page_offset_base`) and the `struct page`
    /// array's (`vmemmap_base`): addresses of those variables (x86-64 randomizes both at boot).
    /// 0: the bases are constants of the kernel's build, among `BASE_CANDIDATES` (arm64).
    pub page_offset_base: u64,
    pub vmemmap_base: u64,
    /// The bases the kernel may have been built with (direct map, `struct page` array), tried
    /// in turn where there are no variables; unused entries are 0.
    pub candidates: [[u64; 2]; BASE_CANDIDATES],
    /// `kmem_cache.name`: a candidate is taken once the slab it finds for a dentry belongs to
    /// the cache named `dentry`.
    pub cache_name: u32,
    pub _pad2: u32,
    /// `sizeof(struct page)`.
    pub page_size: u32,
    /// Word indexes, in a `struct page`/`struct slab`'s first 8 words, of `compound_head`
    /// (`compound_info` since 7.x), `slab_cache` and the object extension vector
    /// (`page.obj_cgroups` on 5.10, `page.memcg_data` to 5.16, `slab.memcg_data` to 6.9,
    /// `slab.obj_exts` since 6.10).
    pub compound_head: u32,
    pub slab_cache: u32,
    pub slab_exts: u32,
    /// Bytes per entry of that vector (an `obj_cgroup *`, or a `struct slabobj_ext`).
    pub exts_stride: u32,
    /// `kmem_cache.size`.
    pub cache_size: u32,
    /// `obj_cgroup.memcg`.
    pub objcg_memcg: u32,
    /// `mem_cgroup.css` + `cgroup_subsys_state.cgroup`, and + `.parent`.
    pub memcg_cgroup: u32,
    pub memcg_parent: u32,
    /// `cgroup_subsys_state.cgroup` (for the parent's css).
    pub css_cgroup: u32,
    /// `cgroup.kn`, `kernfs_node.id`.
    pub cgroup_kn: u32,
    pub kn_id: u32,
    /// `inode.i_mode`, `inode.i_dentry` (a directory with a dentry already: `d_splice_alias`
    /// moves that one into place and leaves the new one negative).
    pub inode_mode: u32,
    pub inode_dentry: u32,
    pub _pad: u32,
}

/// `OwnerLayout::candidates`.
pub const BASE_CANDIDATES: usize = 4;

/// Words of a `struct page` the owner lookup reads at once.
pub const PAGE_WORDS: u32 = 8;

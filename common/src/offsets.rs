//! Kernel struct offsets, taken from BTF at load time.

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
    /// `dentry.d_rcu` (in the union `d_u` until 7.x, an anonymous union since): what
    /// `__d_free` is given.
    pub dentry_d_rcu: u32,
    /// `cgroup.kn` and `kernfs_node.id`: a new cgroup's id (its directory's inode), which is
    /// what `bpf_get_current_cgroup_id()` later returns for its tasks.
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    /// Where a kernel without `bpf_get_current_ancestor_cgroup_id` for tracing programs (before
    /// 5.11) finds a task's ancestor cgroup ids: `task_struct.cgroups`, `css_set.dfl_cgrp`,
    /// `cgroup.level` and `cgroup.ancestor_ids`. `cgroup_ancestor_ids` 0: use the helper.
    pub task_cgroups: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_level: u32,
    pub cgroup_ancestor_ids: u32,
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

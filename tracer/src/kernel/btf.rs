//! A minimal reader of the kernel's BTF (the documented format: header, type section, string
//! section), enough to find struct member offsets. aya parses BTF but does not expose member
//! offsets, and Rust eBPF has no CO-RE relocations, so the tracer reads offsets here and hands
//! them to the programs as a global before loading.
use dentry_common::{KernelOffsets, LevelLayout, OwnerLayout, PAGE_WORDS};

use crate::kernel::features::{Feature, Features};

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// Where the running kernel exposes its BTF (the tracer's `--btf` default).
pub const SYS_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not BTF data (bad magic or truncated header)")]
    NotBtf,
    #[error("BTF is truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("struct {0} not found in the kernel's BTF")]
    NoStruct(String),
    #[error("struct {0} has no member {1} in the kernel's BTF")]
    NoMember(String, String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy)]
struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// Start of the kind-specific data after the 12-byte common part.
    extra: usize,
}

/// Parsed BTF: the raw bytes plus an index of every type (id 1 is `types[0]`).
pub struct Btf {
    data: Vec<u8>,
    strings: std::ops::Range<usize>,
    types: Vec<Type>,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn from_sys() -> Result<Btf, Error> {
        Self::from_file(SYS_BTF)
    }

    pub fn from_file(path: &str) -> Result<Btf, Error> {
        let data = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf, Error> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(Error::NotBtf);
        }
        let word = |at: usize| -> Result<u32, Error> {
            data.get(at..at + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(Error::Malformed(at))
        };
        let hdr_len = word(4)? as usize;
        let (type_off, type_len) = (word(8)? as usize, word(12)? as usize);
        let (str_off, str_len) = (word(16)? as usize, word(20)? as usize);
        let types_at = hdr_len + type_off;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if strings.end > data.len() || types_at + type_len > data.len() {
            return Err(Error::Malformed(data.len()));
        }
        let mut types = Vec::new();
        let mut at = types_at;
        while at < types_at + type_len {
            let info = word(at + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra = at + 12;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                _ => 0,
            };
            types.push(Type {
                name_off: word(at)?,
                kind,
                vlen,
                kind_flag: info >> 31 == 1,
                extra,
            });
            at = extra + extra_len;
        }
        Ok(Btf {
            data,
            strings,
            types,
        })
    }

    fn word(&self, at: usize) -> u32 {
        let b = &self.data[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn name(&self, off: u32) -> &str {
        let start = self.strings.start + off as usize;
        let bytes = self.data.get(start..self.strings.end).unwrap_or_default();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).unwrap_or_default()
    }

    fn get(&self, id: u32) -> Option<&Type> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    fn struct_id(&self, name: &str) -> Result<u32, Error> {
        self.types
            .iter()
            .position(|t| t.kind == KIND_STRUCT && self.name(t.name_off) == name)
            .map(|i| i as u32 + 1)
            .ok_or_else(|| Error::NoStruct(name.to_owned()))
    }

    /// Whether the kernel's BTF has `struct name`.
    pub fn has_struct(&self, name: &str) -> bool {
        self.struct_id(name).is_ok()
    }

    /// Byte offset of `member` in `struct name`: a dotted path (`d_u.d_rcu`) through named
    /// members, each looked for inside anonymous struct/union members too (since 6.14
    /// `dentry.d_name` sits in one, since 7.x `dentry.d_rcu`).
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, Error> {
        let mut id = self.struct_id(name)?;
        let mut bits = 0;
        for part in member.split('.') {
            let (at, type_id) = self
                .find_member(id, part, 0)
                .ok_or_else(|| Error::NoMember(name.to_owned(), member.to_owned()))?;
            bits += at;
            id = self.resolve(type_id);
        }
        Ok(bits / 8)
    }

    /// The first of `members` (the forms a field has had across kernels, as dotted paths) that
    /// `struct name` has; the error names them all.
    pub fn first_member(&self, name: &str, members: &[&str]) -> Result<u32, Error> {
        members
            .iter()
            .find_map(|m| self.member_offset(name, m).ok())
            .ok_or_else(|| {
                self.struct_id(name).map_or_else(
                    |e| e,
                    |_| Error::NoMember(name.to_owned(), members.join(" or ")),
                )
            })
    }

    /// `member`'s bit offset and type id, looking inside anonymous members.
    fn find_member(&self, id: u32, member: &str, depth: u32) -> Option<(u32, u32)> {
        let t = self.get(id)?;
        if !matches!(t.kind, KIND_STRUCT | KIND_UNION) || depth > 8 {
            return None;
        }
        for i in 0..t.vlen as usize {
            let at = t.extra + 12 * i;
            let (name_off, type_id, raw_offset) =
                (self.word(at), self.word(at + 4), self.word(at + 8));
            let bits = if t.kind_flag {
                raw_offset & 0x00ff_ffff
            } else {
                raw_offset
            };
            let member_name = self.name(name_off);
            if member_name == member {
                return Some((bits, type_id));
            }
            if member_name.is_empty()
                && let Some((inner, inner_type)) =
                    self.find_member(self.resolve(type_id), member, depth + 1)
            {
                return Some((bits + inner, inner_type));
            }
        }
        None
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.get(id) {
                // TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG refer to another type.
                Some(t) if matches!(t.kind, 8..=11 | 18) => id = self.word(t.extra - 4),
                _ => break,
            }
        }
        id
    }

    /// `sizeof(struct name)`.
    pub fn struct_size(&self, name: &str) -> Result<u32, Error> {
        let id = self.struct_id(name)?;
        Ok(self.get(id).map_or(0, |t| self.word(t.extra - 4)))
    }

    /// What the live-dentry programs need to find a slab object's memory cgroup; the bases of
    /// the direct map and of the `struct page` array are the addresses of the kernel variables
    /// holding them.
    pub fn owner_layout(
        &self,
        page_offset_base: u64,
        vmemmap_base: u64,
        page_shift: u32,
    ) -> Result<OwnerLayout, Error> {
        let word = |struct_name: &str, members: &[&str]| -> Result<u32, Error> {
            let at = self.first_member(struct_name, members)?;
            if at % 8 != 0 || at / 8 >= PAGE_WORDS {
                return Err(Error::NoMember(
                    struct_name.to_owned(),
                    members.join(" or "),
                ));
            }
            Ok(at / 8)
        };
        // Slab fields: `struct slab` since 5.17, overlaid on the head `struct page`; before,
        // the page's own fields (docs/architecture.md, "Kernel ranges").
        let slab = if self.has_struct("slab") {
            "slab"
        } else {
            "page"
        };
        // The charge vector: an array of `obj_cgroup *` (`obj_cgroups` on 5.10, `memcg_data`
        // to 6.9), then of `slabobj_ext` (`obj_exts`).
        let (slab_exts, exts_stride) = match word(slab, &["memcg_data", "obj_cgroups"]) {
            Ok(at) => (at, 8),
            Err(_) => (
                word(slab, &["obj_exts"]).map_err(|_| {
                    Error::NoMember(
                        slab.to_owned(),
                        "memcg_data, obj_cgroups or obj_exts".into(),
                    )
                })?,
                self.struct_size("slabobj_ext")?,
            ),
        };
        let css = self.member_offset("mem_cgroup", "css")?;
        Ok(OwnerLayout {
            enabled: 1,
            page_shift,
            page_offset_base,
            vmemmap_base,
            candidates: Default::default(),
            cache_name: self.member_offset("kmem_cache", "name")?,
            _pad2: 0,
            page_size: self.struct_size("page")?,
            compound_head: word("page", &["compound_head", "compound_info"])?,
            slab_cache: word(slab, &["slab_cache"])?,
            slab_exts,
            exts_stride,
            cache_size: self.member_offset("kmem_cache", "size")?,
            objcg_memcg: self.member_offset("obj_cgroup", "memcg")?,
            memcg_cgroup: css + self.member_offset("cgroup_subsys_state", "cgroup")?,
            memcg_parent: css + self.member_offset("cgroup_subsys_state", "parent")?,
            css_cgroup: self.member_offset("cgroup_subsys_state", "cgroup")?,
            cgroup_kn: self.member_offset("cgroup", "kn")?,
            kn_id: self.member_offset("kernfs_node", "id")?,
            inode_mode: self.member_offset("inode", "i_mode")?,
            inode_dentry: self.member_offset("inode", "i_dentry")?,
            _pad: 0,
        })
    }

    /// The offsets the kernel programs need. A field this kernel's BTF lacks leaves its
    /// offsets at zero and turns off the feature that reads it (into `features`): counting
    /// reads none, so it always runs.
    pub fn kernel_offsets(&self, features: &mut Features) -> KernelOffsets {
        let mut off = KernelOffsets::default();
        // The path walk.
        let walk = (|| -> Result<(), Error> {
            off.dentry_d_parent = self.member_offset("dentry", "d_parent")?;
            off.dentry_d_name = self.member_offset("dentry", "d_name")?;
            off.dentry_d_inode = self.member_offset("dentry", "d_inode")?;
            off.dentry_d_sb = self.member_offset("dentry", "d_sb")?;
            off.qstr_name = self.member_offset("qstr", "name")?;
            off.qstr_len = self.member_offset("qstr", "len")?;
            off.super_block_s_type = self.member_offset("super_block", "s_type")?;
            off.super_block_s_root = self.member_offset("super_block", "s_root")?;
            off.file_system_type_name = self.member_offset("file_system_type", "name")?;
            // `d_iname` until 6.14, `d_shortname` since.
            off.dentry_d_iname = self.first_member("dentry", &["d_iname", "d_shortname"])?;
            Ok(())
        })();
        if let Err(e) = walk {
            off = KernelOffsets::default();
            features.off(Feature::Trace, e.to_string());
            features.off(Feature::PathCache, "no trace events to cache paths for");
        }
        // `__d_free`'s argument: `d_u.d_rcu` until 7.x, `d_rcu` in an anonymous union since.
        match self.first_member("dentry", &["d_u.d_rcu", "d_rcu"]) {
            Ok(at) => off.dentry_d_rcu = at,
            Err(e) => features.off(Feature::PathCache, e.to_string()),
        }
        match (
            self.member_offset("cgroup", "kn"),
            self.member_offset("kernfs_node", "id"),
        ) {
            (Ok(kn), Ok(id)) => (off.cgroup_kn, off.kernfs_node_id) = (kn, id),
            (Err(e), _) | (_, Err(e)) => features.off(Feature::Pending, e.to_string()),
        }
        off.level = LevelLayout::new(&off);
        off
    }

    /// For a kernel whose tracing programs lack `bpf_get_current_ancestor_cgroup_id` (before
    /// 5.11): where a task's cgroup lists its ancestors' ids (`cgroup.ancestor_ids`, until 6.0
    /// replaced it with pointers; the helper came before that).
    pub fn ancestor_ids(&self, off: &mut KernelOffsets) -> Result<(), Error> {
        off.task_cgroups = self.member_offset("task_struct", "cgroups")?;
        off.css_set_dfl_cgrp = self.member_offset("css_set", "dfl_cgrp")?;
        off.cgroup_level = self.member_offset("cgroup", "level")?;
        off.cgroup_ancestor_ids = self.member_offset("cgroup", "ancestor_ids")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built BTF: `struct qstr { u64 hash_len; const char *name; }` and
    /// `struct dentry { int x; union { struct qstr d_name; }; }` with the union anonymous.
    fn sample() -> Vec<u8> {
        let strings = b"\0qstr\0hash_len\0name\0dentry\0x\0d_name\0int\0".to_vec();
        let s = |name: &str| {
            let needle = [name.as_bytes(), b"\0"].concat();
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
                .map(|p| p as u32)
                .unwrap()
        };
        let mut types = Vec::new();
        let mut push = |words: &[u32]| words.iter().for_each(|w| types.extend(w.to_le_bytes()));
        // 1: int
        push(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: struct qstr, 2 members, size 16
        push(&[s("qstr"), KIND_STRUCT << 24 | 2, 16]);
        push(&[s("hash_len"), 1, 0]);
        push(&[s("name"), 1, 64]);
        // 3: anonymous union { struct qstr d_name; }
        push(&[0, KIND_UNION << 24 | 1, 16]);
        push(&[s("d_name"), 2, 0]);
        // 4: struct dentry { int x; <anon union at 32 bytes> }
        push(&[s("dentry"), KIND_STRUCT << 24 | 2, 48]);
        push(&[s("x"), 1, 0]);
        push(&[0, 3, 256]);
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend(w.to_le_bytes());
        }
        out.extend(types);
        out.extend(strings);
        out
    }

    #[test]
    fn finds_members_and_looks_inside_anonymous_unions() {
        let btf = Btf::parse(sample()).unwrap();
        assert_eq!(btf.member_offset("qstr", "name").unwrap(), 8);
        assert_eq!(btf.member_offset("dentry", "d_name").unwrap(), 32);
        assert!(matches!(
            btf.member_offset("dentry", "nope"),
            Err(Error::NoMember(..))
        ));
        assert!(matches!(
            btf.member_offset("inode", "x"),
            Err(Error::NoStruct(_))
        ));
    }

    #[test]
    fn rejects_what_is_not_btf() {
        assert!(matches!(Btf::parse(vec![0; 64]), Err(Error::NotBtf)));
        let mut truncated = sample();
        truncated.truncate(40);
        assert!(Btf::parse(truncated).is_err());
    }

    /// A `struct dentry` laid out as in recent kernels (`d_parent` at 24, `d_name` at 32 with
    /// `len` at +4, the inline name at 56, `d_sb` at 104), and variants where a field leaves
    /// the 128 bytes a level reads.
    #[test]
    fn places_each_field_in_a_levels_words() {
        let v612 = KernelOffsets {
            dentry_d_parent: 24,
            dentry_d_name: 32,
            qstr_len: 4,
            qstr_name: 8,
            dentry_d_iname: 56,
            dentry_d_sb: 104,
            ..KernelOffsets::default()
        };
        let level = LevelLayout::new(&v612);
        assert_eq!(
            (
                level.name,
                level.len,
                level.len_shift,
                level.iname,
                level.sb
            ),
            (2, 1, 32, 4, 10)
        );
        let far_sb = LevelLayout::new(&KernelOffsets {
            dentry_d_sb: 24 + 128,
            ..v612
        });
        assert_eq!(far_sb.sb, dentry_common::NOT_IN_LEVEL);
        // An inline name whose four words would run past the read.
        let late_iname = LevelLayout::new(&KernelOffsets {
            dentry_d_iname: 24 + 104,
            ..v612
        });
        assert_eq!(late_iname.iname, dentry_common::NOT_IN_LEVEL);
        // A length across two words cannot be had from one.
        let split_len = LevelLayout::new(&KernelOffsets {
            qstr_len: 6,
            ..v612
        });
        assert_eq!(split_len.len, dentry_common::NOT_IN_LEVEL);
        // A field before d_parent is outside too.
        let early_name = LevelLayout::new(&KernelOffsets {
            dentry_d_name: 8,
            ..v612
        });
        assert_eq!(early_name.name, dentry_common::NOT_IN_LEVEL);
    }

    #[test]
    fn reads_this_machines_kernel() {
        // Every supported kernel has BTF; the offsets must be plausible and distinct.
        let btf = Btf::from_sys().expect("/sys/kernel/btf/vmlinux");
        let mut features = Features::default();
        let off = btf.kernel_offsets(&mut features);
        assert_eq!(features, Features::default(), "every field present");
        assert_eq!(off.qstr_name, 8);
        assert!(off.dentry_d_parent < off.dentry_d_name);
        assert!(off.dentry_d_sb > off.dentry_d_inode);
    }

    #[test]
    fn finds_where_this_kernel_keeps_a_slab_objects_owner() {
        let btf = Btf::from_sys().expect("/sys/kernel/btf/vmlinux");
        let l = btf
            .owner_layout(1, 2, 12)
            .expect("slab and memcg fields present");
        assert_eq!((l.enabled, l.page_offset_base, l.vmemmap_base), (1, 1, 2));
        assert_eq!(l.page_size, 64, "struct page is 64 bytes on 64-bit kernels");
        assert_eq!(l.compound_head, 1, "compound_head is the second word");
        assert!(l.slab_cache < PAGE_WORDS && l.slab_exts < PAGE_WORDS);
        assert_ne!(l.slab_cache, l.slab_exts);
        assert!(l.exts_stride >= 8);
        assert!(l.memcg_parent > l.memcg_cgroup);
    }
}

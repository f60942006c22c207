//! The struct offsets the tracer reads from BTF must be the ones bpftool reports, on this
//! machine's kernel and on every Debian kernel the VM tests boot, 5.10 to 7.x (offsets differ
//! between kernels: reading them at load time is the point), and each of those kernels must
//! leave no feature off for want of a field.
use std::{collections::BTreeMap, path::Path, process::Command};

use dentry_common::NOT_IN_LEVEL;
use tracer::kernel::{btf::Btf, features::Features};
use xtask::kernel::{DEFAULT_KERNELS, Kernel};

/// (struct, member) pairs the kernel programs read.
const FIELDS: &[(&str, &str)] = &[
    ("dentry", "d_parent"),
    ("dentry", "d_name"),
    ("dentry", "d_inode"),
    ("dentry", "d_sb"),
    ("qstr", "name"),
    ("qstr", "len"),
    ("super_block", "s_type"),
    ("super_block", "s_root"),
    ("file_system_type", "name"),
];

/// One type of `bpftool btf dump file F format raw`.
#[derive(Default, Debug)]
struct RawType {
    kind: String,
    name: String,
    /// For typedefs and qualifiers: the type they refer to.
    refers_to: Option<u32>,
    /// (name, type id, bit offset)
    members: Vec<(String, u32, u32)>,
}

fn bpftool_dump(file: &Path) -> BTreeMap<u32, RawType> {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file"])
        .arg(file)
        .args(["format", "raw"])
        .output()
        .expect("bpftool runs (cargo xtask setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut types = BTreeMap::new();
    let mut current: Option<u32> = None;
    let value = |words: &str, key: &str| -> Option<u32> {
        words
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))?
            .parse()
            .ok()
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let (id, rest) = rest.split_once("] ").expect("type header");
            let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = rest.split('\'').nth(1).unwrap_or_default().to_owned();
            let id: u32 = id.parse().expect("type id");
            types.insert(
                id,
                RawType {
                    kind: kind.to_owned(),
                    name,
                    refers_to: value(rest, "type_id"),
                    members: Vec::new(),
                },
            );
            current = Some(id);
        } else if let (Some(id), Some(member)) = (current, line.strip_prefix('\t')) {
            let name = member.split('\'').nth(1).unwrap_or_default().to_owned();
            let (Some(type_id), Some(bits)) =
                (value(member, "type_id"), value(member, "bits_offset"))
            else {
                continue;
            };
            if let Some(t) = types.get_mut(&id) {
                t.members.push((name, type_id, bits));
            }
        }
    }
    types
}

/// `member` (a dotted path) of `struct strukt` as bpftool's dump places it.
fn bpftool_offset(types: &BTreeMap<u32, RawType>, strukt: &str, member: &str) -> Option<u32> {
    fn find(types: &BTreeMap<u32, RawType>, id: u32, member: &str) -> Option<(u32, u32)> {
        let mut t = types.get(&id)?;
        while let (Some(next), "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT") =
            (t.refers_to, t.kind.as_str())
        {
            t = types.get(&next)?;
        }
        for (name, type_id, bits) in &t.members {
            if name == member {
                return Some((*bits, *type_id));
            }
            if name == "(anon)"
                && let Some((inner, inner_type)) = find(types, *type_id, member)
            {
                return Some((bits + inner, inner_type));
            }
        }
        None
    }
    let mut id = types
        .iter()
        .find(|(_, t)| t.kind == "STRUCT" && t.name == strukt)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("bpftool shows no struct {strukt}"));
    let mut bits = 0;
    for part in member.split('.') {
        let (at, next) = find(types, id, part)?;
        bits += at;
        id = next;
    }
    Some(bits / 8)
}

fn compare(label: &str, btf_file: &Path) -> Vec<u32> {
    let ours = Btf::from_file(&btf_file.to_string_lossy()).expect("our reader parses it");
    one_read_per_level(label, &ours);
    let theirs = bpftool_dump(btf_file);
    FIELDS
        .iter()
        .map(|&(s, m)| {
            let a = ours
                .member_offset(s, m)
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let b = bpftool_offset(&theirs, s, m)
                .unwrap_or_else(|| panic!("{label}: bpftool shows no {s}.{m}"));
            assert_eq!(a, b, "{label}: {s}.{m}: ours {a}, bpftool {b}");
            a
        })
        .chain([iname(label, &ours, &theirs), d_rcu(label, &ours, &theirs)])
        .collect()
}

/// The walk's fast path: every field a level needs lies within the words it reads at once
/// (a field outside them costs a read of its own).
fn one_read_per_level(label: &str, ours: &Btf) {
    let off = offsets(label, ours);
    let level = off.level;
    for (what, index) in [
        ("d_name.name", level.name),
        ("d_name.len", level.len),
        ("inline name", level.iname),
        ("d_sb", level.sb),
    ] {
        assert_ne!(
            index, NOT_IN_LEVEL,
            "{label}: {what} outside a level's read: {off:?}"
        );
    }
    let word = |index: u32| off.dentry_d_parent + 8 * index;
    assert_eq!(
        word(level.name),
        off.dentry_d_name + off.qstr_name,
        "{label}"
    );
    assert_eq!(
        word(level.len) + level.len_shift / 8,
        off.dentry_d_name + off.qstr_len,
        "{label}"
    );
    assert_eq!(word(level.iname), off.dentry_d_iname, "{label}");
    assert_eq!(word(level.sb), off.dentry_d_sb, "{label}");
}

/// The inline name storage is `d_iname` up to 6.13 and `d_shortname` since 6.14.
fn iname(label: &str, ours: &Btf, theirs: &BTreeMap<u32, RawType>) -> u32 {
    let a = offsets(label, ours).dentry_d_iname;
    let b = bpftool_offset(theirs, "dentry", "d_iname")
        .or_else(|| bpftool_offset(theirs, "dentry", "d_shortname"))
        .unwrap_or_else(|| panic!("{label}: bpftool shows no dentry.d_iname nor d_shortname"));
    assert_eq!(a, b, "{label}: dentry inline name: ours {a}, bpftool {b}");
    a
}

/// The offsets, with no feature off on this kernel.
fn offsets(label: &str, ours: &Btf) -> dentry_common::KernelOffsets {
    let mut features = Features::default();
    let off = ours.kernel_offsets(&mut features);
    assert_eq!(features.lines(), Vec::<String>::new(), "{label}");
    off
}

/// `__d_free`'s argument is `dentry.d_u.d_rcu` until 7.x and `dentry.d_rcu` (in an anonymous
/// union) since.
fn d_rcu(label: &str, ours: &Btf, theirs: &BTreeMap<u32, RawType>) -> u32 {
    let a = offsets(label, ours).dentry_d_rcu;
    let b = bpftool_offset(theirs, "dentry", "d_u.d_rcu")
        .or_else(|| bpftool_offset(theirs, "dentry", "d_rcu"))
        .unwrap_or_else(|| panic!("{label}: bpftool shows no dentry.d_u.d_rcu nor d_rcu"));
    assert_eq!(a, b, "{label}: dentry d_rcu: ours {a}, bpftool {b}");
    a
}

/// Where each kernel keeps a slab object's owner (docs/architecture.md, "Kernel ranges"):
/// bpftool's offsets, and the vector's flag as each range defines it.
fn owner(label: &str, ours: &Btf, file: &Path) -> dentry_common::OwnerLayout {
    let theirs = bpftool_dump(file);
    let l = ours
        .owner_layout(1, 2, 12)
        .unwrap_or_else(|e| panic!("{label}: live gauges' fields: {e}"));
    let slab = if theirs
        .values()
        .any(|t| t.kind == "STRUCT" && t.name == "slab")
    {
        "slab"
    } else {
        "page"
    };
    let exts = ["memcg_data", "obj_cgroups", "obj_exts"]
        .iter()
        .find_map(|m| bpftool_offset(&theirs, slab, m))
        .unwrap_or_else(|| panic!("{label}: bpftool shows no {slab} charge vector"));
    assert_eq!(l.slab_exts * 8, exts, "{label}: {slab}'s charge vector");
    let cache = bpftool_offset(&theirs, slab, "slab_cache").expect("slab_cache");
    assert_eq!(l.slab_cache * 8, cache, "{label}: {slab}.slab_cache");
    let head = bpftool_offset(&theirs, "page", "compound_head")
        .or_else(|| bpftool_offset(&theirs, "page", "compound_info"))
        .expect("page.compound_head or compound_info");
    assert_eq!(l.compound_head * 8, head, "{label}: the tail page's link");
    l
}

#[test]
fn offsets_match_bpftool_on_every_tested_kernel() {
    let mut per_kernel = vec![(
        "host".to_owned(),
        compare("host", Path::new("/sys/kernel/btf/vmlinux")),
    )];
    for series in DEFAULT_KERNELS {
        let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("{series}: {e:#}"));
        let btf = kernel.btf().unwrap_or_else(|e| panic!("{series}: {e:#}"));
        per_kernel.push((kernel.release.clone(), compare(&kernel.release, &btf)));
        let ours = Btf::from_file(&btf.to_string_lossy()).expect("our reader parses it");
        let l = owner(&kernel.release, &ours, &btf);
        eprintln!("{}: owner layout {l:?}", kernel.release);
    }
    // On 6.18 (this machine) and 7.x dentry.d_name sits in an anonymous union, so those cases
    // exercise the nested lookup; 5.10, 6.1 and 6.12 have it as a direct member.
    for (kernel, offsets) in &per_kernel {
        eprintln!("{kernel}: {offsets:?}");
    }
}

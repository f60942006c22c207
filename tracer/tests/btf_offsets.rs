//! The struct offsets the tracer reads from BTF must be the ones bpftool reports, on this
//! machine's kernel and on the two Debian kernels the VM tests boot (offsets differ between
//! kernels: reading them at load time is the point).
use std::{collections::BTreeMap, path::Path, process::Command};

use dentry_common::NOT_IN_LEVEL;
use tracer::kernel::btf::Btf;
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

fn bpftool_offset(types: &BTreeMap<u32, RawType>, strukt: &str, member: &str) -> Option<u32> {
    fn find(types: &BTreeMap<u32, RawType>, id: u32, member: &str) -> Option<u32> {
        let mut t = types.get(&id)?;
        while let (Some(next), "TYPEDEF" | "CONST" | "VOLATILE" | "RESTRICT") =
            (t.refers_to, t.kind.as_str())
        {
            t = types.get(&next)?;
        }
        for (name, type_id, bits) in &t.members {
            if name == member {
                return Some(*bits);
            }
            if name == "(anon)"
                && let Some(inner) = find(types, *type_id, member)
            {
                return Some(bits + inner);
            }
        }
        None
    }
    let id = types
        .iter()
        .find(|(_, t)| t.kind == "STRUCT" && t.name == strukt)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("bpftool shows no struct {strukt}"));
    find(types, id, member).map(|bits| bits / 8)
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
        .chain(std::iter::once(iname(label, &ours, &theirs)))
        .collect()
}

/// The walk's fast path: every field a level needs lies within the words it reads at once
/// (a field outside them costs a read of its own).
fn one_read_per_level(label: &str, ours: &Btf) {
    let off = ours
        .kernel_offsets()
        .unwrap_or_else(|e| panic!("{label}: {e}"));
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
    let a = ours
        .kernel_offsets()
        .unwrap_or_else(|e| panic!("{label}: {e}"))
        .dentry_d_iname;
    let b = bpftool_offset(theirs, "dentry", "d_iname")
        .or_else(|| bpftool_offset(theirs, "dentry", "d_shortname"))
        .unwrap_or_else(|| panic!("{label}: bpftool shows no dentry.d_iname nor d_shortname"));
    assert_eq!(a, b, "{label}: dentry inline name: ours {a}, bpftool {b}");
    a
}

#[test]
fn offsets_match_bpftool_on_three_kernels() {
    let mut per_kernel = vec![(
        "host".to_owned(),
        compare("host", Path::new("/sys/kernel/btf/vmlinux")),
    )];
    for series in DEFAULT_KERNELS {
        let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("{series}: {e:#}"));
        let btf = kernel.btf().unwrap_or_else(|e| panic!("{series}: {e:#}"));
        per_kernel.push((kernel.release.clone(), compare(&kernel.release, &btf)));
    }
    // On 6.18 (this machine) dentry.d_name sits in an anonymous union, so the host case
    // exercises the nested lookup; 6.1 and 6.12 have it as a direct member.
    for (kernel, offsets) in &per_kernel {
        eprintln!("{kernel}: {offsets:?}");
    }
}

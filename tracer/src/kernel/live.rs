//! Live dentries per owner as userspace sees them: where the kernel keeps a slab object's
//! owner, reading the per-CPU deltas, and folding removed cgroups into their parents.
use std::{collections::BTreeMap, path::Path};

use aya::{Ebpf, maps::PerCpuHashMap};
use dentry_common::{Live, OwnerLayout, ROOT_OWNER, names};

use crate::kernel::{btf::Btf, counters::Error};

/// One owner's live dentries (docs/counters.md, "Live").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub dentries: u64,
    pub negative: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Held {
    fn add_assign(&mut self, other: Held) {
        self.dentries += other.dentries;
        self.negative += other.negative;
        self.bytes += other.bytes;
    }
}

/// The page size (`sysconf`; 4096 if it will not say).
pub fn page_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Why live counting is off on this kernel, or what the programs need for it.
pub fn layout(btf: &Btf) -> Result<OwnerLayout, String> {
    if cfg!(not(target_arch = "x86_64")) {
        // The programs locate a dentry's slab through x86-64's direct map and vmemmap bases.
        return Err(format!(
            "live dentries are counted on x86-64 only (this tracer is built for {})",
            std::env::consts::ARCH
        ));
    }
    let kallsyms = std::fs::read_to_string("/proc/kallsyms")
        .map_err(|e| format!("reading /proc/kallsyms: {e}"))?;
    let symbol = |name: &str| -> Result<u64, String> {
        kallsyms
            .lines()
            .find_map(|line| {
                let mut f = line.split_whitespace();
                let (addr, _, sym) = (f.next()?, f.next()?, f.next()?);
                (sym == name).then(|| u64::from_str_radix(addr, 16).ok())?
            })
            .filter(|addr| *addr != 0)
            .ok_or_else(|| {
                format!(
                    "{name} has no address in /proc/kallsyms (a kernel without \
                     CONFIG_RANDOMIZE_MEMORY, or kptr_restrict hiding addresses)"
                )
            })
    };
    let page = page_bytes();
    if !page.is_power_of_two() {
        return Err(format!("page size {page} is not a power of two"));
    }
    btf.owner_layout(
        symbol("page_offset_base")?,
        symbol("vmemmap_base")?,
        page.trailing_zeros(),
    )
    .map_err(|e| e.to_string())
}

/// Each owner's counts summed over CPUs; `parent` is whichever CPU recorded it.
pub fn per_owner(ebpf: &Ebpf) -> Result<BTreeMap<u64, Live>, Error> {
    let name = names::LIVE;
    let Some(map) = ebpf.map(name) else {
        return Ok(BTreeMap::new());
    };
    let err = |source| Error::Map { map: name, source };
    let live: PerCpuHashMap<_, u64, Live> = PerCpuHashMap::try_from(map).map_err(err)?;
    let mut out = BTreeMap::new();
    for entry in live.iter() {
        let (owner, per_cpu) = entry.map_err(err)?;
        let total = per_cpu.iter().fold(Live::default(), |acc, v| Live {
            dentries: acc.dentries + v.dentries,
            positive: acc.positive + v.positive,
            bytes: acc.bytes + v.bytes,
            parent: acc.parent.max(v.parent),
        });
        out.insert(owner, total);
    }
    Ok(out)
}

/// The dentry cache's object size as the kernel programs last read it (0 before any).
pub fn object_size(ebpf: &Ebpf) -> u64 {
    ebpf.map(names::BASES)
        .and_then(|map| aya::maps::Array::<_, u64>::try_from(map).ok())
        .and_then(|array| array.get(&2, 0).ok())
        .unwrap_or(0)
}

/// Moves the counts of owners whose cgroup is gone to the nearest ancestor that is not, as
/// the kernel moves their charges (frees after that are counted there already, so the sum is
/// right); then clamps what is left at 0 per field and reports negatives as what they are.
pub fn fold(raw: &BTreeMap<u64, Live>, alive: impl Fn(u64) -> bool) -> BTreeMap<u64, Held> {
    let mut sums: BTreeMap<u64, (i64, i64, i64)> = BTreeMap::new();
    for (&owner, live) in raw {
        let mut at = owner;
        // Parents are few levels up; the bound only guards against a cycle of stale ids.
        for _ in 0..16 {
            if at == ROOT_OWNER || alive(at) {
                break;
            }
            match raw.get(&at).map(|l| l.parent) {
                Some(parent) if parent != 0 => at = parent,
                _ => break,
            }
        }
        let sum = sums.entry(at).or_default();
        sum.0 += live.dentries;
        sum.1 += live.positive;
        sum.2 += live.bytes;
    }
    sums.into_iter()
        .map(|(owner, (dentries, positive, bytes))| {
            let dentries = dentries.max(0) as u64;
            let positive = (positive.max(0) as u64).min(dentries);
            let held = Held {
                dentries,
                negative: dentries - positive,
                bytes: bytes.max(0) as u64,
            };
            (owner, held)
        })
        .collect()
}

/// Every owner's live dentries, removed cgroups folded into their parents (asked of the
/// kernel through the cgroup2 mount at `cgroup_root`; where it will not say, an owner is taken
/// as alive and keeps its own row).
pub fn held(ebpf: &Ebpf, cgroup_root: &Path) -> Result<BTreeMap<u64, Held>, Error> {
    let raw = per_owner(ebpf)?;
    let mount = std::fs::File::open(cgroup_root).ok();
    Ok(fold(&raw, |id| {
        mount
            .as_ref()
            .and_then(|m| crate::owners::cgroup::exists(m, id))
            .unwrap_or(true)
    }))
}

/// The dentry cache's memory from `/proc/slabinfo` (its slabs' pages), if readable.
pub fn cache_bytes(slabinfo: &str, page_bytes: u64) -> Option<u64> {
    // name active_objs num_objs objsize objperslab pagesperslab : tunables ... : slabdata
    // active_slabs num_slabs sharedavail
    let line = slabinfo.lines().find(|l| l.starts_with("dentry "))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let pages_per_slab: u64 = fields.get(5)?.parse().ok()?;
    let slabdata = fields.iter().position(|f| *f == "slabdata")?;
    let slabs: u64 = fields.get(slabdata + 2)?.parse().ok()?;
    Some(slabs * pages_per_slab * page_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(dentries: i64, positive: i64, parent: u64) -> Live {
        Live {
            dentries,
            positive,
            bytes: dentries * 200,
            parent,
        }
    }

    #[test]
    fn a_removed_container_shows_under_its_pod_once() {
        // Container 30 (pod 20) made 1000 dentries and was removed; 100 were freed after the
        // kernel moved its charges, so the pod's own entry counts them as -100.
        let raw = BTreeMap::from([
            (30, live(1000, 10, 20)),
            (20, live(-100, 0, 2)),
            (40, live(5, 5, 20)),
        ]);
        let held = fold(&raw, |id| id != 30);
        assert_eq!(held.get(&30), None);
        assert_eq!(
            held[&20],
            Held {
                dentries: 900,
                negative: 890,
                bytes: 180_000
            }
        );
        assert_eq!(held[&40].dentries, 5);
        let total: u64 = held.values().map(|h| h.dentries).sum();
        assert_eq!(total, 905);
    }

    #[test]
    fn removed_ancestors_are_skipped_and_the_root_stays() {
        let raw = BTreeMap::from([
            (31, live(7, 0, 30)),
            (30, live(1, 0, 20)),
            (ROOT_OWNER, live(3, 3, 0)),
        ]);
        let held = fold(&raw, |id| id == 20);
        assert_eq!(held[&20].dentries, 8);
        assert_eq!(held[&ROOT_OWNER].negative, 0);
    }

    #[test]
    fn the_cache_is_its_slabs_pages() {
        let text = "slabinfo - version: 2.1\n\
                    dentry  10724  10752  192  21  1 : tunables 0 0 0 : slabdata 512 512 0\n";
        assert_eq!(cache_bytes(text, 4096), Some(512 * 4096));
        assert_eq!(cache_bytes("dentryx 1 2 3", 4096), None);
    }

    #[test]
    fn never_below_zero() {
        let raw = BTreeMap::from([(9, live(-4, -1, 0))]);
        assert_eq!(fold(&raw, |_| true)[&9], Held::default());
    }
}

//! Live dentries per owner as userspace sees them: where the kernel keeps a slab object's
//! owner, reading the per-CPU deltas, and folding removed cgroups into their parents.
use std::collections::BTreeMap;

use aya::{Ebpf, maps::PerCpuHashMap};
use dentry_common::{BASE_CANDIDATES, Live, OwnerLayout, ROOT_OWNER, names};

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
    let kallsyms = std::fs::read_to_string("/proc/kallsyms")
        .map_err(|e| format!("reading /proc/kallsyms: {e}"))?;
    // Without CAP_SYSLOG the kernel shows every address as 0 (where perf_event_paranoid is
    // above 1, the default): say that, not that the symbol is missing.
    let lacks_syslog = super::privileges::effective()
        .is_some_and(|caps| !super::privileges::has(caps, super::privileges::CAP_SYSLOG));
    let symbol = |name: &str| {
        symbol(&kallsyms, name).map_err(|e| {
            if lacks_syslog {
                format!(
                    "{name} has no address in /proc/kallsyms: the tracer lacks CAP_SYSLOG, \
                     without which the kernel hides its addresses"
                )
            } else {
                e
            }
        })
    };
    let page = page_bytes();
    if !page.is_power_of_two() {
        return Err(format!("page size {page} is not a power of two"));
    }
    let page_shift = page.trailing_zeros();
    let layout = if cfg!(target_arch = "x86_64") {
        // x86-64 randomizes both bases at boot and keeps them in variables.
        btf.owner_layout(
            symbol("page_offset_base")?,
            symbol("vmemmap_base")?,
            page_shift,
        )
    } else if cfg!(target_arch = "aarch64") {
        // arm64 builds them in: the candidates for this kernel's address space, each checked
        // in the kernel against the dentry cache before it is used.
        // `_text` is a data symbol to kallsyms (absent without CONFIG_KALLSYMS_ALL: 5.10, 6.1).
        let text = symbol("_text").or_else(|_| symbol("_stext"))?;
        let mut layout = btf
            .owner_layout(0, 0, page_shift)
            .map_err(|e| e.to_string())?;
        layout.candidates = arm64_bases(text, page_shift, layout.page_size);
        Ok(layout)
    } else {
        return Err(format!(
            "live dentries are counted on x86-64 and arm64 (this tracer is built for {})",
            std::env::consts::ARCH
        ));
    }
    .map_err(|e| e.to_string())?;
    Ok(layout)
}

/// A symbol's address in `/proc/kallsyms`.
fn symbol(kallsyms: &str, name: &str) -> Result<u64, String> {
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
                "{name} has no address in /proc/kallsyms (kptr_restrict hiding addresses, or a \
                 kernel without CONFIG_KALLSYMS_ALL{})",
                if cfg!(target_arch = "x86_64") {
                    " or CONFIG_RANDOMIZE_MEMORY"
                } else {
                    ""
                }
            )
        })
}

/// arm64's linear map and `struct page` array bases (`PAGE_OFFSET`, `VMEMMAP_START`) for a
/// kernel whose image starts at `text`: constants of its build that no variable holds. The
/// image lies in the first half of the vmalloc area, which starts at `_PAGE_END(VA_BITS) =
/// -(1 << (VA_BITS - 1))` (KASLR moves it within), so of the sizes a page size allows (4 KiB:
/// 39 or 48 bits; 16 KiB: 36 or 47; 64 KiB: 42 or 48, and 52 where 48 would be) the
/// smaller is the build's when the image lies in its area. `VMEMMAP_START` has had three
/// definitions (5.4–5.10, 5.11–6.8, 6.9+). Each candidate is `(PAGE_OFFSET, VMEMMAP_START)`;
/// the programs take the one under which a dentry lies in a slab of the cache named `dentry`.
pub fn arm64_bases(text: u64, page_shift: u32, page_struct: u32) -> [[u64; 2]; BASE_CANDIDATES] {
    let (small, large) = match page_shift {
        14 => (36, 47),
        16 => (42, 48),
        _ => (39, 48),
    };
    let va_bits: u32 = if text >= (!0u64) << (small - 1) {
        small
    } else {
        large
    };
    let page_offset = (!0u64) << va_bits;
    let struct_shift = (page_struct.max(1) as u64)
        .next_power_of_two()
        .trailing_zeros();
    // The linear map's span: from PAGE_OFFSET to _PAGE_END(VA_BITS_MIN), half the space.
    let range = 1u64 << (va_bits - 1);
    let size = (range >> page_shift) << struct_shift;
    let vmemmap_shift = page_shift.saturating_sub(struct_shift);
    // 52-bit builds (Debian's since 6.12, LPA2) put the image where 48-bit ones do
    // (`VA_BITS_MIN` is 48): PAGE_OFFSET is -(1 << 52), and the `struct page` array spans the
    // linear map from there to _PAGE_END(48).
    let wide_offset = (!0u64) << 52;
    let wide_size = (((!0u64) << 47).wrapping_sub(wide_offset) >> page_shift) << struct_shift;
    let wide = if va_bits == 48 {
        [wide_offset, (!0u64 << 30).wrapping_sub(wide_size)]
    } else {
        [0, 0]
    };
    [
        // 6.9+: VMEMMAP_END = -1 GiB.
        [page_offset, (!0u64 << 30).wrapping_sub(size)],
        // 5.11–6.8: -(1 << (VA_BITS - VMEMMAP_SHIFT)).
        [page_offset, !0u64 << (va_bits - vmemmap_shift)],
        // 5.4–5.10: -VMEMMAP_SIZE - 2 MiB.
        [page_offset, 0u64.wrapping_sub(size).wrapping_sub(1 << 21)],
        // 52-bit, 6.9+.
        wide,
    ]
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
/// kernel through the cgroup2 `mount`; where it will not say, an owner is taken as alive and
/// keeps its own row).
pub fn held(
    ebpf: &Ebpf,
    mount: &crate::owners::cgroup::Mount,
) -> Result<BTreeMap<u64, Held>, Error> {
    let raw = per_owner(ebpf)?;
    Ok(fold(&raw, |id| mount.exists(id).unwrap_or(true)))
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

    #[test]
    fn arm64_bases_for_a_48_bit_kernel_wherever_kaslr_put_it() {
        // Debian's arm64 kernels: 48-bit VA, 4 KiB pages, 64-byte struct page.
        for text in [
            0xffff_8000_0800_0000,
            0xffff_a3c1_2e40_0000,
            0xffff_dff0_0000_0000,
        ] {
            let c = arm64_bases(text, 12, 64);
            assert!(
                c[..3].iter().all(|[d, _]| *d == 0xffff_0000_0000_0000),
                "{c:x?}"
            );
            assert_eq!(c[0][1], 0xffff_fdff_c000_0000, "6.9+");
            assert_eq!(c[1][1], 0xffff_fc00_0000_0000, "5.11 to 6.8");
            assert_eq!(c[2][1], 0xffff_fdff_ffe0_0000, "5.4 to 5.10");
            assert_eq!(
                c[3],
                [0xfff0_0000_0000_0000, 0xffff_c1ff_c000_0000],
                "52-bit"
            );
        }
        // A 39-bit kernel (Android's, some embedded boards).
        let c = arm64_bases(0xffff_ffc0_0800_0000, 12, 64);
        assert_eq!(c[0][0], 0xffff_ff80_0000_0000);
    }

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

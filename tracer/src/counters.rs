//! Reading the per-CPU, per-cgroup counters the kernel programs keep.
use std::collections::BTreeMap;

use aya::{Ebpf, maps::PerCpuHashMap};
use dentry_common::{COUNTERS_MAP, Counters};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the eBPF object has no {0} map")]
    MissingMap(&'static str),
    #[error("reading the {map} map: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// Totals per cgroup id, summed over CPUs.
pub fn snapshot(ebpf: &Ebpf) -> Result<BTreeMap<u64, Counters>, Error> {
    let map = ebpf
        .map(COUNTERS_MAP)
        .ok_or(Error::MissingMap(COUNTERS_MAP))?;
    let map_err = |source| Error::Map {
        map: COUNTERS_MAP,
        source,
    };
    let counters: PerCpuHashMap<_, u64, Counters> =
        PerCpuHashMap::try_from(map).map_err(map_err)?;
    let mut totals = BTreeMap::new();
    for entry in counters.iter() {
        let (cgroup, per_cpu) = entry.map_err(map_err)?;
        totals.insert(cgroup, sum(per_cpu.iter()));
    }
    Ok(totals)
}

/// Adds up one cgroup's per-CPU slots.
pub fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a Counters>) -> Counters {
    per_cpu
        .into_iter()
        .fold(Counters::default(), |acc, c| Counters {
            alloc: acc.alloc + c.alloc,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_cpu() {
        let cpus = [
            Counters { alloc: 3 },
            Counters { alloc: 0 },
            Counters { alloc: 39 },
        ];
        assert_eq!(sum(&cpus).alloc, 42);
    }
}

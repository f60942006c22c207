//! Reading the per-CPU counters the kernel programs keep.
use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{PerCpuArray, PerCpuHashMap},
};
use dentry_common::{Counters, names};

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
pub fn per_cgroup(ebpf: &Ebpf) -> Result<BTreeMap<u64, Counters>, Error> {
    let name = names::COUNTERS;
    let map = ebpf.map(name).ok_or(Error::MissingMap(name))?;
    let err = |source| Error::Map { map: name, source };
    let counters: PerCpuHashMap<_, u64, Counters> = PerCpuHashMap::try_from(map).map_err(err)?;
    let mut totals = BTreeMap::new();
    for entry in counters.iter() {
        let (cgroup, per_cpu) = entry.map_err(err)?;
        totals.insert(cgroup, sum(per_cpu.iter()));
    }
    Ok(totals)
}

/// The sum over CPUs of a one-slot per-CPU `u64` array (drops, the benchmark floor).
pub fn per_cpu_total(ebpf: &Ebpf, name: &'static str) -> Result<u64, Error> {
    let map = ebpf.map(name).ok_or(Error::MissingMap(name))?;
    let err = |source| Error::Map { map: name, source };
    let array: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(err)?;
    Ok(array.get(&0, 0).map_err(err)?.iter().sum())
}

/// Adds up per-CPU slots (or per-cgroup totals).
pub fn sum<'a>(counters: impl IntoIterator<Item = &'a Counters>) -> Counters {
    counters
        .into_iter()
        .fold(Counters::default(), |acc, c| acc.add(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_field_of_every_cpu() {
        let cpus = [
            Counters {
                alloc: 3,
                negative: 1,
                pruned: 5,
                ..Default::default()
            },
            Counters::default(),
            Counters {
                alloc: 39,
                positive: 2,
                shrink_calls: 1,
                prune_calls: 4,
                ..Default::default()
            },
        ];
        let total = sum(&cpus);
        assert_eq!(
            total,
            Counters {
                alloc: 42,
                positive: 2,
                negative: 1,
                shrink_calls: 1,
                prune_calls: 4,
                pruned: 5
            }
        );
    }
}

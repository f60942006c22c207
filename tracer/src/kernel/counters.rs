//! Reading the per-CPU counters the kernel programs keep.
use std::collections::{BTreeMap, BTreeSet};

use aya::{
    Ebpf,
    maps::{PerCpuArray, PerCpuHashMap},
};
use dentry_common::{Counters, HotCounters, names};

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

/// Totals per cgroup id, summed over CPUs: each CPU's `COUNTERS` value, or its hot slot where
/// that holds the cgroup (see `HotCounters`), plus what hits on a busy CPU counted aside
/// (`SPILLED`). Two readings can go backwards (the kernel may
/// write a slot back between the two map reads); `Monotonic` evens that out.
pub fn per_cgroup(ebpf: &Ebpf) -> Result<BTreeMap<u64, Counters>, Error> {
    // The hot slots first: a slot written back after this read is in the hash read below.
    let name = names::HOT_COUNTERS;
    let map = ebpf.map(name).ok_or(Error::MissingMap(name))?;
    let err = |source| Error::Map { map: name, source };
    let hot: PerCpuArray<_, HotCounters> = PerCpuArray::try_from(map).map_err(err)?;
    let hot = hot.get(&0, 0).map_err(err)?;

    let name = names::COUNTERS;
    let map = ebpf.map(name).ok_or(Error::MissingMap(name))?;
    let err = |source| Error::Map { map: name, source };
    let counters: PerCpuHashMap<_, u64, Counters> = PerCpuHashMap::try_from(map).map_err(err)?;
    let mut hashed = Vec::new();
    for entry in counters.iter() {
        let (cgroup, per_cpu) = entry.map_err(err)?;
        hashed.push((cgroup, per_cpu.to_vec()));
    }
    let mut totals = merge(hashed, &hot);

    // Hits that found their CPU busy counted aside, only ever added to.
    let name = names::SPILLED;
    let map = ebpf.map(name).ok_or(Error::MissingMap(name))?;
    let err = |source| Error::Map { map: name, source };
    let spilled: PerCpuHashMap<_, u64, Counters> = PerCpuHashMap::try_from(map).map_err(err)?;
    for entry in spilled.iter() {
        let (cgroup, per_cpu) = entry.map_err(err)?;
        let total = totals.entry(cgroup).or_default();
        *total = total.add(&sum(per_cpu.iter()));
    }
    Ok(totals)
}

/// The cgroups the CPUs' counting slots hold now. A cgroup that is gone never enters a slot
/// again (no task of it runs), so one no slot holds has no write-back in flight.
pub fn slot_cgroups(ebpf: &Ebpf) -> Result<BTreeSet<u64>, Error> {
    let name = names::HOT_COUNTERS;
    let map = ebpf.map(name).ok_or(Error::MissingMap(name))?;
    let err = |source| Error::Map { map: name, source };
    let hot: PerCpuArray<_, HotCounters> = PerCpuArray::try_from(map).map_err(err)?;
    let hot = hot.get(&0, 0).map_err(err)?;
    Ok(hot.iter().map(|h| h.cgroup).filter(|&c| c != 0).collect())
}

/// Deletes a cgroup's `COUNTERS` and `SPILLED` entries (those it has; see `run::retire`).
pub fn remove(ebpf: &mut Ebpf, cgroup: u64) -> Result<(), Error> {
    for name in [names::COUNTERS, names::SPILLED] {
        let map = ebpf.map_mut(name).ok_or(Error::MissingMap(name))?;
        let err = |source| Error::Map { map: name, source };
        let mut map: PerCpuHashMap<_, u64, Counters> = PerCpuHashMap::try_from(map).map_err(err)?;
        match map.remove(&cgroup) {
            Ok(()) => {}
            // Not there (a cgroup that never spilled): ENOENT.
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// Per cgroup, the sum over CPUs of the larger of its hash value and the CPU's hot slot when
/// that holds the cgroup. `hashed` and `hot` are indexed by CPU alike.
pub fn merge(hashed: Vec<(u64, Vec<Counters>)>, hot: &[HotCounters]) -> BTreeMap<u64, Counters> {
    let mut per_cpu: BTreeMap<u64, Vec<Counters>> = hashed.into_iter().collect();
    for (cpu, slot) in hot.iter().enumerate() {
        if slot.cgroup == 0 {
            continue;
        }
        let values = per_cpu.entry(slot.cgroup).or_default();
        if values.len() <= cpu {
            values.resize(cpu + 1, Counters::default());
        }
        values[cpu] = values[cpu].max(&slot.counters);
    }
    per_cpu
        .into_iter()
        .map(|(cgroup, values)| (cgroup, sum(&values)))
        .collect()
}

/// Keeps each cgroup's totals from going backwards between readings. Every reading is a lower
/// bound of the true count at its time and the true count only grows, so the field-wise
/// maximum with the last reading is still a lower bound, and the counters stay counters for
/// Prometheus (a decrease would read as a reset).
#[derive(Debug, Default)]
pub struct Monotonic {
    last: BTreeMap<u64, Counters>,
}

impl Monotonic {
    pub fn apply(&mut self, mut totals: BTreeMap<u64, Counters>) -> BTreeMap<u64, Counters> {
        for (cgroup, now) in totals.iter_mut() {
            if let Some(before) = self.last.get(cgroup) {
                *now = now.max(before);
            }
        }
        self.last.clone_from(&totals);
        totals
    }
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

    fn allocs(n: u64) -> Counters {
        Counters {
            alloc: n,
            ..Default::default()
        }
    }

    fn hot(cgroup: u64, alloc: u64) -> HotCounters {
        HotCounters {
            cgroup,
            counters: allocs(alloc),
            ..Default::default()
        }
    }

    #[test]
    fn a_hot_slot_replaces_its_cpus_older_hash_value() {
        // CPU 0 counts cgroup 7 in its slot (hash behind at 10); CPU 1 wrote 7 back at 5 and
        // moved on to cgroup 9, which is in no hash entry yet; CPU 2 never counted.
        let hashed = vec![(7, vec![allocs(10), allocs(5), allocs(0)])];
        let slots = [hot(7, 25), hot(9, 3), HotCounters::default()];
        let totals = merge(hashed, &slots);
        assert_eq!(totals.len(), 2);
        assert_eq!(totals[&7].alloc, 30);
        assert_eq!(totals[&9].alloc, 3);
    }

    #[test]
    fn a_slot_read_before_its_write_back_does_not_count_twice() {
        // The slot was read at 25, then written back (hash 25) before the hash was read.
        let totals = merge(vec![(7, vec![allocs(25)])], &[hot(7, 25)]);
        assert_eq!(totals[&7].alloc, 25);
    }

    #[test]
    fn readings_never_go_backwards() {
        let mut m = Monotonic::default();
        let read = |n: u64| BTreeMap::from([(7, allocs(n)), (8, allocs(1))]);
        assert_eq!(m.apply(read(30))[&7].alloc, 30);
        // A racing write-back made this reading see the CPU's older hash value.
        assert_eq!(m.apply(read(20))[&7].alloc, 30);
        assert_eq!(m.apply(read(41))[&7].alloc, 41);
        // A cgroup no longer read is forgotten, not carried.
        assert!(!m.apply(BTreeMap::from([(8, allocs(2))])).contains_key(&7));
    }

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

//! Retiring removed cgroups from the kernel's counter maps. `COUNTERS` and `SPILLED` hold an
//! entry per cgroup that ever counted, and the kernel never removes one: on a node whose
//! containers come and go (restarts, Jobs, CronJobs) the 16,384 entries fill in days, and a
//! full map drops the counts of every new container. Their counts are in the Prometheus
//! series already, so a cgroup that is gone can leave the map once
//! - it was gone before this poll read the map (gone at two checks in a row: the first could
//!   come between its last events and the read that took them),
//! - every count it had is delivered to the series (none held back for its name), and
//! - no CPU's counting slot holds it (a slot's write-back would bring the entry back; a gone
//!   cgroup never enters a slot again, no task of it runs).
//!
//! Gone means the kernel says so (a handle on the cgroup2 mount, with CAP_DAC_READ_SEARCH),
//! or, where it will not say, that a walk of the cgroup tree found it and a later one did not.
//! A cgroup no walk found (it lived less than a resolve interval) stays where the kernel will
//! not say.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use dentry_common::Counters;

/// Polls a retired id is still dropped from readings: a write-back that was in flight when
/// it was removed can bring it back once, carrying only counts already delivered.
const REMEMBER_POLLS: u32 = 3;

#[derive(Debug, Default)]
pub struct Retirement {
    /// Counting cgroups a walk has found.
    walked: HashSet<u64>,
    /// Counting cgroups found gone at the last check.
    gone: HashSet<u64>,
    /// Retired ids, with the polls left to drop them from readings.
    retired: HashMap<u64, u32>,
}

impl Retirement {
    /// Drops from a reading the cgroups retired lately.
    pub fn filter(&mut self, totals: &mut BTreeMap<u64, Counters>) {
        self.retired.retain(|id, polls| {
            totals.remove(id);
            *polls -= 1;
            *polls > 0
        });
    }

    /// The cgroups of this poll's `totals` to retire now. `walked` says whether the latest
    /// walk found a cgroup, `exists` what the kernel says (`None`: it will not), `delivered`
    /// whether all of a cgroup's counts are in the series, `in_slot` which cgroups the CPUs'
    /// slots hold.
    pub fn due(
        &mut self,
        totals: &BTreeMap<u64, Counters>,
        walked: impl Fn(u64) -> bool,
        exists: impl Fn(u64) -> Option<bool>,
        delivered: impl Fn(u64, &Counters) -> bool,
        in_slot: &BTreeSet<u64>,
    ) -> Vec<u64> {
        let mut due = Vec::new();
        let mut gone = HashSet::new();
        for (&id, now) in totals {
            let found = walked(id);
            let is_gone = match exists(id) {
                Some(exists) => !exists,
                None => !found && self.walked.contains(&id),
            };
            if found {
                self.walked.insert(id);
            }
            if !is_gone {
                continue;
            }
            if self.gone.contains(&id) && delivered(id, now) && !in_slot.contains(&id) {
                due.push(id);
            } else {
                gone.insert(id);
            }
        }
        self.gone = gone;
        // Only what is still counted is worth remembering.
        self.walked
            .retain(|id| totals.contains_key(id) && !due.contains(id));
        due
    }

    /// Records that `ids` left the kernel's maps.
    pub fn retired(&mut self, ids: &[u64]) {
        for &id in ids {
            self.retired.insert(id, REMEMBER_POLLS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(ids: &[u64]) -> BTreeMap<u64, Counters> {
        ids.iter()
            .map(|&id| {
                let c = Counters {
                    alloc: id,
                    ..Default::default()
                };
                (id, c)
            })
            .collect()
    }

    fn no_slots() -> BTreeSet<u64> {
        BTreeSet::new()
    }

    #[test]
    fn a_cgroup_the_kernel_says_is_gone_retires_at_its_second_check() {
        let mut r = Retirement::default();
        let t = totals(&[7, 8]);
        let gone = |id: u64| Some(id != 7);
        let due = r.due(&t, |_| false, gone, |_, _| true, &no_slots());
        assert!(due.is_empty(), "gone at one check only: {due:?}");
        assert_eq!(
            r.due(&t, |_| false, gone, |_, _| true, &no_slots()),
            vec![7]
        );
    }

    #[test]
    fn without_the_kernels_word_a_cgroup_one_walk_found_and_the_next_did_not_is_gone() {
        let mut r = Retirement::default();
        let t = totals(&[7, 9]);
        let unsaid = |_| None;
        // 7 is walked, then not; 9 was never found by a walk (too short-lived, or too deep).
        assert!(
            r.due(&t, |id| id == 7, unsaid, |_, _| true, &no_slots())
                .is_empty()
        );
        assert!(
            r.due(&t, |_| false, unsaid, |_, _| true, &no_slots())
                .is_empty()
        );
        assert_eq!(
            r.due(&t, |_| false, unsaid, |_, _| true, &no_slots()),
            vec![7]
        );
        for _ in 0..3 {
            assert!(
                r.due(&t, |_| false, unsaid, |_, _| true, &no_slots())
                    .is_empty()
            );
        }
    }

    #[test]
    fn counts_held_back_or_a_slot_holding_it_keep_a_gone_cgroup() {
        let mut r = Retirement::default();
        let t = totals(&[7]);
        let gone = |_| Some(false);
        r.due(&t, |_| true, gone, |_, _| true, &no_slots());
        assert!(
            r.due(&t, |_| true, gone, |_, _| false, &no_slots())
                .is_empty()
        );
        assert!(
            r.due(&t, |_| true, gone, |_, _| true, &BTreeSet::from([7]))
                .is_empty()
        );
        assert_eq!(r.due(&t, |_| true, gone, |_, _| true, &no_slots()), vec![7]);
    }

    #[test]
    fn a_cgroup_that_comes_back_alive_is_not_retired() {
        let mut r = Retirement::default();
        let t = totals(&[7]);
        r.due(&t, |_| true, |_| Some(false), |_, _| true, &no_slots());
        assert!(
            r.due(&t, |_| true, |_| Some(true), |_, _| true, &no_slots())
                .is_empty()
        );
        assert!(
            r.due(&t, |_| true, |_| Some(false), |_, _| true, &no_slots())
                .is_empty()
        );
    }

    #[test]
    fn a_retired_id_is_dropped_from_the_next_readings_then_forgotten() {
        let mut r = Retirement::default();
        r.retired(&[7]);
        for _ in 0..REMEMBER_POLLS {
            let mut t = totals(&[7, 8]);
            r.filter(&mut t);
            assert_eq!(t.keys().copied().collect::<Vec<_>>(), vec![8]);
        }
        let mut t = totals(&[7, 8]);
        r.filter(&mut t);
        assert_eq!(t.len(), 2);
    }
}

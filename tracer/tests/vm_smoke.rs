//! The probes on real kernels: Debian's 6.1 and 6.12 cloud kernels booted under qemu, the
//! tracer attached, lookups of missing names made in two sibling cgroups.
use std::time::Duration;

use xtask::{
    kernel::Kernel,
    scenario::{TRACE_SECS, TwoCgroups},
    vm::VmRun,
};

const TRACED: u32 = 2000;
const OTHER: u32 = 500;
/// Dentries the shell itself may allocate besides the lookups (its own start-up paths).
const SLACK: u64 = 100;

fn counts_each_lookup_in_its_own_cgroup(series: &str) {
    let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("kernel {series}: {e:#}"));
    let workload = TwoCgroups {
        traced_lookups: TRACED,
        other_lookups: OTHER,
    };
    let out = VmRun::new(&kernel, workload.script())
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .timeout(Duration::from_secs(240))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, 0, "the script failed; log:\n{}", out.log);
    assert_eq!(out.value("vm-kernel"), Some(kernel.release.as_str()));
    assert_eq!(out.value("tracer-exit"), Some("0"), "log:\n{}", out.log);
    // --duration is tracing time: it starts once the probes are attached, however long their
    // load took (a minute on 6.1 under TCG, which a deadline from start-up ate into).
    let cs = |tag| out.value(tag).and_then(|v| v.trim().parse::<u64>().ok());
    let (attached, exited) = (cs("attached-cs"), cs("exited-cs"));
    assert!(
        matches!((attached, exited), (Some(a), Some(e)) if e - a >= 100 * TRACE_SECS),
        "{series}: traced from {attached:?} to {exited:?} (hundredths of a second since boot), \
         less than --duration {TRACE_SECS}s"
    );

    let counts = TwoCgroups::counts(&out);
    let alloc = |name: &str| {
        counts
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no count for cgroup {name}; log:\n{}", out.log))
            .alloc
    };
    for (name, lookups) in [("traced", TRACED), ("other", OTHER)] {
        let n = u64::from(lookups);
        let got = alloc(name);
        assert!(
            (n..=n + SLACK).contains(&got),
            "{series}: cgroup {name} made {n} lookups of missing names, tracer counted {got}\n{}",
            out.log
        );
    }
}

#[test]
fn kprobe_counts_lookups_per_cgroup_on_debian_6_1() {
    counts_each_lookup_in_its_own_cgroup("6.1");
}

#[test]
fn kprobe_counts_lookups_per_cgroup_on_debian_6_12() {
    counts_each_lookup_in_its_own_cgroup("6.12");
}

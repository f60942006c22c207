//! Pods traced from their first lookup, on real kernels: the tracer starts armed for a pod UID
//! whose cgroup does not exist yet (`--target-pending`), a second is added while it runs
//! (`--target-pod-uids-file`, as the plugin adds a pod to a running trace), the cgroups are made as the kubelet
//! makes them, and each pod's process does its failed lookups from its very start. Every one of
//! them is traced, and none of a sibling pod's.
use std::time::Duration;

use xtask::{
    dentry_workload::Summary,
    kernel::Kernel,
    pending_workload::PendingWorkload,
    vm::{VmOutput, VmRun},
};

const LOOKUPS: u32 = 1000;

fn run(series: &str) -> VmOutput {
    let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("kernel {series}: {e:#}"));
    let workload = PendingWorkload { lookups: LOOKUPS };
    let out = VmRun::new(&kernel, workload.script())
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .timeout(Duration::from_secs(900))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, 0, "the script failed; log:\n{}", out.log);
    out
}

/// (distinct missing names, lines) the trace holds under the tmpfs's `/DIR/`.
fn traced(out: &VmOutput, dir: &str) -> (u64, u64) {
    let line = out
        .tagged("traced")
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some(dir))
        .unwrap_or_else(|| panic!("no @@traced line for {dir}:\n{}", out.log));
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().expect("a count"))
        .collect();
    (n[0], n[1])
}

fn metric(out: &VmOutput, series: &str) -> Option<f64> {
    out.tagged("metrics")
        .into_iter()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The summary's `cgroup cgroup_id=ID ...` line.
fn summary_cgroup<'a>(tracer: &'a str, id: &str) -> Option<&'a str> {
    tracer
        .lines()
        .find(|l| l.starts_with(&format!("cgroup cgroup_id={id} ")))
}

fn check(series: &str) {
    let out = run(series);
    let log = &out.log;
    assert_eq!(out.value("tracer-exit"), Some("0"), "{series}: {log}");
    let tracer = out.tagged("tracer").join("\n");
    assert!(
        tracer.contains("armed for pods whose cgroups do not exist yet"),
        "{series}: {tracer}"
    );
    assert!(
        tracer.contains("pods added to the trace"),
        "{series}: {tracer}"
    );
    let summary = Summary::parse(&out.tagged("tracer"));
    assert_eq!(summary.drops, 0, "{series}");
    // What the kernel says it could not trace: hits that found the CPU's state claimed by a
    // program they preempted (`contended`, counted but not traced) and runs it skipped
    // (`missed`). fentry programs run with only migration disabled, so on a preemptible
    // kernel (7.x's default, lazy preemption) some are preempted; elsewhere both are 0 and
    // every line must be there (docs/counters.md).
    let lost = summary.contended + summary.missed;
    let n = u64::from(LOOKUPS);
    // Each failed lookup is an allocation and a negative lookup: two lines per name.
    for dir in ["first", "second"] {
        let (names, lines) = traced(&out, dir);
        assert!(
            names <= n && names + lost >= n && lines == 2 * names,
            "{series}: {dir}'s lookups from its start: {names} names, {lines} lines of {n}, \
             {lost} the kernel counted as not traced\n{log}"
        );
    }
    assert_eq!(traced(&out, "sibling"), (0, 0), "{series}: the sibling pod");
    assert!(
        (4 * n - 2 * lost.min(2 * n)..=4 * n + 10).contains(&summary.events),
        "{series}: {} events for two pods' {LOOKUPS} lookups ({lost} not traced)",
        summary.events
    );
    // And in the counts: the kernel's, per cgroup, and the metrics', by the pods' names
    // (the first polls come before the resolver has named the new containers).
    for dir in ["first", "second"] {
        let id = out
            .tagged("cgroup")
            .into_iter()
            .find_map(|l| l.strip_prefix(&format!("{dir} ")))
            .unwrap_or_else(|| panic!("{series}: no cgroup id for {dir}"));
        let line = summary_cgroup(&tracer, id)
            .unwrap_or_else(|| panic!("{series}: no summary line for {dir}'s cgroup {id}"));
        // Contended hits are counted (spilled); only the runs the kernel skipped are not.
        let negative: u64 = line
            .split_once(" negative=")
            .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{series}: {dir}: {line}"));
        assert!(
            negative <= n && negative + summary.missed >= n,
            "{series}: {dir}: {line} ({} runs skipped)",
            summary.missed
        );
    }
    for pod in ["first-0", "second-0"] {
        let negative = metric(
            &out,
            &format!(r#"dentry_negative_total{{container="app",namespace="batch",pod="{pod}"}}"#),
        )
        .unwrap_or_else(|| panic!("{series}: no series for batch/{pod}/app\n{log}"));
        assert!(
            negative <= f64::from(LOOKUPS)
                && negative + summary.missed as f64 >= f64::from(LOOKUPS),
            "{series}: {pod}: {negative} ({} runs skipped)\n{log}",
            summary.missed
        );
    }
}

// Test names: debian_5_10, debian_6_1, debian_6_12, debian_7 (the newest 7.x).
xtask::each_kernel!(check);

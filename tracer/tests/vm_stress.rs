//! The tracer under stress on a fully preemptible kernel (Debian 6.12 booted with
//! `preempt=full`): with several cgroups' lookups on both vCPUs, paths stay intact and in
//! their own cgroup, and counts stay exact (kprobe) or every loss is one the kernel counted
//! (fentry, whose programs run with only migration disabled, so two can interleave on one
//! CPU); and SIGTERM under a flood of events gives the summary and the exit within a
//! kubelet's grace period, with stdout read fast and with stdout not read at all.
use std::{collections::BTreeMap, time::Duration};

use xtask::{
    dentry_workload::{Summary, cgroup_ids, make_ext4_image},
    kernel::Kernel,
    scripts,
    vm::VmRun,
};

const GROUPS: [&str; 4] = ["ga", "gb", "gc", "gd"];
const PROCS: u64 = 2;
const LOOKUPS: u64 = 1500;
/// What the kubelet gives a pod between SIGTERM and SIGKILL is 30 s by default; the tracer
/// must be done well within it.
const GRACE_SECS: u64 = 20;

#[test]
fn preemptible_kernel_keeps_paths_intact_every_lost_count_counted_and_stops_promptly() {
    let kernel = Kernel::fetch("6.12").unwrap_or_else(|e| panic!("kernel 6.12: {e:#}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("ext4.img");
    make_ext4_image(&image, 16).expect("mkfs.ext4");
    let script = scripts::script(
        scripts::STRESS,
        &[
            ("MODES", "fentry kprobe".into()),
            ("CGROUPS", GROUPS.join(" ")),
            ("PROCS", PROCS.to_string()),
            ("LOOKUPS", LOOKUPS.to_string()),
            ("GRACE", GRACE_SECS.to_string()),
        ],
    );
    let out = VmRun::new(&kernel, script)
        .kernel_arg("preempt=full")
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .module("loop")
        .file("/ext4.img", std::fs::read(&image).expect("image"))
        // About ten minutes under single-threaded TCG: four tracer starts and two floods.
        .timeout(Duration::from_secs(1200))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = &out.log;
    assert_eq!(out.status, 0, "the script failed; log:\n{log}");
    // The kernel says which preemption model is in force: "none voluntary (full) ...".
    assert!(
        out.value("preempt").is_some_and(|p| p.contains("(full)")),
        "not fully preemptible: {:?}",
        out.value("preempt")
    );

    // 1. Preemption: every line intact and in its own cgroup's directories, in both modes.
    let ids = cgroup_ids(&out);
    let want = PROCS * LOOKUPS;
    for mode in ["fentry", "kprobe"] {
        assert_eq!(out.value(&format!("{mode}-exit")), Some("0"), "{log}");
        let bad = out.tagged(&format!("bad-{mode}"));
        assert!(
            bad.is_empty(),
            "{mode}: {} lines mixed or torn, e.g. {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
        let summary = Summary::parse(&out.tagged(mode));
        assert_eq!(summary.attach, mode, "{log}");
        let traced: BTreeMap<(String, String), u64> = out
            .tagged(&format!("traced-{mode}"))
            .into_iter()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((
                    (w.next()?.to_owned(), w.next()?.to_owned()),
                    w.next()?.parse().ok()?,
                ))
            })
            .collect();
        let (mut uncounted, mut untraced) = (0, 0);
        for g in GROUPS {
            let id = ids[g];
            for field in ["alloc", "negative"] {
                let n = summary.count(id, field);
                assert!(n <= want, "{mode} {g} {field}: {n} for {want} lookups");
                uncounted += want - n;
                let lines = traced
                    .get(&(g.to_owned(), field.to_owned()))
                    .copied()
                    .unwrap_or(0);
                // A line's `alloc` flag comes from the lookup's result probe, the count from
                // the allocation's own probe: a skipped run of the latter leaves a flagged
                // line uncounted. Negative lines and counts come from one run.
                let skipped = if field == "alloc" { summary.missed } else { 0 };
                assert!(
                    lines <= n + skipped,
                    "{mode} {g} {field}: {lines} lines, counted {n}, skipped runs {skipped}"
                );
                untraced += want.saturating_sub(lines);
            }
        }
        eprintln!(
            "{mode}: contended {}, missed {}, unread {}, uncounted {uncounted}, untraced \
             {untraced}",
            summary.contended, summary.missed, summary.unread
        );
        // A hit that found its CPU's state taken (contended) is counted all the same; only a
        // run the kernel skipped goes uncounted, and the kernel counts those (missed): with
        // fentry, the same program preempted on that CPU; with kprobes, BPF already active on
        // that CPU, as in a map system call (the tracer's own counter reads among them) that
        // was preempted. Exactness is checked in both modes by this bound.
        assert!(
            uncounted <= summary.missed,
            "{mode}: {uncounted} counts lost, the kernel skipped {} runs",
            summary.missed
        );
        // A lookup's record stands for its two lines; each record not written was a
        // contended hit, a skipped run, or left in the ring buffer by the stop's bounded
        // drain: each is counted.
        let accounted = summary.contended + summary.missed + summary.unread;
        assert!(
            untraced <= 2 * accounted,
            "{mode}: {untraced} lines missing; contended {}, missed {}, unread {}",
            summary.contended,
            summary.missed,
            summary.unread
        );
    }

    // 2. Stops under a flood, with stdout read fast and not read at all.
    for name in ["fast", "slow"] {
        let said = out.tagged(name);
        assert_eq!(
            out.value(&format!("{name}-exit")),
            Some("0"),
            "{name}: the tracer did not exit by itself within {GRACE_SECS}s of SIGTERM; it \
             said:\n{}\nits threads were at:\n{}",
            said.join("\n"),
            out.tagged(&format!("{name}-stuck")).join("\n")
        );
        let summary = Summary::parse(&said);
        assert!(
            summary.events > 0,
            "{name}: no summary:\n{}",
            said.join("\n")
        );
        eprintln!(
            "{name}: summary after {} cs, exited after {} cs, events {}, unwritten {}",
            out.value(&format!("{name}-summary-cs")).unwrap_or("?"),
            out.value(&format!("{name}-cs")).unwrap_or("?"),
            summary.events,
            summary.unwritten
        );
    }
    // Nobody read the slow tracer's stdout: the lines it could not write are said.
    let slow = Summary::parse(&out.tagged("slow"));
    assert!(slow.unwritten > 0, "slow: {slow:?}");
}

//! Live dentries per owner on real kernels (Debian 5.10 to 7.x under qemu, amd64 and arm64),
//! in both attach modes: a container's failed lookups show as its live negative dentries and their memory
//! agrees with its memory cgroup's slab charge; creates turn them positive; reclaim (drop_caches,
//! memory.high) takes them away; a removed container's dentries show under its pod; dentries
//! from before the start count nowhere; the sum follows the node's dentry count.
use std::{collections::BTreeMap, time::Duration};

use xtask::{
    arch::Arch,
    dentry_workload::{cgroup_ids, make_ext4_image},
    kernel::Kernel,
    scripts,
    vm::{VmOutput, VmRun},
};

const N: i64 = 100_000;
const PRE: i64 = 20_000;
const CREATES: i64 = 1_000;
const GONE: i64 = 20_000;

fn run(arch: Arch, series: &str, mode: &str) -> VmOutput {
    let kernel = Kernel::fetch_for(series, arch)
        .unwrap_or_else(|e| panic!("kernel {series} {}: {e:#}", arch.debian()));
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("ext4.img");
    make_ext4_image(&image, 8).expect("mkfs.ext4");
    let script = scripts::script(
        scripts::LIVE,
        &[
            ("MODE", mode.to_owned()),
            ("N", N.to_string()),
            ("PRE", PRE.to_string()),
            ("CREATES", CREATES.to_string()),
            ("GONE", GONE.to_string()),
        ],
    );
    let out = VmRun::new(&kernel, script)
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .module("loop")
        .file("/ext4.img", std::fs::read(&image).expect("image"))
        .timeout(Duration::from_secs(1200))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, 0, "the script failed; log:\n{}", out.log);
    assert_eq!(out.value("tracer-exit"), Some("0"), "log:\n{}", out.log);
    out
}

/// One scrape: metric → cgroup id → value, plus the busy container's slab charge and the
/// node's dentry count.
struct Snapshot {
    series: BTreeMap<(String, u64), i64>,
    slab: i64,
    nr_dentry: i64,
}

impl Snapshot {
    fn read(out: &VmOutput, name: &str) -> Snapshot {
        let mut series = BTreeMap::new();
        for line in out.tagged(name) {
            let Some((metric, rest)) = line.split_once('{') else {
                continue;
            };
            let id = rest
                .split_once("cgroup_id=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .and_then(|(id, _)| id.parse().ok());
            let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if let (Some(id), Some(value)) = (id, value) {
                series.insert((metric.to_owned(), id), value as i64);
            }
        }
        let slab = out
            .value(&format!("{name}-slab"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let nr_dentry = out
            .value(&format!("{name}-dentry-state"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no dentry-state in {name}; log:\n{}", out.log));
        Snapshot {
            series,
            slab,
            nr_dentry,
        }
    }

    fn get(&self, metric: &str, id: u64) -> i64 {
        self.series
            .get(&(metric.to_owned(), id))
            .copied()
            .unwrap_or(0)
    }

    fn live(&self, id: u64) -> i64 {
        self.get("dentry_live", id)
    }

    fn negative(&self, id: u64) -> i64 {
        self.get("dentry_live_negative", id)
    }

    fn bytes(&self, id: u64) -> i64 {
        self.get("dentry_live_bytes", id)
    }

    fn total(&self) -> i64 {
        self.series
            .iter()
            .filter(|((m, _), _)| m == "dentry_live")
            .map(|(_, v)| v)
            .sum()
    }
}

fn within(got: i64, want: i64, pct: i64) -> bool {
    (got - want).abs() * 100 <= want.abs() * pct
}

fn check(series: &str, mode: &str) {
    check_on(Arch::Amd64, series, mode);
}

fn check_on(arch: Arch, series: &str, mode: &str) {
    let out = run(arch, series, mode);
    let ctx = format!("{}/{series}/{mode}", arch.debian());
    let ids = cgroup_ids(&out);
    let id = |name: &str| *ids.get(name).unwrap_or_else(|| panic!("no id for {name}"));
    let (pod, busy, idle, gone) = (id("pod"), id("pod/busy"), id("pod/idle"), id("pod/gone"));
    let snap = |name| Snapshot::read(&out, name);
    let (s0, lookups, creates, dropped) = (
        snap("s0"),
        snap("lookups"),
        snap("creates"),
        snap("dropped"),
    );
    let (again, pressed, before, removed) = (
        snap("again"),
        snap("pressed"),
        snap("before-rmdir"),
        snap("removed"),
    );
    let attached = out
        .tagged("tracer")
        .into_iter()
        .find(|l| l.contains("probes attached"))
        .unwrap_or_default();
    // `auto`: fentry where the kernel has BPF trampolines, else kprobes.
    let want = match mode {
        "auto" if xtask::kernel::has_trampolines(arch, series) => "fentry",
        "auto" => "kprobe",
        other => other,
    };
    for probe in ["__d_alloc", "dentry_free", "dentry_unlink_inode"] {
        assert!(
            attached.contains(&format!("{probe}:{want}")),
            "{ctx}: {probe} not attached as {want}: {attached}"
        );
    }

    // N failed lookups: N live negative dentries, the 20,000 made before the start not among
    // them, and nothing for the sibling that did nothing.
    let (live, neg) = (lookups.live(busy), lookups.negative(busy));
    assert!(within(live, N, 5), "{ctx}: busy live={live}, want ≈ {N}");
    assert!(within(neg, N, 5), "{ctx}: busy negative={neg}, want ≈ {N}");
    assert!(
        lookups.live(idle) <= N / 100,
        "{ctx}: idle live={}",
        lookups.live(idle)
    );
    // Their memory agrees with what the kernel charged the container's memory cgroup.
    let charged = lookups.slab - s0.slab;
    let counted = lookups.bytes(busy) - s0.bytes(busy);
    assert!(
        within(counted, charged, 15),
        "{ctx}: live bytes rose {counted}, slab_reclaimable {charged}"
    );
    // The sum over owners follows the node's count wherever nothing older than the tracer
    // was freed (reclaim also frees dentries from before the start, which are not counted).
    let (sum, node) = (
        lookups.total() - s0.total(),
        lookups.nr_dentry - s0.nr_dentry,
    );
    for (what, from, to) in [
        ("lookups", &s0, &lookups),
        ("creates", &lookups, &creates),
        ("lookups after drop_caches", &dropped, &again),
        ("the removed container's lookups", &pressed, &before),
    ] {
        let (sum, node) = (to.total() - from.total(), to.nr_dentry - from.nr_dentry);
        assert!(
            (sum - node).abs() <= (node.abs() / 20).max(20),
            "{ctx}: over {what} the live sum moved {sum}, nr_dentry {node}"
        );
    }

    eprintln!(
        "{ctx}: live={live} negative={neg} idle={} bytes={counted} slab={charged} sum={sum} \
         nr_dentry={node} dropped={} pressed={} again={} gone={} pod+={} untracked={}",
        lookups.live(idle),
        dropped.live(busy),
        pressed.live(busy),
        again.live(busy) - dropped.live(busy),
        before.live(gone),
        removed.live(pod) - before.live(pod),
        out.tagged("tracer")
            .into_iter()
            .find_map(|l| l.strip_prefix("live untracked="))
            .unwrap_or("?"),
    );
    // Creating names whose lookups failed turns their dentries positive.
    let turned = lookups.negative(busy) - creates.negative(busy);
    assert!(
        within(turned, CREATES, 2),
        "{ctx}: {turned} turned positive, want {CREATES}"
    );
    assert!(
        (creates.live(busy) - lookups.live(busy)).abs() <= CREATES / 20,
        "{ctx}: creates moved live from {} to {}",
        lookups.live(busy),
        creates.live(busy)
    );

    // Reclaim takes them away (the dentries from before the start with them, which must not
    // drive the gauge anywhere: the next N lookups count N again).
    for (what, s) in [("drop_caches", &dropped), ("memory.high", &pressed)] {
        assert!(
            s.live(busy) <= N / 20 && s.negative(busy) <= N / 20,
            "{ctx}: after {what} busy live={} negative={}",
            s.live(busy),
            s.negative(busy)
        );
    }
    assert!(
        within(again.live(busy) - dropped.live(busy), N, 5),
        "{ctx}: after drop_caches, N lookups gave {}",
        again.live(busy) - dropped.live(busy)
    );

    // A removed container's dentries show under its pod, once.
    assert!(
        within(before.live(gone), GONE, 5),
        "{ctx}: gone live={} before rmdir",
        before.live(gone)
    );
    assert_eq!(
        removed.live(gone),
        0,
        "{ctx}: a removed cgroup keeps a series"
    );
    let moved = removed.live(pod) - before.live(pod);
    assert!(
        within(moved, before.live(gone), 5),
        "{ctx}: the pod gained {moved}, the container held {}",
        before.live(gone)
    );
    // The summary's line for the traced pod: what its cgroups hold at the end.
    let scope: i64 = out
        .tagged("tracer")
        .into_iter()
        .find_map(|l| l.strip_prefix("live scope dentries="))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{ctx}: no live scope line; log:\n{}", out.log));
    let held = removed.live(pod) + removed.live(busy) + removed.live(idle);
    assert!(
        within(scope, held, 5),
        "{ctx}: the summary says the pod holds {scope}, the last scrape {held}"
    );
    assert!(
        within(removed.total(), before.total(), 5),
        "{ctx}: total {} after rmdir, {} before",
        removed.total(),
        before.total()
    );
}

xtask::each_kernel_and_mode!(check);
xtask::each_arm64_kernel_and_mode!(check_on);

//! The kernel side's acceptance on real kernels (Debian 5.10 to 7.x under qemu, amd64 and
//! arm64), in both attach modes: per-cgroup counters for failed lookups and creates on ext4 and tmpfs, trace
//! events only from scoped cgroups with exact paths and fs types, reclaim, and counted drops.
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use dentry_common::KERNEL_FILTER_PATH;
use xtask::{
    arch::Arch,
    dentry_workload::{
        DentryWorkload, KERNEL_PATTERN_SET, Summary, all_pattern_lookups, cgroup_ids,
        long_name_path, make_ext4_image,
    },
    kernel::Kernel,
    vm::{VmOutput, VmRun},
};

const LOOKUPS: u32 = 1000;
const CREATES: u32 = 200;
const CHILD_LOOKUPS: u32 = 50;
const FLOOD: u32 = 3000;

struct Line<'a> {
    cgroup: u64,
    op: &'a str,
    path: &'a str,
    fstype: &'a str,
}

fn run(arch: Arch, series: &str, mode: &str) -> VmOutput {
    let kernel = Kernel::fetch_for(series, arch)
        .unwrap_or_else(|e| panic!("kernel {series} {}: {e:#}", arch.debian()));
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("ext4.img");
    make_ext4_image(&image, 8).expect("mkfs.ext4");
    let workload = DentryWorkload {
        lookups: LOOKUPS,
        creates: CREATES,
        child_lookups: CHILD_LOOKUPS,
        flood: FLOOD,
        attach_mode: mode.to_owned(),
    };
    let vm = VmRun::new(&kernel, workload.script())
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .timeout(Duration::from_secs(1200));
    let out = workload
        .prepare(vm, &image)
        .expect("workload files")
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, 0, "the script failed; log:\n{}", out.log);
    assert_eq!(out.value("tracer-exit"), Some("0"), "log:\n{}", out.log);
    out
}

fn within(got: u64, want: u64, pct: u64) -> bool {
    got.abs_diff(want) * 100 <= want * pct
}

fn check(series: &str, mode: &str) {
    check_on(Arch::Amd64, series, mode);
}

fn check_on(arch: Arch, series: &str, mode: &str) {
    let out = run(arch, series, mode);
    let ctx = format!("{}/{series}/{mode}", arch.debian());
    let ids = cgroup_ids(&out);
    let id = |name: &str| *ids.get(name).unwrap_or_else(|| panic!("no id for {name}"));
    let summary = Summary::parse(&out.tagged("tracer"));
    // Every kernel here has BPF trampolines but arm64 before 6.4 (ftrace direct calls): `auto`
    // picks fentry where they are, kprobes elsewhere, and `--check` says which.
    let trampolines = xtask::kernel::has_trampolines(arch, series);
    let want = match mode {
        "auto" if trampolines => "fentry",
        "auto" => "kprobe",
        other => other,
    };
    assert_eq!(summary.attach, want, "{ctx}: asked for {mode}");
    let fentry_check = out
        .tagged("check")
        .into_iter()
        .find(|l| l.starts_with("fentry "))
        .unwrap_or_default();
    assert_eq!(
        fentry_check.split_whitespace().nth(1),
        Some(if trampolines { "ok" } else { "no" }),
        "{ctx}: --check said {fentry_check:?}"
    );
    // Every kernel tested here has every feature: one that switches off fails here.
    let features: Vec<&str> = out
        .tagged("check")
        .into_iter()
        .filter(|l| l.starts_with("feature:"))
        .collect();
    assert_eq!(
        features.len(),
        4,
        "{ctx}: --check's features: {features:#?}"
    );
    for line in &features {
        assert_eq!(
            line.split_whitespace().nth(1),
            Some("ok"),
            "{ctx}: --check said {line:?}"
        );
    }
    // Each traced lookup's directory (work-traced, under the root) is cached after the first
    // lookup in it on a CPU; the paths below are checked exact all the same.
    assert!(
        summary.path_cache_hits >= u64::from(LOOKUPS),
        "{ctx}: the path cache served {} events, want ≥ {LOOKUPS}",
        summary.path_cache_hits
    );

    // Counters: every cgroup, traced or not.
    let (n, m) = (u64::from(LOOKUPS), u64::from(CREATES));
    for fs in ["ext4", "tmpfs"] {
        for side in ["traced", "other"] {
            let cg = id(&format!("{fs}-{side}"));
            let (alloc, neg, pos) = (
                summary.count(cg, "alloc"),
                summary.count(cg, "negative"),
                summary.count(cg, "positive"),
            );
            let what = format!("{ctx} {fs}-{side}: alloc={alloc} negative={neg} positive={pos}");
            assert!(within(alloc, n + m, 5), "{what}: want alloc ≈ {}", n + m);
            assert!(neg * 100 >= n * 95, "{what}: want negative ≥ 95% of {n}");
            assert!(within(pos, m, 5), "{what}: want positive ≈ {m}");
        }
    }

    // Trace lines: header first, seven columns, only scoped cgroups.
    let tsv = out.tagged("tsv");
    assert_eq!(
        tsv.first().copied(),
        Some(tracer::trace::tsv::HEADER),
        "{ctx}"
    );
    let lines: Vec<Line> = tsv[1..]
        .iter()
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 7, "{ctx}: {l:?}");
            Line {
                cgroup: c[3].parse().expect("cgroup id"),
                op: c[4],
                path: c[5],
                fstype: c[6],
            }
        })
        .collect();
    let scoped: BTreeSet<u64> = ["ext4-traced", "tmpfs-traced", "ext4-child", "reclaim"]
        .into_iter()
        .map(id)
        .collect();
    for l in &lines {
        assert!(
            scoped.contains(&l.cgroup),
            "{ctx}: event from unscoped cgroup: {} {}",
            l.cgroup,
            l.path
        );
        assert!(!l.path.contains("work-other"), "{ctx}: {}", l.path);
    }
    let paths = |cgroup: u64, op: &str, fstype: &str| -> BTreeSet<&str> {
        lines
            .iter()
            .filter(|l| l.cgroup == cgroup && l.op == op && l.fstype == fstype)
            .map(|l| l.path)
            .collect()
    };
    let expect = |prefix: &str, count: u32| -> Vec<String> {
        (0..count).map(|i| format!("{prefix}-{i}")).collect()
    };
    // Every lookup and create is one record (two lines). A record the kernel skipped is
    // counted (`missed=`: a kprobe program finds BPF active on its CPU while a task preempted
    // inside a BPF map system call holds it, docs/counters.md), set aside (`contended=`) or
    // dropped by a full ring buffer (`drops=`); any other absence fails.
    let mut absent = Vec::new();
    for fs in ["ext4", "tmpfs"] {
        let cg = id(&format!("{fs}-traced"));
        let alloc = paths(cg, "alloc", fs);
        let negative = paths(cg, "negative", fs);
        let positive = paths(cg, "positive", fs);
        for (prefix, count, result) in [
            ("/work-traced/missing", LOOKUPS, &negative),
            ("/work-traced/new", CREATES, &positive),
        ] {
            for p in expect(prefix, count) {
                let (a, r) = (alloc.contains(p.as_str()), result.contains(p.as_str()));
                if !(a && r) {
                    absent.push(format!("{fs} {p} (alloc line {a}, result line {r})"));
                }
            }
        }
    }
    let accounted = summary.missed + summary.contended + summary.drops;
    assert!(
        absent.len() as u64 <= accounted && absent.len() * 100 <= 2 * (LOOKUPS + CREATES) as usize,
        "{ctx}: {} records absent; {} skipped by the kernel, {} contended, {} dropped: {absent:#?}",
        absent.len(),
        summary.missed,
        summary.contended,
        summary.drops
    );
    // Names around the inline-name limit and of NAME_MAX bytes come out whole.
    let long = long_name_path();
    for op in ["alloc", "negative"] {
        assert!(
            paths(id("ext4-traced"), op, "ext4").contains(long.as_str()),
            "{ctx}: no {op} event for {long}"
        );
    }
    let child = paths(id("ext4-child"), "alloc", "ext4");
    for p in expect("/work-traced/child-dir/missing", CHILD_LOOKUPS) {
        assert!(
            child.contains(p.as_str()),
            "{ctx}: child cgroup not covered: {p}"
        );
    }

    // Reclaim: counted for the cgroup that caused it, and traced.
    let reclaim = id("reclaim");
    assert!(
        summary.count(reclaim, "shrink") >= 1,
        "{ctx}: remount made no shrink_dcache_sb"
    );
    assert!(
        summary.count(reclaim, "prune") >= 1,
        "{ctx}: drop_caches made no prune_dcache_sb"
    );
    assert!(
        summary.count(reclaim, "pruned") > 0,
        "{ctx}: prune freed nothing"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.cgroup == reclaim && l.op == "reclaim-shrink" && l.fstype == "ext4"),
        "{ctx}: no reclaim-shrink event for ext4"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.cgroup == reclaim && l.op == "reclaim-prune"),
        "{ctx}"
    );

    // A one-page ring buffer under a flood: drops are counted, nothing vanishes silently.
    let flood = Summary::parse(&out.tagged("flood"));
    assert_eq!(out.value("flood-exit"), Some("0"), "{ctx}");
    assert!(
        flood.drops > 0,
        "{ctx}: no drops with a 4 KiB ring buffer: {flood:?}"
    );
    // One record per failed lookup, written as two lines (its alloc and its negative); `events`
    // counts lines, `drops` records.
    let produced = 2 * u64::from(FLOOD);
    assert!(
        flood.events + 2 * flood.drops >= produced,
        "{ctx}: events {} + 2 × drops {} < {produced}",
        flood.events,
        flood.drops
    );
    check_kernel_patterns(&out, &ctx);

    let counts: BTreeMap<&str, usize> = lines.iter().fold(BTreeMap::new(), |mut m, l| {
        *m.entry(l.op).or_default() += 1;
        m
    });
    eprintln!(
        "{ctx}: {} events by op {counts:?}, {} records absent (missed {}, contended {}), flood drops {}",
        lines.len(),
        absent.len(),
        summary.missed,
        summary.contended,
        flood.drops
    );
}

/// The kernel's own pattern test, with the most patterns it takes: exactly the matching
/// lookups come out, and the others stop in the kernel unless their path is too long for it.
fn check_kernel_patterns(out: &VmOutput, ctx: &str) {
    assert_eq!(out.value("patterns-exit"), Some("0"), "{ctx}");
    let summary = Summary::parse(&out.tagged("patterns"));
    let tsv = out.tagged("pattern-tsv");
    assert_eq!(
        tsv.first().copied(),
        Some(tracer::trace::tsv::HEADER),
        "{ctx}"
    );
    let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in &tsv[1..] {
        let c: Vec<&str> = l.split('\t').collect();
        assert_eq!(c.len(), 7, "{ctx}: {l:?}");
        seen.entry(c[5]).or_default().push(c[4]);
    }
    let lookups = all_pattern_lookups();
    for (path, matches) in &lookups {
        let ops = seen.get(path.as_str());
        if *matches {
            assert_eq!(
                ops,
                Some(&vec!["alloc", "negative"]),
                "{ctx}: {path} holds a pattern"
            );
        } else {
            assert_eq!(ops, None, "{ctx}: {path} holds no pattern");
        }
    }
    let patterns: Vec<&str> = KERNEL_PATTERN_SET.split(',').collect();
    for path in seen.keys() {
        assert!(
            patterns.iter().any(|p| path.contains(p)),
            "{ctx}: {path} holds no pattern"
        );
    }
    // The path cache served the lookups under a directory it had seen (and none stale: a
    // stale path would have left out a match above).
    assert!(
        summary.path_cache_hits > 0,
        "{ctx}: the path cache was not used"
    );
    // Records the kernel can test: the path's bytes (names and their NULs, no leading '/').
    let testable_misses = lookups
        .iter()
        .filter(|(path, matches)| !matches && path.len() <= KERNEL_FILTER_PATH)
        .count() as u64;
    assert!(
        (testable_misses..=testable_misses + 5).contains(&summary.filtered),
        "{ctx}: the kernel left out {} records, expected {testable_misses}",
        summary.filtered
    );
    eprintln!(
        "{ctx}: kernel patterns kept {} lines, left out {} records",
        tsv.len() - 1,
        summary.filtered
    );
}

xtask::each_kernel_and_mode!(check);
xtask::each_arm64_kernel_and_mode!(check_on);

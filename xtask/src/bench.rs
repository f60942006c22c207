//! The kernel-side benchmark: a storm of failed lookups on ext4 in the VM, timed per operation
//! with no tracer and with each tracer variant, alternating variants within one boot over
//! several rounds (emulated timings drift, so only same-boot comparisons mean anything).
use anyhow::Context as _;
use std::{collections::BTreeMap, path::Path};

use crate::{
    dentry_workload::make_ext4_image,
    kernel::Kernel,
    vm::{VmOutput, VmRun},
};

pub const STORM: &str = "/bin/lookup-storm";

/// A tracer configuration under test: its name and its flags.
pub struct Variant {
    pub name: String,
    pub flags: String,
}

/// Every tracer variant, in table order, and its flags.
pub const VARIANTS: &[(&str, &str)] = &[
    ("floor", "--bench-floor"),
    // The floor's probe on both functions a failed lookup passes that the counters probe.
    ("floor-2probes", "--bench-floor --bench-floor-lookup"),
    // The live gauges' two probes as bare floor probes (on __d_alloc's return and on
    // dentry_free), beside the floor's: what any per-allocation and per-free work costs at least.
    ("floor-live", "--bench-floor --bench-floor-live"),
    ("counters", "--no-live"),
    ("live", ""),
    // The stages of trace-all, priced apart: scope check only; path walk too.
    (
        "stage-scope",
        "--trace-enabled --stdout --bench-trace-stage scope",
    ),
    (
        "stage-walk",
        "--trace-enabled --stdout --bench-trace-stage walk",
    ),
    (
        "trace-nomatch",
        "--trace-enabled --stdout --trace-patterns no-such-path-xyz",
    ),
    ("trace-all", "--trace-enabled --stdout"),
];

/// The variants named in `only` (all when empty; names from `VARIANTS`, which the command
/// line checks) in one attach mode (the script runs a no-tracer storm between them).
pub fn variants(mode: &str, only: &[String]) -> Vec<Variant> {
    let m = format!("--attach-mode {mode} --target-cgroup /sys/fs/cgroup/storm");
    VARIANTS
        .iter()
        .filter(|(what, _)| only.is_empty() || only.iter().any(|o| o == what))
        .map(|(what, flags)| Variant {
            name: format!("{what}-{mode}"),
            flags: format!("{m} {flags}"),
        })
        .collect()
}

pub fn script(variants: &[Variant], rounds: u32, lookups: u32) -> String {
    let mut s = String::from(
        r#"
mkdir -p /mnt/ext4 $CG/storm
mount -o loop,noinit_itable -t ext4 /ext4.img /mnt/ext4 || exit 1
run_storm() { sh -c "echo \$\$ > $CG/storm/cgroup.procs && exec /bin/lookup-storm $1 $2"; }
# Stops tracer $1; if it has not exited after 20 s, shows where it is stuck and fails.
stop_or_fail() {
  kill -INT "$1"
  i=0
  while kill -0 "$1" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
  if kill -0 "$1" 2>/dev/null; then
    echo "@@stuck $2"
    for t in /proc/"$1"/task/*; do echo "-- $t"; cat "$t/stack"; done
    exit 1
  fi
  wait "$1"
}
"#,
    );
    // Every tracer run sits between two no-tracer runs and is compared with their mean: the
    // emulator's speed drifts by more than a probe costs, even within a boot, and only
    // neighbours share a speed. `seq` orders the runs.
    let mut seq = 0u32;
    let baseline = |s: &mut String, round: u32, seq: &mut u32| {
        s.push_str(&format!(
            "echo \"@@bench none {round} {seq} $(run_storm /mnt/ext4/base-{seq} {lookups})\"\n\
             echo \"@@reclaim none {round} {seq} $(/bin/lookup-storm --reclaim)\"\n"
        ));
        *seq += 1;
    };
    // The first storm of a boot fills caches the others find warm: run one before anything
    // is compared. (ext4's background inode-table zeroing, which made the first runs slower
    // still, is off: noinit_itable.)
    s.push_str(&format!(
        "run_storm /mnt/ext4/warm-up {lookups} > /dev/null\n"
    ));
    for round in 0..rounds {
        // Rotate the order each round so no variant always runs first or last.
        let n = variants.len();
        for k in 0..n {
            let v = &variants[(k + round as usize) % n];
            baseline(&mut s, round, &mut seq);
            let dir = format!("/mnt/ext4/r{round}-{}", v.name);
            s.push_str(&format!(
                r#"rm -f /tmp/tracer.err
$TRACER {flags} > /tmp/trace.out 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
echo "@@bench {name} {round} {seq} $(run_storm {dir} {lookups})"
echo "@@reclaim {name} {round} {seq} $(/bin/lookup-storm --reclaim)"
stop_or_fail $T {name}
sed -n -e 's/^summary /@@bench-summary {name} /p' -e 's/^program /@@bench-program {name} /p' /tmp/tracer.err
rm -f /tmp/trace.out
"#,
                name = v.name,
                flags = v.flags
            ));
            seq += 1;
        }
    }
    baseline(&mut s, rounds, &mut seq);
    crate::scripts::script(&s, &[])
}

/// Per variant, over every run of every boot: the median ns/lookup, and the median of its
/// added ns against the mean of the no-tracer runs just before and after it. `tag` picks the
/// storms (`bench`) or the reclaims after them (`reclaim`, per dentry freed).
pub fn medians(boots: &[VmOutput], tag: &str) -> BTreeMap<String, (f64, f64)> {
    let mut pooled = Samples::new();
    for out in boots {
        for (name, (abs, added)) in samples(out, tag) {
            let entry = pooled.entry(name).or_default();
            entry.0.extend(abs);
            entry.1.extend(added);
        }
    }
    pooled
        .into_iter()
        .map(|(name, (abs, added))| (name, (median(abs), median(added))))
        .collect()
}

/// Per variant: its runs' ns/lookup and added ns.
type Samples = BTreeMap<String, (Vec<f64>, Vec<f64>)>;

fn samples(out: &VmOutput, tag: &str) -> Samples {
    let mut runs: BTreeMap<u32, (String, f64)> = BTreeMap::new();
    for line in out.tagged(tag) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(_round), Some(seq)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        if let Ok(seq) = seq.parse::<u32>()
            && let Some(ns) = value(line, "ns_per_op")
            && let Ok(ns) = ns.parse::<f64>()
        {
            runs.insert(seq, (name.to_owned(), ns));
        }
    }
    let none_at = |seq: Option<u32>| {
        seq.and_then(|s| runs.get(&s))
            .filter(|(name, _)| name == "none")
            .map(|(_, ns)| *ns)
    };
    let mut samples = Samples::new();
    for (&seq, (name, ns)) in &runs {
        let entry = samples.entry(name.clone()).or_default();
        entry.0.push(*ns);
        if name == "none" {
            continue;
        }
        let around: Vec<f64> = [none_at(seq.checked_sub(1)), none_at(Some(seq + 1))]
            .into_iter()
            .flatten()
            .collect();
        if !around.is_empty() {
            entry
                .1
                .push(ns - around.iter().sum::<f64>() / around.len() as f64);
        }
    }
    samples
}

/// The value of the `key=value` word in a line the VM script printed.
fn value<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// What `run` measures.
pub struct Plan {
    pub rounds: u32,
    pub lookups: u32,
    /// Boots per attach mode; every run of every boot goes into the medians.
    pub boots: u32,
    /// `kprobe`, `fentry` (the command line checks).
    pub modes: Vec<String>,
    /// Variant names (`VARIANTS`); all when empty.
    pub only: Vec<String>,
    /// Have the kernel time each program run (adds two clock reads to every run, so the
    /// added-time table is then not comparable with runs without it).
    pub program_stats: bool,
    /// Run the guests with a virtual clock that counts instructions (`VmRun::icount`).
    pub icount: bool,
}

/// Runs the benchmark, `boots` boots per attach mode (kprobe and fentry are compared side by
/// side, each run against the no-tracer runs beside it in its own boot), and returns a
/// Markdown table. Each boot's medians go to stderr as it ends.
pub fn run(kernel: &Kernel, tracer: &Path, storm: &Path, plan: &Plan) -> anyhow::Result<String> {
    let Plan {
        rounds,
        lookups,
        boots,
        ..
    } = *plan;
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("ext4.img");
    make_ext4_image(&image, 64)?;
    let image = std::fs::read(&image)?;
    let mut t = format!(
        "Kernel {} under qemu TCG; per attach mode {boots} boot(s), each {rounds} rounds × \
         {lookups} failed lookups (stat of a missing name) on ext4 per variant, variants \
         alternated; medians over all runs; added time against the mean of the no-tracer runs \
         just before and after each run.\n\n\
         | variant | ns/lookup | no tracer | added ns | added % | × floor |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
        kernel.release
    );
    let mut reclaim = String::from(
        "\nThe same runs' reclaim: after each storm, `drop_caches` frees the storm's dentries; \
         ns per dentry freed, × floor-live (a bare probe on dentry_free).\n\n\
         | variant | ns/free | no tracer | added ns | added % | × floor-live |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut programs = ProgramTimes::new();
    for mode in &plan.modes {
        let mut variants = variants(mode, &plan.only);
        if plan.program_stats {
            for v in &mut variants {
                v.flags.push_str(" --bench-program-stats");
            }
        }
        let mut outs = Vec::new();
        for boot in 0..boots {
            let out = VmRun::new(kernel, script(&variants, rounds, lookups))
                .binary(crate::vm::TRACER, tracer)
                .binary(STORM, storm)
                .module("loop")
                .file("/ext4.img", image.clone())
                .memory_mb(2048)
                .icount(plan.icount)
                // Real time means both vCPUs truly in parallel, as on a node (icount runs
                // them in turn anyway).
                .single_thread(plan.icount)
                .timeout(std::time::Duration::from_secs(1800))
                .run()?;
            if out.status != 0 {
                anyhow::bail!("the benchmark script failed ({mode}); log:\n{}", out.log);
            }
            let mut one = String::new();
            rows(
                &mut one,
                mode,
                &medians(std::slice::from_ref(&out), "bench"),
                "floor",
            );
            eprint!("bench: {mode} boot {}:\n{one}", boot + 1);
            for line in out.tagged("bench-summary") {
                eprintln!("bench: tracer {line}");
            }
            program_times(&out, &mut programs);
            for line in out.tagged("bench") {
                eprintln!("bench: run {line}");
            }
            outs.push(out);
        }
        rows(&mut t, mode, &medians(&outs, "bench"), "floor");
        // A free passes no probe of the floor's; floor-live's on dentry_free is its floor.
        rows(&mut reclaim, mode, &medians(&outs, "reclaim"), "floor-live");
    }
    t.push_str(&reclaim);
    if !programs.is_empty() {
        t.push_str(
            "\nTime inside each program (the kernel's run_time_ns / run_cnt, medians over the \
             runs):\n\n| variant | program | runs per run | ns per program run |\n\
             | --- | --- | ---: | ---: |\n",
        );
        for ((variant, program), (runs, ns)) in programs {
            t.push_str(&format!(
                "| {variant} | {program} | {:.0} | {:.0} |\n",
                median(runs),
                median(ns)
            ));
        }
    }
    Ok(t)
}

/// Per (variant, program): each run's program runs and mean ns per program run.
type ProgramTimes = BTreeMap<(String, String), (Vec<f64>, Vec<f64>)>;

/// Collects the `program` lines a tracer under `--bench-program-stats` prints.
fn program_times(out: &VmOutput, into: &mut ProgramTimes) {
    for line in out.tagged("bench-program") {
        let Some(variant) = line.split_whitespace().next() else {
            continue;
        };
        if let (Some(name), Some(Ok(runs)), Some(Ok(ns))) = (
            value(line, "name"),
            value(line, "runs").map(str::parse::<f64>),
            value(line, "ns_per_run").map(str::parse::<f64>),
        ) {
            let entry = into
                .entry((variant.to_owned(), name.to_owned()))
                .or_default();
            entry.0.push(runs);
            entry.1.push(ns);
        }
    }
}

/// Table rows for one attach mode; `floor` names the variant the last column divides by.
fn rows(t: &mut String, mode: &str, m: &BTreeMap<String, (f64, f64)>, floor: &str) {
    let none = m.get("none").map_or(f64::NAN, |v| v.0);
    let floor = m.get(&format!("{floor}-{mode}")).map(|v| v.1);
    for (what, _) in VARIANTS {
        let name = format!("{what}-{mode}");
        let Some(&(v, added)) = m.get(&name) else {
            continue;
        };
        let ratio = floor.map_or(f64::NAN, |f| added / f);
        t.push_str(&format!(
            "| {name} | {v:.0} | {none:.0} | {added:.0} | {:.1}% | {ratio:.2} |\n",
            100.0 * added / none
        ));
    }
}

/// Resident memory of the (release) tracer under the node workload's flood, as the kernel
/// reports it in /proc/<pid>/status while the flood's events are being written.
pub fn tracer_rss(kernel: &Kernel, tracer: &Path) -> anyhow::Result<String> {
    let workload = crate::node_workload::NodeWorkload {
        lookups_a: 25_000,
        skipped_a: 500,
        lookups_b: 300,
    };
    let out = VmRun::new(kernel, workload.script())
        .binary(crate::vm::TRACER, tracer)
        .timeout(std::time::Duration::from_secs(600))
        .run()?;
    if out.status != 0 {
        anyhow::bail!("the workload failed; log:\n{}", out.log);
    }
    let summary = crate::dentry_workload::Summary::parse(&out.tagged("tracer"));
    Ok(format!(
        "kernel {}: {} trace events written (rotating 1 MB files), {} dropped; tracer {}\n",
        kernel.release,
        summary.events,
        summary.drops,
        out.value("rss").unwrap_or("?")
    ))
}

/// What loading the programs costs on `kernel`: the tracer as a trace pod with kernel patterns,
/// in each attach mode the kernel has (`fentry` where it has BPF trampolines), one line each
/// with the load and attach time and the instructions the verifier processed (5.16+).
pub fn load(kernel: &Kernel, tracer: &Path) -> anyhow::Result<String> {
    let modes = if crate::kernel::has_trampolines(kernel.arch, &kernel.series()) {
        "kprobe fentry"
    } else {
        "kprobe"
    };
    let script = crate::scripts::script(crate::scripts::LOAD, &[("MODES", modes.to_owned())]);
    let out = VmRun::new(kernel, script)
        .binary(crate::vm::TRACER, tracer)
        .timeout(std::time::Duration::from_secs(900))
        .run()?;
    let mut report = String::new();
    for mode in modes.split(' ') {
        let line = out
            .tagged("load")
            .into_iter()
            .find_map(|l| l.strip_prefix(mode)?.strip_prefix(' '))
            .with_context(|| format!("no load line for {mode}; log:\n{}", out.log))?;
        report.push_str(&format!(
            "kernel {} {} {mode}: {line}\n",
            kernel.release,
            kernel.arch.debian()
        ));
    }
    Ok(report)
}

//! The end-of-run report on stderr: the summary line, per-cgroup counts, the trace's top paths,
//! and the kernel's per-program timings under --bench-program-stats.
use aya::Ebpf;
use dentry_common::names;

use crate::{
    kernel::{counters, live, misses},
    owners::cgroup::{Target, ids_below},
    trace::pipeline::Pipeline,
};

pub fn final_summary(
    ebpf: &Ebpf,
    cgroup_root: &std::path::Path,
    targets: &[Target],
    mode: &str,
    pipeline: Option<&Pipeline>,
    unwritten: u64,
) -> anyhow::Result<()> {
    let drops = counters::per_cpu_total(ebpf, names::DROPS)?;
    let filtered = counters::per_cpu_total(ebpf, names::FILTERED)?;
    let contended = counters::per_cpu_total(ebpf, names::CONTENDED)?;
    let missed = misses::total(ebpf);
    let path_cache_hits = counters::per_cpu_total(ebpf, names::PATH_CACHE_HITS)?;
    let (events, bytes) = pipeline.map_or((0, 0), |p| (p.kept, p.bytes));
    let (file_errors, unread) = pipeline.map_or((0, 0), |p| (p.file_errors, p.unread));
    eprintln!(
        "summary attach={mode} events={events} drops={drops} filtered={filtered} \
         contended={contended} missed={missed} unread={unread} unwritten={unwritten} bytes={bytes} file_errors={file_errors} \
         path_cache_hits={path_cache_hits}"
    );
    let mut per_cgroup: Vec<_> = counters::per_cgroup(ebpf)?.into_iter().collect();
    per_cgroup.sort_by(|a, b| b.1.alloc.cmp(&a.1.alloc).then(a.0.cmp(&b.0)));
    for (id, c) in per_cgroup.iter().take(50) {
        eprintln!(
            "cgroup cgroup_id={id} alloc={} positive={} negative={} shrink={} prune={} pruned={}",
            c.alloc, c.positive, c.negative, c.shrink_calls, c.prune_calls, c.pruned
        );
    }
    let held = live::held(ebpf, &crate::owners::cgroup::Mount::open(cgroup_root))?;
    if !targets.is_empty() {
        // What the traced cgroups hold at the end, of what they allocated during the run (at
        // its start the gauges are 0 by definition: docs/counters.md).
        let mut ids: Vec<u64> = targets.iter().flat_map(|t| ids_below(&t.dir)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut scope = live::Held::default();
        for h in ids.iter().filter_map(|id| held.get(id)) {
            scope += *h;
        }
        eprintln!(
            "live scope dentries={} negative={} bytes={} (held at the end, allocated since the start)",
            scope.dentries, scope.negative, scope.bytes
        );
    }
    let mut held: Vec<_> = held.into_iter().collect();
    held.sort_by(|a, b| b.1.dentries.cmp(&a.1.dentries).then(a.0.cmp(&b.0)));
    eprintln!(
        "live untracked={}",
        counters::per_cpu_total(ebpf, names::UNTRACKED)?
    );
    for (id, h) in held.iter().take(50) {
        eprintln!(
            "live cgroup_id={id} dentries={} negative={} bytes={}",
            h.dentries, h.negative, h.bytes
        );
    }
    if let Some(p) = pipeline {
        eprint!("{}", p.summary.render(10));
    }
    // Only under --bench-program-stats does the kernel count runs.
    for (name, program) in ebpf.programs() {
        if let Ok(info) = program.info()
            && info.run_count() > 0
        {
            let ns = info.run_time().as_nanos() as f64 / info.run_count() as f64;
            eprintln!(
                "program name={name} runs={} ns_per_run={ns:.0}",
                info.run_count()
            );
        }
    }
    Ok(())
}

//! `cargo xtask soak`: the release tracer as the DaemonSet runs it, for a long run of mixed
//! storms in the VM (`scripts/soak.sh`), and a report of what a long run would show first:
//! memory that grows, a map that fills, counts that drift, trace files that stop rotating.
use std::{collections::BTreeMap, fmt::Write as _, path::Path, time::Duration};

use anyhow::Context as _;

use crate::{
    kernel::Kernel,
    node_workload,
    vm::{VmOutput, VmRun},
};

/// After this much of the run the tracer's memory must be flat (its caches and maps have
/// met the workload's whole shape: every storm, a restart, reclaim).
const WARM_UP_SECS: u64 = 300;
/// RSS growth allowed after warm-up.
const GROWTH_LIMIT_KB: u64 = 1024;

pub struct Soak {
    pub secs: u64,
    pub restart_secs: u64,
    /// Failed lookups per batch of pod A's storm.
    pub batch: u32,
}

/// One minute's sample: RSS and its peak (kB), trace bytes on disk.
#[derive(Default, Clone, Copy)]
struct Sample {
    rss_kb: u64,
    hwm_kb: u64,
    trace_bytes: u64,
}

/// A map's entries over the run.
#[derive(Default)]
struct MapUse {
    kind: String,
    max_entries: u64,
    first: Option<u64>,
    peak: u64,
    last: Option<u64>,
}

impl Soak {
    pub fn run(&self, kernel: &Kernel, tracer: &Path, bpf_maps: &Path) -> anyhow::Result<String> {
        let body = format!("{}{}", node_workload::tree(), crate::scripts::SOAK);
        let script = crate::scripts::script(
            &body,
            &[
                ("SECS", self.secs.to_string()),
                ("RESTART", self.restart_secs.to_string()),
                ("BATCH", self.batch.to_string()),
                ("CID_A", node_workload::POD_A_CID.to_owned()),
            ],
        );
        let out = VmRun::new(kernel, script)
            .binary(crate::vm::TRACER, tracer)
            .binary("/bin/bpf-maps", bpf_maps)
            .timeout(Duration::from_secs(self.secs + 900))
            .run()?;
        let report = Report::parse(&out, self.secs).with_context(|| {
            let lines: Vec<&str> = out.log.lines().collect();
            let tail = lines[lines.len().saturating_sub(100)..].join("\n");
            format!("the soak's output is incomplete; the log's end:\n{tail}")
        })?;
        let text = report.render(kernel, self);
        let failures = report.failures();
        if failures.is_empty() {
            Ok(text)
        } else {
            anyhow::bail!("{text}\nsoak failed:\n  {}", failures.join("\n  "))
        }
    }
}

struct Report {
    secs: u64,
    samples: BTreeMap<u64, Sample>,
    end: Sample,
    maps: BTreeMap<String, MapUse>,
    scrapes: u64,
    scrapes_failed: u64,
    restarts: u64,
    lookups_a: u64,
    negative_a: u64,
    /// Negatives under empty labels (counts of a cgroup never named) and the kernel's
    /// counts that are in no pod's series: where a shortfall of pod A's went.
    negative_unnamed: u64,
    contended: u64,
    missed: u64,
    events: u64,
    dropped: u64,
    summary: String,
}

impl Report {
    fn parse(out: &VmOutput, secs: u64) -> Option<Report> {
        let tagged = |tag: &str| out.tagged(tag);
        let number = |tag: &str| {
            tagged(tag)
                .last()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
        for line in tagged("rss") {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let [at, rss, hwm] = w[..] {
                let s = samples.entry(at.to_owned()).or_default();
                s.rss_kb = rss.parse().ok()?;
                s.hwm_kb = hwm.parse().ok()?;
            }
        }
        for line in tagged("traces") {
            if let Some((at, bytes)) = line.split_once(' ') {
                samples.entry(at.to_owned()).or_default().trace_bytes =
                    bytes.trim().parse().ok()?;
            }
        }
        let mut maps: BTreeMap<String, MapUse> = BTreeMap::new();
        for line in tagged("maps") {
            let w: Vec<&str> = line.split_whitespace().collect();
            let [_at, name, kind, entries, max] = w[..] else {
                continue;
            };
            let m = maps.entry(name.to_owned()).or_default();
            m.kind = kind.to_owned();
            m.max_entries = max.parse().ok()?;
            if let Ok(n) = entries.parse::<u64>() {
                m.first.get_or_insert(n);
                m.peak = m.peak.max(n);
                m.last = Some(n);
            }
        }
        let end = samples.remove("end")?;
        let samples = samples
            .into_iter()
            .filter_map(|(at, s)| Some((at.parse().ok()?, s)))
            .collect();
        let (scrapes, scrapes_failed) = tagged("scrapes")
            .last()
            .and_then(|v| v.split_once(' '))
            .and_then(|(a, b)| Some((a.parse().ok()?, b.trim().parse().ok()?)))?;
        let final_value = |name: &str| {
            tagged("final")
                .iter()
                .filter(|l| l.starts_with(name))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        Some(Report {
            secs,
            samples,
            end,
            maps,
            scrapes,
            scrapes_failed,
            restarts: number("restarts")?,
            lookups_a: number("lookups-a")?,
            negative_a: final_value("dentry_negative_total{container=\"mysql\""),
            negative_unnamed: final_value("dentry_negative_total{container=\"\""),
            contended: final_value("dentry_tracer_events_contended_total "),
            missed: final_value("dentry_tracer_probe_missed_total "),
            events: final_value("dentry_tracer_events_total "),
            dropped: final_value("dentry_tracer_events_dropped_total "),
            summary: tagged("tracer")
                .into_iter()
                .find(|l| l.starts_with("summary "))
                .unwrap_or("")
                .to_owned(),
        })
    }

    /// RSS once warmed up (the first sample at or after the warm-up, or the run's middle on a
    /// run shorter than twice the warm-up), and at the end.
    fn growth_kb(&self) -> (u64, u64, i64) {
        let warm = WARM_UP_SECS.min(self.secs / 2);
        let at_warm = self
            .samples
            .range(warm..)
            .next()
            .map_or(self.end.rss_kb, |(_, s)| s.rss_kb);
        let last = self
            .samples
            .values()
            .last()
            .map_or(self.end.rss_kb, |s| s.rss_kb);
        (warm, at_warm, last as i64 - at_warm as i64)
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let (warm, at_warm, growth) = self.growth_kb();
        if growth > GROWTH_LIMIT_KB as i64 {
            failures.push(format!(
                "RSS grew {growth} kB after {warm} s ({at_warm} kB then): over {GROWTH_LIMIT_KB} kB"
            ));
        }
        for (name, m) in &self.maps {
            if m.max_entries > 0 && m.peak >= m.max_entries && m.kind.contains("hash") {
                failures.push(format!("map {name} was full ({} entries)", m.max_entries));
            }
        }
        if self.negative_a != self.lookups_a {
            failures.push(format!(
                "pod A's negatives: {} counted for {} failed lookups made",
                self.negative_a, self.lookups_a
            ));
        }
        if self.scrapes_failed > 0 {
            failures.push(format!(
                "{} of {} scrapes failed",
                self.scrapes_failed, self.scrapes
            ));
        }
        failures
    }

    fn render(&self, kernel: &Kernel, soak: &Soak) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "soak on {} {}: {} s, pod A's container restarted every {} s ({} restarts), \
             {} scrapes of /metrics ({} failed)\n",
            kernel.release,
            kernel.arch.debian(),
            self.secs,
            soak.restart_secs,
            self.restarts,
            self.scrapes,
            self.scrapes_failed
        );
        t.push_str(
            "| second | RSS | peak RSS | trace files on disk |\n| ---: | ---: | ---: | ---: |\n",
        );
        let rows = self.samples.iter().map(|(at, s)| (at.to_string(), s));
        for (at, s) in rows.chain([("end".to_owned(), &self.end)]) {
            let _ = writeln!(
                t,
                "| {at} | {:.1} MB | {:.1} MB | {:.2} MB |",
                s.rss_kb as f64 / 1024.0,
                s.hwm_kb as f64 / 1024.0,
                s.trace_bytes as f64 / 1e6
            );
        }
        let (warm, at_warm, growth) = self.growth_kb();
        let _ = writeln!(
            t,
            "\nRSS after {warm} s: {:.1} MB; growth since: {growth} kB (limit {GROWTH_LIMIT_KB} kB)\n",
            at_warm as f64 / 1024.0
        );
        t.push_str("| map | kind | entries at start | peak | end | max_entries |\n| --- | --- | ---: | ---: | ---: | ---: |\n");
        for (name, m) in &self.maps {
            let show = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            let peak = if m.first.is_some() {
                m.peak.to_string()
            } else {
                "-".to_owned()
            };
            let _ = writeln!(
                t,
                "| {name} | {} | {} | {peak} | {} | {} |",
                m.kind,
                show(m.first),
                show(m.last),
                m.max_entries
            );
        }
        let _ = writeln!(
            t,
            "\npod A: {} failed lookups made, {} counted negative; {} negatives of unnamed \
             cgroups; probe hits on a busy CPU {}, probe runs the kernel skipped {}; trace \
             events {} ({} dropped); the tracer's summary (bytes: every trace byte written, \
             rotated away or not):\n{}",
            self.lookups_a,
            self.negative_a,
            self.negative_unnamed,
            self.contended,
            self.missed,
            self.events,
            self.dropped,
            self.summary
        );
        t
    }
}

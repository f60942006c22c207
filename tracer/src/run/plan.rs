//! What a run will do, worked out from the flags and the resolved targets alone: which programs
//! attach and how, what the kernel is told, where lines go and when tracing stops. Pure, so the
//! decisions are tested without a kernel.
use std::path::PathBuf;

use dentry_common::{Config, KernelPatterns, MAX_CGROUP_LEVEL};

use crate::{
    cli::{Args, TraceStage},
    kernel::probes::{AttachMode, Set},
    owners::cgroup::Target,
    trace::pipeline::Caps,
};

/// The rotated trace files.
#[derive(Debug, Clone, PartialEq)]
pub struct Files {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub max_files: u32,
}

#[derive(Debug)]
pub struct Plan {
    /// The read-only global the programs are loaded with.
    pub config: Config,
    /// The patterns the kernel tests (empty where only userspace can test them exactly).
    pub kernel_patterns: KernelPatterns,
    /// The programs that always attach.
    pub sets: &'static [Set],
    pub attach_mode: AttachMode,
    /// How the path cache's probes attach, when the run has a path cache.
    pub path_cache: Option<AttachMode>,
    /// How the live-dentry probes attach, when the run counts live dentries.
    pub live: Option<AttachMode>,
    /// Whether events are read from the ring buffer at all.
    pub trace: bool,
    pub files: Option<Files>,
    pub caps: Caps,
}

impl Plan {
    /// `armed_levels`: where the cgroups of pods armed for (`--target-pending`) will appear.
    pub fn new(args: &Args, targets: &[Target], armed_levels: u32) -> Plan {
        let floor = args.bench.floor;
        let trace = args.trace_enabled;
        let config = Config {
            trace: u32::from(trace),
            scoped: u32::from(!targets.is_empty() || armed_levels != 0),
            ancestor_levels: targets
                .iter()
                .filter(|t| t.level < MAX_CGROUP_LEVEL)
                .fold(armed_levels & ((1 << MAX_CGROUP_LEVEL) - 1), |acc, t| {
                    acc | 1 << t.level
                }),
            wakeup_bytes: args.ring_buffer_size / 4,
            bench: match args.bench.trace_stage {
                Some(TraceStage::Scope) => dentry_common::BENCH_STOP_AFTER_SCOPE,
                Some(TraceStage::Walk) => dentry_common::BENCH_STOP_BEFORE_OUTPUT,
                None => 0,
            },
        };
        // Tracing needs no probes of its own: it emits from the counters' probes.
        let sets: &[Set] = match (floor, args.bench.floor_lookup, args.bench.floor_live) {
            (true, true, true) => &[Set::Floor, Set::FloorLookup, Set::FloorLive],
            (true, true, false) => &[Set::Floor, Set::FloorLookup],
            (true, false, true) => &[Set::Floor, Set::FloorLive],
            (true, false, false) => &[Set::Floor],
            (false, _, _) => &[Set::Counters],
        };
        // The path cache's probes must not miss a call: the kernel skips a kprobe that fires
        // while another kprobe's handler runs on the same CPU (a dentry freed in a softirq that
        // interrupted one of our programs), and fentry has no such shared guard. So they
        // prefer fentry even when the events use kprobes.
        let path_cache =
            (trace && !floor && !args.bench.no_path_cache).then_some(match args.attach_mode {
                AttachMode::Kprobe => AttachMode::Auto,
                other => other,
            });
        let files = (trace && !floor).then(|| Files {
            dir: args.trace_dir.clone(),
            max_bytes: (args.trace_max_size * 1024.0 * 1024.0) as u64,
            max_files: args.trace_max_files,
        });
        Plan {
            config,
            kernel_patterns: KernelPatterns::new(
                args.trace_patterns.0.iter().map(|p| p.as_bytes()),
            ),
            sets,
            attach_mode: args.attach_mode,
            path_cache,
            live: (!floor && !args.no_live).then_some(args.attach_mode),
            trace,
            files,
            caps: Caps {
                max_events: args.max_events,
                max_bytes: args.max_bytes,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn plan(flags: &[&str], targets: &[Target]) -> Plan {
        let args = Args::try_parse_from(std::iter::once("tracer").chain(flags.iter().copied()))
            .expect("flags parse");
        Plan::new(&args, targets, 0)
    }

    #[test]
    fn counters_only_by_default() {
        let p = plan(&[], &[]);
        assert_eq!(p.sets, [Set::Counters]);
        assert_eq!(
            p.live,
            Some(AttachMode::Auto),
            "live dentries are counted by default"
        );
        assert_eq!(plan(&["--no-live"], &[]).live, None);
        assert!(!p.trace && p.files.is_none() && p.path_cache.is_none());
        assert_eq!((p.config.trace, p.config.scoped, p.config.bench), (0, 0, 0));
        assert_eq!(p.config.wakeup_bytes, 4 << 20 >> 2);
    }

    #[test]
    fn tracing_opens_rotated_files_and_the_path_cache() {
        let p = plan(
            &[
                "--trace-enabled",
                "--trace-max-size",
                "0.5",
                "--trace-dir",
                "/t",
            ],
            &[],
        );
        assert_eq!(p.config.trace, 1);
        assert_eq!(
            p.files,
            Some(Files {
                dir: "/t".into(),
                max_bytes: 512 * 1024,
                max_files: 3
            })
        );
        assert_eq!(p.path_cache, Some(AttachMode::Auto));
    }

    #[test]
    fn the_path_cache_prefers_fentry_even_under_kprobe_mode() {
        let mode = |m: &str| plan(&["--trace-enabled", "--attach-mode", m], &[]).path_cache;
        assert_eq!(mode("kprobe"), Some(AttachMode::Auto));
        assert_eq!(mode("fentry"), Some(AttachMode::Fentry));
        let p = plan(&["--trace-enabled", "--attach-mode", "kprobe"], &[]);
        assert_eq!(p.attach_mode, AttachMode::Kprobe);
        assert!(
            plan(&["--trace-enabled", "--bench-no-path-cache"], &[])
                .path_cache
                .is_none()
        );
    }

    #[test]
    fn targets_scope_the_kernel_at_their_levels() {
        let t = |level| Target {
            id: 7,
            level,
            dir: PathBuf::new(),
        };
        let p = plan(&[], &[t(2), t(5), t(MAX_CGROUP_LEVEL + 3)]);
        assert_eq!(p.config.scoped, 1);
        // A target deeper than the kernel looks is matched by its own id only.
        assert_eq!(p.config.ancestor_levels, 1 << 2 | 1 << 5);
    }

    #[test]
    fn pods_armed_for_scope_the_kernel_before_any_target_exists() {
        let args = Args::try_parse_from(["tracer"]).unwrap();
        let p = Plan::new(&args, &[], 1 << 2 | 1 << 3);
        assert_eq!(
            (p.config.scoped, p.config.ancestor_levels),
            (1, 1 << 2 | 1 << 3)
        );
    }

    #[test]
    fn the_floor_benchmark_attaches_only_the_floor_and_writes_no_files() {
        let p = plan(&["--trace-enabled", "--bench-floor"], &[]);
        assert_eq!(p.sets, [Set::Floor]);
        assert!(p.files.is_none() && p.path_cache.is_none() && p.live.is_none());
        let p = plan(&["--bench-floor", "--bench-floor-live"], &[]);
        assert_eq!(p.sets, [Set::Floor, Set::FloorLive]);
        let p = plan(&["--bench-floor", "--bench-floor-lookup"], &[]);
        assert_eq!(p.sets, [Set::Floor, Set::FloorLookup]);
        assert!(
            Args::try_parse_from(["tracer", "--bench-floor-lookup"]).is_err(),
            "the two-probe floor needs --bench-floor"
        );
    }

    #[test]
    fn trace_stages_and_caps_reach_the_kernel_and_the_pipeline() {
        let stage = |s: &str| plan(&["--trace-enabled", "--bench-trace-stage", s], &[]).config;
        assert_eq!(stage("scope").bench, dentry_common::BENCH_STOP_AFTER_SCOPE);
        assert_eq!(stage("walk").bench, dentry_common::BENCH_STOP_BEFORE_OUTPUT);
        assert!(Args::try_parse_from(["tracer", "--bench-trace-stage", "x"]).is_err());
        let p = plan(&["--max-events", "5", "--max-bytes", "1K"], &[]);
        assert_eq!((p.caps.max_events, p.caps.max_bytes), (Some(5), Some(1024)));
    }

    #[test]
    fn kernel_patterns_come_from_the_trace_patterns() {
        assert_eq!(
            plan(&["--trace-patterns", ".ibd,#sql"], &[])
                .kernel_patterns
                .count,
            2
        );
        // A pattern with a `/` can span components: only userspace tests it.
        assert_eq!(
            plan(&["--trace-patterns", ".ibd,a/b"], &[])
                .kernel_patterns
                .count,
            0
        );
    }
}

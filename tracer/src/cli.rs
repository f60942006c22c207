//! Command-line flags: the reference's (same names and defaults) plus the ephemeral mode's.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Parser;

use crate::kernel::probes::AttachMode;

/// Traces the kernel dentry cache per container: Prometheus metrics, rotated TSV path traces.
#[derive(Debug, Parser)]
#[command(name = "tracer", version, about)]
pub struct Args {
    /// HTTP listen address (:PORT or HOST:PORT).
    #[arg(long, default_value = ":9090")]
    pub listen: String,
    /// Path to the host's /proc.
    #[arg(long, default_value = "/proc")]
    pub proc: PathBuf,
    /// Path to the host's cgroup2 filesystem.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup: PathBuf,
    /// How often the kernel counters are read into /metrics.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub poll_interval: Duration,
    /// How often cgroups are mapped to pods and containers.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub resolve_interval: Duration,
    /// Enable dentry path tracing on startup.
    #[arg(long)]
    pub trace_enabled: bool,
    /// Directory for the trace TSV files.
    #[arg(long, default_value = "/data/traces")]
    pub trace_dir: PathBuf,
    /// Size in MB at which traces.tsv is rotated.
    #[arg(long, default_value = "100", value_parser = megabytes)]
    pub trace_max_size: f64,
    /// Rotated trace files to keep.
    #[arg(long, default_value_t = 3)]
    pub trace_max_files: u32,
    /// Comma-separated path substrings; an event is kept when its path contains any.
    #[arg(long, default_value = "", value_parser = patterns)]
    pub trace_patterns: Patterns,
    /// Trace only this pod (its cgroup is found under --cgroup; all its containers, restarted
    /// ones included); repeatable.
    #[arg(long = "target-pod-uid", value_name = "UID", value_parser = pod_uid)]
    pub target_pod_uids: Vec<String>,
    /// A --target-pod-uid whose cgroup does not exist yet is armed rather than refused: the
    /// kernel makes its cgroup a target as the kubelet creates it, before its first container
    /// starts.
    #[arg(long)]
    pub target_pending: bool,
    /// More pod UIDs to trace, from this file (comma- or whitespace-separated), read again every
    /// --poll-interval: each new one is traced as a --target-pod-uid with --target-pending. The
    /// plugin writes it through a downward API volume to add pods to a running trace.
    #[arg(long, value_name = "FILE")]
    pub target_pod_uids_file: Option<PathBuf>,
    /// Scope to one container, by the runtime ID in its pod's status (the `containerd://`,
    /// `cri-o://` or `docker://` scheme may stay); repeatable.
    #[arg(long = "target-container-id", value_name = "ID")]
    pub target_container_ids: Vec<String>,
    /// Trace only tasks in this cgroup v2 directory or below it (repeatable).
    #[arg(long = "target-cgroup", value_name = "DIR")]
    pub target_cgroups: Vec<PathBuf>,
    /// Trace this long once the probes are attached (e.g. 30s, 5m); default: until SIGINT or
    /// SIGTERM.
    #[arg(long, value_parser = duration)]
    pub duration: Option<Duration>,
    /// After the run ends by --duration or a cap, keep serving /metrics and /traces this long
    /// (or until SIGTERM) so the files can be fetched; probes are detached meanwhile.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub linger: Option<Duration>,
    /// Write the paths of lookups in containers' overlay layers (their upper and lower
    /// directories) as the host sees them, relative to the filesystem holding the layer; by
    /// default they are written as the container sees them.
    #[arg(long)]
    pub host_paths: bool,
    /// Also write trace lines to stdout, header first (for log streaming).
    #[arg(long)]
    pub stdout: bool,
    /// With --stdout: add the process's `comm` and `pid` columns to each line (the files keep
    /// the contract's columns). `kubectl dentry explain` reads them.
    #[arg(long, requires = "stdout")]
    pub stdout_process: bool,
    /// Stop tracing after this many events (metrics go on; with --stdout the run ends).
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Stop tracing after this many bytes of trace lines (e.g. 500M, 2G).
    #[arg(long, value_parser = bytes)]
    pub max_bytes: Option<u64>,
    /// Print what this kernel offers (BTF, kprobes, fentry, lockdown, cgroup v2, capabilities,
    /// memlock) and exit non-zero naming what is missing.
    #[arg(long)]
    pub check: bool,
    /// fentry/fexit where the kernel allows it, else kprobes (auto); or force one for the
    /// counting and tracing probes (the path cache's probes prefer fentry even with kprobe).
    #[arg(long, value_enum, default_value = "auto")]
    pub attach_mode: AttachMode,
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, default_value = "4194304", value_parser = ring_buffer_size)]
    pub ring_buffer_size: u32,
    /// Do not count live dentries per owner (the dentry_live* gauges): saves three probes and
    /// an owner lookup per allocation and free.
    #[arg(long)]
    pub no_live: bool,
    /// Add a cgroup_id label to the per-container metrics (one series per cgroup).
    #[arg(long)]
    pub cgroup_id_label: bool,
    /// The kubelet's pod log directory (pod names).
    #[arg(long, default_value = "/var/log/pods")]
    pub pods_log_dir: PathBuf,
    /// The kubelet's container log links (container names).
    #[arg(long, default_value = "/var/log/containers")]
    pub containers_log_dir: PathBuf,
    /// CRI sockets to ask for pod and container names, comma-separated; the first that exists
    /// is used, the kubelet's log directories fill what it does not name. Empty: none.
    /// [default: /run/containerd/containerd.sock,/run/crio/crio.sock,/run/cri-dockerd.sock]
    #[arg(long, value_name = "PATHS")]
    pub cri_socket: Option<String>,
    /// The running kernel's BTF: a kernel built without /sys/kernel/btf/vmlinux can be given
    /// a file of its types (e.g. from BTFHub). Struct offsets and fentry targets come from it.
    #[arg(long, value_name = "FILE", default_value = "/sys/kernel/btf/vmlinux")]
    pub btf: PathBuf,
    /// Benchmark scaffolding, hidden from --help.
    #[command(flatten)]
    pub bench: Bench,
}

/// What `cargo xtask bench-kernel` needs; no user sets these.
#[derive(Debug, Default, clap::Args)]
pub struct Bench {
    /// Benchmark floor: attach only one probe counting allocations.
    #[arg(long = "bench-floor", hide = true)]
    pub floor: bool,
    /// With --bench-floor: the same probe on `d_splice_alias` too.
    #[arg(long = "bench-floor-lookup", hide = true, requires = "floor")]
    pub floor_lookup: bool,
    /// With --bench-floor: the same probe on `__d_alloc`'s return and on `dentry_free` too.
    #[arg(long = "bench-floor-live", hide = true, requires = "floor")]
    pub floor_live: bool,
    /// Trace without the kernel's directory path cache (every event walks its whole path).
    #[arg(long = "bench-no-path-cache", hide = true)]
    pub no_path_cache: bool,
    /// Have the kernel time every program run (`BPF_ENABLE_STATS`) and print each program's
    /// runs and mean ns per run in the summary. The timing itself costs two clock reads per run.
    #[arg(long = "bench-program-stats", hide = true)]
    pub program_stats: bool,
    /// Stop each traced event part-way (nothing reaches the ring buffer).
    #[arg(long = "bench-trace-stage", hide = true, value_enum)]
    pub trace_stage: Option<TraceStage>,
}

/// Where `--bench-trace-stage` stops an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceStage {
    /// After the scope check.
    Scope,
    /// After the path walk.
    Walk,
}

/// Parsed `--trace-patterns`.
#[derive(Debug, Clone, Default)]
pub struct Patterns(pub Vec<String>);

impl Args {
    /// The --cri-socket candidates.
    pub fn cri_sockets(&self) -> Vec<PathBuf> {
        match &self.cri_socket {
            None => dentry_common::CRI_SOCKETS
                .iter()
                .map(|s| Path::new("/run").join(s))
                .collect(),
            Some(list) => list
                .split(',')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// A pod UID as the API server writes it; a mistyped one would otherwise never match.
fn pod_uid(s: &str) -> Result<String, String> {
    if crate::owners::kubepath::is_uid(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a pod UID (36 lowercase hex digits and dashes, as in \
             `kubectl get pod NAME -o jsonpath='{{.metadata.uid}}'`)"
        ))
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}): use e.g. 500ms, 30s, 5m, 1h"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

fn megabytes(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(mb) if mb > 0.0 && mb.is_finite() => Ok(mb),
        _ => Err(format!(
            "{s:?} is not a size in MB: use a positive number, e.g. 100 or 0.5"
        )),
    }
}

/// Bytes with an optional K/M/G suffix (powers of 1024).
pub fn bytes(s: &str) -> Result<u64, String> {
    let err = || format!("{s:?} is not a size: use bytes or a number with K, M or G (e.g. 500M)");
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(err()),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| err())?;
    n.checked_mul(mult).filter(|&v| v > 0).ok_or_else(err)
}

fn patterns(s: &str) -> Result<Patterns, String> {
    dentry_common::parse_patterns(s)
        .map(Patterns)
        .map_err(|e| e.to_string())
}

fn ring_buffer_size(s: &str) -> Result<u32, String> {
    let n = bytes(s)?;
    match u32::try_from(n) {
        Ok(n) if n >= 4096 && n.is_power_of_two() => Ok(n),
        _ => Err(format!(
            "{s} is not a power of two between 4096 and 2G bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_sockets_default_to_the_runtimes_under_run_and_empty_means_none() {
        let parse = |extra: &[&str]| {
            Args::try_parse_from(std::iter::once("tracer").chain(extra.iter().copied()))
                .expect("parses")
                .cri_sockets()
        };
        assert_eq!(
            parse(&[]),
            [
                "/run/containerd/containerd.sock",
                "/run/crio/crio.sock",
                "/run/cri-dockerd.sock"
            ]
            .map(PathBuf::from)
        );
        assert!(parse(&["--cri-socket", ""]).is_empty());
        assert_eq!(
            parse(&["--cri-socket", "/a.sock,/b.sock"]),
            ["/a.sock", "/b.sock"].map(PathBuf::from)
        );
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(bytes("500M").unwrap(), 500 << 20);
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert!(bytes("12X").unwrap_err().contains("K, M or G"));
        assert!(bytes("0").is_err());
        assert!(duration("5x").unwrap_err().contains("use e.g."));
        assert!(duration("0s").is_err());
        assert_eq!(megabytes("0.5").unwrap(), 0.5);
        assert!(megabytes("-1").is_err());
        assert_eq!(ring_buffer_size("4096").unwrap(), 4096);
        assert!(ring_buffer_size("5000").is_err());
    }

    #[test]
    fn patterns_keep_the_reference_meaning() {
        assert_eq!(
            patterns(".ibd,#sql,.frm").unwrap().0,
            [".ibd", "#sql", ".frm"]
        );
        assert!(patterns("").unwrap().0.is_empty());
        assert!(patterns("a,\tb").is_err());
    }

    #[test]
    fn reference_defaults() {
        let a = Args::parse_from(["tracer"]);
        assert_eq!(a.listen, ":9090");
        assert_eq!(a.poll_interval, Duration::from_secs(5));
        assert_eq!(a.resolve_interval, Duration::from_secs(30));
        assert_eq!(a.trace_dir, PathBuf::from("/data/traces"));
        assert_eq!(a.trace_max_size, 100.0);
        assert_eq!(a.trace_max_files, 3);
        assert!(!a.trace_enabled);
    }
}

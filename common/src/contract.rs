//! The text the tracer writes and the plugin reads: the TSV header, the markers on stderr, the
//! runtimes' sockets.

/// The trace TSV's header line (design.md's contract): the tracer writes it first in every
/// file and on stdout; the plugin recognises it in a tracer pod's log.
pub const TSV_HEADER: &str = "timestamp\tpod\tcontainer\tcgroup_id\toperation\tpath\tfstype";

/// The stdout header with `--stdout-process`: the contract's columns, then the process's
/// `comm` and `pid` (what `kubectl dentry explain` reads). Files never carry them.
pub const TSV_PROCESS_HEADER: &str =
    "timestamp\tpod\tcontainer\tcgroup_id\toperation\tpath\tfstype\tcomm\tpid";

/// How the tracer's line starts once a `--linger` run is over and it only serves its files; the
/// plugin ends a `trace --keep` stream on it.
pub const LINGER_MARKER: &str = "tracer: finished; serving";

/// How the tracer's own stderr line starts once every probe is attached (and a stop signal
/// will be honoured); the attach mode follows (`fentry`, `kprobe` or `mixed`). The plugin
/// waits for it before it says "tracing", and so do the VM scripts.
pub const ATTACHED_MARKER: &str = "tracer: attached mode=";

/// The attach mode of an `ATTACHED_MARKER` line; `None` for any other line.
pub fn attached_mode(line: &str) -> Option<&str> {
    let mode = line.strip_prefix(ATTACHED_MARKER)?.split(' ').next()?;
    (!mode.is_empty()).then_some(mode)
}

/// The container runtimes' CRI sockets (containerd, CRI-O, cri-dockerd), relative to the host's
/// `/run`, in the order the tracer tries them.
pub const CRI_SOCKETS: [&str; 3] = [
    "containerd/containerd.sock",
    "crio/crio.sock",
    "cri-dockerd.sock",
];

/// The Prometheus metric names the tracer exposes (docs/metrics.md) and the plugin reads.
pub mod metric {
    pub const ALLOC_TOTAL: &str = "dentry_alloc_total";
    pub const POSITIVE_TOTAL: &str = "dentry_positive_total";
    pub const NEGATIVE_TOTAL: &str = "dentry_negative_total";
    pub const RECLAIM_TOTAL: &str = "dentry_reclaim_total";
    pub const RECLAIM_FREED_TOTAL: &str = "dentry_reclaim_freed_total";
    /// The node's `/proc/sys/fs/dentry-state`, by `type`.
    pub const COUNT: &str = "dentry_count";
    pub const EVENTS_TOTAL: &str = "dentry_tracer_events_total";
    pub const EVENTS_DROPPED_TOTAL: &str = "dentry_tracer_events_dropped_total";
    pub const EVENTS_FILTERED_TOTAL: &str = "dentry_tracer_events_filtered_total";
    pub const EVENTS_CONTENDED_TOTAL: &str = "dentry_tracer_events_contended_total";
    pub const PROBE_MISSED_TOTAL: &str = "dentry_tracer_probe_missed_total";
    pub const CGROUPS_TRACKED: &str = "dentry_tracer_cgroups_tracked";
    /// Live dentries per owner (docs/counters.md, "Live").
    pub const LIVE: &str = "dentry_live";
    pub const LIVE_NEGATIVE: &str = "dentry_live_negative";
    pub const LIVE_BYTES: &str = "dentry_live_bytes";
    /// The node's dentry cache memory, and the share of it the node's pods hold.
    pub const CACHE_BYTES: &str = "dentry_cache_bytes";
    pub const CACHE_PODS_RATIO: &str = "dentry_cache_pods_ratio";
    pub const LIVE_UNTRACKED_TOTAL: &str = "dentry_tracer_live_untracked_total";
    pub const ATTACH_INFO: &str = "dentry_tracer_attach_info";
    pub const BUILD_INFO: &str = "dentry_tracer_build_info";
    pub const FEATURE: &str = "dentry_tracer_feature";
}

/// The features a kernel can lack, by the name in `--check` and in
/// `dentry_tracer_feature{feature}`, with what a user loses when it is off (the start of the
/// one line the tracer and the plugin say: `live gauges off: <why>`).
pub const FEATURES: [(&str, &str); 4] = [
    ("trace", "trace events"),
    ("path-cache", "path cache"),
    ("live", "live gauges"),
    ("pending", "pending pods"),
];

/// What a user loses when the feature `name` is off (the name itself for one not listed).
pub fn feature_what(name: &str) -> &str {
    FEATURES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(name, |(_, what)| what)
}

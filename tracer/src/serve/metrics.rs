//! The Prometheus metrics (names are the reference's contract; see docs/metrics.md).
//!
//! The kernel keeps absolute per-cgroup totals; this module turns each poll into deltas and adds
//! them to counters keyed by namespace/pod/container, so a series never goes backwards: not when
//! a cgroup disappears, not when its id is reused by a new cgroup (its map slot then restarts
//! from a lower value, which counts as a reset of that slot, never as a negative delta).
use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use dentry_common::{Counters, metric};
use prometheus::{
    Encoder as _, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::{
    kernel::{features::Features, live::Held},
    owners::Owners,
};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// All metric families and the per-cgroup state needed to compute deltas.
pub struct Metrics {
    registry: Registry,
    alloc: IntCounterVec,
    positive: IntCounterVec,
    negative: IntCounterVec,
    reclaim: IntCounterVec,
    reclaim_freed: IntCounter,
    dentry_count: IntGaugeVec,
    events: IntCounter,
    drops: KernelTotal,
    filtered: KernelTotal,
    contended: KernelTotal,
    missed: KernelTotal,
    cgroups_tracked: IntGauge,
    live: IntGaugeVec,
    live_negative: IntGaugeVec,
    live_bytes: IntGaugeVec,
    cache_bytes: IntGauge,
    cache_pods_ratio: prometheus::Gauge,
    live_untracked: KernelTotal,
    last: HashMap<u64, Counters>,
    cgroup_id_label: bool,
    /// The longest a cgroup the owner map does not name yet is held back (see
    /// `hold_unnamed`), and when each such cgroup's counts were first held.
    hold_max: Duration,
    unnamed: HashMap<u64, Instant>,
}

/// A counter fed with a total the kernel keeps (summed over CPUs): it only ever moves up.
struct KernelTotal {
    counter: IntCounter,
    last: u64,
}

impl KernelTotal {
    fn set(&mut self, total: u64) {
        self.counter.inc_by(total.saturating_sub(self.last));
        self.last = self.last.max(total);
    }
}

/// `/proc/sys/fs/dentry-state`: nr_dentry, nr_unused, age_limit, want_pages, nr_negative, dummy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DentryState {
    pub total: i64,
    pub unused: i64,
    pub negative: i64,
}

impl DentryState {
    pub fn parse(text: &str) -> Option<DentryState> {
        let f: Vec<i64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        Some(DentryState {
            total: *f.first()?,
            unused: *f.get(1)?,
            negative: *f.get(4)?,
        })
    }
}

fn err(e: prometheus::Error) -> anyhow::Error {
    anyhow::anyhow!("registering metrics: {e}")
}

/// Registers a freshly made collector and returns a handle to it.
fn register<M>(registry: &Registry, made: prometheus::Result<M>) -> anyhow::Result<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = made.map_err(err)?;
    registry.register(Box::new(metric.clone())).map_err(err)?;
    Ok(metric)
}

impl Metrics {
    /// `cgroup_id_label` adds a `cgroup_id` label (one series per cgroup: high cardinality).
    pub fn new(
        cgroup_id_label: bool,
        attach_mode: &str,
        features: &Features,
    ) -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let mut labels = vec!["namespace", "pod", "container"];
        if cgroup_id_label {
            labels.push("cgroup_id");
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            register(&registry, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let alloc = counter_vec(
            metric::ALLOC_TOTAL,
            "Dentries allocated, per container.",
            &labels,
        )?;
        let positive = counter_vec(
            metric::POSITIVE_TOTAL,
            "Dentries given an inode (lookup hit on disk, create), per container.",
            &labels,
        )?;
        let negative = counter_vec(
            metric::NEGATIVE_TOTAL,
            "Dentries left without an inode (failed lookup, unlink), per container.",
            &labels,
        )?;
        let reclaim = counter_vec(
            metric::RECLAIM_TOTAL,
            "Dcache reclaim calls: path=shrink (shrink_dcache_sb) or prune (prune_dcache_sb).",
            &["path"],
        )?;
        let reclaim_freed = register(
            &registry,
            IntCounter::new(
                metric::RECLAIM_FREED_TOTAL,
                "Dentries prune_dcache_sb reported freed.",
            ),
        )?;
        let dentry_count = gauge_vec(
            metric::COUNT,
            "Node dentries from /proc/sys/fs/dentry-state (negative: unused negative ones).",
            &["type"],
        )?;
        let events = register(
            &registry,
            IntCounter::new(
                metric::EVENTS_TOTAL,
                "Trace events received from the kernel and kept by the filters.",
            ),
        )?;
        let drops = register(
            &registry,
            IntCounter::new(
                metric::EVENTS_DROPPED_TOTAL,
                "Trace events lost because the ring buffer was full.",
            ),
        )?;
        let filtered = register(
            &registry,
            IntCounter::new(
                metric::EVENTS_FILTERED_TOTAL,
                "Trace events the kernel left out because no trace pattern matched their path.",
            ),
        )?;
        let contended = register(
            &registry,
            IntCounter::new(
                metric::EVENTS_CONTENDED_TOTAL,
                "Probe hits that found their CPU's tracer state in use by a program they \
                 preempted or interrupted: counted exactly, but not traced.",
            ),
        )?;
        let missed = register(
            &registry,
            IntCounter::new(
                metric::PROBE_MISSED_TOTAL,
                "Probe runs the kernel skipped because the same program (fentry, on a \
                 preemptible kernel) or, for a kprobe, any BPF program or BPF map system call was \
                 already active on that CPU: neither counted nor traced.",
            ),
        )?;
        let cgroups_tracked = register(
            &registry,
            IntGauge::new(
                metric::CGROUPS_TRACKED,
                "cgroups with counters in the kernel map.",
            ),
        )?;
        let live = gauge_vec(
            metric::LIVE,
            "Dentries alive now that were allocated since the tracer started, per owner (the \
             memory cgroup they are charged to).",
            &labels,
        )?;
        let live_negative = gauge_vec(
            metric::LIVE_NEGATIVE,
            "Of dentry_live, the ones without an inode (negative).",
            &labels,
        )?;
        let live_bytes = gauge_vec(
            metric::LIVE_BYTES,
            "Memory of dentry_live: the objects as charged to the memory cgroup, plus long \
             names' external storage.",
            &labels,
        )?;
        let cache_bytes = register(
            &registry,
            IntGauge::new(
                metric::CACHE_BYTES,
                "The node's dentry cache memory: its slabs' pages (/proc/slabinfo), or \
                 dentry-state's count times the object size where slabinfo is unreadable.",
            ),
        )?;
        let cache_pods_ratio = register(
            &registry,
            prometheus::Gauge::new(
                metric::CACHE_PODS_RATIO,
                "Share of dentry_cache_bytes that the node's pods hold (dentry_live_bytes of \
                 owners in pods over dentry_cache_bytes).",
            ),
        )?;
        let live_untracked = register(
            &registry,
            IntCounter::new(
                metric::LIVE_UNTRACKED_TOTAL,
                "Dentries allocated since the start that the live gauges do not count (owner \
                 unreadable, tracking map full).",
            ),
        )?;
        gauge_vec(
            metric::ATTACH_INFO,
            "How the probes are attached (value 1).",
            &["mode"],
        )?
        .with_label_values(&[attach_mode])
        .set(1);
        gauge_vec(
            metric::BUILD_INFO,
            "The tracer's version (value 1).",
            &["version"],
        )?
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        let feature = gauge_vec(
            metric::FEATURE,
            "Whether a feature runs on this kernel (1) or is off (0, reason says why).",
            &["feature", "reason"],
        )?;
        for (f, reason) in features.all() {
            feature
                .with_label_values(&[f.name(), reason.unwrap_or("")])
                .set(i64::from(reason.is_none()));
        }
        Ok(Metrics {
            registry,
            alloc,
            positive,
            negative,
            reclaim,
            reclaim_freed,
            dentry_count,
            events,
            drops: KernelTotal {
                counter: drops,
                last: 0,
            },
            filtered: KernelTotal {
                counter: filtered,
                last: 0,
            },
            contended: KernelTotal {
                counter: contended,
                last: 0,
            },
            missed: KernelTotal {
                counter: missed,
                last: 0,
            },
            cgroups_tracked,
            live,
            live_negative,
            live_bytes,
            cache_bytes,
            cache_pods_ratio,
            live_untracked: KernelTotal {
                counter: live_untracked,
                last: 0,
            },
            last: HashMap::new(),
            cgroup_id_label,
            hold_max: Duration::ZERO,
            unnamed: HashMap::new(),
        })
    }

    /// Holds back the counts of a cgroup the owner map does not name, until a snapshot whose
    /// sources were read after the counts were first seen (a container that has just started
    /// is named by the next resolve, and its first lookups then count under its pod rather
    /// than under empty labels), and for `max` at most. A cgroup such a snapshot does not name
    /// either (a system service) counts under what is known of it, all of it. Time, not a
    /// number of polls: the poll ticks catch up in a burst after a stall, the resolver does not.
    pub fn hold_unnamed(&mut self, max: Duration) {
        self.hold_max = max;
    }

    /// Whether every count of `now` (the cgroup's latest totals) is in the counters: none is
    /// held back waiting for the cgroup's name.
    pub fn delivered(&self, id: u64, now: &Counters) -> bool {
        !self.unnamed.contains_key(&id) && self.last.get(&id).unwrap_or(&Counters::default()) == now
    }

    /// Forgets a cgroup whose kernel counters were removed (`run::retire`): were the id to
    /// come back, its counts would all be new.
    pub fn forget(&mut self, id: u64) {
        self.last.remove(&id);
        self.unnamed.remove(&id);
    }

    /// Folds one poll of the kernel's per-cgroup totals, read at `at`, into the counters.
    pub fn update(&mut self, totals: &BTreeMap<u64, Counters>, owners: &Owners, at: Instant) {
        self.cgroups_tracked.set(totals.len() as i64);
        let empty = crate::owners::Owner::default();
        for (&id, now) in totals {
            let before = self.last.get(&id).copied().unwrap_or_default();
            let d = delta(&before, now);
            if d == Counters::default() {
                continue;
            }
            let owner = owners.get(id);
            // A pod cgroup can be found before its pod's name is (the kubelet's files lag).
            if owner.is_none_or(|o| o.pod.is_empty()) {
                let first = *self.unnamed.entry(id).or_insert(at);
                let resolved_since = owners.began().is_some_and(|b| b > first);
                if !resolved_since && at.saturating_duration_since(first) < self.hold_max {
                    continue;
                }
            }
            self.unnamed.remove(&id);
            let owner = owner.unwrap_or(&empty);
            self.last.insert(id, *now);
            let id_text = id.to_string();
            let mut labels = vec![
                owner.namespace.as_str(),
                owner.pod.as_str(),
                owner.container.as_str(),
            ];
            if self.cgroup_id_label {
                labels.push(&id_text);
            }
            self.alloc.with_label_values(&labels).inc_by(d.alloc);
            self.positive.with_label_values(&labels).inc_by(d.positive);
            self.negative.with_label_values(&labels).inc_by(d.negative);
            self.reclaim
                .with_label_values(&["shrink"])
                .inc_by(d.shrink_calls);
            self.reclaim
                .with_label_values(&["prune"])
                .inc_by(d.prune_calls);
            self.reclaim_freed.inc_by(d.pruned);
        }
    }

    /// Sets the live gauges: one series per owner's labels (owners sharing labels add up), and
    /// the node's cache size and the pods' share of it.
    pub fn set_live(&mut self, held: &BTreeMap<u64, Held>, owners: &Owners, cache: Option<u64>) {
        let empty = crate::owners::Owner::default();
        let mut by_labels: BTreeMap<Vec<String>, Held> = BTreeMap::new();
        let mut pods_bytes = 0;
        for (&id, h) in held {
            let owner = owners.get(id).unwrap_or(&empty);
            if !owner.pod_uid.is_empty() {
                pods_bytes += h.bytes;
            }
            let mut labels = vec![
                owner.namespace.clone(),
                owner.pod.clone(),
                owner.container.clone(),
            ];
            if self.cgroup_id_label {
                labels.push(id.to_string());
            }
            *by_labels.entry(labels).or_default() += *h;
        }
        // Owners that hold nothing any more, or are gone, leave no series behind.
        for gauge in [&self.live, &self.live_negative, &self.live_bytes] {
            gauge.reset();
        }
        for (labels, h) in &by_labels {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            self.live.with_label_values(&labels).set(h.dentries as i64);
            self.live_negative
                .with_label_values(&labels)
                .set(h.negative as i64);
            self.live_bytes
                .with_label_values(&labels)
                .set(h.bytes as i64);
        }
        if let Some(cache) = cache.filter(|c| *c > 0) {
            self.cache_bytes.set(cache as i64);
            self.cache_pods_ratio.set(pods_bytes as f64 / cache as f64);
        }
    }

    /// The kernel's count of dentries it could not count live (absolute).
    pub fn set_live_untracked(&mut self, total: u64) {
        self.live_untracked.set(total);
    }

    /// Sets the node gauges from /proc/sys/fs/dentry-state.
    pub fn set_dentry_state(&self, s: DentryState) {
        self.dentry_count.with_label_values(&["total"]).set(s.total);
        self.dentry_count
            .with_label_values(&["unused"])
            .set(s.unused);
        self.dentry_count
            .with_label_values(&["negative"])
            .set(s.negative);
    }

    /// The ring buffer's drop count so far (absolute, from the kernel).
    pub fn set_drops(&mut self, total: u64) {
        self.drops.set(total);
    }

    /// The count of events the kernel's pattern test left out so far (absolute).
    pub fn set_filtered(&mut self, total: u64) {
        self.filtered.set(total);
    }

    /// The count of probe hits that found their CPU busy so far (absolute).
    pub fn set_contended(&mut self, total: u64) {
        self.contended.set(total);
    }

    /// The kernel's count of skipped probe runs so far (absolute).
    pub fn set_missed(&mut self, total: u64) {
        self.missed.set(total);
    }

    pub fn add_events(&self, n: u64) {
        self.events.inc_by(n);
    }

    /// The text exposition.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * 1024);
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Field-wise `now - before`; a field that went down means the slot restarted (a new cgroup
/// reusing the id), so all of `now` is new.
fn delta(before: &Counters, now: &Counters) -> Counters {
    before.zip_with(now, |b, n| if n >= b { n - b } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).unwrap()
    }

    fn value(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn each_feature_has_a_gauge_saying_whether_it_runs_and_why_not() {
        let mut features = Features::default();
        features.off(
            crate::kernel::features::Feature::Live,
            "struct slab has no member obj_exts",
        );
        let m = Metrics::new(false, "kprobe", &features).unwrap();
        let text = text(&m);
        assert_eq!(
            value(
                &text,
                "dentry_tracer_feature{feature=\"live\",reason=\"struct slab has no member obj_exts\"}"
            ),
            Some(0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                "dentry_tracer_feature{feature=\"trace\",reason=\"\"}"
            ),
            Some(1),
            "{text}"
        );
    }

    #[test]
    fn counters_never_go_backwards_when_an_id_is_reused() {
        let mut m = Metrics::new(false, "kprobe", &Features::default()).unwrap();
        let owners = Owners::default();
        let at = |alloc| {
            BTreeMap::from([(
                7u64,
                Counters {
                    alloc,
                    ..Default::default()
                },
            )])
        };
        m.update(&at(100), &owners, Instant::now());
        m.update(&at(150), &owners, Instant::now());
        // The cgroup went away and a new one got id 7: its slot restarts low.
        m.update(&at(20), &owners, Instant::now());
        let t = text(&m);
        let series = r#"dentry_alloc_total{container="",namespace="",pod=""}"#;
        assert_eq!(value(&t, series), Some(170), "{t}");
    }

    #[test]
    fn a_new_cgroup_counts_under_its_name_once_resolved_and_unnamed_ones_count_late() {
        let mut m = Metrics::new(false, "kprobe", &Features::default()).unwrap();
        m.hold_unnamed(Duration::from_secs(15));
        let t0 = Instant::now();
        let secs = |n| t0 + Duration::from_secs(n);
        let at = |id, alloc| {
            BTreeMap::from([(
                id,
                Counters {
                    alloc,
                    ..Default::default()
                },
            )])
        };
        // The resolver's last snapshot was read before any of the counts below.
        let stale = Owners::default().began_at(t0);
        let app = |pod: &str| crate::owners::Owner {
            pod_uid: "u".into(),
            namespace: if pod.is_empty() { "" } else { "batch" }.into(),
            pod: pod.into(),
            container: if pod.is_empty() { "" } else { "app" }.into(),
        };
        let mut named = Owners::default().began_at(secs(5));
        named.insert(7, app("first-0"));
        let pod = r#"dentry_alloc_total{container="app",namespace="batch",pod="first-0"}"#;
        let nobody = r#"dentry_alloc_total{container="",namespace="",pod=""}"#;
        // Polls before the resolver has seen the container, a burst of them after a stall
        // among them: nothing yet, nothing lost.
        m.update(&at(7, 400), &stale, secs(1));
        for n in 2..10 {
            m.update(&at(7, 1000), &stale, secs(2) + Duration::from_millis(n));
        }
        assert_eq!(value(&text(&m), pod), None);
        assert_eq!(value(&text(&m), nobody), None);
        m.update(&at(7, 1000), &named, secs(6));
        assert_eq!(value(&text(&m), pod), Some(1000));
        assert_eq!(value(&text(&m), nobody), None);

        // A pod cgroup found before its pod's name is: held too.
        let mut nameless = Owners::default().began_at(t0);
        nameless.insert(8, app(""));
        m.update(&at(8, 30), &nameless, secs(1));
        assert_eq!(value(&text(&m), nobody), None);
        let mut later = Owners::default().began_at(secs(2));
        later.insert(8, app("first-0"));
        later.insert(7, app("first-0"));
        m.update(&at(8, 30), &later, secs(3));
        assert_eq!(value(&text(&m), pod), Some(1030));

        // Never named: counted, in full, once a snapshot read after its first counts does
        // not name it either.
        m.update(&at(9, 5), &stale, secs(20));
        m.update(&at(9, 8), &stale, secs(21));
        assert_eq!(value(&text(&m), nobody), None);
        let resolved = Owners::default().began_at(secs(21));
        m.update(&at(9, 9), &resolved, secs(22));
        assert_eq!(value(&text(&m), nobody), Some(9));
        // Or once the hold is over, where the resolver stalls.
        m.update(&at(10, 4), &stale, secs(30));
        m.update(&at(10, 6), &stale, secs(44));
        assert_eq!(value(&text(&m), nobody), Some(9));
        m.update(&at(10, 6), &stale, secs(45));
        assert_eq!(value(&text(&m), nobody), Some(15));
    }

    #[test]
    fn a_restarted_container_keeps_counting_in_the_same_series() {
        // The restart is a new cgroup (a new id) for the same pod and container: `top`'s
        // rates, from these counters, go on across it rather than resetting.
        let mut m = Metrics::new(false, "kprobe", &Features::default()).unwrap();
        let app = |uid: &str| crate::owners::Owner {
            pod_uid: uid.into(),
            namespace: "batch".into(),
            pod: "crashy-0".into(),
            container: "app".into(),
        };
        let mut owners = Owners::default();
        owners.insert(11, app("u"));
        let negative = |n| Counters {
            negative: n,
            ..Default::default()
        };
        m.update(
            &BTreeMap::from([(11, negative(300))]),
            &owners,
            Instant::now(),
        );
        owners.insert(12, app("u"));
        m.update(
            &BTreeMap::from([(11, negative(300)), (12, negative(50))]),
            &owners,
            Instant::now(),
        );
        let series = r#"dentry_negative_total{container="app",namespace="batch",pod="crashy-0"}"#;
        assert_eq!(value(&text(&m), series), Some(350));
    }

    #[test]
    fn node_gauges_and_health() {
        let mut m = Metrics::new(false, "fentry", &Features::default()).unwrap();
        m.set_dentry_state(DentryState::parse("123 45 45 0 6 0\n").unwrap());
        m.set_drops(5);
        m.set_drops(3); // never backwards
        m.set_filtered(40);
        m.set_filtered(42);
        m.add_events(9);
        let t = text(&m);
        assert_eq!(value(&t, r#"dentry_count{type="total"}"#), Some(123));
        assert_eq!(value(&t, r#"dentry_count{type="negative"}"#), Some(6));
        assert_eq!(value(&t, "dentry_tracer_events_dropped_total"), Some(5));
        assert_eq!(value(&t, "dentry_tracer_events_total"), Some(9));
        assert_eq!(value(&t, "dentry_tracer_events_filtered_total"), Some(42));
        assert_eq!(
            value(&t, r#"dentry_tracer_attach_info{mode="fentry"}"#),
            Some(1)
        );
        assert!(DentryState::parse("1 2").is_none());
    }
}

//! A container that restarts, on real kernels: the kubelet removes its cgroup and makes a new
//! one (a new container ID) under the same pod cgroup. A tracer scoped to the pod traces both
//! runs, and the container's counters carry on across the restart: `top` (two scrapes of
//! `/metrics`) sees one series that only grows.
use std::time::Duration;

use xtask::{kernel::Kernel, scripts, vm::VmRun};

const UID: &str = "8a4f5e6d-7b8c-4d9e-af01-2b3c4d5e6f70";
const FIRST_CID: &str = "dd44ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd66ee77ff88aa99";
const SECOND_CID: &str = "ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd66ee77ff88aa99bb00";
const LOOKUPS: u64 = 300;
const SERIES: &str = r#"dentry_negative_total{container="app",namespace="prod",pod="web-0"}"#;

fn script() -> String {
    let body = format!(
        r#"
POD=$CG/kubepods/besteffort/pod{UID}
mkdir -p $POD /mnt/tmpfs /var/log/pods/prod_web-0_{UID}/app /var/log/containers
for d in $CG $CG/kubepods $CG/kubepods/besteffort; do
  echo +memory > "$d/cgroup.subtree_control"
done
mount -t tmpfs tmpfs /mnt/tmpfs
mkdir -p /mnt/tmpfs/first /mnt/tmpfs/second
$TRACER --target-pod-uid {UID} --trace-enabled --stdout --trace-dir /traces \
  --poll-interval 1s --resolve-interval 1s --listen 127.0.0.1:9090 \
  > /tmp/trace.tsv 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err

# scrape NAME: /metrics once its counters have been read twice since now.
scrape() {{
  sleep 2.5
  wget -q -O - http://127.0.0.1:9090/metrics | sed "s/^/@@$1 /"
}}

# tracked: how many cgroups the kernel's counter map holds.
tracked() {{
  wget -q -O - http://127.0.0.1:9090/metrics | awk '/^dentry_tracer_cgroups_tracked /{{print $2}}'
}}

# The container's first run, then its restart: the old cgroup goes, a new one comes.
: > /var/log/containers/web-0_prod_app-{FIRST_CID}.log
mkdir $POD/{FIRST_CID}
run_in $POD/{FIRST_CID} lookups /mnt/tmpfs/first {LOOKUPS}
scrape before
tracked_before=$(tracked)
echo "@@first-id $(stat -c %i $POD/{FIRST_CID})"
rmdir $POD/{FIRST_CID}
rm /var/log/containers/web-0_prod_app-{FIRST_CID}.log
: > /var/log/containers/web-0_prod_app-{SECOND_CID}.log
mkdir $POD/{SECOND_CID}
run_in $POD/{SECOND_CID} lookups /mnt/tmpfs/second {LOOKUPS}
scrape after
echo "@@second-id $(stat -c %i $POD/{SECOND_CID})"
# The first container's counters leave the kernel's map once it is gone: the map then holds
# as many cgroups as before the restart (waited for up to 30 s; a poll or two is enough).
i=0
while [ "$(tracked)" != "$tracked_before" ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done
echo "@@tracked $tracked_before $(tracked)"
stop_tracer $T tracer
for d in first second; do
  echo "@@traced $d $(grep -c "	negative	/$d/missing-" /tmp/trace.tsv)"
done
"#
    );
    scripts::script(&body, &[])
}

fn check(series: &str) {
    let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("kernel {series}: {e:#}"));
    let out = VmRun::new(&kernel, script())
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .timeout(Duration::from_secs(900))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = &out.log;
    assert_eq!(out.status, 0, "{series}: the script failed; log:\n{log}");
    assert_eq!(out.value("tracer-exit"), Some("0"), "{series}: {log}");
    let negative = |scrape: &str| -> u64 {
        out.tagged(scrape)
            .iter()
            .find_map(|l| l.strip_prefix(SERIES)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{series}: no {SERIES} in the {scrape} scrape:\n{log}"))
            as u64
    };
    let (before, after) = (negative("before"), negative("after"));
    eprintln!("{series}: {SERIES} {before} before the restart, {after} after");
    // Each run's failed lookups are counted in the one series; the first run's stay in it
    // after its cgroup is gone.
    assert!(before >= LOOKUPS, "{series}: before the restart {before}");
    assert!(
        after >= before + LOOKUPS,
        "{series}: {before} before the restart, {after} after"
    );
    // The first container's counters left the kernel's map (its counts stay in the series,
    // as asserted above); the second's are there at the end.
    let ids = |tag: &str| {
        out.value(tag)
            .unwrap_or_else(|| panic!("{series}: no {tag}\n{log}"))
    };
    let (first, second) = (ids("first-id"), ids("second-id"));
    let summary_has = |id: &str| {
        out.tagged("tracer")
            .iter()
            .any(|l| l.starts_with(&format!("cgroup cgroup_id={id} ")))
    };
    assert!(
        !summary_has(first),
        "{series}: the removed container's cgroup {first} is still in the counter map \
         (tracked before the restart, at the end: {:?})\n{log}",
        out.value("tracked")
    );
    assert!(
        summary_has(second),
        "{series}: no counters of cgroup {second}\n{log}"
    );
    // The pod's scope covers the new container cgroup: both runs are traced, in full.
    for run in ["first", "second"] {
        let traced = out
            .tagged("traced")
            .into_iter()
            .find_map(|l| l.strip_prefix(&format!("{run} ")));
        assert_eq!(
            traced,
            Some(LOOKUPS.to_string().as_str()),
            "{series}: the {run} run's lookups\n{log}"
        );
    }
}

#[test]
fn a_restarted_container_keeps_counting_and_stays_traced_on_debian_6_1() {
    check("6.1");
}

#[test]
fn a_restarted_container_keeps_counting_and_stays_traced_on_debian_6_12() {
    check("6.12");
}

//! A kernel that lacks one dependency costs the feature that needs it, never the tool: on a
//! real kernel (Debian 6.12 under qemu) the tracer is given that kernel's own BTF with one
//! member renamed (`slab.obj_exts`, where the live gauges find a dentry's memory cgroup), as a
//! kernel whose layout we do not know would have it. It must run, count and trace; say in one
//! line that the live gauges are off and why; and show `dentry_tracer_feature` 0 for `live`
//! and 1 for the rest in `/metrics`.
use std::time::Duration;

use xtask::{kernel::Kernel, vm::VmRun};

const LOOKUPS: u32 = 500;

/// `btf` with every occurrence of the member name `from` in its string section replaced by
/// `to` (the same length, so no offset moves).
fn renamed(btf: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let needle = [b"\0", from.as_bytes(), b"\0"].concat();
    let mut out = btf.to_vec();
    let mut found = 0;
    let mut at = 0;
    while let Some(i) = out[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + i + 1;
        out[start..start + from.len()].copy_from_slice(to.as_bytes());
        found += 1;
        at = start;
    }
    assert!(found > 0, "{from} is not a name in this BTF");
    out
}

fn script() -> String {
    let body = format!(
        r#"
mkdir -p $CG/pod /tmp/work
echo "@@cgroup pod $(stat -c %i $CG/pod)"
$TRACER --btf /renamed.btf --target-cgroup $CG/pod --trace-enabled --stdout \
  --trace-dir /tmp/traces --listen 127.0.0.1:9090 > /tmp/trace.tsv 2>/tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
run_in pod lookups /tmp/work {LOOKUPS}
sleep 2
wget -q -O /tmp/metrics http://127.0.0.1:9090/metrics
stop_tracer $T tracer
grep '^dentry_tracer_feature\|^dentry_alloc_total\|^dentry_live' /tmp/metrics | sed 's/^/@@metric /'
echo "@@tsv-lines $(grep -c missing- /tmp/trace.tsv)"
"#
    );
    xtask::scripts::script(&body, &[])
}

#[test]
fn a_layout_we_do_not_know_turns_the_live_gauges_off_and_nothing_else() {
    let kernel = Kernel::fetch("6.12").unwrap_or_else(|e| panic!("kernel 6.12: {e:#}"));
    let btf = kernel.btf().unwrap_or_else(|e| panic!("{e:#}"));
    let btf = std::fs::read(btf).expect("the kernel's BTF");
    let out = VmRun::new(&kernel, script())
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .file("/renamed.btf", renamed(&btf, "obj_exts", "obj_exXs"))
        .timeout(Duration::from_secs(600))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = &out.log;
    assert_eq!(out.status, 0, "the script failed; log:\n{log}");
    assert_eq!(out.value("tracer-exit"), Some("0"), "{log}");

    // One line names the feature and the member the kernel lacks.
    let tracer = out.tagged("tracer");
    let off: Vec<&str> = tracer
        .iter()
        .copied()
        .filter(|l| l.contains(" off: "))
        .collect();
    assert_eq!(off.len(), 1, "one feature off, one line: {tracer:#?}");
    assert!(
        off[0].starts_with("tracer: live gauges off: ") && off[0].contains("obj_exts"),
        "{}",
        off[0]
    );

    // The gauge: live 0 with its reason, every other feature 1.
    let metrics = out.tagged("metric");
    let feature = |name: &str| {
        metrics
            .iter()
            .find(|l| l.starts_with(&format!("dentry_tracer_feature{{feature=\"{name}\"")))
            .unwrap_or_else(|| panic!("no dentry_tracer_feature for {name}: {metrics:#?}"))
            .rsplit(' ')
            .next()
            .map(str::to_owned)
    };
    assert_eq!(feature("live").as_deref(), Some("0"), "{metrics:#?}");
    for on in ["trace", "path-cache", "pending"] {
        assert_eq!(feature(on).as_deref(), Some("1"), "{on}: {metrics:#?}");
    }
    assert!(
        !metrics.iter().any(|l| l.starts_with("dentry_live{")),
        "no live series without the feature: {metrics:#?}"
    );

    // Everything else ran: the pod's lookups counted and traced.
    let id: u64 = out
        .value("cgroup")
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
        .expect("the pod's cgroup id");
    let summary = xtask::dentry_workload::Summary::parse(&tracer);
    let alloc = summary.count(id, "alloc");
    assert!(
        (u64::from(LOOKUPS)..u64::from(LOOKUPS) + 50).contains(&alloc),
        "counted {alloc} allocations for {LOOKUPS} lookups\n{log}"
    );
    let lines: u64 = out
        .value("tsv-lines")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert_eq!(
        lines,
        2 * u64::from(LOOKUPS),
        "alloc and negative per lookup\n{log}"
    );
}

//! Records what the plugin's tests replay: a tracer run with exactly the arguments the plugin
//! gives a tracer pod, on a real kernel in the VM, inside the kubepods tree of
//! `node_workload`. `cargo xtask record-fixtures` rewrites `kubectl-dentry/tests/fixtures/`.
use std::path::Path;

use anyhow::Context as _;
use kubectl_dentry::tracer::pod::{Purpose, TracerPod};

use crate::{
    kernel::Kernel,
    node_workload::{POD_A_CID, POD_A_UID, tree},
    vm::{TRACER, VmRun},
};

/// The tracer pods whose runs are recorded (only their `args()` matter here).
pub fn pods() -> (TracerPod, TracerPod, TracerPod) {
    let trace = TracerPod {
        name_prefix: "dentry-trace-mysql-0-".into(),
        namespace: "prod".into(),
        node: "vm".into(),
        image: kubectl_dentry::DEFAULT_IMAGE.into(),
        duration_secs: 20,
        target: Some("prod/mysql-0".into()),
        purpose: Purpose::Trace {
            target_uids: vec![POD_A_UID.into()],
            adds: false,
            container_id: None,
            patterns: vec!["#sql".into(), ".ibd".into()],
            max_events: None,
            linger_secs: None,
            pending: false,
            host_paths: false,
        },
        privileged: false,
    };
    let top = TracerPod {
        name_prefix: "dentry-top-vm-".into(),
        purpose: Purpose::Top,
        target: None,
        duration_secs: 60,
        ..trace.clone()
    };
    let kept = TracerPod {
        duration_secs: 10,
        purpose: Purpose::Trace {
            target_uids: vec![POD_A_UID.into()],
            adds: false,
            // -c mysql: scoped to the container by the ID its pod's status gives.
            container_id: Some(format!("containerd://{POD_A_CID}")),
            patterns: vec!["#sql".into(), ".ibd".into()],
            max_events: None,
            linger_secs: Some(3600),
            pending: false,
            host_paths: false,
        },
        ..trace.clone()
    };
    (trace, top, kept)
}

/// What mysql-0 does while traced: failed lookups of temp tables, names the pattern skips, and
/// a few creates.
const MYSQL: &str = r##"cd /mnt/tmpfs/work-a
i=0; while [ $i -lt 40 ]; do [ -e "#sql-ib$i.ibd" ]; [ -e "other-$i" ]; i=$((i+1)); done
i=0; while [ $i -lt 5 ]; do : > "#sql-$i.ibd"; i=$((i+1)); done
"##;

/// The pod runs in one VM boot: a trace pod, optionally a kept one, and a top pod scraped
/// around `lookups_a` failed lookups in prod/mysql-0 and `lookups_b` in web/nginx-1.
#[derive(Debug, Clone, Copy)]
pub struct PodRuns {
    pub lookups_a: u32,
    pub lookups_b: u32,
    pub kept: bool,
}

/// What one boot of `PodRuns` printed.
pub struct Recorded {
    pub output: crate::vm::VmOutput,
}

impl Recorded {
    /// The tagged lines as one text (a pod log, a /metrics answer).
    pub fn text(&self, tag: &str) -> String {
        let mut text = self.output.tagged(tag).join("\n");
        text.push('\n');
        text
    }

    /// Seconds between the two /metrics scrapes (VM uptime).
    pub fn scrape_interval(&self) -> Option<f64> {
        let t = |tag| self.output.value(tag)?.trim().parse::<f64>().ok();
        Some(t("t2")? - t("t1")?)
    }
}

pub fn script(runs: PodRuns) -> String {
    let PodRuns {
        lookups_a,
        lookups_b,
        kept: with_kept,
    } = runs;
    let (trace, top, kept) = pods();
    let trace_args = trace.args().join(" ");
    let kept_args = kept.args().join(" ");
    let top_args = top.args().join(" ");
    let tree = tree();
    let linger = dentry_common::LINGER_MARKER;
    let kept_run = if with_kept {
        format!(
            r#"# The same with --keep: after its duration the tracer lingers, serving its files.
$TRACER {kept_args} > /tmp/kept-pod.log 2>&1 &
T=$!
wait_attached $T /tmp/kept-pod.log
run_in "$CTR_A" sh /mysql.sh
wait_line $T /tmp/kept-pod.log '^{linger}'
echo "@@kept-files $(wget -q -O - http://127.0.0.1:9090/traces)"
kill -TERM $T; wait $T
echo "@@kept-exit $?"
sed 's/^/@@kept-log /' /tmp/kept-pod.log
"#
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"{tree}
# The pod's mounts: the host's cgroup2 tree at /host/sys/fs/cgroup, an emptyDir for traces.
mkdir -p /host/sys/fs /data/traces && ln -s /sys/fs/cgroup /host/sys/fs/cgroup

# `kubectl logs` of a trace pod: stdout and stderr in one stream.
$TRACER {trace_args} > /tmp/trace-pod.log 2>&1 &
T=$!
wait_attached $T /tmp/trace-pod.log
run_in "$CTR_A" sh /mysql.sh
wait $T
echo "@@trace-exit $?"
sed 's/^/@@trace-log /' /tmp/trace-pod.log

{kept_run}
# A top pod: counters and live dentries, two scrapes around a workload in both pods, on ext4
# (where a failed lookup's negative dentry stays in the cache; tmpfs frees it at once).
mkdir -p /mnt/ext4 && mount -o loop -t ext4 /ext4.img /mnt/ext4 || exit 1
mkdir -p /mnt/ext4/work-a /mnt/ext4/work-b
$TRACER {top_args} > /tmp/top-pod.log 2>&1 &
T=$!
wait_attached $T /tmp/top-pod.log
sleep 1.5
echo "@@t1 $(cut -d' ' -f1 /proc/uptime)"
wget -q -O /tmp/m1 http://127.0.0.1:9090/metrics
run_in "$CTR_A" lookups /mnt/ext4/work-a {lookups_a}
run_in "$CTR_B" lookups /mnt/ext4/work-b {lookups_b}
sleep 2.5
echo "@@t2 $(cut -d' ' -f1 /proc/uptime)"
wget -q -O /tmp/m2 http://127.0.0.1:9090/metrics
kill -TERM $T; wait $T
sed 's/^/@@top-log /' /tmp/top-pod.log
sed 's/^/@@metrics-1 /' /tmp/m1
sed 's/^/@@metrics-2 /' /tmp/m2
"#
    );
    crate::scripts::script(&body, &[])
}

impl PodRuns {
    /// Boots `kernel` and runs the tracer as the plugin's pods would.
    pub fn run(self, kernel: &Kernel, tracer: &Path) -> anyhow::Result<Recorded> {
        let dir = tempfile::tempdir()?;
        let image = dir.path().join("ext4.img");
        crate::dentry_workload::make_ext4_image(&image, 8)?;
        let run = VmRun::new(kernel, script(self))
            .binary(TRACER, tracer)
            .module("loop")
            .file("/ext4.img", std::fs::read(&image)?)
            .file("/mysql.sh", MYSQL)
            .timeout(std::time::Duration::from_secs(600));
        let out = run.run()?;
        if out.status != 0
            || out.value("trace-exit") != Some("0")
            || (self.kept && out.value("kept-exit") != Some("0"))
        {
            anyhow::bail!("the tracer pods' runs failed in the VM; log:\n{}", out.log);
        }
        // A trace pod that traced nothing would make a demo and fixtures that show nothing.
        let trace = crate::dentry_workload::Summary::parse(&out.tagged("trace-log"));
        if trace.events == 0 {
            anyhow::bail!(
                "the trace pod traced no events in the VM; log:\n{}",
                out.log
            );
        }
        Ok(Recorded { output: out })
    }
}

/// Boots `kernel`, runs the tracer as a trace pod, a kept trace pod and a top pod, and writes
/// the recordings into `dir`.
pub fn record(kernel: &Kernel, tracer: &Path, dir: &Path) -> anyhow::Result<()> {
    let recorded = PodRuns {
        lookups_a: 300,
        lookups_b: 100,
        kept: true,
    }
    .run(kernel, tracer)?;
    let write = |name: &str, tag: &str| -> anyhow::Result<()> {
        anyhow::ensure!(
            !recorded.output.tagged(tag).is_empty(),
            "the VM printed no {tag} lines:\n{}",
            recorded.output.log
        );
        let path = dir.join(name);
        std::fs::write(&path, recorded.text(tag))
            .with_context(|| format!("writing {}", path.display()))
    };
    write("trace-pod.log", "trace-log")?;
    write("trace-pod-kept.log", "kept-log")?;
    write("metrics-1.txt", "metrics-1")?;
    write("metrics-2.txt", "metrics-2")?;
    host_failure(tracer, dir)
}

/// The tracer on this machine's own kernel, which has no kprobes: the failure a tracer pod
/// logs on such a node.
fn host_failure(tracer: &Path, dir: &Path) -> anyhow::Result<()> {
    let (_, top, _) = pods();
    let args: Vec<String> = top
        .args()
        .into_iter()
        .filter(|a| !a.starts_with("--cgroup=") && !a.starts_with("--listen="))
        .chain(["--listen=127.0.0.1:0".to_owned()])
        .collect();
    let out = std::process::Command::new(tracer)
        .args(&args)
        .output()
        .with_context(|| format!("running {}", tracer.display()))?;
    anyhow::ensure!(
        !out.status.success(),
        "the tracer started on this machine's kernel; expected it to fail (no kprobes)"
    );
    let mut log = out.stdout;
    log.extend(out.stderr);
    let path = dir.join("tracer-failed.log");
    std::fs::write(&path, log).with_context(|| format!("writing {}", path.display()))
}

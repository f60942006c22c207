//! Workloads run inside the VM, shared by the demo and the VM tests so both show the same thing.
use crate::{dentry_workload::Summary, vm::VmOutput};

/// Two sibling cgroups, `traced` and `other`; the tracer is scoped to `traced` and traces paths
/// for `TRACE_SECS` (`--duration`); each cgroup then looks up names that do not exist (each
/// lookup allocates one dentry), and the script waits for the tracer to end by itself.
#[derive(Debug, Clone, Copy)]
pub struct TwoCgroups {
    pub traced_lookups: u32,
    pub other_lookups: u32,
}

/// How long the tracer of `TwoCgroups` traces: well past its workload, which takes seconds.
pub const TRACE_SECS: u64 = 40;

/// What the tracer reported for one cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupCount {
    pub name: String,
    pub id: u64,
    pub alloc: u64,
    pub negative: u64,
}

impl TwoCgroups {
    pub fn script(&self) -> String {
        let Self {
            traced_lookups,
            other_lookups,
        } = *self;
        let body = format!(
            r#"
mkdir -p $CG/traced $CG/other /tmp/work
echo "@@cgroup traced $(stat -c %i $CG/traced)"
echo "@@cgroup other $(stat -c %i $CG/other)"
$TRACER --target-cgroup $CG/traced --trace-enabled --stdout --trace-dir /tmp/traces \
  --listen 127.0.0.1:9090 --duration {TRACE_SECS}s > /tmp/trace.tsv 2>/tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
echo "@@attached-cs $(uptime_cs)"
lookups() {{
  sh -c "echo \$\$ > $CG/$1/cgroup.procs; i=0; while [ \$i -lt $2 ]; do [ -e /tmp/work/$1-missing-\$i ]; i=\$((i+1)); done"
}}
lookups traced {traced_lookups}
lookups other {other_lookups}
wait $T
echo "@@tracer-exit $?"
echo "@@exited-cs $(uptime_cs)"
sed 's/^/@@tracer /' /tmp/tracer.err
head -n 6 /tmp/trace.tsv | sed 's/^/@@tsv /'
echo "@@tsv-lines $(wc -l < /tmp/trace.tsv)"
"#
        );
        crate::scripts::script(&body, &[])
    }

    /// Pairs the cgroup ids the script printed with the tracer's counts for them.
    pub fn counts(output: &VmOutput) -> Vec<CgroupCount> {
        let summary = Summary::parse(&output.tagged("tracer"));
        // In the order the script printed them (traced first), not sorted.
        output
            .tagged("cgroup")
            .into_iter()
            .filter_map(|line| {
                let (name, id) = line.split_once(' ')?;
                let id: u64 = id.trim().parse().ok()?;
                Some(CgroupCount {
                    name: name.to_owned(),
                    id,
                    alloc: summary.count(id, "alloc"),
                    negative: summary.count(id, "negative"),
                })
            })
            .collect()
    }
}

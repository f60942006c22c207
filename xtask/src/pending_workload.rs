//! Pods traced from their first lookup, on a real kernel: the tracer starts armed for one pod
//! UID whose cgroup does not exist yet, and a second is added while it runs through its UIDs
//! file (one named as the systemd driver names it, one as cgroupfs does); then, as the kubelet does, each pod's cgroup and its container's are made
//! and a process in the container makes failed lookups from its very start, beside a sibling
//! pod nobody asked for.

pub const FIRST_UID: &str = "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const SECOND_UID: &str = "6e2d3c4b-5f6a-4b7c-9d8e-0f1a2b3c4d5e";
pub const SIBLING_UID: &str = "7f3e4d5c-6a7b-4c8d-ae9f-1a2b3c4d5e6f";
const FIRST_CID: &str = "aa11bb22cc33dd44ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd66";
const SECOND_CID: &str = "bb22cc33dd44ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd66ee77";
const SIBLING_CID: &str = "cc33dd44ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd66ee77ff88";

#[derive(Debug, Clone)]
pub struct PendingWorkload {
    /// Failed lookups each pod's process makes as it starts.
    pub lookups: u32,
}

impl PendingWorkload {
    /// Prints `@@traced DIR DISTINCT LINES` for each pod's directory, the tracer's exit
    /// (`@@tracer-exit`) and its stderr (`@@tracer`), `@@metrics` lines, and the containers'
    /// cgroup ids (`@@cgroup first|second ID`).
    pub fn script(&self) -> String {
        let lookups = self.lookups;
        let first_ = FIRST_UID.replace('-', "_");
        let sibling_ = SIBLING_UID.replace('-', "_");
        let body = format!(
            r#"
BURSTABLE=$CG/kubepods.slice/kubepods-burstable.slice
mkdir -p $BURSTABLE $CG/kubepods/besteffort /mnt/tmpfs /var/log/containers
for d in $CG $CG/kubepods.slice $BURSTABLE $CG/kubepods $CG/kubepods/besteffort; do
  echo +memory > "$d/cgroup.subtree_control"
done
mount -t tmpfs tmpfs /mnt/tmpfs
mkdir -p /mnt/tmpfs/first /mnt/tmpfs/second /mnt/tmpfs/sibling
mkdir -p /var/log/pods/batch_first-0_{FIRST_UID}/app /var/log/pods/batch_second-0_{SECOND_UID}/app
: > /var/log/containers/first-0_batch_app-{FIRST_CID}.log
: > /var/log/containers/second-0_batch_app-{SECOND_CID}.log

# The second pod is added while the tracer runs, as the plugin adds a pod scheduled to a node
# whose tracer is running: through the UIDs file, replaced atomically as the kubelet replaces
# a downward API file.
: > /tmp/uids
$TRACER --target-pod-uid {FIRST_UID} --target-pending --target-pod-uids-file /tmp/uids \
  --trace-enabled --stdout --trace-dir /traces --poll-interval 1s --resolve-interval 1s \
  --listen 127.0.0.1:9090 > /tmp/trace.tsv 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
echo "{FIRST_UID},{SECOND_UID}" > /tmp/uids.new && mv /tmp/uids.new /tmp/uids
i=0
until grep -q "pods added to the trace" /tmp/tracer.err; do
  [ $i -ge 60 ] && {{ echo "the tracer did not add {SECOND_UID}"; cat /tmp/tracer.err; exit 1; }}
  sleep 0.5; i=$((i+1))
done

# The kubelet's order: the pod's cgroup, its container's, the container's first process, with
# no pause in between.
FIRST=$BURSTABLE/kubepods-burstable-pod{first_}.slice/cri-containerd-{FIRST_CID}.scope
SECOND=$CG/kubepods/besteffort/pod{SECOND_UID}/{SECOND_CID}
SIBLING=$BURSTABLE/kubepods-burstable-pod{sibling_}.slice/cri-containerd-{SIBLING_CID}.scope
(mkdir -p $SIBLING && run_in $SIBLING lookups /mnt/tmpfs/sibling {lookups}) &
S=$!
(mkdir -p $FIRST && run_in $FIRST lookups /mnt/tmpfs/first {lookups}) &
F=$!
mkdir -p $SECOND && run_in $SECOND lookups /mnt/tmpfs/second {lookups}
wait $F $S
# Let the tracer drain and its counters poll twice. (Paths are the tmpfs's own: /first/...)
i=0
while [ $i -lt 120 ]; do
  n=$(grep -c -e /first/ -e /second/ /tmp/trace.tsv)
  [ "$n" -ge {want_lines} ] && break
  sleep 0.5; i=$((i+1))
done
sleep 2.5
wget -q -O /tmp/metrics http://127.0.0.1:9090/metrics
sed 's/^/@@metrics /' /tmp/metrics
stop_tracer $T tracer
echo "@@cgroup first $(stat -c %i $FIRST)"
echo "@@cgroup second $(stat -c %i $SECOND)"
for d in first second sibling; do
  echo "@@traced $d $(grep -o "/$d/missing-[0-9]*" /tmp/trace.tsv | sort -u | wc -l) $(grep -c "/$d/" /tmp/trace.tsv)"
done
"#,
            want_lines = 4 * lookups
        );
        crate::scripts::script(&body, &[])
    }
}

//! The tracer binary on a real kernel as it runs on a node: a kubepods-shaped cgroup tree (one
//! pod under the systemd driver, one under cgroupfs), the kubelet's log directories for names,
//! the tracer scoped to one pod by UID, a flood large enough to rotate 1 MB files, then the
//! HTTP endpoints, the reference README's recipes, and a clean stop.

pub const POD_A_UID: &str = "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f";
pub const POD_A_CID: &str = "4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f";
pub const POD_B_UID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
pub const POD_B_CID: &str = "1a3c5e7b9d1f4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f";

#[derive(Debug, Clone)]
pub struct NodeWorkload {
    /// Failed lookups in pod A's container under `/mnt/tmpfs/work-a` (traced).
    pub lookups_a: u32,
    /// Failed lookups in pod A under `/mnt/tmpfs/skip` (filtered out by the pattern).
    pub skipped_a: u32,
    /// Failed lookups in pod B (not traced, but counted in the metrics).
    pub lookups_b: u32,
}

/// Shell that builds the node's kubepods cgroup tree (pod A under the systemd driver, pod B under
/// cgroupfs) with the memory controller enabled down to the containers, the kubelet's log
/// directories that name them, and a tmpfs to look up names in;
/// it sets `$CTR_A` and `$CTR_B` and prints their cgroup ids as `@@cgroup` lines.
pub fn tree() -> String {
    let uid_a_ = POD_A_UID.replace('-', "_");
    format!(
        r#"
POD_A=$CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_a_}.slice
CTR_A=$POD_A/cri-containerd-{POD_A_CID}.scope
POD_B=$CG/kubepods/besteffort/pod{POD_B_UID}
CTR_B=$POD_B/{POD_B_CID}
mkdir -p $CTR_A $CTR_B /mnt/tmpfs /var/log/containers
# The memory controller down to the containers, as the kubelet enables it: dentries are then
# charged to the container that made them.
for d in $CG $CG/kubepods.slice $CG/kubepods.slice/kubepods-burstable.slice $POD_A \
  $CG/kubepods $CG/kubepods/besteffort $POD_B; do
  echo +memory > "$d/cgroup.subtree_control"
done
mkdir -p /var/log/pods/prod_mysql-0_{POD_A_UID}/mysql /var/log/pods/web_nginx-1_{POD_B_UID}/nginx
: > /var/log/containers/mysql-0_prod_mysql-{POD_A_CID}.log
: > /var/log/containers/nginx-1_web_nginx-{POD_B_CID}.log
mount -t tmpfs tmpfs /mnt/tmpfs
mkdir -p /mnt/tmpfs/work-a /mnt/tmpfs/skip /mnt/tmpfs/work-b
echo "@@cgroup ctr-a $(stat -c %i $CTR_A)"
echo "@@cgroup ctr-b $(stat -c %i $CTR_B)"

"#
    )
}

impl NodeWorkload {
    pub fn script(&self) -> String {
        let Self {
            lookups_a,
            skipped_a,
            lookups_b,
        } = self;
        let want_events = 2 * lookups_a;
        let tree = tree();
        let body = format!(
            r#"
{tree}
$TRACER --target-pod-uid {POD_A_UID} --trace-enabled --trace-dir /traces \
  --trace-max-size 1 --trace-max-files 10 --trace-patterns work-a \
  --poll-interval 1s --resolve-interval 1s --listen 127.0.0.1:9090 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
run_in "$CTR_A" lookups /mnt/tmpfs/work-a {lookups_a}
run_in "$CTR_A" lookups /mnt/tmpfs/skip {skipped_a}
run_in "$CTR_B" lookups /mnt/tmpfs/work-b {lookups_b}
# Under load the tracer may lag: wait until it has counted every traced event, then let two
# counter polls pass, so the scrape below sees the whole workload.
i=0
while [ $i -lt 120 ]; do
  v=$(wget -q -O - http://127.0.0.1:9090/metrics | awk '/^dentry_tracer_events_total /{{print $2}}')
  [ "${{v:-0}}" -ge {want_events} ] && break
  sleep 0.5; i=$((i+1))
done
sleep 2.5
echo "@@rss $(grep -E 'VmRSS|VmHWM' /proc/$T/status | tr -s ' \t\n' ' ')"
$TRACER --listen 127.0.0.1:9090 2> /tmp/second.err
echo "@@port-in-use $? $(cat /tmp/second.err)"

wget -q -O /tmp/metrics http://127.0.0.1:9090/metrics; echo "@@wget-metrics $?"
sed 's/^/@@metrics /' /tmp/metrics
echo "@@healthz $(wget -q -O - http://127.0.0.1:9090/healthz)"
echo "@@traces-json $(wget -q -O - http://127.0.0.1:9090/traces)"
wget -q -O /tmp/dl http://127.0.0.1:9090/traces/traces.tsv.1 && cmp /tmp/dl /traces/traces.tsv.1 && echo "@@download same"
for p in '/traces/../init' '/traces/..%2finit' '/traces/..%2F..%2Fetc%2Fpasswd' '/traces/init' '/traces/traces.tsv.x'; do
  # nc hangs up when its stdin ends: keep it open until the answer has come.
  (printf 'GET %s HTTP/1.0\r\n\r\n' "$p"; sleep 1) | nc 127.0.0.1 9090 > /tmp/resp
  echo "@@refuse $p $(head -n 1 /tmp/resp | tr -d '\r')"
done

kill -TERM $T
wait $T
echo "@@tracer-exit $?"
sed 's/^/@@tracer /' /tmp/tracer.err

cd /traces || exit 1
for f in traces.tsv*; do
  echo "@@file $f $(wc -c < "$f") $(wc -l < "$f") $(awk -F'\t' 'NF!=7{{bad++}} END{{print bad+0}}' "$f") $(head -n 1 "$f" | tr '\t' ',')"
done
echo "@@other-paths $(cat traces.tsv* | awk -F'\t' 'NR>1 && $6 !~ /^\/work-a\// && $1 != "timestamp"' | wc -l)"
echo "@@pods $(cat traces.tsv* | awk -F'\t' '$1 != "timestamp" {{print $2 "/" $3}}' | sort -u | tr '\n' ' ')"
# The reference README's recipes, unchanged:
echo "@@recipe-tail $(tail -n 1 /traces/traces.tsv | cut -f5,7)"
echo "@@recipe-grep $(grep -c tmpfs /traces/traces.tsv)"
awk -F'\t' 'NR>1 {{fs[$7]++}} END {{for(f in fs) print f, fs[f]}}' traces.tsv | sed 's/^/@@recipe-awk /'
cd /

# Disk full mid-write: a 64 KiB filesystem for the traces.
mkdir -p /mnt/small && mount -t tmpfs -o size=64k tmpfs /mnt/small
$TRACER --target-pod-uid {POD_A_UID} --trace-enabled --trace-dir /mnt/small \
  --listen 127.0.0.1:9091 2> /tmp/full.err &
T=$!
wait_attached $T /tmp/full.err
run_in "$CTR_A" lookups /mnt/tmpfs/work-a 3000
sleep 1
echo "@@full-healthz $(wget -q -O - http://127.0.0.1:9091/healthz)"
kill -TERM $T; wait $T
echo "@@full-exit $?"
echo "@@full-said $(grep -c 'trace file write failed' /tmp/full.err)"
echo "@@full-check $(cat /mnt/small/traces.tsv* | awk -F'\t' 'NF!=7{{bad++}} END{{print NR, bad+0}}') $(tail -c 1 /mnt/small/traces.tsv | od -An -c | tr -d ' ')"
grep '^summary' /tmp/full.err | sed 's/^/@@full-summary /'

# A cap with --stdout ends the run after exactly that many events.
$TRACER --target-pod-uid {POD_A_UID} --trace-enabled --stdout --max-events 100 \
  --trace-dir /tmp/capped --listen 127.0.0.1:9092 > /tmp/capped.out 2> /tmp/capped.err &
T=$!
wait_attached $T /tmp/capped.err
run_in "$CTR_A" lookups /mnt/tmpfs/work-a 500
n=0; while kill -0 $T 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
kill -0 $T 2>/dev/null && echo "@@capped-still-running"
wait $T
echo "@@capped-exit $? $(wc -l < /tmp/capped.out) $(grep -c 'tracing stopped: --max-events reached' /tmp/capped.err)"
"#
        );
        crate::scripts::script(&body, &[])
    }
}

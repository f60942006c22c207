# The soak (`cargo xtask soak`): the tracer as the DaemonSet runs it (every pod counted, live
# gauges, traces rotated through 1 MB files), for SECS seconds of mixed storms: pod A's
# container makes failed lookups of new names in batches of BATCH (traced), pod B's creates,
# stats and deletes files and misses the same names again and again. /metrics is scraped every
# second; pod A's container is restarted (a new container cgroup and log name, the old one
# removed) every RESTART seconds. Every minute: the tracer's RSS, its maps' entries, the trace
# files' bytes. At the end pod A's negative count must be exactly the lookups its batches made.
# Set by the Rust side (after the node tree, which sets POD_A, CTR_A, CTR_B): SECS, RESTART,
# BATCH, CID_A (pod A's first container id), UID_A.
# shellcheck shell=sh

ip link set lo up
# Every applet is in /bin: a lookup along a longer PATH would be a negative of its own.
PATH=/bin
$TRACER --listen 127.0.0.1:9090 --poll-interval 1s --resolve-interval 5s \
  --trace-enabled --trace-dir /traces --trace-max-size 1 --trace-max-files 3 \
  --trace-patterns work-a > /dev/null 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err

# Pod A: batches of failed lookups of names never seen, each in a directory made from the
# root cgroup (so only the lookups are the container's). Between batches it restarts the
# container when asked: the batch's processes have exited, so the cgroup can go.
storm_a() {
  inc=0
  ctr=$CTR_A
  log=/var/log/containers/mysql-0_prod_mysql-$CID_A.log
  old_log=""
  k=0
  while [ ! -f /tmp/stop ]; do
    if [ -f /tmp/restart ]; then
      inc=$((inc + 1))
      cid=$(printf '%s%08x' "${CID_A%????????}" "$inc")
      new=$POD_A/cri-containerd-$cid.scope
      mkdir "$new"
      # The kubelet keeps the log of the container before, not older ones.
      [ -n "$old_log" ] && rm -f "$old_log"
      old_log=$log
      log=/var/log/containers/mysql-0_prod_mysql-$cid.log
      : > "$log"
      rmdir "$ctr"
      ctr=$new
      rm /tmp/restart
    fi
    k=$((k + 1))
    mkdir "/mnt/tmpfs/work-a/$k"
    run_in "$ctr" many "/mnt/tmpfs/work-a/$k" m 0 "$BATCH" stat
    echo "$BATCH" >> /tmp/done-a
  done
  echo "@@restarts $inc"
}

# Pod B: create, stat, delete; then the same missing names once more (cached negatives).
storm_b() {
  while [ ! -f /tmp/stop ]; do
    many /mnt/tmpfs/work-b f 0 200 touch
    many /mnt/tmpfs/work-b f 0 200 stat
    rm -f /mnt/tmpfs/work-b/f-*
    many /mnt/tmpfs/work-b gone 0 200 stat
  done
}

storm_a &
A=$!
run_in "$CTR_B" storm_b &
B=$!

# sample S: the tracer's memory, its maps and the trace files' bytes at second S.
sample() {
  echo "@@rss $1 $(awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{print r, h}' "/proc/$T/status")"
  echo "@@traces $1 $(cat /traces/traces.tsv* | wc -c)"
  /bin/bpf-maps | sed "s/^/@@maps $1 /"
}

sample 0
s=0
failed=0
while [ $s -lt "$SECS" ]; do
  sleep 1
  s=$((s + 1))
  wget -q -O /tmp/m http://127.0.0.1:9090/metrics || failed=$((failed + 1))
  if [ $((s % RESTART)) -eq 0 ]; then
    : > /tmp/restart
  fi
  if [ $((s % 60)) -eq 0 ]; then
    sample $s
  fi
done
: > /tmp/stop
wait $A $B
# Two counter polls and a resolve interval, so the last container's counts are named.
sleep 7
wget -q -O /tmp/m http://127.0.0.1:9090/metrics || failed=$((failed + 1))
echo "@@scrapes $s $failed"
echo "@@lookups-a $(awk '{n+=$1} END{print n+0}' /tmp/done-a)"
grep -E "^dentry_negative_total\{[^}]*pod=\"(mysql-0)?\"|^dentry_tracer_(events|probe_missed)" /tmp/m \
  | sed 's/^/@@final /'
sample end
stop_tracer $T tracer

# Live dentries per owner (see `tracer/tests/vm_live.rs`). Set by the Rust side: MODE (the
# attach mode), N (failed lookups in the busy container), PRE (lookups before the start),
# CREATES, GONE (lookups of the container that is then removed).
# shellcheck shell=sh

# snapshot NAME: the tracer's live gauges, the busy container's slab_reclaimable and the
# node's dentry-state, tagged NAME.
snapshot() {
  sleep 2
  wget -q -O - http://127.0.0.1:9464/metrics | grep -E '^dentry_(live|cache|tracer_live)' \
    | sed "s/^/@@$1 /"
  if [ -f "$CG/pod/busy/memory.stat" ]; then
    echo "@@$1-slab $(grep '^slab_reclaimable ' "$CG/pod/busy/memory.stat" | cut -d' ' -f2)"
  fi
  echo "@@$1-dentry-state $(cat /proc/sys/fs/dentry-state)"
}

ip link set lo up
echo +memory > "$CG/cgroup.subtree_control"
mkdir -p "$CG/pod"
echo +memory > "$CG/pod/cgroup.subtree_control"
mkdir -p "$CG/pod/busy" "$CG/pod/idle" "$CG/pod/gone"
for c in pod pod/busy pod/idle pod/gone; do
  echo "@@cgroup $c $(stat -c %i "$CG/$c")"
done
mkdir -p /mnt/ext4
mount -o loop -t ext4 /ext4.img /mnt/ext4 || exit 1
mkdir -p /mnt/ext4/pre /mnt/ext4/a /mnt/ext4/b /mnt/ext4/gone

# Dentries made before the tracer starts: not counted, nor their frees.
run_in pod/busy many /mnt/ext4/pre m 0 "$PRE" stat

$TRACER --attach-mode "$MODE" --listen 127.0.0.1:9464 --poll-interval 1s --cgroup-id-label \
  --target-cgroup "$CG/pod" > /dev/null 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
snapshot s0
run_in pod/busy many /mnt/ext4/a m 0 "$N" stat
snapshot lookups
run_in pod/busy many /mnt/ext4/a m 0 "$CREATES" touch
snapshot creates
echo 2 > /proc/sys/vm/drop_caches
snapshot dropped
run_in pod/busy many /mnt/ext4/b m 0 "$N" stat
snapshot again
echo 1M > "$CG/pod/busy/memory.high"
snapshot pressed
echo max > "$CG/pod/busy/memory.high"
run_in pod/gone many /mnt/ext4/gone m 0 "$GONE" stat
snapshot before-rmdir
rmdir "$CG/pod/gone"
snapshot removed
stop_tracer $T tracer

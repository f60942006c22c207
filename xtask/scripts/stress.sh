# Preemption and stops under load. Set by the Rust side: MODES (attach modes), CGROUPS
# (cgroup names), PROCS (lookup processes per cgroup), LOOKUPS (failed lookups per process),
# GRACE (seconds a stop may take before SIGKILL).
# shellcheck shell=sh

echo "@@preempt $(cat /sys/kernel/debug/sched/preempt)"
mkdir -p /mnt/ext4
mount -o loop -t ext4 /ext4.img /mnt/ext4 || exit 1

# 1. Several cgroups, more lookup processes than CPUs: with preempt=full a traced task is
# preempted inside the tracer's programs, and another cgroup's task runs them on that CPU.
# Once per attach mode in MODES.
: > /tmp/ids
targets=""
for g in $CGROUPS; do
  mkdir -p "$CG/$g"
  id=$(stat -c %i "$CG/$g")
  echo "@@cgroup $g $id"
  printf '%s\t%s\n' "$id" "$g" >> /tmp/ids
  targets="$targets --target-cgroup $CG/$g"
done
for mode in $MODES; do
  # shellcheck disable=SC2086 # one word per flag
  $TRACER --attach-mode "$mode" --trace-enabled --stdout $targets \
    > "/tmp/$mode.tsv" 2> "/tmp/$mode.err" &
  T=$!
  wait_attached $T "/tmp/$mode.err"
  pids=""
  for g in $CGROUPS; do
    k=1
    while [ $k -le "$PROCS" ]; do
      mkdir -p "/mnt/ext4/$mode-$g-$k"
      run_in "$g" lookups "/mnt/ext4/$mode-$g-$k" "$LOOKUPS" &
      pids="$pids $!"
      k=$((k + 1))
    done
  done
  # shellcheck disable=SC2086 # one word per pid
  wait $pids
  stop_tracer $T "$mode"
  # Checked here, not on the console (tens of thousands of lines): each line's path must be
  # one its cgroup looked up, once. Prints @@bad-MODE for any other line, @@traced-MODE GROUP
  # OP COUNT.
  awk -F '\t' -v mode="$mode" '
    NR == FNR { name[$1] = $2; next }
    FNR == 1 { next }
    {
      g = name[$4]
      if (g == "" || $6 !~ ("^/" mode "-" g "-[0-9]+/missing-[0-9]+$") || $7 != "ext4") {
        print "@@bad-" mode " " $0
        next
      }
      if (seen[$5 " " $6]++) print "@@bad-" mode " duplicate " $0
      count[g " " $5]++
    }
    END { for (k in count) print "@@traced-" mode " " k " " count[k] }
  ' /tmp/ids "/tmp/$mode.tsv"
done

# 2. Stop under a flood: lookups of new names on ext4 (each allocates; the negative dentries
# stay, so the flood frees nothing) until the end, traced whole, first to a fast stdout, then
# to one nobody reads (a kubectl logs -f over a slow link).
mkdir -p /mnt/ext4/flood
flood() {
  i=0
  while :; do
    [ -e "/mnt/ext4/flood/f$1-$i" ]
    i=$((i + 1))
  done
}
flooders=""
for k in 1 2 3; do
  flood $k &
  flooders="$flooders $!"
done

$TRACER --attach-mode fentry --trace-enabled --stdout > /dev/null 2> /tmp/fast.err &
T=$!
wait_attached $T /tmp/fast.err
sleep 3
stop_within "$GRACE" $T fast

mkfifo /tmp/unread
# shellcheck disable=SC2217 # a reader that never reads: the pipe fills and stays full
sleep 100000 < /tmp/unread &
R=$!
$TRACER --attach-mode fentry --trace-enabled --stdout > /tmp/unread 2> /tmp/slow.err &
T=$!
wait_attached $T /tmp/slow.err
sleep 3
stop_within "$GRACE" $T slow
kill $R
# shellcheck disable=SC2086 # one word per pid
kill $flooders

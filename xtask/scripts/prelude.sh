# Shared by every VM script (xtask::scripts prepends it). The Rust side sets the variables
# above this line; @ATTACHED@ is dentry_common::ATTACHED_MARKER.
# shellcheck shell=sh
CG=/sys/fs/cgroup

# run_in CGROUP CMD...: runs CMD in a new shell inside the cgroup (relative to $CG).
run_in() {
  cg=$1
  shift
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/$cg" "$@"
}

# wait_attached PID ERRFILE: waits until the tracer PID says its probes are attached; if it
# exits first or takes over two minutes, prints its stderr (tagged tracer-failed) and exits.
wait_attached() {
  n=0
  until grep -q '^@ATTACHED@' "$2"; do
    n=$((n + 1))
    if [ $n -gt 1200 ] || ! kill -0 "$1" 2>/dev/null; then
      sed 's/^/@@tracer-failed /' "$2"
      exit 1
    fi
    sleep 0.1
  done
}

# stop_tracer PID NAME: SIGINT to a tracer whose stderr is /tmp/NAME.err; prints its exit
# status (@@NAME-exit) and its stderr, tagged NAME.
stop_tracer() {
  kill -INT "$1"
  wait "$1"
  echo "@@$2-exit $?"
  sed "s/^/@@$2 /" "/tmp/$2.err"
}

# uptime_cs: seconds since boot, in hundredths.
uptime_cs() {
  read -r up _ < /proc/uptime
  echo "${up%.*}${up#*.}"
}

# stop_within SECS PID NAME: SIGTERM to a tracer whose stderr is /tmp/NAME.err; SIGKILL if it
# is still running SECS later (as the kubelet does after a grace period). Prints its exit
# status (@@NAME-exit), how long it took in hundredths of a second (@@NAME-cs) and its
# stderr, tagged NAME.
stop_within() {
  start=$(uptime_cs)
  kill -TERM "$2"
  n=0
  while kill -0 "$2" 2>/dev/null && [ $n -lt $(($1 * 10)) ]; do
    sleep 0.1
    n=$((n + 1))
  done
  if kill -0 "$2" 2>/dev/null; then
    # Where each thread is stuck, for the test's message.
    for t in /proc/"$2"/task/*; do
      echo "@@$3-stuck $(cat "$t/comm") $(cat "$t/wchan") $(tr '\n' ' ' < "$t/stack")"
    done
  fi
  kill -KILL "$2" 2>/dev/null
  wait "$2"
  echo "@@$3-exit $?"
  echo "@@$3-cs $(($(uptime_cs) - start))"
  sed "s/^/@@$3 /" "/tmp/$3.err"
}

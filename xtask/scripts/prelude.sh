# Shared by every VM script (xtask::scripts prepends it). The Rust side sets the variables
# above this line; @ATTACHED@ is dentry_common::ATTACHED_MARKER.
# shellcheck shell=sh
CG=/sys/fs/cgroup

# run_in CGROUP CMD...: runs CMD (a command or one of these functions) in a subshell inside
# CGROUP (a directory, or a path relative to $CG). Writing 0 to cgroup.procs moves the
# writer itself: the subshell, and so CMD and what it starts.
run_in() {
  cg=$1
  shift
  case $cg in
    /*) ;;
    *) cg=$CG/$cg ;;
  esac
  (echo 0 > "$cg/cgroup.procs" && "$@")
}

# lookups DIR N: N failed lookups of new names (DIR/missing-0, ...).
lookups() {
  i=0
  while [ "$i" -lt "$2" ]; do
    [ -e "$1/missing-$i" ]
    i=$((i + 1))
  done
}

# many DIR PREFIX FROM COUNT CMD: runs CMD (stat or touch) on DIR/PREFIX-FROM ... in few
# processes, so a lookup costs a lookup and not a fork.
many() {
  seq "$3" $(($3 + $4 - 1)) | sed "s|^|$1/$2-|" | xargs "$5" > /dev/null 2>&1
  true
}

# creates DIR N: N new empty files (DIR/new-0, ...).
creates() {
  i=0
  while [ "$i" -lt "$2" ]; do
    : > "$1/new-$i"
    i=$((i + 1))
  done
}

# exists PATH: one lookup of PATH, found or not.
exists() {
  [ -e "$1" ] || true
}

# wait_line PID FILE PATTERN: waits until FILE has a line matching PATTERN (grep); if the
# process PID exits first or five minutes pass, prints FILE (tagged tracer-failed) and exits.
# (Loading and verifying the programs takes about a minute on 6.1 under TCG.)
wait_line() {
  n=0
  until grep -q "$3" "$2"; do
    n=$((n + 1))
    if [ $n -gt 3000 ] || ! kill -0 "$1" 2>/dev/null; then
      sed 's/^/@@tracer-failed /' "$2"
      exit 1
    fi
    sleep 0.1
  done
}

# wait_attached PID FILE: waits until the tracer PID says in FILE that its probes are attached.
wait_attached() {
  wait_line "$1" "$2" '^@ATTACHED@'
}

# stop_tracer PID NAME: SIGINT to a tracer whose stderr is /tmp/NAME.err; prints its exit
# status (@@NAME-exit) and its stderr, tagged NAME.
stop_tracer() {
  kill -INT "$1"
  wait "$1"
  echo "@@$2-exit $?"
  sed "s/^/@@$2 /" "/tmp/$2.err"
}

# uptime_cs: time since boot, in hundredths of a second.
uptime_cs() {
  read -r up _ < /proc/uptime
  echo "${up%.*}${up#*.}"
}

# stop_within SECS PID NAME: SIGTERM to a tracer whose stderr is /tmp/NAME.err; SIGKILL if it
# is still running SECS later, as the kubelet does after a pod's grace period. Prints its
# exit status (@@NAME-exit), how long it took in hundredths of a second (@@NAME-cs) and how
# long until its summary was written (@@NAME-summary-cs, to the 0.1 s poll), where
# its threads were if it had to be killed (@@NAME-stuck) and its stderr, tagged NAME.
stop_within() {
  start=$(uptime_cs)
  kill -TERM "$2"
  n=0
  summary=""
  while kill -0 "$2" 2>/dev/null && [ $n -lt $(($1 * 10)) ]; do
    if [ -z "$summary" ] && grep -q '^summary ' "/tmp/$3.err"; then
      summary=$(($(uptime_cs) - start))
    fi
    sleep 0.1
    n=$((n + 1))
  done
  echo "@@$3-summary-cs ${summary:-$(($(uptime_cs) - start))}"
  if kill -0 "$2" 2>/dev/null; then
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

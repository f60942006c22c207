# What loading the programs costs (see `cargo xtask bench-load`): the tracer started as a trace
# pod's, with kernel patterns, in each attach mode the kernel has; its log says how long the
# load and attach took and how many instructions the verifier processed. Set by the Rust
# side: MODES (attach modes, space-separated).
# shellcheck shell=sh
mkdir -p "$CG/pod"
for mode in $MODES; do
  $TRACER --attach-mode "$mode" --duration 1s --trace-enabled --trace-patterns '#sql,.ibd' \
    --target-cgroup "$CG/pod" --listen 127.0.0.1:9100 --trace-dir /tmp/traces \
    > /dev/null 2> /tmp/load.err
  echo "@@exit $mode $?"
  grep -o 'load_ms=[0-9]* verified_insns=[0-9]*' /tmp/load.err | sed "s/^/@@load $mode /"
  grep ' off: \|rror' /tmp/load.err | sed "s/^/@@load-error $mode /"
done

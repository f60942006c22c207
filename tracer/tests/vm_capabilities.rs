//! The capabilities the tracer needs, measured on real kernels (Debian 5.10 and 7.3 under
//! qemu): run as a container runtime runs a uid-0 container with `drop: [ALL]` and `add:` a
//! list (every other capability out of the bounding set, no_new_privs set, as
//! `allowPrivilegeEscalation: false` does), the set `privileges::needs` names for the
//! kernel runs every feature, counts and traces; without any one capability of it, the
//! kernel refuses the tracer (one line naming the capability) or the one feature that needs
//! it goes off (one line naming it).
use std::time::Duration;

use tracer::kernel::privileges::{self, Need};
use xtask::{kernel::Kernel, vm::VmRun};

const LOOKUPS: u32 = 200;
const WITH_CAPS: &str = "/bin/with-caps";

/// `try NAME CAPS`: the tracer under CAPS, 200 lookups in the pod, its features and exit.
const TRY: &str = r#"
mkdir -p $CG/pod
try() {
  name=$1
  mkdir -p /tmp/work/$name
  /bin/with-caps "$2" --nnp -- $TRACER --target-cgroup $CG/pod --trace-enabled --stdout \
    --listen 127.0.0.1:9090 > /tmp/$name.tsv 2>/tmp/$name.err &
  T=$!
  n=0
  until grep -q '^@ATTACHED@' /tmp/$name.err || ! kill -0 $T 2>/dev/null || [ $n -gt 1200 ]; do
    sleep 0.1
    n=$((n + 1))
  done
  if kill -0 $T 2>/dev/null; then
    run_in pod lookups /tmp/work/$name LOOKUPS
    sleep 1
    wget -q -O - http://127.0.0.1:9090/metrics | grep '^dentry_tracer_feature' | sed "s/^/@@$name-metric /"
    kill -INT $T
  fi
  wait $T
  echo "@@$name-exit $?"
  echo "@@$name-lines $(grep -c missing- /tmp/$name.tsv)"
  grep '^tracer: ' /tmp/$name.err | sed "s/^/@@$name /"
}
"#;

struct Case {
    name: String,
    caps: Vec<&'static str>,
    /// The capability left out of the set (none: the whole set).
    without: Option<Need>,
}

fn caps_arg(caps: &[&str]) -> String {
    if caps.is_empty() {
        "none".into()
    } else {
        caps.iter()
            .map(|c| c.trim_start_matches("CAP_"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn measure(spec: &str) {
    let kernel = Kernel::fetch(spec).unwrap_or_else(|e| panic!("kernel {spec}: {e:#}"));
    let version = dentry_common::kernel_version(&kernel.release);
    let needs = privileges::needs(version);
    let all: Vec<&str> = needs.iter().map(|n| n.name).collect();
    let mut cases = vec![Case {
        name: "all".into(),
        caps: all.clone(),
        without: None,
    }];
    for n in &needs {
        cases.push(Case {
            name: format!("no-{}", n.name.trim_start_matches("CAP_").to_lowercase()),
            caps: all.iter().copied().filter(|c| *c != n.name).collect(),
            without: Some(*n),
        });
    }
    let mut body = TRY
        .replace("LOOKUPS", &LOOKUPS.to_string())
        .replace("@ATTACHED@", dentry_common::ATTACHED_MARKER);
    for c in &cases {
        body.push_str(&format!("try {} {}\n", c.name, caps_arg(&c.caps)));
    }
    let with_caps = xtask::arch::single_file_binary(kernel.arch, "xtask/src/bin/with-caps.rs")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let out = VmRun::new(&kernel, xtask::scripts::script(&body, &[]))
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .binary(WITH_CAPS, with_caps)
        .timeout(Duration::from_secs(900))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = &out.log;
    assert_eq!(out.status, 0, "the script failed; log:\n{log}");

    for c in &cases {
        let exit = out.value(&format!("{}-exit", c.name));
        let lines: u64 = out
            .value(&format!("{}-lines", c.name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let said = out.tagged(&c.name);
        let metrics = out.tagged(&format!("{}-metric", c.name));
        let off: Vec<&str> = metrics
            .iter()
            .copied()
            .filter(|l| l.ends_with(" 0"))
            .collect();
        let context = format!(
            "{} on {} with {:?}: exit {exit:?}, {lines} lines, said {said:#?}, features {metrics:#?}",
            c.name, kernel.release, c.caps
        );
        match c.without {
            None => {
                assert_eq!(exit, Some("0"), "{context}");
                assert_eq!(lines, 2 * u64::from(LOOKUPS), "{context}");
                assert!(
                    off.is_empty() && metrics.len() >= 4,
                    "every feature on: {context}"
                );
            }
            Some(n) if n.refused_without => {
                assert_eq!(exit, Some("1"), "{context}");
                assert_eq!(said.len(), 1, "one line: {context}");
                assert!(
                    said[0].contains(&format!("lacks {}", n.name)),
                    "the line names {}: {context}",
                    n.name
                );
            }
            Some(n) => {
                assert_eq!(exit, Some("0"), "{context}");
                assert_eq!(lines, 2 * u64::from(LOOKUPS), "{context}");
                assert_eq!(off.len(), 1, "one feature off: {context}");
                assert!(
                    off[0].contains("feature=\"live\"") && off[0].contains(n.name),
                    "{context}"
                );
                assert!(
                    said.iter()
                        .any(|l| l.contains("live gauges off") && l.contains(n.name)),
                    "{context}"
                );
            }
        }
    }
    // The measurement, for the note and docs/deploy.md.
    for c in &cases {
        eprintln!(
            "{} {}: exit {:?}, {:?}",
            kernel.release,
            caps_arg(&c.caps),
            out.value(&format!("{}-exit", c.name)),
            out.tagged(&c.name)
        );
    }
}

#[test]
fn on_5_10_the_tracer_needs_bpf_perfmon_syslog_and_sys_resource() {
    measure("5.10");
}

#[test]
fn on_7_3_the_tracer_needs_bpf_perfmon_and_syslog() {
    measure("7.3");
}

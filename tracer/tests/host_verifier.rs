//! On the machine running the tests: every kernel program passes this kernel's verifier, and
//! attaching either works or fails with the one-line "kprobes unavailable" diagnosis.
//! Needs root (CAP_BPF): CI and the dev machines run as root.
use std::{path::Path, process::Command};

use dentry_common::Config;
use tracer::probes::{self, AttachMode, Error, LoadOptions, PROBES, Set};

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe/type";

fn open(trace: bool) -> aya::Ebpf {
    let options = LoadOptions {
        offsets: probes::kernel_offsets().expect("this kernel has BTF"),
        config: Config {
            trace: u32::from(trace),
            scoped: 1,
            ancestor_levels: 0b110,
            wakeup_bytes: 1 << 14,
        },
        ring_buffer_bytes: 1 << 16,
    };
    probes::open(tracer::EBPF_OBJECT, &options).expect("the object parses and its maps are created")
}

/// With tracing on and off (the verifier sees different code once the config is constant).
#[test]
fn every_program_in_the_object_passes_the_verifier() {
    let btf = aya::Btf::from_sys_fs().expect("BTF");
    for trace in [false, true] {
        let mut ebpf = open(trace);
        let results = probes::verify_all(&mut ebpf, &btf);
        let mut in_object: Vec<&str> = ebpf.programs().map(|(name, _)| name).collect();
        let mut tried: Vec<&str> = results.iter().map(|(name, _)| *name).collect();
        in_object.sort_unstable();
        tried.sort_unstable();
        tried.dedup();
        assert_eq!(
            in_object, tried,
            "every program in the object must be tried"
        );
        for (program, result) in results {
            let Err(err) = result else { continue };
            let fentry_refused = program.starts_with("fe_") || program.starts_with("fx_");
            let text = format!("{err}");
            // Lockdown refuses fentry with EPERM before verification; anything else is a bug.
            assert!(
                fentry_refused && text.contains("Operation not permitted"),
                "{program} (trace={trace}) failed to load: {err}"
            );
        }
    }
}

#[test]
fn attach_works_or_names_the_missing_kprobes() {
    let mut ebpf = open(false);
    let result = probes::attach(&mut ebpf, &[Set::Counters], AttachMode::Kprobe);
    if Path::new(KPROBE_PMU).exists() {
        let attached = result.unwrap_or_else(|e| panic!("this kernel has kprobes, yet: {e}"));
        let wanted = PROBES.iter().filter(|p| p.set == Set::Counters).count();
        assert_eq!(attached.len(), wanted);
    } else {
        let err = result.expect_err("attach cannot succeed without a kprobe PMU");
        assert!(matches!(err, Error::KprobesUnavailable), "{err:?}");
        assert!(
            err.to_string()
                .contains("kprobes unavailable on this kernel"),
            "{err}"
        );
    }
}

#[test]
fn the_tracer_binary_runs_or_says_why_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args(["--duration", "1s", "--trace-enabled"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the tracer runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if Path::new(KPROBE_PMU).exists() {
        assert!(out.status.success(), "kprobes exist here, yet: {stderr}");
        return;
    }
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(
        stderr.contains("kprobes unavailable on this kernel"),
        "{stderr}"
    );
}

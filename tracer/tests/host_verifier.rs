//! On the machine running the tests: every kernel program passes this kernel's verifier, and
//! attaching either works or fails with the one-line "kprobes unavailable" diagnosis.
//! Needs root (CAP_BPF): CI and the dev machines run as root.
use std::{path::Path, process::Command};

use tracer::probes::{self, Error, KPROBES};

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe/type";

fn loaded() -> aya::Ebpf {
    let mut ebpf =
        probes::open(tracer::EBPF_OBJECT).expect("the eBPF object parses and its maps are created");
    probes::load_all(&mut ebpf).unwrap_or_else(|e| panic!("verifier rejected a program: {e}"));
    ebpf
}

#[test]
fn every_program_in_the_object_passes_the_verifier() {
    let ebpf = loaded();
    let mut in_object: Vec<&str> = ebpf.programs().map(|(name, _)| name).collect();
    let mut loaded: Vec<&str> = KPROBES.iter().map(|(name, _)| *name).collect();
    in_object.sort_unstable();
    loaded.sort_unstable();
    assert_eq!(
        in_object, loaded,
        "every program in the object must be loaded (and so verified)"
    );
}

#[test]
fn attach_works_or_names_the_missing_kprobes() {
    let mut ebpf = loaded();
    let result = probes::attach_all(&mut ebpf);
    if Path::new(KPROBE_PMU).exists() {
        result.unwrap_or_else(|e| panic!("this kernel has kprobes, yet attach failed: {e}"));
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
        .args(["--duration", "1s"])
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

//! On the machine running the tests: every kernel program passes this kernel's verifier, and
//! attaching either works or fails with the one-line "kprobes unavailable" diagnosis.
//! Needs root (CAP_BPF): CI and the dev machines run as root.
use std::{path::Path, process::Command};

use dentry_common::{Config, KERNEL_PATTERNS, KernelPatterns};
use tracer::kernel::probes::{self, AttachMode, Error, LoadOptions, PROBES, Set};

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe/type";

/// `old_kernel`: loaded as for a kernel before 6.1 (`BORN` preallocated) and 5.11 (a task's
/// ancestor cgroups read from its cgroup, not asked of the helper), so that code is verified
/// here too.
fn open(trace: bool, patterns: &[&str], old_kernel: bool) -> aya::Ebpf {
    let mut offsets = probes::kernel_offsets().expect("this kernel has BTF").0;
    if old_kernel {
        // Any non-zero offsets: the verifier checks the reads, not what they find.
        (offsets.task_cgroups, offsets.css_set_dfl_cgrp) = (8, 16);
        (offsets.cgroup_level, offsets.cgroup_ancestor_ids) = (24, 32);
    }
    let options = LoadOptions {
        offsets,
        config: Config {
            trace: u32::from(trace),
            scoped: 1,
            ancestor_levels: 0b110,
            wakeup_bytes: 1 << 14,
            bench: 0,
        },
        patterns: KernelPatterns::new(patterns.iter().map(|p| p.as_bytes())),
        ring_buffer_bytes: 1 << 16,
        // Live counting on, so its code is verified too (the bases are never read here).
        owner: tracer::kernel::btf::Btf::from_sys()
            .and_then(|btf| btf.owner_layout(1, 2, 12))
            .expect("this kernel's BTF has the slab and memcg fields"),
        prealloc: old_kernel,
    };
    let btf = probes::kernel_btf().expect("BTF");
    probes::open(tracer::EBPF_OBJECT, &options, &btf)
        .expect("the object parses and its maps are created")
}

/// With tracing off, on, and on with the most kernel patterns, the longest first (the verifier
/// sees different code once the config is constant).
#[test]
fn every_program_in_the_object_passes_the_verifier() {
    let btf = aya::Btf::from_sys_fs().expect("BTF");
    // The VM suite's set, so both kinds of kernel check the same programs.
    let most: Vec<&str> = xtask::dentry_workload::KERNEL_PATTERN_SET
        .split(',')
        .collect();
    assert_eq!(
        KernelPatterns::new(most.iter().map(|p| p.as_bytes())).count as usize,
        KERNEL_PATTERNS
    );
    for (trace, patterns, old_kernel) in [
        (false, &[][..], false),
        (true, &[][..], false),
        (true, &most[..], false),
        (true, &most[..], true),
    ] {
        let mut ebpf = open(trace, patterns, old_kernel);
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
        // What the verifier did for each, for docs/benchmarks.md.
        let verified = probes::verified(&ebpf);
        let total: u64 = verified.iter().map(|(_, n)| u64::from(*n)).sum();
        eprintln!(
            "verified (trace={trace}, patterns={}, old_kernel={old_kernel}): {total} \
             instructions in {} programs: {verified:?}",
            patterns.len(),
            verified.len()
        );
        for (program, result) in results {
            let Err(err) = result else { continue };
            // A function only newer kernels have has no fentry target on older ones.
            if matches!(err, Error::NotInKernel(_)) {
                continue;
            }
            let fentry_refused = program.starts_with("fe_") || program.starts_with("fx_");
            let text = format!("{err}");
            // Lockdown refuses fentry with EPERM before verification; anything else is a bug.
            assert!(
                fentry_refused && text.contains("Operation not permitted"),
                "{program} (trace={trace}, patterns {patterns:?}, old_kernel={old_kernel}) \
                 failed to load: {err}"
            );
        }
    }
}

#[test]
fn attach_works_or_names_the_missing_kprobes() {
    let mut ebpf = open(false, &[], false);
    let btf = probes::kernel_btf().expect("BTF");
    let result = probes::attach(&mut ebpf, &[Set::Counters], AttachMode::Kprobe, &btf);
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
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args([
            "--duration",
            "1s",
            "--trace-enabled",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--trace-dir")
        .arg(dir.path())
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

#[test]
fn check_reports_what_this_kernel_lacks() {
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .arg("--check")
        .output()
        .expect("the tracer runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
            .to_owned()
    };
    assert!(line("btf").contains(" ok "), "{stdout}");
    // Each feature on or off with its reason: said either way, never what makes --check fail.
    for (feature, what) in [
        ("trace", "trace events"),
        ("path-cache", "path cache"),
        ("live", "live gauges"),
        ("pending", "pending pods"),
    ] {
        let line = line(&format!("feature:{feature}"));
        let on = line.contains(" ok ") && line.ends_with(&format!("{what}: on"));
        let off = line.contains(" no ") && line.contains(&format!("{what} off: "));
        assert!(on || off, "{stdout}");
    }
    if Path::new(KPROBE_PMU).exists() {
        assert!(line("kprobes").contains(" ok "), "{stdout}");
    } else {
        assert!(line("kprobes").contains(" no "), "{stdout}");
        assert!(!out.status.success(), "{stdout}");
        let last = stdout.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("missing: ") && last.contains("kprobes"),
            "{stdout}"
        );
        assert!(
            last.contains("kprobes unavailable on this kernel"),
            "{stdout}"
        );
    }
}

#[test]
fn bad_flags_get_one_line_and_exit_2() {
    for args in [
        &["--duration", "5x"][..],
        &["--trace-max-size=-3"],
        &["--ring-buffer-size", "5000"],
        &["--max-bytes", "12Q"],
        &["--target-pod-uid", "mysql-0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
            .args(args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("tracer: invalid value"),
            "{args:?}: {stderr}"
        );
    }
}

/// Environment problems caught before any probe is loaded: one line naming cause and fix.
#[test]
fn bad_environment_gets_one_line_and_exit_1() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let cgroup2_root = if unified.is_dir() {
        unified
    } else {
        Path::new("/sys/fs/cgroup")
    };
    let root = cgroup2_root.to_str().expect("utf-8");
    let missing = format!("{root}/no-such-cgroup");
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--cgroup",
                root,
                "--target-pod-uid",
                "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f",
            ],
            "no pod cgroup with that UID",
        ),
        (
            vec![
                "--cgroup",
                root,
                "--target-pending",
                "--target-pod-uid",
                "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f",
            ],
            "no kubepods cgroup under",
        ),
        (
            vec!["--cgroup", root, "--target-cgroup", &missing],
            "--target-cgroup",
        ),
        (
            vec!["--trace-enabled", "--trace-dir", "/proc/forbidden/traces"],
            "pass --trace-dir a writable directory",
        ),
        (vec!["--listen", "9090"], "use :PORT or HOST:PORT"),
    ];
    // On a hybrid host /sys/fs/cgroup itself is not cgroup2: targeting must say so.
    if unified.is_dir() {
        cases.push((
            vec![
                "--cgroup",
                "/sys/fs/cgroup",
                "--target-cgroup",
                "/sys/fs/cgroup",
            ],
            "is not a cgroup2 mount",
        ));
    }
    for (mut args, expect) in cases {
        if !args.contains(&"--listen") {
            // Never depend on :9090 being free on the test machine.
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

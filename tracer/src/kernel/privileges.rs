//! The capabilities the tracer needs on a kernel, and what to say when the kernel refuses one
//! of its calls. Measured in the VM (`tracer/tests/vm_capabilities.rs`): a uid-0 process with
//! only these capabilities runs every feature, and without any one of them it does not.
use std::fmt::Write as _;

/// Capability bits (linux/capability.h).
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_SYSLOG: u32 = 34;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// One capability the tracer needs, and for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub name: &'static str,
    bit: u32,
    /// Whether `CAP_SYS_ADMIN` also grants it (the kernel's `bpf_capable`, `perfmon_capable`).
    admin_covers: bool,
    pub why: &'static str,
    /// Whether the kernel refuses the tracer's calls without it (else one feature is off).
    pub refused_without: bool,
}

const BPF: Need = Need {
    name: "CAP_BPF",
    bit: CAP_BPF,
    admin_covers: true,
    why: "creating maps and loading programs",
    refused_without: true,
};
const PERFMON: Need = Need {
    name: "CAP_PERFMON",
    bit: CAP_PERFMON,
    admin_covers: true,
    why: "tracing programs, kprobes and their reads of kernel memory",
    refused_without: true,
};
const SYSLOG: Need = Need {
    name: "CAP_SYSLOG",
    bit: CAP_SYSLOG,
    admin_covers: false,
    why: "kernel addresses in /proc/kallsyms, which the live gauges need (hidden without it \
          wherever perf_event_paranoid is above 1, the kernels' default)",
    refused_without: false,
};
const SYS_RESOURCE: Need = Need {
    name: "CAP_SYS_RESOURCE",
    bit: CAP_SYS_RESOURCE,
    admin_covers: false,
    why: "raising RLIMIT_MEMLOCK, which kernels before 5.11 charge maps to",
    refused_without: true,
};

/// What the tracer needs on a kernel of `version` (major, minor; `None`: not known, so all):
/// `dentry_common::tracer_capabilities`, the list the plugin gives the tracer pod.
pub fn needs(version: Option<(u32, u32)>) -> Vec<Need> {
    dentry_common::tracer_capabilities(version)
        .iter()
        .filter_map(|name| {
            [BPF, PERFMON, SYSLOG, SYS_RESOURCE]
                .into_iter()
                .find(|n| n.name.strip_prefix("CAP_") == Some(*name))
        })
        .collect()
}

/// This process's effective capabilities (`CapEff` in /proc/self/status).
pub fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Whether `caps` holds `bit`.
pub fn has(caps: u64, bit: u32) -> bool {
    caps & (1u64 << bit) != 0
}

/// Of `needs`, those `caps` lacks.
pub fn missing(caps: u64, needs: &[Need]) -> Vec<Need> {
    needs
        .iter()
        .filter(|n| !(has(caps, n.bit) || n.admin_covers && has(caps, CAP_SYS_ADMIN)))
        .copied()
        .collect()
}

/// The running kernel's (major, minor), from `uname`.
pub fn kernel_version() -> Option<(u32, u32)> {
    // SAFETY: uname fills the struct we own.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates the release.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    dentry_common::kernel_version(&release.to_string_lossy())
}

/// Why the kernel refused a call with EPERM, and what to change: the capabilities this
/// process lacks, or, when it has them all, the seccomp profile or security module that
/// refused it.
pub fn refused_hint(caps: Option<u64>, version: Option<(u32, u32)>) -> String {
    let Some(caps) = caps else {
        return "the tracer needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)".into();
    };
    let lacking: Vec<Need> = missing(caps, &needs(version))
        .into_iter()
        .filter(|n| n.refused_without)
        .collect();
    if lacking.is_empty() {
        return "this process has CAP_BPF and CAP_PERFMON, so a seccomp profile or a security \
                module refused the call (some runtimes' default seccomp profiles allow bpf() only \
                with CAP_SYS_ADMIN): set seccompProfile Unconfined, or run kubectl dentry with \
                --privileged"
            .into();
    }
    let mut out = String::from("this process lacks ");
    for (i, n) in lacking.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{} ({})", n.name, n.why);
    }
    let them = if lacking.len() == 1 { "it" } else { "them" };
    let _ = write!(
        out,
        ": add {them} to the container's capabilities, or run kubectl dentry with --privileged"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = u64::MAX;

    fn without(bits: &[u32]) -> u64 {
        bits.iter().fold(ALL, |caps, b| caps & !(1u64 << b))
    }

    #[test]
    fn kernels_before_5_11_also_need_sys_resource() {
        let names = |v| needs(v).iter().map(|n| n.name).collect::<Vec<_>>();
        assert_eq!(
            names(Some((5, 10))),
            ["CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG", "CAP_SYS_RESOURCE"]
        );
        assert_eq!(
            names(Some((7, 3))),
            ["CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG"]
        );
        assert_eq!(names(None).len(), 4);
    }

    #[test]
    fn sys_admin_covers_bpf_and_perfmon_but_not_syslog() {
        let caps = 1u64 << CAP_SYS_ADMIN;
        let lacking = missing(caps, &needs(Some((6, 12))));
        assert_eq!(
            lacking.iter().map(|n| n.name).collect::<Vec<_>>(),
            ["CAP_SYSLOG"]
        );
    }

    #[test]
    fn a_refusal_names_what_is_missing_or_blames_the_profile() {
        let hint = refused_hint(Some(without(&[CAP_BPF, CAP_SYS_ADMIN])), Some((6, 12)));
        assert!(hint.starts_with("this process lacks CAP_BPF ("), "{hint}");
        assert!(
            !hint.contains("CAP_SYSLOG"),
            "SYSLOG is never why a call is refused: {hint}"
        );
        let hint = refused_hint(Some(without(&[CAP_SYS_RESOURCE])), Some((5, 10)));
        assert!(hint.contains("CAP_SYS_RESOURCE"), "{hint}");
        let hint = refused_hint(Some(without(&[CAP_SYS_RESOURCE])), Some((5, 15)));
        assert!(hint.contains("seccomp"), "{hint}");
    }
}

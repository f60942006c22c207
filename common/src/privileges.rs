//! The capabilities the tracer needs, by kernel: what the plugin asks the tracer pod to be
//! given and what the tracer checks it has (`tracer/tests/vm_capabilities.rs` measures it on
//! 5.10 and 7.3). Names as a pod spec writes them, without `CAP_`.

/// Kernels from 5.11 charge BPF maps to the memory cgroup: `BPF` (maps, programs),
/// `PERFMON` (tracing programs, kprobes, reads of kernel memory), `SYSLOG` (kernel addresses
/// in /proc/kallsyms, for the live gauges).
const FROM_5_11: &[&str] = &["BPF", "PERFMON", "SYSLOG"];
/// Before 5.11 maps are charged to RLIMIT_MEMLOCK, which only `SYS_RESOURCE` may raise.
const BEFORE_5_11: &[&str] = &["BPF", "PERFMON", "SYSLOG", "SYS_RESOURCE"];

/// The tracer's capabilities on a kernel of `version` (major, minor); `None`: every kernel's.
pub fn tracer_capabilities(version: Option<(u32, u32)>) -> &'static [&'static str] {
    match version {
        Some(v) if v >= (5, 11) => FROM_5_11,
        _ => BEFORE_5_11,
    }
}

/// The first kernel with `CAP_BPF` and `CAP_PERFMON`; before it only `CAP_SYS_ADMIN` will do.
pub const CAPABILITIES_SINCE: (u32, u32) = (5, 8);

/// A kernel release's (major, minor): `5.10.0-32-cloud-amd64` → (5, 10).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_before_5_11_also_need_sys_resource() {
        assert_eq!(tracer_capabilities(Some((5, 10))), BEFORE_5_11);
        assert_eq!(tracer_capabilities(Some((5, 11))), FROM_5_11);
        assert_eq!(tracer_capabilities(Some((7, 3))), FROM_5_11);
        assert_eq!(tracer_capabilities(None), BEFORE_5_11);
    }

    #[test]
    fn releases_parse_to_major_and_minor() {
        assert_eq!(kernel_version("5.10.0-32-cloud-amd64"), Some((5, 10)));
        assert_eq!(kernel_version("7.3.4+deb13-cloud-amd64"), Some((7, 3)));
        assert_eq!(kernel_version("6.1"), Some((6, 1)));
        assert_eq!(kernel_version("linux"), None);
    }
}

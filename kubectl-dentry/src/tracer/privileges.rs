//! How privileged the tracer pod is: capabilities, not `privileged: true`, wherever the node
//! allows it. The capabilities follow the node's kernel (`dentry_common::tracer_capabilities`,
//! measured in the VM) and the seccomp profile its runtime (measured with containerd 1.6.20,
//! whose default profile allows `bpf()` with `CAP_BPF` and `perf_event_open()` with
//! `CAP_PERFMON`; runtimes whose default ties both to `CAP_SYS_ADMIN`, such as CRI-O's and
//! containerd's before that change, get `Unconfined`).
use k8s_openapi::api::core::v1::{Capabilities, NodeSystemInfo, SeccompProfile, SecurityContext};

/// What the tracer pod's container is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    Capabilities {
        add: &'static [&'static str],
        /// The runtime's default seccomp profile lets these capabilities call `bpf()`.
        runtime_default_seccomp: bool,
    },
    /// `privileged: true`, and why.
    Privileged(String),
}

/// The first containerd whose default seccomp profile was measured to allow `bpf()` with
/// `CAP_BPF` (containerd/containerd#7301 came in the 1.6 series; older ones are not trusted).
const CONTAINERD_BPF_SECCOMP: (u32, u32, u32) = (1, 6, 20);

impl Privileges {
    /// For a node reporting `info` (`None`: the node could not be read); `forced`: the user
    /// asked for `--privileged`.
    pub fn choose(info: Option<&NodeSystemInfo>, forced: bool) -> Privileges {
        if forced {
            return Privileges::Privileged("--privileged".into());
        }
        let kernel = info.and_then(|i| dentry_common::kernel_version(&i.kernel_version));
        if let Some(v) = kernel
            && v < dentry_common::CAPABILITIES_SINCE
        {
            return Privileges::Privileged(format!("kernel {}.{} has no CAP_BPF (5.8+)", v.0, v.1));
        }
        Privileges::Capabilities {
            add: dentry_common::tracer_capabilities(kernel),
            runtime_default_seccomp: info
                .is_some_and(|i| containerd_allows_bpf(&i.container_runtime_version)),
        }
    }

    /// The container's security context.
    pub fn security_context(&self) -> SecurityContext {
        let base = SecurityContext {
            read_only_root_filesystem: Some(true),
            run_as_user: Some(0),
            ..Default::default()
        };
        match self {
            Privileges::Privileged(_) => SecurityContext {
                privileged: Some(true),
                ..base
            },
            Privileges::Capabilities {
                add,
                runtime_default_seccomp,
            } => SecurityContext {
                privileged: Some(false),
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    add: Some(add.iter().map(|c| (*c).to_owned()).collect()),
                    drop: Some(vec!["ALL".to_owned()]),
                }),
                seccomp_profile: Some(SeccompProfile {
                    type_: if *runtime_default_seccomp {
                        "RuntimeDefault"
                    } else {
                        "Unconfined"
                    }
                    .to_owned(),
                    ..Default::default()
                }),
                ..base
            },
        }
    }

    /// For the progress line.
    pub fn describe(&self) -> String {
        match self {
            Privileges::Privileged(why) => format!("privileged ({why})"),
            Privileges::Capabilities {
                add,
                runtime_default_seccomp,
            } => format!(
                "capabilities {} (not privileged), seccomp {}",
                add.join(","),
                if *runtime_default_seccomp {
                    "RuntimeDefault"
                } else {
                    "Unconfined (the runtime's default profile is not known to allow bpf())"
                }
            ),
        }
    }
}

/// `containerd://1.7.2` and later than `CONTAINERD_BPF_SECCOMP`.
fn containerd_allows_bpf(runtime: &str) -> bool {
    let Some(version) = runtime.strip_prefix("containerd://") else {
        return false;
    };
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Some(major)), Some(Some(minor)), Some(Some(patch))) => {
            (major, minor, patch) >= CONTAINERD_BPF_SECCOMP
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kernel: &str, runtime: &str) -> NodeSystemInfo {
        NodeSystemInfo {
            kernel_version: kernel.into(),
            container_runtime_version: runtime.into(),
            ..Default::default()
        }
    }

    #[test]
    fn capabilities_follow_the_kernel_and_seccomp_the_runtime() {
        let new = Privileges::choose(
            Some(&node("6.1.0-57-cloud-amd64", "containerd://1.7.13")),
            false,
        );
        assert_eq!(
            new,
            Privileges::Capabilities {
                add: &["BPF", "PERFMON", "SYSLOG"],
                runtime_default_seccomp: true
            }
        );
        let old = Privileges::choose(
            Some(&node("5.10.0-32-cloud-amd64", "cri-o://1.28.1")),
            false,
        );
        assert_eq!(
            old,
            Privileges::Capabilities {
                add: &["BPF", "PERFMON", "SYSLOG", "SYS_RESOURCE"],
                runtime_default_seccomp: false
            }
        );
        let unknown = Privileges::choose(None, false);
        assert!(matches!(
            unknown,
            Privileges::Capabilities { add, runtime_default_seccomp: false } if add.len() == 4
        ));
    }

    #[test]
    fn privileged_only_when_asked_or_before_cap_bpf() {
        let info = node("6.12.118", "containerd://2.0.0");
        assert!(matches!(
            Privileges::choose(Some(&info), true),
            Privileges::Privileged(why) if why == "--privileged"
        ));
        let old = node("5.4.0-150-generic", "containerd://1.6.20");
        assert!(matches!(
            Privileges::choose(Some(&old), false),
            Privileges::Privileged(why) if why.contains("5.4") && why.contains("CAP_BPF")
        ));
    }

    #[test]
    fn containerd_versions_compare_as_numbers() {
        for (runtime, allows) in [
            ("containerd://1.6.20", true),
            ("containerd://1.6.9", false),
            ("containerd://1.7.0", true),
            ("containerd://v2.1.4", true),
            ("containerd://1.6.20-k3s1", true),
            ("cri-o://1.30.0", false),
            ("docker://24.0.7", false),
            ("containerd://", false),
        ] {
            assert_eq!(containerd_allows_bpf(runtime), allows, "{runtime}");
        }
    }

    #[test]
    fn a_capability_pod_never_escalates_and_drops_the_rest() {
        let caps = Privileges::choose(None, false).security_context();
        assert_eq!(caps.privileged, Some(false));
        assert_eq!(caps.allow_privilege_escalation, Some(false));
        assert_eq!(caps.read_only_root_filesystem, Some(true));
        let c = caps.capabilities.expect("capabilities");
        assert_eq!(c.drop, Some(vec!["ALL".to_owned()]));
        // The API server refuses privileged with allowPrivilegeEscalation false.
        let privileged = Privileges::choose(None, true).security_context();
        assert_eq!(privileged.privileged, Some(true));
        assert_eq!(privileged.allow_privilege_escalation, None);
    }
}

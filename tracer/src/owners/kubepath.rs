//! Pod UID and container ID from a cgroup path, for the kubelet's two cgroup drivers and the
//! common runtimes:
//!
//! - cgroupfs: `/kubepods/burstable/pod<uid>/<container-id>`, `/kubepods/pod<uid>/<id>`
//!   (Guaranteed), `/kubepods/besteffort/pod<uid>/<id>`
//! - systemd: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/
//!   cri-containerd-<id>.scope` (also `crio-<id>.scope`, `docker-<id>.scope`), Guaranteed pods
//!   directly under `kubepods.slice` as `kubepods-pod<uid>.slice`.

/// What a cgroup path says about its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathIds {
    /// Pod UID with dashes (`0f3c...-...`), when the path is inside a pod.
    pub pod_uid: Option<String>,
    /// Container ID (64 hex characters), when the path is a container's.
    pub container_id: Option<String>,
}

/// Parses a cgroup path relative to the cgroup2 root (leading `/` optional).
pub fn parse(path: &str) -> PathIds {
    let mut ids = PathIds::default();
    let mut in_kubepods = false;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "kubepods" || part == "kubepods.slice" {
            in_kubepods = true;
            continue;
        }
        if !in_kubepods {
            continue;
        }
        if ids.pod_uid.is_none() {
            ids.pod_uid = pod_uid(part);
            continue;
        }
        if ids.container_id.is_none() {
            ids.container_id = container_id(part);
        }
    }
    ids
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(part: &str) -> Option<String> {
    let raw = if let Some(slice) = part.strip_suffix(".slice") {
        let (_, uid) = slice.rsplit_once("-pod")?;
        uid.replace('_', "-")
    } else {
        part.strip_prefix("pod")?.to_owned()
    };
    is_uid(&raw).then_some(raw)
}

/// `<id>` (cgroupfs), or `<runtime>-<id>.scope` (systemd: cri-containerd, crio, docker).
fn container_id(part: &str) -> Option<String> {
    let id = match part.strip_suffix(".scope") {
        // CRI-O's monitor process sits beside the container, not in it.
        Some(scope) if scope.starts_with("crio-conmon-") => return None,
        Some(scope) => scope.rsplit_once('-')?.1,
        None => part.rsplit_once('-').map_or(part, |(_, id)| id),
    };
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

pub fn is_uid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f";
    const CID: &str = "4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f";

    #[test]
    fn cgroupfs_driver_every_qos_class() {
        for qos in ["", "burstable/", "besteffort/"] {
            let path = format!("/kubepods/{qos}pod{UID}/{CID}");
            let parsed = parse(&path);
            assert_eq!(parsed.pod_uid.as_deref(), Some(UID), "{path}");
            assert_eq!(parsed.container_id.as_deref(), Some(CID), "{path}");
        }
    }

    #[test]
    fn systemd_driver_every_qos_class_and_runtime() {
        let uid_ = UID.replace('-', "_");
        for (qos_slice, pod_prefix) in [
            ("", "kubepods"),
            ("kubepods-burstable.slice/", "kubepods-burstable"),
            ("kubepods-besteffort.slice/", "kubepods-besteffort"),
        ] {
            for runtime in ["cri-containerd", "crio", "docker"] {
                let path = format!(
                    "/kubepods.slice/{qos_slice}{pod_prefix}-pod{uid_}.slice/{runtime}-{CID}.scope"
                );
                let parsed = parse(&path);
                assert_eq!(parsed.pod_uid.as_deref(), Some(UID), "{path}");
                assert_eq!(parsed.container_id.as_deref(), Some(CID), "{path}");
            }
        }
    }

    #[test]
    fn pod_level_and_non_kubernetes_paths() {
        let pod = parse(&format!("/kubepods/burstable/pod{UID}"));
        assert_eq!(pod.pod_uid.as_deref(), Some(UID));
        assert_eq!(pod.container_id, None);
        assert_eq!(parse("/system.slice/kubelet.service"), PathIds::default());
        assert_eq!(parse("/kubepods/burstable"), PathIds::default());
        // CRI-O's conmon scope belongs to the pod but is not a container.
        let conmon = parse(&format!(
            "/kubepods.slice/kubepods-pod{}.slice/crio-conmon-{CID}.scope",
            UID.replace('-', "_")
        ));
        assert_eq!(conmon.pod_uid.as_deref(), Some(UID));
        assert_eq!(conmon.container_id, None);
        assert_eq!(
            parse(&format!("/kubepods/podnot-a-uid/{CID}")).pod_uid,
            None
        );
    }
}

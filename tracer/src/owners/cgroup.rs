//! cgroup v2 identities as the kernel reports them to BPF programs.
use std::{io, os::unix::fs::MetadataExt, path::Path};

/// A cgroup to scope tracing to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What `bpf_get_current_cgroup_id()` returns for tasks in it: its directory's inode.
    pub id: u64,
    /// Depth below the cgroup2 root (the root is level 0), the level at which
    /// `bpf_get_current_ancestor_cgroup_id` finds it for tasks in its descendants.
    pub level: u32,
    /// Its directory.
    pub dir: std::path::PathBuf,
}

/// The ids of `dir` and every cgroup below it now.
pub fn ids_below(dir: &Path) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        ids.push(meta.ino());
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    ids
}

/// The target for `dir`, a directory under the cgroup2 mount `root`.
pub fn target(root: &Path, dir: &Path) -> io::Result<Target> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a cgroup directory", dir.display()),
        ));
    }
    let root = std::fs::canonicalize(root)?;
    let dir = std::fs::canonicalize(dir)?;
    let below = dir.strip_prefix(&root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not under the cgroup root {}",
                dir.display(),
                root.display()
            ),
        )
    })?;
    Ok(Target {
        id: meta.ino(),
        level: below.components().count() as u32,
        dir,
    })
}

/// How deep below the cgroup root a node's `kubepods` directory may sit (a node running in a
/// container, as kind's, nests it under its own root).
const KUBEPODS_MAX_DEPTH: u32 = 4;

/// The levels (a bit each) at which the kubelet creates pod cgroups: one below each `kubepods`
/// (cgroupfs) or `kubepods.slice` (systemd) directory (Guaranteed pods) and two below it (the
/// burstable and besteffort tiers). Empty when there is no kubepods directory.
pub fn pod_levels(root: &Path) -> u32 {
    let mut levels = 0;
    let mut stack = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let level = depth + 1;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // `kubelet-kubepods.slice` where the kubelet runs with --cgroup-root=/kubelet.
            if name == "kubepods" || name.ends_with("kubepods.slice") {
                levels |= 1 << (level + 1) | 1 << (level + 2);
            } else if level < KUBEPODS_MAX_DEPTH {
                stack.push((entry.path(), level));
            }
        }
    }
    levels
}

/// The cgroup2 mount, held open to ask `exists` of (`None` where it cannot be opened).
pub struct Mount(Option<std::fs::File>);

impl Mount {
    pub fn open(root: &Path) -> Mount {
        Mount(std::fs::File::open(root).ok())
    }

    /// `exists` on this mount; `None` where the kernel will not say or the mount is not open.
    pub fn exists(&self, id: u64) -> Option<bool> {
        self.0.as_ref().and_then(|m| exists(m, id))
    }
}

/// Asks the kernel whether the cgroup with this id still exists, through a file handle on the
/// cgroup2 mount (a kernfs handle is the id): no directory walk, so a cgroup that lived for
/// less than a resolve interval is still known to be gone. `None` where the kernel will not
/// say (no CAP_DAC_READ_SEARCH, not a cgroup2 mount).
pub fn exists(mount: &std::fs::File, id: u64) -> Option<bool> {
    use std::os::fd::AsRawFd as _;
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        id: u64,
    }
    const FILEID_KERNFS: i32 = 0xfe;
    let mut handle = Handle {
        bytes: 8,
        kind: FILEID_KERNFS,
        id,
    };
    // SAFETY: `handle` is a `struct file_handle` with its 8 bytes of handle; the fd it returns
    // is closed at once.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            (&raw mut handle).cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: an fd we own.
        unsafe { libc::close(fd) };
        return Some(true);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ESTALE | libc::ENOENT) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_the_inode_and_level_the_depth() {
        let root = tempfile::tempdir().unwrap();
        let pod = root.path().join("kubepods/burstable/pod1234");
        std::fs::create_dir_all(&pod).unwrap();
        let t = target(root.path(), &pod).unwrap();
        assert_eq!(t.level, 3);
        assert_eq!(t.id, std::fs::metadata(&pod).unwrap().ino());
        std::fs::create_dir_all(pod.join("c1")).unwrap();
        let ids = ids_below(&pod);
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&t.id));
        assert_eq!(target(root.path(), root.path()).unwrap().level, 0);
    }

    #[test]
    fn pods_sit_one_and_two_below_kubepods_wherever_it_is() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(pod_levels(root.path()), 0);
        std::fs::create_dir_all(root.path().join("kubepods.slice/kubepods-burstable.slice"))
            .unwrap();
        assert_eq!(pod_levels(root.path()), 1 << 2 | 1 << 3);
        // Nested nodes' trees: under a container's own cgroup, and under --cgroup-root.
        let nested = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(nested.path().join("docker/abc/kubepods/besteffort")).unwrap();
        assert_eq!(pod_levels(nested.path()), 1 << 4 | 1 << 5);
        let rooted = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(rooted.path().join("kubelet.slice/kubelet-kubepods.slice"))
            .unwrap();
        assert_eq!(pod_levels(rooted.path()), 1 << 3 | 1 << 4);
    }

    #[test]
    fn outside_the_root_or_not_a_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let err = target(root.path(), other.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let file = root.path().join("cgroup.procs");
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            target(root.path(), &file).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

//! cgroup id → pod/container, resolved on the node: pod UID and container ID from the cgroup
//! path, names from the kubelet's log directories. Unknown cgroups resolve to empty labels.
use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Instant,
};

use crate::owners::{kubelet::Names, kubepath};

/// Who a cgroup belongs to. Empty strings where unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub pod_uid: String,
}

/// Where to look.
#[derive(Debug, Clone)]
pub struct Sources {
    pub cgroup_root: PathBuf,
    pub pods_log_dir: PathBuf,
    pub containers_log_dir: PathBuf,
}

/// A snapshot of every cgroup under the root, with owners where known.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    by_id: HashMap<u64, Owner>,
    /// pod UID → the pod's own cgroup directory.
    pod_dirs: HashMap<String, PathBuf>,
    /// container ID → the container's cgroup directory.
    container_dirs: HashMap<String, PathBuf>,
    /// Every cgroup the walk found, pod or not: a cgroup one walk found and a later one did
    /// not is gone (ids are never reused).
    walked: HashSet<u64>,
    /// When the sources of this snapshot began to be read: a cgroup counting before then and
    /// still unnamed by it is not a container that has just started.
    began: Option<Instant>,
}

/// How deep kubepods hierarchies go (root/kubepods/qos/pod/container, plus nested slices).
const MAX_DEPTH: usize = 8;

impl Owners {
    pub fn resolve(sources: &Sources) -> Owners {
        Owners::resolve_with(sources, None)
    }

    /// As `resolve`, with names from the runtime (`cri`) preferred to the kubelet's files.
    pub fn resolve_with(sources: &Sources, cri: Option<&Names>) -> Owners {
        let began = Instant::now();
        let mut names = Names::read(&sources.pods_log_dir, &sources.containers_log_dir);
        if let Some(cri) = cri {
            names.overlay(cri);
        }
        let mut owners = Owners {
            began: Some(began),
            ..Owners::default()
        };
        let mut stack = vec![(sources.cgroup_root.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            owners.walked.insert(meta.ino());
            let relative = dir
                .strip_prefix(&sources.cgroup_root)
                .unwrap_or(Path::new(""))
                .to_string_lossy()
                .into_owned();
            let ids = kubepath::parse(&relative);
            if let Some(uid) = &ids.pod_uid {
                let pod = names.pods.get(uid);
                let container = ids
                    .container_id
                    .as_ref()
                    .and_then(|c| names.containers.get(c))
                    .cloned()
                    .unwrap_or_default();
                match &ids.container_id {
                    None => owners.pod_dirs.insert(uid.clone(), dir.clone()),
                    Some(id) => owners.container_dirs.insert(id.clone(), dir.clone()),
                };
                owners.by_id.insert(
                    meta.ino(),
                    Owner {
                        namespace: pod.map(|p| p.namespace.clone()).unwrap_or_default(),
                        pod: pod.map(|p| p.pod.clone()).unwrap_or_default(),
                        container,
                        pod_uid: uid.clone(),
                    },
                );
            }
            if depth < MAX_DEPTH
                && let Ok(entries) = std::fs::read_dir(&dir)
            {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push((entry.path(), depth + 1));
                    }
                }
            }
        }
        owners
    }

    /// Marks the snapshot as built from sources read from `at` on (names asked of the runtime
    /// before the walk).
    pub fn began_at(mut self, at: Instant) -> Owners {
        self.began = Some(at);
        self
    }

    /// When the sources of this snapshot began to be read (`None`: made by hand).
    pub fn began(&self) -> Option<Instant> {
        self.began
    }

    /// Records an owner by hand (tests and benchmarks; `resolve` fills it from the node).
    pub fn insert(&mut self, id: u64, owner: Owner) {
        self.by_id.insert(id, owner);
    }

    /// Whether the walk that made this snapshot found the cgroup.
    pub fn walked(&self, id: u64) -> bool {
        self.walked.contains(&id)
    }

    /// The owner of a cgroup id; `None` for cgroups outside any pod.
    pub fn get(&self, id: u64) -> Option<&Owner> {
        self.by_id.get(&id)
    }

    /// The cgroup directory of a pod, by UID.
    pub fn pod_dir(&self, uid: &str) -> Option<&Path> {
        self.pod_dirs.get(uid).map(PathBuf::as_path)
    }

    /// The cgroup directory of a container, by its runtime ID (as in the pod's status, without
    /// the `containerd://` scheme).
    pub fn container_dir(&self, id: &str) -> Option<&Path> {
        self.container_dirs.get(id).map(PathBuf::as_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f";
    const CID: &str = "4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f";

    #[test]
    fn resolves_a_fixture_tree_for_both_drivers() {
        for (pod_rel, container_rel) in [
            (format!("kubepods/burstable/pod{UID}"), CID.to_owned()),
            (
                format!(
                    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
                    UID.replace('-', "_")
                ),
                format!("cri-containerd-{CID}.scope"),
            ),
        ] {
            let root = tempfile::tempdir().unwrap();
            let cg = root.path().join("cgroup");
            let pod_dir = cg.join(&pod_rel);
            let container_dir = pod_dir.join(&container_rel);
            std::fs::create_dir_all(&container_dir).unwrap();
            std::fs::create_dir_all(cg.join("system.slice/kubelet.service")).unwrap();
            let pods = root.path().join("pods");
            let containers = root.path().join("containers");
            std::fs::create_dir_all(pods.join(format!("prod_mysql-0_{UID}/mysql"))).unwrap();
            std::fs::create_dir_all(&containers).unwrap();
            std::fs::write(containers.join(format!("mysql-0_prod_mysql-{CID}.log")), "").unwrap();

            let owners = Owners::resolve(&Sources {
                cgroup_root: cg.clone(),
                pods_log_dir: pods,
                containers_log_dir: containers,
            });
            let id = |p: &Path| std::fs::metadata(p).unwrap().ino();
            let c = owners.get(id(&container_dir)).expect("container resolved");
            assert_eq!(
                (c.namespace.as_str(), c.pod.as_str(), c.container.as_str()),
                ("prod", "mysql-0", "mysql")
            );
            let p = owners.get(id(&pod_dir)).expect("pod resolved");
            assert_eq!(p.container, "");
            assert_eq!(p.pod_uid, UID);
            assert_eq!(owners.pod_dir(UID), Some(pod_dir.as_path()));
            assert_eq!(owners.container_dir(CID), Some(container_dir.as_path()));
            assert!(
                owners
                    .get(id(&cg.join("system.slice/kubelet.service")))
                    .is_none()
            );
        }
    }
}

//! Names for pod UIDs and container IDs from the kubelet's on-disk log layout, which every node
//! has and which needs no API server:
//!
//! - `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`
//! - `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`
use std::{collections::HashMap, path::Path};

/// A pod's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    pub namespace: String,
    pub pod: String,
}

/// What the kubelet's directories name.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// pod UID → namespace and name
    pub pods: HashMap<String, PodName>,
    /// container ID → container name
    pub containers: HashMap<String, String>,
}

impl Names {
    /// Reads both directories; a missing directory just names nothing.
    pub fn read(pods_dir: &Path, containers_dir: &Path) -> Names {
        let mut names = Names::default();
        for entry in entries(pods_dir) {
            if let Some((uid, name)) = parse_pod_dir(&entry) {
                names.pods.insert(uid, name);
            }
        }
        for entry in entries(containers_dir) {
            if let Some((id, container)) = parse_container_log(&entry) {
                names.containers.insert(id, container);
            }
        }
        names
    }
}

impl Names {
    /// Takes every name `better` knows, keeping ours for the rest.
    pub fn overlay(&mut self, better: &Names) {
        self.pods
            .extend(better.pods.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.containers.extend(
            better
                .containers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `<namespace>_<pod>_<uid>`: namespaces and pod names cannot contain `_`, UIDs cannot either.
pub fn parse_pod_dir(name: &str) -> Option<(String, PodName)> {
    let mut parts = name.splitn(3, '_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if namespace.is_empty() || pod.is_empty() || uid.len() != 36 {
        return None;
    }
    Some((
        uid.to_owned(),
        PodName {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
        },
    ))
}

/// `<pod>_<namespace>_<container>-<64 hex>.log` → (container id, container name).
pub fn parse_container_log(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let container = rest.splitn(3, '_').nth(2)?;
    (!container.is_empty()).then(|| (id.to_owned(), container.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f";
    const CID: &str = "4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f";

    #[test]
    fn pod_directories() {
        let (uid, name) = parse_pod_dir(&format!("prod_mysql-0_{UID}")).unwrap();
        assert_eq!(uid, UID);
        assert_eq!(
            name,
            PodName {
                namespace: "prod".into(),
                pod: "mysql-0".into()
            }
        );
        assert!(parse_pod_dir("prod_mysql-0").is_none());
        assert!(parse_pod_dir("prod_mysql-0_short").is_none());
    }

    #[test]
    fn container_logs() {
        let (id, name) =
            parse_container_log(&format!("mysql-0_prod_mysql-server-{CID}.log")).unwrap();
        assert_eq!(id, CID);
        assert_eq!(name, "mysql-server");
        assert!(parse_container_log("mysql-0_prod_mysql-abc.log").is_none());
        assert!(parse_container_log(&format!("mysql-0_prod_mysql-{CID}.txt")).is_none());
    }

    #[test]
    fn reads_a_kubelet_tree() {
        let root = tempfile::tempdir().unwrap();
        let pods = root.path().join("pods");
        let containers = root.path().join("containers");
        std::fs::create_dir_all(pods.join(format!("prod_mysql-0_{UID}/mysql"))).unwrap();
        std::fs::create_dir_all(&containers).unwrap();
        std::fs::write(containers.join(format!("mysql-0_prod_mysql-{CID}.log")), "").unwrap();
        let names = Names::read(&pods, &containers);
        assert_eq!(names.pods[UID].pod, "mysql-0");
        assert_eq!(names.containers[CID], "mysql");
        let none = Names::read(&root.path().join("absent"), &root.path().join("absent"));
        assert!(none.pods.is_empty() && none.containers.is_empty());
    }
}

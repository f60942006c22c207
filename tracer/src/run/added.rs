//! Pods added to a running trace (`--target-pod-uids-file`): the plugin adds a pod that appears
//! on this node (a scale-up, a rescheduled replica, a Job's retry) by rewriting the file, which
//! the kubelet does atomically through a downward API volume. Each new UID is armed as a
//! `--target-pending` one is, and its cgroup becomes a target at once if it exists already.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::Ebpf;

use crate::{
    kernel::probes,
    owners::{Owners, Sources, cgroup, kubepath},
};

/// The UIDs a file names (comma- or whitespace-separated), and what is not a UID in it.
pub fn parse(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut uids = BTreeSet::new();
    let mut bad = Vec::new();
    for word in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if kubepath::is_uid(word) {
            uids.insert(word.to_owned());
        } else {
            bad.push(word.to_owned());
        }
    }
    (uids, bad)
}

/// The file's UIDs now; a missing file names none (the volume may not be populated yet).
pub fn read(path: &Path) -> BTreeSet<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (uids, bad) = parse(&text);
            if !bad.is_empty() {
                tracing::warn!(file = %path.display(), ignored = %bad.join(","), "not pod UIDs");
            }
            uids
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => {
            tracing::warn!(file = %path.display(), "cannot read: {e}");
            BTreeSet::new()
        }
    }
}

/// Arms the kernel for `uids` and makes the cgroups of those that exist already targets.
/// Returns how many had a cgroup.
pub fn add(ebpf: &mut Ebpf, sources: &Sources, uids: &[String]) -> Result<usize, probes::Error> {
    probes::arm_uids(ebpf, uids)?;
    // After the arming, so a cgroup made meanwhile is caught by one or the other.
    let now = Owners::resolve(sources);
    let started: Vec<u64> = uids
        .iter()
        .filter_map(|uid| now.pod_dir(uid))
        .filter_map(|dir| cgroup::target(&sources.cgroup_root, dir).ok())
        .map(|t| t.id)
        .collect();
    probes::set_targets(ebpf, &started)?;
    Ok(started.len())
}

pub async fn watch_loop(
    path: PathBuf,
    ebpf: Arc<Mutex<Ebpf>>,
    sources: Sources,
    every: Duration,
    mut known: BTreeSet<String>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let new: Vec<String> = read(&path).difference(&known).cloned().collect();
        if new.is_empty() {
            continue;
        }
        let added = match ebpf.lock() {
            Ok(mut ebpf) => add(&mut ebpf, &sources, &new),
            Err(_) => return,
        };
        match added {
            Ok(running) => {
                // The VM test waits for this line before it makes the pod's cgroup.
                tracing::info!(pods = %new.join(","), running, "pods added to the trace");
                known.extend(new);
            }
            Err(e) => tracing::warn!(pods = %new.join(","), "cannot add pods to the trace: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_uids_are_read_and_anything_else_is_named() {
        let (uids, bad) = parse(
            "5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d,6e2d3c4b-5f6a-4b7c-9d8e-0f1a2b3c4d5e\n\
             5d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d  mysql-0 ,",
        );
        assert_eq!(uids.len(), 2);
        assert_eq!(bad, ["mysql-0"]);
        assert!(parse("").0.is_empty());
        let missing = read(Path::new("/nonexistent/dentry-uids"));
        assert!(missing.is_empty());
    }
}

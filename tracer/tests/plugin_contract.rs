//! The plugin's tracer pod and the tracer agree: every arg the pod passes is a flag the tracer
//! accepts, and every path those args name is mounted in the pod.
use clap::Parser as _;
use kubectl_dentry::tracer::pod::{Purpose, TracerPod};

const UID: &str = "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f";

/// A trace of pods that may not have cgroups yet.
fn pending(target_uids: Vec<String>, adds: bool) -> Purpose {
    Purpose::Trace {
        target_uids,
        adds,
        container_id: None,
        patterns: vec![".ibd".into(), "#sql".into()],
        max_events: None,
        linger_secs: None,
        pending: true,
        host_paths: true,
    }
}

fn pods() -> Vec<TracerPod> {
    let base = TracerPod {
        name_prefix: "dentry-trace-x-".into(),
        namespace: "dentry-monitor".into(),
        node: "node-a".into(),
        image: kubectl_dentry::DEFAULT_IMAGE.into(),
        duration_secs: 30,
        target: Some("prod/mysql-0".into()),
        purpose: Purpose::Trace {
            target_uids: vec!["0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f".into()],
            adds: false,
            container_id: None,
            patterns: vec![".ibd".into(), "#sql".into()],
            max_events: Some(1000),
            linger_secs: None,
            pending: false,
            host_paths: false,
        },
        privileged: false,
    };
    vec![
        base.clone(),
        // -c and --keep.
        TracerPod {
            purpose: Purpose::Trace {
                target_uids: vec!["0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f".into()],
                adds: false,
                container_id: Some("containerd://4f2b9c6e8a1d".into()),
                patterns: vec![".ibd".into(), "#sql".into()],
                max_events: None,
                linger_secs: Some(3600),
                pending: false,
                host_paths: false,
            },
            ..base.clone()
        },
        // --wait: the pod's cgroup may not exist yet.
        TracerPod {
            purpose: pending(vec![UID.into()], false),
            ..base.clone()
        },
        // A workload: several pods on the node, more added while it runs.
        TracerPod {
            purpose: pending(
                vec![UID.into(), "1a4d9e3f-2c5b-4d6e-8f7a-8b9c0d1e2f3a".into()],
                true,
            ),
            ..base.clone()
        },
        TracerPod {
            purpose: Purpose::Top,
            target: None,
            ..base
        },
    ]
}

#[test]
fn the_tracer_accepts_the_plugins_args_and_finds_its_paths_mounted() {
    for pod in pods() {
        let args = pod.args();
        let parsed = tracer::cli::Args::try_parse_from(
            std::iter::once("tracer".to_owned()).chain(args.clone()),
        )
        .unwrap_or_else(|e| panic!("the tracer rejects {args:?}: {e}"));
        let privileges = kubectl_dentry::tracer::privileges::Privileges::choose(None, false);
        let built = pod.build(&privileges);
        let spec = built.spec.expect("spec");
        // The pod is given what the tracer checks it has (a node whose kernel is not known:
        // every supported kernel's needs).
        let added = spec.containers[0]
            .security_context
            .as_ref()
            .and_then(|sc| sc.capabilities.as_ref()?.add.clone())
            .unwrap_or_default();
        let needed: Vec<String> = tracer::kernel::privileges::needs(None)
            .iter()
            .map(|n| n.name.trim_start_matches("CAP_").to_owned())
            .collect();
        assert_eq!(added, needed);
        let mounts: Vec<String> = spec.containers[0]
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_path)
            .collect();
        let cri = parsed.cri_sockets();
        assert_eq!(cri.len(), 3, "{cri:?}");
        for socket in &cri {
            assert!(
                mounts.iter().any(|m| socket.starts_with(m)),
                "{} is not under a mount",
                socket.display()
            );
        }
        assert!(
            mounts.contains(&parsed.cgroup.display().to_string()),
            "{} not mounted",
            parsed.cgroup.display()
        );
        // The kubelet's log directories may be absent on a node (podLogsDir elsewhere): the
        // pod mounts a directory every node has that holds them, so they are seen where they
        // exist and the pod still starts where they do not.
        for path in [&parsed.pods_log_dir, &parsed.containers_log_dir] {
            let parent = path.parent().map(|p| p.display().to_string());
            assert!(
                parent.is_some_and(|parent| mounts.contains(&parent)),
                "{} is not under a mounted /var/log: {mounts:?}",
                path.display()
            );
        }
        if matches!(pod.purpose, Purpose::Trace { .. }) {
            assert!(parsed.trace_enabled && parsed.stdout);
            assert!(mounts.contains(&parsed.trace_dir.display().to_string()));
            assert_eq!(parsed.duration, Some(std::time::Duration::from_secs(30)));
            assert_eq!(parsed.trace_patterns.0, [".ibd", "#sql"]);
            if let Purpose::Trace {
                container_id: Some(id),
                linger_secs: Some(linger),
                ..
            } = &pod.purpose
            {
                assert_eq!(parsed.target_container_ids, std::slice::from_ref(id));
                assert!(parsed.target_pod_uids.is_empty());
                assert_eq!(parsed.linger, Some(std::time::Duration::from_secs(*linger)));
            }
            if let Purpose::Trace {
                target_uids,
                container_id: None,
                pending,
                adds,
                ..
            } = &pod.purpose
            {
                assert_eq!(&parsed.target_pod_uids, target_uids);
                assert_eq!(parsed.target_pod_uids_file.is_some(), *adds);
                if let Some(file) = &parsed.target_pod_uids_file {
                    let dir = file.parent().expect("a dir").display().to_string();
                    assert!(mounts.contains(&dir), "{} not mounted", file.display());
                    let volumes = spec.volumes.clone().unwrap_or_default();
                    let projected = volumes
                        .iter()
                        .find_map(|v| v.downward_api.as_ref()?.items.clone())
                        .expect("a downward API volume");
                    assert_eq!(
                        projected[0]
                            .field_ref
                            .as_ref()
                            .map(|f| f.field_path.as_str()),
                        Some("metadata.annotations['kubectl-dentry/target-uid']")
                    );
                    assert_eq!(
                        built.metadata.annotations.as_ref().expect("annotations")["kubectl-dentry/target-uid"],
                        target_uids.join(",")
                    );
                }
                assert_eq!(parsed.target_pending, *pending);
            }
        } else {
            assert!(!parsed.trace_enabled);
        }
    }
}

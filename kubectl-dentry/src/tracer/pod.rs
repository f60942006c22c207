//! The tracer pod, built in one place so what the plugin asks a cluster to run is easy to
//! audit: pinned to the target's node, hostPID, tolerating every taint, no service-account
//! token, bounded resources, labelled for `cleanup` and `fetch`, and with a deadline so it
//! removes itself if the laptop that started it goes away.
use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, DownwardAPIVolumeFile, DownwardAPIVolumeSource,
        EmptyDirVolumeSource, HostPathVolumeSource, ObjectFieldSelector, Pod, PodSpec,
        ResourceRequirements, Toleration, Volume, VolumeMount,
    },
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};

use crate::tracer::privileges::Privileges;

/// Label every tracer pod carries; `cleanup` and `fetch` select on it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-dentry");
pub const NAME_LABEL: (&str, &str) = ("app.kubernetes.io/name", "dentry-tracer");
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const TARGET_POD_ANNOTATION: &str = "kubectl-dentry/target-pod";
/// The traced pods' UIDs, comma-separated.
pub const TARGET_UID_ANNOTATION: &str = "kubectl-dentry/target-uid";
/// Where the tracer reads the annotation when pods can be added (a downward API volume).
pub const UIDS_DIR: &str = "/etc/dentry";
pub const UIDS_FILE: &str = "target-uids";
pub const METRICS_PORT: i32 = 9090;
/// Where the tracer writes its rotated files inside the pod (an emptyDir).
pub const TRACE_DIR: &str = "/data/traces";
/// Time the pod gets beyond the trace's duration to pull, attach and finish before the
/// deadline kills it.
pub const DEADLINE_GRACE_SECS: i64 = 300;

/// What the tracer pod is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Trace one pod's paths, streaming TSV lines to the log.
    Trace {
        /// The traced pods on this node (one for `trace pod/NAME`).
        target_uids: Vec<String>,
        /// Pods can be added while it runs: the plugin rewrites the target-uids annotation,
        /// which the kubelet projects into the tracer's `--target-pod-uids-file`.
        adds: bool,
        /// With -c: scope to this container (its runtime ID) instead of the whole pod.
        container_id: Option<String>,
        patterns: Vec<String>,
        max_events: Option<u64>,
        /// `--keep`: after the trace, serve /traces this long for `fetch traces`.
        linger_secs: Option<u64>,
        /// `--wait`: the pod may have no cgroup yet; the tracer arms for it.
        pending: bool,
        /// Paths in overlay layers as the host sees them, not as the container does.
        host_paths: bool,
    },
    /// Counters only, for `top` (every container on the node).
    Top,
}

/// Everything that varies between tracer pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracerPod {
    /// `dentry-trace-<target>-` or `dentry-top-<node>-`: the API server appends a random
    /// suffix (`generateName`), so concurrent runs never collide.
    pub name_prefix: String,
    pub namespace: String,
    pub node: String,
    pub image: String,
    pub duration_secs: u64,
    /// `namespace/name` of the traced pod, for people reading `kubectl get pods`.
    pub target: Option<String>,
    pub purpose: Purpose,
    /// `--privileged`: `privileged: true` whatever the node allows.
    pub privileged: bool,
}

fn quantity(q: &str) -> Quantity {
    Quantity(q.to_owned())
}

/// Where the host's /run is mounted in the tracer pod (read-only): the runtime's CRI socket is
/// there, for pod and container names.
pub const HOST_RUN: &str = "/host/run";

/// The CRI sockets the tracer tries, as seen inside the pod.
pub fn cri_sockets() -> String {
    dentry_common::CRI_SOCKETS
        .map(|s| format!("{HOST_RUN}/{s}"))
        .join(",")
}

/// A `generateName` prefix from parts, cut so the generated name stays a valid pod name.
pub fn name_prefix(kind: &str, what: &str) -> String {
    let mut prefix = format!("dentry-{kind}-{what}");
    prefix.truncate(52);
    let prefix = prefix.trim_end_matches(['-', '.']);
    format!("{prefix}-")
}

impl TracerPod {
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--listen=:{METRICS_PORT}"),
            "--cgroup=/host/sys/fs/cgroup".to_owned(),
            format!("--duration={}s", self.duration_secs),
            "--poll-interval=1s".to_owned(),
            "--resolve-interval=10s".to_owned(),
            format!("--cri-socket={}", cri_sockets()),
        ];
        if let Purpose::Trace {
            target_uids,
            adds,
            container_id,
            patterns,
            max_events,
            linger_secs,
            pending,
            host_paths,
        } = &self.purpose
        {
            match container_id {
                Some(id) => args.push(format!("--target-container-id={id}")),
                None => args.extend(target_uids.iter().map(|u| format!("--target-pod-uid={u}"))),
            }
            if *pending {
                args.push("--target-pending".to_owned());
            }
            if *host_paths {
                args.push("--host-paths".to_owned());
            }
            if *adds {
                args.push(format!("--target-pod-uids-file={UIDS_DIR}/{UIDS_FILE}"));
            }
            args.extend([
                "--trace-enabled".to_owned(),
                "--stdout".to_owned(),
                format!("--trace-dir={TRACE_DIR}"),
            ]);
            if !patterns.is_empty() {
                args.push(format!("--trace-patterns={}", patterns.join(",")));
            }
            if let Some(n) = max_events {
                args.push(format!("--max-events={n}"));
            }
            if let Some(s) = linger_secs {
                args.push(format!("--linger={s}s"));
            }
        }
        args
    }

    /// When the pod removes itself: the trace, the grace to start and finish, and the linger.
    pub fn deadline_secs(&self) -> i64 {
        let linger = match self.purpose {
            Purpose::Trace { linger_secs, .. } => linger_secs.unwrap_or(0),
            Purpose::Top => 0,
        };
        (self.duration_secs + linger) as i64 + DEADLINE_GRACE_SECS
    }

    /// The pod, its container allowed `privileges`.
    pub fn build(&self, privileges: &Privileges) -> Pod {
        let component = match self.purpose {
            Purpose::Trace { .. } => "trace",
            Purpose::Top => "top",
        };
        let labels = BTreeMap::from([
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
            (NAME_LABEL.0.to_owned(), NAME_LABEL.1.to_owned()),
            (COMPONENT_LABEL.to_owned(), component.to_owned()),
        ]);
        let mut annotations = BTreeMap::new();
        if let Some(target) = &self.target {
            annotations.insert(TARGET_POD_ANNOTATION.to_owned(), target.clone());
        }
        let adds = matches!(self.purpose, Purpose::Trace { adds: true, .. });
        if let Purpose::Trace { target_uids, .. } = &self.purpose {
            annotations.insert(TARGET_UID_ANNOTATION.to_owned(), target_uids.join(","));
        }
        let host_path = |name: &str, path: &str| Volume {
            name: name.to_owned(),
            host_path: Some(HostPathVolumeSource {
                path: path.to_owned(),
                type_: Some("Directory".to_owned()),
            }),
            ..Default::default()
        };
        let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
            name: name.to_owned(),
            mount_path: path.to_owned(),
            read_only: Some(read_only),
            ..Default::default()
        };
        let container = Container {
            name: "tracer".to_owned(),
            image: Some(self.image.clone()),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            args: Some(self.args()),
            ports: Some(vec![ContainerPort {
                name: Some("metrics".to_owned()),
                container_port: METRICS_PORT,
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_owned(), quantity("50m")),
                    ("memory".to_owned(), quantity("64Mi")),
                ])),
                limits: Some(BTreeMap::from([
                    ("cpu".to_owned(), quantity("1")),
                    ("memory".to_owned(), quantity("256Mi")),
                ])),
                ..Default::default()
            }),
            security_context: Some(privileges.security_context()),
            volume_mounts: Some(
                [
                    mount("cgroup", "/host/sys/fs/cgroup", true),
                    // The node's /var/log, not its pods/ and containers/: a kubelet that keeps
                    // pod logs elsewhere (podLogsDir) has none, and a hostPath that does not
                    // exist keeps the pod from starting. Names then come from CRI.
                    mount("var-log", "/var/log", true),
                    mount("run", HOST_RUN, true),
                    mount("traces", TRACE_DIR, false),
                ]
                .into_iter()
                .chain(adds.then(|| mount("target-uids", UIDS_DIR, true)))
                .collect(),
            ),
            ..Default::default()
        };
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(self.name_prefix.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(self.node.clone()),
                host_pid: Some(true),
                restart_policy: Some("Never".to_owned()),
                active_deadline_seconds: Some(self.deadline_secs()),
                termination_grace_period_seconds: Some(10),
                automount_service_account_token: Some(false),
                enable_service_links: Some(false),
                priority_class_name: None,
                tolerations: Some(vec![Toleration {
                    operator: Some("Exists".to_owned()),
                    ..Default::default()
                }]),
                containers: vec![container],
                volumes: Some(
                    [
                        host_path("cgroup", "/sys/fs/cgroup"),
                        host_path("var-log", "/var/log"),
                        host_path("run", "/run"),
                        Volume {
                            name: "traces".to_owned(),
                            empty_dir: Some(EmptyDirVolumeSource {
                                size_limit: Some(quantity("1Gi")),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ]
                    .into_iter()
                    .chain(adds.then(uids_volume))
                    .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }
}

/// The target-uids annotation as a file: the kubelet rewrites it (atomically) when the plugin
/// patches the annotation.
fn uids_volume() -> Volume {
    Volume {
        name: "target-uids".to_owned(),
        downward_api: Some(DownwardAPIVolumeSource {
            items: Some(vec![DownwardAPIVolumeFile {
                path: UIDS_FILE.to_owned(),
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.annotations['{TARGET_UID_ANNOTATION}']"),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_pod() -> TracerPod {
        TracerPod {
            name_prefix: "dentry-trace-mysql-0-".into(),
            namespace: "dentry-monitor".into(),
            node: "node-a".into(),
            image: crate::DEFAULT_IMAGE.into(),
            duration_secs: 60,
            target: Some("prod/mysql-0".into()),
            purpose: Purpose::Trace {
                target_uids: vec!["0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f".into()],
                adds: false,
                container_id: None,
                patterns: vec![".ibd".into(), "#sql".into()],
                max_events: Some(100_000),
                linger_secs: None,
                pending: false,
                host_paths: false,
            },
            privileged: false,
        }
    }

    /// A node with kernel 6.12 and containerd 1.7.
    fn golden_privileges() -> Privileges {
        let info = k8s_openapi::api::core::v1::NodeSystemInfo {
            kernel_version: "6.12.118+deb13-cloud-amd64".into(),
            container_runtime_version: "containerd://1.7.24".into(),
            ..Default::default()
        };
        Privileges::choose(Some(&info), false)
    }

    /// The whole spec, pinned: a change to what we ask clusters to run shows up in review.
    #[test]
    fn the_trace_pod_matches_the_golden_file() {
        let yaml =
            serde_yaml_ng::to_string(&trace_pod().build(&golden_privileges())).expect("serialises");
        let golden_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/trace-pod.yaml");
        if std::env::var_os("DENTRY_UPDATE_GOLDEN").is_some() {
            std::fs::write(golden_path, &yaml).expect("write golden");
        }
        let golden = std::fs::read_to_string(golden_path)
            .expect("golden file (DENTRY_UPDATE_GOLDEN=1 writes it)");
        assert_eq!(
            yaml, golden,
            "the tracer pod changed; review, then DENTRY_UPDATE_GOLDEN=1"
        );
    }

    #[test]
    fn the_tracer_accepts_the_args_and_the_deadline_outlives_the_trace() {
        let pod = trace_pod();
        let args = pod.args();
        assert!(args.contains(&"--target-pod-uid=0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f".to_owned()));
        assert!(args.contains(&"--trace-patterns=.ibd,#sql".to_owned()));
        let spec = pod.build(&golden_privileges()).spec.expect("spec");
        assert!(spec.active_deadline_seconds.expect("deadline") > 60);
        assert_eq!(spec.automount_service_account_token, Some(false));
        let top = TracerPod {
            purpose: Purpose::Top,
            target: None,
            ..trace_pod()
        };
        assert!(!top.args().iter().any(|a| a.starts_with("--trace")));
    }
}

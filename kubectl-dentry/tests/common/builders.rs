//! Typed objects for the tests' cluster, built with k8s-openapi as the API server would hold
//! them.
use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerState, ContainerStateRunning, ContainerStatus, Node, NodeCondition,
        NodeStatus, Pod, PodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

/// A pod with one container `c`, not scheduled yet.
pub fn pod(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("x".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

pub fn on_node(mut pod: Pod, node: &str) -> Pod {
    pod.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
    pod
}

/// The pod running, its container `c` with runtime ID `containerd://cid-NAME`.
pub fn running(mut pod: Pod) -> Pod {
    let name = pod.metadata.name.clone().unwrap_or_default();
    pod.status = Some(PodStatus {
        phase: Some("Running".into()),
        container_statuses: Some(vec![ContainerStatus {
            name: "c".into(),
            ready: true,
            image: "x".into(),
            container_id: Some(format!("containerd://cid-{name}")),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    });
    pod
}

pub fn node(name: &str, ready: bool) -> Node {
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        ("False", "KubeletNotReady", "container runtime is down")
    };
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: None,
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// The labels the plugin puts on its tracer pods.
pub const TRACER_LABELS: &[(&str, &str)] = &[
    ("app.kubernetes.io/managed-by", "kubectl-dentry"),
    ("app.kubernetes.io/name", "dentry-tracer"),
];

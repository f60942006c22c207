//! What a command is about: one pod (found, scheduled, on a Ready node, with the container
//! asked for), or a workload's pods (`workload`).
pub mod workload;

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, Client, runtime::watcher};

use crate::{
    error::{Error, Scope},
    progress::Progress,
    tracer::launch,
};

/// What the tracer pod needs to know about the traced pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    /// With -c: that container's runtime ID (`containerd://...`).
    pub container_id: Option<String>,
}

pub async fn resolve(
    client: &Client,
    namespace: &str,
    name: &str,
    container: Option<&str>,
) -> Result<Target, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod = match pods.get(name).await {
        Ok(pod) => pod,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(Error::PodNotFound {
                pod: name.to_owned(),
                namespace: namespace.to_owned(),
            });
        }
        Err(e) => {
            return Err(Error::from_kube(
                e,
                "get",
                "pods",
                Scope(Some(namespace.into())),
            ));
        }
    };
    let spec = pod.spec.unwrap_or_default();
    let node = spec
        .node_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::NotScheduled(format!("{namespace}/{name}")))?;
    node_ready(client, &node).await?;
    let container_id = match container {
        None => None,
        Some(c) => {
            if !spec.containers.iter().any(|k| k.name == c) {
                return Err(Error::NoContainer {
                    pod: format!("{namespace}/{name}"),
                    container: c.to_owned(),
                    available: spec
                        .containers
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let id = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|s| s.name == c))
                .filter(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
                .and_then(|s| s.container_id.clone())
                .ok_or_else(|| Error::ContainerNotRunning {
                    pod: format!("{namespace}/{name}"),
                    container: c.to_owned(),
                })?;
            Some(id)
        }
    };
    Ok(Target {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        uid: pod.metadata.uid.unwrap_or_default(),
        node,
        container_id,
    })
}

/// `trace --wait`: waits until pod NAME exists and is scheduled (it may not be created yet),
/// then returns it as the target, the whole pod (its containers have no IDs before they run).
/// Ends after `limit` with the scheduler's reason when the pod is still unscheduled.
pub async fn wait_scheduled(
    client: &Client,
    namespace: &str,
    name: &str,
    limit: Duration,
    progress: &mut Progress,
) -> Result<Target, Error> {
    let mut events = launch::watch_pod(client, namespace, name).boxed();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut seen: Option<Pod> = None;
    loop {
        let event = tokio::select! {
            e = events.try_next() => e.map_err(|e| launch::watch_error(e, Scope(Some(namespace.to_owned()))))?,
            () = &mut deadline => {
                return Err(Error::WaitTimeout {
                    pod: format!("pod {namespace}/{name} was not"),
                    secs: limit.as_secs(),
                    why: match &seen {
                        None => "it was never created".to_owned(),
                        Some(pod) => unscheduled_reason(pod),
                    },
                });
            }
        };
        let pod = match event {
            Some(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
            Some(watcher::Event::Delete(_)) => {
                seen = None;
                progress.set(format!(
                    "pod {namespace}/{name} was deleted; waiting for it again"
                ));
                continue;
            }
            Some(watcher::Event::Init | watcher::Event::InitDone) => continue,
            None => {
                return Err(Error::Api {
                    verb: "watch",
                    resource: "pods",
                    scope: Scope(Some(namespace.to_owned())),
                    message: format!("the watch of pod {name} ended"),
                });
            }
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let Some(node) = node else {
            progress.set(format!(
                "waiting for pod {namespace}/{name} to be scheduled{}",
                unscheduled_reason(&pod)
                    .split_once(':')
                    .map_or(String::new(), |(_, why)| format!(" ({})", why.trim()))
            ));
            seen = Some(pod);
            continue;
        };
        node_ready(client, &node).await?;
        return Ok(Target {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: pod.metadata.uid.unwrap_or_default(),
            node,
            container_id: None,
        });
    }
}

/// Why the traced pod is gone, when it goes: deleted, or finished (a Job's pod). A watch that
/// fails retries with backoff; the trace goes on meanwhile (its --duration still ends it).
pub fn gone(
    client: &Client,
    namespace: &str,
    name: &str,
) -> impl futures::Stream<Item = String> + Send + 'static {
    use kube::runtime::WatchStreamExt as _;
    let what = format!("pod {namespace}/{name}");
    launch::watch_pod(client, namespace, name)
        .default_backoff()
        .filter_map(move |event| {
            let why = match event {
                Ok(watcher::Event::Delete(_)) => Some(format!("{what} was deleted")),
                Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                    finished(&p).map(|how| format!("{what} {how}"))
                }
                _ => None,
            };
            futures::future::ready(why)
        })
}

/// A pod whose containers will not run again: its phase is final.
pub fn finished(pod: &Pod) -> Option<&'static str> {
    match pod.status.as_ref()?.phase.as_deref()? {
        "Succeeded" => Some("completed"),
        "Failed" => Some("failed"),
        _ => None,
    }
}

/// Why an unscheduled pod waits, from its PodScheduled condition (the scheduler's message).
pub fn unscheduled_reason(pod: &Pod) -> String {
    let condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    match condition.and_then(|c| c.message.as_deref()) {
        Some(message) => format!("the scheduler says: {message}"),
        None => "it was not scheduled (no message from the scheduler)".to_owned(),
    }
}

/// Fails with `NodeNotReady` unless the node's Ready condition is True.
pub async fn node_ready(client: &Client, node: &str) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let n = nodes
        .get(node)
        .await
        .map_err(|e| Error::from_kube(e, "get", "nodes", Scope(None)))?;
    match not_ready_reason(&n) {
        None => Ok(()),
        Some(reason) => Err(Error::NodeNotReady {
            node: node.to_owned(),
            reason,
        }),
    }
}

/// `None` when Ready; else a short reason for messages (" (KubeletNotReady: ...)" or "").
pub fn not_ready_reason(node: &Node) -> Option<String> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(match (&c.reason, &c.message) {
            (Some(r), Some(m)) => format!(" ({r}: {m})"),
            (Some(r), None) => format!(" ({r})"),
            _ => String::new(),
        }),
        None => Some(" (no Ready condition reported)".to_owned()),
    }
}

//! Creating a tracer pod and waiting until its tracer runs, turning every way that can fail
//! (admission, image pull, a crashing tracer, a deadline) into one clear error.
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ContainerState, Node, Pod};
use kube::{
    Api, Client,
    api::{DeleteParams, LogParams, Patch, PatchParams, PostParams},
    runtime::watcher,
};

use crate::{
    error::{Error, Scope},
    progress::Progress,
    tracer::{
        log::{self as tracer_log, Line},
        pod::TracerPod,
        privileges::Privileges,
    },
};

/// A tracer pod the API server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub image: String,
    /// How privileged it runs (`Privileges::describe`), for the progress line.
    pub privileges: String,
}

impl Launched {
    pub fn api(&self, client: &Client) -> Api<Pod> {
        Api::namespaced(client.clone(), &self.namespace)
    }
}

/// Where a tracer pod stands, read from its status.
#[derive(Debug)]
pub enum State {
    /// Not started yet; the text says what it waits for.
    Pending(String),
    Running,
    /// The tracer exited (its logs tell why).
    Exited(i32),
    Failed(Error),
}

const IMAGE_PULL_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
];
const START_FAILURE_REASONS: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// The state of the tracer pod's one container, once the kubelet reports it.
fn container_state(pod: &Pod) -> Option<&ContainerState> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()
}

pub fn state(pod: &Pod, launched: &Launched) -> State {
    let container = container_state(pod).cloned();
    let status = pod.status.clone().unwrap_or_default();
    if let Some(c) = container {
        if c.running.is_some() {
            return State::Running;
        }
        if let Some(t) = c.terminated {
            return State::Exited(t.exit_code);
        }
        if let Some(w) = c.waiting {
            let reason = w.reason.unwrap_or_default();
            let message = w.message.unwrap_or_default();
            if IMAGE_PULL_REASONS.contains(&reason.as_str()) {
                return State::Failed(Error::ImagePull {
                    image: launched.image.clone(),
                    node: launched.node.clone(),
                    reason,
                    message,
                });
            }
            if START_FAILURE_REASONS.contains(&reason.as_str()) {
                return State::Failed(Error::TracerFailed {
                    pod: launched.name.clone(),
                    detail: format!("{reason}: {message}"),
                });
            }
            return State::Pending(match reason.as_str() {
                "ContainerCreating" | "PodInitializing" | "" => {
                    format!("pulling {} and starting the tracer", launched.image)
                }
                other => format!("container {other}"),
            });
        }
    }
    match status.phase.as_deref() {
        Some("Failed") => State::Failed(Error::TracerFailed {
            pod: launched.name.clone(),
            detail: format!(
                "{}: {}",
                status.reason.unwrap_or_else(|| "Failed".into()),
                status.message.unwrap_or_default()
            ),
        }),
        Some("Succeeded") => State::Exited(0),
        _ => State::Pending(format!("waiting for node {} to start it", launched.node)),
    }
}

/// Submits the tracer pod, once its image can run on the node's architecture, as privileged
/// as the node's kernel and runtime need (`Privileges`).
pub async fn create(client: &Client, spec: &TracerPod) -> Result<Launched, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = match nodes.get(&spec.node).await {
        Ok(node) => Some(node),
        // Only an image for one architecture needs the node; without it the pod gets what
        // every supported kernel needs.
        Err(e) if crate::tracer::arch::image_arch(&spec.image).is_some() => {
            return Err(Error::from_kube(e, "get", "nodes", Scope(None)));
        }
        Err(e) => {
            tracing::debug!(node = %spec.node, error = %e, "node not read");
            None
        }
    };
    crate::tracer::arch::check(&spec.image, &spec.node, node.as_ref())?;
    let privileges = Privileges::choose(
        node.as_ref()
            .and_then(|n| n.status.as_ref()?.node_info.as_ref()),
        spec.privileged,
    );
    let api: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
    let scope = || Scope(Some(spec.namespace.clone()));
    let pod = match api
        .create(&PostParams::default(), &spec.build(&privileges))
        .await
    {
        Ok(pod) => pod,
        Err(kube::Error::Api(s)) if is_admission(&s.message) => {
            return Err(Error::Admission {
                namespace: spec.namespace.clone(),
                message: s.message.clone(),
            });
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(Error::Api {
                verb: "create",
                resource: "pods",
                scope: scope(),
                message: format!(
                    "{} (does namespace {} exist? pick one with --tracer-namespace)",
                    s.message, spec.namespace
                ),
            });
        }
        Err(e) => return Err(Error::from_kube(e, "create", "pods", scope())),
    };
    Ok(Launched {
        namespace: spec.namespace.clone(),
        name: pod.metadata.name.unwrap_or_default(),
        node: spec.node.clone(),
        image: spec.image.clone(),
        privileges: privileges.describe(),
    })
}

fn is_admission(message: &str) -> bool {
    message.contains("PodSecurity")
        || message.contains("admission webhook")
        || message.contains("denied the request")
}

/// Follows the pod until its tracer runs (or has already exited). Progress goes to `progress`.
/// Pod NAME's events: the watcher lists, then watches from that version, and watches again
/// when the server ends a watch.
pub fn watch_pod(
    client: &Client,
    namespace: &str,
    name: &str,
) -> impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Send + 'static {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    watcher::watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
}

/// A pod watch's failure, told as kubectl would.
pub fn watch_error(e: watcher::Error, scope: Scope) -> Error {
    let scope = || scope.clone();
    match e {
        watcher::Error::InitialListFailed(e) => Error::from_kube(e, "list", "pods", scope()),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            Error::from_kube(e, "watch", "pods", scope())
        }
        watcher::Error::WatchError(status) => {
            Error::from_kube(kube::Error::Api(status), "watch", "pods", scope())
        }
        watcher::Error::NoResourceVersion => Error::Api {
            verb: "watch",
            resource: "pods",
            scope: scope(),
            message: "the API server's pod list has no resourceVersion".into(),
        },
    }
}

pub async fn wait_started(
    client: &Client,
    launched: &Launched,
    progress: &mut Progress,
) -> Result<State, Error> {
    let scope = || Scope(Some(launched.namespace.clone()));
    // An error ends the wait at once, told as kubectl would.
    let mut events = watch_pod(client, &launched.namespace, &launched.name).boxed();
    // Warnings are shown once each; one that cannot clear ends the wait (the caller deletes
    // the pod). A failed event watch only stops the warnings.
    let mut warnings =
        crate::tracer::events::warnings(client, &launched.namespace, &launched.name).boxed();
    let mut warnings_open = true;
    progress.println(&format!(
        "tracer pod {}/{}: {}",
        launched.namespace, launched.name, launched.privileges
    ));
    loop {
        let event = tokio::select! {
            event = events.try_next() => event,
            warning = warnings.next(), if warnings_open => {
                match warning {
                    Some(w) if w.is_permanent() => {
                        return Err(Error::PodFault {
                            pod: format!("{}/{}", launched.namespace, launched.name),
                            node: launched.node.clone(),
                            reason: w.reason,
                            message: w.message.trim().to_owned(),
                        });
                    }
                    Some(w) => progress.println(&format!(
                        "tracer pod {}/{}: {}",
                        launched.namespace,
                        launched.name,
                        w.line()
                    )),
                    None => warnings_open = false,
                }
                continue;
            }
        };
        let Some(event) =
            event.map_err(|e| watch_error(e, Scope(Some(launched.namespace.clone()))))?
        else {
            break;
        };
        let pod = match event {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
            watcher::Event::Delete(_) => {
                return Err(Error::TracerFailed {
                    pod: launched.name.clone(),
                    detail: "it was deleted before it started (by `kubectl dentry cleanup`, \
                             or someone else)"
                        .into(),
                });
            }
            watcher::Event::Init | watcher::Event::InitDone => continue,
        };
        match state(&pod, launched) {
            State::Pending(what) => progress.set(format!(
                "tracer pod {}/{}: {what}",
                launched.namespace, launched.name
            )),
            State::Failed(e) => return Err(e),
            done => return Ok(done),
        }
    }
    Err(Error::Api {
        verb: "watch",
        resource: "pods",
        scope: scope(),
        message: format!("the watch of pod {} ended", launched.name),
    })
}

/// The last `n` lines the tracer printed, for failure messages.
pub async fn last_lines(client: &Client, launched: &Launched, n: i64) -> Vec<String> {
    let params = LogParams {
        tail_lines: Some(n),
        ..Default::default()
    };
    launched
        .api(client)
        .logs(&launched.name, &params)
        .await
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The tracer's exit status once it has exited, waiting briefly for the kubelet to report it
/// (a log stream can end a moment before the status says why).
pub async fn exit_code(client: &Client, launched: &Launched) -> Option<i32> {
    for _ in 0..20 {
        match exited(client, launched).await {
            Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
            Ok(code) => return code,
            Err(_) => return None,
        }
    }
    None
}

/// The tracer's exit status if it has exited by now.
pub async fn exit_code_now(client: &Client, launched: &Launched) -> Option<i32> {
    exited(client, launched).await.ok().flatten()
}

/// One read of the pod: `Some(code)` once the tracer has exited.
async fn exited(client: &Client, launched: &Launched) -> Result<Option<i32>, kube::Error> {
    let pod = launched.api(client).get(&launched.name).await?;
    Ok(match state(&pod, launched) {
        State::Exited(code) => Some(code),
        _ => None,
    })
}

/// Deletes the pod; gone already is fine.
pub async fn delete(client: &Client, launched: &Launched) -> Result<(), Error> {
    match launched
        .api(client)
        .delete(&launched.name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::from_kube(
            e,
            "delete",
            "pods",
            Scope(Some(launched.namespace.clone())),
        )),
    }
}

/// Rewrites the tracer pod's target-uid annotation; the kubelet projects it into the tracer's
/// `--target-pod-uids-file`, which the tracer re-reads every poll.
pub async fn set_targets(
    client: &Client,
    launched: &Launched,
    uids: &[String],
) -> Result<(), Error> {
    let body = serde_json::json!({
        "metadata": {"annotations": {crate::tracer::pod::TARGET_UID_ANNOTATION: uids.join(",")}}
    });
    launched
        .api(client)
        .patch(
            &launched.name,
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
        .map_err(|e| {
            Error::from_kube(e, "patch", "pods", Scope(Some(launched.namespace.clone())))
        })?;
    Ok(())
}

/// Streams the tracer's log (stdout and stderr as the kubelet keeps them) line by line.
pub async fn follow(
    client: &Client,
    launched: &Launched,
) -> Result<impl futures::Stream<Item = std::io::Result<String>> + use<>, Error> {
    use futures::AsyncBufReadExt as _;
    let params = LogParams {
        follow: true,
        ..Default::default()
    };
    let reader = launched
        .api(client)
        .log_stream(&launched.name, &params)
        .await
        .map_err(|e| {
            Error::from_kube(
                e,
                "get",
                "pods/log",
                Scope(Some(launched.namespace.clone())),
            )
        })?;
    Ok(reader.lines())
}

/// Why the runtime ended the tracer's container, when it was not the tracer's own exit
/// (`StartError: exec: "/tracer": no such file or directory`, `OOMKilled`, ...).
fn runtime_reason(pod: &Pod) -> Option<String> {
    let terminated = container_state(pod)?.terminated.clone()?;
    let reason = terminated.reason.unwrap_or_default();
    if reason.is_empty() || reason == "Error" || reason == "Completed" {
        return None;
    }
    Some(match terminated.message.filter(|m| !m.trim().is_empty()) {
        Some(message) => format!("{reason}: {}", message.trim()),
        None => reason,
    })
}

/// The error for a tracer that exited with a failure: why the runtime stopped it, if it did,
/// and its last telling log lines.
pub async fn failure(client: &Client, launched: &Launched) -> Error {
    let runtime = launched
        .api(client)
        .get(&launched.name)
        .await
        .ok()
        .as_ref()
        .and_then(runtime_reason);
    let lines = last_lines(client, launched, 5).await;
    let said: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| tracer_log::classify(l) == Line::Message && !l.trim().is_empty())
        .collect();
    // What explains the failure: the tracer's errors and warnings, not its routine lines.
    let telling: Vec<&str> = said
        .iter()
        .copied()
        .filter(|l| !tracer_log::is_routine(l))
        .collect();
    let said = if telling.is_empty() { said } else { telling };
    let said = &said[said.len().saturating_sub(2)..];
    let detail = runtime
        .into_iter()
        .chain(said.iter().map(|l| (*l).to_owned()))
        .collect::<Vec<_>>()
        .join(" | ");
    Error::TracerFailed {
        pod: format!("{}/{}", launched.namespace, launched.name),
        detail: if detail.is_empty() {
            "it exited with an error and printed nothing".into()
        } else {
            detail
        },
    }
}

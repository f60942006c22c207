//! What the kubelet would report for the tracer pods the plugin creates: their status as they
//! start (or fail to), and their log, streamed and ended as the real tracer's would be.
use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodStatus,
};

use super::{Cluster, recorded_log, routes::status};

/// What a tracer pod the plugin creates does.
#[derive(Clone, Debug)]
pub enum Tracer {
    /// Starts and prints `log`; with `hold`, the lines from the summary on come only once the
    /// pod is deleted (as SIGTERM makes the real tracer print its summary).
    Runs { log: String, hold: bool },
    /// The node cannot pull the image.
    ImagePull,
    /// Starts, prints `log`, exits 1.
    Fails { log: String },
    /// Never starts.
    Pending,
    /// The runtime cannot start it (an image without `/tracer`, the wrong architecture):
    /// terminated with this reason and message, exit code 128, nothing printed.
    StartError { reason: String, message: String },
    /// Stays `ContainerCreating` while its node posts these Warning events (reason, message),
    /// in order; then, with `then`, goes on as that says (a fault that cleared).
    Warns {
        warnings: Vec<(String, String)>,
        then: Option<Box<Tracer>>,
    },
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer::Runs {
            log: recorded_log(),
            hold: false,
        }
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: message.map(Into::into),
        }),
        ..Default::default()
    }
}

fn terminated(exit_code: i32, reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            reason: Some(reason.into()),
            message: message.map(Into::into),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod's status with its one container `tracer` in `state`.
fn tracer_status(state: ContainerState) -> PodStatus {
    let phase = match &state.terminated {
        _ if state.running.is_some() => "Running",
        Some(t) if t.exit_code == 0 => "Succeeded",
        Some(_) => "Failed",
        None => "Pending",
    };
    PodStatus {
        phase: Some(phase.into()),
        container_statuses: Some(vec![ContainerStatus {
            name: "tracer".into(),
            ready: phase == "Running",
            image: "tracer".into(),
            state: Some(state),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// A created tracer pod's life as its node reports it: created, then as `tracer` says.
pub fn start(s: Arc<Cluster>, ns: String, name: String, tracer: Tracer) {
    tokio::spawn(async move {
        let pause = || tokio::time::sleep(std::time::Duration::from_millis(30));
        pause().await;
        s.set_status(
            &ns,
            &name,
            tracer_status(waiting("ContainerCreating", None)),
        );
        pause().await;
        let mut tracer = tracer;
        while let Tracer::Warns { warnings, then } = tracer {
            for (reason, message) in warnings {
                s.add_event(&ns, &name, "Warning", &reason, &message);
                pause().await;
            }
            match then {
                Some(next) => tracer = *next,
                None => return,
            }
        }
        let state = match tracer {
            Tracer::Runs { .. } => ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            },
            Tracer::ImagePull => waiting(
                "ErrImagePull",
                Some(
                    "failed to pull and unpack image \"ghcr.io/kubectl-dentry/tracer:0.1.0\": \
                     not found",
                ),
            ),
            Tracer::Fails { .. } => terminated(1, "Error", None),
            Tracer::StartError { reason, message } => terminated(128, &reason, Some(&message)),
            Tracer::Pending | Tracer::Warns { .. } => return,
        };
        s.set_status(&ns, &name, tracer_status(state));
    });
}

/// `GET .../pods/NAME/log`: the tracer's log, all at once, its tail, or followed until the
/// tracer exits (then the pod is marked terminated, as the kubelet would).
pub async fn pod_log(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let follow = q.get("follow").map(String::as_str) == Some("true");
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods/{name}/log{}",
        if follow { "?follow" } else { "" }
    ));
    let mut tracer = s.tracer_of(&ns, &name);
    // A fault that cleared: the log is the tracer's that then started.
    while let Tracer::Warns {
        then: Some(next), ..
    } = tracer
    {
        tracer = *next;
    }
    let fails = matches!(tracer, Tracer::Fails { .. });
    let (log, hold) = match tracer {
        Tracer::Runs { log, hold } => (log, hold),
        Tracer::Fails { log } => (log, false),
        Tracer::StartError { .. } => (String::new(), false),
        Tracer::ImagePull | Tracer::Pending | Tracer::Warns { .. } => {
            return status(
                400,
                "BadRequest",
                &format!(
                    "container \"tracer\" in pod \"{name}\" is waiting to start: ContainerCreating"
                ),
            );
        }
    };
    if !follow {
        let tail: usize = q
            .get("tailLines")
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX);
        let lines: Vec<&str> = log.lines().collect();
        let mut text = lines[lines.len().saturating_sub(tail)..].join("\n");
        text.push('\n');
        return text.into_response();
    }
    let split = if hold {
        log.find("\nsummary ").map_or(log.len(), |i| i + 1)
    } else {
        log.len()
    };
    let (now, later) = (log[..split].to_owned(), log[split..].to_owned());
    let rx = s.subscribe();
    let stream = futures::stream::unfold(
        (0u8, s, rx, ns, name),
        move |(step, s, mut rx, ns, name)| {
            let (now, later) = (now.clone(), later.clone());
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(now), (1, s, rx, ns, name))),
                    1 if hold => {
                        // The real tracer prints its summary on SIGTERM, i.e. when the pod goes.
                        while s.find(&ns, &name).is_some() {
                            if rx.recv().await.is_err() {
                                break;
                            }
                        }
                        Some((Ok(later), (2, s, rx, ns, name)))
                    }
                    1 => {
                        // The tracer exits when its log ends.
                        let code = if fails { 1 } else { 0 };
                        s.set_status(
                            &ns,
                            &name,
                            tracer_status(terminated(code, "Completed", None)),
                        );
                        None
                    }
                    _ => None,
                }
            }
        },
    );
    axum::body::Body::from_stream(stream).into_response()
}

//! A starting tracer pod's Warning events (what `kubectl describe pod` shows under Events):
//! each shown once on the progress line, and the ones that cannot clear by themselves ending
//! the wait at once instead of at `--timeout`.
use std::collections::HashSet;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Event;
use kube::{Api, Client, runtime::watcher};

/// A Warning about the pod, as its event says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub reason: String,
    pub message: String,
}

impl Warning {
    /// Whether this fault stays until someone changes the node, the image or the pod: waiting
    /// longer cannot help. Faults that can clear (a pull in progress or retried, a scheduler
    /// waiting for room, a sandbox the CNI is not ready for yet) are not.
    pub fn is_permanent(&self) -> bool {
        let m = self.message.as_str();
        match self.reason.as_str() {
            // A hostPath that is missing or of the wrong type; a volume kind the node lacks.
            "FailedMount" => {
                m.contains("hostPath type check failed")
                    || m.contains("does not exist")
                    || m.contains("is not a directory")
                    || m.contains("not found in the list of registered CSI drivers")
            }
            // The kubelet refuses the spec itself (a config error).
            "Failed" => {
                m.contains("CreateContainerConfigError")
                    || m.contains("InvalidImageName")
                    || m.contains("ErrImageNeverPull")
                    || m.contains("is not allowed")
            }
            "InvalidImageName" | "ErrImageNeverPull" | "FailedValidation" => true,
            _ => false,
        }
    }

    /// The event as the progress line shows it.
    pub fn line(&self) -> String {
        format!("{}: {}", self.reason, self.message.trim())
    }
}

/// The Warning events about pod `name`, each once (the watch may repeat what it listed). An
/// event watch that fails ends the stream: the pod's status is still watched.
pub fn warnings(
    client: &Client,
    namespace: &str,
    name: &str,
) -> impl futures::Stream<Item = Warning> + Send + 'static {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!(
        "involvedObject.name={name},involvedObject.kind=Pod,type=Warning"
    ));
    let mut seen = HashSet::new();
    watcher::watcher(api, config)
        .take_while(|e| futures::future::ready(e.is_ok()))
        .filter_map(move |event| {
            let warning = match event {
                Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)) => {
                    let key = (
                        e.reason.clone().unwrap_or_default(),
                        e.message.clone().unwrap_or_default(),
                    );
                    (e.type_.as_deref() == Some("Warning") && seen.insert(key.clone())).then_some(
                        Warning {
                            reason: key.0,
                            message: key.1,
                        },
                    )
                }
                _ => None,
            };
            futures::future::ready(warning)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(reason: &str, message: &str) -> Warning {
        Warning {
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn faults_that_cannot_clear_are_told_from_those_that_can() {
        // Recorded from real kubelets and schedulers.
        for permanent in [
            w(
                "FailedMount",
                "MountVolume.SetUp failed for volume \"pod-logs\" : hostPath type check failed: /var/log/pods is not a directory",
            ),
            w(
                "Failed",
                "Error: CreateContainerConfigError: secret \"x\" not found",
            ),
            w(
                "InvalidImageName",
                "Failed to apply default image tag \"Tracer:x\": couldn't parse image reference",
            ),
        ] {
            assert!(permanent.is_permanent(), "{permanent:?}");
        }
        for transient in [
            w(
                "FailedScheduling",
                "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available",
            ),
            w(
                "FailedCreatePodSandBox",
                "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox: plugin type=\"calico\" failed (add): error getting ClusterInformation: connection is unauthorized",
            ),
            w(
                "Failed",
                "Failed to pull image \"ghcr.io/kubectl-dentry/tracer:0.1.0\": rpc error: code = Unknown desc = failed to pull and unpack image: i/o timeout",
            ),
            w(
                "BackOff",
                "Back-off pulling image \"ghcr.io/kubectl-dentry/tracer:0.1.0\"",
            ),
        ] {
            assert!(!transient.is_permanent(), "{transient:?}");
        }
    }
}

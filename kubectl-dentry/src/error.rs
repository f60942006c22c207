//! Every failure the plugin reports: one line naming cause and fix, and a documented exit code
//! (README, "Exit codes").
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot load the kubeconfig: {0} (pass --kubeconfig FILE, set KUBECONFIG, or check --context)"
    )]
    Kubeconfig(String),
    #[error(
        "the API server is unreachable: {0} (is the cluster up? is the kubeconfig's server address right?)"
    )]
    Unreachable(String),
    #[error(
        "the API server's certificate is not trusted: {0} (check the kubeconfig's certificate-authority and tls-server-name for this cluster)"
    )]
    Untrusted(String),
    #[error(
        "forbidden: cannot {verb} {resource}{scope}: {message} (grant the RBAC in deploy/02-rbac-plugin-user.yaml)"
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        scope: Scope,
        message: String,
    },
    #[error("{0}")]
    Local(String),
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot read the tracer at {url}: {message} (is it listening there? for a pod, run `kubectl port-forward pod/TRACER 9090` first)"
    )]
    Endpoint { url: String, message: String },
    #[error(
        "cannot query Prometheus at {at}: {message} (check --prometheus URL, or reach an in-cluster one with --prometheus-service NAMESPACE/NAME:PORT)"
    )]
    Prometheus { at: String, message: String },
    #[error("Prometheus at {at} has no dentry series{filter}: {why}")]
    NoSeries {
        at: String,
        filter: String,
        why: String,
    },
    #[error(
        "no tracer pods found{0} (start one with `kubectl dentry trace --keep`, or deploy the DaemonSet from deploy/)"
    )]
    NoTracers(Scope),
    #[error(
        "pod {pod} not found in namespace {namespace} (check the name, or pass -n NAMESPACE; `kubectl get pods -A | grep {pod}` finds it)"
    )]
    PodNotFound { pod: String, namespace: String },
    #[error(
        "{what} not found in namespace {namespace} (check the name, or pass -n NAMESPACE; `kubectl get {what}` lists it)"
    )]
    WorkloadNotFound { what: String, namespace: String },
    #[error(
        "no pods match {what}{scope} (check the selector or the namespace; add --wait to wait for them)"
    )]
    NoPodsMatch { what: String, scope: Scope },
    #[error("the tracer could not run on any of the {nodes} node(s) (each node's cause is above)")]
    EveryNodeFailed { nodes: usize, code: u8 },
    #[error(
        "pod {0} is not scheduled to a node yet (add --wait to wait for it, or retry once `kubectl get pod` shows a NODE)"
    )]
    NotScheduled(String),
    #[error("{pod} scheduled within {secs}s (--wait-timeout): {why}")]
    /// `pod` is the sentence's subject and verb: "pod prod/db-0 was not", "no pod of job/x was".
    WaitTimeout { pod: String, secs: u64, why: String },
    #[error(
        "node {node} is NotReady{reason} (a tracer cannot start there; check `kubectl describe node {node}`)"
    )]
    NodeNotReady { node: String, reason: String },
    #[error("pod {pod} has no container {container} (its containers: {available}; pass -c NAME)")]
    NoContainer {
        pod: String,
        container: String,
        available: String,
    },
    #[error(
        "container {container} of pod {pod} is not running, so it has no cgroup to trace (wait until it runs, or trace the whole pod without -c)"
    )]
    ContainerNotRunning { pod: String, container: String },
    #[error(
        "admission rejected the tracer pod in namespace {namespace}: {message} (its hostPID and hostPath volumes need the PodSecurity privileged level, with or without --privileged: use a namespace labelled pod-security.kubernetes.io/enforce=privileged: --tracer-namespace dentry-monitor after `kubectl apply -f deploy/00-namespace.yaml`)"
    )]
    Admission { namespace: String, message: String },
    #[error(
        "the tracer image {image} cannot be pulled on node {node}: {reason}: {message} (check the image name, or pass --image / set KUBECTL_DENTRY_IMAGE to one the node can pull)"
    )]
    ImagePull {
        image: String,
        node: String,
        reason: String,
        message: String,
    },
    #[error(
        "the tracer image {image} is built for {image_arch}, but node {node} is {node_arch} (use the multi-arch release tag {default}, or an image for {node_arch} with --image)",
        default = crate::DEFAULT_IMAGE
    )]
    ImageArch {
        image: String,
        image_arch: String,
        node: String,
        node_arch: String,
    },
    #[error("tracer pod {pod} failed: {detail}")]
    TracerFailed { pod: String, detail: String },
    #[error(
        "tracer pod {pod} cannot start on node {node}: {reason}: {message} (this does not clear by itself; the pod was deleted)"
    )]
    PodFault {
        pod: String,
        node: String,
        reason: String,
        message: String,
    },
    #[error(
        "the tracer on node {node} did not answer /metrics within {secs}s (raise --node-timeout, or check the node and its tracer pod)"
    )]
    NodeSilent { node: String, secs: u64 },
    #[error(
        "timed out after {secs}s waiting for tracer pod {pod} ({state}); it was deleted (raise --timeout if the image pull is slow)"
    )]
    Timeout {
        pod: String,
        secs: u64,
        state: String,
    },
    #[error(
        "the log of tracer pod {pod} broke off: {message} (was the pod deleted, or its node lost? `kubectl dentry fetch traces` gets its files if it was kept)"
    )]
    LogStream { pod: String, message: String },
    #[error("{failed} of {total} {what}")]
    Partial {
        failed: usize,
        total: usize,
        what: String,
    },
    #[error("the API server refused to {verb} {resource}{scope}: {message}")]
    Api {
        verb: &'static str,
        resource: &'static str,
        scope: Scope,
        message: String,
    },
}

/// "in namespace X" or "in any namespace", for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(pub Option<String>);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " across all namespaces"),
        }
    }
}

impl Error {
    /// A connection that failed: the server's certificate (rustls says "invalid peer
    /// certificate") is a trust problem, not a reachability one.
    fn unreachable(message: String) -> Error {
        if message.contains("invalid peer certificate") {
            Error::Untrusted(message)
        } else {
            Error::Unreachable(message)
        }
    }

    /// The process exit status (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Kubeconfig(_) => 3,
            Error::Unreachable(_)
            | Error::Untrusted(_)
            | Error::Endpoint { .. }
            | Error::Prometheus { .. } => 4,
            Error::Forbidden { .. } => 5,
            Error::Api { .. } | Error::Local(_) | Error::LogStream { .. } => 1,
            Error::Usage(_) => 2,
            Error::NoTracers(_) | Error::NoSeries { .. } => 6,
            Error::EveryNodeFailed { code, .. } => *code,
            Error::PodNotFound { .. }
            | Error::WorkloadNotFound { .. }
            | Error::NoPodsMatch { .. }
            | Error::NotScheduled(_)
            | Error::WaitTimeout { .. }
            | Error::NodeNotReady { .. }
            | Error::NoContainer { .. }
            | Error::ContainerNotRunning { .. } => 7,
            Error::Admission { .. }
            | Error::ImagePull { .. }
            | Error::ImageArch { .. }
            | Error::TracerFailed { .. }
            | Error::PodFault { .. } => 8,
            Error::Timeout { .. } | Error::NodeSilent { .. } => 9,
            Error::Partial { .. } => 10,
        }
    }

    /// Classifies a failed API call made to `verb` `resource` in `scope`.
    pub fn from_kube(
        e: kube::Error,
        verb: &'static str,
        resource: &'static str,
        scope: Scope,
    ) -> Error {
        match e {
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                verb,
                resource,
                scope,
                message: status.message.clone(),
            },
            kube::Error::Api(status) => Error::Api {
                verb,
                resource,
                scope,
                message: format!("{} ({})", status.message, status.code),
            },
            kube::Error::HyperError(e) => Error::unreachable(e.to_string()),
            kube::Error::Service(e) => Error::unreachable(source_chain(e.as_ref())),
            other => Error::Api {
                verb,
                resource,
                scope,
                message: other.to_string(),
            },
        }
    }
}

pub fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

//! Names from the container runtime's CRI socket (containerd, CRI-O, cri-dockerd), when the
//! node's socket is mounted: the runtime knows every pod sandbox and container with its
//! Kubernetes names, also before the kubelet has written any log.
//!
//! Only two read-only calls of CRI v1 are used, `ListPodSandbox` and `ListContainers`, so their
//! messages are declared here with the field numbers of the CRI `api.proto` (`runtime.v1`),
//! fields we do not read left out (protobuf skips them). The `k8s-cri` crate would generate all
//! of both API versions at build time and needs `protoc` on every builder, the image build
//! included; for two calls that is not worth it.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use tonic::transport::{Endpoint, Uri};

use crate::owners::kubelet::{Names, PodName};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the CRI socket {path}: {message}")]
    Connect { path: PathBuf, message: String },
    #[error("CRI {call} on {path}: {status}")]
    Call {
        call: &'static str,
        path: PathBuf,
        status: Box<tonic::Status>,
    },
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxResponse {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<PodSandbox>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandbox {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<PodSandboxMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub uid: String,
    #[prost(string, tag = "3")]
    pub namespace: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<ContainerMetadata>,
    #[prost(map = "string, string", tag = "8")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
}

pub const LIST_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/ListPodSandbox";
pub const LIST_CONTAINERS: &str = "/runtime.v1.RuntimeService/ListContainers";

/// The first of `candidates` that exists (a mounted socket), if any.
pub fn find_socket(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find(|p| p.exists()).cloned()
}

/// Asks the runtime behind `socket` for every pod sandbox and container.
pub async fn names(socket: &Path, timeout: Duration) -> Result<Names, Error> {
    // The URI is required but unused: the connector always dials the socket.
    let endpoint = Endpoint::from_static("http://cri.invalid")
        .connect_timeout(timeout)
        .timeout(timeout);
    let dial = socket.to_owned();
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let dial = dial.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(dial).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| Error::Connect {
            path: socket.to_owned(),
            message: chain(e),
        })?;
    let mut grpc = tonic::client::Grpc::new(channel);
    let sandboxes: ListPodSandboxResponse = unary(
        &mut grpc,
        socket,
        LIST_POD_SANDBOX,
        ListPodSandboxRequest {},
    )
    .await?;
    let containers: ListContainersResponse =
        unary(&mut grpc, socket, LIST_CONTAINERS, ListContainersRequest {}).await?;
    Ok(to_names(&sandboxes, &containers))
}

/// Pod names by UID (from sandboxes, and from container labels for any the list missed) and
/// container names by ID.
pub fn to_names(sandboxes: &ListPodSandboxResponse, containers: &ListContainersResponse) -> Names {
    let mut names = Names::default();
    for s in &sandboxes.items {
        if let Some(m) = &s.metadata
            && !m.uid.is_empty()
        {
            names.pods.insert(
                m.uid.clone(),
                PodName {
                    namespace: m.namespace.clone(),
                    pod: m.name.clone(),
                },
            );
        }
    }
    for c in &containers.containers {
        let label = |k: &str| c.labels.get(k).filter(|v| !v.is_empty()).cloned();
        let name = c
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| label("io.kubernetes.container.name"));
        if let Some(name) = name {
            names.containers.insert(c.id.clone(), name);
        }
        if let (Some(uid), Some(pod), Some(namespace)) = (
            label("io.kubernetes.pod.uid"),
            label("io.kubernetes.pod.name"),
            label("io.kubernetes.pod.namespace"),
        ) {
            names.pods.entry(uid).or_insert(PodName { namespace, pod });
        }
    }
    names
}

/// One CRI call: `path` is the method's full gRPC path (`/runtime.v1.RuntimeService/...`).
async fn unary<Req, Resp>(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    socket: &Path,
    path: &'static str,
    request: Req,
) -> Result<Resp, Error>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    grpc.ready().await.map_err(|e| Error::Connect {
        path: socket.to_owned(),
        message: chain(e),
    })?;
    let response = grpc
        .unary(
            tonic::Request::new(request),
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .map_err(|status| Error::Call {
            call: path.rsplit('/').next().unwrap_or(path),
            path: socket.to_owned(),
            status: Box::new(status),
        })?;
    Ok(response.into_inner())
}

/// An error with its causes, on one line (`a: b: c`).
fn chain(e: tonic::transport::Error) -> String {
    format!("{:#}", anyhow::Error::new(e))
}

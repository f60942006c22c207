//! Names from a CRI socket: a fake runtime (a gRPC server on a unix socket answering
//! `runtime.v1.RuntimeService`'s ListPodSandbox and ListContainers with the wire format of the
//! CRI api.proto) names pods and containers in a kubepods cgroup tree that has no kubelet log
//! directories at all.
use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    os::unix::fs::MetadataExt as _,
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use tonic::{Status, codegen::http, server::NamedService};
use tracer::owners::{
    Owners, Sources,
    cri::{
        self, Container, ContainerMetadata, LIST_CONTAINERS, LIST_POD_SANDBOX,
        ListContainersRequest, ListContainersResponse, ListPodSandboxRequest,
        ListPodSandboxResponse, PodSandbox, PodSandboxMetadata,
    },
};

const UID: &str = "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f";
const CID: &str = "4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d1f";
const OTHER_CID: &str = "1a3c5e7b9d1f4f2b9c6e8a1d3f5b7c9e0a2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f";
const OTHER_UID: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

#[derive(Clone)]
struct FakeRuntime {
    sandboxes: ListPodSandboxResponse,
    containers: ListContainersResponse,
    calls: Arc<Mutex<Vec<String>>>,
}

impl NamedService for FakeRuntime {
    const NAME: &'static str = "runtime.v1.RuntimeService";
}

type Body = tonic::body::Body;

impl tower::Service<http::Request<Body>> for FakeRuntime {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            me.calls.lock().unwrap().push(path.clone());
            Ok(match path.as_str() {
                LIST_POD_SANDBOX => {
                    answer::<ListPodSandboxRequest, _>(me.sandboxes.clone(), req).await
                }
                LIST_CONTAINERS => {
                    answer::<ListContainersRequest, _>(me.containers.clone(), req).await
                }
                _ => Status::unimplemented(path).into_http(),
            })
        })
    }
}

/// Answers one unary call with `response`, whatever the request.
async fn answer<Req, Resp>(response: Resp, req: http::Request<Body>) -> http::Response<Body>
where
    Req: prost::Message + Default + Send + Sync + 'static,
    Resp: prost::Message + Clone + Send + Sync + 'static,
{
    let svc = tower::service_fn(move |_: tonic::Request<Req>| {
        let response = response.clone();
        async move { Ok::<_, Status>(tonic::Response::new(response)) }
    });
    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
        .unary(svc, req)
        .await
}

fn runtime() -> FakeRuntime {
    let sandbox = |uid: &str, ns: &str, name: &str| PodSandbox {
        id: format!("sandbox-{name}"),
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: ns.into(),
        }),
    };
    let labels = |uid: &str, ns: &str, pod: &str, c: &str| {
        HashMap::from([
            ("io.kubernetes.pod.uid".to_owned(), uid.to_owned()),
            ("io.kubernetes.pod.namespace".to_owned(), ns.to_owned()),
            ("io.kubernetes.pod.name".to_owned(), pod.to_owned()),
            ("io.kubernetes.container.name".to_owned(), c.to_owned()),
        ])
    };
    FakeRuntime {
        // The second pod's sandbox is missing from the list: its container's labels name it.
        sandboxes: ListPodSandboxResponse {
            items: vec![sandbox(UID, "prod", "mysql-0")],
        },
        containers: ListContainersResponse {
            containers: vec![
                Container {
                    id: CID.into(),
                    metadata: Some(ContainerMetadata {
                        name: "mysql".into(),
                    }),
                    labels: labels(UID, "prod", "mysql-0", "mysql"),
                },
                Container {
                    id: OTHER_CID.into(),
                    metadata: None,
                    labels: labels(OTHER_UID, "web", "nginx-1", "nginx"),
                },
            ],
        },
        calls: Arc::default(),
    }
}

fn serve(fake: FakeRuntime, socket: &Path) {
    let listener = tokio::net::UnixListener::bind(socket).expect("bind the socket");
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(fake)
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
            .await
            .expect("serve");
    });
}

#[tokio::test]
async fn a_runtime_names_pods_and_containers_of_a_tree_without_kubelet_logs() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("containerd.sock");
    let fake = runtime();
    let calls = fake.calls.clone();
    serve(fake, &socket);

    // The tracer picks the first candidate that exists.
    let missing = dir.path().join("crio.sock");
    assert_eq!(
        cri::find_socket(&[missing, socket.clone()]),
        Some(socket.clone())
    );
    let names = cri::names(&socket, std::time::Duration::from_secs(5))
        .await
        .expect("the fake runtime answers");
    assert_eq!(*calls.lock().unwrap(), [LIST_POD_SANDBOX, LIST_CONTAINERS]);
    assert_eq!(names.containers[CID], "mysql");
    assert_eq!(names.containers[OTHER_CID], "nginx", "from the labels");
    assert_eq!(names.pods[OTHER_UID].pod, "nginx-1", "from the labels");

    // Both cgroup drivers, no /var/log/pods or /var/log/containers on this "node".
    let cg = dir.path().join("cgroup");
    let a = cg.join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID}.scope",
        UID.replace('-', "_")
    ));
    let b = cg.join(format!("kubepods/besteffort/pod{OTHER_UID}/{OTHER_CID}"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let sources = Sources {
        cgroup_root: cg,
        pods_log_dir: dir.path().join("no-pods"),
        containers_log_dir: dir.path().join("no-containers"),
    };
    let id = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let without = Owners::resolve(&sources);
    assert_eq!(without.get(id(&a)).map(|o| o.pod.as_str()), Some(""));
    let with = Owners::resolve_with(&sources, Some(&names));
    let owner = |p: &Path| {
        let o = with.get(id(p)).expect("owner");
        (o.namespace.clone(), o.pod.clone(), o.container.clone())
    };
    assert_eq!(owner(&a), ("prod".into(), "mysql-0".into(), "mysql".into()));
    assert_eq!(owner(&b), ("web".into(), "nginx-1".into(), "nginx".into()));
}

#[tokio::test]
async fn a_socket_nobody_answers_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("containerd.sock");
    // A socket file with no server behind it (a stale socket after a runtime crash).
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let err = cri::names(&socket, std::time::Duration::from_secs(2))
        .await
        .expect_err("nobody answers");
    let text = err.to_string();
    assert!(
        text.starts_with("connecting to the CRI socket") && text.contains("containerd.sock"),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

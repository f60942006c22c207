//! An in-process API server speaking the Kubernetes REST paths and JSON the plugin uses, with
//! every call recorded, so tests state exactly what the plugin asked and what it was told:
//! typed objects to fill it (`builders`), the routes (`routes`) and the kubelet's view of the
//! tracer pods the plugin creates (`kubelet`), over one state behind one lock.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test file uses part of the harness"
)]
mod builders;
mod kubelet;
pub mod prometheus;
mod routes;

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Output},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use serde_json::Value;

pub use builders::{TRACER_LABELS, node, on_node, pod, running};
pub use kubelet::Tracer;
pub use prometheus::Prometheus;

/// A tracer pod's trace files: (name, contents).
pub type Files = Vec<(String, Vec<u8>)>;

/// Everything the fake cluster holds and every knob a test turns.
#[derive(Default)]
pub struct ClusterState {
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    /// What created tracer pods do.
    pub tracer: Tracer,
    /// What tracer pods do on these nodes (others do as `tracer` says).
    pub tracer_on: HashMap<String, Tracer>,
    /// Other objects by their API path (`/apis/apps/v1/namespaces/prod/deployments/web`).
    pub objects: HashMap<String, Value>,
    /// Answer pod creation with this Status: (code, reason, message).
    pub create_error: Option<(u16, String, String)>,
    /// /metrics answers per node, served in turn (the last one repeats).
    pub metrics: HashMap<String, Vec<String>>,
    scrapes: HashMap<String, usize>,
    /// Services reachable through the service proxy: `namespace/name:port` → base URL.
    pub services: HashMap<String, String>,
    /// /metrics per node as a function of time (takes precedence over `metrics`).
    pub growing: HashMap<String, Growing>,
    /// How long a node's tracer takes to answer every /metrics after its first.
    pub metrics_delay: HashMap<String, Duration>,
    /// Pod bodies the plugin created, as sent.
    pub created: Vec<Value>,
    counter: u32,
    /// Files each tracer pod serves at /traces, by pod name.
    pub traces: HashMap<String, Files>,
    pub calls: Vec<String>,
    /// Pods deleted (namespace, name): a watch resumed after a deletion is told of it, as a
    /// real server replays what happened since the version it resumes from.
    pub deleted: Vec<(String, String)>,
    /// Answer every list with 403.
    pub forbid_list: bool,
    /// core/v1 Events, as the kubelet and scheduler post them.
    pub events: Vec<Value>,
}

/// A tracer whose counters grow steadily: each `_total` series rises from its value in
/// `before` by `scale` times its recorded increase (`after` − `before`) per second since
/// `since`; every other series keeps its value in `after`. So two readings of it, by the proxy
/// path or by Prometheus, give one known rate whenever they are taken.
#[derive(Clone)]
pub struct Growing {
    pub before: String,
    pub after: String,
    pub scale: f64,
    pub since: std::time::Instant,
}

impl Growing {
    /// The recorded pair (tests/fixtures/metrics-{1,2}.txt) growing from now.
    pub fn recorded(scale: f64) -> Growing {
        Growing {
            before: fixture("metrics-1.txt"),
            after: fixture("metrics-2.txt"),
            scale,
            since: std::time::Instant::now(),
        }
    }

    /// The per-second rate of a counter series (its text up to the value, e.g.
    /// `dentry_alloc_total{container="mysql",namespace="prod",pod="mysql-0"}`).
    pub fn rate(&self, series: &str) -> f64 {
        let value = |text: &str| {
            text.lines()
                .find_map(|l| l.rsplit_once(' ').filter(|(k, _)| *k == series))
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        self.scale * (value(&self.after) - value(&self.before))
    }

    /// /metrics now.
    pub fn now(&self) -> String {
        let secs = self.since.elapsed().as_secs_f64();
        let mut out = String::new();
        for line in self.after.lines() {
            match line.rsplit_once(' ') {
                Some((series, _)) if !line.starts_with('#') && series.contains("_total") => {
                    let start = self
                        .before
                        .lines()
                        .find_map(|l| l.rsplit_once(' ').filter(|(k, _)| *k == series))
                        .and_then(|(_, v)| v.parse::<f64>().ok())
                        .unwrap_or(0.0);
                    out.push_str(&format!("{series} {}\n", start + self.rate(series) * secs));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

pub struct Cluster {
    state: Mutex<ClusterState>,
    /// Wakes watches and log streams on any change to the pods.
    changes: tokio::sync::broadcast::Sender<()>,
}

fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// Is `pod` the one named `ns`/`name`?
fn is_pod(pod: &Pod, ns: &str, name: &str) -> bool {
    pod.metadata.namespace.as_deref() == Some(ns) && pod.metadata.name.as_deref() == Some(name)
}

impl Cluster {
    pub fn state(&self) -> MutexGuard<'_, ClusterState> {
        // A test that panicked while holding the lock has failed already; go on for its report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a call the plugin made.
    fn record(&self, call: impl Into<String>) {
        self.state().calls.push(call.into());
    }

    fn find(&self, ns: &str, name: &str) -> Option<Pod> {
        self.state()
            .pods
            .iter()
            .find(|p| is_pod(p, ns, name))
            .cloned()
    }

    /// What the tracer pod `ns`/`name` does, by its node.
    pub fn tracer_of(&self, ns: &str, name: &str) -> Tracer {
        let node = self
            .find(ns, name)
            .and_then(|p| p.spec.and_then(|s| s.node_name))
            .unwrap_or_default();
        let state = self.state();
        state.tracer_on.get(&node).unwrap_or(&state.tracer).clone()
    }

    /// Posts an Event about pod `ns/name`, as its kubelet would, and wakes the watches.
    pub fn add_event(&self, ns: &str, name: &str, kind: &str, reason: &str, message: &str) {
        {
            let mut state = self.state();
            let n = state.events.len();
            state.events.push(serde_json::json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{name}.{n}"), "namespace": ns,
                    "resourceVersion": (n + 1).to_string()},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": ns},
                "type": kind, "reason": reason, "message": message,
            }));
        }
        self.changed();
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        let _ = self.changes.send(());
    }

    /// Sets a pod's status as the kubelet would.
    fn set_status(&self, ns: &str, name: &str, status: PodStatus) {
        if let Some(p) = self.state().pods.iter_mut().find(|p| is_pod(p, ns, name)) {
            p.status = Some(status);
        }
        self.changed();
    }
}

pub struct FakeApi {
    pub cluster: Arc<Cluster>,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

/// Real tracer output recorded in the VM (see tests/fixtures/README.md).
pub fn recorded_traces() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traces.tsv"
    ))
    .expect("fixture")
}

/// A trace pod's `kubectl logs`, recorded in the VM (see tests/fixtures/README.md).
pub fn recorded_log() -> String {
    fixture("trace-pod.log")
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

/// The router over TLS: each connection's handshake, then HTTP/1 (a failed handshake, such as
/// a client without the required certificate, only ends that connection).
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: rustls::ServerConfig,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

pub fn kubeconfig_for(server: &str, dir: &std::path::Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: alice\n    namespace: prod\n\
         current-context: fake\nusers:\n- name: alice\n  user:\n    token: t0k3n\n"
    );
    std::fs::write(&path, text).expect("kubeconfig");
    path
}

impl FakeApi {
    pub fn start(pods: Vec<Pod>) -> FakeApi {
        FakeApi::start_with(pods, None)
    }

    /// As `start`, serving HTTPS with `tls` (the kubeconfig's server is then https://).
    pub fn start_tls(pods: Vec<Pod>, tls: rustls::ServerConfig) -> FakeApi {
        FakeApi::start_with(pods, Some(tls))
    }

    fn start_with(pods: Vec<Pod>, tls: Option<rustls::ServerConfig>) -> FakeApi {
        let cluster = Arc::new(Cluster {
            state: Mutex::new(ClusterState {
                pods,
                ..Default::default()
            }),
            changes: tokio::sync::broadcast::channel(64).0,
        });
        let app = routes::router(cluster.clone());
        let https = tls.is_some();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                match tls {
                    None => axum::serve(listener, app).await.expect("serve"),
                    Some(tls) => serve_tls(listener, app, tls).await,
                }
            });
        });
        let addr = rx.recv().expect("server started");
        let dir = tempfile::tempdir().expect("tempdir");
        let scheme = if https { "https" } else { "http" };
        let kubeconfig = kubeconfig_for(&format!("{scheme}://{addr}"), dir.path());
        FakeApi {
            cluster,
            addr,
            kubeconfig,
            _dir: dir,
        }
    }

    /// The cluster's state, to read or to set up (hold it only briefly: the server needs it).
    pub fn state(&self) -> MutexGuard<'_, ClusterState> {
        self.cluster.state()
    }

    /// Changes the cluster as a controller would (a pod created, scheduled, deleted) and wakes
    /// the watches.
    pub fn change(&self, f: impl FnOnce(&mut ClusterState)) {
        {
            let mut state = self.cluster.state();
            let before: Vec<(String, String)> = state.pods.iter().map(pod_key).collect();
            f(&mut state);
            let after: Vec<(String, String)> = state.pods.iter().map(pod_key).collect();
            state
                .deleted
                .extend(before.into_iter().filter(|k| !after.contains(k)));
        }
        self.cluster.changed();
    }

    /// The real plugin binary, pointed at this server.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG");
        cmd
    }

    /// Runs the real plugin binary against this server.
    pub fn plugin(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the plugin runs")
    }

    /// Starts the real plugin binary against this server without waiting for it.
    pub fn spawn_plugin(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the plugin starts")
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }
}

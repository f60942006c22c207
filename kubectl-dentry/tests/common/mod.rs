//! An in-process API server speaking the Kubernetes REST paths and JSON the plugin uses, with
//! every call recorded, so tests state exactly what the plugin asked and what it was told.
#![allow(dead_code, reason = "each test file uses part of the harness")]
use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Output},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

/// A tracer pod's trace files: (name, contents).
pub type Files = Vec<(String, Vec<u8>)>;

/// What a tracer pod the plugin creates does, as the kubelet would report it.
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
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer::Runs {
            log: recorded_log(),
            hold: false,
        }
    }
}

#[derive(Default)]
pub struct Cluster {
    pub pods: Mutex<Vec<Value>>,
    pub nodes: Mutex<Vec<Value>>,
    /// What created tracer pods do.
    pub tracer: Mutex<Tracer>,
    /// Answer pod creation with this Status: (code, reason, message).
    pub create_error: Mutex<Option<(u16, String, String)>>,
    /// /metrics answers per node, served in turn (the last one repeats).
    pub metrics: Mutex<std::collections::HashMap<String, Vec<String>>>,
    scrapes: Mutex<std::collections::HashMap<String, usize>>,
    /// How long a node's tracer takes to answer every /metrics after its first.
    pub metrics_delay: Mutex<std::collections::HashMap<String, std::time::Duration>>,
    /// Pod bodies the plugin created, as sent.
    pub created: Mutex<Vec<Value>>,
    changes: Mutex<Option<tokio::sync::broadcast::Sender<()>>>,
    counter: Mutex<u32>,
    /// Files each tracer pod serves at /traces, by pod name.
    pub traces: Mutex<std::collections::HashMap<String, Files>>,
    pub calls: Mutex<Vec<String>>,
    /// Answer every list with 403.
    pub forbid_list: Mutex<bool>,
}

pub struct FakeApi {
    pub state: Arc<Cluster>,
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn pod(namespace: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"), "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    })
}

pub fn on_node(mut pod: Value, node: &str) -> Value {
    pod["spec"]["nodeName"] = json!(node);
    pod
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
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/trace-pod.log"
    ))
    .expect("fixture")
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

pub fn node(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "message": if ready { "kubelet is posting ready status" } else { "container runtime is down" }}]},
    })
}

/// A running pod with one container `c` (runtime ID `containerd://cid-NAME`).
pub fn running(pod: Value) -> Value {
    let mut pod = pod;
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    pod["status"] = json!({"phase": "Running", "containerStatuses": [{
        "name": "c", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
        "containerID": format!("containerd://cid-{name}"),
        "state": {"running": {"startedAt": "2026-11-25T21:00:00Z"}}}]});
    pod
}

pub fn tracer_labels() -> Value {
    json!({"app.kubernetes.io/managed-by": "kubectl-dentry", "app.kubernetes.io/name": "dentry-tracer"})
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

fn matches(pod: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        pod["metadata"]["labels"][k].as_str() == Some(v)
    })
}

fn list(
    state: &Cluster,
    namespace: Option<&str>,
    q: &std::collections::HashMap<String, String>,
) -> Response {
    let user_scope = namespace.map_or("at the cluster scope".to_owned(), |n| {
        format!("in the namespace \"{n}\"")
    });
    if *state.forbid_list.lock().unwrap() {
        return status(
            403,
            "Forbidden",
            &format!(
                "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" {user_scope}"
            ),
        );
    }
    let items: Vec<Value> = state
        .pods
        .lock()
        .unwrap()
        .iter()
        .filter(|p| namespace.is_none_or(|n| p["metadata"]["namespace"] == n))
        .filter(|p| matches(p, q.get("labelSelector")))
        .filter(|p| {
            q.get("fieldSelector")
                .and_then(|f| f.strip_prefix("metadata.name="))
                .is_none_or(|name| p["metadata"]["name"] == name)
        })
        .cloned()
        .collect();
    Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": items})).into_response()
}

async fn list_all(
    State(s): State<Arc<Cluster>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    s.record(format!(
        "GET /api/v1/pods?{}",
        q.get("labelSelector").cloned().unwrap_or_default()
    ));
    list(&s, None, &q)
}

async fn list_ns(
    State(s): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if q.get("watch").map(String::as_str) == Some("true") {
        let name = q
            .get("fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name="))
            .unwrap_or_default()
            .to_owned();
        s.record(format!("WATCH /api/v1/namespaces/{ns}/pods/{name}"));
        return watch(s, ns, name);
    }
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods?{}",
        q.get("labelSelector").cloned().unwrap_or_default()
    ));
    list(&s, Some(&ns), &q)
}

/// Is `pod` the one named `ns`/`name`?
fn is_pod(pod: &Value, ns: &str, name: &str) -> bool {
    pod["metadata"]["namespace"] == ns && pod["metadata"]["name"] == name
}

impl Cluster {
    /// Notes a call the plugin made.
    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }

    fn find(&self, ns: &str, name: &str) -> Option<Value> {
        self.pods
            .lock()
            .unwrap()
            .iter()
            .find(|p| is_pod(p, ns, name))
            .cloned()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<()> {
        let mut changes = self.changes.lock().unwrap();
        changes
            .get_or_insert_with(|| tokio::sync::broadcast::channel(64).0)
            .subscribe()
    }

    fn changed(&self) {
        if let Some(tx) = self.changes.lock().unwrap().as_ref() {
            let _ = tx.send(());
        }
    }

    /// Sets a pod's status as the kubelet would.
    fn set_status(&self, ns: &str, name: &str, status: Value) {
        if let Some(p) = self
            .pods
            .lock()
            .unwrap()
            .iter_mut()
            .find(|p| is_pod(p, ns, name))
        {
            p["status"] = status;
        }
        self.changed();
    }
}

fn container_status(state: Value) -> Value {
    let phase = if state.get("running").is_some() {
        "Running"
    } else if state["terminated"]["exitCode"] == 0 {
        "Succeeded"
    } else if state.get("terminated").is_some() {
        "Failed"
    } else {
        "Pending"
    };
    json!({"phase": phase, "containerStatuses": [{"name": "tracer", "ready": phase == "Running",
        "restartCount": 0, "image": "tracer", "imageID": "", "state": state}]})
}

/// A watch on one pod: ADDED now, MODIFIED on each change, DELETED when it goes.
/// Every object a watch sends carries a newer resourceVersion, as a real server's do (kube's
/// watcher resumes from it).
fn versioned(mut pod: Value) -> Value {
    static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(8);
    let v = VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    pod["metadata"]["resourceVersion"] = json!(v.to_string());
    pod
}

fn watch(s: Arc<Cluster>, ns: String, name: String) -> Response {
    let rx = s.subscribe();
    let first = s.find(&ns, &name);
    let stream = futures::stream::unfold(
        (s, rx, first.map(|p| ("ADDED", p)), false),
        move |(s, mut rx, pending, done)| {
            let (ns, name) = (ns.clone(), name.clone());
            async move {
                if done {
                    return None;
                }
                if let Some((kind, pod)) = pending {
                    let line = format!("{}\n", json!({"type": kind, "object": versioned(pod)}));
                    return Some((Ok::<_, std::io::Error>(line), (s, rx, None, false)));
                }
                if rx.recv().await.is_err() {
                    return None;
                }
                match s.find(&ns, &name) {
                    Some(pod) => {
                        let line =
                            format!("{}\n", json!({"type": "MODIFIED", "object": versioned(pod)}));
                        Some((Ok(line), (s, rx, None, false)))
                    }
                    None => {
                        let gone = json!({"type": "DELETED", "object": {"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}}});
                        Some((Ok(format!("{gone}\n")), (s, rx, None, true)))
                    }
                }
            }
        },
    );
    axum::body::Body::from_stream(stream).into_response()
}

async fn get_pod(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    s.record(format!("GET /api/v1/namespaces/{ns}/pods/{name}"));
    match s.find(&ns, &name) {
        Some(p) => Json(p).into_response(),
        None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
    }
}

async fn create_pod(
    State(s): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    Json(mut pod): Json<Value>,
) -> Response {
    let prefix = pod["metadata"]["generateName"]
        .as_str()
        .unwrap_or("pod-")
        .to_owned();
    s.record(format!("POST /api/v1/namespaces/{ns}/pods {prefix}"));
    s.created.lock().unwrap().push(pod.clone());
    if let Some((code, reason, message)) = s.create_error.lock().unwrap().clone() {
        return status(code, &reason, &message);
    }
    let name = {
        let mut c = s.counter.lock().unwrap();
        *c += 1;
        format!("{prefix}{:05}", *c)
    };
    pod["metadata"]["name"] = json!(name);
    pod["metadata"]["namespace"] = json!(ns);
    pod["metadata"]["uid"] = json!(format!("uid-{name}"));
    pod["status"] = json!({"phase": "Pending"});
    s.pods.lock().unwrap().push(pod.clone());
    let behaviour = s.tracer.lock().unwrap().clone();
    let kubelet = s.clone();
    let (kns, kname) = (ns.clone(), name.clone());
    tokio::spawn(async move {
        let s = kubelet;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        s.set_status(
            &kns,
            &kname,
            container_status(json!({"waiting": {"reason": "ContainerCreating"}})),
        );
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        match behaviour {
            Tracer::Runs { .. } => s.set_status(&kns, &kname, container_status(json!({"running": {"startedAt": "2026-11-25T21:00:00Z"}}))),
            Tracer::ImagePull => s.set_status(&kns, &kname, container_status(json!({"waiting": {"reason": "ErrImagePull",
                "message": "failed to pull and unpack image \"ghcr.io/kubectl-dentry/tracer:0.1.0\": not found"}}))),
            Tracer::Fails { .. } => s.set_status(&kns, &kname, container_status(json!({"terminated": {"exitCode": 1, "reason": "Error"}}))),
            Tracer::StartError { reason, message } => s.set_status(&kns, &kname, container_status(json!({"terminated": {"exitCode": 128, "reason": reason, "message": message}}))),
            Tracer::Pending => {}
        }
    });
    (StatusCode::CREATED, Json(pod)).into_response()
}

async fn pod_log(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let follow = q.get("follow").map(String::as_str) == Some("true");
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods/{name}/log{}",
        if follow { "?follow" } else { "" }
    ));
    let (log, hold) = match s.tracer.lock().unwrap().clone() {
        Tracer::Runs { log, hold } => (log, hold),
        Tracer::Fails { log } => (log, false),
        Tracer::StartError { .. } => (String::new(), false),
        Tracer::ImagePull | Tracer::Pending => {
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
                        let code = if matches!(*s.tracer.lock().unwrap(), Tracer::Fails { .. }) {
                            1
                        } else {
                            0
                        };
                        s.set_status(
                            &ns,
                            &name,
                            container_status(
                                json!({"terminated": {"exitCode": code, "reason": "Completed"}}),
                            ),
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

async fn proxy_metrics(
    State(s): State<Arc<Cluster>>,
    Path((ns, pod_port)): Path<(String, String)>,
) -> Response {
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods/{pod_port}/proxy/metrics"
    ));
    let pod = pod_port
        .split_once(':')
        .map_or(pod_port.as_str(), |(p, _)| p);
    let Some(node) = s
        .find(&ns, pod)
        .and_then(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
    else {
        return status(404, "NotFound", &format!("pods \"{pod}\" not found"));
    };
    let answers = s
        .metrics
        .lock()
        .unwrap()
        .get(&node)
        .cloned()
        .unwrap_or_default();
    if answers.is_empty() {
        return status(
            503,
            "ServiceUnavailable",
            "error trying to reach service: dial tcp: connection refused",
        );
    }
    let (text, n) = {
        let mut scrapes = s.scrapes.lock().unwrap();
        let n = scrapes.entry(format!("{ns}/{pod}")).or_default();
        let text = answers[(*n).min(answers.len() - 1)].clone();
        *n += 1;
        (text, *n)
    };
    let delay = s.metrics_delay.lock().unwrap().get(&node).copied();
    if let (Some(delay), true) = (delay, n > 1) {
        tokio::time::sleep(delay).await;
    }
    text.into_response()
}

async fn list_nodes(State(s): State<Arc<Cluster>>) -> Response {
    s.record("GET /api/v1/nodes");
    let items = s.nodes.lock().unwrap().clone();
    Json(json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"}, "items": items})).into_response()
}

async fn get_node(State(s): State<Arc<Cluster>>, Path(name): Path<String>) -> Response {
    s.record(format!("GET /api/v1/nodes/{name}"));
    match s
        .nodes
        .lock()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == name.as_str())
    {
        Some(n) => Json(n.clone()).into_response(),
        None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
    }
}

async fn delete_pod(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    s.record(format!("DELETE /api/v1/namespaces/{ns}/pods/{name}"));
    let mut pods = s.pods.lock().unwrap();
    let removed = pods
        .iter()
        .position(|p| is_pod(p, &ns, &name))
        .map(|i| pods.remove(i));
    drop(pods);
    s.changed();
    match removed {
        Some(pod) => Json(pod).into_response(),
        None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
    }
}

/// `{pod}` arrives as `name:port`, as the API server's proxy paths carry it.
fn proxied_pod(s: &Cluster, pod_port: &str) -> Option<Files> {
    let (pod, port) = pod_port.split_once(':')?;
    (port == "9090").then(|| s.traces.lock().unwrap().get(pod).cloned())?
}

async fn proxy_list(
    State(s): State<Arc<Cluster>>,
    Path((ns, pod)): Path<(String, String)>,
) -> Response {
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods/{pod}/proxy/traces"
    ));
    match proxied_pod(&s, &pod) {
        Some(files) => Json(
            files
                .iter()
                .map(|(name, data)| json!({"name": name, "size": data.len(), "modified": "2026-11-25T21:19:35.000000000Z"}))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        None => status(503, "ServiceUnavailable", "error trying to reach service: dial tcp: connection refused"),
    }
}

async fn proxy_file(
    State(s): State<Arc<Cluster>>,
    Path((ns, pod, file)): Path<(String, String, String)>,
) -> Response {
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods/{pod}/proxy/traces/{file}"
    ));
    let files = proxied_pod(&s, &pod).unwrap_or_default();
    match files.into_iter().find(|(name, _)| *name == file) {
        Some((_, data)) => data.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Anything the plugin asks that this server does not implement: recorded, answered 404.
async fn unmatched(
    State(s): State<Arc<Cluster>>,
    uri: axum::http::Uri,
    method: axum::http::Method,
) -> Response {
    s.record(format!("UNMATCHED {method} {uri}"));
    status(
        404,
        "NotFound",
        &format!("the fake API server has no route for {uri}"),
    )
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
    pub fn start(pods: Vec<Value>) -> FakeApi {
        let state = Arc::new(Cluster {
            pods: Mutex::new(pods),
            ..Default::default()
        });
        let app = Router::new()
            .route("/api/v1/pods", get(list_all))
            .route(
                "/api/v1/namespaces/{ns}/pods",
                get(list_ns).post(create_pod),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}",
                get(get_pod).delete(delete_pod),
            )
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/proxy/metrics",
                get(proxy_metrics),
            )
            .route("/api/v1/nodes", get(list_nodes))
            .route("/api/v1/nodes/{name}", get(get_node))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/proxy/traces",
                get(proxy_list),
            )
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/proxy/traces/{file}",
                get(proxy_file),
            )
            .fallback(unmatched)
            .with_state(state.clone());
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
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("server started");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kubeconfig_for(&format!("http://{addr}"), dir.path());
        FakeApi {
            state,
            addr,
            kubeconfig,
            _dir: dir,
        }
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
        self.state.calls.lock().unwrap().clone()
    }
}

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

#[derive(Default)]
pub struct Cluster {
    pub pods: Mutex<Vec<Value>>,
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
        .cloned()
        .collect();
    Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": items})).into_response()
}

async fn list_all(
    State(s): State<Arc<Cluster>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    s.calls.lock().unwrap().push(format!(
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
    s.calls.lock().unwrap().push(format!(
        "GET /api/v1/namespaces/{ns}/pods?{}",
        q.get("labelSelector").cloned().unwrap_or_default()
    ));
    list(&s, Some(&ns), &q)
}

async fn delete_pod(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    s.calls
        .lock()
        .unwrap()
        .push(format!("DELETE /api/v1/namespaces/{ns}/pods/{name}"));
    let mut pods = s.pods.lock().unwrap();
    match pods.iter().position(|p| {
        p["metadata"]["namespace"] == ns.as_str() && p["metadata"]["name"] == name.as_str()
    }) {
        Some(i) => Json(pods.remove(i)).into_response(),
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
    s.calls.lock().unwrap().push(format!(
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
    s.calls.lock().unwrap().push(format!(
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
    s.calls
        .lock()
        .unwrap()
        .push(format!("UNMATCHED {method} {uri}"));
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
            .route("/api/v1/namespaces/{ns}/pods", get(list_ns))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}",
                axum::routing::delete(delete_pod),
            )
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

    /// Runs the real plugin binary against this server.
    pub fn plugin(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("the plugin runs")
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }
}

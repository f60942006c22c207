//! The REST paths the plugin uses, answered from the cluster's state as the API server would
//! (JSON bodies, `Status` errors), each call recorded.
use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::{Value, json};

use super::{Cluster, Files, kubelet};

pub fn router(state: Arc<Cluster>) -> Router {
    Router::new()
        .route("/api/v1/pods", get(list_all))
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_ns).post(create_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}",
            get(get_pod).delete(delete_pod).patch(patch_pod),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/log",
            get(kubelet::pod_log),
        )
        .route(
            "/api/v1/namespaces/{ns}/pods/{name}/proxy/metrics",
            get(proxy_metrics),
        )
        .route(
            "/api/v1/namespaces/{ns}/services/{svc}/proxy/{*rest}",
            get(proxy_service),
        )
        .route("/api/v1/namespaces/{ns}/events", get(events))
        .route("/api/v1/nodes", get(list_nodes))
        .route(
            "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
            get(get_object),
        )
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
        .with_state(state)
}

/// `GET /api/v1/namespaces/NS/events?fieldSelector=involvedObject.name=P,...`: the pod's
/// events, listed, or watched (those there first, then each one as it is posted).
async fn events(
    State(s): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pod = q
        .get("fieldSelector")
        .and_then(|f| {
            f.split(',')
                .find_map(|m| m.strip_prefix("involvedObject.name="))
        })
        .unwrap_or_default()
        .to_owned();
    let about = move |s: &Cluster| -> Vec<Value> {
        s.state()
            .events
            .iter()
            .filter(|e| e["metadata"]["namespace"] == ns.as_str())
            .filter(|e| pod.is_empty() || e["involvedObject"]["name"] == pod.as_str())
            .cloned()
            .collect()
    };
    if q.get("watch").map(String::as_str) != Some("true") {
        s.record("GET events");
        let items = about(&s);
        return Json(json!({"kind": "EventList", "apiVersion": "v1",
            "metadata": {"resourceVersion": items.len().to_string()}, "items": items}))
        .into_response();
    }
    s.record("WATCH events");
    let rx = s.subscribe();
    let stream = futures::stream::unfold((s, rx, 0usize), move |(s, mut rx, sent)| {
        let about = about.clone();
        async move {
            loop {
                let now = about(&s);
                if let Some(event) = now.get(sent) {
                    let line = format!("{}\n", json!({"type": "ADDED", "object": event}));
                    return Some((Ok::<_, std::io::Error>(line), (s, rx, sent + 1)));
                }
                if rx.recv().await.is_err() {
                    return None;
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| status(500, "InternalError", "stream"))
}

/// A `Status` error as the API server sends it.
pub fn status(code: u16, reason: &str, message: &str) -> Response {
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

fn unreachable_tracer() -> Response {
    status(
        503,
        "ServiceUnavailable",
        "error trying to reach service: dial tcp: connection refused",
    )
}

/// Label selectors as the API server reads them: `a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
/// `a`, `!a`, joined by commas (outside parentheses).
pub fn matches(pod: &Pod, selector: Option<&String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .all(|term| {
            let set = |rest: &str| -> Vec<String> {
                rest.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .collect()
            };
            if let Some((k, rest)) = term.split_once(" notin ") {
                return labels.get(k.trim()).is_none_or(|v| !set(rest).contains(v));
            }
            if let Some((k, rest)) = term.split_once(" in ") {
                return labels.get(k.trim()).is_some_and(|v| set(rest).contains(v));
            }
            if let Some((k, v)) = term.split_once("!=") {
                return labels.get(k).map(String::as_str) != Some(v);
            }
            if let Some((k, v)) = term.split_once('=') {
                return labels.get(k.trim_end_matches('=')).map(String::as_str) == Some(v);
            }
            match term.strip_prefix('!') {
                Some(k) => !labels.contains_key(k),
                None => labels.contains_key(term),
            }
        })
}

fn list(state: &Cluster, namespace: Option<&str>, q: &HashMap<String, String>) -> Response {
    let user_scope = namespace.map_or("at the cluster scope".to_owned(), |n| {
        format!("in the namespace \"{n}\"")
    });
    let s = state.state();
    if s.forbid_list {
        return status(
            403,
            "Forbidden",
            &format!(
                "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" {user_scope}"
            ),
        );
    }
    let name = q
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("metadata.name="));
    let items: Vec<&Pod> = s
        .pods
        .iter()
        .filter(|p| namespace.is_none_or(|n| p.metadata.namespace.as_deref() == Some(n)))
        .filter(|p| matches(p, q.get("labelSelector")))
        .filter(|p| name.is_none_or(|name| p.metadata.name.as_deref() == Some(name)))
        .collect();
    Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": items})).into_response()
}

async fn list_all(
    State(s): State<Arc<Cluster>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("watch").map(String::as_str) == Some("true") {
        let selector = q.get("labelSelector").cloned().unwrap_or_default();
        s.record(format!("WATCH /api/v1/pods?{selector}"));
        return watch_selected(s, None, selector);
    }
    s.record(format!(
        "GET /api/v1/pods?{}",
        q.get("labelSelector").cloned().unwrap_or_default()
    ));
    list(&s, None, &q)
}

async fn list_ns(
    State(s): State<Arc<Cluster>>,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("watch").map(String::as_str) == Some("true") && !q.contains_key("fieldSelector") {
        let selector = q.get("labelSelector").cloned().unwrap_or_default();
        s.record(format!("WATCH /api/v1/namespaces/{ns}/pods?{selector}"));
        return watch_selected(s, Some(ns), selector);
    }
    if q.get("watch").map(String::as_str) == Some("true") {
        let name = q
            .get("fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name="))
            .unwrap_or_default()
            .to_owned();
        s.record(format!("WATCH /api/v1/namespaces/{ns}/pods/{name}"));
        let resumed = q.contains_key("resourceVersion");
        return watch(s, ns, name, resumed);
    }
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/pods?{}",
        q.get("labelSelector").cloned().unwrap_or_default()
    ));
    list(&s, Some(&ns), &q)
}

/// Every object a watch sends carries a newer resourceVersion, as a real server's do (kube's
/// watcher resumes from it).
fn versioned(pod: &Pod) -> Value {
    static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(8);
    let v = VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut pod = serde_json::to_value(pod).unwrap_or_default();
    pod["metadata"]["resourceVersion"] = json!(v.to_string());
    pod
}

/// A watch on one pod: ADDED when it is there (now, or when it is created), MODIFIED on each
/// change, DELETED when it goes (then the watch ends, as the plugin's watches expect). A watch
/// that resumes from a list (`resumed`) of a pod deleted since is told DELETED at once.
fn watch(s: Arc<Cluster>, ns: String, name: String, resumed: bool) -> Response {
    let rx = s.subscribe();
    let first = s.find(&ns, &name);
    let deleted_since = first.is_none()
        && resumed
        && s.state()
            .deleted
            .iter()
            .any(|(n, p)| *n == ns && *p == name);
    let line = |kind: &str, object: Value| {
        Ok::<_, std::io::Error>(format!("{}\n", json!({"type": kind, "object": object})))
    };
    let stream = futures::stream::unfold(
        (s, rx, first.map(|p| ("ADDED", p)), deleted_since, false),
        move |(s, mut rx, pending, existed, done)| {
            let (ns, name) = (ns.clone(), name.clone());
            async move {
                if done {
                    return None;
                }
                if let Some((kind, pod)) = pending {
                    return Some((line(kind, versioned(&pod)), (s, rx, None, true, false)));
                }
                loop {
                    if existed && s.find(&ns, &name).is_none() {
                        let gone = json!({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}});
                        return Some((line("DELETED", gone), (s, rx, None, false, true)));
                    }
                    if rx.recv().await.is_err() {
                        return None;
                    }
                    // Gone: said at the top of the loop; not created yet: nothing to say.
                    if let Some(pod) = s.find(&ns, &name) {
                        let kind = if existed { "MODIFIED" } else { "ADDED" };
                        return Some((line(kind, versioned(&pod)), (s, rx, None, true, false)));
                    }
                }
            }
        },
    );
    axum::body::Body::from_stream(stream).into_response()
}

/// A watch on the pods a label selector matches, in one namespace or all: ADDED for each
/// matching pod now and as pods come to match, MODIFIED on each change, DELETED as they go
/// (or stop matching). It runs until the client leaves.
fn watch_selected(s: Arc<Cluster>, ns: Option<String>, selector: String) -> Response {
    type Seen = HashMap<(String, String), Value>;
    let rx = s.subscribe();
    let now = move |s: &Cluster| -> Seen {
        let selector = Some(&selector).filter(|s| !s.is_empty());
        s.state()
            .pods
            .iter()
            .filter(|p| {
                ns.as_ref()
                    .is_none_or(|n| p.metadata.namespace.as_ref() == Some(n))
            })
            .filter(|p| matches(p, selector))
            .map(|p| {
                (
                    super::pod_key(p),
                    serde_json::to_value(p).unwrap_or_default(),
                )
            })
            .collect()
    };
    let stream = futures::stream::unfold(
        (
            s,
            rx,
            Seen::new(),
            std::collections::VecDeque::<String>::new(),
            true,
        ),
        move |(s, mut rx, mut seen, mut queue, mut first)| {
            let now = now.clone();
            async move {
                loop {
                    if let Some(line) = queue.pop_front() {
                        return Some((Ok::<_, std::io::Error>(line), (s, rx, seen, queue, first)));
                    }
                    if !first && rx.recv().await.is_err() {
                        return None;
                    }
                    first = false;
                    let current = now(&s);
                    let event = |kind: &str, pod: &Value| {
                        let pod: Pod = serde_json::from_value(pod.clone()).unwrap_or_default();
                        format!("{}\n", json!({"type": kind, "object": versioned(&pod)}))
                    };
                    for (k, pod) in &current {
                        match seen.get(k) {
                            None => queue.push_back(event("ADDED", pod)),
                            Some(before) if before != pod => {
                                queue.push_back(event("MODIFIED", pod))
                            }
                            Some(_) => {}
                        }
                    }
                    for (k, pod) in &seen {
                        if !current.contains_key(k) {
                            queue.push_back(event("DELETED", pod));
                        }
                    }
                    seen = current;
                }
            }
        },
    );
    axum::body::Body::from_stream(stream).into_response()
}

/// A merge patch of a pod's annotations, the only patch the plugin sends.
async fn patch_pod(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
    Json(patch): Json<Value>,
) -> Response {
    let annotations = patch["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    s.record(format!(
        "PATCH /api/v1/namespaces/{ns}/pods/{name} {}",
        annotations
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let patched = {
        let mut state = s.state();
        let pod = state.pods.iter_mut().find(|p| super::is_pod(p, &ns, &name));
        pod.map(|p| {
            let a = p.metadata.annotations.get_or_insert_with(Default::default);
            for (k, v) in annotations {
                a.insert(k, v.as_str().unwrap_or_default().to_owned());
            }
            p.clone()
        })
    };
    s.changed();
    match patched {
        Some(pod) => Json(pod).into_response(),
        None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
    }
}

/// Workloads (`/apis/apps/v1/...`, `/apis/batch/v1/...`) as the test put them in `objects`.
async fn get_object(
    State(s): State<Arc<Cluster>>,
    Path((group, version, ns, plural, name)): Path<(String, String, String, String, String)>,
) -> Response {
    let path = format!("/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}");
    s.record(format!("GET {path}"));
    match s.state().objects.get(&path) {
        Some(object) => Json(object.clone()).into_response(),
        None => status(
            404,
            "NotFound",
            &format!("{plural}.{group} \"{name}\" not found"),
        ),
    }
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
    Json(sent): Json<Value>,
) -> Response {
    let prefix = sent["metadata"]["generateName"]
        .as_str()
        .unwrap_or("pod-")
        .to_owned();
    s.record(format!("POST /api/v1/namespaces/{ns}/pods {prefix}"));
    let mut pod: Pod = match serde_json::from_value(sent.clone()) {
        Ok(pod) => pod,
        Err(e) => {
            return status(
                400,
                "BadRequest",
                &format!("Pod in version \"v1\" cannot be handled as a Pod: {e}"),
            );
        }
    };
    let node = pod
        .spec
        .as_ref()
        .and_then(|p| p.node_name.clone())
        .unwrap_or_default();
    let (name, tracer) = {
        let mut state = s.state();
        state.created.push(sent);
        if let Some((code, reason, message)) = state.create_error.clone() {
            return status(code, &reason, &message);
        }
        state.counter += 1;
        let name = format!("{prefix}{:05}", state.counter);
        pod.metadata.name = Some(name.clone());
        pod.metadata.namespace = Some(ns.clone());
        pod.metadata.uid = Some(format!("uid-{name}"));
        pod.status = Some(PodStatus {
            phase: Some("Pending".into()),
            ..Default::default()
        });
        state.pods.push(pod.clone());
        let tracer = state.tracer_on.get(&node).unwrap_or(&state.tracer).clone();
        (name, tracer)
    };
    kubelet::start(s.clone(), ns, name, tracer);
    (StatusCode::CREATED, Json(pod)).into_response()
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
        .and_then(|p| p.spec.and_then(|spec| spec.node_name))
    else {
        return status(404, "NotFound", &format!("pods \"{pod}\" not found"));
    };
    let (text, n, delay) = {
        let mut state = s.state();
        if let Some(g) = state.growing.get(&node) {
            return g.now().into_response();
        }
        let answers = state.metrics.get(&node).cloned().unwrap_or_default();
        if answers.is_empty() {
            return unreachable_tracer();
        }
        let n = state.scrapes.entry(format!("{ns}/{pod}")).or_default();
        let text = answers[(*n).min(answers.len() - 1)].clone();
        *n += 1;
        let n = *n;
        (text, n, state.metrics_delay.get(&node).copied())
    };
    if let (Some(delay), true) = (delay, n > 1) {
        tokio::time::sleep(delay).await;
    }
    text.into_response()
}

/// A Service's HTTP through the service proxy: forwarded to the address the test gave it
/// (`ClusterState::services`), else 503 as the API server answers for a Service without
/// endpoints.
async fn proxy_service(
    State(s): State<Arc<Cluster>>,
    Path((ns, svc, rest)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    s.record(format!(
        "GET /api/v1/namespaces/{ns}/services/{svc}/proxy/{rest}"
    ));
    let Some(base) = s.state().services.get(&format!("{ns}/{svc}")).cloned() else {
        return status(
            503,
            "ServiceUnavailable",
            &format!("no endpoints available for service \"{svc}\""),
        );
    };
    let url = match query {
        Some(q) => format!("{base}/{rest}?{q}"),
        None => format!("{base}/{rest}"),
    };
    match kubectl_dentry::http_get::get_url("service", &url).await {
        Ok(body) => body.into_response(),
        Err(e) => status(502, "BadGateway", &e.to_string()),
    }
}

async fn list_nodes(State(s): State<Arc<Cluster>>) -> Response {
    s.record("GET /api/v1/nodes");
    let items = s.state().nodes.clone();
    Json(json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"}, "items": items})).into_response()
}

async fn get_node(State(s): State<Arc<Cluster>>, Path(name): Path<String>) -> Response {
    s.record(format!("GET /api/v1/nodes/{name}"));
    let found = s
        .state()
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(name.as_str()))
        .cloned();
    match found {
        Some(n) => Json(n).into_response(),
        None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
    }
}

async fn delete_pod(
    State(s): State<Arc<Cluster>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    s.record(format!("DELETE /api/v1/namespaces/{ns}/pods/{name}"));
    let removed = {
        let mut state = s.state();
        let i = state.pods.iter().position(|p| super::is_pod(p, &ns, &name));
        let removed = i.map(|i| state.pods.remove(i));
        if removed.is_some() {
            state.deleted.push((ns.clone(), name.clone()));
        }
        removed
    };
    s.changed();
    match removed {
        Some(pod) => Json(pod).into_response(),
        None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
    }
}

/// `{pod}` arrives as `name:port`, as the API server's proxy paths carry it.
fn proxied_pod(s: &Cluster, pod_port: &str) -> Option<Files> {
    let (pod, port) = pod_port.split_once(':')?;
    (port == "9090").then(|| s.state().traces.get(pod).cloned())?
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
        None => unreachable_tracer(),
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

//! HTTP: `/metrics`, `/healthz`, `/traces` (JSON list) and `/traces/<name>` (download). Only
//! the trace files themselves (`traces.tsv`, `traces.tsv.N`) are ever served: any other name —
//! `../` included — is answered 404 without touching the filesystem.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path as UrlPath, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;

use crate::{
    serve::metrics::Metrics,
    trace::{rotate::ACTIVE, tsv::rfc3339_nanos},
};

pub struct AppState {
    pub metrics: Mutex<Metrics>,
    pub trace_dir: Option<PathBuf>,
}

/// `:9090` (all addresses, as in Go) or `host:port`.
pub fn parse_listen(listen: &str) -> Result<SocketAddr, String> {
    let full = if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_owned()
    };
    full.parse()
        .map_err(|_| format!("{listen:?} is not an address: use :PORT or HOST:PORT (e.g. :9090)"))
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/traces", get(list))
        .route("/traces/{name}", get(download))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = match state.metrics.lock() {
        Ok(m) => m.render(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    (
        [(header::CONTENT_TYPE, crate::serve::metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct TraceFile {
    pub name: String,
    pub size: u64,
    /// RFC 3339, UTC.
    pub modified: String,
}

/// Is `name` one of ours: `traces.tsv` or `traces.tsv.<digits>`?
pub fn is_trace_file_name(name: &str) -> bool {
    match name.strip_prefix(ACTIVE) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// The trace files in `dir`, active first, then .1 (newest) … .N (oldest).
pub fn list_files(dir: &Path) -> Vec<TraceFile> {
    let mut files: Vec<(u64, TraceFile)> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !is_trace_file_name(&name) {
                return None;
            }
            let meta = e.metadata().ok()?;
            let order = name
                .strip_prefix(ACTIVE)
                .and_then(|r| r.strip_prefix('.'))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Some((
                order,
                TraceFile {
                    name,
                    size: meta.len(),
                    modified: meta.modified().map(rfc3339_nanos).unwrap_or_default(),
                },
            ))
        })
        .collect();
    files.sort_by_key(|(order, _)| *order);
    files.into_iter().map(|(_, f)| f).collect()
}

async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<TraceFile>> {
    Json(
        state
            .trace_dir
            .as_deref()
            .map(list_files)
            .unwrap_or_default(),
    )
}

async fn download(State(state): State<Arc<AppState>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some(dir) = state.trace_dir.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !is_trace_file_name(&name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/tab-separated-values; charset=utf-8".to_owned(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trace_file_names_are_served() {
        for ok in ["traces.tsv", "traces.tsv.1", "traces.tsv.12"] {
            assert!(is_trace_file_name(ok), "{ok}");
        }
        for bad in [
            "../etc/passwd",
            "traces.tsv.",
            "traces.tsv.1/..",
            "traces.tsvx",
            "traces.tsv.-1",
            "x",
            "",
            "..",
            "traces.tsv.1a",
        ] {
            assert!(!is_trace_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen(":9090").unwrap().port(), 9090);
        assert_eq!(
            parse_listen("127.0.0.1:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert!(parse_listen("9090").unwrap_err().contains(":PORT"));
    }

    #[test]
    fn lists_files_in_rotation_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "traces.tsv.2",
            "traces.tsv",
            "other.txt",
            "traces.tsv.1",
            "traces.tsv.10",
        ] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let names: Vec<String> = list_files(dir.path()).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "traces.tsv",
                "traces.tsv.1",
                "traces.tsv.2",
                "traces.tsv.10"
            ]
        );
    }
}

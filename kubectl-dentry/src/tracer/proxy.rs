//! Reaching a tracer's HTTP endpoints through the API server's pod proxy (what `kubectl get
//! --raw` does), so no port-forward is needed and RBAC decides who may.
use kube::Client;

use crate::{
    error::{Error, Scope},
    tracer::pod::METRICS_PORT,
};

pub fn path(namespace: &str, pod: &str, rest: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}:{METRICS_PORT}/proxy/{rest}")
}

/// GET `rest` (e.g. `metrics`, `traces/traces.tsv`) from the tracer in `namespace`/`pod`.
pub async fn get(
    client: &Client,
    namespace: &str,
    pod: &str,
    rest: &str,
) -> Result<Vec<u8>, Error> {
    let scope = || Scope(Some(namespace.into()));
    let req = http::Request::get(path(namespace, pod, rest))
        .body(Vec::new())
        .map_err(|e| Error::Api {
            verb: "get",
            resource: "pods/proxy",
            scope: scope(),
            message: e.to_string(),
        })?;
    let text = client
        .request_text(req)
        .await
        .map_err(|e| Error::from_kube(e, "get", "pods/proxy", scope()))?;
    Ok(text.into_bytes())
}

//! A plain-HTTP GET of a URL the user gave (`top --endpoint`, `top --prometheus`): both the
//! tracer's scrape path and the Prometheus client use it.
use crate::error::Error;

/// GETs a URL given with `flag` (`--endpoint`: a tracer's /metrics through a port-forward or
/// in the demo VM; `--prometheus`: its HTTP API).
pub async fn get_url(flag: &str, url: &str) -> Result<Vec<u8>, Error> {
    use http_body_util::BodyExt as _;
    let bad = |message: String| Error::Endpoint {
        url: url.to_owned(),
        message,
    };
    let uri: http::Uri = url.parse().map_err(|e| {
        Error::Usage(format!(
            "{flag} {url}: not a URL ({e}); pass e.g. http://127.0.0.1:9090"
        ))
    })?;
    if uri.scheme_str() != Some("http") {
        return Err(Error::Usage(format!(
            "{flag} {url}: only http:// URLs are read (use a port-forward, or for Prometheus --prometheus-service)"
        )));
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client
        .get(uri)
        .await
        .map_err(|e| bad(crate::error::source_chain(&e)))?;
    if !response.status().is_success() {
        return Err(bad(format!("HTTP {}", response.status())));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| bad(e.to_string()))?;
    Ok(body.to_bytes().to_vec())
}

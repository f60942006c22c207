//! What the tracer serves: the Prometheus metrics and the HTTP endpoints.
pub mod http;
pub mod metrics;

//! `top --prometheus`: the rows of `top` from a Prometheus that scrapes the tracers, in a few
//! PromQL queries per refresh whatever the node count: one per number the output shows (five
//! for the table, nine for wide and JSON) and one for the nodes' lines, all at once.
//! The node of a series is its `node` label, which the scrape sets (deploy/examples/
//! podmonitor.yaml, docs/deploy.md); the tracer does not.
use std::{collections::BTreeMap, time::Duration};

use dentry_common::metric;
use futures::StreamExt as _;
use kube::Client;

use crate::{
    error::{Error, Scope},
    rates::{Key, Row},
    table::{NodeLine, Output},
};

/// Where the Prometheus HTTP API is.
#[derive(Clone)]
pub enum Server {
    /// Its base URL (`--prometheus`), read directly.
    Url(String),
    /// A Service in the cluster (`--prometheus-service NAMESPACE/NAME:PORT`), through the API
    /// server's service proxy.
    Service {
        client: Client,
        namespace: String,
        name: String,
        port: String,
    },
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Server::Url(url) => f.write_str(url),
            Server::Service {
                namespace,
                name,
                port,
                ..
            } => write!(f, "service {namespace}/{name}:{port}"),
        }
    }
}

/// `NAMESPACE/NAME:PORT` → (namespace, name, port).
pub fn parse_service(text: &str) -> Result<(String, String, String), String> {
    let bad = || {
        format!(
            "{text:?} is not NAMESPACE/NAME:PORT (e.g. monitoring/prometheus-operated:9090, or :web for a named port)"
        )
    };
    let (namespace, rest) = text.split_once('/').ok_or_else(bad)?;
    let (name, port) = rest.split_once(':').ok_or_else(bad)?;
    if [namespace, name, port].iter().any(|s| s.is_empty()) || port.contains('/') {
        return Err(bad());
    }
    Ok((namespace.into(), name.into(), port.into()))
}

/// One element of an instant vector: every label, or only those a row needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<L = BTreeMap<String, String>> {
    pub labels: L,
    pub value: f64,
}

/// Labels read by name; a missing one reads as "" (as PromQL treats it).
pub trait Labels {
    fn get(&self, name: &str) -> &str;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, name: &str) -> &str {
        BTreeMap::get(self, name).map_or("", String::as_str)
    }
}

/// The labels `top` reads. At 1,000 nodes × 30 pods a query answers 30,000 series, each with
/// the scrape's own labels (job, instance, the pod's...) as well: keeping only these cuts the
/// plugin's memory several times.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct RowLabels {
    #[serde(rename = "__name__")]
    name: String,
    node: String,
    namespace: String,
    pod: String,
    container: String,
    #[serde(rename = "type")]
    kind: String,
    feature: String,
    reason: String,
}

impl Labels for RowLabels {
    fn get(&self, name: &str) -> &str {
        match name {
            "__name__" => &self.name,
            "node" => &self.node,
            "namespace" => &self.namespace,
            "pod" => &self.pod,
            "container" => &self.container,
            "type" => &self.kind,
            "feature" => &self.feature,
            "reason" => &self.reason,
            _ => "",
        }
    }
}

impl<L: Labels> Series<L> {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name)
    }

    /// The `type` the nodes' query gave a series of its own making with `label_replace`
    /// (`up`, `scraped_for`): those have no metric name.
    fn marker(&self) -> Option<&str> {
        self.label("__name__")
            .is_empty()
            .then(|| self.label("type"))
    }

    fn key(&self) -> (String, Key) {
        (
            self.label("node").to_owned(),
            Key {
                namespace: self.label("namespace").to_owned(),
                pod: self.label("pod").to_owned(),
                container: self.label("container").to_owned(),
            },
        )
    }
}

/// The series a query selects: by node and namespace, as `--node` and `-n` say.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub node: Option<String>,
    pub namespace: Option<String>,
}

/// A PromQL string literal.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Selector {
    fn matchers(&self, with_namespace: bool) -> String {
        let mut m = Vec::new();
        if let Some(node) = &self.node {
            m.push(format!("node={}", quoted(node)));
        }
        if let (Some(ns), true) = (&self.namespace, with_namespace) {
            m.push(format!("namespace={}", quoted(ns)));
        }
        m.join(",")
    }
}

/// The `up` series of the tracers' scrape jobs: `dentry-tracer` in the plain scrape config,
/// `NAMESPACE/dentry-tracer` from the PodMonitor (as the alerts select them).
pub const TRACER_JOBS: &str = r#"job=~"(.*/)?dentry-tracer""#;

/// One number of a row, read with one query across every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    AllocRate,
    NegativeRate,
    PositiveRate,
    AllocTotal,
    NegativeTotal,
    PositiveTotal,
    Live,
    LiveNegative,
    LiveBytes,
}

impl Field {
    /// The numbers an output shows: the table's columns, or every field (wide, JSON). A
    /// server's cost grows with the series it returns, and at 1,000 nodes × 30 pods each
    /// field is 30,000 of them.
    pub fn shown(output: Output) -> &'static [Field] {
        use Field::*;
        match output {
            Output::Table => &[AllocRate, NegativeRate, Live, LiveNegative, LiveBytes],
            Output::Wide | Output::Json => &[
                AllocRate,
                NegativeRate,
                PositiveRate,
                AllocTotal,
                NegativeTotal,
                PositiveTotal,
                Live,
                LiveNegative,
                LiveBytes,
            ],
        }
    }

    fn metric(self) -> &'static str {
        match self {
            Field::AllocRate | Field::AllocTotal => metric::ALLOC_TOTAL,
            Field::NegativeRate | Field::NegativeTotal => metric::NEGATIVE_TOTAL,
            Field::PositiveRate | Field::PositiveTotal => metric::POSITIVE_TOTAL,
            Field::Live => metric::LIVE,
            Field::LiveNegative => metric::LIVE_NEGATIVE,
            Field::LiveBytes => metric::LIVE_BYTES,
        }
    }

    /// The query: the series as they are (the rows are summed here, as the proxy path sums a
    /// scrape's series per container), a counter's per-second `rate()` over `window`.
    pub fn query(self, sel: &Selector, window: &str) -> String {
        let series = format!("{}{{{}}}", self.metric(), sel.matchers(true));
        match self {
            Field::AllocRate | Field::NegativeRate | Field::PositiveRate => {
                format!("rate({series}[{window}])")
            }
            _ => series,
        }
    }

    fn set(self, row: &mut Row, value: f64) {
        let gauge = |g: &mut Option<f64>| *g = Some(g.unwrap_or(0.0) + value);
        let rate = |r: &mut f64| *r = if r.is_nan() { value } else { *r + value };
        match self {
            Field::AllocRate => rate(&mut row.alloc_per_s),
            Field::NegativeRate => rate(&mut row.negative_per_s),
            Field::PositiveRate => rate(&mut row.positive_per_s),
            Field::AllocTotal => row.alloc_total += value,
            Field::NegativeTotal => row.negative_total += value,
            Field::PositiveTotal => row.positive_total += value,
            Field::Live => gauge(&mut row.live),
            Field::LiveNegative => gauge(&mut row.live_negative),
            Field::LiveBytes => gauge(&mut row.live_bytes),
        }
    }
}

/// The nodes' query: their dentry-state, cache memory and pods' share, the features their
/// kernels lack (`feature`, `reason`), their tracers' scrape health (`type="up"`), and for a
/// node whose tracer Prometheus has scraped for less than `window`, for how long
/// (`type="scraped_for"`, seconds: its first scrape, to a 120th of the window). The first
/// scrape is looked for over twice the window: over the window alone, a node scraped for
/// longer finds a scrape up to one interval after the window's start and reads as younger
/// than the window (`--rate-window 2m` with 30 s scrapes: rates up to 25 % high).
pub fn nodes_query(sel: &Selector, window: Duration) -> String {
    let node = sel.matchers(false);
    let sep = if node.is_empty() { "" } else { "," };
    let step = (window.as_millis() / 120).max(1000);
    format!(
        r#"max by (__name__, node, type) ({{__name__=~"{}|{}|{}"{sep}{node}}}) or max by (node, feature, reason) ({}{{{node}}} == 0) or label_replace(min by (node) (up{{{TRACER_JOBS}{sep}{node}}}), "type", "up", "", "") or label_replace(time() - min by (node) (min_over_time(timestamp(up{{{TRACER_JOBS}{sep}{node}}})[{}ms:{step}ms])) < {}, "type", "scraped_for", "", "")"#,
        metric::COUNT,
        metric::CACHE_BYTES,
        metric::CACHE_PODS_RATIO,
        metric::FEATURE,
        2 * window.as_millis(),
        window.as_secs_f64(),
    )
}

impl Server {
    async fn query_rows(&self, promql: String) -> Result<Vec<Series<RowLabels>>, Error> {
        self.query_as(&promql).await
    }

    /// Evaluates `promql` now; the elements of the instant vector it returns.
    pub async fn query(&self, promql: &str) -> Result<Vec<Series>, Error> {
        self.query_as(promql).await
    }

    async fn query_as<L: serde::de::DeserializeOwned>(
        &self,
        promql: &str,
    ) -> Result<Vec<Series<L>>, Error> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", promql)
            .finish();
        let bad = |message: String| Error::Prometheus {
            at: self.to_string(),
            message,
        };
        let body = match self {
            Server::Url(base) => {
                let url = format!("{}/api/v1/query?{query}", base.trim_end_matches('/'));
                crate::http_get::get_url("--prometheus", &url)
                    .await
                    .map_err(|e| match e {
                        Error::Endpoint { message, .. } => bad(message),
                        other => other,
                    })?
            }
            Server::Service {
                client,
                namespace,
                name,
                port,
            } => {
                let path = format!(
                    "/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy/api/v1/query?{query}"
                );
                let req = http::Request::get(path)
                    .body(Vec::new())
                    .map_err(|e| bad(e.to_string()))?;
                client
                    .request_text(req)
                    .await
                    .map_err(|e| {
                        Error::from_kube(e, "get", "services/proxy", Scope(Some(namespace.clone())))
                    })?
                    .into_bytes()
            }
        };
        parse_vector(&body).map_err(bad)
    }
}

/// A Prometheus `/api/v1/query` answer, read into types: at 30,000 series an untyped JSON
/// tree costs several times the memory.
#[derive(serde::Deserialize)]
#[serde(bound = "L: serde::de::DeserializeOwned")]
struct Answer<L> {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data<L>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", bound = "L: serde::de::DeserializeOwned")]
struct Data<L> {
    result_type: String,
    #[serde(default = "Vec::new")]
    result: Vec<Element<L>>,
}

#[derive(serde::Deserialize)]
#[serde(bound = "L: serde::de::DeserializeOwned")]
struct Element<L> {
    metric: L,
    /// (evaluation time, the value as a string: "NaN" and "+Inf" included).
    value: (f64, String),
}

/// The `result` of a Prometheus `/api/v1/query` answer holding an instant vector.
pub fn parse_vector<L: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Vec<Series<L>>, String> {
    let answer: Answer<L> = serde_json::from_slice(body)
        .map_err(|e| format!("not a Prometheus API answer ({e}); is this Prometheus's URL?"))?;
    if answer.status != "success" {
        return Err(format!(
            "the query failed: {}",
            answer.error.as_deref().unwrap_or("no error message")
        ));
    }
    let data = answer
        .data
        .ok_or_else(|| "a successful answer without data".to_owned())?;
    if data.result_type != "vector" {
        return Err(format!("expected a vector, got {}", data.result_type));
    }
    data.result
        .into_iter()
        .map(|e| {
            let value =
                e.value.1.parse::<f64>().map_err(|_| {
                    format!("a sample whose value is not a number: {:?}", e.value.1)
                })?;
            Ok(Series {
                labels: e.metric,
                value,
            })
        })
        .collect()
}

/// What the queries answered, as `top` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    pub rows: Vec<Row>,
    pub nodes: Vec<NodeLine>,
}

/// Why there are no rows, as one line naming the fix.
fn no_series<L: Labels>(at: &str, sel: &Selector, nodes: &[Series<L>]) -> Error {
    let scraped = nodes.iter().filter(|s| s.label("type") == "up").count();
    let why = if scraped > 0 {
        format!(
            "Prometheus scrapes {scraped} tracer target(s) but none answers (up == 0): check the DaemonSet's pods (`kubectl -n dentry-monitor get pods -o wide`)"
        )
    } else {
        "the tracers are not scraped: apply deploy/examples/podmonitor.yaml (Prometheus Operator) or add the scrape job in docs/deploy.md".to_owned()
    };
    let mut filter = String::new();
    if let Some(node) = &sel.node {
        filter.push_str(&format!(" on node {node}"));
    }
    if let Some(ns) = &sel.namespace {
        filter.push_str(&format!(" in namespace {ns}"));
    }
    Error::NoSeries {
        at: at.to_owned(),
        filter,
        why,
    }
}

/// The rows and node lines from the answers: `fields` paired with their series, and the
/// nodes' query's.
pub fn fleet<L: Labels>(
    at: &str,
    sel: &Selector,
    fields: &[(Field, Vec<Series<L>>)],
    nodes: &[Series<L>],
    window: Duration,
) -> Result<Fleet, Error> {
    let mut rows = Rows::default();
    for (field, answer) in fields {
        rows.add(*field, answer);
    }
    rows.finish(at, sel, nodes, window)
}

/// The rows being summed, one field's answer at a time (so each answer can go as soon as it
/// is added: at 30,000 series apiece, holding them all costs more than the rows).
#[derive(Default)]
pub struct Rows(BTreeMap<(String, Key), Row>);

impl Rows {
    pub fn add<L: Labels>(&mut self, field: Field, answer: &[Series<L>]) {
        let by_key = &mut self.0;
        for s in answer {
            let (node, key) = s.key();
            let row = by_key
                .entry((node.clone(), key.clone()))
                .or_insert_with(|| Row {
                    key,
                    node,
                    alloc_per_s: f64::NAN,
                    negative_per_s: f64::NAN,
                    positive_per_s: f64::NAN,
                    negative_pct: 0.0,
                    alloc_total: 0.0,
                    negative_total: 0.0,
                    positive_total: 0.0,
                    live: None,
                    live_negative: None,
                    live_bytes: None,
                });
            field.set(row, s.value);
        }
    }

    /// The rows, and the node lines from the nodes' query. `rate()` over a window that is
    /// not full yet (Prometheus started scraping the node's tracer less than `window` ago)
    /// spreads the increase over the whole window: such a node's rates are scaled to the
    /// seconds that hold samples, and its line says so.
    pub fn finish<L: Labels>(
        self,
        at: &str,
        sel: &Selector,
        nodes: &[Series<L>],
        window: Duration,
    ) -> Result<Fleet, Error> {
        let by_key = self.0;
        if by_key.is_empty() {
            return Err(no_series(at, sel, nodes));
        }
        if by_key.keys().all(|(node, _)| node.is_empty()) {
            return Err(Error::NoSeries {
            at: at.to_owned(),
            filter: String::new(),
            why: "the dentry series have no node label: relabel __meta_kubernetes_pod_node_name to node, as deploy/examples/podmonitor.yaml and docs/deploy.md do".into(),
        });
        }
        let scraped_for: BTreeMap<&str, f64> = nodes
            .iter()
            .filter(|s| s.marker() == Some("scraped_for"))
            .filter(|s| s.value > 0.0 && s.value < window.as_secs_f64())
            .map(|s| (s.label("node"), s.value))
            .collect();
        let rows = by_key
            .into_values()
            .map(|mut r| {
                if let Some(secs) = scraped_for.get(r.node.as_str()) {
                    let scale = window.as_secs_f64() / secs;
                    r.alloc_per_s *= scale;
                    r.negative_per_s *= scale;
                    r.positive_per_s *= scale;
                }
                r.negative_pct = crate::rates::negative_share(r.negative_per_s, r.alloc_per_s);
                r
            })
            .collect();
        let mut lines: BTreeMap<String, NodeLine> = BTreeMap::new();
        let mut down = Vec::new();
        for s in nodes {
            let node = s.label("node").to_owned();
            match s.marker() {
                Some("up") => {
                    if s.value == 0.0 {
                        down.push(node);
                    }
                    continue;
                }
                Some("scraped_for") => continue,
                _ => {}
            }
            let line = lines.entry(node.clone()).or_insert_with(|| NodeLine {
                node,
                total: 0.0,
                unused: 0.0,
                negative: 0.0,
                cache_bytes: None,
                pods_ratio: None,
                unreachable: None,
                features_off: Default::default(),
                rates_over: scraped_for.get(s.label("node")).copied(),
            });
            if !s.label("feature").is_empty() {
                line.features_off
                    .insert(s.label("feature").to_owned(), s.label("reason").to_owned());
                continue;
            }
            match (s.label("__name__"), s.label("type")) {
                (metric::COUNT, "total") => line.total = s.value,
                (metric::COUNT, "unused") => line.unused = s.value,
                (metric::COUNT, "negative") => line.negative = s.value,
                (metric::CACHE_BYTES, _) => line.cache_bytes = Some(s.value),
                (metric::CACHE_PODS_RATIO, _) => line.pods_ratio = Some(s.value),
                _ => {}
            }
        }
        for node in down {
            lines.insert(
                node.clone(),
                NodeLine::unreachable(
                    node,
                    &"Prometheus cannot scrape its tracer (up == 0; its last values are not shown)",
                ),
            );
        }
        Ok(Fleet {
            rows,
            nodes: lines.into_values().collect(),
        })
    }
}

/// Runs the queries `output` needs, all at once, and builds the rows.
pub async fn read(
    server: &Server,
    sel: &Selector,
    window: Duration,
    output: Output,
) -> Result<Fleet, Error> {
    let span = format!("{}ms", window.as_millis());
    let span = span.as_str();
    let mut answers: futures::stream::FuturesUnordered<_> = Field::shown(output)
        .iter()
        .map(|&f| async move { (f, server.query_rows(f.query(sel, span)).await) })
        .collect();
    let rows = async {
        let mut rows = Rows::default();
        while let Some((field, answer)) = answers.next().await {
            rows.add(field, &answer?);
        }
        Ok(rows)
    };
    let (rows, nodes) = futures::try_join!(rows, server.query_rows(nodes_query(sel, window)))?;
    rows.finish(&server.to_string(), sel, &nodes, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTES_2: Duration = Duration::from_secs(120);

    fn series(labels: &[(&str, &str)], value: f64) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            value,
        }
    }

    #[test]
    fn a_service_is_namespace_name_and_port() {
        assert_eq!(
            parse_service("monitoring/prometheus-operated:web"),
            Ok((
                "monitoring".into(),
                "prometheus-operated".into(),
                "web".into()
            ))
        );
        for bad in ["prometheus:9090", "monitoring/prometheus", "/p:1", "m/p:"] {
            assert!(parse_service(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_queries_carry_the_selection() {
        let sel = Selector {
            node: Some("node-a".into()),
            namespace: Some("prod".into()),
        };
        assert_eq!(
            Field::AllocRate.query(&sel, "2m"),
            r#"rate(dentry_alloc_total{node="node-a",namespace="prod"}[2m])"#
        );
        assert_eq!(
            Field::LiveBytes.query(&sel, "2m"),
            r#"dentry_live_bytes{node="node-a",namespace="prod"}"#
        );
        let nodes = nodes_query(&sel, Duration::from_secs(120));
        assert!(
            nodes.contains(r#"node="node-a""#) && !nodes.contains("prod"),
            "{nodes}"
        );
        assert_eq!(
            Field::NegativeRate.query(&Selector::default(), "30s"),
            "rate(dentry_negative_total{}[30s])"
        );
        assert_eq!(Field::shown(Output::Table).len(), 5);
        assert_eq!(Field::shown(Output::Json).len(), 9);
    }

    #[test]
    fn an_api_answer_becomes_series_and_an_error_is_a_message() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"node":"a","rate":"alloc"},"value":[1700000000.1,"12.5"]},
            {"metric":{"node":"b"},"value":[1700000000.1,"NaN"]}]}}"#;
        let v: Vec<Series> = parse_vector(body.as_bytes()).expect("parses");
        assert_eq!(v[0].value, 12.5);
        assert_eq!(v[0].label("rate"), "alloc");
        assert!(v[1].value.is_nan());
        // A row keeps only the labels it reads.
        let rows: Vec<Series<RowLabels>> = parse_vector(body.as_bytes()).expect("parses");
        assert_eq!((rows[0].label("node"), rows[0].label("rate")), ("a", ""));
        let err = parse_vector::<RowLabels>(
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
        )
        .unwrap_err();
        assert!(err.contains("parse error at char 3"), "{err}");
        assert!(parse_vector::<RowLabels>(b"<html>").is_err());
    }

    #[test]
    fn rows_sum_the_fields_per_container_and_a_down_tracer_is_unreachable() {
        let pod = [
            ("node", "a"),
            ("namespace", "prod"),
            ("pod", "mysql-0"),
            ("container", "mysql"),
        ];
        // Two series of one container (two scrape jobs' instances) are summed, as the proxy
        // path sums a scrape's.
        let fields = vec![
            (
                Field::AllocRate,
                vec![series(&pod, 300.0), series(&pod, 100.0)],
            ),
            (Field::NegativeRate, vec![series(&pod, 300.0)]),
            (Field::LiveBytes, vec![series(&pod, 60000.0)]),
        ];
        let nodes = vec![
            series(
                &[
                    ("__name__", metric::COUNT),
                    ("node", "a"),
                    ("type", "total"),
                ],
                9.0,
            ),
            series(&[("node", "a"), ("type", "up")], 1.0),
            series(&[("node", "b"), ("type", "up")], 0.0),
            series(
                &[
                    ("node", "a"),
                    ("feature", "live"),
                    ("reason", "struct slab has no member obj_exts"),
                ],
                0.0,
            ),
        ];
        let f = fleet("p", &Selector::default(), &fields, &nodes, MINUTES_2).expect("rows");
        assert_eq!(f.rows.len(), 1);
        let r = &f.rows[0];
        assert_eq!((r.alloc_per_s, r.negative_pct), (400.0, 75.0));
        assert!(r.positive_per_s.is_nan(), "not asked: shown as -");
        assert_eq!((r.live_bytes, r.live), (Some(60000.0), None));
        assert_eq!(f.nodes.len(), 2);
        assert_eq!(f.nodes[0].total, 9.0);
        assert_eq!(
            f.nodes[0].features_off.get("live").map(String::as_str),
            Some("struct slab has no member obj_exts"),
            "a feature off is the node's, not a row"
        );
        assert!(f.nodes[1].unreachable.is_some());
    }

    #[test]
    fn missing_series_and_missing_node_labels_are_said_with_the_fix() {
        let none = fleet::<RowLabels>("p", &Selector::default(), &[], &[], MINUTES_2).unwrap_err();
        assert!(none.to_string().contains("podmonitor.yaml"), "{none}");
        let down = fleet(
            "p",
            &Selector::default(),
            &[],
            &[series(&[("node", "a"), ("type", "up")], 0.0)],
            MINUTES_2,
        )
        .unwrap_err();
        assert!(down.to_string().contains("up == 0"), "{down}");
        let unlabelled = fleet(
            "p",
            &Selector::default(),
            &[(Field::Live, vec![series(&[("pod", "p")], 1.0)])],
            &[],
            MINUTES_2,
        )
        .unwrap_err();
        assert!(
            unlabelled.to_string().contains("no node label"),
            "{unlabelled}"
        );
    }

    #[test]
    fn a_node_scraped_for_less_than_the_window_has_its_rates_over_what_was_scraped() {
        let row = |node: &str, value: f64| {
            series(
                &[
                    ("node", node),
                    ("namespace", "n"),
                    ("pod", "p"),
                    ("container", "c"),
                ],
                value,
            )
        };
        let fields = vec![(
            Field::AllocRate,
            vec![row("young", 250.0), row("old", 250.0)],
        )];
        let nodes = vec![
            series(&[("node", "young"), ("type", "scraped_for")], 60.0),
            series(
                &[
                    ("__name__", metric::COUNT),
                    ("node", "young"),
                    ("type", "total"),
                ],
                9.0,
            ),
            series(&[("node", "young"), ("type", "up")], 1.0),
            series(&[("node", "old"), ("type", "up")], 1.0),
        ];
        let f = fleet("p", &Selector::default(), &fields, &nodes, MINUTES_2).expect("rows");
        let by_node: BTreeMap<&str, f64> = f
            .rows
            .iter()
            .map(|r| (r.node.as_str(), r.alloc_per_s))
            .collect();
        assert_eq!(
            by_node["young"], 500.0,
            "rate() spread 60 s of increase over 120 s"
        );
        assert_eq!(by_node["old"], 250.0);
        let lines: BTreeMap<&str, Option<f64>> = f
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.rates_over))
            .collect();
        assert_eq!(lines.get("young"), Some(&Some(60.0)));
        assert!(lines.get("old").is_none_or(|r| r.is_none()));
    }
}

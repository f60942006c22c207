//! `kubectl dentry top`: find a tracer on every relevant node (the DaemonSet's, or a
//! counters-only tracer pod started for the purpose), scrape their /metrics between two
//! moments, and show rates per container. Started pods are always deleted, Ctrl-C included.
use std::{
    collections::{BTreeMap, BTreeSet},
    io::{IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

use futures::{StreamExt as _, stream};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, Client, api::ListParams};

use crate::{
    args::{self, TracerArgs},
    error::{Error, Scope},
    http_get, pods,
    progress::Progress,
    prometheus::{self, Selector, Server},
    rates::{Row, Sample, rows},
    signals::Stop,
    table,
    tracer::{
        launch::{self, Launched, State},
        pod::{COMPONENT_LABEL, NAME_LABEL, Purpose, TracerPod, name_prefix},
        proxy,
    },
};

/// How long a top tracer pod may live: long enough for a long --watch, bounded if the laptop
/// goes away (the pod's deadline removes it).
const TOP_POD_SECS: u64 = 3600;

/// `kubectl dentry top`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl dentry top\n  kubectl dentry top --watch --sort-by negative\n  kubectl dentry top pod/mysql-0 -n prod\n  kubectl dentry top -l app=mysql -A -o json\n  kubectl dentry top --endpoint http://127.0.0.1:9090   # a port-forwarded tracer\n  kubectl dentry top --prometheus http://prometheus.example:9090 --node node-7\n  kubectl dentry top --prometheus-service monitoring/prometheus-operated:9090 -A\n\nUses the DaemonSet's tracers (deploy/) where they run, else starts a counters-only tracer\npod per node and deletes it on exit. Rates are per second between two scrapes --interval apart.\nWith --prometheus or --prometheus-service, the same table comes from the Prometheus that\nscrapes the DaemonSet (one query per column, any number of nodes; rates over --rate-window)."
)]
pub struct Args {
    /// Only this pod (pod/NAME or NAME) and its node.
    #[arg(value_parser = args::pod)]
    pub pod: Option<String>,
    /// Only pods matching this label selector (and their nodes).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Rows from every namespace (the default without -n).
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Time between the scrapes rates are computed over.
    #[arg(long, default_value = "5s", value_parser = args::duration)]
    pub interval: Duration,
    /// Refresh until Ctrl-C.
    #[arg(short = 'w', long)]
    pub watch: bool,
    #[arg(long, value_enum, default_value = "memory")]
    pub sort_by: table::SortBy,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: table::Output,
    /// Tracers handled at once through the API server (started, awaited, scraped, deleted).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// How long one node's tracer may take to answer a scrape; a node that does not answer in
    /// time is shown as unreachable and the others are shown.
    #[arg(long, default_value = "10s", value_parser = args::duration)]
    pub node_timeout: Duration,
    /// Read one tracer's /metrics at this URL instead of the cluster.
    #[arg(long, value_name = "URL", conflicts_with_all = ["prometheus", "prometheus_service"])]
    pub endpoint: Option<String>,
    /// Compute the table with PromQL from this Prometheus (its base URL, http://), which
    /// scrapes the DaemonSet's tracers; no tracer pod is started.
    #[arg(long, value_name = "URL", conflicts_with = "prometheus_service")]
    pub prometheus: Option<String>,
    /// Like --prometheus, for an in-cluster Prometheus reached through the API server's
    /// service proxy (PORT: number or name), e.g. monitoring/prometheus-operated:9090.
    #[arg(long, value_name = "NAMESPACE/NAME:PORT", value_parser = prometheus::parse_service)]
    pub prometheus_service: Option<(String, String, String)>,
    /// With --prometheus: the window rates are computed over (PromQL rate()); at least two
    /// of the tracers' scrape intervals. A node scraped for less has its rates over what was.
    #[arg(long, default_value = "2m", value_parser = args::duration)]
    pub rate_window: Duration,
    #[command(flatten)]
    pub tracer: TracerArgs,
}

/// The namespace of pod/NAME and -l; the rows are filtered by it only when -n gave it.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub name: String,
    pub explicit: bool,
}

/// Where one node's metrics come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A tracer pod, through the API server's pod proxy.
    Pod {
        namespace: String,
        name: String,
        node: String,
    },
    /// A tracer's /metrics URL, read directly (`--endpoint`).
    Url(String),
}

impl Source {
    fn node(&self) -> String {
        match self {
            Source::Pod { node, .. } => node.clone(),
            Source::Url(url) => url
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_owned))
                .unwrap_or_else(|| url.clone()),
        }
    }
}

/// Which rows to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    namespace: Option<String>,
    pods: Option<BTreeSet<(String, String)>>,
}

impl Filter {
    fn keep(&self, row: &Row) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|n| *n == row.key.namespace)
            && self
                .pods
                .as_ref()
                .is_none_or(|p| p.contains(&(row.key.namespace.clone(), row.key.pod.clone())))
    }
}

async fn scrape(client: Option<&Client>, source: &Source) -> Result<Sample, Error> {
    let bytes = match (source, client) {
        (
            Source::Pod {
                namespace, name, ..
            },
            Some(client),
        ) => proxy::get(client, namespace, name, "metrics").await?,
        (Source::Url(url), _) => http_get::get_url("--endpoint", url).await?,
        (Source::Pod { .. }, None) => return Err(Error::Local("no cluster client".into())),
    };
    let text = String::from_utf8_lossy(&bytes);
    Sample::parse(&text).map_err(|e| Error::Local(format!("{}: {e}", source.node())))
}

/// A scrape stamped when its answer arrives: a slow node must not skew the other nodes'
/// rates, and its own rate is over its own two scrapes.
/// One scrape and when it was answered; a tracer silent for `timeout` is an error.
async fn stamped(
    client: Option<&Client>,
    source: &Source,
    timeout: Duration,
) -> (Instant, Result<Sample, Error>) {
    let sample = tokio::time::timeout(timeout, scrape(client, source))
        .await
        .unwrap_or_else(|_| {
            Err(Error::NodeSilent {
                node: source.node(),
                secs: timeout.as_secs(),
            })
        });
    (Instant::now(), sample)
}

/// Runs `futures` at most `limit` at a time (an API server serves a bounded number of
/// requests at once, whatever the node count); results in order.
async fn bounded<T>(
    limit: u16,
    futures: impl IntoIterator<Item = impl Future<Output = T>>,
) -> Vec<T> {
    stream::iter(futures)
        .buffered(usize::from(limit.max(1)))
        .collect()
        .await
}

/// `--endpoint URL`: one tracer, no cluster.
pub async fn run_endpoint(url: &str, req: &Args) -> Result<(), Error> {
    let url = if url.ends_with("/metrics") {
        url.to_owned()
    } else {
        format!("{}/metrics", url.trim_end_matches('/'))
    };
    show(
        None,
        vec![(Source::Url(url), None)],
        &Filter::default(),
        req,
    )
    .await
}

pub async fn run(client: &Client, ns: &Namespace, req: &Args) -> Result<(), Error> {
    // First: from the moment a pod may exist, every stop signal must lead to its deletion.
    let mut stop = Stop::install()?;
    let mut progress = Progress::new();
    progress.set("finding nodes");
    let (nodes, filter) = plan(client, ns, req).await?;
    if nodes.is_empty() {
        return Err(Error::Local(
            "no Ready node to run on (check `kubectl get nodes`, or --node)".into(),
        ));
    }
    let existing = daemonset_pods(client).await;
    let mut sources: Vec<(Source, Baseline)> = Vec::new();
    let mut to_launch = Vec::new();
    for node in &nodes {
        match existing.get(node) {
            Some(s) => sources.push((s.clone(), None)),
            None => to_launch.push(node.clone()),
        }
    }
    progress.set(format!(
        "{} node(s): {} with the DaemonSet's tracer, starting {} tracer pod(s)",
        nodes.len(),
        sources.len(),
        to_launch.len()
    ));
    let launched: Vec<Result<Launched, Error>> = bounded(
        req.concurrency,
        to_launch.iter().map(|node| {
            let spec = TracerPod {
                name_prefix: name_prefix("top", node),
                namespace: req
                    .tracer
                    .tracer_namespace
                    .clone()
                    .unwrap_or_else(|| ns.name.clone()),
                node: node.clone(),
                image: req.tracer.image.clone(),
                duration_secs: TOP_POD_SECS,
                target: None,
                purpose: Purpose::Top,
                privileged: req.tracer.privileged,
            };
            async move { launch::create(client, &spec).await }
        }),
    )
    .await;
    let mut started = Vec::new();
    let mut first_error = None;
    for l in launched {
        match l {
            Ok(l) => started.push(l),
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    // From here on the started pods are ours to delete, whatever happens.
    let outcome = tokio::select! {
        r = async {
            if let Some(e) = first_error {
                return Err(e);
            }
            let ready = wait_ready(client, &started, req, &mut progress).await?;
            sources.extend(ready);
            drop(progress);
            show(Some(client), sources, &filter, req).await
        } => r,
        _ = stop.recv() => Ok(()),
    };
    let deleted = bounded(
        req.concurrency,
        started.iter().map(|l| launch::delete(client, l)),
    )
    .await;
    outcome?;
    deleted.into_iter().collect::<Result<Vec<()>, Error>>()?;
    Ok(())
}

/// The nodes to cover and the rows to show.
async fn plan(client: &Client, ns: &Namespace, req: &Args) -> Result<(Vec<String>, Filter), Error> {
    if let Some(pod) = &req.pod {
        let t = pods::resolve(client, &ns.name, pod, None).await?;
        let filter = Filter {
            namespace: None,
            pods: Some(BTreeSet::from([(t.namespace, t.name)])),
        };
        return Ok((vec![t.node], filter));
    }
    if let Some(selector) = &req.selector {
        let searched = (!req.all_namespaces).then_some(ns.name.as_str());
        let pods = selected_pods(client, searched, selector).await?;
        let nodes = pods
            .iter()
            .filter_map(|(_, node)| node.clone())
            .filter(|n| req.node.as_ref().is_none_or(|only| only == n))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        return Ok((
            nodes,
            Filter {
                namespace: None,
                pods: Some(pods.into_iter().map(|(k, _)| k).collect()),
            },
        ));
    }
    let api: Api<Node> = Api::all(client.clone());
    let nodes = api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::from_kube(e, "list", "nodes", Scope(None)))?;
    let mut ready = Vec::new();
    for n in nodes.items {
        let name = n.metadata.name.clone().unwrap_or_default();
        if req.node.as_ref().is_some_and(|only| *only != name) {
            continue;
        }
        match pods::not_ready_reason(&n) {
            None => ready.push(name),
            Some(reason) => eprintln!("skipping node {name}: NotReady{reason}"),
        }
    }
    if let Some(only) = &req.node
        && ready.is_empty()
    {
        pods::node_ready(client, only).await?;
    }
    let filter = Filter {
        namespace: (ns.explicit && !req.all_namespaces).then(|| ns.name.clone()),
        pods: None,
    };
    Ok((ready, filter))
}

/// The pods `-l` selects in `searched` (every namespace if `None`), as (namespace, name) and
/// node; none is an error naming where it looked.
async fn selected_pods(
    client: &Client,
    searched: Option<&str>,
    selector: &str,
) -> Result<Vec<((String, String), Option<String>)>, Error> {
    let api: Api<Pod> = match searched {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| Error::from_kube(e, "list", "pods", Scope(searched.map(str::to_owned))))?;
    if pods.items.is_empty() {
        return Err(Error::Local(format!(
            "no pods match -l {selector}{} (check the selector, or use -A)",
            Scope(searched.map(str::to_owned))
        )));
    }
    Ok(pods
        .items
        .into_iter()
        .map(|p| {
            (
                (
                    p.metadata.namespace.unwrap_or_default(),
                    p.metadata.name.unwrap_or_default(),
                ),
                p.spec.and_then(|s| s.node_name),
            )
        })
        .collect())
}

/// Running DaemonSet tracer pods by node (none if listing them is not allowed).
async fn daemonset_pods(client: &Client) -> BTreeMap<String, Source> {
    let api: Api<Pod> = Api::all(client.clone());
    let selector = format!(
        "{}={},{COMPONENT_LABEL}=daemonset",
        NAME_LABEL.0, NAME_LABEL.1
    );
    let Ok(pods) = api.list(&ListParams::default().labels(&selector)).await else {
        return BTreeMap::new();
    };
    pods.items
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| {
            let node = p.spec?.node_name?;
            Some((
                node.clone(),
                Source::Pod {
                    namespace: p.metadata.namespace?,
                    name: p.metadata.name?,
                    node,
                },
            ))
        })
        .collect()
}

/// Waits until every started tracer runs and answers /metrics.
async fn wait_ready(
    client: &Client,
    started: &[Launched],
    req: &Args,
    progress: &mut Progress,
) -> Result<Vec<(Source, Baseline)>, Error> {
    let timeout = req.tracer.timeout;
    progress.set(format!(
        "waiting for {} tracer pod(s) to start and answer",
        started.len()
    ));
    // Together, up to --concurrency: on a real cluster each wait is a few round trips, and 50
    // nodes in turn would add up.
    let deadline = Instant::now() + timeout;
    bounded(
        req.concurrency,
        started
            .iter()
            .map(|l| ready_one(client, l, deadline, timeout)),
    )
    .await
    .into_iter()
    .collect()
}

/// Waits until one started tracer runs and answers /metrics; its first answer is the baseline.
async fn ready_one(
    client: &Client,
    l: &Launched,
    deadline: Instant,
    timeout: Duration,
) -> Result<(Source, Baseline), Error> {
    let timed_out = |state: &str| Error::Timeout {
        pod: format!("{}/{}", l.namespace, l.name),
        secs: timeout.as_secs(),
        state: state.into(),
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    // The pods are awaited together: one line of progress for all of them, from the caller.
    let mut quiet = Progress::silent();
    let state = tokio::time::timeout(remaining, launch::wait_started(client, l, &mut quiet))
        .await
        .map_err(|_| timed_out("not started"))??;
    if let State::Exited(_) = state {
        return Err(launch::failure(client, l).await);
    }
    let source = Source::Pod {
        namespace: l.namespace.clone(),
        name: l.name.clone(),
        node: l.node.clone(),
    };
    loop {
        match scrape(Some(client), &source).await {
            Ok(sample) => return Ok((source, Some((Instant::now(), sample)))),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                // A tracer that failed to attach has exited: say why now.
                if launch::exit_code_now(client, l).await.is_some() {
                    return Err(launch::failure(client, l).await);
                }
            }
            Err(_) => return Err(timed_out("/metrics not answering")),
        }
    }
}

/// A first scrape already taken (when a started tracer was found answering).
type Baseline = Option<(Instant, Sample)>;

/// Scrapes, waits an interval, scrapes again, prints; with --watch, for ever.
async fn show(
    client: Option<&Client>,
    sources: Vec<(Source, Baseline)>,
    filter: &Filter,
    req: &Args,
) -> Result<(), Error> {
    let (sources, baselines): (Vec<Source>, Vec<Baseline>) = sources.into_iter().unzip();
    let mut before: Vec<(Instant, Option<Sample>)> = bounded(
        req.concurrency,
        sources.iter().zip(baselines).map(|(s, b)| async move {
            match b {
                Some((at, sample)) => (at, Some(sample)),
                None => {
                    let (at, sample) = stamped(client, s, req.node_timeout).await;
                    (at, sample.ok())
                }
            }
        }),
    )
    .await;
    let scrape_all = || {
        bounded(
            req.concurrency,
            sources.iter().map(|s| stamped(client, s, req.node_timeout)),
        )
    };
    let terminal = std::io::stdout().is_terminal();
    loop {
        tokio::time::sleep(req.interval).await;
        let now = scrape_all().await;
        let mut all_rows = Vec::new();
        let mut nodes = Vec::new();
        let mut failures = Vec::new();
        for ((source, (at, result)), prev) in sources.iter().zip(now).zip(before.iter_mut()) {
            match result {
                Ok(sample) => {
                    let node = source.node();
                    if let Some(old) = &prev.1 {
                        let secs = at.duration_since(prev.0).as_secs_f64();
                        all_rows.extend(rows(old, &sample, secs, &node));
                    }
                    nodes.push(table::NodeLine::new(node, &sample));
                    *prev = (at, Some(sample));
                }
                Err(e) => {
                    nodes.push(table::NodeLine::unreachable(source.node(), &e));
                    failures.push(e);
                }
            }
        }
        if failures.len() == sources.len() && !failures.is_empty() {
            return Err(failures.swap_remove(0));
        }
        if !print(all_rows, &nodes, filter, req, terminal) {
            return Ok(());
        }
    }
}

/// Filters, sorts and prints one round; whether to go on (--watch, and stdout still open).
fn print(
    mut rows: Vec<Row>,
    nodes: &[table::NodeLine],
    filter: &Filter,
    req: &Args,
    terminal: bool,
) -> bool {
    rows.retain(|r| filter.keep(r));
    table::sort(&mut rows, req.sort_by);
    let text = table::render(&rows, nodes, req.output);
    let mut out = std::io::stdout().lock();
    let written = if req.watch && terminal {
        write!(out, "\x1b[H\x1b[2J{text}")
    } else if req.watch {
        writeln!(out, "{text}")
    } else {
        write!(out, "{text}")
    };
    written.and_then(|()| out.flush()).is_ok() && req.watch
}

/// `--prometheus` / `--prometheus-service`: the table from PromQL, every --interval with
/// --watch. Nothing is started in the cluster; `client` is there for -l, pod/NAME without
/// -n, and the service proxy.
pub async fn run_prometheus(
    client: Option<&Client>,
    ns: &Namespace,
    server: &Server,
    req: &Args,
) -> Result<(), Error> {
    let mut selector = Selector {
        node: req.node.clone(),
        namespace: (ns.explicit && !req.all_namespaces).then(|| ns.name.clone()),
    };
    let mut filter = Filter {
        namespace: selector.namespace.clone(),
        pods: None,
    };
    if let Some(pod) = &req.pod {
        selector.namespace = Some(ns.name.clone());
        filter.pods = Some(BTreeSet::from([(ns.name.clone(), pod.clone())]));
    } else if let (Some(labels), Some(client)) = (&req.selector, client) {
        let searched = (!req.all_namespaces).then(|| ns.name.clone());
        let keys = selected_pods(client, searched.as_deref(), labels).await?;
        selector.namespace = searched;
        filter.pods = Some(keys.into_iter().map(|(k, _)| k).collect());
    }
    let terminal = std::io::stdout().is_terminal();
    loop {
        let fleet = prometheus::read(server, &selector, req.rate_window, req.output).await?;
        if !print(fleet.rows, &fleet.nodes, &filter, req, terminal) {
            return Ok(());
        }
        tokio::time::sleep(req.interval).await;
    }
}

//! `trace deploy/NAME` (and sts, ds, rs, job, -l): every pod the selector matches, one tracer
//! pod per node scoped to that node's matching pods. The pod watch drives it: a pod scheduled
//! to a new node gets that node a tracer, one added on a traced node is added to its tracer,
//! a node whose pods are all gone has its tracer stopped, and the trace ends once no pod is
//! left. Lines are merged in time order (`merge`); stderr ends with a summary per pod.
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client,
    runtime::{WatchStreamExt as _, watcher},
};
use tokio::sync::{mpsc, watch};

use super::{
    Args, KEEP_SECS, Output, SUMMARY_WAIT,
    merge::Merge,
    node::{self, Launches, Msg, NodeTracer, Over},
    tally::Tally,
};
use crate::{
    error::{Error, Scope},
    pods::{self, workload},
    progress::Progress,
    signals::Stop,
    tracer::{
        launch,
        log::{self as tracer_log, Line},
        pod::{Purpose, TracerPod, name_prefix},
    },
};

/// How long the trace outlives its last pod, for a replacement to appear (a rolling restart,
/// a Job's retry).
const EMPTY_GRACE: Duration = Duration::from_secs(5);

/// What to trace.
pub struct Plan {
    /// For messages: `deployment/web`, `-l app=web`.
    pub what: String,
    /// For tracer pod names.
    pub short: String,
    pub selector: String,
    /// `None`: every namespace.
    pub namespace: Option<String>,
    /// A Job's name: its trace ends when the Job is over, not when a pod of it ends.
    pub job: Option<String>,
}

/// Why the trace ended.
#[derive(Clone, Copy)]
enum End {
    Signal(&'static str),
    Gone,
    /// --duration, or a tracer that finished by itself.
    Finished,
    MaxEvents,
    ReaderGone,
}

impl End {
    /// Whether stdout takes no more lines.
    fn closes_stdout(end: Option<End>) -> bool {
        matches!(end, Some(End::MaxEvents | End::ReaderGone))
    }
}

type Key = (String, String);

/// A matching pod that runs, or will, on a node.
struct Target {
    namespace: String,
    uid: String,
    node: String,
}

struct Node {
    uids: watch::Sender<Vec<String>>,
    attached: bool,
}

/// The trace's state, changed by the pod watch, the node tracers and the clock.
struct Trace<'a> {
    client: &'a Client,
    plan: &'a Plan,
    req: &'a Args,
    progress: Progress,
    out: mpsc::UnboundedSender<Msg>,
    launches: Launches,
    /// Every pod the selector matches; `relist` collects a re-list's pods.
    matching: BTreeMap<Key, Pod>,
    relist: Option<BTreeMap<Key, Pod>>,
    synced: bool,
    ever_targeted: bool,
    nodes: HashMap<String, Node>,
    /// Nodes whose tracer failed, with the error's exit code; they are not retried.
    failed: BTreeMap<String, u8>,
    /// Nodes whose tracer attached: one is enough for the trace to count as run.
    attached_ever: usize,
    /// A node's tracer reached its --duration (or a cap) and ended by itself.
    finished_any: bool,
    empty_since: Option<Instant>,
    end: Option<End>,
    merge: Merge,
    tally: Tally,
    header: bool,
    written: u64,
}

pub async fn run(client: &Client, plan: Plan, req: &Args) -> Result<(), Error> {
    let mut stop = Stop::install()?;
    let scope = Scope(plan.namespace.clone());
    let api: Api<Pod> = match &plan.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut pods = watcher(api, watcher::Config::default().labels(&plan.selector))
        .default_backoff()
        .boxed();
    let (out, mut msgs) = mpsc::unbounded_channel();
    let mut t = Trace {
        client,
        plan: &plan,
        req,
        progress: Progress::new(),
        out,
        launches: Arc::new(Mutex::new(Vec::new())),
        matching: BTreeMap::new(),
        relist: None,
        synced: false,
        ever_targeted: false,
        nodes: HashMap::new(),
        failed: BTreeMap::new(),
        finished_any: false,
        attached_ever: 0,
        empty_since: None,
        end: None,
        merge: Merge::default(),
        tally: Tally::default(),
        header: false,
        written: 0,
    };
    t.progress
        .set(format!("finding the pods of {}{scope}", plan.what));
    let started = tokio::time::Instant::now();
    let mut leave_by: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut stdout = std::io::stdout().lock();
    let outcome = loop {
        tokio::select! {
            event = pods.next(), if t.end.is_none() => match event {
                Some(Ok(event)) => {
                    if let Err(e) = t.on_pod_event(event) {
                        break Err(e);
                    }
                }
                Some(Err(e)) if !t.synced => break Err(launch::watch_error(e, scope.clone())),
                Some(Err(e)) => tracing::warn!("the pod watch failed, retrying: {e}"),
                None => {
                    let message = "the pod watch ended".into();
                    break Err(Error::Api { verb: "watch", resource: "pods", scope: scope.clone(), message });
                }
            },
            Some(msg) = msgs.recv() => {
                if let Err(e) = t.on_msg(msg, &mut stdout) {
                    break Err(e);
                }
            }
            signal = stop.recv() => {
                if t.end.is_some() {
                    // A second signal: leave now; the tracer pods are deleted below.
                    leave_by = Some(tokio::time::Instant::now());
                } else {
                    t.progress.println(&format!("{signal}: stopping the tracers (Ctrl-C again to leave now)"));
                    t.end = Some(End::Signal(signal));
                }
            }
            _ = tick.tick() => {}
        }
        let drain = t.end.is_some() && t.nodes.is_empty();
        t.write(&mut stdout, drain);
        let now = tokio::time::Instant::now();
        if t.end.is_none() && now >= started + req.duration {
            t.end = Some(End::Finished);
        }
        if t.end.is_none() && t.synced && !t.ever_targeted && now >= started + req.wait_timeout {
            break Err(t.never_scheduled());
        }
        if t.end.is_none() {
            t.end = t.gone().await;
        }
        if t.end.is_some() && leave_by.is_none() {
            // Stop every tracer; each prints its summary as its pod is deleted.
            for n in t.nodes.values() {
                n.uids.send_replace(Vec::new());
            }
            leave_by = Some(now + SUMMARY_WAIT + Duration::from_secs(2));
        }
        if t.end.is_some() && (t.nodes.is_empty() || leave_by.is_some_and(|by| now >= by)) {
            break Ok(());
        }
    };
    t.write(&mut stdout, true);
    drop(stdout);
    let kept = delete_all(client, &t.launches, req.keep && outcome.is_ok()).await;
    outcome?;
    if !t.tally.is_empty() {
        t.progress.println(&t.tally.render());
    }
    let what = &plan.what;
    match t.end {
        Some(End::Signal(signal)) => t.progress.finish(format!("stopped by {signal}")),
        Some(End::Gone) => t
            .progress
            .finish(format!("no pod of {what} is left: the trace is over")),
        Some(End::MaxEvents) => t.progress.finish(format!(
            "{} events (--max-events): the trace is over",
            t.written
        )),
        Some(End::Finished) => t.progress.finish("the trace is over (--duration)"),
        Some(End::ReaderGone) | None => tracing::debug!("stdout closed"),
    }
    if !kept.is_empty() {
        eprintln!(
            "kept tracer pods {}: they serve their files for {}h (`kubectl dentry fetch traces`; \
             `kubectl dentry cleanup` removes them)",
            kept.join(", "),
            KEEP_SECS / 3600
        );
    }
    if t.attached_ever == 0 && !t.failed.is_empty() {
        return Err(t.every_node_failed());
    }
    Ok(())
}

impl Trace<'_> {
    fn on_pod_event(&mut self, event: watcher::Event<Pod>) -> Result<(), Error> {
        match event {
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(p) => {
                if let Some(r) = self.relist.as_mut() {
                    r.insert(key(&p), p);
                }
            }
            watcher::Event::InitDone => {
                self.matching = self.relist.take().unwrap_or_default();
                if !self.synced {
                    self.synced = true;
                    let live = self.matching.values().any(|p| pods::finished(p).is_none());
                    if !live && !self.req.wait {
                        return Err(Error::NoPodsMatch {
                            what: self.plan.what.clone(),
                            scope: Scope(self.plan.namespace.clone()),
                        });
                    }
                }
            }
            watcher::Event::Apply(p) => {
                self.matching.insert(key(&p), p);
            }
            watcher::Event::Delete(p) => {
                self.matching.remove(&key(&p));
            }
        }
        if self.synced {
            self.reconcile();
        }
        Ok(())
    }

    /// Gives each node's tracer its pods now: new nodes get a tracer, traced nodes their
    /// current pods (none stops the tracer).
    fn reconcile(&mut self) {
        let targets = targets(&self.matching);
        self.ever_targeted |= !targets.is_empty();
        self.empty_since = match (targets.is_empty(), self.empty_since) {
            (true, None) if self.ever_targeted => Some(Instant::now()),
            (true, since) => since,
            (false, _) => None,
        };
        let mut per_node: BTreeMap<&str, Vec<&Target>> = BTreeMap::new();
        for t in targets.values() {
            per_node.entry(t.node.as_str()).or_default().push(t);
        }
        for (name, n) in &self.nodes {
            let uids = per_node
                .get(name.as_str())
                .map(|on| uids(on))
                .unwrap_or_default();
            n.uids.send_if_modified(|now| {
                let changed = *now != uids;
                *now = uids;
                changed
            });
        }
        for (name, on_node) in per_node {
            if self.nodes.contains_key(name) || self.failed.contains_key(name) {
                continue;
            }
            let (tx, rx) = watch::channel(uids(&on_node));
            let spec = self.tracer_spec(name, &on_node[0].namespace, uids(&on_node));
            self.progress
                .set(format!("starting a tracer on node {name}"));
            tokio::spawn(node::run(
                self.client.clone(),
                NodeTracer {
                    spec,
                    uids: rx,
                    out: self.out.clone(),
                    launches: self.launches.clone(),
                    timeout: self.req.tracer.timeout,
                    keep: self.req.keep,
                },
            ));
            let node = Node {
                uids: tx,
                attached: false,
            };
            self.nodes.insert(name.to_owned(), node);
        }
    }

    fn on_msg(&mut self, msg: Msg, stdout: &mut impl std::io::Write) -> Result<(), Error> {
        match msg {
            Msg::Attached { node, mode } => {
                if let Some(n) = self.nodes.get_mut(&node) {
                    n.attached = true;
                    self.attached_ever += 1;
                    let pods = names_on(&self.matching, &node);
                    self.progress
                        .println(&format!("[{node}] tracing {pods} ({mode})"));
                }
                let running = self.nodes.values().filter(|n| n.attached).count();
                self.progress.set(format!(
                    "tracing {} on {running} node(s); Ctrl-C stops",
                    self.plan.what
                ));
            }
            Msg::Line { node, kind, text } => match kind {
                // Each tracer prints the header before its lines: the first one is the trace's.
                Line::Header if !self.header && self.req.output == Output::Tsv => {
                    self.header = true;
                    if writeln!(stdout, "{text}").is_err() {
                        self.end = Some(End::ReaderGone);
                    }
                }
                Line::Header => {}
                Line::Event if !End::closes_stdout(self.end) => self.merge.push(node, text),
                Line::Event => {}
                _ => self.progress.println(&format!("[{node}] {text}")),
            },
            Msg::Over { node, how } => {
                self.nodes.remove(&node);
                match how {
                    // Every tracer runs for the same --duration from its own start: the others
                    // end by themselves too, and their lines still on the way are kept (ending
                    // them now lost the stream of a node whose tracer started later).
                    Over::ByItself => self.finished_any = true,
                    Over::Stopped => {}
                    Over::Failed(e) => {
                        self.progress.println(&format!("[{node}] {e}"));
                        self.failed.insert(node, e.exit_code());
                    }
                }
                if self.finished_any && self.nodes.is_empty() {
                    self.end.get_or_insert(End::Finished);
                }
                // Nothing runs, nothing ran, and every node with a pod failed: nothing will.
                let hopeless = targets(&self.matching)
                    .values()
                    .all(|t| self.failed.contains_key(&t.node));
                if self.end.is_none()
                    && self.nodes.is_empty()
                    && self.attached_ever == 0
                    && !self.failed.is_empty()
                    && hopeless
                {
                    return Err(self.every_node_failed());
                }
            }
        }
        Ok(())
    }

    /// Writes the lines due (all with `drain`), counting them per pod; --max-events and a
    /// closed stdout end the trace.
    fn write(&mut self, stdout: &mut impl std::io::Write, drain: bool) {
        let lines = if drain {
            self.merge.drain()
        } else {
            self.merge.due(Instant::now())
        };
        for (node, line) in lines {
            if End::closes_stdout(self.end) {
                return;
            }
            let written = match self.req.output {
                Output::Tsv => writeln!(stdout, "{line}"),
                Output::Json => writeln!(stdout, "{}", tracer_log::event_json(&line)),
            };
            if written.is_err() {
                self.end = Some(End::ReaderGone);
                return;
            }
            self.tally.add(&node, &line);
            self.written += 1;
            if self.req.max_events.is_some_and(|max| self.written >= max) {
                self.end.get_or_insert(End::MaxEvents);
            }
        }
    }

    /// `Some(End::Gone)` once no pod has been left for `EMPTY_GRACE` (for a Job, once it is
    /// also over: a failed pod's retry is still to come).
    async fn gone(&mut self) -> Option<End> {
        let since = self.empty_since?;
        if since.elapsed() < EMPTY_GRACE {
            return None;
        }
        if let Some(job) = &self.plan.job {
            let namespace = self.plan.namespace.as_deref().unwrap_or_default();
            if !workload::job_over(self.client, namespace, job).await {
                self.empty_since = Some(Instant::now());
                return None;
            }
        }
        Some(End::Gone)
    }

    fn never_scheduled(&self) -> Error {
        Error::WaitTimeout {
            pod: format!("no pod of {} was", self.plan.what),
            secs: self.req.wait_timeout.as_secs(),
            why: match self.matching.values().next() {
                None => "none was created".into(),
                Some(p) => pods::unscheduled_reason(p),
            },
        }
    }

    fn every_node_failed(&self) -> Error {
        Error::EveryNodeFailed {
            nodes: self.failed.len(),
            // The first node's by name: runs on the same cluster exit alike.
            code: self.failed.values().next().copied().unwrap_or(1),
        }
    }

    fn tracer_spec(&self, node: &str, namespace: &str, uids: Vec<String>) -> TracerPod {
        let req = self.req;
        TracerPod {
            name_prefix: name_prefix("trace", &self.plan.short),
            namespace: req
                .tracer
                .tracer_namespace
                .clone()
                .unwrap_or_else(|| namespace.to_owned()),
            node: node.to_owned(),
            image: req.tracer.image.clone(),
            duration_secs: req.duration.as_secs().max(1),
            target: Some(self.plan.what.clone()),
            purpose: Purpose::Trace {
                target_uids: uids,
                adds: true,
                container_id: None,
                patterns: req.patterns.clone().map(|p| p.0).unwrap_or_default(),
                max_events: req.max_events,
                linger_secs: req.keep.then_some(KEEP_SECS),
                // A pod scheduled a moment ago may have no cgroup yet: the tracer arms for it.
                pending: true,
                host_paths: req.host_paths,
            },
            privileged: req.tracer.privileged,
        }
    }
}

fn key(pod: &Pod) -> Key {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

fn uids(targets: &[&Target]) -> Vec<String> {
    targets.iter().map(|t| t.uid.clone()).collect()
}

/// The pods to trace now: scheduled, and not finished.
fn targets(matching: &BTreeMap<Key, Pod>) -> BTreeMap<Key, Target> {
    matching
        .iter()
        .filter(|(_, p)| pods::finished(p).is_none())
        .filter_map(|(k, p)| {
            let node = p
                .spec
                .as_ref()?
                .node_name
                .clone()
                .filter(|n| !n.is_empty())?;
            let target = Target {
                namespace: k.0.clone(),
                uid: p.metadata.uid.clone().unwrap_or_default(),
                node,
            };
            Some((k.clone(), target))
        })
        .collect()
}

fn names_on(matching: &BTreeMap<Key, Pod>, node: &str) -> String {
    let names: Vec<String> = targets(matching)
        .iter()
        .filter(|(_, t)| t.node == node)
        .map(|((ns, name), _)| format!("{ns}/{name}"))
        .collect();
    format!("pod(s) {}", names.join(", "))
}

/// Deletes every tracer pod the trace created (unless kept); returns the kept ones' names.
async fn delete_all(client: &Client, launches: &Launches, keep: bool) -> Vec<String> {
    let all = launches.lock().map(|l| l.clone()).unwrap_or_default();
    if keep {
        return all
            .iter()
            .map(|l| format!("{}/{}", l.namespace, l.name))
            .collect();
    }
    for l in &all {
        if let Err(e) = launch::delete(client, l).await {
            eprintln!("{e}");
        }
    }
    Vec::new()
}

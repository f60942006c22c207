//! `kubectl dentry trace`: one pod (`one`), or every pod of a workload or a selector, one
//! tracer pod per node (`many`: `node` runs one tracer, `merge` orders their lines, `tally`
//! sums them per pod).
mod many;
mod merge;
mod node;
mod one;
mod tally;

use std::time::Duration;

use kube::Client;

use crate::{
    args::{self, Patterns, TracerArgs},
    error::Error,
    pods::workload::{self, Kind, Ref},
};

/// How long a kept tracer pod serves its files after the trace.
pub const KEEP_SECS: u64 = 3600;
/// After a stop signal, how long to wait for the tracer's summary before leaving anyway.
pub(crate) const SUMMARY_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Tsv,
    Json,
}

/// `kubectl dentry trace`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl dentry trace pod/mysql-0 --patterns=.ibd,#sql\n  kubectl dentry trace mysql-0 -c mysql --duration 5m > mysql.tsv\n  kubectl dentry trace pod/web-1 -n shop -o json | jq .path\n  kubectl dentry trace pod/mysql-0 --keep --duration 1h   # then: kubectl dentry fetch traces\n  kubectl dentry trace pod/batch-7x2k --wait             # Pending or not created yet: traced from its start\n  kubectl dentry trace deploy/web -n shop                 # every replica, one tracer per node\n  kubectl dentry trace sts/mysql --patterns=.ibd\n  kubectl dentry trace ds/fluentd --duration 1m\n  kubectl dentry trace rs/web-7d9f8 --max-events 10000\n  kubectl dentry trace job/reindex --wait                # created next: traced from its first lookup\n  kubectl dentry trace -l app=web -A -o json\n\nOnly trace lines go to stdout, so | grep and | awk work; for several pods they are merged in\ntime order (within 1 s) and the pod column tells them apart. Ctrl-C stops the trace, deletes\nthe tracer pods and prints the tracers' summaries (top paths, top directories of negative\nlookups), then a summary per pod. A workload's trace ends by itself when its pods are gone."
)]
pub struct Args {
    /// What to trace: pod/NAME (or NAME), or every pod of deploy/NAME, sts/NAME, ds/NAME,
    /// rs/NAME, job/NAME.
    #[arg(value_parser = workload::parse, value_name = "TARGET", required_unless_present = "selector", conflicts_with = "selector")]
    pub target: Option<Ref>,
    /// Trace every pod matching this label selector (in the namespace, or everywhere with -A).
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// With -l: search every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only this container of the pod (pod/NAME only).
    #[arg(short = 'c', long, conflicts_with = "wait")]
    pub container: Option<String>,
    /// Wait for pods that are not created or not scheduled yet, and trace them from their
    /// start: the tracer is armed in the kernel for a pod's cgroup before the kubelet creates
    /// it.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits for a pod to be created and scheduled.
    #[arg(long, default_value = "5m", value_parser = args::duration, requires = "wait")]
    pub wait_timeout: Duration,
    /// Only paths containing one of these comma-separated substrings.
    #[arg(long, value_parser = args::patterns, value_name = "A,B,...")]
    pub patterns: Option<Patterns>,
    /// Stop after this long (Ctrl-C stops earlier); for a workload, the whole trace.
    #[arg(long, default_value = "10m", value_parser = args::duration)]
    pub duration: Duration,
    /// Stop after this many events (for a workload, over all its pods).
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Write lookups in the containers' overlay layers with the host's paths (relative to the
    /// filesystem holding the layer) instead of the container's.
    #[arg(long)]
    pub host_paths: bool,
    /// Leave the tracer pod when done: it serves its trace files for an hour for
    /// `fetch traces` (and `cleanup` removes it).
    #[arg(long)]
    pub keep: bool,
    /// Output format of stdout.
    #[arg(short = 'o', long, value_enum, default_value = "tsv")]
    pub output: Output,
    #[command(flatten)]
    pub tracer: TracerArgs,
}

pub async fn run(client: &Client, namespace: &str, req: &Args) -> Result<(), Error> {
    if req.all_namespaces && req.selector.is_none() {
        return Err(Error::Usage(
            "-A searches every namespace for -l SELECTOR's pods; a named target is in one \
             namespace (pass -n NAMESPACE)"
                .into(),
        ));
    }
    match (&req.target, &req.selector) {
        (
            Some(Ref {
                kind: Kind::Pod,
                name,
            }),
            None,
        ) => one::run(client, namespace, name, req).await,
        _ if req.container.is_some() => Err(Error::Usage(
            "-c picks a container of one pod: pass pod/NAME, or trace the whole pods".into(),
        )),
        (Some(of), None) => {
            let selector = workload::selector(client, namespace, of).await?;
            let job = (of.kind == Kind::Job).then(|| of.name.clone());
            let plan = many::Plan {
                what: of.to_string(),
                short: of.name.clone(),
                selector,
                namespace: Some(namespace.to_owned()),
                job,
            };
            many::run(client, plan, req).await
        }
        (_, Some(selector)) => {
            let plan = many::Plan {
                what: format!("-l {selector}"),
                short: "selector".into(),
                selector: selector.clone(),
                namespace: (!req.all_namespaces).then(|| namespace.to_owned()),
                job: None,
            };
            many::run(client, plan, req).await
        }
        (None, None) => Err(Error::Usage(
            "pass pod/NAME, a workload (deploy/NAME, ...) or -l SELECTOR".into(),
        )),
    }
}

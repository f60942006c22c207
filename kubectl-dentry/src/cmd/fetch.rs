//! `kubectl dentry fetch traces`: download the rotated trace files of tracer pods (kept with
//! `trace --keep`, or the DaemonSet's) through the API server's pod proxy.
use std::path::{Path, PathBuf};

use kube::Client;

use crate::{
    args,
    error::{Error, Scope},
    tracer::{pod::NAME_LABEL, proxy},
};

/// One file as the tracer's `/traces` lists it.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct TraceFile {
    pub name: String,
    pub size: u64,
    pub modified: String,
}

/// `kubectl dentry fetch traces`: what to fetch and where.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl dentry fetch traces\n  kubectl dentry fetch traces --node node-a -d /tmp/traces\n  kubectl dentry fetch traces pod/dentry-trace-mysql-0-x7k2q -n prod --overwrite"
)]
pub struct Args {
    /// Only this tracer pod (pod/NAME or NAME).
    #[arg(value_parser = args::pod)]
    pub pod: Option<String>,
    /// Only tracer pods on this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Where to put the files (a directory per node is made inside).
    #[arg(short = 'd', long, default_value = "dentry-traces")]
    pub dir: PathBuf,
    /// Replace files that already exist.
    #[arg(long)]
    pub overwrite: bool,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Fetched { path: PathBuf, bytes: u64 },
    Skipped { path: PathBuf },
}

/// The tracer pods to fetch from, as (namespace, name, node).
pub async fn tracer_pods(
    client: &Client,
    namespace: Option<&str>,
    req: &Args,
) -> Result<Vec<(String, String, String)>, Error> {
    let pods = crate::cluster::pods_labelled(client, namespace, NAME_LABEL).await?;
    Ok(pods
        .into_iter()
        .filter_map(|p| {
            let name = p.metadata.name?;
            let ns = p.metadata.namespace?;
            let node = p
                .spec
                .and_then(|s| s.node_name)
                .unwrap_or_else(|| "unscheduled".into());
            Some((ns, name, node))
        })
        .filter(|(_, name, node)| {
            req.pod.as_ref().is_none_or(|p| p == name)
                && req.node.as_ref().is_none_or(|n| n == node)
        })
        .collect())
}

/// Lists and downloads one pod's trace files into `<dir>/<node>/`.
pub async fn fetch_pod(
    client: &Client,
    (ns, pod, node): (&str, &str, &str),
    req: &Args,
) -> Result<Vec<Outcome>, Error> {
    let listing = proxy::get(client, ns, pod, "traces").await?;
    let files: Vec<TraceFile> = serde_json::from_slice(&listing).map_err(|e| Error::Api {
        verb: "get",
        resource: "pods/proxy",
        scope: Scope(Some(ns.into())),
        message: format!("{pod}'s /traces is not a trace listing: {e}"),
    })?;
    let dir = req.dir.join(node);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Local(format!("creating {}: {e}", dir.display())))?;
    let mut outcomes = Vec::new();
    for f in files {
        // The tracer serves only its own file names; refuse anything else rather than trust it.
        if f.name.contains('/') || f.name.starts_with('.') {
            continue;
        }
        let path = dir.join(&f.name);
        if path.exists() && !req.overwrite {
            outcomes.push(Outcome::Skipped { path });
            continue;
        }
        let bytes = proxy::get(client, ns, pod, &format!("traces/{}", f.name)).await?;
        write_atomically(&path, &bytes)?;
        outcomes.push(Outcome::Fetched {
            path,
            bytes: bytes.len() as u64,
        });
    }
    Ok(outcomes)
}

/// Writes next to the destination, then renames: a failed download never leaves half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("trace");
    let part = path.with_file_name(format!(".{name}.part"));
    std::fs::write(&part, bytes)
        .and_then(|()| std::fs::rename(&part, path))
        .map_err(|e| Error::Local(format!("writing {}: {e}", path.display())))
}

/// `fetch traces`: every matching tracer pod in turn. A pod that cannot be read (not running,
/// not answering, gone) is reported on stderr and the others are still fetched; the error
/// says how many failed (exit 10), or is the only pod's own when none could be read.
/// `namespace`: `None` searches every namespace.
pub async fn run(client: &Client, namespace: Option<&str>, req: &Args) -> Result<(), Error> {
    let pods = tracer_pods(client, namespace, req).await?;
    if pods.is_empty() {
        return Err(Error::NoTracers(Scope(namespace.map(str::to_owned))));
    }
    let (mut fetched, mut bytes, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for (ns, name, node) in &pods {
        match fetch_pod(client, (ns, name, node), req).await {
            Ok(outcomes) => {
                for outcome in outcomes {
                    match outcome {
                        Outcome::Fetched { path, bytes: n } => {
                            println!("{}\t{n}", path.display());
                            fetched += 1;
                            bytes += n;
                        }
                        Outcome::Skipped { path } => {
                            eprintln!(
                                "skipped {} (exists; --overwrite replaces it)",
                                path.display()
                            );
                            skipped += 1;
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("cannot fetch from tracer pod {ns}/{name} on node {node}: {e}");
                failures.push(e);
            }
        }
    }
    eprintln!(
        "fetched {fetched} file(s), {bytes} bytes, from {} of {} tracer pod(s); skipped {skipped}",
        pods.len() - failures.len(),
        pods.len()
    );
    match failures.len() {
        0 => Ok(()),
        1 if pods.len() == 1 => Err(failures.swap_remove(0)),
        n => Err(Error::Partial {
            failed: n,
            total: pods.len(),
            what: "tracer pod(s) could not be fetched (each is named above)".into(),
        }),
    }
}

//! The background tasks: the owner map rebuilt every --resolve-interval, the counters read
//! into the metrics every --poll-interval.
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use aya::Ebpf;
use dentry_common::names;
use tokio::sync::watch;

use crate::{
    kernel::{counters, live, misses},
    owners::{Owners, Sources, cgroup, cri, kubelet},
    run::retire::Retirement,
    serve::{http::AppState, metrics::DentryState},
};

pub async fn resolve_loop(
    sources: Sources,
    cri_socket: Option<PathBuf>,
    every: Duration,
    tx: watch::Sender<Arc<Owners>>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let began = std::time::Instant::now();
        let cri = cri_names(cri_socket.as_deref(), false).await;
        let sources = sources.clone();
        if let Ok(owners) = tokio::task::spawn_blocking(move || {
            Owners::resolve_with(&sources, cri.as_ref()).began_at(began)
        })
        .await
        {
            let _ = tx.send(Arc::new(owners));
        }
    }
}

/// Names from the runtime's CRI socket, if one is mounted. A failure is not fatal (the
/// kubelet's log directories still name pods): said at start-up, logged at debug level later.
pub async fn cri_names(socket: Option<&Path>, first: bool) -> Option<kubelet::Names> {
    let Some(socket) = socket else {
        if first {
            tracing::info!("no CRI socket mounted: names come from the kubelet's log directories");
        }
        return None;
    };
    match cri::names(socket, Duration::from_secs(2)).await {
        Ok(names) => {
            if first {
                tracing::info!(
                    socket = %socket.display(),
                    pods = names.pods.len(),
                    containers = names.containers.len(),
                    "names from the CRI socket"
                );
            }
            Some(names)
        }
        Err(e) if first => {
            tracing::warn!("{e} (names come from the kubelet's log directories)");
            None
        }
        Err(e) => {
            tracing::debug!("{e}");
            None
        }
    }
}

pub async fn poll_loop(
    ebpf: Arc<Mutex<Ebpf>>,
    state: Arc<AppState>,
    owners: watch::Receiver<Arc<Owners>>,
    every: Duration,
    proc: PathBuf,
    cgroup_root: PathBuf,
) {
    let mut tick = tokio::time::interval(every);
    let mut monotonic = counters::Monotonic::default();
    let mut retirement = Retirement::default();
    // Opened once: every poll asks it whether the cgroups it read still exist.
    let mount = cgroup::Mount::open(&cgroup_root);
    loop {
        tick.tick().await;
        let paths = (proc.as_path(), &mount);
        let kept = (&mut monotonic, &mut retirement);
        if let Err(e) = poll_once(&ebpf, &state, &owners, paths, kept) {
            tracing::warn!("reading counters: {e:#}");
        }
    }
}

fn poll_once(
    ebpf: &Mutex<Ebpf>,
    state: &AppState,
    owners: &watch::Receiver<Arc<Owners>>,
    (proc, mount): (&Path, &cgroup::Mount),
    (monotonic, retirement): (&mut counters::Monotonic, &mut Retirement),
) -> anyhow::Result<()> {
    let (totals, drops, filtered, contended, missed, held, untracked, object_size) = {
        let ebpf = ebpf.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
        let mut totals = counters::per_cgroup(&ebpf)?;
        retirement.filter(&mut totals);
        (
            monotonic.apply(totals),
            counters::per_cpu_total(&ebpf, names::DROPS)?,
            counters::per_cpu_total(&ebpf, names::FILTERED)?,
            counters::per_cpu_total(&ebpf, names::CONTENDED)?,
            misses::total(&ebpf),
            live::held(&ebpf, mount)?,
            counters::per_cpu_total(&ebpf, names::UNTRACKED)?,
            live::object_size(&ebpf),
        )
    };
    let dentry_state = std::fs::read_to_string(proc.join("sys/fs/dentry-state"))
        .ok()
        .and_then(|t| DentryState::parse(&t));
    let cache = std::fs::read_to_string(proc.join("slabinfo"))
        .ok()
        .and_then(|text| live::cache_bytes(&text, live::page_bytes()))
        .or_else(|| {
            // Without slabinfo: dentry-state's count times the object size the programs read.
            let count = dentry_state?.total.max(0) as u64;
            (object_size > 0).then_some(count * object_size)
        });
    let owners = owners.borrow().clone();
    let mut m = state
        .metrics
        .lock()
        .map_err(|_| anyhow::anyhow!("lock poisoned"))?;
    m.update(&totals, &owners, std::time::Instant::now());
    m.set_drops(drops);
    m.set_filtered(filtered);
    m.set_contended(contended);
    m.set_missed(missed);
    m.set_live(&held, &owners, cache);
    m.set_live_untracked(untracked);
    if let Some(s) = dentry_state {
        m.set_dentry_state(s);
    }
    // Metrics, then the kernel: the order every task that takes both locks keeps.
    let mut ebpf = ebpf.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
    let in_slot = counters::slot_cgroups(&ebpf)?;
    let due = retirement.due(
        &totals,
        |id| owners.walked(id),
        |id| mount.exists(id),
        |id, now| m.delivered(id, now),
        &in_slot,
    );
    for &id in &due {
        counters::remove(&mut ebpf, id)?;
        m.forget(id);
    }
    retirement.retired(&due);
    if !due.is_empty() {
        tracing::debug!("retired the counters of {} removed cgroups", due.len());
    }
    Ok(())
}

//! `tracer`: the node binary. Loads the dentry probes, counts per cgroup, reports on exit.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use tracer::{cgroup, counters, probes};

/// Traces the kernel dentry cache per cgroup.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// cgroup v2 directory to report on (repeatable); every cgroup is counted regardless.
    #[arg(long = "target-cgroup", value_name = "DIR")]
    target_cgroups: Vec<PathBuf>,
    /// Stop after this long (e.g. 30s, 5m); default: until SIGINT or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the cause chain joined, so the user sees cause and fix together.
            eprintln!("tracer: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<()> {
    let targets = args
        .target_cgroups
        .iter()
        .map(|dir| {
            cgroup::id_of(dir)
                .map(|id| (id, dir.clone()))
                .with_context(|| format!("--target-cgroup {}", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut ebpf = probes::open(tracer::EBPF_OBJECT)?;
    probes::load_all(&mut ebpf)?;
    probes::attach_all(&mut ebpf)?;
    let functions: Vec<_> = probes::KPROBES.iter().map(|(_, f)| *f).collect();
    tracing::info!(mode = "kprobe", functions = ?functions, "attached");

    wait_for_stop(args.duration).await?;

    let totals = counters::snapshot(&ebpf)?;
    for (id, dir) in &targets {
        let alloc = totals.get(id).map_or(0, |c| c.alloc);
        eprintln!("target cgroup_id={id} path={} alloc={alloc}", dir.display());
    }
    for (id, c) in &totals {
        eprintln!("cgroup cgroup_id={id} alloc={}", c.alloc);
    }
    Ok(())
}

async fn wait_for_stop(duration: Option<Duration>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = deadline => {}
    }
    Ok(())
}

//! `tracer`: the node binary. Loads the dentry probes, counts per cgroup, optionally traces
//! paths, reports on exit.
use std::{
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Context as _;
use aya::maps::RingBuf;
use clap::Parser;
use dentry_common::{Config, MAX_CGROUP_LEVEL, names};
use tokio::io::unix::AsyncFd;
use tracer::{
    cgroup, counters,
    events::{self, Clock},
    probes::{self, AttachMode, Set},
    tsv,
};

/// Traces the kernel dentry cache per cgroup.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Path to the host cgroup2 filesystem.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup: PathBuf,
    /// Trace only tasks in this cgroup v2 directory or below it (repeatable).
    #[arg(long = "target-cgroup", value_name = "DIR")]
    target_cgroups: Vec<PathBuf>,
    /// Enable dentry path tracing on startup.
    #[arg(long)]
    trace_enabled: bool,
    /// Comma-separated path substrings; an event is kept when its path contains any of them.
    #[arg(long, default_value = "")]
    trace_patterns: String,
    /// Write trace lines to stdout (header first).
    #[arg(long)]
    stdout: bool,
    /// Stop after this long (e.g. 30s, 5m); default: until SIGINT or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// fentry/fexit where the kernel allows it, else kprobes (auto), or force one.
    #[arg(long, value_enum, default_value = "auto")]
    attach_mode: AttachMode,
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, default_value_t = 8 << 20, value_parser = ring_buffer_size)]
    ring_buffer_size: u32,
    /// Benchmark floor: attach only one probe counting allocations, nothing else.
    #[arg(long, hide = true)]
    bench_floor: bool,
}

fn ring_buffer_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two of at least 4096 bytes"));
    }
    Ok(n)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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
    // Before anything else: once we report "attached", a stop signal must be honoured. (A
    // shell starts background jobs with SIGINT ignored; the handler overrides that.)
    let mut stop = Stop::install(args.duration)?;
    let targets = args
        .target_cgroups
        .iter()
        .map(|dir| {
            cgroup::target(&args.cgroup, dir)
                .with_context(|| format!("--target-cgroup {}", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ancestor_levels = targets
        .iter()
        .filter(|t| t.level < MAX_CGROUP_LEVEL)
        .fold(0u32, |acc, t| acc | 1 << t.level);
    let config = Config {
        trace: u32::from(args.trace_enabled),
        scoped: u32::from(!targets.is_empty()),
        ancestor_levels,
        wakeup_bytes: args.ring_buffer_size / 4,
    };
    let options = probes::LoadOptions {
        offsets: probes::kernel_offsets()?,
        config,
        ring_buffer_bytes: args.ring_buffer_size,
    };
    let mut ebpf = probes::open(tracer::EBPF_OBJECT, &options)?;
    let ids: Vec<u64> = targets.iter().map(|t| t.id).collect();
    probes::set_targets(&mut ebpf, &ids)?;
    let sets: &[Set] = match (args.bench_floor, args.trace_enabled) {
        (true, _) => &[Set::Floor],
        (false, true) => &[Set::Counters, Set::Trace],
        (false, false) => &[Set::Counters],
    };
    let attached = probes::attach(&mut ebpf, sets, args.attach_mode)?;
    let mode = probes::summary_mode(&attached);
    let functions: Vec<String> = attached
        .iter()
        .map(|(p, a)| format!("{}:{}", p.function, a.name()))
        .collect();
    tracing::info!(mode, probes = %functions.join(","), trace = args.trace_enabled, "attached");

    let patterns: Vec<String> = args
        .trace_patterns
        .split(',')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let mut emitted = 0u64;
    if args.trace_enabled {
        let ring = RingBuf::try_from(
            ebpf.take_map(names::EVENTS)
                .context("the eBPF object has no EVENTS map")?,
        )?;
        let sink = Sink {
            stdout: args.stdout,
            patterns,
            clock: Clock::now(),
        };
        emitted = trace(ring, sink, &mut stop).await?;
    } else {
        stop.wait().await;
    }

    let drops = counters::per_cpu_total(&ebpf, names::DROPS)?;
    let floor = counters::per_cpu_total(&ebpf, names::FLOOR)?;
    eprintln!("summary attach={mode} events={emitted} drops={drops} floor={floor}");
    for (id, c) in counters::per_cgroup(&ebpf)? {
        eprintln!(
            "cgroup cgroup_id={id} alloc={} positive={} negative={} shrink={} prune={} pruned={}",
            c.alloc, c.positive, c.negative, c.shrink_calls, c.prune_calls, c.pruned
        );
    }
    Ok(())
}

/// Where trace events go.
struct Sink {
    stdout: bool,
    patterns: Vec<String>,
    clock: Clock,
}

impl Sink {
    fn keep(&self, path: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| path.contains(p.as_str()))
    }
}

/// Drains the ring buffer until stopped; returns how many events passed the filters.
async fn trace(
    ring: RingBuf<aya::maps::MapData>,
    sink: Sink,
    stop: &mut Stop,
) -> anyhow::Result<u64> {
    // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd, which deregisters it
    // before the fd is closed.
    let mut ring = unsafe { AsyncFd::register(ring) }
        .map_err(|e| anyhow::anyhow!("watching the ring buffer: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if sink.stdout {
        writeln!(out, "{}", tsv::HEADER)?;
        out.flush()?;
    }
    let mut line = String::with_capacity(512);
    let mut kept = 0u64;
    let owner = tsv::Owner::default();
    let stop = stop.wait();
    tokio::pin!(stop);
    // The kernel wakes us only when the buffer is a quarter full; the tick drains the rest.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut drain = |ring: &mut RingBuf<aya::maps::MapData>,
                     out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>|
     -> anyhow::Result<()> {
        while let Some(record) = ring.next() {
            let Some(ev) = events::decode(&record, &sink.clock) else {
                continue;
            };
            if !sink.keep(&ev.path) {
                continue;
            }
            kept += 1;
            if sink.stdout {
                line.clear();
                tsv::write_line(&mut line, &ev, &owner);
                out.write_all(line.as_bytes())?;
            }
        }
        out.flush()?;
        Ok(())
    };
    loop {
        tokio::select! {
            () = &mut stop => {
                drain(ring.get_mut(), &mut out)?;
                break;
            }
            _ = tick.tick() => drain(ring.get_mut(), &mut out)?,
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                drain(guard.get_inner_mut(), &mut out)?;
                guard.clear_ready();
            }
        }
    }
    Ok(kept)
}

/// What ends a run: SIGTERM, SIGINT, or the --duration deadline.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    deadline: Option<tokio::time::Instant>,
}

impl Stop {
    fn install(duration: Option<Duration>) -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            deadline: duration.map(|d| tokio::time::Instant::now() + d),
        })
    }

    async fn wait(&mut self) {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
            () = deadline => {}
        }
    }
}

//! `tracer`: the node binary. Loads the dentry probes, serves metrics, writes path traces,
//! reports on exit.
use std::{
    io::IsTerminal as _,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use aya::{Ebpf, maps::RingBuf};
use clap::Parser;
use dentry_common::{Config, KernelPatterns, MAX_CGROUP_LEVEL, names};
use tokio::{io::unix::AsyncFd, sync::watch};
use tracer::{
    cgroup, check,
    cli::Args,
    counters,
    http::{self, AppState},
    metrics::{DentryState, Metrics},
    owners::{Owners, Sources},
    pipeline::{Caps, Flow, Pipeline},
    probes::{self, AttachMode, Set},
    rotate::Rotator,
};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // Bad input: one line (clap adds a "try --help" paragraph we leave out).
            let text = e.render().to_string();
            eprintln!(
                "tracer: {}",
                text.lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            // One line: the cause chain joined, so the user sees cause and fix together.
            eprintln!("tracer: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before anything else: once we report "attached", a stop signal must be honoured. (A
    // shell starts background jobs with SIGINT ignored; installing the handler overrides that.)
    let mut stop = Stop::install(args.duration)?;
    if args.check {
        return Ok(check_kernel(&args));
    }

    let sources = Sources {
        cgroup_root: args.cgroup.clone(),
        pods_log_dir: args.pods_log_dir.clone(),
        containers_log_dir: args.containers_log_dir.clone(),
    };
    // Names are not needed to find targets; the runtime is asked once the input is validated.
    let owners = Owners::resolve(&sources);
    let mut target_dirs = args.target_cgroups.clone();
    if let Some(uid) = &args.target_pod_uid {
        let dir = owners.pod_dir(uid).with_context(|| {
            format!(
                "--target-pod-uid {uid}: no pod cgroup with that UID under {} (is the pod on \
                 this node and running? is --cgroup the host's cgroup2 mount?)",
                args.cgroup.display()
            )
        })?;
        target_dirs.push(dir.to_owned());
    }
    for id in &args.target_container_ids {
        let bare = id.rsplit_once("://").map_or(id.as_str(), |(_, bare)| bare);
        let dir = owners.container_dir(bare).with_context(|| {
            format!(
                "--target-container-id {id}: no container cgroup with that ID under {} (is the \
                 container running on this node? is --cgroup the host's cgroup2 mount?)",
                args.cgroup.display()
            )
        })?;
        target_dirs.push(dir.to_owned());
    }
    if !target_dirs.is_empty() && !check::cgroup2(&args.cgroup) {
        anyhow::bail!(
            "{} is not a cgroup2 mount: targeting needs cgroup v2 (on a hybrid host pass \
             --cgroup /sys/fs/cgroup/unified)",
            args.cgroup.display()
        );
    }
    let targets = target_dirs
        .iter()
        .map(|dir| {
            cgroup::target(&args.cgroup, dir)
                .with_context(|| format!("--target-cgroup {}", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let listen = http::parse_listen(&args.listen).map_err(|e| anyhow::anyhow!("--listen {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "--listen {}: {e} (pick another address with --listen)",
            args.listen
        )
    })?;
    let files = if args.trace_enabled && !args.bench_floor {
        let max_bytes = (args.trace_max_size * 1024.0 * 1024.0) as u64;
        Some(Rotator::open(
            &args.trace_dir,
            max_bytes,
            args.trace_max_files,
            tracer::tsv::HEADER,
        )?)
    } else {
        None
    };

    let config = Config {
        trace: u32::from(args.trace_enabled),
        scoped: u32::from(!targets.is_empty()),
        ancestor_levels: targets
            .iter()
            .filter(|t| t.level < MAX_CGROUP_LEVEL)
            .fold(0, |acc, t| acc | 1 << t.level),
        wakeup_bytes: args.ring_buffer_size / 4,
        bench: match args.bench_trace_stage.as_deref() {
            Some("scope") => dentry_common::BENCH_STOP_AFTER_SCOPE,
            Some("walk") => dentry_common::BENCH_STOP_BEFORE_OUTPUT,
            _ => 0,
        },
    };
    let options = probes::LoadOptions {
        offsets: probes::kernel_offsets()?,
        config,
        patterns: KernelPatterns::new(args.trace_patterns.0.iter().map(|p| p.as_bytes())),
        ring_buffer_bytes: args.ring_buffer_size,
    };
    let kernel_btf = probes::kernel_btf()?;
    let mut ebpf = probes::open(tracer::EBPF_OBJECT, &options, &kernel_btf)?;
    probes::set_targets(&mut ebpf, &targets.iter().map(|t| t.id).collect::<Vec<_>>())?;
    // Tracing needs no probes of its own: it emits from the counters' probes.
    let sets: &[Set] = if args.bench_floor_lookup {
        &[Set::Floor, Set::FloorLookup]
    } else if args.bench_floor {
        &[Set::Floor]
    } else {
        &[Set::Counters]
    };
    // Held until the end: closing it stops the kernel's timing.
    let _stats = args
        .bench_program_stats
        .then(|| aya::sys::enable_stats(aya::sys::Stats::RunTime))
        .transpose()
        .context("--bench-program-stats: the kernel refused BPF_ENABLE_STATS")?;
    let mut attached = probes::attach(&mut ebpf, sets, args.attach_mode, &kernel_btf)?;
    // What the events use; the path cache's probes below may differ.
    let mode = probes::summary_mode(&attached);
    if args.trace_enabled && !args.bench_floor && !args.bench_no_path_cache {
        // These must not miss a call: the kernel skips a kprobe that fires while another
        // kprobe's handler runs on the same CPU (a dentry freed in a softirq that interrupted
        // one of our programs), and fentry has no such shared guard. So they prefer fentry
        // even when the events use kprobes.
        let cache_mode = match args.attach_mode {
            AttachMode::Kprobe => AttachMode::Auto,
            other => other,
        };
        // Without these probes cached paths could go stale, so the cache stays off.
        match probes::attach(&mut ebpf, &[Set::PathCache], cache_mode, &kernel_btf) {
            Ok(more) => {
                attached.extend(more);
                probes::set_path_cache(&mut ebpf, true)?;
            }
            Err(e) => tracing::warn!("path cache off (every event walks its whole path): {e}"),
        }
    }
    drop(kernel_btf);
    release_free_heap();
    let ring = if args.trace_enabled {
        probes::set_tracing(&mut ebpf, true)?;
        Some(RingBuf::try_from(
            ebpf.take_map(names::EVENTS)
                .context("the eBPF object has no EVENTS map")?,
        )?)
    } else {
        None
    };
    let probes_text: Vec<String> = attached
        .iter()
        .map(|(p, a)| format!("{}:{}", p.function, a.name()))
        .collect();
    tracing::info!(
        mode,
        probes = %probes_text.join(","),
        trace = args.trace_enabled,
        targets = targets.len(),
        listen = %listen,
        "probes attached"
    );
    // The contract with the plugin and the VM scripts, not a log line: its own line, always.
    eprintln!("{}{mode}", dentry_common::ATTACHED_MARKER);

    let state = Arc::new(AppState {
        metrics: Mutex::new(Metrics::new(args.cgroup_id_label, mode)?),
        trace_dir: files.is_some().then(|| args.trace_dir.clone()),
    });
    let server = tokio::spawn({
        let app = http::router(state.clone());
        async move { axum::serve(listener, app).await }
    });
    let ebpf = Arc::new(Mutex::new(ebpf));
    let cri_socket = tracer::cri::find_socket(&args.cri_sockets());
    let owners = match cri_names(cri_socket.as_deref(), true).await {
        Some(names) => Owners::resolve_with(&sources, Some(&names)),
        None => owners,
    };
    let (owners_tx, owners_rx) = watch::channel(Arc::new(owners));
    let resolver = tokio::spawn(resolve_loop(
        sources,
        cri_socket,
        args.resolve_interval,
        owners_tx,
    ));
    let poller = tokio::spawn(poll_loop(
        ebpf.clone(),
        state.clone(),
        owners_rx.clone(),
        args.poll_interval,
        args.proc.clone(),
    ));

    let mut pipeline = None;
    if let Some(ring) = ring {
        let caps = Caps {
            max_events: args.max_events,
            max_bytes: args.max_bytes,
        };
        let mut p = Pipeline::new(args.trace_patterns.0.clone(), files, args.stdout, caps)?;
        let capped = trace(ring, &mut p, &mut stop, &state, owners_rx, &ebpf).await?;
        if let Some(which) = capped {
            eprintln!("tracer: tracing stopped: {which} reached (metrics go on)");
            if !args.stdout {
                stop.wait().await;
            }
        }
        pipeline = Some(p);
    } else {
        stop.wait().await;
    }

    poller.abort();
    resolver.abort();
    // The summary does not wait on a reader of stdout that has stopped reading.
    let unwritten = pipeline
        .as_mut()
        .and_then(|p| p.stdout.take())
        .map_or(0, |out| out.finish(STDOUT_GRACE));
    tracing::debug!(unwritten, "stop: stdout done");
    {
        let ebpf = ebpf
            .lock()
            .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
        final_summary(&ebpf, mode, pipeline.as_ref(), unwritten)?;
        if args.bench_floor {
            eprintln!(
                "bench floor={}",
                counters::per_cpu_total(&ebpf, names::FLOOR)?
            );
        }
    }
    // Dropping the last handle on the object detaches every probe.
    drop(ebpf);
    drop(pipeline);
    if let (Some(linger), false) = (args.linger, stop.signalled) {
        // The plugin reads this line as "the trace is over".
        eprintln!(
            "{} /metrics and /traces for {} (--linger) or until SIGTERM",
            dentry_common::LINGER_MARKER,
            humantime::format_duration(linger)
        );
        stop.deadline = Some(tokio::time::Instant::now() + linger);
        stop.wait().await;
    }
    server.abort();
    Ok(ExitCode::SUCCESS)
}

/// Loading parses megabytes of kernel BTF into many small allocations; once they are freed,
/// hand the memory back to the OS so the resident size reflects the steady state.
fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn check_kernel(args: &Args) -> ExitCode {
    let fentry = (|| -> Result<(), String> {
        let options = probes::LoadOptions {
            offsets: probes::kernel_offsets().map_err(|e| e.to_string())?,
            config: Config::default(),
            patterns: KernelPatterns::default(),
            ring_buffer_bytes: 4096,
        };
        let btf = probes::kernel_btf().map_err(|e| e.to_string())?;
        let mut ebpf =
            probes::open(tracer::EBPF_OBJECT, &options, &btf).map_err(|e| e.to_string())?;
        let floor = probes::PROBES
            .iter()
            .find(|p| p.set == Set::Floor)
            .ok_or("no floor probe")?;
        probes::verify_all(&mut ebpf, &btf)
            .into_iter()
            .find(|(name, _)| *name == floor.fentry)
            .map_or(Err("not tried".into()), |(_, r)| {
                r.map_err(|e| e.to_string())
            })
    })();
    let items = check::run(&args.cgroup, fentry);
    let (text, ok) = check::report(&items);
    print!("{text}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Drains the ring buffer into the pipeline until stopped or capped, then turns tracing off in
/// the kernel; on a stop, what is left is drained for at most `FINAL_DRAIN`.
async fn trace(
    ring: RingBuf<aya::maps::MapData>,
    pipeline: &mut Pipeline,
    stop: &mut Stop,
    state: &AppState,
    mut owners: watch::Receiver<Arc<Owners>>,
    ebpf: &Mutex<Ebpf>,
) -> anyhow::Result<Option<&'static str>> {
    // SAFETY: the ring buffer owns its fd and lives inside the AsyncFd, which deregisters it
    // before the fd is closed.
    let mut ring = unsafe { AsyncFd::register(ring) }
        .map_err(|e| anyhow::anyhow!("watching the ring buffer: {e}"))?;
    let stop = stop.wait();
    tokio::pin!(stop);
    // The kernel wakes us only when the buffer is a quarter full; the tick drains the rest.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut reported_file_error = false;
    pipeline.owners = owners.borrow_and_update().clone();
    // Returns (cap reached, ring buffer emptied). A batch is bounded (DRAIN_BATCH records,
    // `budget` of time) so that under a flood the loop still flushes stdout, picks up new
    // owners and notices a stop.
    let mut drain =
        |ring: &mut RingBuf<aya::maps::MapData>, pipeline: &mut Pipeline, budget: Duration| {
            if owners.has_changed().unwrap_or(false) {
                pipeline.owners = owners.borrow_and_update().clone();
            }
            let before = pipeline.kept;
            let started = std::time::Instant::now();
            let mut flow = Flow::Continue;
            let mut emptied = false;
            for n in 0..DRAIN_BATCH {
                // A batch is bounded in time too: on a slow or starved CPU a whole batch can
                // take seconds, and a stop waits for it.
                if n % 64 == 63 && started.elapsed() >= budget {
                    break;
                }
                let Some(record) = ring.next() else {
                    emptied = true;
                    break;
                };
                flow = pipeline.handle(&record);
                if flow != Flow::Continue {
                    break;
                }
            }
            pipeline.flush();
            if let Ok(m) = state.metrics.lock() {
                m.add_events(pipeline.kept - before);
            }
            if let (Some(e), false) = (&pipeline.file_error, reported_file_error) {
                eprintln!(
                    "tracer: trace file write failed: {e} (lines are skipped until writes work \
                 again; metrics go on)"
                );
                reported_file_error = true;
            }
            let capped = match flow {
                Flow::Capped(which) => Some(which),
                Flow::Continue => None,
            };
            (capped, emptied)
        };
    let capped = loop {
        // While stdout's reader lags, the ring buffer waits (and the kernel counts drops when
        // it is full); a stop is noticed all the same.
        let backlogged = pipeline.backlogged();
        let room = pipeline.stdout.as_ref().map(|out| out.room());
        let capped = tokio::select! {
            // A stop first: picked at random among ready branches, it could lose to the tick
            // round after round under a flood.
            biased;
            () = &mut stop => break None,
            Some(room) = async { room?.await }, if backlogged => {
                if let Some(out) = &mut pipeline.stdout {
                    out.send(room);
                }
                None
            }
            _ = tick.tick(), if !backlogged => drain(ring.get_mut(), pipeline, DRAIN_BUDGET).0,
            guard = ring.readable_mut(), if !backlogged => {
                let mut guard = guard?;
                let (capped, emptied) = drain(guard.get_inner_mut(), pipeline, DRAIN_BUDGET);
                if emptied {
                    guard.clear_ready();
                }
                capped
            }
        };
        if capped.is_some() {
            break capped;
        }
    };
    // Capped or stopped, the kernel stops writing events (counters go on). Under a storm the
    // probes write as fast as we read: what is left is finite only once they stop, and the
    // drain is bounded in time too, so the summary comes within a kubelet's grace period.
    {
        let mut kernel = ebpf
            .lock()
            .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
        probes::set_tracing(&mut kernel, false)?;
    }
    if capped.is_some() {
        return Ok(capped);
    }
    tracing::debug!(
        kept = pipeline.kept,
        "stop: tracing off, draining what is left"
    );
    let deadline = tokio::time::Instant::now() + FINAL_DRAIN;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let (capped, emptied) = drain(ring.get_mut(), pipeline, left.min(DRAIN_BUDGET));
        if capped.is_some() {
            return Ok(capped);
        }
        if emptied || tokio::time::Instant::now() >= deadline {
            tracing::debug!(kept = pipeline.kept, emptied, "stop: drained");
            if !emptied {
                // Said in the summary: counting a record without decoding it is cheap.
                let ring = ring.get_mut();
                let counted = std::time::Instant::now();
                while counted.elapsed() < UNREAD_COUNT && ring.next().is_some() {
                    pipeline.unread += 1;
                }
            }
            return Ok(None);
        }
        if pipeline.backlogged() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// How long a stop may spend on what the ring buffer still holds.
const FINAL_DRAIN: Duration = Duration::from_secs(2);
/// How long a stop may spend counting the records the drain left (at most a ring buffer's).
const UNREAD_COUNT: Duration = Duration::from_secs(1);
/// How long a stop waits for stdout's reader to take the last lines.
const STDOUT_GRACE: Duration = Duration::from_secs(1);

/// Records handled per drain call, at most, before the loop looks at its other duties ...
const DRAIN_BATCH: usize = 8192;
/// ... and the time one drain call may take.
const DRAIN_BUDGET: Duration = Duration::from_millis(100);

async fn resolve_loop(
    sources: Sources,
    cri_socket: Option<std::path::PathBuf>,
    every: Duration,
    tx: watch::Sender<Arc<Owners>>,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let cri = cri_names(cri_socket.as_deref(), false).await;
        let sources = sources.clone();
        if let Ok(owners) =
            tokio::task::spawn_blocking(move || Owners::resolve_with(&sources, cri.as_ref())).await
        {
            let _ = tx.send(Arc::new(owners));
        }
    }
}

/// Names from the runtime's CRI socket, if one is mounted. A failure is not fatal (the
/// kubelet's log directories still name pods): said at start-up, logged at debug level later.
async fn cri_names(
    socket: Option<&std::path::Path>,
    first: bool,
) -> Option<tracer::kubelet::Names> {
    let Some(socket) = socket else {
        if first {
            tracing::debug!("no CRI socket mounted: names come from the kubelet's log directories");
        }
        return None;
    };
    match tracer::cri::names(socket, Duration::from_secs(2)).await {
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

async fn poll_loop(
    ebpf: Arc<Mutex<Ebpf>>,
    state: Arc<AppState>,
    owners: watch::Receiver<Arc<Owners>>,
    every: Duration,
    proc: std::path::PathBuf,
) {
    let mut tick = tokio::time::interval(every);
    let mut monotonic = counters::Monotonic::default();
    loop {
        tick.tick().await;
        if let Err(e) = poll_once(&ebpf, &state, &owners, &proc, &mut monotonic) {
            tracing::warn!("reading counters: {e:#}");
        }
    }
}

fn poll_once(
    ebpf: &Mutex<Ebpf>,
    state: &AppState,
    owners: &watch::Receiver<Arc<Owners>>,
    proc: &std::path::Path,
    monotonic: &mut counters::Monotonic,
) -> anyhow::Result<()> {
    let (totals, drops, filtered, contended, missed) = {
        let ebpf = ebpf.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
        (
            monotonic.apply(counters::per_cgroup(&ebpf)?),
            counters::per_cpu_total(&ebpf, names::DROPS)?,
            counters::per_cpu_total(&ebpf, names::FILTERED)?,
            counters::per_cpu_total(&ebpf, names::CONTENDED)?,
            tracer::misses::total(&ebpf),
        )
    };
    let dentry_state = std::fs::read_to_string(proc.join("sys/fs/dentry-state"))
        .ok()
        .and_then(|t| DentryState::parse(&t));
    let owners = owners.borrow().clone();
    let mut m = state
        .metrics
        .lock()
        .map_err(|_| anyhow::anyhow!("lock poisoned"))?;
    m.update(&totals, &owners);
    m.set_drops(drops);
    m.set_filtered(filtered);
    m.set_contended(contended);
    m.set_missed(missed);
    if let Some(s) = dentry_state {
        m.set_dentry_state(s);
    }
    Ok(())
}

fn final_summary(
    ebpf: &Ebpf,
    mode: &str,
    pipeline: Option<&Pipeline>,
    unwritten: u64,
) -> anyhow::Result<()> {
    let drops = counters::per_cpu_total(ebpf, names::DROPS)?;
    let filtered = counters::per_cpu_total(ebpf, names::FILTERED)?;
    let contended = counters::per_cpu_total(ebpf, names::CONTENDED)?;
    let missed = tracer::misses::total(ebpf);
    let path_cache_hits = counters::per_cpu_total(ebpf, names::PATH_CACHE_HITS)?;
    let (events, bytes) = pipeline.map_or((0, 0), |p| (p.kept, p.bytes));
    let (file_errors, unread) = pipeline.map_or((0, 0), |p| (p.file_errors, p.unread));
    eprintln!(
        "summary attach={mode} events={events} drops={drops} filtered={filtered} \
         contended={contended} missed={missed} unread={unread} unwritten={unwritten} bytes={bytes} file_errors={file_errors} \
         path_cache_hits={path_cache_hits}"
    );
    let mut per_cgroup: Vec<_> = counters::per_cgroup(ebpf)?.into_iter().collect();
    per_cgroup.sort_by(|a, b| b.1.alloc.cmp(&a.1.alloc).then(a.0.cmp(&b.0)));
    for (id, c) in per_cgroup.iter().take(50) {
        eprintln!(
            "cgroup cgroup_id={id} alloc={} positive={} negative={} shrink={} prune={} pruned={}",
            c.alloc, c.positive, c.negative, c.shrink_calls, c.prune_calls, c.pruned
        );
    }
    if let Some(p) = pipeline {
        eprint!("{}", p.summary.render(10));
    }
    // Only under --bench-program-stats does the kernel count runs.
    for (name, program) in ebpf.programs() {
        if let Ok(info) = program.info()
            && info.run_count() > 0
        {
            let ns = info.run_time().as_nanos() as f64 / info.run_count() as f64;
            eprintln!(
                "program name={name} runs={} ns_per_run={ns:.0}",
                info.run_count()
            );
        }
    }
    Ok(())
}

/// What ends a run: SIGTERM, SIGINT, or the --duration deadline.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    deadline: Option<tokio::time::Instant>,
    /// A signal (not the deadline) ended the last wait.
    signalled: bool,
}

impl Stop {
    fn install(duration: Option<Duration>) -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            deadline: duration.map(|d| tokio::time::Instant::now() + d),
            signalled: false,
        })
    }

    async fn wait(&mut self) {
        let deadline = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        self.signalled = tokio::select! {
            _ = self.term.recv() => true,
            _ = self.int.recv() => true,
            () = deadline => false,
        };
    }
}

//! One run of the tracer: the plan from the flags, the kernel loaded and attached, the
//! background tasks, the drain, the stop and the report.
pub mod added;
pub mod drain;
pub mod plan;
pub mod report;
pub mod retire;
pub mod stop;
pub mod tasks;

use std::{
    collections::BTreeSet,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use aya::{Ebpf, maps::RingBuf};
use dentry_common::{OwnerLayout, names};
use tokio::sync::watch;

use crate::{
    cli::Args,
    kernel::{
        check, counters,
        features::{Feature, Features},
        live, probes,
    },
    owners::{Owners, Sources, cgroup, layers::Layers},
    serve::{
        http::{self, AppState},
        metrics::Metrics,
    },
    trace::{
        pipeline::{Pipeline, Stdout},
        rotate::Rotator,
    },
};
use plan::Plan;
use stop::Stop;

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before anything else: once we report "attached", a stop signal must be honoured. (A
    // shell starts background jobs with SIGINT ignored; installing the handler overrides that.)
    let mut stop = Stop::install()?;
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
    let (targets, armed) = targets(&args, &owners)?;
    let plan = Plan::new(&args, &targets, armed.levels);
    let listen = http::parse_listen(&args.listen).map_err(|e| anyhow::anyhow!("--listen {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "--listen {}: {e} (pick another address with --listen)",
            args.listen
        )
    })?;
    let files = plan
        .files
        .as_ref()
        .map(|f| Rotator::open(&f.dir, f.max_bytes, f.max_files, crate::trace::tsv::HEADER))
        .transpose()?;

    // Held until the end: closing it stops the kernel's timing.
    let _stats = args
        .bench
        .program_stats
        .then(|| aya::sys::enable_stats(aya::sys::Stats::RunTime))
        .transpose()
        .context("--bench-program-stats: the kernel refused BPF_ENABLE_STATS")?;
    let (mut ebpf, mode, mut features) = load(&plan, &args, &targets)?;
    if armed.levels != 0 {
        if let Some(reason) = features.reason(Feature::Pending) {
            tracing::debug!("not arming for pending pods: {reason}");
        } else if let Err(e) = probes::arm_pods(&mut ebpf, &[]) {
            features.off(Feature::Pending, e.to_string());
        }
        // Also catches a pod whose cgroup appeared between the scan above and the arming.
        let started = added::add(&mut ebpf, &sources, &armed.uids)?;
        tracing::info!(
            pods = armed.uids.len(),
            started,
            "armed for pods whose cgroups do not exist yet"
        );
    }
    // What this kernel cannot do: one line each, before the attached line.
    for line in features.lines() {
        eprintln!("tracer: {line}");
    }
    let trace = plan.trace && features.is_on(Feature::Trace);
    let ring = if trace {
        probes::set_tracing(&mut ebpf, true)?;
        Some(RingBuf::try_from(
            ebpf.take_map(names::EVENTS)
                .context("the eBPF object has no EVENTS map")?,
        )?)
    } else {
        None
    };
    // The contract with the plugin and the VM scripts, not a log line: its own line, always.
    eprintln!("{}{mode}", dentry_common::ATTACHED_MARKER);
    stop.run_for(args.duration);

    let state = Arc::new(AppState {
        metrics: Mutex::new({
            let mut m = Metrics::new(args.cgroup_id_label, mode, &features)?;
            // Normally held until the next resolve; bounded for a resolver that stalls.
            m.hold_unnamed(args.resolve_interval * 3);
            m
        }),
        trace_dir: files.is_some().then(|| args.trace_dir.clone()),
    });
    let server = tokio::spawn({
        let app = http::router(state.clone());
        async move { axum::serve(listener, app).await }
    });
    let ebpf = Arc::new(Mutex::new(ebpf));
    let cri_socket = crate::owners::cri::find_socket(&args.cri_sockets());
    let began = std::time::Instant::now();
    let owners = match tasks::cri_names(cri_socket.as_deref(), true).await {
        Some(names) => Owners::resolve_with(&sources, Some(&names)).began_at(began),
        None => owners,
    };
    let (owners_tx, owners_rx) = watch::channel(Arc::new(owners));
    let resolver = tokio::spawn(tasks::resolve_loop(
        sources.clone(),
        cri_socket,
        args.resolve_interval,
        owners_tx,
    ));
    let poller = tokio::spawn(tasks::poll_loop(
        ebpf.clone(),
        state.clone(),
        owners_rx.clone(),
        args.poll_interval,
        args.proc.clone(),
        args.cgroup.clone(),
    ));

    let adder = args.target_pod_uids_file.clone().map(|file| {
        tokio::spawn(added::watch_loop(
            file,
            ebpf.clone(),
            sources.clone(),
            args.poll_interval,
            armed.known.clone(),
        ))
    });

    let mut pipeline = None;
    let mut ended = None;
    if let Some(ring) = ring {
        let mut p = Pipeline::new(
            args.trace_patterns.0.clone(),
            files,
            match (args.stdout, args.stdout_process) {
                (false, _) => Stdout::Off,
                (true, false) => Stdout::Tsv,
                (true, true) => Stdout::WithProcess,
            },
            plan.caps,
        )?;
        if !args.host_paths {
            // The host's mount table: the tracer runs in the host's PID namespace.
            p.layers = Some(Layers::new(args.proc.join("1/mountinfo")));
        }
        let end = drain::trace(ring, &mut p, &mut stop, &state, owners_rx, &ebpf).await?;
        if let drain::Ended::Capped(which) = end {
            eprintln!("tracer: tracing stopped: {which} reached (metrics go on)");
            if !args.stdout {
                stop.wait().await;
            }
        }
        ended = Some(end);
        pipeline = Some(p);
    } else {
        stop.wait().await;
    }

    poller.abort();
    resolver.abort();
    if let Some(adder) = adder {
        adder.abort();
    }
    // The summary does not wait on a reader of stdout that has stopped reading.
    let unwritten = pipeline
        .as_mut()
        .and_then(|p| p.stdout.take())
        .map_or(0, |out| out.finish(drain::stdout_grace(ended)));
    tracing::debug!(unwritten, "stop: stdout done");
    {
        let ebpf = ebpf
            .lock()
            .map_err(|_| anyhow::anyhow!("the poller panicked"))?;
        report::final_summary(
            &ebpf,
            &args.cgroup,
            &targets,
            mode,
            pipeline.as_ref(),
            unwritten,
        )?;
        if args.bench.floor {
            eprintln!(
                "bench floor={}",
                counters::per_cpu_total(&ebpf, names::FLOOR)?
            );
        }
    }
    tracing::debug!("stop: summary written");
    // Dropping the last handle on the object detaches every probe.
    drop(ebpf);
    tracing::debug!("stop: probes detached");
    drop(pipeline);
    if let (Some(linger), false) = (args.linger, stop.signalled) {
        // The plugin reads this line as "the trace is over".
        eprintln!(
            "{} /metrics and /traces for {} (--linger) or until SIGTERM",
            dentry_common::LINGER_MARKER,
            humantime::format_duration(linger)
        );
        stop.run_for(Some(linger));
        stop.wait().await;
    }
    server.abort();
    Ok(ExitCode::SUCCESS)
}

/// Pods to trace whose cgroups do not exist yet (`--target-pending`, `--target-pod-uids-file`).
#[derive(Debug, Default)]
struct Armed {
    uids: Vec<String>,
    /// The levels (a bit each) at which their cgroups will appear; zero when nothing is armed.
    levels: u32,
    /// Every pod UID asked for so far, found or armed (the file's are added once).
    known: BTreeSet<String>,
}

/// The cgroups to scope to: `--target-cgroup` as given, and the pods' and containers' cgroups
/// found by their IDs; and the pods armed for, with `--target-pending` or from the UIDs file.
fn targets(args: &Args, owners: &Owners) -> anyhow::Result<(Vec<cgroup::Target>, Armed)> {
    let mut dirs = args.target_cgroups.clone();
    let mut armed = Armed::default();
    let from_file = args
        .target_pod_uids_file
        .as_deref()
        .map(added::read)
        .unwrap_or_default();
    for uid in args.target_pod_uids.iter().chain(&from_file) {
        if !armed.known.insert(uid.clone()) {
            continue;
        }
        match owners.pod_dir(uid) {
            Some(dir) => dirs.push(dir.to_owned()),
            None if args.target_pending || from_file.contains(uid) => armed.uids.push(uid.clone()),
            None => anyhow::bail!(
                "--target-pod-uid {uid}: no pod cgroup with that UID under {} (is the pod on \
                 this node and running? is --cgroup the host's cgroup2 mount? for a pod not \
                 started yet add --target-pending)",
                args.cgroup.display()
            ),
        }
    }
    if !armed.uids.is_empty() || args.target_pod_uids_file.is_some() {
        armed.levels = cgroup::pod_levels(&args.cgroup);
        if armed.levels == 0 {
            anyhow::bail!(
                "{}: no kubepods cgroup under {}, so pods cannot be waited for \
                 (is this a Kubernetes node? is --cgroup the host's cgroup2 mount?)",
                if armed.uids.is_empty() {
                    "--target-pod-uids-file"
                } else {
                    "--target-pending"
                },
                args.cgroup.display()
            );
        }
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
        dirs.push(dir.to_owned());
    }
    let scoped = !dirs.is_empty() || armed.levels != 0;
    if scoped && !check::cgroup2(&args.cgroup) {
        anyhow::bail!(
            "{} is not a cgroup2 mount: targeting needs cgroup v2 (on a hybrid host pass \
             --cgroup /sys/fs/cgroup/unified)",
            args.cgroup.display()
        );
    }
    let targets = dirs
        .iter()
        .map(|dir| {
            cgroup::target(&args.cgroup, dir)
                .with_context(|| format!("--target-cgroup {}", dir.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((targets, armed))
}

/// Loads the programs as the plan says, fills the targets, attaches; returns the object, the
/// mode the counting and tracing probes use (the path cache's may differ) and the features
/// this kernel lacks. Only the counters are required: any other feature whose dependency is
/// missing (a BTF field, a probe that will not attach) is switched off alone.
fn load(
    plan: &Plan,
    args: &Args,
    targets: &[cgroup::Target],
) -> anyhow::Result<(Ebpf, &'static str, Features)> {
    let began = std::time::Instant::now();
    let offsets_btf = crate::kernel::btf::Btf::from_file(&args.btf.to_string_lossy())?;
    tracing::debug!(
        ms = began.elapsed().as_millis() as u64,
        "offsets BTF parsed"
    );
    let (offsets, mut features) = probes::offsets_for(&offsets_btf);
    let mut config = plan.config;
    if !features.is_on(Feature::Trace) {
        // The walk would read at offsets this kernel does not have: the verifier drops it.
        config.trace = 0;
    }
    let owner = match plan.live {
        Some(_) if features.is_on(Feature::Live) => {
            live::layout(&offsets_btf).unwrap_or_else(|e| {
                features.off(Feature::Live, e);
                OwnerLayout::default()
            })
        }
        _ => OwnerLayout::default(),
    };
    let options = probes::LoadOptions {
        offsets,
        config,
        patterns: plan.kernel_patterns,
        ring_buffer_bytes: args.ring_buffer_size,
        owner,
        prealloc: probes::prealloc_needed(&offsets_btf),
    };
    drop(offsets_btf);
    tracing::debug!(ms = began.elapsed().as_millis() as u64, "offsets found");
    let kernel_btf = probes::kernel_btf_from(&args.btf)?;
    tracing::debug!(ms = began.elapsed().as_millis() as u64, "aya BTF parsed");
    let mut ebpf = probes::open(crate::EBPF_OBJECT, &options, &kernel_btf)?;
    tracing::debug!(ms = began.elapsed().as_millis() as u64, "object opened");
    probes::set_targets(&mut ebpf, &targets.iter().map(|t| t.id).collect::<Vec<_>>())?;
    let mut attached = probes::attach(&mut ebpf, plan.sets, plan.attach_mode, &kernel_btf)?;
    tracing::debug!(
        ms = began.elapsed().as_millis() as u64,
        "main probes attached"
    );
    let mode = probes::summary_mode(&attached);
    if let Some(cache_mode) = plan.path_cache.filter(|_| config.trace != 0)
        && features.is_on(Feature::PathCache)
    {
        // Without these probes cached paths could go stale, so the cache stays off.
        match probes::attach(
            &mut ebpf,
            &[probes::Set::PathCache],
            cache_mode,
            &kernel_btf,
        ) {
            Ok(more) => {
                attached.extend(more);
                probes::set_path_cache(&mut ebpf, true)?;
            }
            Err(e) => features.off(Feature::PathCache, e.to_string()),
        }
    }
    if let Some(live_mode) = plan.live
        && owner.enabled != 0
    {
        match probes::attach(&mut ebpf, &[probes::Set::Live], live_mode, &kernel_btf) {
            Ok(more) => attached.extend(more),
            Err(e) => features.off(Feature::Live, e.to_string()),
        }
    }
    drop(kernel_btf);
    release_free_heap();
    let verified = probes::verified(&ebpf);
    for (program, insns) in &verified {
        tracing::debug!(program, verified_insns = insns, "loaded");
    }
    let probes_text: Vec<String> = attached
        .iter()
        .map(|(p, a)| format!("{}:{}", p.function, a.name()))
        .collect();
    tracing::info!(
        mode,
        probes = %probes_text.join(","),
        trace = plan.trace,
        targets = targets.len(),
        listen = %args.listen,
        prealloc = options.prealloc,
        load_ms = began.elapsed().as_millis() as u64,
        verified_insns = verified.iter().map(|(_, n)| u64::from(*n)).sum::<u64>(),
        "probes attached"
    );
    Ok((ebpf, mode, features))
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
    let mut features = Features::default();
    match crate::kernel::btf::Btf::from_file(&args.btf.to_string_lossy()) {
        Ok(btf) => {
            features = probes::offsets_for(&btf).1;
            if let Err(e) = live::layout(&btf) {
                features.off(Feature::Live, e);
            }
        }
        Err(e) => Feature::ALL
            .into_iter()
            .for_each(|f| features.off(f, e.to_string())),
    }
    let items = check::run(&args.cgroup, probes::fentry_works(), &features);
    let (text, ok) = check::report(&items);
    print!("{text}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

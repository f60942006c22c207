//! The plugin's own costs, against the in-process API server (`cargo bench -p kubectl-dentry
//! --bench plugin`; figures in docs/benchmarks.md):
//! - `kubectl dentry --help`: time to the first byte on stdout;
//! - `top` across 50 nodes against 1 node (a tracer pod started, watched, scraped twice and
//!   deleted per node, --interval 1s);
//! - the peak RSS of those runs;
//! - `top` across 1,000 nodes through the pod proxy: with the DaemonSet's tracers (2,000
//!   proxied scrapes) and starting a tracer pod per node;
//! - `top --prometheus` against Debian's real Prometheus holding 1,000 nodes × 30 pods of
//!   tracer series.
#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{FakeApi, Prometheus, fixture, node, on_node, pod, running};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the child to completion; returns (wall time, peak RSS in KiB).
#[allow(
    clippy::zombie_processes,
    reason = "reaped by wait4, which also gives its rusage"
)]
fn measure(mut cmd: Command) -> (Duration, i64) {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we spawned; std never reaps it since we never call wait.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the run failed"
    );
    (elapsed, usage.ru_maxrss)
}

fn help_first_byte() -> Duration {
    let times = (0..30)
        .map(|_| {
            let start = Instant::now();
            let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
                .arg("--help")
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn");
            let mut byte = [0u8; 1];
            child
                .stdout
                .as_mut()
                .expect("stdout")
                .read_exact(&mut byte)
                .expect("a byte");
            let t = start.elapsed();
            child.wait().expect("wait");
            t
        })
        .collect();
    median(times)
}

fn top(nodes: usize) -> (Duration, i64) {
    let api = FakeApi::start(vec![]);
    let scrapes = vec![fixture("metrics-1.txt"), fixture("metrics-2.txt")];
    for i in 0..nodes {
        let name = format!("node-{i:02}");
        api.state().nodes.push(node(&name, true));
        api.state().metrics.insert(name, scrapes.clone());
    }
    let runs: Vec<(Duration, i64)> = (0..5)
        .map(|_| measure(api.command(&["top", "--interval", "1s", "-o", "json"])))
        .collect();
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(0);
    (median(runs.into_iter().map(|r| r.0).collect()), peak)
}

/// `top` over `nodes` nodes that all run the DaemonSet's tracer (nothing started).
fn top_daemonset(nodes: usize) -> (Duration, i64) {
    let api = FakeApi::start(vec![]);
    let scrapes = vec![fixture("metrics-1.txt"), fixture("metrics-2.txt")];
    for i in 0..nodes {
        let name = format!("node-{i:04}");
        let mut state = api.state();
        state.nodes.push(node(&name, true));
        state.metrics.insert(name.clone(), scrapes.clone());
        state.pods.push(running(on_node(
            pod(
                "dentry-monitor",
                &format!("dentry-tracer-{i:04}"),
                &[
                    ("app.kubernetes.io/name", "dentry-tracer"),
                    ("app.kubernetes.io/component", "daemonset"),
                ],
            ),
            &name,
        )));
    }
    let runs: Vec<(Duration, i64)> = (0..5)
        .map(|_| measure(api.command(&["top", "--interval", "1s", "-o", "json"])))
        .collect();
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(0);
    (median(runs.into_iter().map(|r| r.0).collect()), peak)
}

/// One exporter with the series of `nodes` tracers × `pods` pods, each carrying its `node`
/// label (scraped with honor_labels, as if from `nodes` targets), counters growing with time.
fn fleet_exporter(nodes: usize, pods: usize) -> std::net::SocketAddr {
    let start = Instant::now();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move {
            let t = start.elapsed().as_secs_f64();
            let mut out = String::with_capacity(nodes * pods * 6 * 110);
            for n in 0..nodes {
                let node = format!("node-{n:04}");
                for p in 0..pods {
                    let labels = format!(
                        "container=\"app\",namespace=\"ns-{}\",node=\"{node}\",pod=\"pod-{n}-{p}\"",
                        p % 5
                    );
                    let rate = (1 + p) as f64;
                    for (metric, value) in [
                        ("dentry_alloc_total", rate * t),
                        ("dentry_negative_total", rate * t / 2.0),
                        ("dentry_positive_total", rate * t / 2.0),
                        ("dentry_live", 100.0 * rate),
                        ("dentry_live_negative", 50.0 * rate),
                        ("dentry_live_bytes", 19200.0 * rate),
                    ] {
                        out.push_str(&format!("{metric}{{{labels}}} {value}\n"));
                    }
                }
                for kind in ["total", "unused", "negative"] {
                    out.push_str(&format!(
                        "dentry_count{{node=\"{node}\",type=\"{kind}\"}} 100000\n"
                    ));
                }
                out.push_str(&format!("dentry_cache_bytes{{node=\"{node}\"}} 19200000\n"));
                out.push_str(&format!("dentry_cache_pods_ratio{{node=\"{node}\"}} 0.5\n"));
            }
            out
        }),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                axum::serve(listener, app).await.expect("serve");
            });
    });
    rx.recv().expect("exporter started")
}

/// `top --prometheus` (table, and `-o json`) against a real Prometheus holding `nodes` ×
/// `pods` pods of series, scraped every 30s as docs/deploy.md does, rates over the default
/// 2m window. Returns (table, json) medians, the peak RSS, the JSON rows.
fn top_prometheus(nodes: usize, pods: usize) -> (Duration, Duration, Duration, i64, usize) {
    let addr = fleet_exporter(nodes, pods);
    let prom = Prometheus::start(&format!(
        "scrape_configs:\n  - job_name: dentry-tracer\n    honor_labels: true\n    \
         scrape_interval: 30s\n    scrape_timeout: 20s\n    \
         static_configs: [{{targets: ['{addr}']}}]\n"
    ));
    // Samples across the whole 2m window.
    prom.wait_for_within(
        "count_over_time(dentry_cache_bytes[150s]) >= 5",
        nodes,
        Duration::from_secs(300),
    );
    let url = prom.url.clone();
    let run = |output: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"));
        cmd.args(["top", "--prometheus", &url, "-o", output]);
        cmd
    };
    let rows = run("json")
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v["containers"].as_array().map(Vec::len))
        .unwrap_or(0);
    // The server's own share: its slowest query, answered alone.
    let server = median(
        (0..5)
            .map(|_| prom.answer_time("rate(dentry_alloc_total[2m])"))
            .collect(),
    );
    let table: Vec<(Duration, i64)> = (0..5).map(|_| measure(run("table"))).collect();
    let json: Vec<(Duration, i64)> = (0..5).map(|_| measure(run("json"))).collect();
    let peak = table.iter().chain(&json).map(|r| r.1).max().unwrap_or(0);
    (
        median(table.into_iter().map(|r| r.0).collect()),
        median(json.into_iter().map(|r| r.0).collect()),
        server,
        peak,
        rows,
    )
}

fn main() {
    // `--fleet-only`: just the 1,000-node runs (after `--`).
    let fleet_only = std::env::args().any(|a| a == "--fleet-only");
    if !fleet_only {
        small();
    }
    fleet();
}

/// --help, and `top` over 1 and 50 nodes.
fn small() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this as a smoke run too.
    let help = help_first_byte();
    println!(
        "--help first byte: median {:.1} ms (goal <= 20 ms)",
        help.as_secs_f64() * 1e3
    );
    let (one, rss_one) = top(1);
    let (fifty, rss_fifty) = top(50);
    println!(
        "top, 1 node: median {:.0} ms; 50 nodes: median {:.0} ms; ratio {:.2} (goal <= 2)",
        one.as_secs_f64() * 1e3,
        fifty.as_secs_f64() * 1e3,
        fifty.as_secs_f64() / one.as_secs_f64()
    );
    println!(
        "peak RSS: top 1 node {:.1} MB, 50 nodes {:.1} MB (goal <= 30 MB)",
        rss_one as f64 / 1024.0,
        rss_fifty as f64 / 1024.0
    );
}

/// `top` over 1,000 nodes: the proxy path, and Prometheus.
fn fleet() {
    let (ds, rss_ds) = top_daemonset(1000);
    println!(
        "top, 1,000 nodes with the DaemonSet (pod proxy): median {:.0} ms, peak RSS {:.1} MB (goal <= 10 s, <= 60 MB)",
        ds.as_secs_f64() * 1e3,
        rss_ds as f64 / 1024.0
    );
    let (started, rss_started) = top(1000);
    println!(
        "top, 1,000 nodes starting tracer pods: median {:.0} ms, peak RSS {:.1} MB",
        started.as_secs_f64() * 1e3,
        rss_started as f64 / 1024.0
    );
    let (table, json, server, rss_prom, rows) = top_prometheus(1000, 30);
    println!(
        "top --prometheus, 1,000 nodes x 30 pods ({rows} rows): table median {:.0} ms, -o json median {:.0} ms, Prometheus alone on one rate() query {:.0} ms, peak RSS {:.1} MB (goal <= 2 s)",
        table.as_secs_f64() * 1e3,
        json.as_secs_f64() * 1e3,
        server.as_secs_f64() * 1e3,
        rss_prom as f64 / 1024.0
    );
}

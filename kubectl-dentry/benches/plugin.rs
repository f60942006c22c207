//! The plugin's own costs, against the in-process API server (`cargo bench -p kubectl-dentry
//! --bench plugin`; figures in docs/benchmarks.md):
//! - `kubectl dentry --help`: time to the first byte on stdout;
//! - `top` across 50 nodes against 1 node (a tracer pod started, watched, scraped twice and
//!   deleted per node, --interval 1s);
//! - the peak RSS of those runs.
#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{FakeApi, fixture, node};

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

fn main() {
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

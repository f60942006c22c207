//! The tracer binary as it runs on a node, on real kernels: pod attribution from a
//! kubepods-shaped cgroup tree and the kubelet's log directories, /metrics (promtool-clean, right
//! labels and counts), rotated TSV files under a flood, /traces listing and download, refusal of
//! paths outside the trace directory, the reference's recipes, the summary and a clean exit.
use std::{io::Write as _, process::Command, time::Duration};

use xtask::{
    dentry_workload::Summary,
    kernel::Kernel,
    node_workload::NodeWorkload,
    vm::{VmOutput, VmRun},
};

const LOOKUPS_A: u32 = 25_000;
const SKIPPED_A: u32 = 500;
const LOOKUPS_B: u32 = 300;
const MIB: u64 = 1 << 20;

fn run(series: &str) -> VmOutput {
    let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("kernel {series}: {e:#}"));
    let workload = NodeWorkload {
        lookups_a: LOOKUPS_A,
        skipped_a: SKIPPED_A,
        lookups_b: LOOKUPS_B,
    };
    let out = VmRun::new(&kernel, workload.script())
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .timeout(Duration::from_secs(1200))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status, 0, "the script failed; log:\n{}", out.log);
    out
}

/// The value of the one series whose line starts with `series` followed by a space.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn promtool(metrics: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (cargo xtask setup installs the prometheus package)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check(series: &str) {
    let out = run(series);
    let log = &out.log;
    assert_eq!(out.value("tracer-exit"), Some("0"), "{series}: {log}");
    let summary = Summary::parse(&out.tagged("tracer"));
    let lookups_a = u64::from(LOOKUPS_A);

    // The summary: every traced lookup made an alloc and a negative event; nothing dropped.
    assert!(
        (2 * lookups_a..=2 * lookups_a + 10).contains(&summary.events),
        "{series}: events {} for {lookups_a} lookups\n{log}",
        summary.events
    );
    assert_eq!(summary.drops, 0, "{series}");
    // The pattern (`work-a`) is tested in the kernel: the skipped lookups never reach userspace.
    assert!(
        summary.filtered >= u64::from(SKIPPED_A),
        "{series}: the kernel left out {} records for {SKIPPED_A} skipped lookups",
        summary.filtered
    );
    let tracer_text = out.tagged("tracer").join("\n");
    let negative_dirs = tracer_text
        .split("top directories of negative lookups:")
        .nth(1)
        .unwrap_or_else(|| panic!("{series}: no negative-directory table:\n{tracer_text}"));
    let first = negative_dirs.lines().nth(1).unwrap_or_default();
    assert!(
        first.trim().ends_with("/work-a") && first.trim().starts_with(&lookups_a.to_string()),
        "{series}: first negative directory: {first:?}"
    );

    // /metrics: labels from the kubelet's directories, counts per container, promtool-clean.
    assert_eq!(out.value("wget-metrics"), Some("0"), "{series}");
    let metrics = out.tagged("metrics").join("\n") + "\n";
    let lint = promtool(&metrics);
    for line in lint.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("dentry_count") && line.contains("_count"),
            "{series}: promtool: {line}\n{metrics}"
        );
    }
    let alloc_a = metric(
        &metrics,
        r#"dentry_alloc_total{container="mysql",namespace="prod",pod="mysql-0"}"#,
    )
    .unwrap_or_else(|| panic!("{series}: no series for prod/mysql-0/mysql:\n{metrics}"));
    let want_a = (LOOKUPS_A + SKIPPED_A) as f64;
    assert!(
        alloc_a >= want_a && alloc_a <= want_a * 1.05,
        "{series}: alloc A {alloc_a}, want ≈ {want_a}"
    );
    let alloc_b = metric(
        &metrics,
        r#"dentry_alloc_total{container="nginx",namespace="web",pod="nginx-1"}"#,
    )
    .unwrap_or_else(|| panic!("{series}: no series for web/nginx-1/nginx:\n{metrics}"));
    let want_b = f64::from(LOOKUPS_B);
    assert!(
        alloc_b >= want_b && alloc_b <= want_b * 1.05 + 5.0,
        "{series}: alloc B {alloc_b}"
    );
    let negative_a = metric(
        &metrics,
        r#"dentry_negative_total{container="mysql",namespace="prod",pod="mysql-0"}"#,
    )
    .unwrap_or_default();
    assert!(
        negative_a >= want_a * 0.95,
        "{series}: negative A {negative_a}"
    );
    assert!(
        metric(&metrics, r#"dentry_count{type="total"}"#).unwrap_or_default() > 0.0,
        "{series}"
    );
    assert_eq!(
        metric(&metrics, "dentry_tracer_events_total"),
        Some(summary.events as f64),
        "{series}: the events counter must match the summary"
    );
    assert_eq!(
        metric(&metrics, "dentry_tracer_events_filtered_total"),
        Some(summary.filtered as f64),
        "{series}: the filtered counter must match the summary"
    );
    assert_eq!(
        metric(&metrics, "dentry_tracer_events_dropped_total"),
        Some(0.0)
    );
    assert!(
        metrics.contains("dentry_tracer_attach_info{mode="),
        "{series}"
    );

    // A second tracer on the same port: one line naming the cause, exit 1.
    let port = out.value("port-in-use").unwrap_or_default();
    assert!(
        port.starts_with("1 tracer: --listen 127.0.0.1:9090: "),
        "{series}: {port}"
    );
    assert!(
        port.contains("in use") && port.contains("pick another address"),
        "{series}: {port}"
    );
    eprintln!(
        "{series}: tracer peak RSS under the flood: {}",
        out.value("rss").unwrap_or("?")
    );

    // HTTP: health, listing, download, refusals.
    assert_eq!(out.value("healthz"), Some("ok"), "{series}");
    let listing: Vec<tracer::serve::http::TraceFile> =
        serde_json::from_str(out.value("traces-json").unwrap_or("[]")).expect("/traces is JSON");
    let names: Vec<&str> = listing.iter().map(|f| f.name.as_str()).collect();
    assert!(
        names.starts_with(&["traces.tsv", "traces.tsv.1", "traces.tsv.2"]),
        "{series}: {names:?}"
    );
    assert_eq!(
        out.value("download"),
        Some("same"),
        "{series}: download differs from the file"
    );
    let refusals = out.tagged("refuse");
    assert_eq!(refusals.len(), 5, "{series}");
    for r in refusals {
        assert!(r.ends_with("404 Not Found"), "{series}: {r}");
    }

    // The files: header first, seven columns, whole lines, at most 1 MiB, nothing lost.
    let mut lines_total = 0u64;
    let files = out.tagged("file");
    assert!(
        files.len() >= 3,
        "{series}: expected rotation under the flood: {files:?}"
    );
    for f in &files {
        let w: Vec<&str> = f.split_whitespace().collect();
        let (name, size, lines, bad): (&str, u64, u64, u64) = (
            w[0],
            w[1].parse().unwrap(),
            w[2].parse().unwrap(),
            w[3].parse().unwrap(),
        );
        assert_eq!(
            w[4],
            tracer::trace::tsv::HEADER.replace('\t', ","),
            "{series}: {name} header"
        );
        assert_eq!(bad, 0, "{series}: {name} has lines without 7 columns");
        assert!(size <= MIB, "{series}: {name} is {size} bytes");
        lines_total += lines - 1;
    }
    assert_eq!(
        lines_total, summary.events,
        "{series}: lines in files vs events"
    );
    assert_eq!(
        out.value("other-paths"),
        Some("0"),
        "{series}: the pattern let other paths in"
    );
    assert_eq!(
        out.value("pods").map(str::trim),
        Some("mysql-0/mysql"),
        "{series}"
    );

    // The reference README's recipes, run unchanged in the VM.
    let tail = out.value("recipe-tail").unwrap_or_default();
    assert!(
        tail.ends_with("\ttmpfs") || tail.ends_with(" tmpfs"),
        "{series}: tail: {tail:?}"
    );
    let active_lines = files
        .iter()
        .find(|f| f.starts_with("traces.tsv "))
        .and_then(|f| f.split_whitespace().nth(2)?.parse::<u64>().ok())
        .expect("traces.tsv listed");
    assert_eq!(
        out.value("recipe-grep"),
        Some((active_lines - 1).to_string().as_str()),
        "{series}"
    );
    assert_eq!(
        out.tagged("recipe-awk"),
        vec![format!("tmpfs {}", active_lines - 1)],
        "{series}"
    );
}

#[test]
fn node_tracer_on_debian_6_1() {
    check("6.1");
}

#[test]
fn node_tracer_on_debian_6_12() {
    check("6.12");
}

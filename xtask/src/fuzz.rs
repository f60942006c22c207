//! `cargo xtask fuzz`: every libFuzzer target under `fuzz/` (cargo fuzz, nightly) run for a
//! bounded time from its committed seed corpus, with what each did: executions, corpus size,
//! crashes. A crash leaves its input under `fuzz/artifacts/<target>/` and fails the run.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};

use crate::{cache, command};

/// The targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: &[&str] = &[
    "record",
    "mountinfo",
    "kube_names",
    "cri",
    "prometheus_text",
    "promql_json",
    "arguments",
];

/// cargo-fuzz, pinned.
const CARGO_FUZZ: &str = "0.13.2";

/// What one target's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: String,
    pub executions: u64,
    pub corpus: u64,
    /// The input that crashed it, if one did.
    pub crash: Option<PathBuf>,
}

/// Installs cargo-fuzz (into the cargo home) unless this version is there.
pub fn tools() -> anyhow::Result<()> {
    crate::setup::ebpf_toolchain()?;
    let installed =
        command::stdout(Command::new("cargo").args(["fuzz", "--version"])).unwrap_or_default();
    if !installed.contains(CARGO_FUZZ) {
        eprintln!("setup: cargo install cargo-fuzz {CARGO_FUZZ}");
        command::status(Command::new("cargo").args([
            "install",
            "--locked",
            "--quiet",
            "--version",
            CARGO_FUZZ,
            "cargo-fuzz",
        ]))?;
    }
    Ok(())
}

fn fuzz_dir() -> PathBuf {
    cache::workspace_root().join("fuzz")
}

/// How the targets are built: no sanitizer (the code under test is safe Rust, and libFuzzer
/// still catches every panic and overflow, debug assertions being on) and the dev profile,
/// which builds in a fraction of the release profile's time and still runs thousands of
/// inputs a second.
const BUILD: &[&str] = &["--sanitizer", "none", "--dev"];

/// Builds every target once. A failure carries the end of cargo's output, where its error
/// is: a test's report keeps only the panic message.
pub fn build() -> anyhow::Result<()> {
    let out = Command::new("cargo")
        .current_dir(fuzz_dir())
        .args(["+nightly", "fuzz", "build"])
        .args(BUILD)
        .output()
        .context("cannot start cargo fuzz build")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz build failed ({}):\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 40)
        );
    }
    Ok(())
}

/// Runs `target` for `time` from its seed corpus (new inputs go to a scratch corpus, so the
/// committed seeds only change by hand).
pub fn run(target: &str, time: Duration) -> anyhow::Result<Report> {
    let dir = fuzz_dir();
    let seeds = dir.join("corpus").join(target);
    let scratch = tempfile::tempdir()?;
    let out = Command::new("cargo")
        .current_dir(&dir)
        .args(["+nightly", "fuzz", "run"])
        .args(BUILD)
        .arg(target)
        .arg(scratch.path())
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={}", time.as_secs().max(1)))
        .args(["-print_final_stats=1", "-rss_limit_mb=2048", "-timeout=10"])
        .output()
        .with_context(|| format!("cargo fuzz run {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let stat = |name: &str| -> u64 {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let crash = log.lines().find_map(|l| {
        l.split_once("Test unit written to ")
            .map(|(_, path)| dir.join(path.trim()))
    });
    if !out.status.success() && crash.is_none() {
        bail!("cargo fuzz run {target} failed:\n{}", tail(&log, 40));
    }
    Ok(Report {
        target: target.to_owned(),
        executions: stat("number_of_executed_units"),
        corpus: count_files(scratch.path()) + count_files(&seeds),
        crash,
    })
}

fn count_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count() as u64)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

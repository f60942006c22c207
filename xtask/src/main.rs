//! `cargo xtask <task>`: set-up, tests, the demo.
use std::{path::PathBuf, process::Command};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use xtask::{cache, command, kernel::Kernel, scenario::TwoCgroups, setup, vm::VmRun};

#[derive(Parser)]
#[command(about = "Development tasks for kubectl-dentry")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what builds and tests need (nightly rust-src, bpf-linker, qemu, kernels).
    Setup,
    /// Set up, then run every test (what CI runs).
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot a real kernel in a VM and show the tracer at work on a two-cgroup workload.
    Demo {
        /// Debian cloud kernel series (6.1, 6.12) or package name.
        #[arg(long, default_value = "6.12")]
        kernel: String,
        /// Missing-name lookups made in the traced cgroup.
        #[arg(long, default_value_t = 3000)]
        lookups: u32,
    },
}

fn main() {
    if let Err(err) = run(Cli::parse().task) {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn run(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Setup => setup_all(),
        Task::Test { args } => {
            setup_all()?;
            command::status(
                Command::new("cargo")
                    .current_dir(cache::workspace_root())
                    .arg("test")
                    .args(args),
            )
        }
        Task::Demo { kernel, lookups } => demo(&kernel, lookups),
    }
}

fn setup_all() -> anyhow::Result<()> {
    setup::ebpf_toolchain()?;
    setup::apt_packages(setup::VM_PACKAGES)?;
    for series in xtask::kernel::DEFAULT_KERNELS {
        Kernel::fetch(series)?;
    }
    Ok(())
}

fn demo(kernel: &str, lookups: u32) -> anyhow::Result<()> {
    setup::ebpf_toolchain()?;
    setup::apt_packages(setup::VM_PACKAGES)?;
    let kernel = Kernel::fetch(kernel)?;
    let tracer = build_tracer()?;
    let workload = TwoCgroups {
        traced_lookups: lookups,
        other_lookups: lookups / 4,
    };
    eprintln!(
        "demo: booting Debian {} under qemu (TCG); the tracer attaches, then cgroup \"traced\" \
         looks up {} missing names and cgroup \"other\" {}",
        kernel.release, workload.traced_lookups, workload.other_lookups
    );
    let out = VmRun::new(&kernel, workload.script())
        .binary(xtask::scenario::TRACER, &tracer)
        .run()?;
    if out.status != 0 {
        anyhow::bail!("the demo script failed in the VM; log:\n{}", out.log);
    }
    println!(
        "kernel {} booted and ran in {:.1?}",
        kernel.release, out.elapsed
    );
    for line in out
        .tagged("tracer")
        .iter()
        .filter(|l| l.contains("attached"))
    {
        println!("tracer: {}", line.trim());
    }
    println!();
    println!("{:<10} {:>10} {:>20}", "CGROUP", "ID", "DENTRY ALLOCATIONS");
    for c in TwoCgroups::counts(&out) {
        println!("{:<10} {:>10} {:>20}", c.name, c.id, c.alloc);
    }
    Ok(())
}

/// Builds the tracer (and with it the eBPF object) and returns the binary's path.
fn build_tracer() -> anyhow::Result<PathBuf> {
    let root = cache::workspace_root();
    command::status(Command::new("cargo").current_dir(&root).args([
        "build",
        "--quiet",
        "--package",
        "tracer",
        "--bin",
        "tracer",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("debug/tracer");
    binary
        .is_file()
        .then_some(binary.clone())
        .with_context(|| format!("built the tracer but found no {}", binary.display()))
}

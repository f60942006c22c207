//! `cargo xtask <task>`: set-up, tests, the demo.
use std::{path::PathBuf, process::Command};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use xtask::{arch::Arch, cache, command, kernel::Kernel, setup, vm::VmRun};

#[derive(Parser)]
#[command(about = "Development tasks for kubectl-dentry")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what builds and tests need (nightly rust-src, bpf-linker, qemu, kernels,
    /// kubectl).
    Setup {
        /// Only what building needs (nightly rust-src, bpf-linker): for the image build.
        #[arg(long)]
        toolchain_only: bool,
    },
    /// Assemble the tracer image's root filesystem (a static tracer) in DIR.
    ImageRoot {
        dir: PathBuf,
        /// The image's architecture (arm64 is cross-built with Debian's gcc).
        #[arg(long, value_enum, default_value = "amd64")]
        arch: Arch,
    },
    /// Write the multi-arch tracer image (linux/amd64 + linux/arm64) as an OCI image layout
    /// archive, tracer-<version>.oci.tar, in OUT.
    Image {
        #[arg(long, default_value = "target/release-artifacts")]
        out: PathBuf,
    },
    /// Build the plugin's release archives for every krew platform, their krew manifest, and
    /// the tracer image (as `image` does).
    Release {
        #[arg(long, default_value = "target/release-artifacts")]
        out: PathBuf,
    },
    /// Run every libFuzzer target under fuzz/ for SECS seconds each, from its seed corpus.
    Fuzz {
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Only these targets (default: all).
        targets: Vec<String>,
    },
    /// Set up, then run every test (what CI runs).
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot a real kernel in a VM and show the tracer at work on a two-cgroup workload.
    Demo {
        /// Debian cloud kernel series (5.10, 6.1, 6.12, 7.3; 7 is the newest 7.x) or package name.
        #[arg(long, default_value = "6.12")]
        kernel: String,
        /// The kernel's architecture: arm64 boots Debian's arm64 cloud kernel under
        /// qemu-system-aarch64, with the tracer built for it.
        #[arg(long, value_enum, default_value = "amd64")]
        arch: Arch,
        /// Missing-name lookups made in prod/mysql-0 (web/nginx-1 makes a third as many).
        #[arg(long, default_value_t = 3000)]
        lookups: u32,
    },
    /// Run a shell script in the VM and print the console (for debugging the test bed).
    Vm {
        #[arg(long, default_value = "6.12")]
        kernel: String,
        #[arg(long, value_enum, default_value = "amd64")]
        arch: Arch,
        /// The script to run as /test.sh.
        script: PathBuf,
        /// DEST=SRC: put binary SRC at DEST in the VM (repeatable).
        #[arg(long = "binary", value_name = "DEST=SRC")]
        binaries: Vec<String>,
        /// DEST=SRC: put file SRC at DEST in the VM (repeatable).
        #[arg(long = "file", value_name = "DEST=SRC")]
        files: Vec<String>,
        /// Kernel modules to load first (repeatable).
        #[arg(long = "module")]
        modules: Vec<String>,
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Re-record the tracer output the plugin's tests replay (kubectl-dentry/tests/fixtures/)
    /// from real tracer runs in the VM.
    RecordFixtures {
        #[arg(long, default_value = "6.12")]
        kernel: String,
    },
    /// What loading the kernel programs costs: load and attach time and verified instructions
    /// of the release tracer started as a trace pod, per attach mode, on one kernel.
    BenchLoad {
        #[arg(long, default_value = "6.12")]
        kernel: String,
        #[arg(long, value_enum, default_value = "amd64")]
        arch: Arch,
    },
    /// Peak and current RSS of the release tracer under a trace flood in the VM.
    BenchRss {
        #[arg(long, default_value = "6.12")]
        kernel: String,
    },
    /// The release tracer over a long run in the VM, as the DaemonSet runs it: mixed storms,
    /// traces rotated, /metrics scraped every second, a container restarted every minute.
    /// Reports RSS, map entries and trace bytes each minute; fails on RSS growth after
    /// warm-up, a full map, or a count that drifted.
    Soak {
        #[arg(long, default_value = "6.12")]
        kernel: String,
        #[arg(long, default_value_t = 30)]
        minutes: u64,
        /// Seconds between restarts of pod A's container.
        #[arg(long, default_value_t = 60)]
        restart_secs: u64,
    },
    /// Benchmark the kernel side in the VM: per-lookup cost with no tracer, the floor probe,
    /// counters, tracing with a pattern that matches nothing, tracing everything.
    BenchKernel {
        #[arg(long, default_value = "6.12")]
        kernel: String,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        #[arg(long, default_value_t = 20000)]
        lookups: u32,
        /// Attach modes, one boot each.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "kprobe,fentry",
            value_parser = ["kprobe", "fentry"]
        )]
        modes: Vec<String>,
        /// Only these variants (comma-separated, e.g. floor,counters); all when absent.
        #[arg(
            long,
            value_delimiter = ',',
            value_parser = clap::builder::PossibleValuesParser::new(
                xtask::bench::VARIANTS.iter().map(|(name, _)| *name)
            )
        )]
        only: Vec<String>,
        /// Boots per attach mode, pooled (the floor moves between boots more than within one).
        #[arg(long, default_value_t = 1)]
        boots: u32,
        /// Also time each eBPF program in the kernel (BPF_ENABLE_STATS) and add a table of ns
        /// per program run; the timing adds to every run, so compare only runs that had it.
        #[arg(long)]
        program_stats: bool,
        /// Guest time counts instructions (qemu -icount), not host time: a busy host no
        /// longer moves the figures, but they weigh every instruction alike.
        #[arg(long)]
        icount: bool,
        /// The kernel's architecture (arm64: Debian's arm64 kernel under qemu-system-aarch64,
        /// the tracer and the storm cross-built).
        #[arg(long, value_enum, default_value = "amd64")]
        arch: Arch,
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
        Task::Setup { toolchain_only } => {
            if toolchain_only {
                setup::ebpf_toolchain()
            } else {
                setup_all()
            }
        }
        Task::ImageRoot { dir, arch } => {
            setup::ebpf_toolchain()?;
            if arch != Arch::host() {
                setup::cross_tools()?;
            }
            let tracer = xtask::release::image_root(&dir, arch)?;
            println!(
                "image root: {} (static tracer {})",
                dir.display(),
                tracer.display()
            );
            Ok(())
        }
        Task::Image { out } => {
            setup::ebpf_toolchain()?;
            setup::cross_tools()?;
            std::fs::create_dir_all(&out)?;
            let (archive, digest) = xtask::oci::write(&out)?;
            println!(
                "image {} ({digest}): {}",
                xtask::oci::reference(),
                archive.display()
            );
            Ok(())
        }
        Task::Release { out } => {
            setup::ebpf_toolchain()?;
            setup::cross_tools()?;
            let release = xtask::release::krew_release(&out)?;
            let (image, digest) = xtask::oci::write(&out)?;
            for (p, archive) in &release.archives {
                println!("{}/{}: {}", p.os, p.arch, archive.display());
            }
            println!("manifest: {}", release.manifest.display());
            println!(
                "image {} ({digest}): {}",
                xtask::oci::reference(),
                image.display()
            );
            Ok(())
        }
        Task::Fuzz { secs, targets } => {
            xtask::fuzz::tools()?;
            xtask::fuzz::build()?;
            let mut crashed = false;
            for target in xtask::fuzz::TARGETS {
                if !targets.is_empty() && !targets.iter().any(|t| t == target) {
                    continue;
                }
                let r = xtask::fuzz::run(target, std::time::Duration::from_secs(secs))?;
                println!(
                    "{:<16} {:>12} executions  corpus {:>5}  {}",
                    r.target,
                    r.executions,
                    r.corpus,
                    r.crash
                        .as_ref()
                        .map_or("ok".to_owned(), |p| format!("CRASH {}", p.display()))
                );
                crashed |= r.crash.is_some();
            }
            if crashed {
                anyhow::bail!("a fuzz target crashed; its input is under fuzz/artifacts/");
            }
            Ok(())
        }
        Task::Test { args } => {
            setup_all()?;
            command::status(
                Command::new("cargo")
                    .current_dir(cache::workspace_root())
                    .arg("test")
                    .args(args),
            )
        }
        Task::Demo {
            kernel,
            arch,
            lookups,
        } => demo(&kernel, arch, lookups),
        Task::Vm {
            kernel,
            arch,
            script,
            binaries,
            files,
            modules,
            timeout_secs,
        } => {
            setup::apt_packages(setup::VM_PACKAGES)?;
            let kernel = Kernel::fetch_for(&kernel, arch)?;
            let text = std::fs::read_to_string(&script)
                .with_context(|| format!("reading {}", script.display()))?;
            let mut run =
                VmRun::new(&kernel, text).timeout(std::time::Duration::from_secs(timeout_secs));
            for spec in &binaries {
                let (dest, src) = dest_src(spec)?;
                run = run.binary(dest, src);
            }
            for spec in &files {
                let (dest, src) = dest_src(spec)?;
                let data = std::fs::read(src).with_context(|| format!("reading {src}"))?;
                run = run.file(dest, data);
            }
            for module in &modules {
                run = run.module(module);
            }
            let out = run.run()?;
            print!("{}", out.log);
            eprintln!("vm: script exited {} after {:.1?}", out.status, out.elapsed);
            std::process::exit(out.status);
        }
        Task::RecordFixtures { kernel } => {
            let (kernel, tracer) = vm_kernel(&kernel, Arch::host())?;
            let dir = cache::workspace_root().join("kubectl-dentry/tests/fixtures");
            xtask::fixtures::record(&kernel, &tracer, &dir)?;
            println!("recorded on {} into {}", kernel.release, dir.display());
            Ok(())
        }
        Task::BenchLoad { kernel, arch } => {
            let (kernel, tracer) = vm_kernel(&kernel, arch)?;
            print!("{}", xtask::bench::load(&kernel, &tracer)?);
            Ok(())
        }
        Task::BenchRss { kernel } => {
            let (kernel, tracer) = vm_kernel(&kernel, Arch::host())?;
            print!("{}", xtask::bench::tracer_rss(&kernel, &tracer)?);
            Ok(())
        }
        Task::Soak {
            kernel,
            minutes,
            restart_secs,
        } => {
            let (kernel, tracer) = vm_kernel(&kernel, Arch::host())?;
            let bpf_maps =
                xtask::arch::single_file_binary(Arch::host(), "xtask/src/bin/bpf-maps.rs")?;
            eprintln!("soak: {minutes} minutes in the VM on {}", kernel.release);
            let soak = xtask::soak::Soak {
                secs: minutes * 60,
                restart_secs,
                batch: 1000,
            };
            print!("{}", soak.run(&kernel, &tracer, &bpf_maps)?);
            Ok(())
        }
        Task::BenchKernel {
            kernel,
            rounds,
            lookups,
            modes,
            only,
            boots,
            program_stats,
            icount,
            arch,
        } => {
            let (kernel, tracer) = vm_kernel(&kernel, arch)?;
            let storm = xtask::arch::single_file_binary(arch, "xtask/src/bin/lookup-storm.rs")?;
            eprintln!(
                "bench: {rounds} rounds of {lookups} lookups per variant; this takes minutes"
            );
            print!(
                "{}",
                xtask::bench::run(
                    &kernel,
                    &tracer,
                    &storm,
                    &xtask::bench::Plan {
                        rounds,
                        lookups,
                        boots,
                        modes,
                        only,
                        program_stats,
                        icount,
                    }
                )?
            );
            Ok(())
        }
    }
}

fn setup_all() -> anyhow::Result<()> {
    setup::ebpf_toolchain()?;
    setup::apt_packages(setup::VM_PACKAGES)?;
    setup::release_tools()?;
    for series in xtask::kernel::DEFAULT_KERNELS {
        for arch in [Arch::Amd64, Arch::Arm64] {
            Kernel::fetch_for(series, arch)?;
        }
    }
    xtask::kernel::busybox(Arch::Arm64)?;
    setup::kubectl()?;
    Ok(())
}

fn demo(kernel: &str, arch: Arch, lookups: u32) -> anyhow::Result<()> {
    use kubectl_dentry::{
        rates::{Sample, rows},
        table,
        tracer::log::{self as tracer_log, Line},
    };
    let (kernel, tracer) = vm_kernel(kernel, arch)?;
    let runs = xtask::fixtures::PodRuns {
        lookups_a: lookups,
        lookups_b: lookups / 3,
        kept: false,
    };
    eprintln!(
        "demo: booting Debian {} ({}) under qemu (TCG) with a kubepods cgroup tree \
         (prod/mysql-0, web/nginx-1); the tracer runs with the arguments of the plugin's tracer \
         pods",
        kernel.release,
        arch.debian()
    );
    let recorded = runs.run(&kernel, &tracer)?;
    println!(
        "kernel {} booted and ran in {:.1?}",
        kernel.release, recorded.output.elapsed
    );

    // `kubectl dentry top`: the plugin's own parsing, arithmetic and table.
    let before = Sample::parse(&recorded.text("metrics-1"))
        .with_context(|| format!("the top pod's tracer said:\n{}", recorded.text("top-log")))?;
    let after = Sample::parse(&recorded.text("metrics-2"))?;
    let seconds = recorded.scrape_interval().unwrap_or(f64::NAN);
    let mut top_rows = rows(&before, &after, seconds, "vm");
    table::sort(&mut top_rows, table::SortBy::Memory);
    let node = table::NodeLine::new("vm", &after);
    println!();
    println!(
        "$ kubectl dentry top    # {} + {} failed lookups between two scrapes {seconds:.1}s apart",
        runs.lookups_a, runs.lookups_b
    );
    print!(
        "{}",
        table::render(&top_rows, &[node], table::Output::Table)
    );

    // `kubectl dentry trace`: the trace pod's log, split by the plugin's own routing.
    let log = recorded.text("trace-log");
    let (data, messages): (Vec<&str>, Vec<&str>) = log
        .lines()
        .filter(|l| !l.is_empty())
        .partition(|l| matches!(tracer_log::classify(l), Line::Header | Line::Event));
    println!();
    println!("$ kubectl dentry trace pod/mysql-0 -n prod --patterns=#sql,.ibd");
    println!("stdout ({} lines; the first shown):", data.len());
    for line in data.iter().take(8) {
        println!("  {line}");
    }
    println!("stderr (the tracer's summary):");
    for line in messages
        .iter()
        .filter(|l| tracer_log::classify(l) == Line::Message)
        .take(16)
    {
        println!("  {line}");
    }
    Ok(())
}

/// What a task that boots the tracer in a VM needs: the build and VM tools installed, the
/// kernel of `series` for `arch`, and the tracer it boots (`xtask::arch::tracer`, with the
/// cross tools installed first for another architecture).
fn vm_kernel(series: &str, arch: Arch) -> anyhow::Result<(Kernel, PathBuf)> {
    setup::ebpf_toolchain()?;
    setup::apt_packages(setup::VM_PACKAGES)?;
    let kernel = Kernel::fetch_for(series, arch)?;
    if arch != Arch::host() {
        setup::cross_tools()?;
    }
    Ok((kernel, xtask::arch::tracer(arch)?))
}

fn dest_src(spec: &str) -> anyhow::Result<(&str, &str)> {
    spec.split_once('=')
        .with_context(|| format!("{spec}: expected DEST=SRC"))
}

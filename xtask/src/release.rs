//! Release artefacts: the container image's root filesystem (a static tracer on nothing), and
//! the plugin's krew archive with a manifest whose sha256 matches it.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{cache, command};

pub const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where release builds go, apart from `target/` so they never wait on another cargo.
pub const TARGET_DIR: &str = "target/release-build";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds one binary in release mode; `static_glibc` links it with `+crt-static`, so it needs
/// no shared library (the image has none).
pub fn build_binary(package: &str, bin: &str, static_glibc: bool) -> anyhow::Result<PathBuf> {
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
        .args(["--target", HOST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    if static_glibc {
        // With --target given, RUSTFLAGS reach only the target crates: not build scripts, not
        // the nested eBPF build.
        cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
    }
    command::status(&mut cmd)?;
    let binary = target_dir.join(HOST_TARGET).join("release").join(bin);
    binary
        .is_file()
        .then_some(binary.clone())
        .with_context(|| format!("built {bin} but found no {}", binary.display()))
}

/// The image's root: `/tracer` (static) and the empty directories its volumes mount on.
pub fn image_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let tracer = build_binary("tracer", "tracer", true)?;
    let ldd = Command::new("ldd").arg(&tracer).output()?;
    let ldd = String::from_utf8_lossy(&ldd.stdout) + String::from_utf8_lossy(&ldd.stderr);
    if !(ldd.contains("not a dynamic executable") || ldd.contains("statically linked")) {
        bail!("the tracer is not static; ldd says: {ldd}");
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

/// `kubectl-dentry_<version>_<os>_<arch>.tar.gz`.
pub fn archive_name(os: &str, arch: &str) -> String {
    format!("kubectl-dentry_{VERSION}_{os}_{arch}.tar.gz")
}

/// The release archive for this platform (binary + licenses + README) and a krew manifest for
/// it, in `out`. Returns (archive, manifest).
pub fn krew_release(out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let plugin = build_binary("kubectl-dentry", "kubectl-dentry", false)?;
    std::fs::create_dir_all(out)?;
    let archive = out.join(archive_name("linux", "amd64"));
    let root = cache::workspace_root();
    let files: Vec<(String, PathBuf)> = vec![
        ("kubectl-dentry".into(), plugin),
        ("LICENSE-MIT".into(), root.join("LICENSE-MIT")),
        ("LICENSE-APACHE".into(), root.join("LICENSE-APACHE")),
        ("README.md".into(), root.join("README.md")),
    ];
    write_tar_gz(&archive, &files)?;
    let sha = sha256_hex(&std::fs::read(&archive)?);
    let template = std::fs::read_to_string(root.join("krew/dentry.yaml"))?;
    let manifest = fill_manifest(&template, "linux", "amd64", &sha);
    let manifest_path = out.join("dentry.yaml");
    std::fs::write(&manifest_path, manifest)?;
    Ok((archive, manifest_path))
}

/// The template with this version, and the one built platform's sha256 filled in.
pub fn fill_manifest(template: &str, os: &str, arch: &str, sha: &str) -> String {
    template
        .replace("{{VERSION}}", VERSION)
        .replace(&format!("{{{{SHA256_{os}_{arch}}}}}"), sha)
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

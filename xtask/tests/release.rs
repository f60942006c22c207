//! Shipping: the krew archive and manifest agree (names, bin, sha256), the real kubectl finds
//! the unpacked plugin and runs it, and the image's root filesystem runs the tracer with nothing
//! else in it.
use std::{path::Path, process::Command};

use xtask::release::{self, VERSION};

/// Runs `cmd`, which must succeed; returns its trimmed stdout.
fn succeeded(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn untar(archive: &Path, into: &Path) -> Vec<String> {
    let names =
        release::tar_gz_names(std::fs::File::open(archive).expect("archive")).expect("entries");
    let file = std::fs::File::open(archive).expect("archive");
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(into)
        .expect("unpack");
    names
}

/// What a Mac needs to run it, read from its load commands: its CPU, macOS 11 or older as the
/// minimum, and only libSystem and libraries every macOS has, at their install names, with
/// every undefined symbol bound to one of them.
fn macos_binary_runs_on_any_mac(arch: &str, binary: &[u8]) {
    let m = xtask::binaries::macho(binary).expect("Mach-O");
    let cpu = match arch {
        "arm64" => object::macho::CPU_TYPE_ARM64,
        _ => object::macho::CPU_TYPE_X86_64,
    };
    assert_eq!(m.cpu, cpu, "darwin/{arch}");
    let min = m.min_macos.expect("a minimum macOS is stated");
    assert!(min <= (11, 0), "darwin/{arch} needs macOS {min:?}");
    assert!(
        m.dylibs.contains(&"/usr/lib/libSystem.B.dylib".to_owned()),
        "{:?}",
        m.dylibs
    );
    for dylib in &m.dylibs {
        assert!(
            xtask::binaries::macos_library_allowed(dylib),
            "darwin/{arch} loads {dylib}"
        );
    }
    assert!(m.imports.len() > 50, "{} imports", m.imports.len());
    for (symbol, library) in &m.imports {
        assert!(
            library.is_some(),
            "darwin/{arch}: {symbol} is bound to no library"
        );
    }
}

/// Static (no interpreter, no libraries, no glibc symbol versions), stripped, and for arm64
/// run under qemu-user: `version` names its platform and `--help` works.
fn linux_binary_runs_on_any_distribution(arch: &str, binary: &[u8], dir: &Path) {
    let elf = xtask::binaries::elf(binary).expect("ELF");
    assert!(elf.is_static, "linux/{arch} is not static");
    assert!(
        elf.needed_versions.is_empty(),
        "linux/{arch} needs {:?}",
        elf.needed_versions
    );
    assert!(elf.stripped, "linux/{arch} is not stripped");
    let plugin = dir.join("kubectl-dentry");
    let run = |args: &[&str]| match arch {
        "arm64" => succeeded(Command::new("qemu-aarch64").arg(&plugin).args(args)),
        _ => succeeded(Command::new(&plugin).args(args)),
    };
    let version = run(&["version", "--kubeconfig", "/nonexistent"]);
    assert!(
        version
            .lines()
            .any(|l| l == format!("platform linux/{arch}")),
        "{version}"
    );
    assert!(run(&["--help"]).contains("trace"));
}

#[test]
fn krew_manifest_matches_the_archives_and_kubectl_runs_the_plugin() {
    xtask::setup::release_tools().expect("release tools");
    let out = tempfile::tempdir().expect("tempdir");
    let built = release::krew_release(out.path()).expect("release builds");
    let manifest: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&built.manifest).expect("manifest"))
            .expect("yaml");
    assert_eq!(
        manifest["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "dentry");
    assert_eq!(manifest["spec"]["version"], format!("v{VERSION}"));
    for field in ["shortDescription", "description", "caveats"] {
        assert!(
            manifest["spec"][field]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert!(
        manifest["spec"]["caveats"]
            .as_str()
            .unwrap_or_default()
            .contains("privileged")
    );

    // Every krew platform is built here.
    let mut named: Vec<String> = built
        .archives
        .iter()
        .map(|(p, _)| format!("{}/{}", p.os, p.arch))
        .collect();
    named.sort();
    assert_eq!(
        named,
        ["darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"]
    );

    // The manifest names exactly the archives built, each with its uri and sha256, and
    // each archive's binary is for its platform.
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), built.archives.len());
    for (p, archive) in &built.archives {
        let entry = platforms
            .iter()
            .find(|e| {
                e["selector"]["matchLabels"]["os"] == p.os
                    && e["selector"]["matchLabels"]["arch"] == p.arch
            })
            .unwrap_or_else(|| panic!("{}/{} not in the manifest", p.os, p.arch));
        assert_eq!(entry["bin"], "kubectl-dentry");
        let name = archive.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            entry["uri"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!("/{name}")),
            "{}",
            entry["uri"]
        );
        let sha = release::sha256_hex(&std::fs::read(archive).expect("archive"));
        assert_eq!(entry["sha256"], sha.as_str());
        let unpacked = tempfile::tempdir().expect("tempdir");
        untar(archive, unpacked.path());
        let file = succeeded(
            Command::new("file")
                .arg("-b")
                .arg(unpacked.path().join("kubectl-dentry")),
        );
        let (format, machine) = match (p.os, p.arch) {
            ("linux", "amd64") => ("ELF 64-bit", "x86-64"),
            ("linux", "arm64") => ("ELF 64-bit", "ARM aarch64"),
            (_, "amd64") => ("Mach-O 64-bit", "x86_64"),
            _ => ("Mach-O 64-bit", "arm64"),
        };
        assert!(
            file.starts_with(format) && file.contains(machine),
            "{}/{}: {file}",
            p.os,
            p.arch
        );
        let binary = std::fs::read(unpacked.path().join("kubectl-dentry")).expect("binary");
        match p.os {
            "darwin" => macos_binary_runs_on_any_mac(p.arch, &binary),
            _ => linux_binary_runs_on_any_distribution(p.arch, &binary, unpacked.path()),
        }
    }
    let archive = &built
        .archives
        .iter()
        .find(|(p, _)| p.os == "linux" && p.arch == "amd64")
        .expect("linux/amd64")
        .1;

    let unpacked = tempfile::tempdir().expect("tempdir");
    let mut names = untar(archive, unpacked.path());
    names.sort();
    assert_eq!(
        names,
        [
            "LICENSE-APACHE",
            "LICENSE-MIT",
            "README.md",
            "kubectl-dentry"
        ]
    );

    // The real kubectl, with the unpacked plugin on PATH.
    let kubectl = xtask::setup::kubectl().expect("kubectl from PyPI");
    let path = format!(
        "{}:{}",
        unpacked.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let list = Command::new(&kubectl)
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .expect("kubectl");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.trim() == unpacked.path().join("kubectl-dentry").display().to_string()),
        "kubectl plugin list: {listed}{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let version = succeeded(
        Command::new(&kubectl)
            .args(["dentry", "version"])
            .env("PATH", &path),
    );
    assert_eq!(
        version.lines().next(),
        Some(format!("kubectl-dentry {VERSION}").as_str()),
        "{version}"
    );
}

#[test]
fn the_image_root_runs_the_tracer_alone() {
    let root = tempfile::tempdir().expect("tempdir");
    release::image_root(root.path(), xtask::arch::Arch::host()).expect("image root");
    let entries: Vec<String> = std::fs::read_dir(root.path())
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "tracer")
        .collect();
    for dir in &entries {
        // Only empty mount points besides the binary.
        let inside = std::fs::read_dir(root.path().join(dir))
            .map(|d| d.count())
            .unwrap_or(1);
        assert!(root.path().join(dir).is_dir(), "{dir}");
        assert!(
            dir == "data" || dir == "var" || inside == 0,
            "{dir} is not empty"
        );
    }
    assert_eq!(
        succeeded(
            Command::new("chroot")
                .arg(root.path())
                .args(["/tracer", "--version"])
        ),
        format!("tracer {VERSION}")
    );

    // --check as a container runtime would run it: /proc and /sys mounted, nothing else.
    let script = format!(
        "mount --bind /proc {r}/proc && mount --bind /sys {r}/sys && exec chroot {r} /tracer --check",
        r = root.path().display()
    );
    let check = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("btf ") && l.contains(" ok ")),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("capabilities ")),
        "{stdout}{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    if Path::new("/sys/bus/event_source/devices/kprobe/type").exists() {
        assert!(stdout.contains("kprobes       ok"), "{stdout}");
    } else {
        assert!(
            last.starts_with("missing: ") && last.contains("kprobes"),
            "{stdout}{stderr}"
        );
        assert!(!check.status.success());
    }
}

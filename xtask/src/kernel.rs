//! Debian cloud kernels (kprobes, BTF, no lockdown) fetched from the Debian archive with a
//! private apt state in the cache, so the system's apt configuration is never touched.
use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{arch::Arch, cache, command};

/// The kernels the project is tested on: bullseye's 5.10, bookworm's 6.1, bookworm-backports'
/// 6.12 and the newest 7.x (trixie-backports or sid: `7` picks the newest of the series, since
/// those suites replace versions without notice).
pub const DEFAULT_KERNELS: &[&str] = &["5.10", "6.1", "6.12", "7"];

/// One test per tested kernel and attach mode, each calling `$check(series, mode)`: the
/// kernel suites' matrix (`DEFAULT_KERNELS` × kprobe, fentry: every amd64 kernel here has BPF
/// trampolines), so each combination passes or fails on its own and runs beside the others.
#[macro_export]
macro_rules! each_kernel_and_mode {
    ($check:path) => {
        #[test]
        fn debian_5_10_kprobe() {
            $check("5.10", "kprobe");
        }

        #[test]
        fn debian_5_10_fentry() {
            $check("5.10", "fentry");
        }

        #[test]
        fn debian_6_1_kprobe() {
            $check("6.1", "kprobe");
        }

        #[test]
        fn debian_6_1_fentry() {
            $check("6.1", "fentry");
        }

        #[test]
        fn debian_6_12_kprobe() {
            $check("6.12", "kprobe");
        }

        #[test]
        fn debian_6_12_fentry() {
            $check("6.12", "fentry");
        }

        #[test]
        fn debian_7_kprobe() {
            $check("7", "kprobe");
        }

        #[test]
        fn debian_7_fentry() {
            $check("7", "fentry");
        }
    };
}

/// One test per tested kernel, each calling `$check(series)` in the suite's own mode: for the
/// suites whose subject does not depend on how the probes attach (`each_kernel_and_mode`
/// covers that).
#[macro_export]
macro_rules! each_kernel {
    ($check:path) => {
        #[test]
        fn debian_5_10() {
            $check("5.10");
        }

        #[test]
        fn debian_6_1() {
            $check("6.1");
        }

        #[test]
        fn debian_6_12() {
            $check("6.12");
        }

        #[test]
        fn debian_7() {
            $check("7");
        }
    };
}

/// The kernel suites on Debian's arm64 cloud kernels, each test calling `$check(arch, series,
/// mode)` with `Arch::Arm64` (the amd64 tests of a suite that runs on both call it with
/// `Arch::Amd64`). A representative pair, to keep a cold CI run under 45 minutes (arm64 is
/// emulated instruction by instruction): the oldest and the newest kernel. 5.10 in `auto` mode,
/// which has no BPF trampolines there (ftrace direct calls came to arm64 in 6.4) and so
/// attaches every probe as a kprobe, and the newest 7.x with fentry.
#[macro_export]
macro_rules! each_arm64_kernel_and_mode {
    ($check:path) => {
        #[test]
        fn arm64_debian_5_10_auto() {
            $check($crate::arch::Arch::Arm64, "5.10", "auto");
        }

        #[test]
        fn arm64_debian_7_fentry() {
            $check($crate::arch::Arch::Arm64, "7", "fentry");
        }
    };
}

/// Whether `series` on `arch` has BPF trampolines (fentry): every amd64 kernel here; arm64
/// from 6.4 (ftrace direct calls).
pub fn has_trampolines(arch: Arch, series: &str) -> bool {
    let mut parts = series.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    arch == Arch::Amd64 || version >= (6, 4)
}

const SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
";

/// An unpacked kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// Debian package name, e.g. `linux-image-6.1.0-56-cloud-amd64-unsigned`.
    pub package: String,
    /// `uname -r`, e.g. `6.1.0-56-cloud-amd64`.
    pub release: String,
    pub arch: Arch,
    root: PathBuf,
    /// The kernel image: `boot/vmlinuz-RELEASE` in a classic package, or
    /// `usr/lib/modules/RELEASE/vmlinuz` in 7.x's split `linux-binary-*` package.
    vmlinuz: PathBuf,
    /// `lib/modules/RELEASE` (or `usr/lib/modules/RELEASE`).
    modules: PathBuf,
}

impl Kernel {
    /// A kernel by series (`6.1`, `6.12`: the newest cloud build in the archive, or the one
    /// already cached) or by exact package name. Downloads at most once per machine.
    pub fn fetch(spec: &str) -> anyhow::Result<Kernel> {
        Kernel::fetch_for(spec, Arch::host())
    }

    /// As `fetch`, for `arch` (Debian's arm64 cloud kernels for `Arch::Arm64`).
    pub fn fetch_for(spec: &str, arch: Arch) -> anyhow::Result<Kernel> {
        let dir = cache::dir().join("kernels");
        std::fs::create_dir_all(&dir)?;
        // Tests fetch in parallel; one downloads, the others wait and then find it cached.
        let lock = File::create(dir.join(".lock"))?;
        lock.lock().context("locking the kernel cache")?;
        if let Some(kernel) = cached(&dir, spec, arch)? {
            return Ok(kernel);
        }
        // Newest first; a package the lists name but the mirror does not serve is passed over.
        let mut failures = Vec::new();
        for package in candidates(spec, arch)? {
            eprintln!("kernel: downloading {package}");
            match unpack(&dir, &package, arch) {
                Ok(()) => {
                    return cached(&dir, &package, arch)?
                        .with_context(|| format!("{package} unpacked but no vmlinuz found in it"));
                }
                Err(e) => {
                    eprintln!("kernel: {package}: {e:#}");
                    failures.push(package);
                }
            }
        }
        bail!("no kernel of {spec:?} could be downloaded (tried {failures:?})")
    }

    pub fn vmlinuz(&self) -> PathBuf {
        self.vmlinuz.clone()
    }

    /// `major.minor`, e.g. `6.12`.
    pub fn series(&self) -> String {
        self.release
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The kernel's raw BTF (the `.BTF` section of vmlinux), extracted once from the compressed
    /// vmlinuz: find the payload by its compression magic, decompress, cut the section out.
    pub fn btf(&self) -> anyhow::Result<PathBuf> {
        let out = self.root.join("vmlinux.btf");
        if out.is_file() {
            return Ok(out);
        }
        let image = std::fs::read(self.vmlinuz())?;
        // Work in a private directory and rename the result into place: tests running in
        // parallel may extract the same kernel's BTF at the same time.
        let work = tempfile::tempdir_in(&self.root)?;
        let vmlinux = work.path().join("vmlinux");
        let mut found = false;
        for (magic, tool) in PAYLOADS {
            for at in find_all(&image, magic) {
                let mut child = Command::new(tool)
                    .arg("-dc")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .with_context(|| format!("running {tool} (cargo xtask setup installs it)"))?;
                let mut stdin = child.stdin.take().context("no stdin")?;
                let payload = image[at..].to_vec();
                let feeder = std::thread::spawn(move || {
                    // The payload is followed by other data; the decompressor stops reading
                    // at the end of its stream, so a write error here is expected.
                    let _ = std::io::Write::write_all(&mut stdin, &payload);
                });
                // Trailing garbage makes the decompressor exit non-zero after a full output.
                let output = child.wait_with_output()?;
                let _ = feeder.join();
                if output.stdout.starts_with(b"\x7fELF") {
                    std::fs::write(&vmlinux, &output.stdout)?;
                    found = true;
                    break;
                }
            }
            if found {
                break;
            }
        }
        if !found {
            bail!(
                "no compressed vmlinux found in {}",
                self.vmlinuz().display()
            );
        }
        let btf = work.path().join("vmlinux.btf");
        command::run(
            Command::new("objcopy")
                .args(["-O", "binary", "--only-section=.BTF"])
                .arg(&vmlinux)
                .arg(&btf),
        )?;
        std::fs::rename(&btf, &out)?;
        Ok(out)
    }

    /// A module (`loop`, ...) as an uncompressed `.ko` that busybox `insmod` can load.
    pub fn module(&self, name: &str) -> anyhow::Result<PathBuf> {
        let modules = &self.modules;
        let file = format!("{name}.ko");
        let found = find_file(modules, &file)
            .or_else(|| find_file(modules, &format!("{file}.xz")))
            .with_context(|| format!("module {name} not in {}", modules.display()))?;
        if found.extension().is_some_and(|e| e == "ko") {
            return Ok(found);
        }
        let dir = self.root.join("unpacked-modules");
        let plain = dir.join(&file);
        if !plain.is_file() {
            std::fs::create_dir_all(&dir)?;
            let out = command::run(Command::new("xz").arg("-dc").arg(&found))?;
            crate::cache::write_atomically(&plain, &out.stdout)?;
        }
        Ok(plain)
    }
}

/// Compression magics of a bzImage payload and the tool that decompresses each.
const PAYLOADS: &[(&[u8], &str)] = &[
    (&[0x02, 0x21, 0x4c, 0x18], "lz4"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    (&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "xz"),
    (&[0x1f, 0x8b, 0x08], "gzip"),
];

fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
}

/// Does `package` belong to `spec` (a series like `6.1`, or an exact package name)?
pub fn matches(spec: &str, package: &str, arch: Arch) -> bool {
    if package == spec {
        return true;
    }
    let Some(version) = image_version(package, arch) else {
        return false;
    };
    // A major version alone (`7`) is the whole series; `6.1` is one minor series.
    let parts = spec.split('.').count();
    let series: Vec<&str> = version.splitn(3, ['.', '-', '+']).take(parts).collect();
    series.join(".") == spec
}

/// `VER` of `linux-image-VER-cloud-ARCH-unsigned` or of `linux-image-VER-cloud-ARCH` (the
/// signed image before 7.x; a metapackage over `linux-binary-*` and `linux-modules-*` since).
fn image_version(package: &str, arch: Arch) -> Option<&str> {
    let rest = package.strip_prefix("linux-image-")?;
    let cloud = format!("-cloud-{}", arch.debian());
    let version = rest
        .strip_suffix("-unsigned")
        .unwrap_or(rest)
        .strip_suffix(cloud.as_str())?;
    // Not the unversioned metapackages (`linux-image-cloud-amd64`, `linux-image-6.1-cloud-amd64`).
    version.contains(['-', '+']).then_some(version)
}

/// Orders package names by the numbers in them, so `6.1.0-56` sorts after `6.1.0-6`; of the
/// same version the unsigned build, which is the one whose image needs no signature check.
fn version_key(package: &str) -> (Vec<u64>, bool) {
    let numbers = package
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers, package.ends_with("-unsigned"))
}

/// The packages of `spec`, newest first.
fn by_age<'a>(spec: &str, arch: Arch, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut found: Vec<&str> = names.filter(|name| matches(spec, name, arch)).collect();
    found.sort_by_key(|name| std::cmp::Reverse(version_key(name)));
    found.dedup();
    found
}

fn newest<'a>(spec: &str, arch: Arch, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    by_age(spec, arch, names).first().copied()
}

fn cached(dir: &Path, spec: &str, arch: Arch) -> anyhow::Result<Option<Kernel>> {
    let mut complete = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.join(".complete").is_file()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            complete.push(name.to_owned());
        }
    }
    let Some(package) = newest(spec, arch, complete.iter().map(String::as_str)) else {
        return Ok(None);
    };
    let root = dir.join(package);
    Ok(locate(&root).map(|(release, vmlinuz, modules)| Kernel {
        package: package.to_owned(),
        release,
        arch,
        root,
        vmlinuz,
        modules,
    }))
}

/// Where an unpacked kernel keeps its image and modules, and its release: the classic layout
/// (`boot/vmlinuz-RELEASE`, `lib/modules/RELEASE`) or 7.x's (`usr/lib/modules/RELEASE/vmlinuz`,
/// `vmlinuz.unsigned` in the unsigned build).
fn locate(root: &Path) -> Option<(String, PathBuf, PathBuf)> {
    let boot = std::fs::read_dir(root.join("boot")).into_iter().flatten();
    for entry in boot.flatten() {
        let name = entry.file_name();
        if let Some(release) = name.to_str().and_then(|n| n.strip_prefix("vmlinuz-")) {
            let modules = root.join("lib/modules").join(release);
            return Some((release.to_owned(), entry.path(), modules));
        }
    }
    let usr = std::fs::read_dir(root.join("usr/lib/modules"))
        .into_iter()
        .flatten();
    for entry in usr.flatten() {
        // `vmlinuz.unsigned` in `linux-binary-unsigned-*`.
        for image in ["vmlinuz", "vmlinuz.unsigned"] {
            let vmlinuz = entry.path().join(image);
            if vmlinuz.is_file() {
                let release = entry.file_name().to_str()?.to_owned();
                return Some((release, vmlinuz, entry.path()));
            }
        }
    }
    None
}

/// `apt-get`/`apt-cache` with every piece of state redirected into the cache, one state per
/// architecture (the packages of `arch` only).
fn apt(arch: Arch, program: &str, args: &[&str]) -> Command {
    let state = apt_state(arch);
    let opt = |k: &str, v: &Path| format!("-o{k}={}", v.display());
    let mut cmd = Command::new(program);
    cmd.arg(opt("Dir::Etc::SourceList", &state.join("sources.list")))
        .arg("-oDir::Etc::SourceParts=/nonexistent")
        .arg(opt("Dir::State::Lists", &state.join("lists")))
        .arg(opt("Dir::Cache", &state))
        .arg(opt("Dir::Cache::archives", &state.join("archives")))
        .arg("-oAPT::Sandbox::User=root")
        .arg(format!("-oAPT::Architecture={}", arch.debian()))
        .arg(format!("-oAPT::Architectures::={}", arch.debian()))
        .args(args);
    cmd
}

fn apt_state(arch: Arch) -> PathBuf {
    match arch {
        Arch::Amd64 => cache::dir().join("apt"),
        other => cache::dir().join(format!("apt-{}", other.debian())),
    }
}

/// The private package lists for `arch`, made or refreshed.
fn apt_update(arch: Arch) -> anyhow::Result<()> {
    let state = apt_state(arch);
    for sub in ["lists/partial", "archives/partial"] {
        std::fs::create_dir_all(state.join(sub))?;
    }
    std::fs::write(state.join("sources.list"), SOURCES)?;
    command::run(&mut apt(arch, "apt-get", &["update", "-qq"]))
        .context("updating the private package lists for the Debian kernel archive")?;
    Ok(())
}

/// Busybox for `arch`'s initramfs: the host's (`busybox-static`) when native, else Debian's
/// `busybox-static` of that architecture, unpacked once into the cache.
pub fn busybox(arch: Arch) -> anyhow::Result<PathBuf> {
    if arch == Arch::host() {
        return Ok(PathBuf::from("/bin/busybox"));
    }
    let dir = cache::dir().join(format!("busybox-{}", arch.debian()));
    // Debian's busybox-static put it in /bin until its packages moved to /usr (usrmerge):
    // the mirror serves either, and replaces one with the other without notice.
    let unpacked = || {
        ["usr/bin/busybox", "bin/busybox"]
            .iter()
            .map(|p| dir.join(p))
            .find(|p| p.is_file())
    };
    if let Some(binary) = unpacked() {
        return Ok(binary);
    }
    std::fs::create_dir_all(cache::dir())?;
    let lock = File::create(cache::dir().join(".busybox-lock"))?;
    lock.lock().context("locking the busybox cache")?;
    if let Some(binary) = unpacked() {
        return Ok(binary);
    }
    apt_update(arch)?;
    unpack_into(arch, "busybox-static", &dir)?;
    unpacked().with_context(|| {
        format!(
            "busybox-static unpacked into {} but neither usr/bin/busybox nor bin/busybox is there",
            dir.display()
        )
    })
}

/// Downloads `package` of `arch` into the cache; returns the .deb.
fn download(arch: Arch, package: &str) -> anyhow::Result<PathBuf> {
    let debs = cache::dir().join("debs");
    std::fs::create_dir_all(&debs)?;
    command::run(apt(arch, "apt-get", &["download", "-qq", package]).current_dir(&debs))
        .with_context(|| format!("downloading {package}"))?;
    std::fs::read_dir(&debs)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&format!("{package}_"))
                    && n.ends_with(&format!("_{}.deb", arch.debian()))
            })
        })
        .with_context(|| format!("{package} downloaded but no .deb in {}", debs.display()))
}

/// The archive's packages of `spec`, newest first (at most a few: the mirror may lack some).
fn candidates(spec: &str, arch: Arch) -> anyhow::Result<Vec<String>> {
    apt_update(arch)?;
    let names = command::stdout(&mut apt(arch, "apt-cache", &["pkgnames", "linux-image-"]))?;
    let found: Vec<String> = by_age(spec, arch, names.lines())
        .into_iter()
        .take(4)
        .map(str::to_owned)
        .collect();
    if found.is_empty() {
        bail!(
            "no Debian cloud kernel matches {spec:?}: give a series like 5.10, 6.1, 6.12 or 7 \
             (the newest 7.x), or a package name like linux-image-6.1.0-56-cloud-{}-unsigned",
            arch.debian()
        );
    }
    Ok(found)
}

fn unpack(dir: &Path, package: &str, arch: Arch) -> anyhow::Result<()> {
    let root = dir.join(package);
    unpack_into(arch, package, &root)?;
    if locate(&root).is_none() {
        // 7.x: the image package only depends on the kernel and its modules.
        let version = image_version(package, arch)
            .with_context(|| format!("{package} holds no kernel and names no version"))?;
        let cloud = format!("{version}-cloud-{}", arch.debian());
        let binary = [
            format!("linux-binary-unsigned-{cloud}"),
            format!("linux-binary-{cloud}"),
        ];
        let deb = binary
            .iter()
            .find_map(|name| download(arch, name).ok())
            .with_context(|| format!("{package}: neither of {binary:?} could be downloaded"))?;
        extract(&deb, &root)?;
        add_into(arch, &format!("linux-modules-{cloud}"), &root)?;
    }
    std::fs::write(root.join(".complete"), b"")?;
    Ok(())
}

/// Downloads `package` of `arch` and unpacks it into `root` (replacing what was there).
fn unpack_into(arch: Arch, package: &str, root: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(root);
    add_into(arch, package, root)
}

/// Downloads `package` of `arch` (if it is not downloaded yet) and unpacks it over `root`.
fn add_into(arch: Arch, package: &str, root: &Path) -> anyhow::Result<()> {
    extract(&download(arch, package)?, root)
}

/// Unpacks a downloaded .deb over `root`, then removes it.
fn extract(deb: &Path, root: &Path) -> anyhow::Result<()> {
    command::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root))?;
    // The package stays unpacked; the .deb itself is not needed again.
    std::fs::remove_file(deb)?;
    Ok(())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_match_exactly() {
        assert!(matches(
            "6.1",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            Arch::Amd64
        ));
        assert!(!matches(
            "6.1",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            Arch::Amd64
        ));
        assert!(matches(
            "6.12",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            Arch::Amd64
        ));
        assert!(!matches(
            "6.1",
            "linux-image-6.1.0-56-cloud-amd64-unsigned-dbg",
            Arch::Amd64
        ));
        assert!(matches(
            "linux-image-6.1.0-50-cloud-amd64-unsigned",
            "linux-image-6.1.0-50-cloud-amd64-unsigned",
            Arch::Amd64
        ));
    }

    #[test]
    fn older_and_newer_packagings_match_by_series() {
        // 5.10 and 6.x: the unsigned image holds the kernel.
        assert!(matches(
            "5.10",
            "linux-image-5.10.0-46-cloud-amd64-unsigned",
            Arch::Amd64
        ));
        // 7.x: the image is a metapackage over linux-binary-* and linux-modules-*.
        let seven = "linux-image-7.3.4+deb13-cloud-amd64";
        assert!(matches("7.3", seven, Arch::Amd64));
        assert!(matches("7", seven, Arch::Amd64));
        assert!(!matches("7.2", seven, Arch::Amd64));
        assert!(!matches(
            "7",
            "linux-image-7.3.4+deb13-cloud-amd64-dbg",
            Arch::Amd64
        ));
        // Unversioned metapackages are no kernel.
        assert!(!matches("6.1", "linux-image-6.1-cloud-amd64", Arch::Amd64));
        assert_eq!(image_version(seven, Arch::Amd64), Some("7.3.4+deb13"));
    }

    #[test]
    fn newest_of_a_major_series_and_unsigned_first() {
        let names = [
            "linux-image-7.2.13+deb14-cloud-amd64",
            "linux-image-7.3.4+deb13-cloud-amd64",
            "linux-image-7.3.4+deb13-cloud-amd64-dbg",
            "linux-image-5.10.0-46-cloud-amd64",
            "linux-image-5.10.0-46-cloud-amd64-unsigned",
            "linux-image-5.10.0-9-cloud-amd64-unsigned",
        ];
        assert_eq!(
            newest("7", Arch::Amd64, names.into_iter()),
            Some("linux-image-7.3.4+deb13-cloud-amd64")
        );
        assert_eq!(
            newest("5.10", Arch::Amd64, names.into_iter()),
            Some("linux-image-5.10.0-46-cloud-amd64-unsigned")
        );
    }

    #[test]
    fn each_architecture_has_its_own_packages() {
        let arm = "linux-image-6.1.0-57-cloud-arm64-unsigned";
        assert!(matches("6.1", arm, Arch::Arm64));
        assert!(!matches("6.1", arm, Arch::Amd64));
        assert!(!matches(
            "6.1",
            "linux-image-6.1.0-57-cloud-amd64-unsigned",
            Arch::Arm64
        ));
    }

    #[test]
    fn newest_compares_numbers_not_text() {
        let names = [
            "linux-image-6.12.95+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
        ];
        assert_eq!(
            newest("6.12", Arch::Amd64, names.into_iter()),
            Some("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
        assert_eq!(
            newest("6.1", Arch::Amd64, names.into_iter()),
            Some("linux-image-6.1.0-56-cloud-amd64-unsigned")
        );
        assert_eq!(newest("5.10", Arch::Amd64, names.into_iter()), None);
    }
}

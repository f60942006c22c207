//! A minimal initramfs: a `newc` cpio archive written directly (the kernel also accepts it
//! uncompressed), so no cpio/gzip tools and no staging directory are needed.
use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use crate::command;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// Accumulates entries; parent directories are created on demand.
#[derive(Default)]
pub struct Initramfs {
    archive: Vec<u8>,
    dirs: BTreeSet<String>,
    libraries: BTreeSet<PathBuf>,
    next_ino: u32,
}

impl Initramfs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> &mut Self {
        self.parents(path);
        self.entry(path, S_IFREG | mode, data);
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.parents(path);
        self.entry(path, S_IFLNK | 0o777, target.as_bytes());
        self
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return self;
        }
        self.parents(path);
        self.dirs.insert(path.to_owned());
        self.entry(path, S_IFDIR | 0o755, &[]);
        self
    }

    /// Copies a host file in, keeping its permission bits.
    pub fn host_file(&mut self, path: &str, source: &Path) -> anyhow::Result<&mut Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let data =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        let mode = std::fs::metadata(source)?.permissions().mode() & 0o7777;
        Ok(self.file(path, mode, &data))
    }

    /// Adds an executable with its debug info stripped and the shared libraries `ldd` names,
    /// at the same paths as on the host, so a dynamically linked test binary runs in the VM.
    pub fn binary(&mut self, path: &str, source: &Path) -> anyhow::Result<&mut Self> {
        let stripped = tempfile::NamedTempFile::new()?;
        // The binary's own architecture's strip: the host's cannot read another's.
        let mut head = [0u8; 20];
        std::io::Read::read_exact(&mut std::fs::File::open(source)?, &mut head)
            .with_context(|| format!("reading {}", source.display()))?;
        let strip = crate::arch::Arch::of_elf(&head)
            .map_or_else(|| "strip".to_owned(), |a| a.binutil("strip"));
        command::run(
            Command::new(strip)
                .arg("--strip-debug")
                .arg("-o")
                .arg(stripped.path())
                .arg(source),
        )?;
        let data = std::fs::read(stripped.path())?;
        self.file(path, 0o755, &data);
        for lib in shared_libraries(source)? {
            if self.libraries.insert(lib.clone()) {
                let dest = lib.to_string_lossy().into_owned();
                self.host_file(&dest, &std::fs::canonicalize(&lib)?)?;
            }
        }
        Ok(self)
    }

    /// The finished archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.archive
    }

    fn parents(&mut self, path: &str) {
        if let Some((parent, _)) = path.trim_matches('/').rsplit_once('/') {
            self.dir(parent);
        }
    }

    fn entry(&mut self, path: &str, mode: u32, data: &[u8]) {
        let name = path.trim_matches('/');
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [
            self.next_ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0, // dev major
            0, // dev minor
            0, // rdev major
            0, // rdev minor
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        let out = &mut self.archive;
        let _ = out.write_all(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad4(out);
        out.extend_from_slice(data);
        pad4(out);
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Absolute paths of the shared objects a binary loads (empty for a static binary).
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_parents_come_first() {
        let mut fs = Initramfs::new();
        fs.file("a/b/c.txt", 0o644, b"hello");
        let archive = fs.finish();
        assert_eq!(archive.len() % 4, 0);
        let text = String::from_utf8_lossy(&archive);
        let a = text.find("a\0").expect("dir a");
        let ab = text.find("a/b\0").expect("dir a/b");
        let file = text.find("a/b/c.txt\0").expect("file");
        assert!(a < ab && ab < file);
        assert!(text.contains("hello"));
        assert!(text.contains("TRAILER!!!\0"));
    }

    #[test]
    fn a_dynamic_binary_brings_its_libc() {
        let libs = shared_libraries(Path::new("/bin/sh")).expect("ldd runs");
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
    }
}

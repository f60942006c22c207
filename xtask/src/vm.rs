//! Boots a real kernel under qemu (TCG: KVM does not work on these machines) from an initramfs
//! holding busybox, the binaries under test and a test script; returns the serial console.
//!
//! Protocol: the script's stdout and stderr go to the console; lines it prints as
//! `@@<tag> <value>` are what tests read. `/init` prints `@@vm-exit <status>` after the script,
//! so a run without it (panic, hang, crash) is an error carrying the whole log.
use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{initramfs::Initramfs, kernel::Kernel};

/// Where the tracer binary sits inside the VM.
pub const TRACER: &str = "/bin/tracer";

const HOST_BUSYBOX: &str = "/bin/busybox";
const EXIT_TAG: &str = "vm-exit";

/// Builds a BPF-capable userland around the test script: proc, sys, cgroup2, bpffs, tracefs,
/// debugfs, tmpfs at /tmp, loopback up, the requested modules loaded.
const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ip link set lo up
for m in /lib/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done
echo "@@vm-kernel $(uname -r)"
cd /tmp
sh /test.sh
echo "@@vm-exit $?"
sync
poweroff -f
"#;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("setting up the VM: {0:#}")]
    Setup(#[from] anyhow::Error),
    #[error("the kernel panicked; log:\n{log}")]
    Panic { log: String },
    #[error("the VM did not finish within {timeout:?}; log:\n{log}")]
    Timeout { timeout: Duration, log: String },
    #[error("the VM stopped without reaching the end of the test script; log:\n{log}")]
    NoEndMarker { log: String },
}

/// One boot: a kernel, files to put in the initramfs, and the script to run.
pub struct VmRun<'a> {
    kernel: &'a Kernel,
    script: String,
    binaries: Vec<(String, PathBuf)>,
    files: Vec<(String, Vec<u8>)>,
    modules: Vec<String>,
    timeout: Duration,
    memory_mb: u32,
    icount: bool,
    /// One host thread runs both vCPUs in turn (qemu `-accel tcg,thread=single`).
    single_thread: bool,
    /// Kernel command-line words added to the defaults (e.g. `preempt=full`).
    cmdline: Vec<String>,
}

/// What the VM printed.
#[derive(Debug, Clone)]
pub struct VmOutput {
    /// The whole serial console, `\r` removed.
    pub log: String,
    /// The test script's exit status.
    pub status: i32,
    /// Wall time from qemu's start to its exit.
    pub elapsed: Duration,
}

impl<'a> VmRun<'a> {
    pub fn new(kernel: &'a Kernel, script: impl Into<String>) -> Self {
        Self {
            kernel,
            script: script.into(),
            binaries: Vec::new(),
            files: Vec::new(),
            modules: Vec::new(),
            timeout: Duration::from_secs(300),
            memory_mb: 1024,
            icount: false,
            single_thread: true,
            cmdline: Vec::new(),
        }
    }

    /// Guest time counts executed instructions (qemu `-icount shift=0,sleep=off`: one
    /// instruction is one virtual nanosecond, idle time jumps to the next timer) instead of
    /// following the host's clock, so how busy the host is does not change what the guest
    /// measures. Slower, and single-threaded.
    pub fn icount(mut self, on: bool) -> Self {
        self.icount = on;
        self
    }

    /// The tracer for the kernel's architecture (`arch::tracer`, built if needed) at `TRACER`.
    pub fn tracer(self) -> anyhow::Result<Self> {
        let tracer = crate::arch::tracer(self.kernel.arch)?;
        Ok(self.binary(TRACER, tracer))
    }

    /// An executable (with its shared libraries) at `dest` inside the VM.
    pub fn binary(mut self, dest: &str, source: impl AsRef<Path>) -> Self {
        self.binaries
            .push((dest.to_owned(), source.as_ref().to_owned()));
        self
    }

    pub fn file(mut self, dest: &str, data: impl Into<Vec<u8>>) -> Self {
        self.files.push((dest.to_owned(), data.into()));
        self
    }

    /// A kernel module (e.g. `loop`) loaded before the script runs.
    pub fn module(mut self, name: &str) -> Self {
        self.modules.push(name.to_owned());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether both vCPUs run on one host thread, in turn (the default). The guest still has
    /// two CPUs, interrupts and preemption, but a CPU never runs code another is rewriting:
    /// multi-threaded TCG crashed guests while probes were attached to functions other tasks
    /// were running (`int3` left in `__d_free` and `d_splice_alias`, a call into `__d_alloc`
    /// that landed on 0, a soft lockup during a kprobe attach), with and without
    /// `preempt=full`. Off only where wall time with both vCPUs truly parallel is the point
    /// (the real-time kernel benchmark).
    pub fn single_thread(mut self, on: bool) -> Self {
        self.single_thread = on;
        self
    }

    /// Adds a word to the kernel command line (`preempt=full` makes a PREEMPT_DYNAMIC kernel
    /// fully preemptible, BPF programs that only disable migration included).
    pub fn kernel_arg(mut self, word: &str) -> Self {
        self.cmdline.push(word.to_owned());
        self
    }

    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    pub fn run(self) -> Result<VmOutput, Error> {
        let dir = tempfile::tempdir().map_err(anyhow::Error::from)?;
        let initrd = dir.path().join("initrd.cpio");
        std::fs::write(&initrd, self.initramfs()?).map_err(anyhow::Error::from)?;
        self.boot(&initrd)
    }

    fn initramfs(&self) -> anyhow::Result<Vec<u8>> {
        let mut fs = Initramfs::new();
        for dir in [
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "mnt",
            "etc",
            "lib/modules",
        ] {
            fs.dir(dir);
        }
        fs.host_file("bin/busybox", &crate::kernel::busybox(self.kernel.arch)?)?;
        // The host's busybox names the applets (another architecture's cannot run here; both
        // are Debian's busybox-static).
        let applets = crate::command::stdout(Command::new(HOST_BUSYBOX).arg("--list"))?;
        // A link named "busybox" would point at itself (ELOOP).
        for applet in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
            fs.symlink(&format!("bin/{applet}"), "busybox");
        }
        fs.symlink("sbin", "bin");
        fs.file("init", 0o755, INIT.as_bytes());
        fs.file("test.sh", 0o755, self.script.as_bytes());
        for (dest, source) in &self.binaries {
            fs.binary(dest, source)?;
        }
        for (dest, data) in &self.files {
            fs.file(dest, 0o644, data);
        }
        for module in &self.modules {
            let path = self.kernel.module(module)?;
            fs.host_file(&format!("lib/modules/{module}.ko"), &path)?;
        }
        Ok(fs.finish())
    }

    fn boot(&self, initrd: &Path) -> Result<VmOutput, Error> {
        let started = Instant::now();
        let arch = self.kernel.arch;
        let mut child = Command::new(arch.qemu())
            .args(arch.machine())
            .arg("-accel")
            .arg(if self.single_thread {
                "tcg,thread=single"
            } else {
                "tcg"
            })
            .args(["-cpu", arch.cpu(), "-smp", "2"])
            .args(["-m", &self.memory_mb.to_string()])
            .args(if self.icount {
                &["-icount", "shift=0,sleep=off"][..]
            } else {
                &[]
            })
            .args([
                "-nographic",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
            ])
            .arg("-kernel")
            .arg(self.kernel.vmlinuz())
            .arg("-initrd")
            .arg(initrd)
            .arg("-append")
            .arg(
                [
                    format!("console={}", arch.console()).as_str(),
                    "quiet",
                    "loglevel=4",
                    "panic=-1",
                ]
                .into_iter()
                .chain(self.cmdline.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {} ({e}): run `cargo xtask setup`",
                    arch.qemu()
                )
            })?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no qemu stdout"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no qemu stderr"))?;
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            let mut err = Vec::new();
            let _ = stderr.read_to_end(&mut err);
            bytes.extend_from_slice(&err);
            bytes
        });
        let timed_out = loop {
            match child.try_wait() {
                Ok(Some(_)) => break false,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break true;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(anyhow::anyhow!("waiting for qemu: {e}").into()),
            }
        };
        let bytes = reader.join().unwrap_or_default();
        let log = String::from_utf8_lossy(&bytes).replace('\r', "");
        let elapsed = started.elapsed();
        if log.contains("Kernel panic") {
            return Err(Error::Panic { log });
        }
        if timed_out {
            return Err(Error::Timeout {
                timeout: self.timeout,
                log,
            });
        }
        let status = tag_values(&log, EXIT_TAG)
            .last()
            .and_then(|v| v.trim().parse().ok());
        match status {
            Some(status) => Ok(VmOutput {
                log,
                status,
                elapsed,
            }),
            None => Err(Error::NoEndMarker { log }),
        }
    }
}

impl VmOutput {
    /// Values of every `@@<tag> <value>` line, in order.
    pub fn tagged(&self, tag: &str) -> Vec<&str> {
        tag_values(&self.log, tag)
    }

    /// The last value printed for `tag`.
    pub fn value(&self, tag: &str) -> Option<&str> {
        self.tagged(tag).last().copied()
    }
}

fn tag_values<'l>(log: &'l str, tag: &str) -> Vec<&'l str> {
    let marker = format!("@@{tag}");
    log.lines()
        .filter_map(|line| {
            // Kernel messages can share a console line with ours: find the marker anywhere.
            let at = line.find(&marker)?;
            let rest = &line[at + marker.len()..];
            match rest.chars().next() {
                None => Some(""),
                Some(' ') => Some(&rest[1..]),
                Some(_) => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_and_exact() {
        let log = "boot\n@@count 42\n[ 1.0] noise @@count 43\n@@counter 7\n@@vm-exit 0\n";
        assert_eq!(tag_values(log, "count"), vec!["42", "43"]);
        assert_eq!(tag_values(log, "vm-exit"), vec!["0"]);
        assert!(tag_values(log, "missing").is_empty());
    }
}

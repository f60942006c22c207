//! Program runs the kernel skipped. A program is not run again on a CPU where it is already
//! running: on a preemptible kernel an fentry program preempted half-way makes the next task's
//! call of the same function go unprobed, and a kprobe program is skipped while BPF is already
//! active on that CPU (another kprobe program in an interrupt, or a task preempted inside a BPF
//! map system call, such as our own counter reads). The kernel counts each skip as the
//! program's `recursion_misses` (5.12+); aya 0.14 does not expose it, so it is read here with
//! one `BPF_OBJ_GET_INFO_BY_FD`.
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::Ebpf;
use aya_obj::generated::bpf_prog_info;

const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// `union bpf_attr`'s `info` member.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The kernel's count of skipped runs of one loaded program (0 on kernels that do not keep
/// it: the info is shorter there and the field stays zero).
fn recursion_misses(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<u64> {
    // SAFETY: a plain C struct of integers; all zeroes is a valid value.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: std::ptr::from_mut(&mut info) as u64,
    };
    // SAFETY: the kernel writes at most `info_len` bytes into `info`, which lives until the
    // call returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            std::ptr::from_mut(&mut attr),
            std::mem::size_of::<InfoAttr>(),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(info.recursion_misses)
}

/// Skipped runs of every loaded program, summed; programs whose info cannot be read count 0.
pub fn total(ebpf: &Ebpf) -> u64 {
    ebpf.programs()
        .filter_map(|(_, program)| program.fd().ok())
        .filter_map(|fd| recursion_misses(fd.as_fd()).ok())
        .sum()
}

//! VM helper: `with-caps CAP,CAP,... [--nnp] -- PROG ARGS` runs PROG as a container runtime
//! runs a uid-0 container with `capabilities: {drop: [ALL], add: [CAP, ...]}`: every other
//! capability leaves the bounding set, so the exec (still uid 0) gets exactly the listed ones.
//! `--nnp` also sets no_new_privs, as `allowPrivilegeEscalation: false` does. `none` lists
//! no capability. Std only (it is built by rustc alone for the initramfs): prctl is declared
//! here, from the C library std links anyway.
use std::{os::unix::process::CommandExt as _, process::Command};

unsafe extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}

const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// Capability numbers (linux/capability.h) of the names the tests use.
const NAMES: &[(&str, u64)] = &[
    ("DAC_OVERRIDE", 1),
    ("DAC_READ_SEARCH", 2),
    ("SYS_PTRACE", 19),
    ("SYS_ADMIN", 21),
    ("SYS_RESOURCE", 24),
    ("SYSLOG", 34),
    ("PERFMON", 38),
    ("BPF", 39),
];

fn fail(message: &str) -> ! {
    eprintln!("with-caps: {message}");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = args.iter().position(|a| a == "--") else {
        fail("usage: with-caps CAP,CAP,...|none [--nnp] -- PROG ARGS");
    };
    let (ours, command) = (&args[..split], &args[split + 1..]);
    let Some(list) = ours.first() else {
        fail("name the capabilities to keep (or none)");
    };
    let mut keep = Vec::new();
    for name in list.split(',').filter(|n| *n != "none" && !n.is_empty()) {
        let name = name.trim_start_matches("CAP_");
        match NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, number)) => keep.push(*number),
            None => fail(&format!("unknown capability {name}")),
        }
    }
    let Some(program) = command.first() else {
        fail("name the program to run after --");
    };
    // SAFETY: prctl with these options reads and writes only the task's own credentials.
    unsafe {
        for cap in 0..64u64 {
            if prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0 {
                break; // past the kernel's last capability
            }
            if !keep.contains(&cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                fail(&format!("cannot drop capability {cap} (not root?)"));
            }
        }
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if ours.iter().any(|a| a == "--nnp") && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            fail("cannot set no_new_privs");
        }
    }
    let error = Command::new(program).args(&command[1..]).exec();
    fail(&format!("cannot run {program}: {error}"));
}

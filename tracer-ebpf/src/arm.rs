//! Pods traced from their first lookup. The kubelet creates a pod's cgroup before any of its
//! containers exist; this program runs inside that `mkdir` and makes the new cgroup a target
//! there and then, so no process of the pod can run before it is in scope (userspace, polling
//! for the directory, could lose that race to a fast container).
use aya_ebpf::{
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
    macros::{map, raw_tracepoint},
    maps::{HashMap, PerCpuArray},
    programs::RawTracePointContext,
};
use dentry_common::{ARM_PATH_BYTES, MAX_TARGETS, POD_UID_LEN};

use crate::{
    Ptr,
    maps::{TARGETS, offsets},
};

/// The UIDs of the pods to trace whose cgroups did not exist when the tracer started.
#[map(name = "ARMED_PODS")]
static ARMED_PODS: HashMap<[u8; POD_UID_LEN], u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Where the new cgroup's path is read (a map value, so the name's variable offsets are plain
/// bounded accesses for the verifier).
#[map(name = "ARM_PATH")]
static ARM_PATH: PerCpuArray<[u8; ARM_PATH_BYTES]> = PerCpuArray::with_max_entries(1, 0);

const MASK: usize = ARM_PATH_BYTES - 1;
const _: () = assert!(ARM_PATH_BYTES.is_power_of_two());
const SLICE: &[u8] = b".slice";
const POD: &[u8] = b"pod";

/// `cgroup_mkdir(struct cgroup *cgrp, const char *path)`, on every hierarchy.
#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn rtp_cgroup_mkdir(ctx: RawTracePointContext) -> i32 {
    let cgroup: Ptr = ctx.arg(0);
    let path: Ptr = ctx.arg(1);
    let _ = arm(cgroup, path);
    0
}

#[inline(always)]
fn arm(cgroup: Ptr, path: Ptr) -> Option<()> {
    let buf = ARM_PATH.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot, used by nothing else while the program runs.
    let buf = unsafe { &mut *buf };
    // SAFETY: reads a kernel string into the slot, bounded by its size.
    let len = unsafe { bpf_probe_read_kernel_str_bytes(path, buf) }
        .ok()?
        .len();
    let uid = pod_uid(buf, len)?;
    // SAFETY: a map lookup of a plain value.
    unsafe { ARMED_PODS.get(uid) }?;
    let o = offsets();
    // SAFETY: reads of kernel memory; a fault fails the read, nothing else.
    let kn: Ptr =
        unsafe { bpf_probe_read_kernel(cgroup.wrapping_add(o.cgroup_kn as usize).cast::<Ptr>()) }
            .ok()?;
    let id: u64 =
        unsafe { bpf_probe_read_kernel(kn.wrapping_add(o.kernfs_node_id as usize).cast::<u64>()) }
            .ok()?;
    TARGETS.insert(id, 1, 0).ok()
}

/// The pod UID a pod cgroup's name ends with, dashes restored: `.../pod<UID>` (the cgroupfs
/// driver) or `.../kubepods[-<qos>]-pod<UID, _ for ->.slice` (systemd's).
#[inline(always)]
fn pod_uid(buf: &[u8; ARM_PATH_BYTES], len: usize) -> Option<[u8; POD_UID_LEN]> {
    let mut end = len & MASK;
    if end >= SLICE.len() && ends_with(buf, end, SLICE) {
        end -= SLICE.len();
    }
    // "/pod" or "-pod" before the UID.
    if end < POD_UID_LEN + POD.len() + 1 {
        return None;
    }
    let start = end - POD_UID_LEN;
    if !ends_with(buf, start, POD) {
        return None;
    }
    let before = buf[(start - POD.len() - 1) & MASK];
    if before != b'/' && before != b'-' {
        return None;
    }
    let mut uid = [0u8; POD_UID_LEN];
    for (i, out) in uid.iter_mut().enumerate() {
        let c = buf[(start + i) & MASK];
        *out = if c == b'_' { b'-' } else { c };
    }
    Some(uid)
}

/// Whether `buf[..end]` ends with `suffix` (`end >= suffix.len()`).
#[inline(always)]
fn ends_with(buf: &[u8; ARM_PATH_BYTES], end: usize, suffix: &[u8]) -> bool {
    let from = end - suffix.len();
    suffix
        .iter()
        .enumerate()
        .all(|(i, c)| buf[(from + i) & MASK] == *c)
}

//! VM helper: `bpf-maps` prints every eBPF map the kernel holds, one line each:
//! `NAME TYPE ENTRIES MAX_ENTRIES`, where ENTRIES is the keys counted by walking a hash map
//! (`-` for arrays and ring buffers, whose size is fixed). The soak reads it each minute to
//! see every map stay within its bound. Std only (it is built by rustc alone for the
//! initramfs): `syscall` is declared here, from the C library std links anyway.

unsafe extern "C" {
    fn syscall(number: i64, ...) -> i64;
    fn close(fd: i32) -> i32;
}

#[cfg(target_arch = "x86_64")]
const SYS_BPF: i64 = 321;
#[cfg(target_arch = "aarch64")]
const SYS_BPF: i64 = 280;

const BPF_MAP_GET_NEXT_KEY: i64 = 4;
const BPF_MAP_GET_NEXT_ID: i64 = 12;
const BPF_MAP_GET_FD_BY_ID: i64 = 14;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;

/// `union bpf_attr`, as big as any command here needs; the kernel wants the bytes past what a
/// command reads to be zero, which a fresh one is.
#[repr(C, align(8))]
struct Attr([u8; 64]);

impl Attr {
    fn new() -> Self {
        Attr([0; 64])
    }
    fn u32_at(mut self, offset: usize, value: u32) -> Self {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn u64_at(mut self, offset: usize, value: u64) -> Self {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
}

/// The `u32` at `offset` of a buffer the kernel filled.
fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

fn bpf(command: i64, attr: &mut Attr) -> i64 {
    // SAFETY: the kernel reads and writes at most `size_of::<Attr>()` bytes of `attr`, and
    // the pointers set inside it point at live buffers of the sizes given with them.
    unsafe {
        syscall(
            SYS_BPF,
            command,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as i64,
        )
    }
}

/// `struct bpf_map_info`'s first members: type, id, key_size, value_size, max_entries,
/// map_flags, name[16].
struct Info {
    kind: u32,
    key_size: u32,
    max_entries: u32,
    name: String,
}

fn info(fd: u32) -> Option<Info> {
    let mut buf = [0u8; 80];
    let mut attr = Attr::new()
        .u32_at(0, fd)
        .u32_at(4, buf.len() as u32)
        .u64_at(8, buf.as_mut_ptr() as u64);
    if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) != 0 {
        return None;
    }
    let name = &buf[24..40];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Some(Info {
        kind: u32_at(&buf, 0),
        key_size: u32_at(&buf, 8),
        max_entries: u32_at(&buf, 16),
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
    })
}

/// Keys in the map, walked with GET_NEXT_KEY; at most `max + 1` steps, since a walk that
/// meets a key deleted under it starts again from the first.
fn count_keys(fd: u32, key_size: u32, max: u32) -> u64 {
    let mut key = vec![0u8; key_size as usize];
    let mut next = vec![0u8; key_size as usize];
    let mut n = 0u64;
    let mut first = true;
    while n <= u64::from(max) {
        let mut attr = Attr::new()
            .u32_at(0, fd)
            .u64_at(8, if first { 0 } else { key.as_ptr() as u64 })
            .u64_at(16, next.as_mut_ptr() as u64);
        if bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) != 0 {
            break;
        }
        first = false;
        std::mem::swap(&mut key, &mut next);
        n += 1;
    }
    n
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        1 => "hash",
        2 => "array",
        5 => "percpu_hash",
        6 => "percpu_array",
        9 => "lru_hash",
        10 => "lru_percpu_hash",
        27 => "ringbuf",
        _ => "other",
    }
}

fn main() {
    let mut id = 0u32;
    loop {
        let mut attr = Attr::new().u32_at(0, id);
        if bpf(BPF_MAP_GET_NEXT_ID, &mut attr) != 0 {
            break; // ENOENT: past the last map
        }
        id = u32_at(&attr.0, 4);
        let fd = bpf(BPF_MAP_GET_FD_BY_ID, &mut Attr::new().u32_at(0, id));
        if fd < 0 {
            continue; // freed since
        }
        let fd = fd as u32;
        if let Some(info) = info(fd) {
            let entries = match info.kind {
                1 | 5 | 9 | 10 => count_keys(fd, info.key_size, info.max_entries).to_string(),
                _ => "-".to_owned(),
            };
            println!(
                "{} {} {entries} {}",
                if info.name.is_empty() {
                    "?"
                } else {
                    &info.name
                },
                kind_name(info.kind),
                info.max_entries
            );
        }
        // SAFETY: fd is ours, from GET_FD_BY_ID, and closed once.
        unsafe {
            close(fd as i32);
        }
    }
}

//! `tracer --check`: what this kernel and this process offer, and what is missing.
use std::path::Path;

use crate::kernel::{features::Features, privileges};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// Needed to run at all (otherwise informative).
    pub required: bool,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Inspects the running kernel and process. `fentry` is the outcome of trying to load an fentry
/// program (the caller has the object); `features` what the kernel's BTF and symbols leave off
/// (`feature:NAME` lines, each on or off with its reason); `cgroup` is the cgroup2 mount to use.
pub fn run(cgroup: &Path, fentry: Result<(), String>, features: &Features) -> Vec<Item> {
    let btf = Path::new(crate::kernel::btf::SYS_BTF).exists();
    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown")
        .ok()
        .and_then(|s| {
            let start = s.find('[')?;
            let end = s[start..].find(']')?;
            Some(s[start + 1..start + end].to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let caps = privileges::effective();
    let lacking =
        caps.map(|c| privileges::missing(c, &privileges::needs(privileges::kernel_version())));
    let bpf_caps = lacking
        .as_ref()
        .is_some_and(|l| !l.iter().any(|n| n.refused_without));
    let cg2 = is_cgroup2(cgroup);
    let memlock = memlock_limit();
    let fentry_ok = fentry.is_ok();
    let features = features.all().map(|(f, reason)| Item {
        name: f.check_name(),
        ok: reason.is_none(),
        detail: match reason {
            None => format!("{}: on", f.what()),
            Some(why) => format!("{} off: {why}", f.what()),
        },
        required: false,
    });
    let mut items = vec![
        Item {
            name: "btf",
            ok: btf,
            detail: if btf {
                "/sys/kernel/btf/vmlinux present".into()
            } else {
                "no /sys/kernel/btf/vmlinux: needs CONFIG_DEBUG_INFO_BTF".into()
            },
            required: true,
        },
        Item {
            name: "kprobes",
            ok: kprobes,
            detail: if kprobes {
                "kprobe PMU present".into()
            } else {
                "no kprobe PMU: CONFIG_KPROBES unset or blocked".into()
            },
            required: !fentry_ok,
        },
        Item {
            name: "fentry",
            ok: fentry_ok,
            detail: match fentry {
                Ok(()) => "fentry programs attach".into(),
                Err(e) => format!("refused: {e}"),
            },
            required: !kprobes,
        },
        Item {
            name: "lockdown",
            ok: lockdown == "none",
            detail: lockdown.clone(),
            required: false,
        },
        Item {
            name: "cgroup-v2",
            ok: cg2,
            detail: if cg2 {
                format!("{} is cgroup2", cgroup.display())
            } else {
                format!(
                    "{} is not a cgroup2 mount (pass --cgroup pointing at one)",
                    cgroup.display()
                )
            },
            required: true,
        },
        Item {
            name: "capabilities",
            ok: bpf_caps,
            detail: match (caps, &lacking) {
                (Some(c), Some(l)) if l.is_empty() => format!("CapEff={c:016x}: all it needs"),
                (Some(c), Some(l)) => format!(
                    "CapEff={c:016x}, lacking {}",
                    l.iter()
                        .map(|n| format!("{} ({})", n.name, n.why))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => "cannot read /proc/self/status".into(),
            },
            required: true,
        },
        Item {
            name: "memlock",
            ok: true,
            detail: memlock,
            required: false,
        },
    ];
    items.extend(features);
    items
}

/// The report, one line per item, and the exit status: non-zero when something required is
/// missing (and the last line names it).
pub fn report(items: &[Item]) -> (String, bool) {
    let mut out = String::new();
    for i in items {
        out.push_str(&format!(
            "{:<19} {:<4} {}\n",
            i.name,
            if i.ok { "ok" } else { "no" },
            i.detail
        ));
    }
    let missing: Vec<&str> = items
        .iter()
        .filter(|i| i.required && !i.ok)
        .map(|i| i.name)
        .collect();
    if missing.is_empty() {
        out.push_str("ready: the tracer can run here\n");
        (out, true)
    } else {
        let what = missing.join(", ");
        let hint = if missing.contains(&"kprobes") || missing.contains(&"fentry") {
            " (kprobes unavailable on this kernel and fentry refused)"
        } else {
            ""
        };
        out.push_str(&format!("missing: {what}{hint}\n"));
        (out, false)
    }
}

fn is_cgroup2(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the struct we own; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == CGROUP2_SUPER_MAGIC
}

/// Whether `path` is a cgroup2 mount.
pub fn cgroup2(path: &Path) -> bool {
    is_cgroup2(path)
}

fn memlock_limit() -> String {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } != 0 {
        return "unknown".into();
    }
    let show = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_owned()
        } else {
            format!("{} KiB", v / 1024)
        }
    };
    format!(
        "RLIMIT_MEMLOCK {} (only kernels before 5.11 charge BPF maps to it)",
        show(rl.rlim_cur)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_pieces_are_named() {
        let items = vec![
            Item {
                name: "kprobes",
                ok: false,
                detail: String::new(),
                required: true,
            },
            Item {
                name: "fentry",
                ok: false,
                detail: String::new(),
                required: true,
            },
            Item {
                name: "lockdown",
                ok: false,
                detail: String::new(),
                required: false,
            },
        ];
        let (text, ok) = report(&items);
        assert!(!ok);
        assert!(
            text.ends_with(
                "missing: kprobes, fentry (kprobes unavailable on this kernel and fentry refused)\n"
            ),
            "{text}"
        );
        let (text, ok) = report(&items[2..]);
        assert!(ok, "{text}");
    }
}

//! Loading the kernel programs and attaching them, with errors a user can act on.
use std::path::Path;

use aya::{
    Ebpf, EbpfLoader,
    programs::{KProbe, ProgramError},
};

/// Each kernel program and the function it is attached to.
pub const KPROBES: &[(&str, &str)] = &[("dentry_alloc", "__d_alloc")];

/// Where the kernel exposes its kprobe PMU; absent when CONFIG_KPROBES is unset.
const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe/type";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "kprobes unavailable on this kernel (no {KPROBE_PMU}: CONFIG_KPROBES unset or blocked): \
         run the tracer on a node whose kernel has kprobes"
    )]
    KprobesUnavailable,
    #[error("loading the eBPF object: {0}")]
    Object(#[from] aya::EbpfError),
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("kernel program {program} was rejected: {source}")]
    Load {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("attaching {program} to {function}: {source}")]
    Attach {
        program: &'static str,
        function: &'static str,
        #[source]
        source: ProgramError,
    },
}

/// Parses the object and creates its maps. Programs are not loaded yet.
pub fn open(object: &[u8]) -> Result<Ebpf, Error> {
    raise_memlock_limit();
    Ok(EbpfLoader::new().load(object)?)
}

/// Runs every program through the kernel's verifier.
pub fn load_all(ebpf: &mut Ebpf) -> Result<(), Error> {
    for &(program, _) in KPROBES {
        kprobe(ebpf, program)?
            .load()
            .map_err(|source| Error::Load { program, source })?;
    }
    Ok(())
}

/// Attaches every loaded program; programs stay attached as long as `ebpf` lives.
pub fn attach_all(ebpf: &mut Ebpf) -> Result<(), Error> {
    for &(program, function) in KPROBES {
        kprobe(ebpf, program)?
            .attach(function, 0)
            .map_err(|source| classify_attach_error(program, function, source))?;
    }
    Ok(())
}

fn kprobe<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut KProbe, Error> {
    ebpf.program_mut(program)
        .ok_or(Error::MissingProgram(program))?
        .try_into()
        .map_err(|source| Error::Load { program, source })
}

fn classify_attach_error(
    program: &'static str,
    function: &'static str,
    source: ProgramError,
) -> Error {
    if !Path::new(KPROBE_PMU).exists() {
        return Error::KprobesUnavailable;
    }
    Error::Attach {
        program,
        function,
        source,
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; newer ones use memcg accounting. The
/// raise fails without CAP_SYS_RESOURCE, which newer kernels do not need, so it is not fatal.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

//! Loading the kernel programs and attaching them, with errors a user can act on.
//!
//! Each probe exists as fentry/fexit and as kprobe/kretprobe. In `auto` mode the tracer tries
//! fentry first (cheaper; needs BTF and a kernel that allows it: lockdown refuses it) and falls
//! back to the kprobe per probe; it reports what it used.
use std::path::Path;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{HashMap, MapData},
    programs::{FEntry, FExit, KProbe, ProgramError, RawTracePoint},
};
use dentry_common::{
    Config, KernelOffsets, KernelPatterns, OwnerLayout, POD_UID_LEN, PREALLOCATED_BORN_SLABS,
    SWITCH_PATH_CACHE, SWITCH_TRACE, names,
};

use crate::kernel::features::{Feature, Features};

/// Which programs a run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// Per-cgroup counters and trace events (always attached, except in the floor benchmark).
    Counters,
    /// What keeps the path cache right (renames, frees); attached only for tracing.
    PathCache,
    /// Live dentries per owner (allocation's return, free, unlink).
    Live,
    /// The benchmark floor: one probe incrementing one per-CPU counter.
    Floor,
    /// The floor's probe on `d_splice_alias` too (the benchmark's two-probe floor).
    FloorLookup,
    /// The floor's probe on `__d_alloc`'s return and on `dentry_free` (the live gauges' floor).
    FloorLive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Entry,
    Return,
}

/// One kernel function and its two programs.
#[derive(Debug)]
pub struct Probe {
    pub function: &'static str,
    pub kprobe: &'static str,
    pub fentry: &'static str,
    pub kind: Kind,
    pub set: Set,
    /// A function only some kernels have (the ones that route an event through it): where it
    /// does not exist, the probe is left out.
    pub optional: bool,
}

const fn probe(
    function: &'static str,
    kprobe: &'static str,
    fentry: &'static str,
    set: Set,
) -> Probe {
    Probe {
        function,
        kprobe,
        fentry,
        kind: Kind::Entry,
        set,
        optional: false,
    }
}

pub const PROBES: &[Probe] = &[
    probe(
        "__d_alloc",
        "kp_d_alloc_any",
        "fe_d_alloc_any",
        Set::Counters,
    ),
    probe("d_add", "kp_d_add", "fe_d_add", Set::Counters),
    probe(
        "d_splice_alias",
        "kp_d_splice_alias",
        "fe_d_splice_alias",
        Set::Counters,
    ),
    probe(
        "d_instantiate",
        "kp_d_instantiate",
        "fe_d_instantiate",
        Set::Counters,
    ),
    probe(
        "d_instantiate_new",
        "kp_d_instantiate_new",
        "fe_d_instantiate_new",
        Set::Counters,
    ),
    // 7.x: tmpfs and ramfs creates.
    Probe {
        optional: true,
        ..probe(
            "d_make_persistent",
            "kp_d_make_persistent",
            "fe_d_make_persistent",
            Set::Counters,
        )
    },
    probe("d_delete", "kp_d_delete", "fe_d_delete", Set::Counters),
    probe(
        "shrink_dcache_sb",
        "kp_shrink_dcache_sb",
        "fe_shrink_dcache_sb",
        Set::Counters,
    ),
    probe(
        "prune_dcache_sb",
        "kp_prune_dcache_sb",
        "fe_prune_dcache_sb",
        Set::Counters,
    ),
    Probe {
        function: "prune_dcache_sb",
        kprobe: "kr_prune_dcache_sb",
        fentry: "fx_prune_dcache_sb",
        kind: Kind::Return,
        set: Set::Counters,
        optional: false,
    },
    probe("__d_free", "kp_d_free", "fe_d_free", Set::PathCache),
    probe(
        "__d_free_external",
        "kp_d_free_external",
        "fe_d_free_external",
        Set::PathCache,
    ),
    Probe {
        function: "__d_move",
        kprobe: "kr_d_move",
        fentry: "fx_d_move",
        kind: Kind::Return,
        set: Set::PathCache,
        optional: false,
    },
    Probe {
        function: "__d_alloc",
        kprobe: "kr_d_alloc_live",
        fentry: "fx_d_alloc_live",
        kind: Kind::Return,
        set: Set::Live,
        optional: false,
    },
    probe("dentry_free", "kp_dentry_free", "fe_dentry_free", Set::Live),
    probe(
        "dentry_unlink_inode",
        "kp_dentry_unlink_inode",
        "fe_dentry_unlink_inode",
        Set::Live,
    ),
    probe("__d_alloc", "kp_floor", "fe_floor", Set::Floor),
    probe(
        "d_splice_alias",
        "kp_floor_lookup",
        "fe_floor_lookup",
        Set::FloorLookup,
    ),
    Probe {
        function: "__d_alloc",
        kprobe: "kr_floor_alloc",
        fentry: "fx_floor_alloc",
        kind: Kind::Return,
        set: Set::FloorLive,
        optional: false,
    },
    probe(
        "dentry_free",
        "kp_floor_free",
        "fe_floor_free",
        Set::FloorLive,
    ),
];

/// Where the kernel exposes its kprobe PMU; absent when CONFIG_KPROBES is unset.
const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe/type";

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// fentry/fexit where the kernel allows, else kprobe, per probe.
    Auto,
    Kprobe,
    Fentry,
}

/// What a probe ended up attached as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    Kprobe,
    Fentry,
}

impl Attached {
    pub fn name(self) -> &'static str {
        match self {
            Attached::Kprobe => "kprobe",
            Attached::Fentry => "fentry",
        }
    }
}

/// `fentry`, `kprobe`, or `mixed` for a set of attachments.
pub fn summary_mode(attached: &[(&Probe, Attached)]) -> &'static str {
    let fentry = attached
        .iter()
        .filter(|(_, a)| *a == Attached::Fentry)
        .count();
    match fentry {
        0 => "kprobe",
        n if n == attached.len() => "fentry",
        _ => "mixed",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "kprobes unavailable on this kernel (no {KPROBE_PMU}: CONFIG_KPROBES unset or blocked): \
         run the tracer on a node whose kernel has kprobes"
    )]
    KprobesUnavailable,
    #[error("loading the eBPF object: {0}")]
    Object(#[from] aya::EbpfError),
    #[error("preparing the eBPF object for this kernel: {0}")]
    Adjust(#[from] crate::kernel::object::Error),
    #[error(
        "reading the kernel's BTF: {0} (the tracer needs a kernel built with CONFIG_DEBUG_INFO_BTF)"
    )]
    Btf(String),
    #[error("{0} is not in this kernel")]
    NotInKernel(&'static str),
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
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
    #[error("writing the target cgroups into the kernel: {0}")]
    Targets(#[source] aya::maps::MapError),
    #[error("{0:?} is not a pod UID")]
    PodUid(String),
    #[error("turning {what} {state} in the kernel: {source}")]
    Switch {
        what: &'static str,
        state: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// Everything the programs need before they are loaded.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub offsets: KernelOffsets,
    pub config: Config,
    /// The patterns the kernel tests before it sends an event (none: it sends all).
    pub patterns: KernelPatterns,
    /// Ring buffer size in bytes (a power of two, at least a page).
    pub ring_buffer_bytes: u32,
    /// Where slab objects keep their owner (`enabled` 0: live counting off).
    pub owner: OwnerLayout,
    /// Preallocate `BORN` (a kernel without the BPF memory allocator: `prealloc_needed`).
    pub prealloc: bool,
}

/// The running kernel's struct offsets, from its BTF, and the features whose fields it lacks.
pub fn kernel_offsets() -> Result<(KernelOffsets, Features), Error> {
    let btf = crate::kernel::btf::Btf::from_sys().map_err(|e| Error::Btf(e.to_string()))?;
    Ok(offsets_for(&btf))
}

/// Whether kprobe and tracing programs may call `bpf_get_current_ancestor_cgroup_id` (5.11);
/// asked of the verifier with a program of its own.
pub fn ancestor_helper() -> bool {
    aya::sys::is_helper_supported(
        aya::programs::ProgramType::KProbe,
        aya::sys::BpfHelper::BPF_FUNC_get_current_ancestor_cgroup_id,
    )
    .unwrap_or(true)
}

/// The offsets and features for this kernel (`btf`), helpers probed: `kernel_offsets`, plus
/// where a task's ancestor cgroups are found without the helper.
pub fn offsets_for(btf: &crate::kernel::btf::Btf) -> (KernelOffsets, Features) {
    let mut features = Features::default();
    let mut offsets = btf.kernel_offsets(&mut features);
    if !ancestor_helper()
        && let Err(e) = btf.ancestor_ids(&mut offsets)
    {
        features.off(
            Feature::Trace,
            format!(
                "no bpf_get_current_ancestor_cgroup_id for tracing programs and {e}: a task's \
                 pod cgroup cannot be found"
            ),
        );
    }
    (offsets, features)
}

/// Whether hash maps used by tracing programs must be preallocated: before the BPF memory
/// allocator (`struct bpf_mem_alloc`, 6.1) the verifier warns at each load of a program using a
/// run-time allocated one, the kernel logs a WARN for it, and PREEMPT_RT kernels refuse it.
pub fn prealloc_needed(btf: &crate::kernel::btf::Btf) -> bool {
    !btf.has_struct("bpf_mem_alloc")
}

/// The running kernel's BTF as aya uses it. Parse it once and pass it to `open` and `attach`:
/// it is large, and each parse leaves its mark on the heap.
pub fn kernel_btf() -> Result<Btf, Error> {
    kernel_btf_from(Path::new(crate::kernel::btf::SYS_BTF))
}

/// As `kernel_btf`, from a file (`--btf`).
pub fn kernel_btf_from(path: &Path) -> Result<Btf, Error> {
    Btf::parse_file(path, aya::Endianness::default())
        .map_err(|e| Error::Btf(format!("{}: {e}", path.display())))
}

/// Parses the object, writes its globals and creates its maps. Programs are not loaded yet.
pub fn open(object: &[u8], options: &LoadOptions, btf: &Btf) -> Result<Ebpf, Error> {
    raise_memlock_limit();
    let mut loader = EbpfLoader::new();
    loader
        .btf(Some(btf))
        .override_global(names::OFFSETS, &options.offsets, true)
        .override_global(names::CONFIG, &options.config, true)
        .override_global(names::PATTERNS, &options.patterns, true)
        .override_global(names::OWNER, &options.owner, true)
        .map_max_entries(names::EVENTS, options.ring_buffer_bytes);
    let object = if options.prealloc {
        // All of it is kernel memory from the start: a smaller bound (docs/architecture.md).
        loader.map_max_entries(names::BORN, PREALLOCATED_BORN_SLABS);
        crate::kernel::object::with_map_flags(object, names::BORN, 0)?
    } else {
        std::borrow::Cow::Borrowed(object)
    };
    Ok(loader.load(&object)?)
}

/// Marks cgroup ids whose tasks (and their descendants, per `Config::ancestor_levels`) trace.
pub fn set_targets(ebpf: &mut Ebpf, ids: &[u64]) -> Result<(), Error> {
    let map = ebpf
        .map_mut(names::TARGETS)
        .ok_or(Error::MissingMap(names::TARGETS))?;
    let mut targets: HashMap<&mut MapData, u64, u8> =
        HashMap::try_from(map).map_err(Error::Targets)?;
    for id in ids {
        targets.insert(id, 1, 0).map_err(Error::Targets)?;
    }
    Ok(())
}

/// Arms the kernel for pods whose cgroups do not exist yet: as the kubelet creates one, its
/// cgroup becomes a target (`Config::ancestor_levels` must name the level it appears at).
pub fn arm_pods(ebpf: &mut Ebpf, uids: &[String]) -> Result<(), Error> {
    arm_uids(ebpf, uids)?;
    let program = load_arm(ebpf)?;
    program
        .attach(names::ARM_TRACEPOINT)
        .map_err(|source| Error::Attach {
            program: names::ARM_PROGRAM,
            function: names::ARM_TRACEPOINT,
            source,
        })?;
    Ok(())
}

/// Adds pod UIDs to those the attached arming program watches for.
pub fn arm_uids(ebpf: &mut Ebpf, uids: &[String]) -> Result<(), Error> {
    let map = ebpf
        .map_mut(names::ARMED_PODS)
        .ok_or(Error::MissingMap(names::ARMED_PODS))?;
    let mut armed: HashMap<&mut MapData, [u8; POD_UID_LEN], u8> =
        HashMap::try_from(map).map_err(Error::Targets)?;
    for uid in uids {
        let key: [u8; POD_UID_LEN] = uid
            .as_bytes()
            .try_into()
            .map_err(|_| Error::PodUid(uid.clone()))?;
        armed.insert(key, 1, 0).map_err(Error::Targets)?;
    }
    Ok(())
}

fn load_arm(ebpf: &mut Ebpf) -> Result<&mut RawTracePoint, Error> {
    let program: &mut RawTracePoint = program(ebpf, names::ARM_PROGRAM)?;
    loaded(names::ARM_PROGRAM, program.load())?;
    Ok(program)
}

/// Turns trace events on or off in the kernel (counters are unaffected).
pub fn set_tracing(ebpf: &mut Ebpf, on: bool) -> Result<(), Error> {
    set_switch(ebpf, SWITCH_TRACE, on)
}

/// Lets the kernel cache directory paths; only once the `Set::PathCache` probes are attached.
pub fn set_path_cache(ebpf: &mut Ebpf, on: bool) -> Result<(), Error> {
    set_switch(ebpf, SWITCH_PATH_CACHE, on)
}

fn set_switch(ebpf: &mut Ebpf, slot: u32, on: bool) -> Result<(), Error> {
    let map = ebpf
        .map_mut(names::SWITCH)
        .ok_or(Error::MissingMap(names::SWITCH))?;
    let failed = |source| Error::Switch {
        what: if slot == SWITCH_TRACE {
            "tracing"
        } else {
            "the path cache"
        },
        state: if on { "on" } else { "off" },
        source,
    };
    let mut switch: aya::maps::Array<&mut MapData, u32> =
        aya::maps::Array::try_from(map).map_err(failed)?;
    switch.set(slot, u32::from(on), 0).map_err(failed)
}

/// Runs every kprobe program through the verifier and tries every fentry program; returns each
/// program with its outcome (fentry programs fail with EPERM under lockdown, not the verifier).
pub fn verify_all(ebpf: &mut Ebpf, btf: &Btf) -> Vec<(&'static str, Result<(), Error>)> {
    let mut results = Vec::new();
    for p in PROBES {
        results.push((p.kprobe, load_kprobe(ebpf, p).map(|_| ())));
        let fentry = if p.optional && !has_function(btf, p.function) {
            Err(Error::NotInKernel(p.function))
        } else {
            load_fentry(ebpf, p, btf)
        };
        results.push((p.fentry, fentry));
    }
    results.push((names::ARM_PROGRAM, load_arm(ebpf).map(|_| ())));
    results
}

/// Whether this kernel lets an fentry program attach (for `--check`): the floor's, tried alone.
pub fn fentry_works() -> Result<(), String> {
    let options = LoadOptions {
        offsets: kernel_offsets().map_err(|e| e.to_string())?.0,
        config: Config::default(),
        patterns: KernelPatterns::default(),
        ring_buffer_bytes: 4096,
        owner: OwnerLayout::default(),
        prealloc: true,
    };
    let btf = kernel_btf().map_err(|e| e.to_string())?;
    let mut ebpf = open(crate::EBPF_OBJECT, &options, &btf).map_err(|e| e.to_string())?;
    let floor = PROBES
        .iter()
        .find(|p| p.set == Set::Floor)
        .ok_or("no floor probe")?;
    // That program alone: the verifier's time for the others is not what is asked.
    load_fentry(&mut ebpf, floor, &btf).map_err(|e| e.to_string())?;
    // Loading is not enough: a kernel without BPF trampolines for its architecture (arm64
    // before 6.4's ftrace direct calls) loads fentry programs and refuses to attach them.
    attach_fentry(&mut ebpf, floor).map_err(|e| format!("{e:#}"))
}

/// Attaches the probes of `sets`; programs stay attached as long as `ebpf` lives.
pub fn attach(
    ebpf: &mut Ebpf,
    sets: &[Set],
    mode: AttachMode,
    btf: &Btf,
) -> Result<Vec<(&'static Probe, Attached)>, Error> {
    let kernel_btf = btf;
    let btf = (mode != AttachMode::Kprobe).then_some(btf);
    let mut attached = Vec::new();
    for p in PROBES.iter().filter(|p| sets.contains(&p.set)) {
        let _timed = Timed(p.function, std::time::Instant::now());
        if p.optional && !has_function(kernel_btf, p.function) {
            tracing::debug!("{} is not in this kernel: not probed", p.function);
            continue;
        }
        if let Some(btf) = btf {
            match load_fentry(ebpf, p, btf).and_then(|()| attach_fentry(ebpf, p)) {
                Ok(()) => {
                    attached.push((p, Attached::Fentry));
                    continue;
                }
                Err(e) if mode == AttachMode::Fentry => return Err(e),
                Err(e) => {
                    tracing::debug!("fentry for {} unavailable, using kprobe: {e}", p.function)
                }
            }
        }
        let kprobe = load_kprobe(ebpf, p)?;
        kprobe
            .attach(p.function, 0)
            .map_err(|source| classify_attach_error(p.kprobe, p.function, source))?;
        attached.push((p, Attached::Kprobe));
    }
    Ok(attached)
}

/// Logs (debug) how long one probe's load and attach took, however it ends.
struct Timed(&'static str, std::time::Instant);

impl Drop for Timed {
    fn drop(&mut self) {
        tracing::debug!(
            function = self.0,
            ms = self.1.elapsed().as_millis() as u64,
            "probe"
        );
    }
}

/// Each loaded program and the instructions the kernel's verifier processed for it (5.16+;
/// 0 where the kernel does not say): what loading costs.
pub fn verified(ebpf: &Ebpf) -> Vec<(String, u32)> {
    ebpf.programs()
        .filter_map(|(name, program)| {
            let info = program.info().ok()?;
            Some((
                name.to_owned(),
                info.verified_instruction_count().unwrap_or(0),
            ))
        })
        .collect()
}

/// Whether the kernel's BTF has a function of that name (what fentry attaches to, and a
/// kprobe needs the symbol of).
fn has_function(btf: &Btf, name: &str) -> bool {
    btf.id_by_type_name_kind(name, aya_obj::btf::BtfKind::Func)
        .is_ok()
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, Error>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(Error::MissingProgram(name))?
        .try_into()
        .map_err(|source| Error::Load {
            program: name,
            source,
        })
}

/// A program's load: already loaded (an earlier attempt, or `verify_all`) counts as loaded.
fn loaded(program: &'static str, result: Result<(), ProgramError>) -> Result<(), Error> {
    match result {
        Ok(()) | Err(ProgramError::AlreadyLoaded) => Ok(()),
        Err(source) => Err(Error::Load { program, source }),
    }
}

fn load_kprobe<'a>(ebpf: &'a mut Ebpf, p: &Probe) -> Result<&'a mut KProbe, Error> {
    let kprobe: &mut KProbe = program(ebpf, p.kprobe)?;
    loaded(p.kprobe, kprobe.load())?;
    Ok(kprobe)
}

fn load_fentry(ebpf: &mut Ebpf, p: &Probe, btf: &Btf) -> Result<(), Error> {
    let name = p.fentry;
    let result = match p.kind {
        Kind::Entry => program::<FEntry>(ebpf, name)?.load(p.function, btf),
        Kind::Return => program::<FExit>(ebpf, name)?.load(p.function, btf),
    };
    loaded(name, result)
}

fn attach_fentry(ebpf: &mut Ebpf, p: &Probe) -> Result<(), Error> {
    let name = p.fentry;
    let err = |source| Error::Attach {
        program: name,
        function: p.function,
        source,
    };
    match p.kind {
        Kind::Entry => program::<FEntry>(ebpf, name)?
            .attach()
            .map(drop)
            .map_err(err),
        Kind::Return => program::<FExit>(ebpf, name)?
            .attach()
            .map(drop)
            .map_err(err),
    }
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

//! The kernel-side acceptance workload: failed lookups and creates on ext4 (a loop-mounted
//! image: ext4 keeps negative dentries, tmpfs drops them at once) and on tmpfs, in sibling
//! cgroups of which only `*-traced` are scoped; then reclaim (remount, drop_caches); then a
//! flood into a tiny ring buffer to show drops are counted.
use std::path::Path;

use crate::vm::{VmOutput, VmRun};

/// Filesystems exercised, with their mount points in the VM.
pub const FILESYSTEMS: &[(&str, &str)] = &[("ext4", "/mnt/ext4"), ("tmpfs", "/mnt/tmpfs")];

/// A failed lookup whose path has names around the walk's inline-name limit (31 and 32
/// bytes: the walk copies names shorter than 32 bytes from the dentry itself, longer ones with
/// a second read) and one of NAME_MAX (255) bytes, under `work-traced` on ext4.
pub fn long_name_path() -> String {
    format!(
        "/work-traced/{}/{}/{}",
        "a".repeat(31),
        "b".repeat(32),
        "c".repeat(255)
    )
}

/// The most patterns the kernel tests, the longest it tests among them.
pub const KERNEL_PATTERN_SET: &str = "0123456789abcdef,.ibd,#sql,zz";

/// Failed lookups under `/pat` on ext4 while the kernel tests `KERNEL_PATTERN_SET`, each with
/// whether its path (from the filesystem root) holds a pattern: matches at the start, middle
/// and end of names, across the search's 8-byte steps, in a parent directory, and near-misses;
/// then paths too long for the kernel's test, which userspace decides alone.
pub fn pattern_lookups() -> Vec<(String, bool)> {
    let long_dir = format!("/pat/{}", "p".repeat(200));
    let mut v: Vec<(String, bool)> = [
        ("/pat/t1.ibd", true),
        ("/pat/#sql-42", true),
        ("/pat/a-0123456789abcdef-b", true),
        ("/pat/zz", true),
        ("/pat/zz-dir/missing", true),
        ("/pat/t1.ib", false),
        ("/pat/#sq-l", false),
        ("/pat/0123456789abcdeX", false),
        ("/pat/z-z", false),
        ("/pat/.IBD", false),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m))
    .collect();
    for shift in 0..9 {
        let pad = "x".repeat(40 + shift);
        v.push((format!("/pat/{pad}zz"), true));
        v.push((format!("/pat/{pad}z"), false));
    }
    v.push((format!("{long_dir}/{}zz", "q".repeat(100)), true));
    v.push((format!("{long_dir}/{}", "q".repeat(100)), false));
    v
}

/// A step of the path cache's check: a failed lookup in the `patterns` cgroup (path from the
/// ext4 root, whether it holds a pattern of `KERNEL_PATTERN_SET`), or a shell command run
/// outside it.
#[derive(Debug, Clone)]
pub enum CacheStep {
    Lookup(String, bool),
    Run(String),
}

/// Cycles of a directory freed and another made (see `path_cache_steps`).
pub const REUSE_CYCLES: u32 = 6;

/// Lookups that a stale path cache would get wrong, and the commands that would make it
/// stale, in order: lookups under a directory (which the kernel then caches), a rename of its
/// parent to a name holding a pattern, lookups under the renamed one (all must match); then
/// directories looked in, removed and freed (rmdir, drop_caches), each followed by a new
/// directory whose name holds a pattern (it may take the freed one's memory).
pub fn path_cache_steps() -> Vec<CacheStep> {
    let run = CacheStep::Run;
    let mut v = vec![run("mkdir -p /mnt/ext4/pat/ren/a/b".into())];
    for i in 0..5 {
        v.push(CacheStep::Lookup(format!("/pat/ren/a/b/m-{i}"), false));
    }
    v.push(run("mv /mnt/ext4/pat/ren/a /mnt/ext4/pat/ren/zz-a".into()));
    for i in 0..5 {
        // New names: the old ones' negative dentries moved along and would be found.
        v.push(CacheStep::Lookup(format!("/pat/ren/zz-a/b/n-{i}"), true));
    }
    for k in 0..REUSE_CYCLES {
        v.push(run(format!("mkdir /mnt/ext4/pat/ren/d{k}")));
        v.push(CacheStep::Lookup(format!("/pat/ren/d{k}/m"), false));
        v.push(run(format!(
            "rmdir /mnt/ext4/pat/ren/d{k} && echo 2 > /proc/sys/vm/drop_caches && sleep 0.2"
        )));
        v.push(run(format!("mkdir /mnt/ext4/pat/ren/zz{k}")));
        v.push(CacheStep::Lookup(format!("/pat/ren/zz{k}/m"), true));
    }
    v
}

/// Every lookup the `patterns` tracer sees, in order: `pattern_lookups`, then the path
/// cache's.
pub fn all_pattern_lookups() -> Vec<(String, bool)> {
    let mut v = pattern_lookups();
    v.extend(path_cache_steps().into_iter().filter_map(|s| match s {
        CacheStep::Lookup(path, matches) => Some((path, matches)),
        CacheStep::Run(_) => None,
    }));
    v
}

/// The path cache's steps as script lines.
fn path_cache_script() -> String {
    path_cache_steps()
        .into_iter()
        .map(|s| match s {
            CacheStep::Lookup(path, _) => {
                format!("run_in patterns exists '/mnt/ext4{path}'\n")
            }
            CacheStep::Run(command) => format!("{command}\n"),
        })
        .collect()
}

/// One lookup of each of `pattern_lookups`.
fn patterns_script() -> String {
    pattern_lookups()
        .iter()
        .map(|(path, _)| format!("[ -e '/mnt/ext4{path}' ]\n"))
        .collect()
}

const RECLAIM: &str = r#"# reclaim.sh: a remount (shrink_dcache_sb) and drop_caches (prune_dcache_sb).
mount -o remount /mnt/ext4
# The remount left ext4 few unused dentries: make some, for drop_caches to free.
i=0
while [ $i -lt 50 ]; do [ -e /mnt/ext4/reclaim-$i ]; i=$((i+1)); done
echo 2 > /proc/sys/vm/drop_caches
"#;

#[derive(Debug, Clone)]
pub struct DentryWorkload {
    pub lookups: u32,
    pub creates: u32,
    /// Lookups made in a child cgroup of a traced one (covered through its ancestor).
    pub child_lookups: u32,
    /// Lookups made against a one-page ring buffer.
    pub flood: u32,
    /// `--attach-mode` for the tracer.
    pub attach_mode: String,
}

impl DentryWorkload {
    /// Adds the scripts and the ext4 image to a VM run.
    pub fn prepare<'a>(&self, run: VmRun<'a>, ext4_image: &Path) -> anyhow::Result<VmRun<'a>> {
        let image = std::fs::read(ext4_image)?;
        Ok(run
            .module("loop")
            .file("/ext4.img", image)
            .file("/patterns.sh", patterns_script())
            .file("/reclaim.sh", RECLAIM))
    }

    pub fn script(&self) -> String {
        let Self {
            lookups,
            creates,
            child_lookups,
            flood,
            attach_mode,
        } = self;
        let long = long_name_path();
        let long_dir = long.rsplit_once('/').map_or("", |(dir, _)| dir);
        let p200 = "p".repeat(200);
        let cache_steps = path_cache_script();
        let body = format!(
            r#"
$TRACER --check 2>&1 | sed 's/^/@@check /'
mkdir -p /mnt/ext4 /mnt/tmpfs
mount -o loop -t ext4 /ext4.img /mnt/ext4 || exit 1
mount -t tmpfs tmpfs /mnt/tmpfs || exit 1
for fs in ext4 tmpfs; do
  mkdir -p $CG/$fs-traced $CG/$fs-other /mnt/$fs/work-traced /mnt/$fs/work-other
  echo "@@cgroup $fs-traced $(stat -c %i $CG/$fs-traced)"
  echo "@@cgroup $fs-other $(stat -c %i $CG/$fs-other)"
done
mkdir -p $CG/ext4-traced/child $CG/reclaim /mnt/ext4/work-traced/child-dir /mnt/ext4{long_dir}
mkdir -p $CG/patterns /mnt/ext4/pat/zz-dir /mnt/ext4/pat/{p200}
echo "@@cgroup patterns $(stat -c %i $CG/patterns)"
echo "@@cgroup ext4-child $(stat -c %i $CG/ext4-traced/child)"
echo "@@cgroup reclaim $(stat -c %i $CG/reclaim)"

$TRACER --attach-mode {attach_mode} --trace-enabled --stdout \
  --target-cgroup $CG/ext4-traced --target-cgroup $CG/tmpfs-traced --target-cgroup $CG/reclaim \
  > /tmp/trace.tsv 2> /tmp/tracer.err &
T=$!
wait_attached $T /tmp/tracer.err
for fs in ext4 tmpfs; do
  for side in traced other; do
    run_in $fs-$side lookups /mnt/$fs/work-$side {lookups}
    run_in $fs-$side creates /mnt/$fs/work-$side {creates}
  done
done
run_in ext4-traced exists /mnt/ext4{long}
run_in ext4-traced/child lookups /mnt/ext4/work-traced/child-dir {child_lookups}
run_in reclaim sh /reclaim.sh
stop_tracer $T tracer
sed 's/^/@@tsv /' /tmp/trace.tsv

mkdir -p $CG/flood /mnt/tmpfs/flood
$TRACER --attach-mode {attach_mode} --trace-enabled --ring-buffer-size 4096 \
  --target-cgroup $CG/flood > /dev/null 2> /tmp/flood.err &
F=$!
wait_attached $F /tmp/flood.err
# The reader stopped while the flood runs: the one-page ring buffer fills however fast the
# tracer would drain it.
kill -STOP $F
run_in flood lookups /mnt/tmpfs/flood {flood}
kill -CONT $F
stop_tracer $F flood

$TRACER --attach-mode {attach_mode} --trace-enabled --stdout \
  --trace-patterns '{KERNEL_PATTERN_SET}' --target-cgroup $CG/patterns \
  > /tmp/patterns.tsv 2> /tmp/patterns.err &
P=$!
wait_attached $P /tmp/patterns.err
run_in patterns sh /patterns.sh
{cache_steps}stop_tracer $P patterns
sed 's/^/@@pattern-tsv /' /tmp/patterns.tsv
"#
        );
        crate::scripts::script(&body, &[])
    }
}

/// Makes an empty ext4 filesystem image of `mib` MiB at `path` (mkfs.ext4 from e2fsprogs).
pub fn make_ext4_image(path: &Path, mib: u64) -> anyhow::Result<()> {
    std::fs::File::create(path)?.set_len(mib << 20)?;
    crate::command::run(
        std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(path),
    )?;
    Ok(())
}

/// The tracer's end-of-run summary, parsed.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub attach: String,
    pub events: u64,
    pub drops: u64,
    /// Records the kernel's pattern test left out.
    pub filtered: u64,
    /// Events whose directory path came from the kernel's path cache.
    pub path_cache_hits: u64,
    /// Probe hits that found their CPU's state in use (counted aside, not traced).
    pub contended: u64,
    /// Probe runs the kernel skipped (a program already running on that CPU).
    pub missed: u64,
    /// Records a stop left in the ring buffer, undrained.
    pub unread: u64,
    /// Lines the stop left unwritten to a stdout that did not keep up.
    pub unwritten: u64,
    /// cgroup id → field → value.
    pub cgroups: std::collections::BTreeMap<u64, std::collections::BTreeMap<String, u64>>,
}

impl Summary {
    /// Parses `summary ...` and `cgroup cgroup_id=...` lines (the values of one tag).
    pub fn parse(lines: &[&str]) -> Summary {
        let mut summary = Summary::default();
        for line in lines {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("summary") => {
                    for (k, v) in words.filter_map(|w| w.split_once('=')) {
                        match k {
                            "attach" => summary.attach = v.to_owned(),
                            "events" => summary.events = v.parse().unwrap_or(0),
                            "drops" => summary.drops = v.parse().unwrap_or(0),
                            "filtered" => summary.filtered = v.parse().unwrap_or(0),
                            "path_cache_hits" => summary.path_cache_hits = v.parse().unwrap_or(0),
                            "contended" => summary.contended = v.parse().unwrap_or(0),
                            "missed" => summary.missed = v.parse().unwrap_or(0),
                            "unread" => summary.unread = v.parse().unwrap_or(0),
                            "unwritten" => summary.unwritten = v.parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                Some("cgroup") => {
                    let fields: std::collections::BTreeMap<String, u64> = words
                        .filter_map(|w| w.split_once('='))
                        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                        .collect();
                    if let Some(&id) = fields.get("cgroup_id") {
                        summary.cgroups.insert(id, fields);
                    }
                }
                _ => {}
            }
        }
        summary
    }

    /// A counter of one cgroup (0 when the cgroup never counted).
    pub fn count(&self, cgroup: u64, field: &str) -> u64 {
        self.cgroups
            .get(&cgroup)
            .and_then(|f| f.get(field))
            .copied()
            .unwrap_or(0)
    }

    pub fn total(&self, field: &str) -> u64 {
        self.cgroups.values().filter_map(|f| f.get(field)).sum()
    }
}

/// cgroup name → id, from the `@@cgroup name id` lines.
pub fn cgroup_ids(out: &VmOutput) -> std::collections::BTreeMap<String, u64> {
    out.tagged("cgroup")
        .into_iter()
        .filter_map(|l| {
            let (name, id) = l.split_once(' ')?;
            Some((name.to_owned(), id.trim().parse().ok()?))
        })
        .collect()
}

//! Container paths for lookups on overlay layers. A lookup in a container's overlayfs also looks
//! in the overlay's upper and lower directories, on the filesystem that holds them (ext4, xfs),
//! and each of those lookups leaves its own dentry: the trace has a line for it, whose path is
//! relative to that filesystem's root, e.g.
//! `/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs/var/lib/mysql/x`.
//! The overlay mounts in the host's mount table name those directories, so such a path is
//! written as the container sees it (`/var/lib/mysql/x`), its fstype kept.
use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

/// How often a path that is under no known layer may cause the mount table to be read again
/// (a container started since the last read has new layers).
const REREAD: Duration = Duration::from_secs(1);

/// The layer directories of every overlay mount on the host, as (fstype, path relative to that
/// filesystem's root).
#[derive(Debug)]
pub struct Layers {
    mountinfo: PathBuf,
    /// Layer directory (relative to its filesystem's root, no trailing `/`) → its fstype.
    dirs: HashMap<String, String>,
    read_at: Option<Instant>,
}

impl Layers {
    /// Layers from `mountinfo` (the host's: `/proc/1/mountinfo`).
    pub fn new(mountinfo: PathBuf) -> Layers {
        let mut layers = Layers {
            mountinfo,
            dirs: HashMap::new(),
            read_at: None,
        };
        layers.read();
        layers
    }

    fn read(&mut self) {
        self.read_at = Some(Instant::now());
        match std::fs::read_to_string(&self.mountinfo) {
            Ok(text) => self.dirs = layer_dirs(&text),
            Err(e) => tracing::debug!("{}: {e}", self.mountinfo.display()),
        }
    }

    /// Rewrites `path` (on a filesystem of type `fstype`) to the container's view when it lies
    /// in a layer directory; true if it did.
    pub fn rewrite(&mut self, fstype: &str, path: &mut String) -> bool {
        if fstype == "overlay" || !path.starts_with('/') {
            return false;
        }
        if let Some(at) = self.layer_end(fstype, path) {
            strip(path, at);
            return true;
        }
        if self.read_at.is_none_or(|t| t.elapsed() >= REREAD) {
            self.read();
            if let Some(at) = self.layer_end(fstype, path) {
                strip(path, at);
                return true;
            }
        }
        false
    }

    /// Where the layer directory holding `path` ends in it, if one does: the longest one, as
    /// layers do not nest in practice but a directory and its parent could both be listed.
    fn layer_end(&self, fstype: &str, path: &str) -> Option<usize> {
        if self.dirs.is_empty() {
            return None;
        }
        let ends = path
            .match_indices('/')
            .map(|(i, _)| i)
            .skip(1)
            .chain(std::iter::once(path.len()));
        let mut found = None;
        for end in ends {
            if self.dirs.get(&path[..end]).is_some_and(|fs| fs == fstype) {
                found = Some(end);
            }
        }
        found
    }
}

/// `path` with its first `at` bytes (a layer directory) replaced by the container's root.
fn strip(path: &mut String, at: usize) {
    path.replace_range(..at, "");
    if path.is_empty() {
        path.push('/');
    }
}

/// One line of a mount table: where, what part of which filesystem, and its options.
struct Mount {
    point: String,
    root: String,
    fstype: String,
    super_options: String,
}

fn parse(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    let mut after = after.splitn(3, ' ');
    let fstype = after.next()?;
    let _source = after.next()?;
    Some(Mount {
        root: unescape(fields.get(3)?),
        point: unescape(fields.get(4)?),
        fstype: fstype.to_owned(),
        super_options: after.next().unwrap_or_default().to_owned(),
    })
}

/// The kernel writes a space, tab, newline and backslash in a mount table's paths as `\040`,
/// `\011`, `\012`, `\134`.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every overlay's upper and lower directories in `mountinfo`, each as the path relative to the
/// root of the filesystem holding it (found by the longest mount point containing it), with
/// that filesystem's type.
pub fn layer_dirs(mountinfo: &str) -> HashMap<String, String> {
    let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse).collect();
    let mut dirs = HashMap::new();
    for overlay in mounts.iter().filter(|m| m.fstype == "overlay") {
        for dir in layer_options(&overlay.super_options) {
            let holder = mounts
                .iter()
                .filter(|m| m.fstype != "overlay" && within(&dir, &m.point))
                .max_by_key(|m| m.point.len());
            let Some(holder) = holder else { continue };
            // A mount point longer than the directory (only `/` vs an empty one) leaves nothing.
            let rest = dir
                .get(holder.point.len()..)
                .unwrap_or_default()
                .trim_start_matches('/');
            let mut relative = holder.root.trim_end_matches('/').to_owned();
            if !rest.is_empty() {
                relative.push('/');
                relative.push_str(rest);
            }
            if relative.is_empty() {
                // A layer at its filesystem's root would claim every path on it.
                continue;
            }
            dirs.insert(relative, holder.fstype.clone());
        }
    }
    dirs
}

/// The directories an overlay's options name: `upperdir=`, `lowerdir=` (`:`-separated) and
/// the `lowerdir+=` / `datadir+=` form newer kernels show. Relative ones (Docker's short
/// links, resolved against the mounter's working directory) cannot be placed and are skipped.
fn layer_options(options: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    for option in options.split(',') {
        let Some((key, value)) = option.split_once('=') else {
            continue;
        };
        match key {
            "upperdir" | "lowerdir+" | "datadir+" => dirs.push(value.to_owned()),
            "lowerdir" => dirs.extend(value.split(':').map(str::to_owned)),
            _ => {}
        }
    }
    dirs.into_iter()
        .filter(|d| d.starts_with('/'))
        .map(|d| unescape(d.trim_end_matches('/')))
        // `lowerdir=/` names the root itself, which would claim every path.
        .filter(|d| !d.is_empty())
        .collect()
}

/// Whether `path` is `point` or below it.
fn within(path: &str, point: &str) -> bool {
    point == "/"
        || path == point
        || path
            .strip_prefix(point)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    /// Found by `cargo xtask fuzz` (target mountinfo): an overlay whose layer is `/` panicked
    /// slicing past the end of the emptied path.
    #[test]
    fn a_layer_at_the_root_is_skipped_not_a_panic() {
        let text = "22 1 252:0 / / rw - ext4 /dev/vda rw\n\
                    30 22 0:40 / /merged rw - overlay overlay rw,lowerdir=/,upperdir=/up/\n";
        let dirs = super::layer_dirs(text);
        assert_eq!(
            dirs.get("/up").map(String::as_str),
            Some("ext4"),
            "{dirs:?}"
        );
        assert_eq!(dirs.len(), 1, "{dirs:?}");
    }

    use super::*;

    /// A node's mount table as containerd leaves it: the root on ext4, containerd's state on
    /// its own xfs, a container's rootfs overlay, and a bind mount of part of a filesystem.
    const MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 254:16 / /var/lib/containerd rw,relatime shared:9 - xfs /dev/vdb rw
31 22 254:1 /srv/data /mnt/data rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:52 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/5/fs:/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/4/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/6/work
41 22 0:53 / /merged rw - overlay overlay rw,lowerdir+=/mnt/data/low\\040er,upperdir=/mnt/data/up,workdir=/mnt/data/work
42 22 0:54 / /docker rw - overlay overlay rw,lowerdir=l/ABC:l/DEF,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work
";

    #[test]
    fn layers_are_placed_on_the_filesystem_that_holds_them() {
        let dirs = layer_dirs(MOUNTINFO);
        let snapshot = |n: u32| format!("/io.containerd.snapshotter.v1.overlayfs/snapshots/{n}/fs");
        for n in [4, 5, 6] {
            assert_eq!(
                dirs.get(&snapshot(n)).map(String::as_str),
                Some("xfs"),
                "{dirs:?}"
            );
        }
        // Below a bind mount: the mount's root within its filesystem comes first.
        assert_eq!(dirs.get("/srv/data/up").map(String::as_str), Some("ext4"));
        assert_eq!(
            dirs.get("/srv/data/low er").map(String::as_str),
            Some("ext4")
        );
        assert_eq!(
            dirs.get("/var/lib/docker/overlay2/x/diff")
                .map(String::as_str),
            Some("ext4")
        );
        // Work directories are not layers; relative lower directories cannot be placed.
        assert_eq!(dirs.len(), 6, "{dirs:?}");
    }

    #[test]
    fn a_layer_path_reads_as_the_containers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("mountinfo");
        std::fs::write(&file, MOUNTINFO).expect("write");
        let mut layers = Layers::new(file.clone());
        let mut rewrite = |fstype: &str, path: &str| {
            let mut path = path.to_owned();
            layers.rewrite(fstype, &mut path).then_some(path)
        };
        let upper = "/io.containerd.snapshotter.v1.overlayfs/snapshots/6/fs";
        assert_eq!(
            rewrite("xfs", &format!("{upper}/var/lib/mysql/t1.ibd")).as_deref(),
            Some("/var/lib/mysql/t1.ibd")
        );
        assert_eq!(rewrite("xfs", upper).as_deref(), Some("/"));
        assert_eq!(
            rewrite("ext4", "/srv/data/up/etc/x").as_deref(),
            Some("/etc/x")
        );
        // Not under a layer, on another filesystem type, the overlay's own, or cut short.
        assert_eq!(
            rewrite(
                "xfs",
                "/io.containerd.snapshotter.v1.overlayfs/snapshots/7/fs/x"
            ),
            None
        );
        assert_eq!(rewrite("ext4", &format!("{upper}/x")), None);
        assert_eq!(rewrite("overlay", "/srv/data/up/x"), None);
        assert_eq!(rewrite("ext4", ".../up/x"), None);
        assert_eq!(rewrite("ext4", "/srv/data/upper/x"), None);

        // A container started since: its layers are found at the next miss.
        std::fs::write(
            &file,
            format!(
                "{MOUNTINFO}50 22 0:60 / /c2 rw - overlay overlay rw,lowerdir=/mnt/data/c2/l,upperdir=/mnt/data/c2/u,workdir=/mnt/data/c2/w\n"
            ),
        )
        .expect("write");
        layers.read_at = Some(Instant::now() - REREAD);
        let mut path = "/srv/data/c2/u/tmp/x".to_owned();
        assert!(layers.rewrite("ext4", &mut path));
        assert_eq!(path, "/tmp/x");
    }
}

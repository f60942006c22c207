//! The tracer image as an OCI image layout archive (`tracer-<version>.oci.tar`): one index
//! naming a linux/amd64 and a linux/arm64 manifest, each with one layer (the image root of
//! `release::image_root`: the static tracer and its mount points) and a config with the
//! entrypoint, user, port and `org.opencontainers.image.*` labels, as the Dockerfile's final
//! stage has. No shell, nothing else. Built without a container engine and reproducibly:
//! fixed file times and owners, no creation time, so the same tracers give the same digest.
use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde_json::json;

use crate::{arch::Arch, release};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Where the image is pushed and what `ctr images import` names it.
pub fn reference() -> String {
    format!("ghcr.io/kubectl-dentry/tracer:{}", release::VERSION)
}

/// The archive's file name.
pub fn archive_name() -> String {
    format!("tracer-{}.oci.tar", release::VERSION)
}

/// A content-addressed blob.
struct Blob {
    media_type: &'static str,
    bytes: Vec<u8>,
}

impl Blob {
    fn digest(&self) -> String {
        format!("sha256:{}", release::sha256_hex(&self.bytes))
    }

    fn descriptor(&self) -> serde_json::Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest(),
            "size": self.bytes.len(),
        })
    }
}

/// Builds the tracers for both architectures and writes the archive into `out`; returns its
/// path and the index's digest.
pub fn write(out: &Path) -> anyhow::Result<(PathBuf, String)> {
    let mut roots = Vec::new();
    for arch in [Arch::Amd64, Arch::Arm64] {
        let dir = tempfile::tempdir()?;
        release::image_root(dir.path(), arch)?;
        roots.push((arch, dir));
    }
    let roots: Vec<(Arch, &Path)> = roots.iter().map(|(a, d)| (*a, d.path())).collect();
    let path = out.join(archive_name());
    let digest = write_archive(&path, &roots)?;
    Ok((path, digest))
}

/// The archive from image roots already made, one per architecture.
pub fn write_archive(path: &Path, roots: &[(Arch, &Path)]) -> anyhow::Result<String> {
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    for (arch, root) in roots {
        let tar = layer_tar(root)?;
        let diff_id = format!("sha256:{}", release::sha256_hex(&tar));
        let layer = Blob {
            media_type: LAYER,
            bytes: gzip(&tar)?,
        };
        let config = Blob {
            media_type: CONFIG,
            bytes: serde_json::to_vec(&config(*arch, &diff_id))?,
        };
        let manifest = Blob {
            media_type: MANIFEST,
            bytes: serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
                "annotations": labels(),
            }))?,
        };
        let mut entry = manifest.descriptor();
        entry["platform"] = json!({ "os": "linux", "architecture": arch.debian() });
        manifests.push(entry);
        blobs.extend([layer, config, manifest]);
    }
    let image_index = Blob {
        media_type: INDEX,
        bytes: serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": manifests,
            "annotations": labels(),
        }))?,
    };
    let mut top = image_index.descriptor();
    top["annotations"] = json!({
        "io.containerd.image.name": reference(),
        "org.opencontainers.image.ref.name": release::VERSION,
    });
    let digest = image_index.digest();
    blobs.push(image_index);
    let layout = serde_json::to_vec(&json!({ "imageLayoutVersion": "1.0.0" }))?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [top],
    }))?;

    let mut tar = tar::Builder::new(std::fs::File::create(path)?);
    append(&mut tar, "oci-layout", &layout, 0o644)?;
    append(&mut tar, "index.json", &index, 0o644)?;
    let mut seen = std::collections::BTreeSet::new();
    for blob in &blobs {
        let hex = blob.digest().trim_start_matches("sha256:").to_owned();
        if seen.insert(hex.clone()) {
            append(&mut tar, &format!("blobs/sha256/{hex}"), &blob.bytes, 0o644)?;
        }
    }
    tar.into_inner()?.flush()?;
    Ok(digest)
}

/// The OCI labels, on the config (as `docker inspect` shows them) and the manifests.
fn labels() -> serde_json::Value {
    json!({
        "org.opencontainers.image.title": "dentry-tracer",
        "org.opencontainers.image.description": "eBPF tracer of the Linux dentry cache, per container: Prometheus metrics and TSV path traces",
        "org.opencontainers.image.version": release::VERSION,
        "org.opencontainers.image.source": "https://github.com/kubectl-dentry/kubectl-dentry",
        "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
    })
}

fn config(arch: Arch, diff_id: &str) -> serde_json::Value {
    json!({
        "architecture": arch.debian(),
        "os": "linux",
        "config": {
            "Entrypoint": ["/tracer"],
            // Root for CAP_BPF/CAP_PERFMON and the host paths; the pod spec drops the rest.
            "User": "0:0",
            "ExposedPorts": { "9090/tcp": {} },
            "WorkingDir": "/",
            "Labels": labels(),
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })
}

/// The image root as an uncompressed layer tar: sorted paths, owner 0, fixed times.
fn layer_tar(root: &Path) -> anyhow::Result<Vec<u8>> {
    let mut entries = Vec::new();
    collect(root, root, &mut entries)?;
    entries.sort();
    let mut tar = tar::Builder::new(Vec::new());
    for relative in entries {
        let full = root.join(&relative);
        let meta = std::fs::metadata(&full)?;
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let name = relative.to_string_lossy().into_owned();
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(if name == "tmp" { 0o1777 } else { 0o755 });
            header.set_cksum();
            tar.append_data(&mut header, format!("{name}/"), std::io::empty())?;
        } else {
            let data = std::fs::read(&full)?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            tar.append_data(&mut header, &name, data.as_slice())?;
        }
    }
    Ok(tar.into_inner()?)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        out.push(path.strip_prefix(root)?.to_path_buf());
        if path.is_dir() {
            collect(root, &path, out)?;
        }
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    // flate2 writes no file name and a zero mtime: the same bytes give the same blob.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn append(
    tar: &mut tar::Builder<std::fs::File>,
    name: &str,
    data: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    tar.append_data(&mut header, name, data)?;
    Ok(())
}

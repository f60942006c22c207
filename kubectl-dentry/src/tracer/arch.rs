//! The tracer image and the node's architecture. The release tag is multi-arch (linux/amd64
//! and linux/arm64), so the node's runtime pulls its own; an image named for one architecture
//! (`...:0.1.0-arm64`, `.../arm64/tracer`) runs only on that one, and the plugin says so
//! before it creates a pod that would fail at exec.
use k8s_openapi::api::core::v1::Node;

use crate::error::Error;

/// The well-known node label (set by the kubelet) naming its architecture.
pub const NODE_ARCH_LABEL: &str = "kubernetes.io/arch";

const ARCHES: &[(&str, &str)] = &[
    ("amd64", "amd64"),
    ("x86_64", "amd64"),
    ("arm64", "arm64"),
    ("aarch64", "arm64"),
    ("arm64v8", "arm64"),
];

/// The architecture an image reference names, if it names one: a tag ending in `-ARCH` or
/// `_ARCH` (or being `ARCH`), or a path component `ARCH`. `None`: a multi-arch reference.
pub fn image_arch(image: &str) -> Option<&'static str> {
    let (path, tag) = match image.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (image, None),
    };
    let lookup = |word: &str| {
        ARCHES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, arch)| *arch)
    };
    if let Some(tag) = tag
        && let Some(arch) = tag.rsplit(['-', '_']).next().and_then(lookup)
    {
        return Some(arch);
    }
    path.split('/').skip(1).find_map(lookup)
}

/// Fails when `image` is for one architecture and `node` (named `name`; `None`: not read)
/// reports another.
pub fn check(image: &str, name: &str, node: Option<&Node>) -> Result<(), Error> {
    let Some(wanted) = image_arch(image) else {
        return Ok(());
    };
    let has = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(NODE_ARCH_LABEL))
        .cloned();
    match has {
        Some(has) if has != wanted => Err(Error::ImageArch {
            image: image.to_owned(),
            image_arch: wanted.to_owned(),
            node: name.to_owned(),
            node_arch: has,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_arch_references_name_their_architecture() {
        for (image, arch) in [
            ("ghcr.io/kubectl-dentry/tracer:0.1.0", None),
            ("ghcr.io/kubectl-dentry/tracer:0.1.0-arm64", Some("arm64")),
            ("ghcr.io/kubectl-dentry/tracer:0.1.0_amd64", Some("amd64")),
            ("registry:5000/tracer:aarch64", Some("arm64")),
            ("docker.io/arm64v8/tracer:1", Some("arm64")),
            ("registry:5000/amd64/tracer", Some("amd64")),
            ("localhost:5000/tracer", None),
            ("tracer:dev", None),
        ] {
            assert_eq!(image_arch(image), arch, "{image}");
        }
    }
}

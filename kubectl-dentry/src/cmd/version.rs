//! `kubectl dentry version`: the plugin's version, platform and default image, and the images
//! of the tracers running in the cluster when it answers soon, with a warning when their
//! version is not the plugin's.
use std::time::Duration;

use crate::{
    cluster::{self, ClusterArgs},
    error::Error,
};

pub async fn run(args: &ClusterArgs) -> Result<(), Error> {
    println!("kubectl-dentry {VERSION}");
    println!("platform {}", platform());
    println!("default tracer image {}", crate::DEFAULT_IMAGE);
    if let Ok(image) = std::env::var("KUBECTL_DENTRY_IMAGE") {
        println!("KUBECTL_DENTRY_IMAGE {image}");
    }
    // Best effort: an unreachable cluster is said, not an error.
    let images = tokio::time::timeout(Duration::from_secs(3), async {
        let (client, _) = cluster::connect(args).await.ok()?;
        cluster::tracer_images(&client).await.ok()
    })
    .await
    .ok()
    .flatten();
    match images {
        Some(images) if !images.is_empty() => {
            for (image, n) in images {
                println!("tracer image in the cluster {image} ({n} pod(s))");
                if let Some(tag) = other_version(&image) {
                    eprintln!(
                        "warning: {n} tracer pod(s) run version {tag} ({image}), this plugin is \
                         {VERSION}: upgrade the older one (kubectl krew upgrade dentry, or the \
                         DaemonSet's image) so both speak the same contract"
                    );
                }
            }
        }
        Some(_) => println!("no tracer pods running in the cluster"),
        None => println!("cluster not reachable: tracer images unknown"),
    }
    Ok(())
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// krew's name for this build's platform (`darwin/arm64`, `linux/amd64`, ...).
pub fn platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        arch => arch,
    };
    format!("{os}/{arch}")
}

/// The version in an image's tag when it is not this plugin's (`None` when it matches, or the
/// image names no version: a digest, `latest`, a local build).
fn other_version(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let (_, tag) = name
        .rsplit_once(':')
        .filter(|(repo, _)| !repo.ends_with('/') && !name.ends_with(']'))?;
    if tag.contains('/') {
        return None; // registry:port/repo without a tag
    }
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let looks_like_version = version
        .split('.')
        .take(3)
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    (looks_like_version && version.split('.').count() >= 3 && version != VERSION).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_different_release_tag_is_another_version() {
        let same = format!("ghcr.io/kubectl-dentry/tracer:{VERSION}");
        assert_eq!(other_version(&same), None);
        assert_eq!(other_version(&format!("r/tracer:v{VERSION}")), None);
        assert_eq!(
            other_version("ghcr.io/kubectl-dentry/tracer:0.0.9"),
            Some("0.0.9")
        );
        assert_eq!(other_version("registry:5000/tracer:v0.0.9"), Some("v0.0.9"));
        for unversioned in [
            "registry:5000/tracer",
            "tracer:latest",
            "tracer:dev",
            "tracer@sha256:abc",
        ] {
            assert_eq!(other_version(unversioned), None, "{unversioned}");
        }
    }
}

//! Where heavy artefacts (LLVM, kernel packages) live: outside the repository, reused by every
//! clone on the machine.
use std::path::PathBuf;

/// `$DENTRY_CACHE_DIR`, else `$XDG_CACHE_HOME/kubectl-dentry`, else `~/.cache/kubectl-dentry`.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DENTRY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kubectl-dentry")
}

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

//! Where heavy artefacts (LLVM, kernel packages) live: outside the repository, reused by every
//! clone on the machine.
use std::path::{Path, PathBuf};

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

/// Writes `path` so that nobody ever sees it half-written: tests running in parallel share the
/// cache, and one may find a file the moment another starts writing it.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, data)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

//! cgroup v2 identities as the kernel reports them to BPF programs.
use std::{io, os::unix::fs::MetadataExt, path::Path};

/// The id `bpf_get_current_cgroup_id()` returns for tasks in this cgroup: the inode number of
/// its directory in the cgroup2 filesystem.
pub fn id_of(dir: &Path) -> io::Result<u64> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a cgroup directory", dir.display()),
        ));
    }
    Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_the_directory_inode() {
        let dir = std::env::temp_dir();
        let expected = std::fs::metadata(&dir).map(|m| m.ino()).ok();
        assert_eq!(id_of(&dir).ok(), expected);
    }

    #[test]
    fn a_file_is_not_a_cgroup() {
        let err = id_of(Path::new("/proc/self/status")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

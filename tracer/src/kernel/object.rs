//! The embedded eBPF object, adjusted for the running kernel before aya parses it.
//!
//! aya 0.14 can resize a map before creating it but not change its flags, and one map's flags
//! depend on the kernel: `BORN` is allocated as slabs appear (`BPF_F_NO_PREALLOC`) where the
//! kernel has the BPF memory allocator (6.1), and preallocated before it, where the verifier
//! warns about (and under PREEMPT_RT refuses) run-time allocated hash maps in tracing programs
//! and the kernel logs a WARN splat for each such load.
use std::borrow::Cow;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

/// `offsetof(struct bpf_map_def, map_flags)` in aya-ebpf's legacy map definitions (`type`,
/// `key_size`, `value_size`, `max_entries`, `map_flags`, ... as `u32`s).
const MAP_FLAGS_AT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the eBPF object is not a readable ELF file: {0}")]
    Elf(#[from] object::Error),
    #[error("the eBPF object has no map definition {0} in its maps section")]
    NoMap(String),
}

/// `object` with map `name`'s flags replaced by `flags` (the object itself when they are
/// already those).
pub fn with_map_flags<'a>(
    object: &'a [u8],
    name: &str,
    flags: u32,
) -> Result<Cow<'a, [u8]>, Error> {
    let at = flags_at(object, name)?;
    if read_u32(object, at) == Some(flags) {
        return Ok(Cow::Borrowed(object));
    }
    let mut patched = object.to_vec();
    patched[at..at + 4].copy_from_slice(&flags.to_le_bytes());
    Ok(Cow::Owned(patched))
}

/// The flags a map definition in `object` has.
pub fn map_flags(object: &[u8], name: &str) -> Result<u32, Error> {
    let at = flags_at(object, name)?;
    read_u32(object, at).ok_or_else(|| Error::NoMap(name.to_owned()))
}

/// Where in the file map `name`'s flags word is: its symbol's place in the `maps` section.
fn flags_at(object: &[u8], name: &str) -> Result<usize, Error> {
    let missing = || Error::NoMap(name.to_owned());
    let elf = object::File::parse(object)?;
    let symbol = elf
        .symbols()
        .find(|s| s.name() == Ok(name))
        .ok_or_else(missing)?;
    let section = symbol
        .section_index()
        .and_then(|i| elf.section_by_index(i).ok())
        .filter(|s| s.name() == Ok("maps"))
        .ok_or_else(missing)?;
    let (file_at, size) = section.file_range().ok_or_else(missing)?;
    let within = symbol.address() - section.address() + MAP_FLAGS_AT as u64;
    if within + 4 > size {
        return Err(missing());
    }
    usize::try_from(file_at + within).map_err(|_| missing())
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn born_is_allocated_as_slabs_come_unless_preallocated() {
        let object = crate::EBPF_OBJECT;
        assert_eq!(map_flags(object, "BORN").unwrap(), 1, "BPF_F_NO_PREALLOC");
        let patched = with_map_flags(object, "BORN", 0).unwrap();
        assert_eq!(patched.len(), object.len());
        assert_eq!(map_flags(&patched, "BORN").unwrap(), 0);
        // Nothing else moved: every other map keeps its flags.
        assert_eq!(map_flags(&patched, "LIVE").unwrap(), 0);
        let differing = object
            .iter()
            .zip(patched.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1, "one byte of the flags word changes");
        assert!(matches!(
            with_map_flags(object, "NOPE", 0),
            Err(Error::NoMap(_))
        ));
        assert!(matches!(
            with_map_flags(object, "BORN", 1).unwrap(),
            Cow::Borrowed(_)
        ));
    }
}

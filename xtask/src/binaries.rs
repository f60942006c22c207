//! What a release binary needs from the machine it runs on, read from its headers: for a
//! Mach-O its CPU, minimum macOS, libraries and which library each undefined symbol is bound
//! to; for an ELF whether it is static, which glibc symbol versions it needs and whether it is
//! stripped. The release tests check the plugin's archives with these, since no Mac and no
//! other distribution is here to run them on.
use anyhow::{Context as _, bail};
use object::{
    Endianness, Object as _, ObjectSection as _,
    macho::{self, MachHeader64},
    read::macho::{MachHeader as _, Nlist as _},
};

/// A Mach-O executable's dependencies.
#[derive(Debug)]
pub struct MachO {
    /// `CPU_TYPE_ARM64` or `CPU_TYPE_X86_64`.
    pub cpu: u32,
    /// The minimum macOS (`LC_BUILD_VERSION`'s `minos`, or `LC_VERSION_MIN_MACOSX`), as
    /// (major, minor).
    pub min_macos: Option<(u32, u32)>,
    /// Install names of the libraries it loads, in load order.
    pub dylibs: Vec<String>,
    /// Each undefined symbol and the install name it is bound to (two-level namespace), or
    /// `None` where it is looked up dynamically or in the executable itself.
    pub imports: Vec<(String, Option<String>)>,
}

pub fn macho(data: &[u8]) -> anyhow::Result<MachO> {
    let header = MachHeader64::<Endianness>::parse(data, 0).context("not a 64-bit Mach-O")?;
    let endian = header.endian()?;
    let mut commands = header.load_commands(endian, data, 0)?;
    let mut out = MachO {
        cpu: header.cputype(endian),
        min_macos: None,
        dylibs: Vec::new(),
        imports: Vec::new(),
    };
    let version = |v: u32| (v >> 16, (v >> 8) & 0xff);
    let mut undefined = Vec::new();
    while let Some(command) = commands.next()? {
        match command.cmd() {
            macho::LC_LOAD_DYLIB
            | macho::LC_LOAD_WEAK_DYLIB
            | macho::LC_REEXPORT_DYLIB
            | macho::LC_LAZY_LOAD_DYLIB
            | macho::LC_LOAD_UPWARD_DYLIB => {
                if let Some(dylib) = command.dylib()? {
                    let name = command.string(endian, dylib.dylib.name)?;
                    out.dylibs.push(String::from_utf8_lossy(name).into_owned());
                }
            }
            macho::LC_BUILD_VERSION => {
                if let Some(build) = command.build_version()?
                    && build.platform.get(endian) == macho::PLATFORM_MACOS
                {
                    out.min_macos = Some(version(build.minos.get(endian)));
                }
            }
            macho::LC_VERSION_MIN_MACOSX => {
                let min: &macho::VersionMinCommand<Endianness> = command.data()?;
                out.min_macos = Some(version(min.version.get(endian)));
            }
            macho::LC_SYMTAB => {
                if let Some(symtab) = command.symtab()? {
                    let symbols = symtab.symbols::<MachHeader64<Endianness>, _>(endian, data)?;
                    for nlist in symbols.iter() {
                        let kind = nlist.n_type() & macho::N_TYPE;
                        if kind != macho::N_UNDF
                            || nlist.n_type() & macho::N_EXT == 0
                            || nlist.n_type() & macho::N_STAB != 0
                        {
                            continue;
                        }
                        let name = nlist.name(endian, symbols.strings())?;
                        let ordinal = (nlist.n_desc(endian) >> 8) as u8;
                        undefined.push((String::from_utf8_lossy(name).into_owned(), ordinal));
                    }
                }
            }
            _ => {}
        }
    }
    for (name, ordinal) in undefined {
        // 1-based into the load order; 0 (self), 0xfe (executable), 0xff (flat lookup).
        let library = match ordinal {
            1..=0xfd => out.dylibs.get(usize::from(ordinal) - 1).cloned(),
            _ => None,
        };
        out.imports.push((name, library));
    }
    Ok(out)
}

/// The libraries a macOS binary may load: libSystem, libiconv and its libcharset (Rust's
/// standard library links `-liconv`; both are in every macOS's /usr/lib since 10.0), and
/// frameworks every macOS has, each at its install name under /System/Library.
pub fn macos_library_allowed(install_name: &str) -> bool {
    install_name == "/usr/lib/libSystem.B.dylib"
        || install_name == "/usr/lib/libiconv.2.dylib"
        || install_name == "/usr/lib/libcharset.1.dylib"
        || install_name
            == "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation"
}

/// An ELF executable's dependencies.
#[derive(Debug)]
pub struct Elf {
    /// No program interpreter and no needed libraries.
    pub is_static: bool,
    /// The symbol versions it needs (`.gnu.version_r`: `GLIBC_2.34`, ...).
    pub needed_versions: Vec<String>,
    /// No symbol table left.
    pub stripped: bool,
}

pub fn elf(data: &[u8]) -> anyhow::Result<Elf> {
    let file = object::File::parse(data)?;
    if !matches!(file.format(), object::BinaryFormat::Elf) {
        bail!("not an ELF");
    }
    let interp = file.section_by_name(".interp").is_some();
    let needs_libraries = !file.imports()?.is_empty()
        || file
            .section_by_name(".dynamic")
            .is_some_and(|dynamic| dynamic_needed(dynamic.data().unwrap_or_default()));
    let mut needed_versions = Vec::new();
    if let Some(section) = file.section_by_name(".gnu.version_r") {
        // Each Vernaux names a version in .dynstr; read the names from there.
        let strings = file
            .section_by_name(".dynstr")
            .and_then(|s| s.data().ok())
            .unwrap_or_default();
        let raw = section.data()?;
        let mut offset = 0usize;
        // Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
        while offset + 16 <= raw.len() {
            let u16_at = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]);
            let u32_at =
                |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
            let count = u16_at(offset + 2);
            let mut aux = offset + u32_at(offset + 8) as usize;
            for _ in 0..count {
                // Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
                if aux + 16 > raw.len() {
                    break;
                }
                let name = u32_at(aux + 8) as usize;
                let text = strings
                    .get(name..)
                    .and_then(|s| s.split(|&b| b == 0).next())
                    .unwrap_or_default();
                needed_versions.push(String::from_utf8_lossy(text).into_owned());
                aux += u32_at(aux + 12) as usize;
            }
            let next = u32_at(offset + 12) as usize;
            if next == 0 {
                break;
            }
            offset += next;
        }
    }
    Ok(Elf {
        is_static: !interp && !needs_libraries,
        needed_versions,
        stripped: file.section_by_name(".symtab").is_none(),
    })
}

/// Whether a 64-bit little-endian `.dynamic` has a `DT_NEEDED` entry.
fn dynamic_needed(dynamic: &[u8]) -> bool {
    dynamic.chunks_exact(16).any(|entry| {
        let tag = i64::from_le_bytes(entry[..8].try_into().unwrap_or_default());
        tag == object::elf::DT_NEEDED
    })
}

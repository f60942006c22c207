//! Builds the kernel programs (tracer-ebpf) with the nightly toolchain and bpf-linker and puts
//! the object in OUT_DIR, so one `cargo build` builds everything.
fn main() -> anyhow::Result<()> {
    // cargo fuzz builds with `--cfg fuzzing`: the parsers under test never load a program, so
    // an empty object stands in and the fuzz build skips the eBPF build.
    println!("cargo:rerun-if-env-changed=CARGO_CFG_FUZZING");
    if std::env::var_os("CARGO_CFG_FUZZING").is_some() {
        let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
        std::fs::write(out.join("tracer-ebpf"), [])?;
        return Ok(());
    }
    if std::env::var_os("AYA_BUILD_SKIP").is_none() && which_bpf_linker().is_none() {
        anyhow::bail!(
            "bpf-linker is not on PATH: run `cargo xtask setup` (installs nightly rust-src and bpf-linker)"
        );
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tracer-ebpf");
    let root = root
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("workspace path is not UTF-8"))?;
    let package = aya_build::Package {
        name: "tracer-ebpf",
        root_dir: root,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::default())
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|candidate| candidate.is_file())
}

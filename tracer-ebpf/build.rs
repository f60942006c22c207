//! Rebuild the kernel programs when the bpf-linker binary changes (cargo cannot track it).
fn main() {
    match which::which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(_) => {
            println!("cargo:warning=bpf-linker not on PATH: run `cargo xtask setup` first");
        }
    }
}

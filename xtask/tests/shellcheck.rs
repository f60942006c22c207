//! Every VM script, checked by shellcheck as the busybox `sh` that runs it (POSIX sh), after
//! the prelude's variables are set as the Rust side sets them.
use std::process::Command;

#[test]
fn vm_scripts_pass_shellcheck() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, body) in xtask::scripts::ALL {
        // As the VM runs it: variables, prelude, body (the prelude alone as it is).
        let text = if *name == "prelude.sh" {
            (*body).to_owned()
        } else {
            xtask::scripts::script(body, &[])
        };
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write script");
        let out = Command::new("shellcheck")
            .args(["--shell=sh", "--severity=style", "--exclude=SC2154"])
            .arg(&path)
            .output()
            .expect("shellcheck runs (cargo xtask setup installs it)");
        assert!(
            out.status.success(),
            "{name}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

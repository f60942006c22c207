//! The VM test scripts: shell files under `xtask/scripts/`, each run after a shared prelude
//! (helpers: `run_in`, `wait_line`, `wait_attached`, `stop_tracer`) and the variables the
//! Rust side sets. Kept as `.sh` files so shellcheck reads them (`xtask/tests/shellcheck.rs`).

const PRELUDE: &str = include_str!("../scripts/prelude.sh");

/// Every script under `xtask/scripts/`, by file name, for shellcheck.
pub const ALL: &[(&str, &str)] = &[
    ("prelude.sh", PRELUDE),
    ("stress.sh", STRESS),
    ("live.sh", LIVE),
    ("load.sh", LOAD),
    ("soak.sh", SOAK),
];

/// Preemption under load (see `tracer/tests/vm_stress.rs`).
pub const STRESS: &str = include_str!("../scripts/stress.sh");

/// Live dentries per owner (see `tracer/tests/vm_live.rs`).
pub const LIVE: &str = include_str!("../scripts/live.sh");

/// What loading the programs costs (`cargo xtask bench-load`).
pub const LOAD: &str = include_str!("../scripts/load.sh");

/// The tracer over a long run (`cargo xtask soak`).
pub const SOAK: &str = include_str!("../scripts/soak.sh");

/// `body` as a VM script: `vars` as shell assignments, the prelude, then `body`.
pub fn script(body: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::from("#!/bin/sh\n");
    for (name, value) in vars {
        out.push_str(&format!("{name}='{}'\n", value.replace('\'', r"'\''")));
    }
    out.push_str(&format!("TRACER='{}'\n", crate::vm::TRACER));
    out.push_str(&PRELUDE.replace("@ATTACHED@", dentry_common::ATTACHED_MARKER));
    out.push_str(body);
    out
}

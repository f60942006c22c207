//! Every VM script, checked by shellcheck as the busybox `sh` that runs it (POSIX sh): the
//! prelude alone, and each workload's script as the VM gets it (variables, prelude, body).
use std::process::Command;

use xtask::{
    bench,
    dentry_workload::DentryWorkload,
    fixtures::{self, PodRuns},
    node_workload::NodeWorkload,
    pending_workload::PendingWorkload,
    scenario::TwoCgroups,
    scripts,
};

fn scripts() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = scripts::ALL
        .iter()
        .map(|(name, body)| {
            let text = if *name == "prelude.sh" {
                (*body).to_owned()
            } else {
                scripts::script(body, &[])
            };
            ((*name).to_owned(), text)
        })
        .collect();
    let dentry = DentryWorkload {
        lookups: 1,
        creates: 1,
        child_lookups: 1,
        flood: 1,
        attach_mode: "fentry".into(),
    };
    let node = NodeWorkload {
        lookups_a: 1,
        skipped_a: 1,
        lookups_b: 1,
    };
    let two = TwoCgroups {
        traced_lookups: 1,
        other_lookups: 1,
    };
    let runs = PodRuns {
        lookups_a: 1,
        lookups_b: 1,
        kept: true,
    };
    all.extend([
        ("dentry_workload".into(), dentry.script()),
        ("node_workload".into(), node.script()),
        (
            "pending_workload".into(),
            PendingWorkload { lookups: 1 }.script(),
        ),
        ("scenario".into(), two.script()),
        ("fixtures".into(), fixtures::script(runs)),
        (
            "bench".into(),
            bench::script(&bench::variants("kprobe", &[]), 1, 1),
        ),
    ]);
    all
}

#[test]
fn vm_scripts_pass_shellcheck() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failed = Vec::new();
    for (name, text) in scripts() {
        let path = dir.path().join(&name);
        std::fs::write(&path, text).expect("write script");
        let out = Command::new("shellcheck")
            // SC2154: the Rust side sets variables; SC2317: a script need not call every
            // helper of the prelude, and `run_in` calls them through "$@".
            .args(["--shell=sh", "--severity=style", "--exclude=SC2154,SC2317"])
            .arg(&path)
            .output()
            .expect("shellcheck runs (cargo xtask setup installs it)");
        if !out.status.success() {
            failed.push(format!("{name}:\n{}", String::from_utf8_lossy(&out.stdout)));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

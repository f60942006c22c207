//! `kubectl dentry fetch traces` against the in-process API server: which pods, which proxy
//! calls, where the files land, and that nothing is overwritten without --overwrite.
mod common;

use common::{FakeApi, TRACER_LABELS, on_node, pod, recorded_traces};

fn cluster() -> FakeApi {
    let api = FakeApi::start(vec![
        on_node(pod("prod", "mysql-0", &[("app", "mysql")]), "node-a"),
        on_node(
            pod("prod", "dentry-trace-mysql-0-abcde", TRACER_LABELS),
            "node-a",
        ),
        on_node(
            pod(
                "dentry-monitor",
                "dentry-tracer-xyz12",
                &[("app.kubernetes.io/name", "dentry-tracer")],
            ),
            "node-b",
        ),
    ]);
    let traces = recorded_traces();
    let mut state = api.state();
    let files = &mut state.traces;
    files.insert(
        "dentry-trace-mysql-0-abcde".into(),
        vec![("traces.tsv".into(), traces.clone())],
    );
    files.insert(
        "dentry-tracer-xyz12".into(),
        vec![
            (
                "traces.tsv".into(),
                b"timestamp\tpod\tcontainer\tcgroup_id\toperation\tpath\tfstype\n".to_vec(),
            ),
            ("traces.tsv.1".into(), traces),
        ],
    );
    drop(state);
    api
}

#[test]
fn fetches_every_tracers_files_into_a_directory_per_node() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let out = api.plugin(&["fetch", "traces", "-d", target.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr} {:?}", api.calls());
    assert_eq!(
        std::fs::read(target.join("node-a/traces.tsv")).unwrap(),
        recorded_traces()
    );
    assert_eq!(
        std::fs::read(target.join("node-b/traces.tsv.1")).unwrap(),
        recorded_traces()
    );
    assert!(target.join("node-b/traces.tsv").is_file());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout.contains(&format!("node-a/traces.tsv\t{}", recorded_traces().len())),
        "{stdout}"
    );
    assert!(
        stderr.contains("fetched 3 file(s)") && stderr.contains("from 2 of 2 tracer pod(s)"),
        "{stderr}"
    );
    let calls = api.calls();
    assert_eq!(
        calls[0],
        "GET /api/v1/pods?app.kubernetes.io/name=dentry-tracer"
    );
    assert!(calls.contains(&"GET /api/v1/namespaces/prod/pods/dentry-trace-mysql-0-abcde:9090/proxy/traces/traces.tsv".to_owned()));
    // No half-written leftovers.
    assert!(
        std::fs::read_dir(target.join("node-a"))
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".part"))
    );
}

#[test]
fn never_overwrites_without_the_flag_and_filters_by_node_and_pod() {
    let api = cluster();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    std::fs::create_dir_all(target.join("node-a")).unwrap();
    std::fs::write(target.join("node-a/traces.tsv"), "mine\n").unwrap();

    let out = api.plugin(&[
        "fetch",
        "traces",
        "--node",
        "node-a",
        "-d",
        target.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(target.join("node-a/traces.tsv")).unwrap(),
        "mine\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite replaces it"));
    assert!(
        !target.join("node-b").exists(),
        "--node node-a fetched from node-b"
    );

    let out = api.plugin(&[
        "fetch",
        "traces",
        "pod/dentry-trace-mysql-0-abcde",
        "--overwrite",
        "-d",
        target.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(target.join("node-a/traces.tsv")).unwrap(),
        recorded_traces()
    );
}

#[test]
fn no_tracer_pods_is_one_line_with_a_hint() {
    let api = FakeApi::start(vec![pod("prod", "mysql-0", &[("app", "mysql")])]);
    let out = api.plugin(&["fetch", "traces", "-n", "prod"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
    assert!(
        stderr.contains("no tracer pods found in namespace prod") && stderr.contains("--keep"),
        "{stderr}"
    );
}

/// A tracer pod that does not answer (not running, its tracer gone) is reported; the others
/// are fetched all the same, and the exit code says some failed.
#[test]
fn a_pod_that_cannot_be_read_does_not_stop_the_others() {
    let api = cluster();
    api.state().traces.remove("dentry-trace-mysql-0-abcde");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let out = api.plugin(&["fetch", "traces", "-d", target.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(
        stderr.contains(
            "cannot fetch from tracer pod prod/dentry-trace-mysql-0-abcde on node node-a"
        ),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("1 of 2 tracer pod(s) could not be fetched"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(target.join("node-b/traces.tsv.1")).unwrap(),
        recorded_traces()
    );
    assert!(!target.join("node-a/traces.tsv").exists());
}

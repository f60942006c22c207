//! `kubectl dentry trace` against the in-process API server, whose tracer pods replay a log
//! recorded from the real tracer in the VM: the pod it asks for, what reaches stdout and
//! stderr, cleanup on every way out, and one clear line for each failure.
mod common;

use std::io::Read as _;

use common::{FakeApi, Tracer, fixture, node, on_node, pod, recorded_log, running};

fn cluster() -> FakeApi {
    let api = FakeApi::start(vec![
        running(on_node(
            pod("prod", "mysql-0", &[("app", "mysql")]),
            "node-a",
        )),
        pod("prod", "pending-0", &[]),
        running(on_node(pod("prod", "sick-0", &[]), "node-b")),
    ]);
    api.state().nodes = vec![node("node-a", true), node("node-b", false)];
    api
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn streams_the_tracers_lines_to_stdout_and_its_summary_to_stderr_then_deletes_the_pod() {
    let api = cluster();
    let out = api.plugin(&[
        "trace",
        "pod/mysql-0",
        "--patterns=.ibd,#sql",
        "--duration=30s",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}\n{:?}", api.calls());

    // Exactly the recorded trace lines, header first, nothing else.
    let expected: Vec<&str> = recorded_log()
        .lines()
        .filter(|l| l.contains('\t'))
        .map(|l| l.to_owned())
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    let got: Vec<&str> = stdout.lines().collect();
    assert_eq!(got, expected);
    assert!(got[0].starts_with("timestamp\tpod\tcontainer"));
    assert!(got.len() > 50, "{}", got.len());

    // The summary and the attach line went to stderr.
    assert!(
        stderr.contains("summary attach=fentry events=95"),
        "{stderr}"
    );
    assert!(
        stderr.contains("top directories of negative lookups:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tracing pod prod/mysql-0 on node node-a (fentry)"),
        "{stderr}"
    );

    // The pod it asked for, and that it is gone.
    let created = api.state().created[0].clone();
    assert_eq!(created["spec"]["nodeName"], "node-a");
    assert_eq!(created["metadata"]["namespace"], "prod");
    let args: Vec<String> =
        serde_json::from_value(created["spec"]["containers"][0]["args"].clone()).unwrap();
    assert!(
        args.contains(&"--target-pod-uid=uid-mysql-0".to_owned()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--trace-patterns=.ibd,#sql".to_owned()),
        "{args:?}"
    );
    assert!(args.contains(&"--duration=30s".to_owned()), "{args:?}");
    assert!(
        api.state()
            .pods
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some("dentry-trace-mysql-0-00001"))
    );
    let calls = api.calls();
    assert!(
        calls
            .contains(&"DELETE /api/v1/namespaces/prod/pods/dentry-trace-mysql-0-00001".to_owned()),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c.starts_with("WATCH ")), "{calls:?}");
    assert!(
        !calls.iter().any(|c| c.starts_with("UNMATCHED")),
        "{calls:?}"
    );
}

#[test]
fn json_output_and_container_scoping() {
    let api = cluster();
    let out = api.plugin(&[
        "trace",
        "mysql-0",
        "-c",
        "c",
        "-o",
        "json",
        "--max-events",
        "10",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["pod"], "mysql-0");
    assert_eq!(first["operation"], "alloc");
    assert!(
        first["path"]
            .as_str()
            .unwrap()
            .starts_with("/work-a/#sql-ib")
    );
    let created = api.state().created[0].clone();
    let args = created["spec"]["containers"][0]["args"].to_string();
    assert!(
        args.contains("--target-container-id=containerd://cid-mysql-0"),
        "{args}"
    );
    assert!(args.contains("--max-events=10"), "{args}");

    let out = api.plugin(&["trace", "mysql-0", "-c", "nope"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(
        text(&out.stderr).contains("has no container nope (its containers: c"),
        "{}",
        text(&out.stderr)
    );
}

/// SIGINT (Ctrl-C), SIGTERM (a CI job's timeout, `timeout`) and SIGHUP (the terminal or the
/// SSH session closed) each delete the tracer pod and still show the summary it prints.
/// `trace pod/mysql-0` with a tracer that runs until its pod is deleted, once its trace lines
/// flow (the header has arrived).
fn tracing_mysql(api: &FakeApi) -> std::process::Child {
    api.state().tracer = Tracer::Runs {
        log: recorded_log(),
        hold: true,
    };
    let mut child = api.spawn_plugin(&["trace", "pod/mysql-0"]);
    let stdout = child.stdout.as_mut().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"timestamp\t"));
    child
}

#[test]
fn a_stop_signal_deletes_the_pod_and_still_prints_the_summary() {
    for signal in ["INT", "TERM", "HUP"] {
        let api = cluster();
        let child = tracing_mysql(&api);
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert!(
            out.status.success(),
            "SIG{signal}: {:?} {stderr}",
            out.status
        );
        assert!(
            stderr.contains("summary attach=fentry"),
            "SIG{signal}: the summary printed at SIGTERM is shown: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "stopped by SIG{signal}; tracer pod dentry-trace-mysql-0-00001 deleted"
            )),
            "{stderr}"
        );
        assert!(
            api.calls()
                .iter()
                .any(|c| c == "DELETE /api/v1/namespaces/prod/pods/dentry-trace-mysql-0-00001"),
            "SIG{signal}"
        );
    }
}

/// A stop signal while the tracer pod is still starting deletes it too.
#[test]
fn a_stop_signal_before_the_tracer_runs_deletes_the_pod() {
    for signal in ["TERM", "HUP"] {
        let api = cluster();
        api.state().tracer = Tracer::Pending;
        let child = api.spawn_plugin(&["trace", "pod/mysql-0"]);
        // The pod is created: the plugin is waiting for it to start.
        let created = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(25));
            api.calls()
                .iter()
                .any(|c| c.starts_with("POST /api/v1/namespaces/prod/pods"))
        });
        assert!(created, "{:?}", api.calls());
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "SIG{signal}: {}", text(&out.stderr));
        assert!(
            api.calls()
                .iter()
                .any(|c| c == "DELETE /api/v1/namespaces/prod/pods/dentry-trace-mysql-0-00001"),
            "SIG{signal}: {:?}",
            api.calls()
        );
    }
}

#[test]
fn keep_leaves_the_pod_serving_its_files() {
    let api = cluster();
    api.state().tracer = Tracer::Runs {
        log: fixture("trace-pod-kept.log"),
        hold: false,
    };
    let out = api.plugin(&["trace", "pod/mysql-0", "--keep", "--duration=10s"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("kept tracer pod prod/dentry-trace-mysql-0-00001"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kubectl dentry fetch traces pod/dentry-trace-mysql-0-00001 -n prod"),
        "{stderr}"
    );
    assert!(
        !api.calls().iter().any(|c| c.starts_with("DELETE")),
        "{:?}",
        api.calls()
    );
    let created = api.state().created[0].clone();
    assert!(
        created["spec"]["containers"][0]["args"]
            .to_string()
            .contains("--linger=3600s")
    );
    assert!(created["spec"]["activeDeadlineSeconds"].as_i64().unwrap() >= 3600 + 10);
    assert!(text(&out.stdout).lines().count() > 10);

    // Then fetch its files, as the closing line says.
    let kept = "dentry-trace-mysql-0-00001";
    api.state().traces.insert(
        kept.into(),
        vec![("traces.tsv".into(), common::recorded_traces())],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = api.plugin(&[
        "fetch",
        "traces",
        &format!("pod/{kept}"),
        "-n",
        "prod",
        "-d",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("node-a/traces.tsv")).unwrap(),
        common::recorded_traces()
    );
}

#[test]
fn the_trace_ends_when_its_pod_is_deleted() {
    let api = cluster();
    let child = tracing_mysql(&api);
    api.change(|s| {
        s.pods
            .retain(|p| p.metadata.name.as_deref() != Some("mysql-0"))
    });
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(stderr.contains("summary attach=fentry"), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some(
            "pod prod/mysql-0 was deleted: the trace is over; tracer pod \
             dentry-trace-mysql-0-00001 deleted"
        ),
        "{stderr}"
    );
    assert!(
        api.calls()
            .iter()
            .any(|c| c == "DELETE /api/v1/namespaces/prod/pods/dentry-trace-mysql-0-00001")
    );
}

#[test]
fn the_trace_ends_when_its_pod_completes() {
    let api = cluster();
    let child = tracing_mysql(&api);
    api.change(|s| {
        for p in s.pods.iter_mut() {
            if p.metadata.name.as_deref() == Some("mysql-0") {
                p.status.get_or_insert_with(Default::default).phase = Some("Succeeded".into());
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("pod prod/mysql-0 completed: the trace is over")),
        "{stderr}"
    );
}

/// Waits (up to 20 s) until the plugin has made `call`.
fn until_called(api: &FakeApi, call: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !api.calls().iter().any(|c| c == call) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {call}: {:?}",
            api.calls()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn wait_traces_a_pod_created_and_scheduled_after_the_command_started() {
    let api = cluster();
    let child = api.spawn_plugin(&["trace", "pod/late-0", "--wait", "--duration=30s"]);
    // The plugin watches for a pod that does not exist yet.
    until_called(&api, "WATCH /api/v1/namespaces/prod/pods/late-0");
    api.change(|s| s.pods.push(pod("prod", "late-0", &[])));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        api.state().created.is_empty(),
        "a tracer pod before the pod has a node"
    );
    api.change(|s| {
        if let Some(p) = s
            .pods
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some("late-0"))
        {
            *p = on_node(p.clone(), "node-a");
        }
    });
    let out = child.wait_with_output().expect("the plugin ends");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{:?}", api.calls());
    let created = api.state().created[0].clone();
    assert_eq!(created["spec"]["nodeName"], "node-a");
    let args: Vec<String> =
        serde_json::from_value(created["spec"]["containers"][0]["args"].clone()).unwrap();
    for want in ["--target-pod-uid=uid-late-0", "--target-pending"] {
        assert!(args.contains(&want.to_owned()), "{want}: {args:?}");
    }
    assert!(
        stderr.contains("tracing pod prod/late-0 on node node-a"),
        "{stderr}"
    );
    assert_eq!(
        text(&out.stdout).lines().count(),
        recorded_log().lines().filter(|l| l.contains('\t')).count()
    );
}

#[test]
fn wait_gives_up_with_the_schedulers_reason() {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    let api = cluster();
    let mut stuck = pod("prod", "big-0", &[]);
    stuck.status = Some(PodStatus {
        phase: Some("Pending".into()),
        conditions: Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some("0/3 nodes are available: 3 Insufficient cpu.".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    api.change(|s| s.pods.push(stuck));
    fails(
        &api,
        &["trace", "pod/big-0", "--wait", "--wait-timeout=2s"],
        7,
        &[
            "pod prod/big-0 was not scheduled within 2s (--wait-timeout)",
            "the scheduler says: 0/3 nodes are available: 3 Insufficient cpu.",
        ],
    );
    fails(
        &api,
        &["trace", "pod/never-0", "--wait", "--wait-timeout=1s"],
        7,
        &[
            "pod prod/never-0 was not scheduled within 1s",
            "it was never created",
        ],
    );
    fails(
        &api,
        &["trace", "pod/big-0", "--wait", "-c", "app"],
        2,
        &["cannot be used with"],
    );
    fails(
        &api,
        &["trace", "pod/mysql-0", "--wait-timeout=1s"],
        2,
        &["--wait"],
    );
    assert!(api.state().created.is_empty());
}

/// Every tracer pod that was created is gone again.
fn assert_no_tracer_pod_left(api: &FakeApi) {
    assert!(api.state().pods.iter().all(|p| {
        !p.metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .starts_with("dentry-")
    }));
}

fn fails(api: &FakeApi, args: &[&str], code: i32, needles: &[&str]) {
    let out = api.plugin(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    for n in needles {
        assert!(last.contains(n), "{args:?}: {n:?} not in {last:?}");
    }
    assert!(
        out.stdout.is_empty(),
        "{args:?}: stdout {:?}",
        text(&out.stdout)
    );
}

#[test]
fn every_failure_is_one_line_with_its_exit_code() {
    let api = cluster();
    fails(
        &api,
        &["trace", "pod/nope"],
        7,
        &["pod nope not found in namespace prod", "-n NAMESPACE"],
    );
    fails(
        &api,
        &["trace", "pod/nope", "-n", "web"],
        7,
        &["in namespace web"],
    );
    fails(
        &api,
        &["trace", "pod/pending-0"],
        7,
        &["not scheduled to a node yet"],
    );
    fails(
        &api,
        &["trace", "pod/sick-0"],
        7,
        &["node node-b is NotReady (KubeletNotReady: container runtime is down)"],
    );
    fails(
        &api,
        &["trace", "cronjob/mysql"],
        2,
        &["cannot trace a cronjob"],
    );
    fails(
        &api,
        &["trace", "deploy/mysql"],
        7,
        &["deployment/mysql not found in namespace prod"],
    );
    fails(
        &api,
        &["trace", "pod/mysql-0", "--duration", "soon"],
        2,
        &["is not a duration"],
    );
    fails(
        &api,
        &["trace", "pod/mysql-0", "--patterns", "a,\tb"],
        2,
        &["control character"],
    );
    fails(
        &api,
        &["trace", "pod/mysql-0", "--patterns", ","],
        2,
        &["holds no pattern"],
    );
    assert!(
        api.state().created.is_empty(),
        "no pod is created for bad input"
    );

    // What a real API server says of the capability pod in a baseline namespace.
    api.state().create_error = Some((403, "Forbidden".into(),
        "pods \"dentry-trace-mysql-0-x\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostPID=true), non-default capabilities (container \"tracer\" must not include \"BPF\", \"PERFMON\", \"SYSLOG\" in securityContext.capabilities.add), hostPath volumes (volumes \"cgroup\", \"var-log\", \"run\")".into(),
    ));
    fails(
        &api,
        &["trace", "pod/mysql-0"],
        8,
        &[
            "admission rejected the tracer pod in namespace prod",
            "PodSecurity privileged level",
            "--tracer-namespace",
        ],
    );
    api.state().create_error = Some((
        409,
        "AlreadyExists".into(),
        "pods \"dentry-trace-mysql-0-x\" already exists".into(),
    ));
    fails(
        &api,
        &["trace", "pod/mysql-0"],
        1,
        &[
            "refused to create pods in namespace prod",
            "already exists (409)",
        ],
    );
    api.state().create_error = Some((
        422,
        "Invalid".into(),
        "Pod \"dentry-trace-mysql-0-x\" is invalid: spec.containers[0].image: Required value"
            .into(),
    ));
    fails(
        &api,
        &["trace", "pod/mysql-0", "--image", ""],
        1,
        &["is invalid: spec.containers[0].image", "(422)"],
    );
    api.state().create_error = None;

    api.state().tracer = Tracer::ImagePull;
    fails(
        &api,
        &["trace", "pod/mysql-0", "--image", "example.com/nope:1"],
        8,
        &[
            "the tracer image example.com/nope:1 cannot be pulled on node node-a: ErrImagePull",
            "--image",
        ],
    );

    api.state().tracer = Tracer::Fails {
        log: fixture("tracer-failed.log"),
    };
    fails(
        &api,
        &["trace", "pod/mysql-0"],
        8,
        &["failed: tracer: kprobes unavailable on this kernel"],
    );

    // An image without /tracer: the runtime cannot start it and the tracer prints nothing.
    api.state().tracer = Tracer::StartError {
        reason: "StartError".into(),
        message: "failed to create containerd task: failed to create shim task: OCI runtime \
                  create failed: runc create failed: unable to start container process: exec: \
                  \"/tracer\": stat /tracer: no such file or directory: unknown"
            .into(),
    };
    fails(
        &api,
        &["trace", "pod/mysql-0"],
        8,
        &[
            "failed: StartError: failed to create containerd task",
            "exec: \"/tracer\"",
        ],
    );

    api.state().tracer = Tracer::Pending;
    fails(
        &api,
        &["trace", "pod/mysql-0", "--timeout", "1s"],
        9,
        &["timed out after 1s", "--timeout"],
    );

    assert_no_tracer_pod_left(&api);
}

#[test]
fn forbidden_says_which_verb_and_resource() {
    let api = cluster();
    api.state().create_error = Some((403, "Forbidden".into(), "pods is forbidden: User \"alice\" cannot create resource \"pods\" in API group \"\" in the namespace \"prod\"".into()));
    fails(
        &api,
        &["trace", "pod/mysql-0"],
        5,
        &[
            "forbidden: cannot create pods in namespace prod",
            "deploy/02-rbac-plugin-user.yaml",
        ],
    );
}

/// An image named for one architecture on a node of another: one line, nothing created. The
/// multi-arch tag, or an image for the node's architecture, goes ahead.
#[test]
fn an_image_for_another_architecture_is_refused_before_anything_is_created() {
    let api = cluster();
    for n in &mut api.state().nodes {
        n.metadata.labels = Some([("kubernetes.io/arch".to_owned(), "amd64".to_owned())].into());
    }
    let arm = "ghcr.io/kubectl-dentry/tracer:0.1.0-arm64";
    let out = api.plugin(&["trace", "pod/mysql-0", "--image", arm]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!(
            "the tracer image {arm} is built for arm64, but node node-a is amd64"
        )),
        "{last}"
    );
    assert!(api.state().created.is_empty());
    for image in [
        "ghcr.io/kubectl-dentry/tracer:0.1.0-amd64",
        "ghcr.io/kubectl-dentry/tracer:0.1.0",
    ] {
        let out = api.plugin(&["trace", "pod/mysql-0", "--image", image, "--duration=30s"]);
        assert!(out.status.success(), "{image}: {}", text(&out.stderr));
    }
    assert_eq!(api.state().created.len(), 2);
}

/// Event sequences recorded from real nodes while a tracer pod starts: a fault that cannot
/// clear ends the wait at once (exit 8, the event's reason and message, the pod deleted);
/// faults that can clear are each shown once on stderr while the wait goes on.
#[test]
fn pod_faults_are_shown_once_and_the_ones_that_cannot_clear_fail_at_once() {
    let api = cluster();
    let mount = "MountVolume.SetUp failed for volume \"var-log\" : hostPath type check failed: \
                 /var/log is not a directory";
    api.state().tracer = Tracer::Warns {
        warnings: vec![("FailedMount".into(), mount.into())],
        then: None,
    };
    // --timeout is far away: only the fault can end this in time for the test to pass quickly,
    // and the exit code says which ended it.
    fails(
        &api,
        &["trace", "pod/mysql-0", "--timeout", "10m"],
        8,
        &[
            "cannot start on node node-a: FailedMount:",
            "hostPath type check failed",
            "does not clear by itself",
        ],
    );
    assert!(
        api.calls().iter().any(|c| c == "WATCH events"),
        "{:?}",
        api.calls()
    );

    // A scheduler waiting for room, a sandbox the CNI is not ready for (posted twice, as a
    // kubelet retries): shown once each, then the tracer starts and the trace runs.
    let sandbox = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to \
                   setup network for sandbox: plugin type=\"calico\" failed (add): connection is \
                   unauthorized";
    let scheduling = "0/3 nodes are available: 3 Insufficient memory.";
    api.state().tracer = Tracer::Warns {
        warnings: vec![
            ("FailedScheduling".into(), scheduling.into()),
            ("FailedCreatePodSandBox".into(), sandbox.into()),
            ("FailedCreatePodSandBox".into(), sandbox.into()),
        ],
        then: Some(Box::new(Tracer::default())),
    };
    let out = api.plugin(&["trace", "pod/mysql-0", "--duration", "5s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr
            .matches("FailedCreatePodSandBox: Failed to create pod sandbox")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("FailedScheduling: 0/3 nodes").count(),
        1,
        "{stderr}"
    );
    assert!(!out.stdout.is_empty(), "the trace ran");

    // A fault that can clear but does not: the wait ends at --timeout, as before.
    api.state().tracer = Tracer::Warns {
        warnings: vec![("FailedCreatePodSandBox".into(), sandbox.into())],
        then: None,
    };
    fails(
        &api,
        &["trace", "pod/mysql-0", "--timeout", "2s"],
        9,
        &["timed out after 2s"],
    );
    assert_no_tracer_pod_left(&api);
}

/// The tracer pod gets the capabilities its node's kernel needs, never `privileged`, and the
/// seccomp profile its runtime allows BPF under (as the node reports both); `--privileged`
/// overrides. The progress line says which was used.
#[test]
fn the_tracer_pod_has_the_capabilities_its_node_needs_and_is_privileged_only_when_asked() {
    use k8s_openapi::api::core::v1::NodeSystemInfo;
    let api = cluster();
    let set_node = |kernel: &str, runtime: &str| {
        for n in &mut api.state().nodes {
            if let Some(status) = n.status.as_mut() {
                status.node_info = Some(NodeSystemInfo {
                    kernel_version: kernel.into(),
                    container_runtime_version: runtime.into(),
                    ..Default::default()
                });
            }
        }
    };
    let run = |extra: &[&str]| {
        let mut args = vec!["trace", "pod/mysql-0", "--duration=30s"];
        args.extend_from_slice(extra);
        let out = api.plugin(&args);
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let pod = api.state().created.last().cloned().expect("a tracer pod");
        (
            pod["spec"]["containers"][0]["securityContext"].clone(),
            stderr,
        )
    };

    set_node("5.10.0-32-cloud-amd64", "cri-o://1.28.1");
    let (sc, stderr) = run(&[]);
    assert_eq!(sc["privileged"], false, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{sc}"
    );
    assert_eq!(
        sc["capabilities"]["add"],
        serde_json::json!(["BPF", "PERFMON", "SYSLOG", "SYS_RESOURCE"]),
        "{sc}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "Unconfined", "{sc}");
    assert!(
        stderr.contains("capabilities BPF,PERFMON,SYSLOG,SYS_RESOURCE (not privileged)"),
        "{stderr}"
    );

    set_node("6.12.118+deb13-cloud-amd64", "containerd://1.7.24");
    let (sc, stderr) = run(&[]);
    assert_eq!(
        sc["capabilities"]["add"],
        serde_json::json!(["BPF", "PERFMON", "SYSLOG"]),
        "{sc}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{sc}");
    assert!(stderr.contains("seccomp RuntimeDefault"), "{stderr}");

    let (sc, stderr) = run(&["--privileged"]);
    assert_eq!(sc["privileged"], true, "{sc}");
    assert!(sc.get("capabilities").is_none(), "{sc}");
    assert!(sc.get("allowPrivilegeEscalation").is_none(), "{sc}");
    assert!(stderr.contains("privileged (--privileged)"), "{stderr}");
}

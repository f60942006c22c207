//! `kubectl dentry trace deploy/NAME` (and sts, ds, rs, job, -l) against the in-process API
//! server: one tracer pod per node for that node's matching pods, one time-ordered stream, a
//! summary per pod, pods added and gone while it runs, partial failure, and a Job waited for.
mod common;

use std::{
    io::Read as _,
    process::Child,
    time::{Duration, Instant},
};

use common::{FakeApi, Tracer, node, on_node, pod, recorded_log, running};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::{Value, json};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The recorded tracer log, as a tracer on another node traces pod `name`.
fn log_of(name: &str) -> String {
    recorded_log().replace("\tmysql-0\t", &format!("\t{name}\t"))
}

fn runs(name: &str, hold: bool) -> Tracer {
    Tracer::Runs {
        log: log_of(name),
        hold,
    }
}

fn labelled(ns: &str, name: &str, labels: &[(&str, &str)], node: &str) -> Pod {
    running(on_node(pod(ns, name, labels), node))
}

/// A workload object as the API server returns it, selecting `app=<app>`.
fn workload(group_version: &str, kind: &str, name: &str, app: &str) -> Value {
    json!({
        "apiVersion": group_version, "kind": kind,
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "serviceName": name,
            "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": []}},
        },
    })
}

fn put(api: &FakeApi, plural: &str, object: Value) {
    let gv = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    api.state().objects.insert(
        format!("/apis/{gv}/namespaces/prod/{plural}/{name}"),
        object,
    );
}

/// What each tracer pod the plugin created was for: (namespace, node, target-uid annotation).
fn tracers(api: &FakeApi) -> Vec<(String, String, String)> {
    let mut all: Vec<_> = api
        .state()
        .created
        .iter()
        .map(|c| {
            (
                c["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["metadata"]["annotations"]["kubectl-dentry/target-uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

fn args_of(created: &Value) -> Vec<String> {
    serde_json::from_value(created["spec"]["containers"][0]["args"].clone()).unwrap_or_default()
}

/// Waits until `done` holds (the plugin runs on its own), failing with `what` after 20 s.
fn wait_for(api: &FakeApi, what: &str, done: impl Fn(&[String]) -> bool) {
    let start = Instant::now();
    while !done(&api.calls()) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never saw {what}; calls: {:#?}",
            api.calls()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

/// Waits for the plugin to exit by itself within 30 s; returns (code, stdout, stderr).
fn finish(mut child: Child) -> (Option<i32>, String, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the plugin did not end by itself");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    (status.code(), out, err)
}

#[test]
fn a_deployment_gets_one_tracer_per_node_one_time_ordered_stream_and_a_summary_per_pod() {
    let api = web_on_two_nodes(false);
    api.state()
        .pods
        .push(labelled("prod", "other-1", &[("app", "other")], "node-a"));
    let out = api.plugin(&["trace", "deploy/web", "--duration=30s"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // One tracer per node, scoped to that node's pods of the deployment only.
    assert_eq!(
        tracers(&api),
        [
            ("prod".into(), "node-a".into(), "uid-web-1".into()),
            ("prod".into(), "node-b".into(), "uid-web-2".into()),
        ]
    );
    let args = args_of(&api.state().created[0]);
    for arg in [
        "--target-pending",
        "--target-pod-uids-file=/etc/dentry/target-uids",
    ] {
        assert!(args.contains(&arg.to_owned()), "{args:?}");
    }

    // One header, both pods' lines, in time order (the two logs interleave in time).
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("timestamp\tpod"), "{}", lines[0]);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("timestamp")).count(),
        1
    );
    let events = &lines[1..];
    let recorded = log_of("x")
        .lines()
        .filter(|l| l.starts_with("2026-") && l.contains('\t'))
        .count();
    assert_eq!(events.len(), 2 * recorded, "{stderr}");
    for pod in ["web-1", "web-2"] {
        assert_eq!(
            events
                .iter()
                .filter(|l| l.split('\t').nth(1) == Some(pod))
                .count(),
            recorded,
            "{pod}"
        );
    }
    let stamps: Vec<&str> = events
        .iter()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "not in time order");

    // Each tracer's messages carry its node; then a summary per pod.
    assert!(
        stderr.contains("[node-a] summary attach=fentry"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[node-b] summary attach=fentry"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[node-a] tracing pod(s) prod/web-1 (fentry)"),
        "{stderr}"
    );
    let row = |pod: &str| {
        stderr
            .lines()
            .find(|l| l.split_whitespace().next() == Some(pod))
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let summary_at = stderr.find("summary per pod:").expect("summary per pod");
    assert!(
        summary_at
            > stderr
                .find("[node-b] summary")
                .unwrap_or(usize::MAX)
                .min(stderr.find("[node-a] summary").unwrap_or(0))
    );
    assert_eq!(
        row("web-1")[1..3],
        ["node-a".to_owned(), recorded.to_string()]
    );
    assert_eq!(
        row("web-2")[1..3],
        ["node-b".to_owned(), recorded.to_string()]
    );

    // Every tracer pod is gone.
    assert!(api.state().pods.iter().all(|p| {
        p.metadata
            .name
            .as_deref()
            .is_some_and(|n| !n.starts_with("dentry-"))
    }));
}

#[test]
fn every_kind_and_a_selector_find_their_pods() {
    // (command line, the workload's plural and kind, the tracers: namespace, node, UIDs)
    type Case<'a> = (
        &'a [&'a str],
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str, &'a str)],
    );
    let cases: [Case; 6] = [
        (
            &["trace", "sts/db"],
            "statefulsets",
            "StatefulSet",
            &[("prod", "node-a", "uid-db-0")],
        ),
        (
            &["trace", "ds/agent"],
            "daemonsets",
            "DaemonSet",
            &[
                ("prod", "node-a", "uid-agent-a"),
                ("prod", "node-b", "uid-agent-b"),
            ],
        ),
        (
            &["trace", "replicaset.apps/web-7d"],
            "replicasets",
            "ReplicaSet",
            &[("prod", "node-a", "uid-web-7d-1,uid-web-7d-2")],
        ),
        (
            &["trace", "jobs/load"],
            "jobs",
            "Job",
            &[("prod", "node-b", "uid-load-x")],
        ),
        (
            &["trace", "-l", "tier in (cache,db),!canary"],
            "",
            "",
            &[("prod", "node-a", "uid-cache-0")],
        ),
        (
            &["trace", "-l", "tier=cache", "-A"],
            "",
            "",
            &[
                ("cache", "node-b", "uid-cache-1,uid-canary-0"),
                ("prod", "node-a", "uid-cache-0"),
            ],
        ),
    ];
    for (args, plural, kind, want) in cases {
        let api = FakeApi::start(vec![
            labelled("prod", "db-0", &[("app", "db")], "node-a"),
            labelled("prod", "agent-a", &[("app", "agent")], "node-a"),
            labelled("prod", "agent-b", &[("app", "agent")], "node-b"),
            labelled("prod", "web-7d-1", &[("app", "web-7d")], "node-a"),
            labelled("prod", "web-7d-2", &[("app", "web-7d")], "node-a"),
            labelled("prod", "load-x", &[("app", "load")], "node-b"),
            labelled("prod", "cache-0", &[("tier", "cache")], "node-a"),
            labelled(
                "prod",
                "canary-0",
                &[("tier", "cache"), ("canary", "y")],
                "node-b",
            ),
            labelled("cache", "cache-1", &[("tier", "cache")], "node-b"),
        ]);
        api.state().nodes = vec![node("node-a", true), node("node-b", true)];
        if !plural.is_empty() {
            let name = args[1].split_once('/').map_or("", |(_, n)| n);
            let gv = if kind == "Job" { "batch/v1" } else { "apps/v1" };
            let app = name;
            put(&api, plural, workload(gv, kind, name, app));
        }
        let out = api.plugin(&[args, &["--duration=30s"]].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        let want: Vec<(String, String, String)> = want
            .iter()
            .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(tracers(&api), want, "{args:?}");
        assert!(stderr.contains("summary per pod:"), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_targets_get_one_line_and_start_nothing() {
    let api = FakeApi::start(vec![
        labelled("prod", "web-1", &[("app", "web")], "node-a"),
        pod("prod", "big-0", &[("app", "big")]),
    ]);
    put(
        &api,
        "deployments",
        workload("apps/v1", "Deployment", "web", "web"),
    );
    {
        let mut s = api.state();
        s.nodes = vec![node("node-a", true)];
        let status = s.pods[1].status.get_or_insert_with(PodStatus::default);
        status.conditions = Some(vec![k8s_openapi::api::core::v1::PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            message: Some("0/3 nodes are available: 3 Insufficient memory.".into()),
            ..Default::default()
        }]);
    }
    for (args, code, needle) in [
        (
            &["trace", "cronjob/nightly"][..],
            2,
            "cannot trace a cronjob",
        ),
        (
            &["trace", "deploy/nope"],
            7,
            "deployment/nope not found in namespace prod",
        ),
        (
            &["trace", "-l", "app=none"],
            7,
            "no pods match -l app=none in namespace prod",
        ),
        (
            &["trace", "-l", "app=none", "-A"],
            7,
            "no pods match -l app=none across all namespaces",
        ),
        (
            &["trace", "deploy/web", "-A"],
            2,
            "-A searches every namespace for -l",
        ),
        (
            &["trace", "deploy/web", "-c", "c"],
            2,
            "-c picks a container of one pod",
        ),
        (
            &["trace", "-l", "app=big", "--wait", "--wait-timeout=1s"],
            7,
            "no pod of -l app=big was scheduled within 1s (--wait-timeout): the scheduler says: 0/3 nodes are available",
        ),
    ] {
        let out = api.plugin(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains(needle),
            "{args:?}: {needle:?} not in {last:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(api.state().created.is_empty());
}

#[test]
fn pods_added_during_the_trace_are_traced_and_it_ends_when_the_last_goes() {
    let api = FakeApi::start(vec![labelled("prod", "web-1", &[("app", "web")], "node-a")]);
    put(
        &api,
        "deployments",
        workload("apps/v1", "Deployment", "web", "web"),
    );
    {
        let mut s = api.state();
        s.nodes = vec![node("node-a", true), node("node-b", true)];
        s.tracer_on.insert("node-a".into(), runs("web-1", true));
        s.tracer_on.insert("node-b".into(), runs("web-3", true));
    }
    let child = api.spawn_plugin(&["trace", "deploy/web", "--duration=60s"]);
    wait_for(&api, "node-a's tracer log followed", |c| {
        c.iter().any(|c| c.contains("/log?follow"))
    });

    // Scale-up: a pod on the same node is added to its tracer through the annotation.
    api.change(|s| {
        s.pods
            .push(labelled("prod", "web-2", &[("app", "web")], "node-a"))
    });
    wait_for(&api, "the annotation patched", |c| {
        c.iter().any(|c| {
            c.starts_with("PATCH") && c.ends_with("kubectl-dentry/target-uid=uid-web-1,uid-web-2")
        })
    });
    // A pod on a new node gets that node a tracer.
    api.change(|s| {
        s.pods
            .push(labelled("prod", "web-3", &[("app", "web")], "node-b"))
    });
    wait_for(&api, "a tracer on node-b", |c| count(c, "POST") == 2);
    assert_eq!(
        tracers(&api)[1],
        ("prod".into(), "node-b".into(), "uid-web-3".into())
    );
    wait_for(&api, "node-b's tracer followed", |c| {
        c.iter().filter(|c| c.contains("/log?follow")).count() == 2
    });

    // One of node-a's two pods goes: its tracer stays, told of the one left.
    api.change(|s| {
        s.pods
            .retain(|p| p.metadata.name.as_deref() != Some("web-2"))
    });
    wait_for(&api, "the annotation patched back", |c| {
        c.iter()
            .any(|c| c.starts_with("PATCH") && c.ends_with("kubectl-dentry/target-uid=uid-web-1"))
    });
    assert_eq!(count(&api.calls(), "DELETE"), 0);

    // Its only pod goes: node-b's tracer is stopped, node-a's keeps running.
    api.change(|s| {
        s.pods
            .retain(|p| p.metadata.name.as_deref() != Some("web-3"))
    });
    wait_for(&api, "node-b's tracer deleted", |c| count(c, "DELETE") == 1);
    let deleted = api
        .calls()
        .into_iter()
        .find(|c| c.starts_with("DELETE"))
        .unwrap_or_default();
    assert!(deleted.contains("dentry-trace-web-00002"), "{deleted}");

    // The rest go: the trace is over.
    api.change(|s| {
        s.pods
            .retain(|p| !p.metadata.name.as_deref().unwrap_or("").starts_with("web-"))
    });
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or("")
            .contains("no pod of deployment/web is left: the trace is over"),
        "{stderr}"
    );
    // Both tracers' summaries came (each printed it when its pod was deleted).
    assert!(stderr.contains("[node-a] summary attach="), "{stderr}");
    assert!(stderr.contains("[node-b] summary attach="), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split('\t').nth(1) == Some("web-3"))
    );
    assert!(api.state().pods.is_empty(), "{:?}", api.calls());
}

#[test]
fn nodes_that_cannot_run_the_tracer_are_reported_and_the_others_traced() {
    let api = web_on_two_nodes(false);
    api.state()
        .tracer_on
        .insert("node-b".into(), Tracer::ImagePull);
    let out = api.plugin(&["trace", "-l", "app=web", "--duration=30s"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("[node-b] the tracer image")
                && l.contains("cannot be pulled on node node-b")),
        "{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split('\t').nth(1) == Some("web-1"))
    );
    assert!(!stdout.contains("\tweb-2\t"));

    // Every node fails: the first node's exit code, after each node's cause.
    let api = web_on_two_nodes(false);
    for tracer in api.state().tracer_on.values_mut() {
        *tracer = Tracer::ImagePull;
    }
    let out = api.plugin(&["trace", "-l", "app=web", "--duration=30s"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("cannot be pulled"))
            .count(),
        2,
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or("")
            .contains("the tracer could not run on any of the 2 node(s)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(api.state().pods.iter().all(|p| {
        !p.metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("dentry-")
    }));
}

/// A node's tracer pod warnings (a sandbox its CNI cannot set up yet, posted twice as a
/// kubelet retries) and the privileges it runs with reach the trace's stderr once, under the
/// node's name; the trace goes on once it starts.
#[test]
fn each_nodes_tracer_pod_warnings_and_privileges_are_shown_once_under_its_name() {
    let api = web_on_two_nodes(false);
    let sandbox = "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to \
                   setup network for sandbox: plugin type=\"calico\" failed (add)";
    api.state().tracer_on.insert(
        "node-b".into(),
        Tracer::Warns {
            warnings: vec![
                ("FailedCreatePodSandBox".into(), sandbox.into()),
                ("FailedCreatePodSandBox".into(), sandbox.into()),
            ],
            then: Some(Box::new(Tracer::default())),
        },
    );
    let out = api.plugin(&["trace", "deploy/web", "--duration=30s"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("FailedCreatePodSandBox"))
        .collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(warned[0].starts_with("[node-b] tracer pod "), "{stderr}");
    for node in ["node-a", "node-b"] {
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.starts_with(&format!("[{node}] tracer pod "))
                    && l.contains("(not privileged)"))
                .count(),
            1,
            "{node}: {stderr}"
        );
    }
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains("\tnegative\t"))
            .count()
            > 1,
        "the trace ran: {stdout}"
    );
}

#[test]
fn a_job_waited_for_is_traced_from_its_pods_start_until_it_completes() {
    let api = FakeApi::start(vec![]);
    let mut job = workload("batch/v1", "Job", "load", "load");
    put(&api, "jobs", job.clone());
    {
        let mut s = api.state();
        s.nodes = vec![node("node-a", true)];
        s.tracer = runs("load-x", true);
    }
    let child = api.spawn_plugin(&["trace", "job/load", "--wait", "--duration=60s"]);
    wait_for(&api, "the pod watch", |c| {
        c.iter()
            .any(|c| c.starts_with("WATCH /api/v1/namespaces/prod/pods?app=load"))
    });
    // Created after the command started, then scheduled.
    api.change(|s| s.pods.push(pod("prod", "load-x", &[("app", "load")])));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(&api.calls(), "POST"),
        0,
        "a tracer before the pod had a node"
    );
    api.change(|s| {
        if let Some(p) = s
            .pods
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some("load-x"))
        {
            p.spec.get_or_insert_with(Default::default).node_name = Some("node-a".into());
        }
    });
    wait_for(&api, "a tracer on node-a", |c| count(c, "POST") == 1);
    let args = args_of(&api.state().created[0]);
    assert!(args.contains(&"--target-pending".to_owned()), "{args:?}");
    assert!(
        args.contains(&"--target-pod-uid=uid-load-x".to_owned()),
        "{args:?}"
    );

    wait_for(&api, "the tracer's log followed", |c| {
        c.iter().any(|c| c.contains("/log?follow"))
    });

    // The pod completes and the Job with it: the trace is over.
    job["status"] = json!({"conditions": [{"type": "Complete", "status": "True"}]});
    put(&api, "jobs", job);
    api.change(|s| {
        if let Some(p) = s
            .pods
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some("load-x"))
        {
            p.status = Some(PodStatus {
                phase: Some("Succeeded".into()),
                ..Default::default()
            });
        }
    });
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or("")
            .contains("no pod of job/load is left: the trace is over"),
        "{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split('\t').nth(1) == Some("load-x"))
    );
    assert!(
        api.calls()
            .iter()
            .any(|c| c == "GET /apis/batch/v1/namespaces/prod/jobs/load")
    );
}

/// deploy/web's two replicas on two nodes, whose tracers replay the recorded log as their pod
/// (with `hold`, the summary only once their pod is deleted).
fn web_on_two_nodes(hold: bool) -> FakeApi {
    let api = FakeApi::start(vec![
        labelled("prod", "web-1", &[("app", "web")], "node-a"),
        labelled("prod", "web-2", &[("app", "web")], "node-b"),
    ]);
    put(
        &api,
        "deployments",
        workload("apps/v1", "Deployment", "web", "web"),
    );
    let mut s = api.state();
    s.nodes = vec![node("node-a", true), node("node-b", true)];
    s.tracer_on.insert("node-a".into(), runs("web-1", hold));
    s.tracer_on.insert("node-b".into(), runs("web-2", hold));
    drop(s);
    api
}

#[test]
fn max_events_counts_over_every_pod_and_stops_every_tracer() {
    let api = web_on_two_nodes(true);
    let out = api.plugin(&["trace", "deploy/web", "--max-events=25", "--duration=60s"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 25, "{stdout}");
    assert!(
        stderr.contains("25 events (--max-events): the trace is over"),
        "{stderr}"
    );
    // Both tracers were stopped, and each printed its summary.
    assert_eq!(count(&api.calls(), "DELETE"), 2, "{:?}", api.calls());
    assert!(stderr.contains("[node-a] summary attach="), "{stderr}");
    assert!(stderr.contains("[node-b] summary attach="), "{stderr}");
    let rows: u64 = ["web-1", "web-2"]
        .iter()
        .filter_map(|pod| {
            let row = stderr
                .lines()
                .find(|l| l.split_whitespace().next() == Some(*pod))?;
            row.split_whitespace().nth(2)?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(
        rows, 25,
        "the summary per pod counts the lines written: {stderr}"
    );
}

#[test]
fn a_stop_signal_stops_every_tracer_and_still_prints_their_summaries() {
    let api = web_on_two_nodes(true);
    let mut child = api.spawn_plugin(&["trace", "deploy/web", "--duration=60s"]);
    let stdout = child.stdout.as_mut().expect("stdout");
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).expect("the header");
    wait_for(&api, "both tracers followed", |c| {
        c.iter().filter(|c| c.contains("/log?follow")).count() == 2
    });
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (code, _, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("[node-a] summary attach="), "{stderr}");
    assert!(stderr.contains("[node-b] summary attach="), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or("")
            .contains("stopped by SIGINT"),
        "{stderr}"
    );
    assert!(api.state().pods.iter().all(|p| {
        !p.metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with("dentry-")
    }));
}

#[test]
fn duration_ends_the_whole_trace_and_json_lines_name_their_pods() {
    let api = web_on_two_nodes(true);
    let out = api.plugin(&["trace", "deploy/web", "--duration=3s", "-o", "json"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or("")
            .contains("the trace is over (--duration)"),
        "{stderr}"
    );
    assert_eq!(count(&api.calls(), "DELETE"), 2, "{:?}", api.calls());
    let pods: std::collections::BTreeSet<String> = stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["pod"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(pods, ["web-1".to_owned(), "web-2".to_owned()].into());
}

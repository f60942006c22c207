//! End to end against a real cluster: `trace`, `top`, `trace --keep` + `fetch traces`,
//! `cleanup`, `trace --wait` and `trace deploy/NAME`, with the real tracer image on real nodes. Ignored unless asked for:
//!
//!     DENTRY_E2E=1 KUBECONFIG=~/.kube/config \
//!       KUBECTL_DENTRY_IMAGE=ghcr.io/kubectl-dentry/tracer:0.1.0 \
//!       cargo test -p kubectl-dentry --test e2e -- --ignored --test-threads 1
//!
//! The cluster's nodes need kprobes (any mainstream distribution kernel; kind, k3d and
//! minikube nodes use the host's). Each test makes a namespace `dentry-e2e-<pid>-<test>` labelled to
//! admit privileged pods, run a busybox pod there that looks up missing files, and delete the
//! namespace at the end. The workload pods tolerate every taint, as the tracer pods do
//! (`DENTRY_E2E_TOLERATIONS`, a JSON list, replaces that), and their image is
//! `DENTRY_E2E_WORKLOAD_IMAGE` (default `busybox:1.36`).
use std::{process::Command, time::Duration};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, Pod},
};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

const WORKLOAD: &str = "dentry-e2e-workload";

fn enabled() {
    assert!(
        std::env::var_os("DENTRY_E2E").is_some() && std::env::var_os("KUBECONFIG").is_some(),
        "the e2e suite runs against a real cluster: set DENTRY_E2E=1 and KUBECONFIG"
    );
}

/// The workload's image: any image with a POSIX `sh` and `[` (`DENTRY_E2E_WORKLOAD_IMAGE`,
/// for clusters with images preloaded under other names or no registry access).
fn workload_image() -> String {
    std::env::var("DENTRY_E2E_WORKLOAD_IMAGE").unwrap_or_else(|_| "busybox:1.36".into())
}

/// The workload pods' tolerations (`DENTRY_E2E_TOLERATIONS`, JSON; default: every taint).
fn tolerations() -> serde_json::Value {
    std::env::var("DENTRY_E2E_TOLERATIONS")
        .ok()
        .map(|t| serde_json::from_str(&t).expect("DENTRY_E2E_TOLERATIONS is a JSON list"))
        .unwrap_or_else(|| json!([{"operator": "Exists"}]))
}

fn plugin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
        .args(args)
        .output()
        .expect("the plugin runs")
}

struct TestNamespace {
    name: String,
    client: Client,
}

impl TestNamespace {
    /// A namespace of the test's own (`dentry-e2e-<pid>-<test>`): a namespace being deleted
    /// refuses new pods for as long as its pods take to go, so tests never share one.
    async fn create(test: &str) -> TestNamespace {
        // The plugin's own client: kube is built without a TLS feature (src/https.rs).
        let config = kube::Config::infer().await.expect("kubeconfig");
        let client = kubectl_dentry::https::client(config).expect("client");
        let name = format!("dentry-e2e-{}-{test}", std::process::id());
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}
        }))
        .unwrap();
        let namespaces = Api::<Namespace>::all(client.clone());
        // One left by an earlier run under the same name is waited out first.
        wait_deleted(&namespaces, &name).await;
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        // New names on every pass: a lookup that finds a cached negative dentry allocates
        // nothing, so a workload repeating its names would be invisible after its first pass,
        // which runs before any tracer attaches (docs/counters.md).
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": WORKLOAD, "labels": {"app": WORKLOAD}},
            "spec": {"containers": [{"name": "lookups", "image": workload_image(),
                "command": ["sh", "-c", "mkdir -p /work; n=0; while true; do i=0; while [ $i -lt 500 ]; do [ -e /work/#sql-missing-$n-$i.ibd ]; i=$((i+1)); done; n=$((n+1)); sleep 0.2; done"]}],
                "tolerations": tolerations(),
                "terminationGracePeriodSeconds": 1}
        }))
        .unwrap();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create workload");
        for _ in 0..120 {
            let p = pods.get(WORKLOAD).await.expect("get workload");
            if p.status.and_then(|s| s.phase).as_deref() == Some("Running") {
                return TestNamespace { name, client };
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("the workload pod did not start in 2 minutes");
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().map(|rt| {
                rt.block_on(async {
                    let namespaces = Api::<Namespace>::all(client);
                    let _ = namespaces.delete(&name, &DeleteParams::default()).await;
                    // Leave the cluster as found before the next test starts.
                    wait_deleted(&namespaces, &name).await;
                })
            })
        })
        .join();
    }
}

/// Waits (up to 3 minutes) until the namespace `name` is gone.
async fn wait_deleted(namespaces: &Api<Namespace>, name: &str) {
    for _ in 0..180 {
        match namespaces.get_opt(name).await {
            Ok(None) => return,
            Ok(Some(_)) | Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    panic!("namespace {name} was still there after 3 minutes");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real cluster: DENTRY_E2E=1 KUBECONFIG=..."]
async fn trace_top_keep_fetch_cleanup() {
    enabled();
    let ns = TestNamespace::create("trace").await;
    let n = ns.name.as_str();
    let target = format!("pod/{WORKLOAD}");

    // trace: TSV on stdout from the workload only, the summary on stderr, the pod deleted.
    let out = plugin(&[
        "trace",
        &target,
        "-n",
        n,
        "--patterns=#sql",
        "--duration=20s",
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp\tpod\tcontainer\tcgroup_id\toperation\tpath\tfstype")
    );
    let events: Vec<&str> = lines.collect();
    assert!(!events.is_empty(), "no events traced; stderr: {stderr}");
    assert!(
        events
            .iter()
            .all(|l| l.split('\t').nth(1) == Some(WORKLOAD)),
        "{stdout}"
    );
    assert!(
        events.iter().any(|l| l.contains("/work/#sql-missing-")),
        "{stdout}"
    );
    assert!(stderr.contains("summary attach="), "{stderr}");
    // What the pod still holds of what it allocated during the trace.
    assert!(stderr.contains("live scope dentries="), "{stderr}");
    // The tracer ran with capabilities, not privileged, and every feature was on with them
    // (CAP_SYSLOG's live gauges included): no "off:" line.
    assert!(stderr.contains("(not privileged)"), "{stderr}");
    assert!(!stderr.contains(" off: "), "{stderr}");

    // top: the workload's row has a positive allocation rate.
    let out = plugin(&["top", &target, "-n", n, "--interval=5s", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = v["containers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["pod"] == WORKLOAD))
        .expect("the workload's row");
    assert!(
        row["alloc_per_second"].as_f64().unwrap_or(0.0) > 0.0,
        "{row}"
    );
    // Its failed lookups leave negative dentries, charged to its memory cgroup.
    assert!(row["live_negative"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
    assert!(row["live_bytes"].as_f64().unwrap_or(0.0) > 0.0, "{row}");

    // trace --keep, then fetch its files, then cleanup.
    let out = plugin(&["trace", &target, "-n", n, "--keep", "--duration=10s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = plugin(&[
        "fetch",
        "traces",
        "-n",
        n,
        "-d",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fetched: Vec<_> = walk(dir.path());
    assert!(
        fetched.iter().any(|p| p.ends_with("traces.tsv")),
        "{fetched:?}"
    );
    let out = plugin(&["cleanup", "-n", n]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("1 tracer pod(s) deleted"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `trace --wait` on a pod created after the command started: its container's very first
/// lookup is in the trace. (The pod's init container holds it a few seconds, as a real pod's
/// image pulls and init containers do, so the tracer pod has started by then.)
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real cluster: DENTRY_E2E=1 KUBECONFIG=..."]
async fn trace_wait_sees_a_pod_from_its_first_lookup() {
    enabled();
    let ns = TestNamespace::create("wait").await;
    let n = ns.name.clone();
    let late = "dentry-e2e-late";
    let target = format!("pod/{late}");
    let trace = {
        let n = n.clone();
        tokio::task::spawn_blocking(move || {
            plugin(&[
                "trace",
                &target,
                "-n",
                &n,
                "--wait",
                "--patterns=#first",
                "--duration=60s",
            ])
        })
    };
    // Let the plugin start watching for a pod that is not there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": late},
        "spec": {
            "initContainers": [{"name": "init", "image": workload_image(),
                "command": ["sh", "-c", "sleep 20"]}],
            "containers": [{"name": "lookups", "image": workload_image(),
                "command": ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do [ -e /#first-$i ]; i=$((i+1)); done; sleep 3600"]}],
            "tolerations": tolerations(),
            "terminationGracePeriodSeconds": 1}
    }))
    .unwrap();
    Api::<Pod>::namespaced(ns.client.clone(), &n)
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the late pod");
    let out = trace.await.expect("the plugin ran");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    for first in ["/#first-0\t", "/#first-2999\t"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(first) && l.contains("\tnegative\t")),
            "{first} not traced; stderr: {stderr}"
        );
    }
    assert!(
        stdout
            .lines()
            .skip(1)
            .all(|l| l.split('\t').nth(1) == Some(late)),
        "{stdout}"
    );
}

/// `trace deploy/NAME` over two replicas (on one node or two, as the scheduler puts them): both
/// pods' lines in the one stream, and a summary row for each.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a real cluster: DENTRY_E2E=1 KUBECONFIG=..."]
async fn trace_deploy_sees_both_replicas() {
    enabled();
    let ns = TestNamespace::create("deploy").await;
    let n = ns.name.clone();
    let web = "dentry-e2e-web";
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": web},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": web}},
            "template": {
                "metadata": {"labels": {"app": web}},
                "spec": {
                    "containers": [{"name": "lookups", "image": workload_image(),
                        "command": ["sh", "-c", "n=0; while true; do i=0; while [ $i -lt 200 ]; do [ -e /#web-$n-$i ]; i=$((i+1)); done; n=$((n+1)); sleep 0.2; done"]}],
                    "tolerations": tolerations(),
                    "terminationGracePeriodSeconds": 1}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(ns.client.clone(), &n)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the deployment");
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &n);
    let mut names = Vec::new();
    for _ in 0..120 {
        let list = pods
            .list(&kube::api::ListParams::default().labels(&format!("app={web}")))
            .await
            .expect("list the replicas");
        names = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(names.len(), 2, "the replicas did not start in 2 minutes");
    let target = format!("deploy/{web}");
    let out = tokio::task::spawn_blocking(move || {
        plugin(&[
            "trace",
            &target,
            "-n",
            &n,
            "--patterns=#web",
            "--duration=45s",
        ])
    })
    .await
    .expect("the plugin ran");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("timestamp\t"))
            .count(),
        1
    );
    for name in &names {
        assert!(
            stdout
                .lines()
                .any(|l| l.split('\t').nth(1) == Some(name.as_str())),
            "no line from {name}; stderr: {stderr}"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str())),
            "no summary row for {name}: {stderr}"
        );
    }
    assert!(stderr.contains("summary per pod:"), "{stderr}");
}

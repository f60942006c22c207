//! `kubectl dentry top` against the in-process API server, with /metrics answers recorded from
//! the real tracer in the VM (two scrapes around 300 failed lookups in prod/mysql-0 and 100 in
//! web/nginx-1): which tracers it uses or starts, the rows, and that it cleans up.
mod common;

use std::io::{BufRead as _, BufReader};

use common::{FakeApi, Tracer, fixture, node, on_node, pod, running};
use serde_json::Value;

fn cluster() -> FakeApi {
    let api = FakeApi::start(vec![
        running(on_node(
            pod("prod", "mysql-0", &[("app", "mysql")]),
            "node-a",
        )),
        running(on_node(
            pod("web", "nginx-1", &[("app", "nginx")]),
            "node-c",
        )),
        running(on_node(
            pod(
                "dentry-monitor",
                "dentry-tracer-ds1",
                &[
                    ("app.kubernetes.io/name", "dentry-tracer"),
                    ("app.kubernetes.io/component", "daemonset"),
                ],
            ),
            "node-c",
        )),
    ]);
    api.state().nodes = vec![
        node("node-a", true),
        node("node-b", false),
        node("node-c", true),
    ];
    let scrapes = vec![fixture("metrics-1.txt"), fixture("metrics-2.txt")];
    let mut state = api.state();
    let metrics = &mut state.metrics;
    metrics.insert("node-a".into(), scrapes.clone());
    metrics.insert("node-c".into(), scrapes);
    drop(state);
    api
}

/// `dentry_count{type="total"}` of the second recorded scrape.
fn recorded_dentries() -> f64 {
    fixture("metrics-2.txt")
        .lines()
        .find_map(|l| l.strip_prefix("dentry_count{type=\"total\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("dentry_count total in the fixture")
}

fn json_rows(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn row<'v>(v: &'v Value, node: &str, pod: &str) -> Option<&'v Value> {
    v["containers"]
        .as_array()?
        .iter()
        .find(|r| r["node"] == node && r["pod"] == pod)
}

#[test]
fn every_ready_node_uses_the_daemonset_or_a_started_tracer_which_is_deleted_after() {
    let api = cluster();
    let out = api.plugin(&["top", "--interval", "1s", "-o", "json"]);
    let v = json_rows(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping node node-b: NotReady"),
        "{stderr}"
    );
    let calls = api.calls();
    // A tracer pod for node-a only: node-c has the DaemonSet's, node-b is NotReady.
    let created = api.state().created.clone();
    assert_eq!(created.len(), 1, "{calls:?}");
    assert_eq!(created[0]["spec"]["nodeName"], "node-a");
    assert_eq!(
        created[0]["metadata"]["labels"]["app.kubernetes.io/component"],
        "top"
    );
    assert!(
        !created[0]["spec"]["containers"][0]["args"]
            .to_string()
            .contains("--trace")
    );
    assert!(
        calls.contains(
            &"GET /api/v1/namespaces/dentry-monitor/pods/dentry-tracer-ds1:9090/proxy/metrics"
                .to_owned()
        ),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"DELETE /api/v1/namespaces/prod/pods/dentry-top-node-a-00001".to_owned()),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("UNMATCHED")),
        "{calls:?}"
    );

    // The recorded workload: 300 lookups in mysql-0 and 100 in nginx-1 between the scrapes.
    for node in ["node-a", "node-c"] {
        let mysql = row(&v, node, "mysql-0").expect("mysql row");
        assert_eq!(mysql["alloc_total"], 300.0);
        assert_eq!(mysql["negative_percent"], 100.0);
        let rate = mysql["alloc_per_second"].as_f64().unwrap();
        assert!(
            rate > 0.0 && rate <= 300.0,
            "{rate}: 300 allocations over at least 1s"
        );
        let nginx = row(&v, node, "nginx-1").expect("nginx row");
        let ratio = rate / nginx["alloc_per_second"].as_f64().unwrap();
        assert!(
            (ratio - 3.0).abs() < 1e-9,
            "mysql allocated 3× what nginx did: {ratio}"
        );
    }
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(v["nodes"][0]["dentries"], recorded_dentries());
}

/// A node slow to answer its second scrape does not skew another node's rate: each node's
/// rate is over its own two scrape times.
#[test]
fn each_nodes_rate_uses_its_own_scrape_times() {
    let api = cluster();
    api.state()
        .metrics_delay
        .insert("node-c".into(), std::time::Duration::from_secs(3));
    let out = api.plugin(&["top", "--interval", "1s", "-o", "json"]);
    let v = json_rows(&out);
    let rate = |node: &str| {
        row(&v, node, "mysql-0").expect("mysql row")["alloc_per_second"]
            .as_f64()
            .unwrap()
    };
    // 300 allocations between scrapes: node-a's were about 1s apart, node-c's over 4s.
    assert!(rate("node-a") > 150.0, "node-a: {} alloc/s", rate("node-a"));
    assert!(rate("node-c") < 100.0, "node-c: {} alloc/s", rate("node-c"));
}

/// A node whose tracer stops answering is one line marked unreachable, not a hang: the other
/// nodes' rows are shown, one tracer at a time as well as all at once.
#[test]
fn a_silent_node_is_marked_unreachable_and_the_others_are_shown() {
    for concurrency in ["1", "32"] {
        let api = cluster();
        api.state()
            .metrics_delay
            .insert("node-c".into(), std::time::Duration::from_secs(600));
        let out = api.plugin(&[
            "top",
            "--interval",
            "1s",
            "--node-timeout",
            "2s",
            "--concurrency",
            concurrency,
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("mysql-0"), "{stdout}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("node node-c: unreachable: ")
                    && l.contains("did not answer /metrics within 2s")),
            "{stdout}"
        );
        assert!(stdout.contains("node node-a: "), "{stdout}");
    }
    // In JSON: the node says why, and no rows come from it.
    let api = cluster();
    api.state()
        .metrics_delay
        .insert("node-c".into(), std::time::Duration::from_secs(600));
    let v = json_rows(&api.plugin(&[
        "top",
        "--interval",
        "1s",
        "--node-timeout",
        "2s",
        "-o",
        "json",
    ]));
    let silent = v["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == "node-c"))
        .expect("node-c's entry");
    assert!(silent["unreachable"].as_str().is_some(), "{silent}");
    assert!(row(&v, "node-c", "nginx-1").is_none());
}

#[test]
fn one_pod_or_a_selector_narrows_nodes_and_rows() {
    let api = cluster();
    let v = json_rows(&api.plugin(&["top", "pod/mysql-0", "--interval", "1s", "-o", "json"]));
    let rows = v["containers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["pod"], "mysql-0");
    assert_eq!(rows[0]["node"], "node-a");

    let v = json_rows(&api.plugin(&[
        "top",
        "-l",
        "app=nginx",
        "-A",
        "--interval",
        "1s",
        "-o",
        "json",
    ]));
    let rows = v["containers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0]["pod"].as_str(), rows[0]["node"].as_str()),
        (Some("nginx-1"), Some("node-c"))
    );
    // nginx-1's node has the DaemonSet: nothing was started for this one.
    assert_eq!(api.state().created.len(), 1);
}

#[test]
fn the_table_reads_like_kubectl_top() {
    let api = cluster();
    let out = api.plugin(&[
        "top",
        "--node",
        "node-a",
        "--interval",
        "1s",
        "--sort-by",
        "negative",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE   POD"), "{stdout}");
    assert!(
        lines[1].starts_with("prod") && lines[1].contains("mysql-0") && lines[1].contains("100%"),
        "{stdout}"
    );
    // The recorded workload's 300 failed lookups on ext4: 300 live negative dentries, 200
    // bytes each as charged to the container's memory cgroup.
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&cells[3..6], ["300", "300", "58.6KiB"], "{stdout}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with(&format!("node node-a: {} dentries", recorded_dentries())),
        "{stdout}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("; dentry cache 308KiB, listed pods hold 25%"),
        "{stdout}"
    );
}

/// SIGINT (Ctrl-C), SIGTERM (a CI job's timeout, `timeout`) and SIGHUP (the terminal closed)
/// all end `top --watch` the same way: its tracer pods are deleted.
#[test]
fn watch_until_a_stop_signal_then_delete_the_started_tracers() {
    for signal in ["INT", "TERM", "HUP"] {
        let api = cluster();
        let mut child =
            api.spawn_plugin(&["top", "--watch", "--interval", "1s", "--node", "node-a"]);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("NAMESPACE"), "{line}");
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "SIG{signal}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            api.calls().contains(
                &"DELETE /api/v1/namespaces/prod/pods/dentry-top-node-a-00001".to_owned()
            ),
            "SIG{signal}: {:?}",
            api.calls()
        );
    }
}

#[test]
fn a_tracer_that_cannot_attach_is_reported_and_removed() {
    let api = cluster();
    api.state().tracer = Tracer::Fails {
        log: fixture("tracer-failed.log"),
    };
    let out = api.plugin(&["top", "--node", "node-a", "--interval", "1s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .contains("kprobes unavailable on this kernel"),
        "{stderr}"
    );
    assert!(
        api.calls()
            .iter()
            .any(|c| c.starts_with("DELETE /api/v1/namespaces/prod/pods/dentry-top-node-a-"))
    );
}

/// `--endpoint` reads one tracer directly: no kubeconfig needed.
#[test]
fn endpoint_reads_a_tracer_directly() {
    use axum::{Router, routing::get};
    let answers = std::sync::Arc::new(std::sync::Mutex::new(vec![
        fixture("metrics-2.txt"),
        fixture("metrics-1.txt"),
    ]));
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let answers = answers.clone();
            async move {
                let mut a = answers.lock().unwrap();
                if a.len() > 1 {
                    a.pop().unwrap()
                } else {
                    a[0].clone()
                }
            }
        }),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
        .args([
            "top",
            "--endpoint",
            &format!("http://{addr}"),
            "--interval",
            "1s",
            "-o",
            "json",
        ])
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    let v = json_rows(&out);
    let mysql = row(&v, "127.0.0.1", "mysql-0").expect("row");
    assert_eq!(mysql["alloc_total"], 300.0);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
        .args(["top", "--endpoint", "http://127.0.0.1:1/metrics"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read the tracer at http://127.0.0.1:1/metrics")
    );
}

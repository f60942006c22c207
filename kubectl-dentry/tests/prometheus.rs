//! Prometheus, with Debian's real server and promtool. The alerts in
//! deploy/prometheus/rules.yaml: promtool checks them and runs their unit tests
//! (rules.test.yaml), every alert has one, the Prometheus Operator's copy
//! (deploy/examples/prometheusrule.yaml) says the same, and the PodMonitor scrapes the
//! DaemonSet's pods and labels each series with its node. Then a real server, run with the
//! documented scrape job and the rules, scrapes tracers behind the in-process API server
//! (recorded VM output whose counters grow at a known rate): it evaluates every alert, every
//! dashboard panel and `top --prometheus`'s queries, and `top --prometheus` shows what the
//! proxy path shows.
mod common;

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use common::{FakeApi, Growing, Prometheus, node, on_node, pod, running};
use serde_json::Value;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml(path: &str) -> serde_json::Value {
    let path = deploy().join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .expect("promtool runs (cargo xtask setup installs the prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn alerts(rules: &serde_json::Value) -> Vec<String> {
    rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let (ok, text) = promtool(&["check", "rules", "rules.yaml"]);
    assert!(ok, "{text}");
    let (ok, text) = promtool(&["test", "rules", "rules.test.yaml"]);
    assert!(ok && text.contains("SUCCESS"), "{text}");
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it() {
    let rules = yaml("prometheus/rules.yaml");
    let tests = yaml("prometheus/rules.test.yaml");
    let names = alerts(&rules);
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let fired = tests["tests"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
            .any(|a| {
                a["alertname"] == name.as_str()
                    && a["exp_alerts"].as_array().is_some_and(|e| !e.is_empty())
            });
        assert!(fired, "no unit test expects {name} to fire");
    }
}

#[test]
fn the_operators_copy_has_the_same_groups() {
    let rules = yaml("prometheus/rules.yaml");
    let cr = yaml("examples/prometheusrule.yaml");
    assert_eq!(cr["kind"], "PrometheusRule");
    assert_eq!(cr["spec"]["groups"], rules["groups"]);
}

#[test]
fn the_podmonitor_scrapes_the_daemonset_and_labels_the_node() {
    let pm = yaml("examples/podmonitor.yaml");
    let ds = yaml("03-daemonset.yaml");
    assert_eq!(pm["kind"], "PodMonitor");
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    for (k, v) in pm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(&labels[k], v, "selector {k}");
    }
    let endpoint = &pm["spec"]["podMetricsEndpoints"][0];
    let port = endpoint["port"].as_str().expect("port");
    let ports = ds["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .expect("ports");
    assert!(ports.iter().any(|p| p["name"] == port), "{ports:?}");
    let node = endpoint["relabelings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["targetLabel"] == "node")
        .expect("a relabeling to node");
    assert_eq!(
        node["sourceLabels"][0], "__meta_kubernetes_pod_node_name",
        "{node}"
    );
}

/// The scrape job and rules file docs/deploy.md gives plain Prometheus users: promtool accepts
/// them, as made runnable here (common::prometheus::runnable_config: the rules file where the
/// snippet says, static targets with the labels Kubernetes discovery gives, since Debian
/// builds Prometheus without it; the relabelings as written).
#[test]
fn the_documented_scrape_config_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::prometheus::runnable_config("127.0.0.1:9090", &[("p", "n")], "30s");
    let path = dir.path().join("prometheus.yml");
    std::fs::write(&path, config).expect("write");
    let out = Command::new("promtool")
        .arg("check")
        .arg("config")
        .arg(&path)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The DaemonSet's tracer pods, (name, node), in dentry-monitor.
const TRACERS: [(&str, &str); 2] = [("dentry-tracer-a", "node-a"), ("dentry-tracer-b", "node-b")];

/// node-b's counters grow 200× the recorded rates: prod/mysql-0 makes 60,000 negative
/// dentries a second there, so that DentryNegativeLookupsHigh's `rate(...[5m])`, which
/// divides by the whole 5m while Prometheus holds seconds of samples, crosses its 1,000/s
/// within seconds.
const NODE_B_SCALE: f64 = 200.0;

/// Two nodes with the DaemonSet's tracers, their counters growing steadily, and the workload
/// pods `-l` selects.
fn fleet() -> FakeApi {
    let tracer = |name: &str, node: &str| {
        running(on_node(
            pod(
                "dentry-monitor",
                name,
                &[
                    ("app.kubernetes.io/name", "dentry-tracer"),
                    ("app.kubernetes.io/component", "daemonset"),
                ],
            ),
            node,
        ))
    };
    let api = FakeApi::start(vec![
        tracer(TRACERS[0].0, TRACERS[0].1),
        tracer(TRACERS[1].0, TRACERS[1].1),
        running(on_node(
            pod("prod", "mysql-0", &[("app", "mysql")]),
            "node-a",
        )),
        running(on_node(
            pod("web", "nginx-1", &[("app", "nginx")]),
            "node-b",
        )),
    ]);
    let mut state = api.state();
    state.nodes = vec![node("node-a", true), node("node-b", true)];
    state
        .growing
        .insert("node-a".into(), Growing::recorded(1.0));
    let mut node_b = Growing::recorded(NODE_B_SCALE);
    // node-b's kernel lacks one feature: both paths must name it on its node line.
    node_b.after.push_str(&format!(
        "dentry_tracer_feature{{feature=\"live\",reason=\"{NODE_B_LACKS}\"}} 0\n"
    ));
    state.growing.insert("node-b".into(), node_b);
    drop(state);
    api
}

/// Why node-b's tracer has its live gauges off.
const NODE_B_LACKS: &str = "struct slab has no member obj_exts";

/// Waits until Prometheus holds 10s of scrapes of every tracer: `rate(...[5s])` then has
/// samples across its whole window (with fewer, rate() extrapolates only half an interval
/// past the first sample, yet divides by the whole window).
fn scraped(prom: &Prometheus) {
    prom.wait_for(
        r#"count_over_time(dentry_count{type="total"}[10s]) >= 9"#,
        TRACERS.len(),
    );
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Rows by (node, namespace, pod, container).
fn rows(v: &Value) -> BTreeMap<(String, String, String, String), Value> {
    v["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                (s("node"), s("namespace"), s("pod"), s("container")),
                r.clone(),
            )
        })
        .collect()
}

/// Equal within `rel` (relative) or 0.5/s.
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= 0.5_f64.max(rel * a.abs().max(b.abs()))
}

#[test]
fn top_from_prometheus_shows_what_the_proxy_path_shows() {
    let api = fleet();
    let prom = Prometheus::scraping(&api, &TRACERS, "1s");
    scraped(&prom);
    api.state().calls.clear();
    let from_prom = json(&api.plugin(&[
        "top",
        "--prometheus",
        &prom.url,
        "--rate-window",
        "5s",
        "-o",
        "json",
    ]));
    let calls = api.state().calls.clone();
    assert!(
        calls.iter().all(|c| c.ends_with("/proxy/metrics")),
        "top --prometheus asked the API server: {calls:?}"
    );
    // Every tracer has been scraped for longer than the window: no node's rates are scaled
    // as a young node's (they were, by up to one scrape interval over the window, when its
    // first scrape was looked for within the window alone).
    for node in from_prom["nodes"].as_array().expect("nodes") {
        assert!(
            node["rates_over_seconds"].is_null(),
            "a node scraped for longer than the window read as young: {node}"
        );
    }
    let from_proxy = json(&api.plugin(&["top", "--interval", "2s", "-o", "json"]));
    let (p, x) = (rows(&from_prom), rows(&from_proxy));
    assert_eq!(p.keys().collect::<Vec<_>>(), x.keys().collect::<Vec<_>>());
    let growing = Growing::recorded(1.0);
    let mut compared = 0;
    for (key, prom_row) in &p {
        let proxy_row = &x[key];
        for field in [
            "alloc_per_second",
            "negative_per_second",
            "positive_per_second",
        ] {
            let (a, b) = (
                prom_row[field].as_f64().expect(field),
                proxy_row[field].as_f64().expect(field),
            );
            assert!(
                close(a, b, 0.1),
                "{key:?} {field}: prometheus {a}, proxy {b}"
            );
        }
        for field in ["live", "live_negative", "live_bytes"] {
            assert_eq!(prom_row[field], proxy_row[field], "{key:?} {field}");
        }
        if key.2 == "mysql-0" {
            // The rate the fixture's counters were given, times the node's scale.
            let scale = if key.0 == "node-b" { NODE_B_SCALE } else { 1.0 };
            let expected = scale
                * growing.rate(
                    r#"dentry_negative_total{container="mysql",namespace="prod",pod="mysql-0"}"#,
                );
            let got = prom_row["negative_per_second"].as_f64().expect("rate");
            assert!(
                expected > 100.0 && close(got, expected, 0.1),
                "{got} vs {expected}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 2, "mysql-0 on both nodes: {p:?}");
    let nodes = |v: &Value| {
        v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                format!(
                    "{} {} {} {}",
                    n["node"], n["dentries"], n["cache_bytes"], n["features_off"]
                )
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(nodes(&from_prom), nodes(&from_proxy));
    assert!(
        nodes(&from_prom)
            .iter()
            .any(|n| n.starts_with("\"node-b\"") && n.contains(NODE_B_LACKS)),
        "{:?}",
        nodes(&from_prom)
    );
}

/// Right after Prometheus starts scraping the tracers, their series are younger than the
/// rate window: `rate()` spreads the increase over the whole window (about 10 s of samples
/// in 2m read as a twelfth of the rate). `top` computes over the seconds that were scraped
/// and says so on the node line.
#[test]
fn top_from_prometheus_is_right_before_the_rate_window_is_full() {
    let api = fleet();
    let prom = Prometheus::scraping(&api, &TRACERS, "1s");
    scraped(&prom);
    let top = |output: &str| {
        api.plugin(&[
            "top",
            "--prometheus",
            &prom.url,
            "--rate-window",
            "2m",
            "-o",
            output,
        ])
    };
    let v = json(&top("json"));
    let growing = Growing::recorded(1.0);
    let expected =
        growing.rate(r#"dentry_negative_total{container="mysql",namespace="prod",pod="mysql-0"}"#);
    let mut compared = 0;
    for (key, row) in rows(&v) {
        if key.2 != "mysql-0" {
            continue;
        }
        let scale = if key.0 == "node-b" { NODE_B_SCALE } else { 1.0 };
        let got = row["negative_per_second"].as_f64().expect("rate");
        assert!(
            close(got, scale * expected, 0.2),
            "{key:?}: {got}/s, growing at {}/s",
            scale * expected
        );
        compared += 1;
    }
    assert_eq!(compared, 2, "mysql-0 on both nodes: {v}");
    for n in v["nodes"].as_array().expect("nodes") {
        let secs = n["rates_over_seconds"].as_f64().unwrap_or_default();
        assert!((5.0..120.0).contains(&secs), "{n}");
    }
    let out = top("table");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .filter(|l| l.starts_with("node ") && l.contains("Prometheus has scraped it"))
            .count()
            == TRACERS.len(),
        "{table}"
    );
}

#[test]
fn top_from_prometheus_selects_like_the_proxy_path_and_reaches_a_service() {
    let api = fleet();
    let prom = Prometheus::scraping(&api, &TRACERS, "1s");
    api.state()
        .services
        .insert("monitoring/prometheus:9090".into(), prom.url.clone());
    scraped(&prom);
    let top = |args: &[&str]| {
        let mut all = vec![
            "top",
            "--prometheus",
            &prom.url,
            "--rate-window",
            "5s",
            "-o",
            "json",
        ];
        all.extend_from_slice(args);
        rows(&json(&api.plugin(&all)))
    };
    let pods = |r: &BTreeMap<(String, String, String, String), Value>| {
        r.keys()
            .map(|k| format!("{}/{}/{}", k.0, k.1, k.2))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pods(&top(&["-n", "prod", "-l", "app=mysql"])),
        ["node-a/prod/mysql-0", "node-b/prod/mysql-0"]
    );
    assert_eq!(
        pods(&top(&["pod/nginx-1", "-n", "web"])),
        ["node-a/web/nginx-1", "node-b/web/nginx-1"]
    );
    let b = top(&["--node", "node-b"]);
    assert!(!b.is_empty() && b.keys().all(|k| k.0 == "node-b"), "{b:?}");
    assert!(
        pods(&top(&["-n", "web"]))
            .iter()
            .all(|p| p.contains("/web/"))
    );
    let via_service = rows(&json(&api.plugin(&[
        "top",
        "--prometheus-service",
        "monitoring/prometheus:9090",
        "--rate-window",
        "5s",
        "-o",
        "json",
    ])));
    assert_eq!(
        via_service.keys().collect::<Vec<_>>(),
        top(&[]).keys().collect::<Vec<_>>()
    );
    assert!(
        api.state().calls.iter().any(|c| c.starts_with(
            "GET /api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query"
        )),
        "the service proxy was used"
    );
    let table = api.plugin(&["top", "--prometheus", &prom.url, "--rate-window", "5s"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success() && text.contains("MEMORY") && text.contains("node node-a:"),
        "{text}"
    );
}

/// Runs the plugin; (exit code, stderr).
fn fails(api: &FakeApi, args: &[&str]) -> (i32, String) {
    let out = api.plugin(args);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn top_from_prometheus_says_what_is_missing_and_the_fix() {
    let api = fleet();
    // A DaemonSet pod that is gone: Prometheus scrapes it and fails (up == 0).
    let down = Prometheus::scraping(&api, &[("dentry-tracer-gone", "node-c")], "1s");
    down.wait_for(r#"up{job="dentry-tracer"} == 0"#, 1);
    let (code, line) = fails(&api, &["top", "--prometheus", &down.url]);
    assert!(code == 6 && line.contains("up == 0"), "{code}: {line}");
    // A Prometheus with no tracer job at all.
    let bare = Prometheus::start("global: {scrape_interval: 1s}\n");
    let (code, line) = fails(&api, &["top", "--prometheus", &bare.url]);
    assert!(
        code == 6 && line.contains("podmonitor.yaml"),
        "{code}: {line}"
    );
    let (code, line) = fails(&api, &["top", "--prometheus", "http://127.0.0.1:1"]);
    assert!(
        code == 4 && line.contains("cannot query Prometheus"),
        "{code}: {line}"
    );
    let (code, line) = fails(&api, &["top", "--prometheus", "https://prom.example"]);
    assert!(
        code == 2 && line.contains("--prometheus-service"),
        "{code}: {line}"
    );
    let (code, line) = fails(
        &api,
        &["top", "--prometheus-service", "monitoring/nothing:9090"],
    );
    assert!(code == 1 && line.contains("no endpoints"), "{code}: {line}");
    let out = api.plugin(&["top", "--prometheus-service", "prometheus:9090"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAMESPACE/NAME:PORT"));
}

/// `$labels.X` an alert's annotations use.
fn labels_used(rule: &Value) -> Vec<String> {
    let text = rule["annotations"].to_string();
    text.split("$labels.")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_server_evaluates_every_alert_on_the_tracers_series() {
    let api = fleet();
    let prom = Prometheus::scraping(&api, &TRACERS, "1s");
    scraped(&prom);
    let rules = yaml("prometheus/rules.yaml");
    let mut checked = 0;
    for rule in rules["groups"][0]["rules"].as_array().expect("rules") {
        let expr = rule["expr"].as_str().expect("expr");
        // The series the alert compares with its threshold: they must exist for these
        // tracers and carry the labels its annotations name.
        let (series, _) = expr
            .rsplit_once(" > ")
            .or_else(|| expr.rsplit_once(" == "))
            .unwrap_or_else(|| panic!("{expr}: no threshold"));
        let found = prom.wait_for(series, 1);
        for label in labels_used(rule) {
            assert!(
                found
                    .iter()
                    .all(|s| s.labels.get(&label).is_some_and(|v| !v.is_empty())),
                "{}: {series} lacks {label}: {found:?}",
                rule["alert"]
            );
        }
        checked += 1;
    }
    assert_eq!(checked, alerts(&rules).len());
    // The server runs the rule group itself: every rule healthy, and the one these tracers
    // cross (mysql-0's negative rate) pending, for mysql-0 only.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = prom.get("/api/v1/rules");
        let all: Vec<&Value> = v["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let healthy = all.len() == checked && all.iter().all(|r| r["health"] == "ok");
        let pending: Vec<String> = prom.get("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{} {}",
                    a["labels"]["alertname"].as_str().unwrap_or(""),
                    a["labels"]["pod"].as_str().unwrap_or("")
                )
            })
            .collect();
        if healthy && pending == ["DentryNegativeLookupsHigh mysql-0"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rules {all:?}; alerts {pending:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn the_server_answers_every_dashboard_panel() {
    let api = fleet();
    let prom = Prometheus::scraping(&api, &TRACERS, "1s");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/dentry-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("dashboard json");
    scraped(&prom);
    let panels = dashboard["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for topic in [
        "allocations",
        "Negative dentries",
        "Negative share",
        "memory",
        "dentry-state",
        "Reclaim",
        "dropped",
        "Live",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(topic)),
            "no panel on {topic}: {titles:?}"
        );
    }
    let mut queries = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            // As Grafana sends it with every node and namespace selected.
            let expr = target["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "5s")
                .replace("$node", ".*")
                .replace("$namespace", ".*");
            let found = prom.wait_for(&expr, 1);
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            for label in legend
                .split("{{")
                .skip(1)
                .filter_map(|l| l.split("}}").next())
            {
                assert!(
                    found.iter().all(|s| s.labels.contains_key(label)),
                    "{}: {expr} lacks {label}",
                    panel["title"]
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= panels.len());
    // The node and namespace variables list what the tracers report.
    let nodes = prom.wait_for("count by (node) (dentry_count)", 2);
    assert_eq!(nodes.len(), TRACERS.len());
}

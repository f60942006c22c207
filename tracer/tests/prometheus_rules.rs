//! The alerts in deploy/prometheus/rules.yaml: Debian's promtool checks them and runs their
//! unit tests (rules.test.yaml), every alert has one, the Prometheus Operator's copy
//! (deploy/examples/prometheusrule.yaml) says the same, and the PodMonitor scrapes the
//! DaemonSet's pods and labels each series with its node.
use std::{path::PathBuf, process::Command};

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
/// them (with the rules file where the snippet says to put it). Debian builds Prometheus
/// without Kubernetes service discovery, so its promtool would refuse `kubernetes_sd_configs`;
/// the test swaps it for a static target and checks everything else, relabelings included.
#[test]
fn the_documented_scrape_config_is_valid() {
    let doc = std::fs::read_to_string(deploy().join("../docs/deploy.md")).expect("docs/deploy.md");
    let snippet = doc
        .split("```yaml\n")
        .find(|block| block.starts_with("scrape_configs:"))
        .and_then(|block| block.split("```").next())
        .expect("a scrape_configs block in docs/deploy.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = deploy().join("prometheus/rules.yaml");
    let config = snippet.replace(
        "/etc/prometheus/dentry-rules.yaml",
        &rules.display().to_string(),
    );
    assert_ne!(config, snippet, "the snippet names the rules file");
    let sd = "    kubernetes_sd_configs:\n      - role: pod\n        namespaces: {names: [dentry-monitor]}\n";
    assert!(config.contains(sd), "{config}");
    let config = config.replace(
        sd,
        "    static_configs:\n      - targets: ['127.0.0.1:9090']\n",
    );
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

//! deploy/ as `kubectl apply -f deploy/` will see it: every manifest parses into the real
//! Kubernetes types, says what the plugin and Prometheus rely on (labels, ports, args the
//! tracer accepts), and the real kubectl reads every file client-side.
use std::{collections::BTreeMap, path::PathBuf, process::Command};

use clap::Parser as _;
use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Namespace, Service, ServiceAccount},
    rbac::v1::ClusterRole,
};
use serde::Deserialize as _;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every YAML document under deploy/ (not examples/), as (file, kind, value).
fn documents() -> Vec<(String, String, serde_json::Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            docs.push((file.display().to_string(), kind, value));
        }
    }
    docs
}

fn one<T: serde::de::DeserializeOwned>(kind: &str) -> T {
    let docs: Vec<_> = documents()
        .into_iter()
        .filter(|(_, k, _)| k == kind)
        .collect();
    assert_eq!(docs.len(), 1, "exactly one {kind} in deploy/");
    serde_json::from_value(docs[0].2.clone())
        .unwrap_or_else(|e| panic!("{kind} in {}: {e}", docs[0].0))
}

#[test]
fn every_manifest_is_a_known_kubernetes_object() {
    let docs = documents();
    let kinds: Vec<&str> = docs.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "DaemonSet",
            "Service"
        ],
        "apply order"
    );
    // Typed parses catch misspelt fields' types and wrong nesting.
    let _: Namespace = one("Namespace");
    let _: ServiceAccount = one("ServiceAccount");
    let _: ClusterRole = one("ClusterRole");
    let _: DaemonSet = one("DaemonSet");
    let _: Service = one("Service");
}

#[test]
fn the_namespace_admits_privileged_pods() {
    let ns: Namespace = one("Namespace");
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("privileged")
    );
}

#[test]
fn the_daemonset_runs_the_tracer_as_documented() {
    let ds: DaemonSet = one("DaemonSet");
    let spec = ds.spec;
    let template_labels = spec
        .template
        .metadata
        .clone()
        .and_then(|m| m.labels)
        .unwrap_or_default();
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    for (k, v) in &selector {
        assert_eq!(
            template_labels.get(k),
            Some(v),
            "selector {k} must match the pod template"
        );
    }
    // The plugin finds DaemonSet pods by these labels.
    assert_eq!(
        template_labels
            .get("app.kubernetes.io/name")
            .map(String::as_str),
        Some("dentry-tracer")
    );
    assert_eq!(
        template_labels
            .get("app.kubernetes.io/component")
            .map(String::as_str),
        Some("daemonset")
    );
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.host_pid, Some(true));
    assert!(
        pod.tolerations
            .unwrap_or_default()
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none())
    );
    let c = &pod.containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some(kubectl_dentry::DEFAULT_IMAGE),
        "the plugin's default image"
    );
    let port = c.ports.clone().unwrap_or_default();
    assert!(
        port.iter()
            .any(|p| p.name.as_deref() == Some("metrics") && p.container_port == 9090)
    );
    let sc = c.security_context.clone().expect("securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_ne!(
        sc.privileged,
        Some(true),
        "capabilities instead of privileged"
    );
    let caps = sc.capabilities.and_then(|c| c.add).unwrap_or_default();
    // Exactly what the tracer needs on every supported kernel (the set the VM measures).
    assert_eq!(caps, dentry_common::tracer_capabilities(None), "{caps:?}");

    // The args are flags the tracer accepts, with tracing off by default.
    let args = c.args.clone().unwrap_or_default();
    let parsed =
        tracer::cli::Args::try_parse_from(std::iter::once("tracer".to_owned()).chain(args.clone()))
            .unwrap_or_else(|e| panic!("the tracer rejects the DaemonSet's args {args:?}: {e}"));
    assert!(!parsed.trace_enabled);
    assert_eq!(
        tracer::serve::http::parse_listen(&parsed.listen).map(|a| a.port()),
        Ok(9090)
    );

    // Every path the args name is a mounted host path: cgroup2 tree and the trace directory.
    let mounts: BTreeMap<String, String> = c
        .volume_mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.mount_path, m.name))
        .collect();
    let host_paths: BTreeMap<String, String> = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| Some((v.name, v.host_path?.path)))
        .collect();
    for (arg_path, host) in [
        (parsed.cgroup.display().to_string(), "/sys/fs/cgroup"),
        (
            parsed.trace_dir.display().to_string(),
            "/var/log/dentry-monitor",
        ),
        (parsed.pods_log_dir.display().to_string(), "/var/log/pods"),
        (
            parsed.containers_log_dir.display().to_string(),
            "/var/log/containers",
        ),
    ] {
        let volume = mounts
            .get(&arg_path)
            .unwrap_or_else(|| panic!("nothing mounted at {arg_path}"));
        assert_eq!(
            host_paths.get(volume).map(String::as_str),
            Some(host),
            "{arg_path}"
        );
    }
    // The CRI sockets are the host's, seen through the read-only /run mount.
    let cri = parsed.cri_sockets();
    assert!(!cri.is_empty());
    for socket in cri {
        let rest = socket
            .strip_prefix("/host/run")
            .unwrap_or_else(|_| panic!("{} is not under /host/run", socket.display()));
        assert!(!rest.as_os_str().is_empty());
    }
    let run = mounts.get("/host/run").expect("/host/run mounted");
    assert_eq!(host_paths.get(run).map(String::as_str), Some("/run"));
}

#[test]
fn the_service_is_scraped_and_selects_the_daemonset() {
    let svc: Service = one("Service");
    let ann = svc.metadata.annotations.unwrap_or_default();
    assert_eq!(
        ann.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        ann.get("prometheus.io/port").map(String::as_str),
        Some("9090")
    );
    let spec = svc.spec.expect("spec");
    let ds: DaemonSet = one("DaemonSet");
    let template_labels = ds
        .spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .unwrap_or_default();
    for (k, v) in spec.selector.unwrap_or_default() {
        assert_eq!(template_labels.get(&k), Some(&v), "service selector {k}");
    }
    let ports = spec.ports.unwrap_or_default();
    assert!(
        ports
            .iter()
            .any(|p| p.port == 9090 && p.name.as_deref() == Some("metrics"))
    );
}

#[test]
fn the_plugin_role_grants_what_the_plugin_uses() {
    let role: ClusterRole = one("ClusterRole");
    let rules = role.rules.unwrap_or_default();
    let allows = |resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r.resources
                .clone()
                .unwrap_or_default()
                .iter()
                .any(|x| x == resource)
                && r.verbs.iter().any(|v| v == verb)
        })
    };
    for (resource, verb) in [
        ("pods", "get"),
        ("pods", "list"),
        ("pods", "watch"),
        ("pods", "create"),
        ("pods", "delete"),
        ("pods", "patch"),
        ("deployments", "get"),
        ("statefulsets", "get"),
        ("daemonsets", "get"),
        ("replicasets", "get"),
        ("jobs", "get"),
        ("pods/log", "get"),
        ("pods/proxy", "get"),
        ("events", "list"),
        ("events", "watch"),
        ("nodes", "get"),
        ("nodes", "list"),
    ] {
        assert!(
            allows(resource, verb),
            "the plugin needs {verb} on {resource}"
        );
    }
}

#[test]
fn the_servicemonitor_example_matches_the_service() {
    let text = std::fs::read_to_string(deploy_dir().join("examples/servicemonitor.yaml"))
        .expect("example");
    let sm: serde_json::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    assert_eq!(sm["kind"], "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let svc: Service = one("Service");
    let labels = svc.metadata.labels.unwrap_or_default();
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            labels.get(k).map(String::as_str),
            v.as_str(),
            "selector {k}"
        );
    }
}

#[test]
fn real_kubectl_reads_every_file_client_side() {
    let kubectl = xtask::setup::kubectl().expect("kubectl from PyPI");
    for target in [deploy_dir(), deploy_dir().join("examples")] {
        let out = Command::new(&kubectl)
            .args(["label", "--local", "-o", "name", "-f"])
            .arg(&target)
            .arg("checked=true")
            .output()
            .expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.trim().is_empty(), "{}", target.display());
    }
}

//! `kubectl dentry cleanup` against the in-process API server: the exact calls, the output, and
//! the one-line errors with their exit codes.
mod common;

use common::{FakeApi, TRACER_LABELS, pod};

fn cluster() -> FakeApi {
    FakeApi::start(vec![
        pod("prod", "mysql-0", &[("app", "mysql")]),
        pod("prod", "dentry-trace-mysql-0-abcde", TRACER_LABELS),
        pod("prod", "dentry-top-node-a-fghij", TRACER_LABELS),
        pod("kube-system", "dentry-trace-coredns-klmno", TRACER_LABELS),
    ])
}

const SELECTOR: &str = "app.kubernetes.io/managed-by=kubectl-dentry";

#[test]
fn deletes_only_its_own_pods_in_the_contexts_namespace() {
    let api = cluster();
    let out = api.plugin(&["cleanup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 tracer pod(s) deleted in namespace prod\n"
    );
    assert_eq!(
        api.calls(),
        [
            format!("GET /api/v1/namespaces/prod/pods?{SELECTOR}"),
            "DELETE /api/v1/namespaces/prod/pods/dentry-trace-mysql-0-abcde".to_owned(),
            "DELETE /api/v1/namespaces/prod/pods/dentry-top-node-a-fghij".to_owned(),
        ]
    );
    let left: Vec<String> = api
        .state()
        .pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(left, ["mysql-0", "dentry-trace-coredns-klmno"]);
}

#[test]
fn all_namespaces_and_explicit_namespace() {
    let api = cluster();
    let out = api.plugin(&["cleanup", "-A"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3 tracer pod(s) deleted across all namespaces\n"
    );
    assert_eq!(api.calls()[0], format!("GET /api/v1/pods?{SELECTOR}"));

    let api = cluster();
    let out = api.plugin(&["cleanup", "-n", "kube-system"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1 tracer pod(s) deleted in namespace kube-system\n"
    );
}

#[test]
fn forbidden_names_verb_resource_and_the_rbac() {
    let api = cluster();
    api.state().forbid_list = true;
    let out = api.plugin(&["cleanup"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("kubectl dentry: forbidden: cannot list pods in namespace prod:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("deploy/02-rbac-plugin-user.yaml"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_api_server_and_a_bad_kubeconfig_say_so() {
    // A port nothing listens on.
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let kubeconfig = common::kubeconfig_for(&format!("http://127.0.0.1:{port}"), dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("cleanup")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("the API server is unreachable"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dentry"))
        .args(["--kubeconfig", "/nonexistent/kubeconfig", "cleanup"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot load the kubeconfig") && stderr.contains("/nonexistent/kubeconfig"),
        "{stderr}"
    );
}

#[test]
fn completion_version_and_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_kubectl-dentry");
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(bin)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("cleanup"),
            "{shell}"
        );
    }
    let out = std::process::Command::new(bin)
        .arg("version")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("kubectl-dentry {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        ["platform linux/", "platform darwin/"]
            .iter()
            .any(|p| lines[1].starts_with(p)),
        "{stdout}"
    );
    assert!(lines[2].starts_with("default tracer image ghcr.io/kubectl-dentry/tracer:"));
    let out = std::process::Command::new(bin)
        .arg("frobnicate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn version_names_the_tracer_images_running_in_the_cluster() {
    let mut old = pod(
        "dentry-monitor",
        "dentry-tracer-ds2",
        &[("app.kubernetes.io/name", "dentry-tracer")],
    );
    if let Some(spec) = old.spec.as_mut() {
        spec.containers[0].image = Some("ghcr.io/kubectl-dentry/tracer:0.0.9".into());
    }
    let api = FakeApi::start(vec![
        pod(
            "dentry-monitor",
            "dentry-tracer-ds1",
            &[("app.kubernetes.io/name", "dentry-tracer")],
        ),
        old,
    ]);
    let out = api.plugin(&["version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        stdout.contains("tracer image in the cluster x (1 pod(s))"),
        "{stdout}"
    );
    // Another release's tracer: one warning line, naming both versions.
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("0.0.9") && warnings[0].contains(env!("CARGO_PKG_VERSION")),
        "{stderr}"
    );
}

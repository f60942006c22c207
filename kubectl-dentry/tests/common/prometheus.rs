//! A real Prometheus server (Debian's package, which `cargo xtask setup` installs) on
//! 127.0.0.1, run with the scrape job of docs/deploy.md and the rules of deploy/prometheus,
//! scraping the DaemonSet's tracer pods through the in-process API server's pod proxy.
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kubectl_dentry::prometheus::{Series, Server};

use super::FakeApi;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The plain-Prometheus scrape job docs/deploy.md gives (its ```yaml block starting
/// `scrape_configs:`).
pub fn documented_scrape_config() -> String {
    let doc = std::fs::read_to_string(repo().join("docs/deploy.md")).expect("docs/deploy.md");
    doc.split("```yaml\n")
        .find(|block| block.starts_with("scrape_configs:"))
        .and_then(|block| block.split("```").next())
        .expect("a scrape_configs block in docs/deploy.md")
        .to_owned()
}

/// The documented job's Kubernetes service discovery, which Debian builds Prometheus without.
pub const KUBERNETES_SD: &str = "    kubernetes_sd_configs:\n      - role: pod\n        namespaces: {names: [dentry-monitor]}\n";

/// The documented config made runnable here: the rules file where the snippet says, and the
/// service discovery replaced by static targets carrying the labels Kubernetes discovery
/// would give the DaemonSet's pods (`__meta_kubernetes_pod_*`), so the documented
/// relabelings run as written. `pods`: (name, node) in dentry-monitor, reached at
/// `address` through the pod proxy; `interval` replaces the documented scrape interval.
pub fn runnable_config(address: &str, pods: &[(&str, &str)], interval: &str) -> String {
    let snippet = documented_scrape_config();
    let rules = repo().join("deploy/prometheus/rules.yaml");
    let config = snippet.replace(
        "/etc/prometheus/dentry-rules.yaml",
        &rules.display().to_string(),
    );
    assert_ne!(config, snippet, "the snippet names the rules file");
    assert!(config.contains(KUBERNETES_SD), "{config}");
    assert!(config.contains("scrape_interval: 30s"), "{config}");
    let mut targets = String::from("    static_configs:\n");
    for (pod, node) in pods {
        targets.push_str(&format!(
            "      - targets: ['{address}']\n        labels:\n          \
             __meta_kubernetes_pod_label_app_kubernetes_io_name: dentry-tracer\n          \
             __meta_kubernetes_pod_container_port_name: metrics\n          \
             __meta_kubernetes_pod_node_name: {node}\n          \
             __metrics_path__: /api/v1/namespaces/dentry-monitor/pods/{pod}:9090/proxy/metrics\n"
        ));
    }
    format!(
        "global:\n  evaluation_interval: {interval}\n{}",
        config.replace(KUBERNETES_SD, &targets).replace(
            "scrape_interval: 30s",
            &format!("scrape_interval: {interval}")
        )
    )
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` with `config` and waits until it is ready.
    pub fn start(config: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).expect("config");
        // A free port: the kernel's pick, released for the server to take.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("prometheus runs (cargo xtask setup installs the prometheus package)");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while block_on(kubectl_dentry::http_get::get_url(
            "ready",
            &format!("{}/-/ready", p.url),
        ))
        .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "prometheus did not get ready in 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// One scraping `pods` (name, node) behind `api` every `interval`, with the project's
    /// scrape job and rules.
    pub fn scraping(api: &FakeApi, pods: &[(&str, &str)], interval: &str) -> Prometheus {
        Prometheus::start(&runnable_config(&api.addr.to_string(), pods, interval))
    }

    /// Evaluates an instant query now.
    pub fn query(&self, promql: &str) -> Result<Vec<Series>, String> {
        block_on(Server::Url(self.url.clone()).query(promql)).map_err(|e| e.to_string())
    }

    /// How long the server takes to answer `promql` (the raw answer, unparsed).
    pub fn answer_time(&self, promql: &str) -> Duration {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", promql)
            .finish();
        let start = Instant::now();
        block_on(kubectl_dentry::http_get::get_url(
            "api",
            &format!("{}/api/v1/query?{query}", self.url),
        ))
        .expect("prometheus answers");
        start.elapsed()
    }

    /// GETs an API path (e.g. `/api/v1/rules`) as JSON.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let bytes = block_on(kubectl_dentry::http_get::get_url(
            "api",
            &format!("{}{path}", self.url),
        ))
        .expect("prometheus answers");
        serde_json::from_slice(&bytes).expect("json")
    }

    /// Waits (up to 60 s) until `promql` returns at least `n` series.
    pub fn wait_for(&self, promql: &str, n: usize) -> Vec<Series> {
        self.wait_for_within(promql, n, Duration::from_secs(60))
    }

    /// Waits (up to `limit`) until `promql` returns at least `n` series.
    pub fn wait_for_within(&self, promql: &str, n: usize, limit: Duration) -> Vec<Series> {
        let deadline = Instant::now() + limit;
        loop {
            match self.query(promql) {
                Ok(v) if v.len() >= n => return v,
                other => assert!(
                    Instant::now() < deadline,
                    "{promql}: fewer than {n} series after {limit:?}: {}",
                    match other {
                        Ok(v) => format!("{} series", v.len()),
                        Err(e) => e,
                    }
                ),
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The tracer image as users get it: `cargo xtask image`'s OCI archive is reproducible, holds
//! one index with a linux/amd64 and a linux/arm64 manifest whose configs have the entrypoint,
//! user and labels and whose layers hold the tracer and no shell, and a real containerd
//! (Debian's, started here on a private socket) imports it, resolves both platforms and runs
//! the tracer from it.
use std::{
    collections::BTreeMap,
    io::Read as _,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use serde_json::Value;
use xtask::{oci, release::VERSION};

/// The archive's files by name.
fn files(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).expect("archive"));
    tar.entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            (name, data)
        })
        .collect()
}

fn blob<'a>(files: &'a BTreeMap<String, Vec<u8>>, descriptor: &Value) -> &'a [u8] {
    let digest = descriptor["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    let data = files
        .get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("no blob {digest}"));
    assert_eq!(
        xtask::release::sha256_hex(data),
        hex,
        "blob content is its digest"
    );
    assert_eq!(descriptor["size"], data.len(), "{digest} size");
    data
}

fn json(data: &[u8]) -> Value {
    serde_json::from_slice(data).expect("json")
}

struct Containerd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Containerd {
    /// containerd on its own root, state and socket, with only what `ctr` needs (no CRI).
    fn start() -> Containerd {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n",
                root = dir.path().join("root").display(),
                state = dir.path().join("state").display(),
                sock = socket.display(),
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.path().join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("containerd (Debian's containerd package)");
        let started = Instant::now();
        let mut c = Containerd {
            child,
            socket,
            _dir: dir,
        };
        while !c.ctr(&["version"]).0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "containerd did not answer: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr` against this containerd: (success, stdout + stderr).
    fn ctr(&mut self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "dentry-test"])
            .args(args)
            .output()
            .expect("ctr");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_oci_image_is_reproducible_complete_and_runs_in_containerd() {
    xtask::setup::apt_packages(&["containerd"]).expect("containerd");
    xtask::setup::ebpf_toolchain().expect("toolchain");
    xtask::setup::cross_tools().expect("cross tools");
    let first = tempfile::tempdir().expect("tempdir");
    let second = tempfile::tempdir().expect("tempdir");
    let (archive, digest) = oci::write(first.path()).expect("image");
    let (again, digest_again) = oci::write(second.path()).expect("image again");
    assert_eq!(
        digest, digest_again,
        "the same tracers give the same digest"
    );
    assert_eq!(
        std::fs::read(&archive).expect("archive"),
        std::fs::read(&again).expect("archive"),
        "byte for byte"
    );
    assert_eq!(
        archive.file_name().and_then(|n| n.to_str()),
        Some(format!("tracer-{VERSION}.oci.tar").as_str())
    );

    // The layout: one index, naming both platforms.
    let files = files(&archive);
    assert_eq!(json(&files["oci-layout"])["imageLayoutVersion"], "1.0.0");
    let top = json(&files["index.json"]);
    let entries = top["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1, "{top}");
    assert_eq!(entries[0]["mediaType"], oci::INDEX);
    assert_eq!(entries[0]["digest"], digest.as_str());
    assert_eq!(
        entries[0]["annotations"]["io.containerd.image.name"],
        oci::reference()
    );
    let index = json(blob(&files, &entries[0]));
    let manifests = index["manifests"].as_array().expect("manifests");
    let mut platforms: Vec<String> = manifests
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"]).replace('"', "")
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    for entry in manifests {
        let arch = entry["platform"]["architecture"].as_str().expect("arch");
        assert_eq!(entry["mediaType"], oci::MANIFEST);
        let manifest = json(blob(&files, entry));
        let config = json(blob(&files, &manifest["config"]));
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/tracer"])
        );
        assert_eq!(config["config"]["User"], "0:0");
        assert!(config["config"]["ExposedPorts"]["9090/tcp"].is_object());
        let labels = &config["config"]["Labels"];
        for label in ["title", "description", "version", "source", "licenses"] {
            assert!(
                labels[format!("org.opencontainers.image.{label}")]
                    .as_str()
                    .is_some_and(|v| !v.is_empty()),
                "{label}"
            );
        }
        assert_eq!(labels["org.opencontainers.image.version"], VERSION);
        assert!(
            config.get("created").is_none(),
            "no creation time: reproducible"
        );
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], oci::LAYER);
        let paths = xtask::release::tar_gz_names(blob(&files, &layers[0])).expect("layer");
        assert!(paths.contains(&"tracer".to_owned()), "{paths:?}");
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("bin") || p.contains("sh")),
            "no shell: {paths:?}"
        );
    }

    // A real containerd imports it, resolves both platforms and runs the tracer from it.
    let mut containerd = Containerd::start();
    let (ok, out) = containerd.ctr(&[
        "images",
        "import",
        "--all-platforms",
        &archive.display().to_string(),
    ]);
    assert!(ok, "import: {out}\n{}", containerd.log());
    let (ok, listed) = containerd.ctr(&["images", "ls"]);
    assert!(ok, "{listed}");
    let line = listed
        .lines()
        .find(|l| l.starts_with(&oci::reference()))
        .unwrap_or_else(|| panic!("{} not listed: {listed}", oci::reference()));
    assert!(
        line.contains("linux/amd64") && line.contains("linux/arm64"),
        "both platforms resolve: {line}"
    );
    assert!(line.contains(&digest), "{line}");
    let (ok, out) = containerd.ctr(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        &oci::reference(),
        "dentry-image-test",
        "/tracer",
        "--version",
    ]);
    assert!(ok, "ctr run: {out}\n{}", containerd.log());
    assert!(out.contains(VERSION), "{out}");
}

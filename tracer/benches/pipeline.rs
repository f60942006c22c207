//! Userspace throughput: ring-buffer records → decode → pattern filter → TSV line → rotated
//! file; and rendering /metrics for 1,000 containers.
use std::{collections::BTreeMap, sync::Arc};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dentry_common::{Counters, EventHeader, FLAG_ALLOCATED, Operation};
use tracer::{
    kernel::features::Features,
    owners::{Owner, Owners, layers::Layers},
    serve::metrics::Metrics,
    trace::{
        events,
        pipeline::{Caps, Pipeline},
        rotate::Rotator,
        tsv,
    },
};

const BATCH: usize = 10_000;

fn records() -> Vec<Vec<u8>> {
    records_on(b"ext4", "")
}

/// The records on a filesystem of type `fs`, below `under` (NUL-separated components, leaf
/// first, as the kernel writes them).
fn records_on(fs: &[u8], under: &str) -> Vec<Vec<u8>> {
    let mut comm = [0u8; 16];
    comm[..6].copy_from_slice(b"mysqld");
    let mut fstype = [0u8; 16];
    fstype[..fs.len()].copy_from_slice(fs);
    (0..BATCH)
        .map(|i| {
            let header = EventHeader {
                ts_ns: 1_000_000 + i as u64,
                cgroup_id: 1000 + (i % 8) as u64,
                pid: 4242,
                // What a lookup storm produces: a failed lookup's record, written as its
                // alloc line and its negative line.
                op: Operation::Negative as u32,
                comm,
                fstype,
                path_len: 0,
                depth: 4,
                flags: FLAG_ALLOCATED,
                _pad: 0,
                count: 0,
            };
            // Leaf first, as the kernel writes it: /var/lib/mysql/db1/#sql-1234_<i>.ibd
            let path = format!("#sql-1234_{i}.ibd\0db1\0mysql\0lib\0var\0{under}");
            events::encode(&header, path.as_bytes())
        })
        .collect()
}

fn owners() -> Arc<Owners> {
    let mut o = Owners::default();
    for id in 1000..1008 {
        o.insert(
            id,
            Owner {
                namespace: "prod".into(),
                pod: "mysql-0".into(),
                container: "mysql".into(),
                pod_uid: "0f3c8d2e-1b4a-4c5d-9e6f-7a8b9c0d1e2f".into(),
            },
        );
    }
    Arc::new(o)
}

fn pipeline(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, patterns) in [
        ("to_file_all", vec![]),
        ("to_file_pattern_matches", vec![".ibd".to_owned()]),
        ("pattern_matches_nothing", vec!["no-such-path".to_owned()]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = Rotator::open(dir.path(), 100 << 20, 3, tsv::HEADER).expect("rotator");
        let mut p = Pipeline::new(patterns, Some(files), false, Caps::default()).expect("pipeline");
        p.owners = owners();
        group.bench_function(name, |b| {
            b.iter(|| {
                for r in &records {
                    p.handle(r);
                }
            })
        });
    }
    // A node's overlay layers (300 containers' rootfs, an upper and three lowers each, on
    // containerd's xfs): records under none of them, and records in one (written at the
    // container's path).
    let dir = tempfile::tempdir().expect("tempdir");
    let mountinfo = dir.path().join("mountinfo");
    std::fs::write(&mountinfo, node_mountinfo(300)).expect("mountinfo");
    let in_layer = records_on(
        b"xfs",
        "fs\u{0}17\u{0}snapshots\u{0}io.containerd.snapshotter.v1.overlayfs\u{0}",
    );
    for (name, records) in [
        ("to_file_all_300_layers", &records),
        ("to_file_in_a_layer", &in_layer),
    ] {
        let files = Rotator::open(dir.path(), 100 << 20, 3, tsv::HEADER).expect("rotator");
        let mut p = Pipeline::new(vec![], Some(files), false, Caps::default()).expect("pipeline");
        p.owners = owners();
        p.layers = Some(Layers::new(mountinfo.clone()));
        group.bench_function(name, |b| {
            b.iter(|| {
                for r in records {
                    p.handle(r);
                }
            })
        });
    }
    group.finish();
}

/// A node's mount table with `containers` rootfs overlays on containerd's xfs.
fn node_mountinfo(containers: usize) -> String {
    let snapshots = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";
    let mut text = "22 1 254:1 / / rw - ext4 /dev/vda1 rw\n\
                    30 22 254:16 / /var/lib/containerd rw - xfs /dev/vdb rw\n"
        .to_owned();
    for c in 0..containers {
        let n = 4 * c;
        text.push_str(&format!(
            "{id} 22 0:{id} / /run/containerd/io.containerd.runtime.v2.task/k8s.io/{c}/rootfs rw - \
             overlay overlay rw,lowerdir={snapshots}/{a}/fs:{snapshots}/{b}/fs:{snapshots}/{d}/fs,\
             upperdir={snapshots}/{n}/fs,workdir={snapshots}/{n}/work\n",
            id = 100 + c,
            a = n + 1,
            b = n + 2,
            d = n + 3,
        ));
    }
    text
}

fn metrics_render(c: &mut Criterion) {
    let mut m = Metrics::new(false, "fentry", &Features::default()).expect("metrics");
    let mut o = Owners::default();
    let mut totals = BTreeMap::new();
    for id in 0..1000u64 {
        o.insert(
            id,
            Owner {
                namespace: format!("ns-{}", id % 20),
                pod: format!("pod-{id}"),
                container: "app".into(),
                pod_uid: String::new(),
            },
        );
        totals.insert(
            id,
            Counters {
                alloc: id * 7,
                positive: id,
                negative: id * 5,
                ..Default::default()
            },
        );
    }
    m.update(&totals, &o, std::time::Instant::now());
    c.bench_function("metrics_render_1000_containers", |b| b.iter(|| m.render()));
}

criterion_group!(benches, pipeline, metrics_render);
criterion_main!(benches);

//! Userspace throughput: ring-buffer records → decode → pattern filter → TSV line → rotated
//! file; and rendering /metrics for 1,000 containers.
use std::{collections::BTreeMap, sync::Arc};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dentry_common::{Counters, EventHeader, FLAG_ALLOCATED, Operation};
use tracer::{
    owners::{Owner, Owners},
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
    let mut comm = [0u8; 16];
    comm[..6].copy_from_slice(b"mysqld");
    let mut fstype = [0u8; 16];
    fstype[..4].copy_from_slice(b"ext4");
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
            let path = format!("#sql-1234_{i}.ibd\0db1\0mysql\0lib\0var\0");
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
    group.finish();
}

fn metrics_render(c: &mut Criterion) {
    let mut m = Metrics::new(false, "fentry").expect("metrics");
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
    m.update(&totals, &o);
    c.bench_function("metrics_render_1000_containers", |b| b.iter(|| m.render()));
}

criterion_group!(benches, pipeline, metrics_render);
criterion_main!(benches);

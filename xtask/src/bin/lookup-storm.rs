//! Benchmark workload run inside the VM: `lookup-storm DIR COUNT` stats COUNT names that do
//! not exist under DIR (creating DIR first) and prints the mean time per lookup;
//! `lookup-storm --reclaim` frees every unused dentry (`drop_caches`) and prints the mean time
//! per dentry freed.
use std::{path::PathBuf, time::Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), count) = (args.next(), args.next()) else {
        eprintln!("usage: lookup-storm DIR COUNT | lookup-storm --reclaim");
        std::process::exit(2);
    };
    if dir == "--reclaim" {
        reclaim();
        return;
    }
    let Some(Ok(count)) = count.map(|c| c.parse::<u32>()) else {
        eprintln!("lookup-storm: COUNT must be a whole number");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("lookup-storm: cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    // Names built up front so the timed loop is only the lookups.
    let names: Vec<PathBuf> = (0..count).map(|i| dir.join(format!("miss-{i}"))).collect();
    let start = Instant::now();
    let mut found = 0u32;
    for name in &names {
        if std::fs::symlink_metadata(name).is_ok() {
            found += 1;
        }
    }
    let elapsed = start.elapsed();
    let per_op = elapsed.as_nanos() / u128::from(count.max(1));
    println!("ns_per_op={per_op} lookups={count} found={found}");
}

/// `nr_dentry` from /proc/sys/fs/dentry-state.
fn dentries() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/dentry-state")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn reclaim() {
    let before = dentries();
    let start = Instant::now();
    if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "2") {
        eprintln!("lookup-storm: writing /proc/sys/vm/drop_caches: {e}");
        std::process::exit(1);
    }
    let elapsed = start.elapsed();
    // RCU frees lag the write a little; the count freed is what the write started.
    let freed = before.saturating_sub(dentries());
    let per_op = elapsed.as_nanos() / u128::from(freed.max(1));
    println!("ns_per_op={per_op} freed={freed}");
}

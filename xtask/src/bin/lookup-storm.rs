//! Benchmark workload run inside the VM: `lookup-storm DIR COUNT` stats COUNT names that do
//! not exist under DIR (creating DIR first) and prints the mean time per lookup.
use std::{path::PathBuf, time::Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: lookup-storm DIR COUNT");
        std::process::exit(2);
    };
    let Ok(count) = count.parse::<u32>() else {
        eprintln!("lookup-storm: COUNT must be a whole number, got {count:?}");
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

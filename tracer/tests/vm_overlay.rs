//! Lookups in a container's overlayfs, on real kernels: each failed lookup leaves a negative
//! dentry in the overlay and one in each layer it searched (the upper and the lower directory,
//! here on one ext4 filesystem mounted at /mnt/ext4). By default the layers' lines carry the
//! container's path, their fstype kept, and the summary counts one directory; with
//! `--host-paths` they carry the path on the layers' filesystem.
use std::time::Duration;

use xtask::{dentry_workload::make_ext4_image, kernel::Kernel, scripts, vm::VmRun};

const LOOKUPS: u64 = 200;

const SCRIPT: &str = r#"
mkdir -p /mnt/ext4 /merged $CG/container
mount -o loop -t ext4 /ext4.img /mnt/ext4 || exit 1
for d in mysql pg; do
  mkdir -p /mnt/ext4/lower/var/lib/$d /mnt/ext4/upper/var/lib/$d
done
mkdir -p /mnt/ext4/work
mount -t overlay overlay \
  -o lowerdir=/mnt/ext4/lower,upperdir=/mnt/ext4/upper,workdir=/mnt/ext4/work /merged || exit 1
grep overlay /proc/1/mountinfo | sed 's/^/@@mountinfo /'

# count VIEW FILE: per (fstype, operation, directory) of the failed lookups' lines.
count() {
  awk -F'\t' -v view="$1" 'NR > 1 && $6 ~ /missing-/ {
    d = $6; sub(/\/[^\/]*$/, "", d); n[$7 " " $5 " " d]++
  } END { for (k in n) print "@@count " view " " k " " n[k] }' "$2"
}

# The container's view (the default), then the host's, each with new names: a name looked
# up before has its negative dentries cached already and allocates nothing.
for view in container host; do
  case $view in
    container) dir=mysql; flag= ;;
    host) dir=pg; flag=--host-paths ;;
  esac
  $TRACER $flag --trace-enabled --stdout --trace-dir /traces-$view \
    --target-cgroup $CG/container > /tmp/$view.tsv 2> /tmp/$view.err &
  T=$!
  wait_attached $T /tmp/$view.err
  run_in container lookups /merged/var/lib/$dir @LOOKUPS@
  i=0
  until [ "$(grep -c "negative.*missing-" /tmp/$view.tsv)" -ge $((3 * @LOOKUPS@)) ] || [ $i -ge 100 ]; do
    sleep 0.2; i=$((i + 1))
  done
  stop_tracer $T $view
  count $view /tmp/$view.tsv
done
"#;

fn check(series: &str) {
    let kernel = Kernel::fetch(series).unwrap_or_else(|e| panic!("kernel {series}: {e:#}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("ext4.img");
    make_ext4_image(&image, 16).expect("mkfs.ext4");
    let script = scripts::script(&SCRIPT.replace("@LOOKUPS@", &LOOKUPS.to_string()), &[]);
    let out = VmRun::new(&kernel, script)
        .tracer()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .module("loop")
        .module("overlay")
        .file("/ext4.img", std::fs::read(&image).expect("image"))
        .timeout(Duration::from_secs(900))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let log = &out.log;
    assert_eq!(out.status, 0, "{series}: the script failed; log:\n{log}");
    let count = |view: &str, fstype: &str, op: &str, dir: &str| -> u64 {
        let key = format!("{view} {fstype} {op} {dir} ");
        out.tagged("count")
            .iter()
            .find_map(|l| l.strip_prefix(&key)?.trim().parse().ok())
            .unwrap_or(0)
    };
    for view in ["container", "host"] {
        assert_eq!(
            out.value(&format!("{view}-exit")),
            Some("0"),
            "{series}: {log}"
        );
    }

    // The container's view: the overlay's own line, and the upper's and the lower's, all at
    // the container's path; nothing at the layers' own paths.
    assert_eq!(
        count("container", "overlay", "negative", "/var/lib/mysql"),
        LOOKUPS,
        "{series}: {log}"
    );
    assert_eq!(
        count("container", "ext4", "negative", "/var/lib/mysql"),
        2 * LOOKUPS,
        "{series}: {log}"
    );
    assert_eq!(
        count("container", "ext4", "alloc", "/var/lib/mysql"),
        2 * LOOKUPS,
        "{series}: {log}"
    );
    let layered: Vec<&str> = out
        .tagged("count")
        .into_iter()
        .filter(|l| l.starts_with("container ") && (l.contains("/upper/") || l.contains("/lower/")))
        .collect();
    assert!(layered.is_empty(), "{series}: {layered:?}");
    // The summary merges the three into one directory.
    let container = out.tagged("container").join("\n");
    let top = container
        .split("top directories of negative lookups:")
        .nth(1)
        .and_then(|t| t.lines().nth(1))
        .unwrap_or_default();
    let words: Vec<&str> = top.split_whitespace().collect();
    assert_eq!(
        words,
        [(3 * LOOKUPS).to_string().as_str(), "/var/lib/mysql"],
        "{series}: {container}"
    );

    // The host's view: each layer at its path on the ext4 filesystem.
    assert_eq!(
        count("host", "overlay", "negative", "/var/lib/pg"),
        LOOKUPS,
        "{series}: {log}"
    );
    for layer in ["/upper", "/lower"] {
        assert_eq!(
            count("host", "ext4", "negative", &format!("{layer}/var/lib/pg")),
            LOOKUPS,
            "{series}: {log}"
        );
    }
}

#[test]
fn overlay_layers_read_as_the_container_sees_them_on_debian_6_1() {
    check("6.1");
}

#[test]
fn overlay_layers_read_as_the_container_sees_them_on_debian_6_12() {
    check("6.12");
}

//! cgroup paths (both cgroup drivers, nested slices) and the kubelet's log directory and file
//! names: any text parses or is refused, and a UID found is a UID.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tracer::owners::{kubelet, kubepath};

fuzz_target!(|text: &str| {
    let ids = kubepath::parse(text);
    if let Some(uid) = &ids.pod_uid {
        assert!(kubepath::is_uid(uid), "{uid:?} from {text:?}");
    }
    let _ = kubelet::parse_pod_dir(text);
    let _ = kubelet::parse_container_log(text);
});

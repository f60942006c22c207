//! What users type: --patterns lists, durations, pod names and workload targets
//! (`deploy/web`, `sts/db`...). Each parses or is one error; a pattern list that parses holds
//! plain, bounded substrings and reads back the same once joined again (what the plugin sends
//! the tracer as --trace-patterns).
#![no_main]
use kubectl_dentry::{args, pods::workload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(patterns) = args::patterns(text) {
        for p in &patterns.0 {
            assert!(!p.is_empty() && !p.contains(',') && !p.chars().any(char::is_control));
            assert!(p.len() <= dentry_common::MAX_PATTERN_LEN);
        }
        let sent = patterns.0.join(",");
        assert_eq!(dentry_common::parse_patterns(&sent).ok(), Some(patterns.0));
    }
    if let Ok(d) = args::duration(text) {
        assert!(d.as_secs() < u64::MAX);
    }
    if let Ok(name) = args::pod(text) {
        assert!(
            !name.is_empty() && !name.contains('/'),
            "{name:?} from {text:?}"
        );
    }
    if let Ok(target) = workload::parse(text) {
        assert!(!target.name.is_empty(), "{text:?}");
    }
});

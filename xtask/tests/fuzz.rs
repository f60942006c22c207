//! Bad input in bulk: every libFuzzer target under `fuzz/` runs for a bounded time from its
//! seed corpus (`cargo xtask fuzz` does the same, for as long as asked). A crash fails with
//! the input that caused it; a target that ran nothing fails too.
use std::time::Duration;

/// Per target in CI: enough for thousands of inputs past the seeds on every target here.
const PER_TARGET: Duration = Duration::from_secs(10);

#[test]
fn every_parser_survives_its_fuzz_target() {
    xtask::fuzz::tools().expect("cargo-fuzz");
    xtask::fuzz::build().expect("fuzz targets build");
    let mut failures = Vec::new();
    for target in xtask::fuzz::TARGETS {
        let report = xtask::fuzz::run(target, PER_TARGET).expect("fuzz run");
        eprintln!(
            "fuzz {}: {} executions, corpus {}",
            report.target, report.executions, report.corpus
        );
        assert!(report.executions > 100, "{report:?}");
        if let Some(input) = report.crash {
            failures.push(format!("{target}: crashed on {}", input.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

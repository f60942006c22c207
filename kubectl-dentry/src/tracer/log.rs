//! Reading a tracer pod's log: the kubelet merges the tracer's stdout (TSV lines, header first)
//! and stderr (progress, warnings, the summary) into one stream, so each line is told apart by
//! its shape. The tracer's contract makes that exact: a trace line has seven tab-separated
//! fields (nine with `--stdout-process`) and starts with the header's first field or an RFC 3339 timestamp; the tracer's own
//! messages never contain a tab.

pub use dentry_common::{LINGER_MARKER, TSV_HEADER as HEADER, TSV_PROCESS_HEADER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Header,
    Event,
    Attached,
    Finished,
    /// Anything else the tracer says (summary, warnings, errors): for stderr.
    Message,
}

pub fn classify(line: &str) -> Line {
    if line == HEADER || line == TSV_PROCESS_HEADER {
        return Line::Header;
    }
    // Seven fields, or nine with the process's (`--stdout-process`).
    let tabs = line.bytes().filter(|&b| b == b'\t').count();
    if (tabs == 6 || tabs == 8) && looks_like_timestamp(line) {
        return Line::Event;
    }
    if dentry_common::attached_mode(line).is_some() {
        return Line::Attached;
    }
    if line.starts_with(LINGER_MARKER) {
        return Line::Finished;
    }
    Line::Message
}

fn looks_like_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
}

/// A routine log line of the tracer (`tracing` at INFO level or below): not what explains a
/// failure.
pub fn is_routine(line: &str) -> bool {
    looks_like_timestamp(line)
        && [" INFO ", " DEBUG ", " TRACE "]
            .iter()
            .any(|level| line.contains(level))
}

/// The attach mode from the tracer's attached line, for progress.
pub use dentry_common::attached_mode as attach_mode;

/// One trace line as a JSON object keyed by the header's names, paths unescaped.
pub fn event_json(line: &str) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (key, field) in HEADER.split('\t').zip(line.split('\t')) {
        let value = match key {
            "cgroup_id" => field
                .parse::<u64>()
                .map_or_else(|_| field.into(), serde_json::Value::from),
            "path" => unescape(field).into(),
            _ => field.into(),
        };
        object.insert(key.to_owned(), value);
    }
    serde_json::Value::Object(object)
}

/// Reverses the tracer's TSV escaping (`\\`, `\t`, `\n`, `\r`).
pub fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("../../tests/fixtures/trace-pod.log");
    const KEPT: &str = include_str!("../../tests/fixtures/trace-pod-kept.log");

    #[test]
    fn a_recorded_tracer_log_splits_into_data_and_messages() {
        let kinds: Vec<Line> = RECORDED.lines().map(classify).collect();
        assert_eq!(kinds.iter().filter(|k| **k == Line::Attached).count(), 1);
        assert_eq!(kinds.iter().filter(|k| **k == Line::Header).count(), 1);
        let events = kinds.iter().filter(|k| **k == Line::Event).count();
        // The summary line says how many events the tracer wrote; the log holds each once.
        let summary = RECORDED
            .lines()
            .find(|l| l.starts_with("summary "))
            .expect("summary");
        let said: usize = summary
            .split(' ')
            .find_map(|f| f.strip_prefix("events="))
            .and_then(|n| n.parse().ok())
            .expect("events=");
        assert_eq!(events, said);
        assert!(
            RECORDED
                .lines()
                .filter(|l| classify(l) == Line::Message)
                .all(|l| !l.contains('\t'))
        );
        assert_eq!(KEPT.lines().map(classify).next_back(), Some(Line::Finished));
        let attached = RECORDED.lines().find(|l| classify(l) == Line::Attached);
        assert_eq!(attached.and_then(attach_mode), Some("fentry"));
    }

    #[test]
    fn json_lines_carry_the_header_names() {
        let v =
            event_json("2026-11-25T22:22:56.515898716Z\tmysql-0\tmysql\t81\talloc\t/a\\tb\ttmpfs");
        assert_eq!(v["pod"], "mysql-0");
        assert_eq!(v["cgroup_id"], 81);
        assert_eq!(v["path"], "/a\tb");
        assert_eq!(unescape("x\\\\y\\n"), "x\\y\n");
    }
}

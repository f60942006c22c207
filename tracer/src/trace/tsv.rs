//! The trace TSV contract: header, RFC 3339 nanosecond UTC timestamps, tab-separated columns,
//! tabs/newlines/backslashes in fields escaped so one event is always one line.
use std::{fmt::Write as _, time::SystemTime};

use crate::trace::events::TraceEvent;

pub const HEADER: &str = dentry_common::TSV_HEADER;

/// Appends one line (with its newline) to `out`; `pod` and `container` may be empty.
pub fn write_line(out: &mut String, ev: &TraceEvent, pod: &str, container: &str) {
    push_timestamp(out, ev.time);
    out.push('\t');
    escape_into(out, pod);
    out.push('\t');
    escape_into(out, container);
    let _ = write!(out, "\t{}\t{}\t", ev.cgroup_id, ev.op.name());
    escape_into(out, &ev.path);
    out.push('\t');
    escape_into(out, &ev.fstype);
    out.push('\n');
}

/// `\` → `\\`, tab → `\t`, newline → `\n`, carriage return → `\r`.
pub fn escape_into(out: &mut String, field: &str) {
    if !field
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(field);
        return;
    }
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

thread_local! {
    /// The formatted date and time of the last whole second seen: events come in time order,
    /// so most lines reuse it and only format their nanoseconds.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

fn push_timestamp(out: &mut String, time: SystemTime) {
    let d = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SECOND.with_borrow_mut(|(secs, text)| {
        if *secs != d.as_secs() {
            let full = rfc3339_nanos(time);
            text.clear();
            text.push_str(&full[..full.len() - 11]); // without ".nnnnnnnnnZ"
            *secs = d.as_secs();
        }
        out.push_str(text);
    });
    let _ = write!(out, ".{:09}Z", d.subsec_nanos());
}

/// `2026-02-13T18:54:13.648795455Z`.
pub fn rfc3339_nanos(time: SystemTime) -> String {
    let d = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dentry_common::Operation;

    use super::*;

    #[test]
    fn timestamps_match_the_reference_format() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_771_008_853, 648_795_455);
        assert_eq!(rfc3339_nanos(t), "2026-02-13T18:54:13.648795455Z");
        assert_eq!(
            rfc3339_nanos(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339_nanos(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn the_cached_second_gives_the_same_text() {
        for t in [1_771_008_853u64, 1_771_008_853, 1_771_008_854, 0] {
            let time = SystemTime::UNIX_EPOCH + Duration::new(t, 7);
            let mut out = String::new();
            push_timestamp(&mut out, time);
            assert_eq!(out, rfc3339_nanos(time));
        }
    }

    #[test]
    fn a_line_has_seven_columns_whatever_the_path_holds() {
        let ev = TraceEvent {
            time: SystemTime::UNIX_EPOCH,
            cgroup_id: 3788,
            pid: 1,
            comm: "x".into(),
            op: Operation::Alloc,
            path: "/a\tb\nc\\d".into(),
            fstype: "ext4".into(),
            ..TraceEvent::default()
        };
        let mut out = String::new();
        write_line(&mut out, &ev, "", "");
        assert!(out.ends_with('\n'));
        assert_eq!(out.matches('\n').count(), 1);
        let cols: Vec<&str> = out.trim_end_matches('\n').split('\t').collect();
        assert_eq!(cols.len(), 7, "{out:?}");
        assert_eq!(cols[3], "3788");
        assert_eq!(cols[4], "alloc");
        assert_eq!(cols[5], "/a\\tb\\nc\\\\d");
        assert_eq!(HEADER.split('\t').count(), 7);
    }
}

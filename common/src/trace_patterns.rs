//! `--trace-patterns` (the tracer) and `--patterns` (the plugin) as one parser, so a pattern the
//! tracer would refuse is refused on the laptop, before a pod is created.
use alloc::{string::String, vec::Vec};
use core::fmt;

/// Longest pattern: a path is at most `PATH_MAX` bytes, so a longer one can never match.
pub const MAX_PATTERN_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    ControlCharacter(String),
    TooLong(usize),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::ControlCharacter(p) => write!(
                f,
                "pattern {p:?} holds a control character: patterns are plain substrings of paths"
            ),
            PatternError::TooLong(n) => write!(
                f,
                "a pattern of {n} bytes can never match: paths are at most {MAX_PATTERN_LEN} bytes"
            ),
        }
    }
}

impl core::error::Error for PatternError {}

/// Comma-separated path substrings, the reference's meaning: an event is kept when its path
/// holds any of them. Empty items are skipped (a trailing comma is harmless); an empty list
/// keeps every event.
pub fn parse_patterns(s: &str) -> Result<Vec<String>, PatternError> {
    let list: Vec<String> = s
        .split(',')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = list.iter().find(|p| p.chars().any(char::is_control)) {
        return Err(PatternError::ControlCharacter(bad.clone()));
    }
    if let Some(long) = list.iter().find(|p| p.len() > MAX_PATTERN_LEN) {
        return Err(PatternError::TooLong(long.len()));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn the_reference_meaning() {
        assert_eq!(
            parse_patterns(".ibd,#sql,.frm").unwrap(),
            [".ibd", "#sql", ".frm"]
        );
        assert!(parse_patterns("").unwrap().is_empty());
        assert_eq!(parse_patterns(".ibd,,").unwrap(), [".ibd"]);
    }

    #[test]
    fn bad_patterns_say_why() {
        let e = parse_patterns("a,\tb").unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
        let long = "x".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(parse_patterns(&long), Err(PatternError::TooLong(4097)));
    }
}

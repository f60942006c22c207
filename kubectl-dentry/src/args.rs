//! Values that more than one command takes (pods, durations, patterns) and how tracer pods are
//! started: below both the command line (`cli`) and the commands (`cmd`), which use them.
use std::time::Duration;

/// How tracer pods are started (trace, top).
#[derive(Debug, Clone, clap::Args)]
pub struct TracerArgs {
    /// The tracer image.
    #[arg(long, env = "KUBECTL_DENTRY_IMAGE", default_value = crate::DEFAULT_IMAGE)]
    pub image: String,
    /// Namespace for tracer pods (default: the target's); it must admit the PodSecurity
    /// `privileged` level (hostPID and hostPath volumes need it even without --privileged).
    #[arg(long, value_name = "NAMESPACE")]
    pub tracer_namespace: Option<String>,
    /// How long a tracer pod may take to start (pull, schedule, attach).
    #[arg(long, default_value = "2m", value_parser = duration)]
    pub timeout: Duration,
    /// Run tracer pods privileged instead of with capabilities (BPF, PERFMON, SYSLOG, and
    /// SYS_RESOURCE before kernel 5.11), for runtimes or policies that refuse BPF to them.
    #[arg(long)]
    pub privileged: bool,
}

/// `pod/NAME` (or `pods/`, `po/`) or `NAME` → `NAME`; other kinds are refused.
pub fn pod(arg: &str) -> Result<String, String> {
    match arg.split_once('/') {
        None if !arg.is_empty() => Ok(arg.to_owned()),
        Some(("pod" | "pods" | "po", name)) if !name.is_empty() && !name.contains('/') => {
            Ok(name.to_owned())
        }
        Some((kind, _)) if !kind.is_empty() && !matches!(kind, "pod" | "pods" | "po") => Err(
            format!("this command takes a pod, not {kind} (pass pod/NAME or NAME)"),
        ),
        _ => Err("expected pod/NAME or NAME".into()),
    }
}

pub fn duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{s:?} must be longer than zero")),
        Err(e) => Err(format!(
            "{s:?} is not a duration ({e}); use e.g. 30s, 5m, 1h"
        )),
    }
}

/// Comma-separated substrings (a newtype, so clap takes the list as one value).
#[derive(Debug, Clone)]
pub struct Patterns(pub Vec<String>);

/// The tracer's own parser, so a pattern the tracer would refuse never reaches a pod.
pub fn patterns(s: &str) -> Result<Patterns, String> {
    match dentry_common::parse_patterns(s) {
        Ok(list) if list.is_empty() => Err(format!(
            "{s:?} holds no pattern; give comma-separated substrings, e.g. .ibd,#sql"
        )),
        Ok(list) => Ok(Patterns(list)),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pod_parser_for_every_command() {
        assert_eq!(pod("pod/mysql-0").unwrap(), "mysql-0");
        assert_eq!(pod("mysql-0").unwrap(), "mysql-0");
        assert_eq!(pod("pods/mysql-0").unwrap(), "mysql-0");
        assert_eq!(pod("po/mysql-0").unwrap(), "mysql-0");
        assert!(pod("deploy/mysql").unwrap_err().contains("not deploy"));
        assert!(pod("pod/").is_err());
        assert!(pod("pod/a/b").is_err());
        assert!(pod("").is_err());
    }

    #[test]
    fn patterns_are_the_tracers() {
        assert_eq!(patterns(".ibd,#sql").unwrap().0, [".ibd", "#sql"]);
        assert!(patterns(",").unwrap_err().contains("no pattern"));
        assert!(patterns("a\tb").unwrap_err().contains("control character"));
    }
}

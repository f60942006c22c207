//! Every failure the plugin reports: one line naming cause and fix, and a documented exit code
//! (README, "Exit codes").
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot load the kubeconfig: {0} (pass --kubeconfig FILE, set KUBECONFIG, or check --context)"
    )]
    Kubeconfig(String),
    #[error(
        "the API server is unreachable: {0} (is the cluster up? is the kubeconfig's server address right?)"
    )]
    Unreachable(String),
    #[error(
        "forbidden: cannot {verb} {resource}{scope}: {message} (grant the RBAC in deploy/02-rbac-plugin-user.yaml)"
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        scope: Scope,
        message: String,
    },
    #[error("{0}")]
    Local(String),
    #[error(
        "no tracer pods found{0} (start one with `kubectl dentry trace --keep`, or deploy the DaemonSet from deploy/)"
    )]
    NoTracers(Scope),
    #[error("the API server refused to {verb} {resource}{scope}: {message}")]
    Api {
        verb: &'static str,
        resource: &'static str,
        scope: Scope,
        message: String,
    },
}

/// "in namespace X" or "in any namespace", for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(pub Option<String>);

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " across all namespaces"),
        }
    }
}

impl Error {
    /// The process exit status (documented in the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Kubeconfig(_) => 3,
            Error::Unreachable(_) => 4,
            Error::Forbidden { .. } => 5,
            Error::Api { .. } | Error::Local(_) => 1,
            Error::NoTracers(_) => 6,
        }
    }

    /// Classifies a failed API call made to `verb` `resource` in `scope`.
    pub fn from_kube(
        e: kube::Error,
        verb: &'static str,
        resource: &'static str,
        scope: Scope,
    ) -> Error {
        match e {
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                verb,
                resource,
                scope,
                message: status.message.clone(),
            },
            kube::Error::Api(status) => Error::Api {
                verb,
                resource,
                scope,
                message: format!("{} ({})", status.message, status.code),
            },
            kube::Error::HyperError(e) => Error::Unreachable(e.to_string()),
            kube::Error::Service(e) => Error::Unreachable(source_chain(e.as_ref())),
            other => Error::Api {
                verb,
                resource,
                scope,
                message: other.to_string(),
            },
        }
    }
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

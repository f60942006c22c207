//! What `trace` takes: a pod, or a workload whose pods it traces (kubectl's kinds and
//! abbreviations), and the label selector that finds a workload's pods.
use std::fmt;

use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::Job,
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::error::{Error, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
}

impl Kind {
    /// kubectl's names for the kind: singular, plural, short name, and with the API group.
    fn parse(word: &str) -> Option<Kind> {
        let word = word.to_ascii_lowercase();
        let (name, group) = word.split_once('.').unwrap_or((&word, ""));
        let kind = match name {
            "pod" | "pods" | "po" => Kind::Pod,
            "deploy" | "deployment" | "deployments" => Kind::Deployment,
            "sts" | "statefulset" | "statefulsets" => Kind::StatefulSet,
            "ds" | "daemonset" | "daemonsets" => Kind::DaemonSet,
            "rs" | "replicaset" | "replicasets" => Kind::ReplicaSet,
            "job" | "jobs" => Kind::Job,
            _ => return None,
        };
        let expected = match kind {
            Kind::Pod => "",
            Kind::Job => "batch",
            _ => "apps",
        };
        (group.is_empty() || group == expected).then_some(kind)
    }

    /// The resource's name in messages, as `kubectl get` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::ReplicaSet => "replicaset",
            Kind::Job => "job",
        }
    }
}

/// `KIND/NAME`, or a bare `NAME` for a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub kind: Kind,
    pub name: String,
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

const KINDS: &str = "pod/NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME, job/NAME, or -l SELECTOR";

/// The command-line parser of `trace`'s target.
pub fn parse(arg: &str) -> Result<Ref, String> {
    let (kind, name) = match arg.split_once('/') {
        None => (Kind::Pod, arg),
        Some((kind, name)) => match Kind::parse(kind) {
            Some(k) => (k, name),
            None => return Err(format!("cannot trace a {kind}: give {KINDS}")),
        },
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!("expected {KINDS}"));
    }
    Ok(Ref {
        kind,
        name: name.to_owned(),
    })
}

/// The label selector of a workload's pods, as `-l` takes it (`app=web,tier in (a,b)`).
pub async fn selector(client: &Client, namespace: &str, of: &Ref) -> Result<String, Error> {
    let selector = match of.kind {
        Kind::Pod => return Err(Error::Local("a pod has no selector".into())),
        Kind::Deployment => Some(
            get::<Deployment>(client, namespace, of)
                .await?
                .spec
                .selector,
        ),
        Kind::StatefulSet => Some(
            get::<StatefulSet>(client, namespace, of)
                .await?
                .spec
                .selector,
        ),
        Kind::DaemonSet => Some(get::<DaemonSet>(client, namespace, of).await?.spec.selector),
        Kind::ReplicaSet => Some(
            get::<ReplicaSet>(client, namespace, of)
                .await?
                .spec
                .selector,
        ),
        Kind::Job => get::<Job>(client, namespace, of)
            .await?
            .spec
            .and_then(|s| s.selector),
    };
    let text = selector.as_ref().map(to_text).unwrap_or_default();
    if text.is_empty() {
        // An empty selector selects every pod of the namespace: never what was meant.
        return Err(Error::Local(format!(
            "{of} in namespace {namespace} has no pod selector; trace its pods with -l SELECTOR"
        )));
    }
    Ok(text)
}

/// Whether a Job is over: Complete or Failed (its pods will not be replaced).
pub async fn job_over(client: &Client, namespace: &str, name: &str) -> bool {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let Ok(job) = api.get(name).await else {
        // Deleted: over as well.
        return true;
    };
    job.status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

async fn get<K>(client: &Client, namespace: &str, of: &Ref) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope> + DeserializeOwned + Clone + fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get(&of.name).await {
        Ok(object) => Ok(object),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Error::WorkloadNotFound {
            what: of.to_string(),
            namespace: namespace.to_owned(),
        }),
        Err(e) => Err(Error::from_kube(
            e,
            "get",
            plural(of.kind),
            Scope(Some(namespace.to_owned())),
        )),
    }
}

fn plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Pod => "pods",
        Kind::Deployment => "deployments",
        Kind::StatefulSet => "statefulsets",
        Kind::DaemonSet => "daemonsets",
        Kind::ReplicaSet => "replicasets",
        Kind::Job => "jobs",
    }
}

/// A `LabelSelector` in the text form the API's `labelSelector` parameter takes.
pub fn to_text(selector: &LabelSelector) -> String {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    terms.join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    #[test]
    fn kubectl_names_and_abbreviations() {
        for (arg, kind) in [
            ("mysql-0", Kind::Pod),
            ("po/mysql-0", Kind::Pod),
            ("deploy/web", Kind::Deployment),
            ("deployments.apps/web", Kind::Deployment),
            ("sts/db", Kind::StatefulSet),
            ("StatefulSet/db", Kind::StatefulSet),
            ("ds/agent", Kind::DaemonSet),
            ("rs/web-7d9f", Kind::ReplicaSet),
            ("job.batch/load", Kind::Job),
        ] {
            assert_eq!(parse(arg).map(|r| r.kind), Ok(kind), "{arg}");
        }
        assert!(
            parse("cronjob/x")
                .unwrap_err()
                .contains("cannot trace a cronjob")
        );
        assert!(parse("deploy.batch/x").is_err());
        assert!(parse("deploy/").is_err());
        assert!(parse("sts/a/b").is_err());
    }

    #[test]
    fn selectors_read_as_kubectl_writes_them() {
        let selector = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(to_text(&selector), "app=web,tier in (a,b),!canary");
    }
}

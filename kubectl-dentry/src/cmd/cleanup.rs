//! `kubectl dentry cleanup`: delete every tracer pod this plugin created.
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, api::DeleteParams};

use crate::{
    error::{Error, Scope},
    tracer::pod::MANAGED_BY,
};

/// `kubectl dentry cleanup`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  kubectl dentry cleanup\n  kubectl dentry cleanup -n prod\n  kubectl dentry cleanup -A"
)]
pub struct Args {
    /// In every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// Deletes the tracer pods in `namespace` (or everywhere with -A) and says what it deleted.
pub async fn run(client: &Client, namespace: &str, args: &Args) -> Result<(), Error> {
    let scope = (!args.all_namespaces).then_some(namespace);
    let deleted = delete_all(client, scope).await?;
    for pod in &deleted {
        eprintln!("deleted pod/{pod}");
    }
    let place = match scope {
        Some(ns) => format!("in namespace {ns}"),
        None => "across all namespaces".to_owned(),
    };
    println!("{} tracer pod(s) deleted {place}", deleted.len());
    Ok(())
}

/// Deletes the plugin's tracer pods in `namespace` (`None`: every namespace); returns them as
/// `namespace/name`, in the order deleted.
pub async fn delete_all(client: &Client, namespace: Option<&str>) -> Result<Vec<String>, Error> {
    let pods = crate::cluster::pods_labelled(client, namespace, MANAGED_BY).await?;
    let mut deleted = Vec::new();
    for pod in pods {
        let (Some(name), Some(ns)) = (pod.metadata.name, pod.metadata.namespace) else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(format!("{ns}/{name}")),
            // Gone already (its deadline, or another cleanup): nothing to do.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(Error::from_kube(e, "delete", "pods", Scope(Some(ns)))),
        }
    }
    Ok(deleted)
}

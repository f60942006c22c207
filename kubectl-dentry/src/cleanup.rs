//! `kubectl dentry cleanup`: delete every tracer pod this plugin created.
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client, api::DeleteParams};

use crate::{
    error::{Error, Scope},
    tracer_pod::MANAGED_BY,
};

/// Deletes the plugin's tracer pods in `namespace` (`None`: every namespace); returns them as
/// `namespace/name`, in the order deleted.
pub async fn run(client: &Client, namespace: Option<&str>) -> Result<Vec<String>, Error> {
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

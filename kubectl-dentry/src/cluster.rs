//! Which cluster, as kubectl would pick it: --kubeconfig (else KUBECONFIG, else
//! ~/.kube/config), --context (else the current context), -n (else the context's namespace).
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, Config,
    api::ListParams,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::error::{Error, Scope};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file to use.
    #[arg(long, global = true, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

/// A client and the namespace commands default to.
pub async fn connect(args: &ClusterArgs) -> Result<(Client, String), Error> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            // KUBECONFIG may list several files; like kubectl, merge them in order.
            let mut merged: Option<Kubeconfig> = None;
            for file in std::env::split_paths(path) {
                let kc = Kubeconfig::read_from(&file)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", file.display())))?;
                merged = Some(match merged {
                    Some(m) => m.merge(kc).map_err(|e| Error::Kubeconfig(e.to_string()))?,
                    None => kc,
                });
            }
            let kc = merged.ok_or_else(|| Error::Kubeconfig("no file given".into()))?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?
        }
        None if args.context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
        None => Config::infer()
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    // kube retries 429/503/504 up to 15 times with a backoff that grows to minutes; a dead
    // tracer pod answers its proxy with 503, so `fetch` and `top` would stall on it. kubectl
    // does not retry either: a failure is reported at once.
    let mut config = config;
    config.default_retry = false;
    let client = crate::https::client(config)?;
    Ok((client, namespace))
}

/// Pods carrying the label `key=value`, in `namespace` (`None`: every namespace).
pub async fn pods_labelled(
    client: &Client,
    namespace: Option<&str>,
    (key, value): (&str, &str),
) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let pods = api
        .list(&ListParams::default().labels(&format!("{key}={value}")))
        .await
        .map_err(|e| Error::from_kube(e, "list", "pods", Scope(namespace.map(str::to_owned))))?;
    Ok(pods.items)
}

/// The images of the tracer pods running in the cluster, with how many pods run each.
pub async fn tracer_images(client: &Client) -> Result<Vec<(String, usize)>, Error> {
    let pods = pods_labelled(client, None, crate::tracer::pod::NAME_LABEL).await?;
    let mut images = std::collections::BTreeMap::<String, usize>::new();
    for p in pods {
        for c in p.spec.map(|s| s.containers).unwrap_or_default() {
            *images.entry(c.image.unwrap_or_default()).or_default() += 1;
        }
    }
    Ok(images.into_iter().collect())
}
